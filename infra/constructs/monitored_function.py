"""A Lambda function the way every FinOps Guard function is run: own role, logs, DLQ, alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.constructs.layers import ARCHITECTURE, RUNTIME

ALARM_PERIOD = Duration.minutes(5)
DURATION_ALARM_RATIO = 0.8  # alarm when the slowest run used 80 % of the timeout


METRICS_NAMESPACE = "FinOpsGuard"
DEFAULT_REDRIVE_HINT = "redrive (invoke the function with the message body) and delete the message"


def powertools_environment(service: str) -> dict[str, str]:
    """Every function logs and emits metrics the same way; the service name is its short name."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def function_code(folder: str) -> lambda_.Code:
    """The code of functions/<folder>/ (its handler.py), without caches."""
    return lambda_.Code.from_asset(str(REPO_ROOT / "functions" / folder), exclude=["**/__pycache__"])


@dataclass(frozen=True)
class MonitoredFunctionProps:
    stage: str
    name: str  # short name, e.g. "weekly-report"
    description: str
    code: lambda_.Code
    timeout: Duration
    memory_size: int
    alarm_topic: sns.ITopic
    environment: Mapping[str, str] = field(default_factory=dict)
    layers: Sequence[lambda_.ILayerVersion] = ()
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    handler: str = "handler.lambda_handler"
    # What happens to a failed event, and how on-call gets a parked one processed again. The defaults
    # describe async invocations (schedules); a queue-triggered function says so instead.
    retry_hint: str | None = None  # None: "Failed async events are retried twice, then parked in <dlq>."
    redrive_hint: str = DEFAULT_REDRIVE_HINT
    # The calls the Duration alarm tells on-call to look for first.
    slow_calls: str = "Cost Explorer, Secrets Manager, webhook"
    # The Errors alarm's known causes and their fixes, after reading the logs (None: the logs will tell).
    error_causes: str | None = None


class MonitoredFunction(Construct):
    """Exposes ``function``, ``short_name`` (the metrics' service dimension), ``role``,
    ``dead_letter_queue``, ``log_group`` and ``alarms``.

    The role starts with log writing only; add permissions with ``add_to_role_policy`` (or a
    resource's ``grant_*``), which land in the role's DefaultPolicy that the function waits for.
    Errors, Throttles, Duration and DeadLetters alarms come built in; ``add_alarm`` adds more.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitoredFunctionProps) -> None:
        super().__init__(scope, construct_id)
        self.short_name = props.name
        self.function_name = f"finops-guard-{props.stage}-{props.name}"
        self.alarm_prefix = f"FinOpsGuard-{props.stage}-{props.name}"
        self._alarm_action = cloudwatch_actions.SnsAction(props.alarm_topic)
        self.log_group = self._add_log_group(props)
        self.role = self._add_role()
        self.dead_letter_queue = self._add_dead_letter_queue()
        self.function = self._add_function(props)
        self.alarms = self._add_alarms(props)

    def add_to_role_policy(self, statement: iam.PolicyStatement) -> None:
        self.role.add_to_principal_policy(statement)

    def add_alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        evaluation_periods: int = 1,
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        """One more alarm ``FinOpsGuard-<stage>-<function>-<name>`` paging the same topic as the standard four.

        By default missing data is not breaching: no invocations, no events, nothing to page about.
        An alarm on something that must happen (a report posted) treats missing data as breaching.
        """
        alarm = self._alarm(
            name,
            metric,
            threshold=threshold,
            comparison=comparison,
            description=description,
            evaluation_periods=evaluation_periods,
            treat_missing_data=treat_missing_data,
        )
        self.alarms.append(alarm)
        return alarm

    def _add_log_group(self, props: MonitoredFunctionProps) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "LogGroup",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    def _add_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {self.function_name}",
        )
        # Instead of AWSLambdaBasicExecutionRole: write to this function's own log group only.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        return role

    def _add_dead_letter_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{self.function_name}-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

    def _add_function(self, props: MonitoredFunctionProps) -> lambda_.Function:
        function = lambda_.Function(
            self,
            "Function",
            function_name=self.function_name,
            description=props.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=props.code,
            handler=props.handler,
            timeout=props.timeout,
            memory_size=props.memory_size,
            environment={**powertools_environment(props.name), **props.environment},
            layers=list(props.layers),
            role=self.role,
            log_group=self.log_group,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=2,
        )
        self._depend_on_role_policies_only(function)
        return function

    def _depend_on_role_policies_only(self, function: lambda_.Function) -> None:
        """Keep DependsOn on the role's policy (Lambda checks the DLQ permission at creation) but
        drop the Role itself, which the function's GetAtt already orders (cfn-lint W3005)."""
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        function_resource = function.node.default_child
        assert isinstance(policy, CfnResource) and isinstance(function_resource, CfnResource)
        function_resource.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])

    def _add_alarms(self, props: MonitoredFunctionProps) -> list[cloudwatch.Alarm]:
        fn, name = self.function, self.function_name
        duration_threshold_ms = props.timeout.to_milliseconds() * DURATION_ALARM_RATIO
        logs_hint = f"open the log group {self.log_group.log_group_name} in CloudWatch Logs Insights"
        alarms = [
            self._alarm(
                "Errors",
                fn.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=(
                    f"{name} raised an error in the last 5 minutes; its run did not finish. "
                    f"First: {logs_hint} and read the ERROR lines. "
                    + (f"{props.error_causes} " if props.error_causes else "")
                    + (props.retry_hint or f"Failed async events are retried twice, then parked in {name}-dlq.")
                ),
            ),
            self._alarm(
                "Throttles",
                fn.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=(
                    f"{name} was throttled: Lambda refused to start it. First: check the account's "
                    "concurrent executions (Lambda console > Dashboard) and any reserved concurrency."
                ),
            ),
            self._alarm(
                "Duration",
                fn.metric_duration(period=ALARM_PERIOD, statistic="Maximum"),
                threshold=duration_threshold_ms,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=(
                    f"{name} ran longer than {DURATION_ALARM_RATIO:.0%} of its "
                    f"{props.timeout.to_seconds()} s timeout and may soon time out. First: "
                    f"{logs_hint} and find the slow call ({props.slow_calls})."
                ),
            ),
            self._alarm(
                "DeadLetters",
                self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ALARM_PERIOD, statistic="Maximum"
                ),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=(
                    f"Events for {name} failed every retry and wait in the SQS queue {name}-dlq. "
                    f"First: read a message to see the event and error, fix the cause, then {props.redrive_hint}."
                ),
            ),
        ]
        return alarms

    def _alarm(
        self,
        metric_name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        evaluation_periods: int = 1,
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"{metric_name}Alarm",
            alarm_name=f"{self.alarm_prefix}-{metric_name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(self._alarm_action)
        alarm.add_ok_action(self._alarm_action)
        return alarm
