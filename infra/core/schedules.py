"""EventBridge Scheduler schedules that start a MonitoredFunction, each with its own locked role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack, TimeZone
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from infra.core.monitored_function import MonitoredFunction


@dataclass(frozen=True)
class FunctionSchedule:
    construct_prefix: str  # e.g. "WeeklyReport" -> WeeklyReportSchedule, WeeklyReportSchedulerRole
    schedule_name: str
    purpose: str  # e.g. "the weekly cost report"
    expression: str  # validated cron(...) or rate(...)
    timezone: str
    payload: Mapping[str, Any]  # the event; "scheduled_time" is added


def add_function_schedule(scope: Construct, target: MonitoredFunction, spec: FunctionSchedule) -> scheduler.Schedule:
    """Schedule ``target`` without flexible window: 2 retries within 1 h, then the stage's failure queue.

    Both constructs are created directly in ``scope`` (no wrapper construct) so their logical ids,
    and with them the named schedule, stay put when code moves here.
    """
    role = _add_scheduler_role(scope, target, spec)
    return scheduler.Schedule(
        scope,
        f"{spec.construct_prefix}Schedule",
        schedule_name=spec.schedule_name,
        description=f"Runs {spec.purpose}",
        schedule=scheduler.ScheduleExpression.expression(spec.expression, TimeZone.of(spec.timezone)),
        time_window=scheduler.TimeWindow.off(),
        target=scheduler_targets.LambdaInvoke(
            target.function,
            input=scheduler.ScheduleTargetInput.from_object(
                {**spec.payload, "scheduled_time": scheduler.ContextAttribute.scheduled_time}
            ),
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            # Events Scheduler could not deliver land next to the function's own async failures.
            dead_letter_queue=target.failure_queue,
            # Immutable: the target would otherwise also grant invoke on every version (":*").
            role=role.without_policy_updates(),
        ),
    )


def _add_scheduler_role(scope: Construct, target: MonitoredFunction, spec: FunctionSchedule) -> iam.Role:
    """Scheduler's execution role: invoke this one function and park undeliverable events."""
    role = iam.Role(
        scope,
        f"{spec.construct_prefix}SchedulerRole",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}},
        ),
        description=f"EventBridge Scheduler role that starts {spec.purpose}",
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"Invoke{spec.construct_prefix}",
            actions=["lambda:InvokeFunction"],
            resources=[target.function.function_arn],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ParkUndeliveredEvents",
            actions=["sqs:SendMessage"],
            resources=[target.failure_queue.queue_arn],
        )
    )
    return role
