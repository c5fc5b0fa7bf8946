"""A Lambda function the way every FinOps Guard function is run: own role, own log group, and a
failure path that pages.

Paging costs what must be watched, not the number of functions: a function has no alarms of its own.
An asynchronous invocation (a schedule, a custom resource, SNS) that still fails after Lambda's two
retries, or that waited longer than Lambda keeps events (a throttled or timed-out run included), goes
to the stage's one failure queue as Lambda's invocation record; the queue's one alarm pages the ops
topic (infra/core/paging.py). ``add_alarm`` adds a service-level alarm on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.core import REPO_ROOT
from infra.core.bundling import function_code as compiled_function_code
from infra.core.layers import ARCHITECTURE, PYTHON_VERSION, RUNTIME, acknowledge_runtime
from infra.core.paging import Paging

ALARM_PERIOD = Duration.minutes(5)
# Lambda's own retries of a failed asynchronous event before it goes to the failure queue.
ASYNC_RETRIES = 2


METRICS_NAMESPACE = "FinOpsGuard"
# Read by finops_guard.core.service_levels.kpi_metrics_on: "on" sends the metrics only the dashboards read.
KPI_METRICS_VARIABLE = "FINOPSGUARD_KPI_METRICS"


def powertools_environment(service: str) -> dict[str, str]:
    """Every function logs and emits metrics the same way; the service name is its short name."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def function_code(folder: str) -> lambda_.Code:
    """The code of functions/<folder>/ (its handler.py) with its bytecode for the runtime, without caches."""
    return compiled_function_code(REPO_ROOT / "functions" / folder, PYTHON_VERSION)


def send_async_failures(scope: Construct, function: lambda_.Function, role: iam.Role, paging: Paging) -> None:
    """Two retries, then the invocation record of a failed asynchronous event goes to the failure queue.

    The L1 config rather than SqsDestination, whose grant adds two queue reads Lambda never makes.
    Lambda sends the record with the function's role, and checks that it may when it saves the config.
    """
    role.add_to_principal_policy(paging.send_failures_statement())
    config = lambda_.CfnEventInvokeConfig(
        scope,
        "AsyncInvokeConfig",
        function_name=function.function_name,
        qualifier="$LATEST",
        maximum_retry_attempts=ASYNC_RETRIES,
        destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
            on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=paging.failures.queue_arn)
        ),
    )
    policy = role.node.find_child("DefaultPolicy").node.default_child
    assert isinstance(policy, CfnResource)
    config.add_resource_dependency(policy)


@dataclass(frozen=True)
class MonitoredFunctionProps:
    stage: str
    name: str  # short name, e.g. "weekly-report"
    description: str
    code: lambda_.Code
    timeout: Duration
    memory_size: int
    paging: Paging
    # The dashboard-only KPI metrics ($0.30 a month each): on exactly when the dashboards are deployed.
    kpi_metrics: bool
    environment: Mapping[str, str] = field(default_factory=dict)
    layers: Sequence[lambda_.ILayerVersion] = ()
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    handler: str = "handler.lambda_handler"


class MonitoredFunction(Construct):
    """Exposes ``function``, ``short_name`` (the metrics' service dimension), ``role``,
    ``failure_queue`` (the stage's, where its failed events go), ``log_group`` and ``alarms``
    (only those ``add_alarm`` added).

    The role starts with log writing only; add permissions with ``add_to_role_policy`` (or a
    resource's ``grant_*``), which land in the role's DefaultPolicy that the function waits for.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitoredFunctionProps) -> None:
        super().__init__(scope, construct_id)
        self.short_name = props.name
        self.function_name = f"finops-guard-{props.stage}-{props.name}"
        self.alarm_prefix = f"FinOpsGuard-{props.stage}-{props.name}"
        self.paging = props.paging
        self.failure_queue = props.paging.failures
        self._alarm_action = cloudwatch_actions.SnsAction(props.paging.topic)
        self.log_group = self._add_log_group(props)
        self.role = self._add_role()
        self.function = self._add_function(props)
        self.alarms: list[cloudwatch.Alarm] = []

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
        """A service-level alarm ``FinOpsGuard-<stage>-<function>-<name>`` that pages the ops topic.

        By default missing data is not breaching: no invocations, no events, nothing to page about.
        An alarm on something that must happen (a report posted) treats missing data as breaching.
        """
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            alarm_name=f"{self.alarm_prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(self._alarm_action)
        alarm.add_ok_action(self._alarm_action)
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
            environment={
                **powertools_environment(props.name),
                KPI_METRICS_VARIABLE: "on" if props.kpi_metrics else "off",
                **props.environment,
            },
            layers=list(props.layers),
            role=self.role,
            log_group=self.log_group,
        )
        acknowledge_runtime(function)
        send_async_failures(self, function, self.role, self.paging)
        self._depend_on_role_policies_only(function)
        return function

    def _depend_on_role_policies_only(self, function: lambda_.Function) -> None:
        """Keep DependsOn on the role's policy (Lambda checks the destination permission when it saves
        the async config) but drop the Role itself, which the function's GetAtt already orders (W3005)."""
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        function_resource = function.node.default_child
        assert isinstance(policy, CfnResource) and isinstance(function_resource, CfnResource)
        function_resource.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])
