"""Deploy-time custom resources that make a first deploy succeed in an account that is not empty.

One small function per product stack (``finops-guard-<stage>-<product>-setup``) answers the kinds of
custom resource that stack uses; each method below adds its resource and exactly the permissions that
kind uses. The function runs only while CloudFormation creates, updates or deletes them: no schedule,
no alarm of its own (a failure shows as the stack event's reason, which is where the person deploying
looks, and a run that dies before it answers goes to the failure queue). Decisions and their reasons:
finops_guard/core/deploy_setup.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Aws, CfnResource, CustomResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.core.layers import ARCHITECTURE, RUNTIME, Layers, acknowledge_runtime
from infra.core.monitored_function import function_code, powertools_environment, send_async_failures
from infra.core.paging import Paging

# Cost Explorer, API Gateway (with up to 35 s of waiting for a new role to propagate) and one metric.
TIMEOUT = Duration.minutes(2)
MEMORY_MB = 128


class DeploySetup(Construct):
    """Exposes ``function`` and ``role``; ``services_monitor``, ``api_gateway_cloudwatch_role`` and
    ``report_grace`` each add one custom resource and the grants it needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        product: str,
        layers: Layers,
        paging: Paging,
        tags: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.tags = dict(tags)  # for what the custom resources create (CloudFormation's tags do not reach it)
        self.function_name = f"finops-guard-{stage}-{product}-setup"
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {self.function_name}",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=self.function_name,
            description="Answers FinOps Guard's deploy-time custom resources (adopt account-wide settings)",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=function_code("deploy_setup"),
            handler="handler.lambda_handler",
            timeout=TIMEOUT,
            memory_size=MEMORY_MB,
            environment=powertools_environment(f"{product}-setup"),
            layers=[layers.common, layers.report_deps],
            role=self.role,
            log_group=self.log_group,
        )
        acknowledge_runtime(self.function)
        # CloudFormation invokes it asynchronously: a run that dies before it answers pages.
        send_async_failures(self, self.function, self.role, paging)
        # The role is already ordered by the function's GetAtt (cfn-lint W3005); keep only its policy.
        function_resource = self.function.node.default_child
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(function_resource, CfnResource) and isinstance(policy, CfnResource)
        function_resource.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])
        self._acknowledged: set[str] = set()

    def _resource(
        self, scope: Construct, construct_id: str, resource_type: str, properties: Mapping[str, object]
    ) -> CustomResource:
        resource = CustomResource(
            scope,
            construct_id,
            service_token=self.function.function_arn,
            resource_type=resource_type,
            properties=dict(properties),
        )
        # The grants must be in place before CloudFormation sends the request.
        resource.node.add_dependency(self.role)
        return resource

    def services_monitor(self, scope: Construct, construct_id: str, *, monitor_name: str) -> CustomResource:
        """The account's AWS-services anomaly monitor: adopted when one exists, else ``monitor_name``.

        Attributes: ``MonitorArn``, ``MonitorName``, ``Since`` (the monitor's creation date), ``Adopted``.
        """
        partition, account = Aws.PARTITION, Aws.ACCOUNT_ID
        monitors = f"arn:{partition}:ce::{account}:anomalymonitor/*"
        subscriptions = f"arn:{partition}:ce::{account}:anomalysubscription/*"
        # Service Authorization Reference: CreateAnomalyMonitor has no resource type (Resource "*"), but
        # takes aws:RequestTag; reads and deletes are scoped to this account's monitors ("all or none":
        # the Get actions need the generic ARN, https://docs.aws.amazon.com/cost-management/latest/
        # userguide/accesscontrol-ad.html).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateTaggedServicesMonitor",
                actions=["ce:CreateAnomalyMonitor", "ce:TagResource"],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestTag/Project": self.tags["Project"]}},
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FindOrDeleteServicesMonitor",
                actions=["ce:GetAnomalyMonitors", "ce:DeleteAnomalyMonitor"],
                resources=[monitors],
            )
        )
        # Delete keeps a monitor that any subscription (another stage's, another region's) still uses.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FindMonitorSubscriptions", actions=["ce:GetAnomalySubscriptions"], resources=[subscriptions]
            )
        )
        self._acknowledge(
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalymonitor/*]",
            "The monitor's id is chosen by AWS at creation (or is the id of the existing monitor adopted), "
            "so no narrower ARN exists; the actions are limited to anomaly monitors of this account.",
        )
        self._acknowledge(
            "AwsSolutions-IAM5[Resource::*]",
            "Resource '*' only where the action has no resource type: ce:CreateAnomalyMonitor and ce:TagResource "
            "(limited to requests tagging Project=FinOpsGuard) and cloudwatch:PutMetricData (limited by the "
            "cloudwatch:namespace condition to FinOps Guard's own namespace).",
        )
        self._acknowledge(
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalysubscription/*]",
            "Read-only: before deleting a monitor it created, the function lists which subscriptions of the "
            "account still use it, whatever their ids.",
        )
        return self._resource(
            scope, construct_id, "Custom::AnomalyServicesMonitor", {"MonitorName": monitor_name, "Tags": self.tags}
        )

    def api_gateway_cloudwatch_role(self, scope: Construct, construct_id: str, *, role: iam.IRole) -> CustomResource:
        """API Gateway's account-wide CloudWatch Logs role: adopted when set to a role that exists, else
        ``role``. Attributes: ``RoleArn`` (the role in effect), ``Adopted``."""
        account_settings = f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/account"
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadAndSetApiGatewayAccount",
                actions=["apigateway:GET", "apigateway:PATCH"],
                resources=[account_settings],
            )
        )
        # Whether the role the account names still exists: any role name the setting may hold.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CheckCurrentLogsRole",
                actions=["iam:GetRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/*"],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassOwnLogsRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}},
            )
        )
        self._acknowledge(
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]",
            "iam:GetRole only (read-only): the account's API Gateway setting may name any role, and the "
            "function checks that it still exists before adopting it instead of replacing it.",
        )
        return self._resource(scope, construct_id, "Custom::ApiGatewayCloudWatchRole", {"RoleArn": role.role_arn})

    def report_grace(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        timezone: str,
    ) -> CustomResource:
        """One data point of ``metric_name`` when the stack is created: a new stage's first week counts from
        the deploy, so a deadline alarm on that metric does not start in ALARM."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="OpenReportDeadline",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the namespace condition scopes it
                conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
            )
        )
        self._acknowledge(
            "AwsSolutions-IAM5[Resource::*]",
            "Resource '*' only where the action has no resource type: cloudwatch:PutMetricData (limited by the "
            "cloudwatch:namespace condition to FinOps Guard's own namespace), and with a services monitor "
            "ce:CreateAnomalyMonitor and ce:TagResource (limited to requests tagging Project=FinOpsGuard).",
        )
        return self._resource(
            scope,
            construct_id,
            "Custom::ReportDeadlineGrace",
            {"Namespace": namespace, "MetricName": metric_name, "Dimensions": dict(dimensions), "Timezone": timezone},
        )

    def _acknowledge(self, finding: str, reason: str) -> None:
        if finding in self._acknowledged:
            return
        self._acknowledged.add(finding)
        Validations.of(self.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(id=finding, reason=reason)
        )
