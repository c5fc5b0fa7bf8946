"""The weekly cost report: chat webhook secrets, the message outbox, the function and its schedule."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, TimeZone, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.constructs import REPO_ROOT
from infra.constructs.layers import SharedLayers
from infra.constructs.monitored_function import MonitoredFunction, MonitoredFunctionProps

REPORT_TIMEOUT = Duration.seconds(120)
REPORT_MEMORY_MB = 256


class CostReports(Construct):
    """Exposes ``function``, ``weekly_report``, ``outbox_table``, ``teams_secret``/``teams_secret_name``,
    ``slack_secret``/``slack_secret_name`` (None unless slackEnabled), ``schedule``, ``scheduler_role``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: SharedLayers,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.teams_secret_name = f"finops-guard/{config.stage}/teams-webhook-url"
        self.teams_secret = self._add_webhook_secret("TeamsWebhookSecret", self.teams_secret_name, "Microsoft Teams")
        self.slack_secret_name = f"finops-guard/{config.stage}/slack-webhook-url" if config.slack_enabled else None
        self.slack_secret = (
            self._add_webhook_secret("SlackWebhookSecret", self.slack_secret_name, "Slack")
            if self.slack_secret_name
            else None
        )
        self.outbox_table = self._add_outbox_table()
        self.weekly_report = self._add_weekly_report(layers, alarm_topic)
        self.function = self.weekly_report.function
        self._grant_weekly_report()
        self.schedule = self._add_schedule()

    @property
    def secrets(self) -> list[secretsmanager.Secret]:
        return [s for s in (self.teams_secret, self.slack_secret) if s is not None]

    def _add_webhook_secret(self, construct_id: str, name: str, product: str) -> secretsmanager.Secret:
        # The generated random string is only a placeholder: the webhook URL never enters the template.
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=(
                f"{product} incoming webhook URL for FinOps Guard reports. After the first deploy run: "
                f"aws secretsmanager put-secret-value --secret-id {name} --secret-string '<webhook url>'"
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    f"The secret holds a {product} incoming webhook URL issued by {product}; there is no API "
                    "to mint a new one, so a rotation Lambda cannot exist. Operators rotate it by hand "
                    "(new webhook in the channel, then put-secret-value) when it leaks or is revoked."
                ),
            )
        )
        return secret

    def _add_outbox_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "OutboxTable",
            table_name=f"finops-guard-{self.config.stage}-outbox",
            partition_key=dynamodb.Attribute(name="message_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _environment(self) -> dict[str, str]:
        config = self.config
        environment = {
            "FINOPSGUARD_STAGE": config.stage,
            "FINOPSGUARD_TIMEZONE": config.timezone,
            "FINOPSGUARD_CURRENCY": config.currency,
            "FINOPSGUARD_TOP_N": str(config.top_n),
            "FINOPSGUARD_TEAMS_SECRET_NAME": self.teams_secret_name,
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
            "POWERTOOLS_SERVICE_NAME": "weekly-report",
            "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if config.monthly_budget is not None:
            environment["FINOPSGUARD_MONTHLY_BUDGET"] = config.monthly_budget
        if self.slack_secret_name is not None:
            environment["FINOPSGUARD_SLACK_SECRET_NAME"] = self.slack_secret_name
        return environment

    def _add_weekly_report(self, layers: SharedLayers, alarm_topic: sns.ITopic) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "WeeklyReport",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name="weekly-report",
                description="Posts the weekly AWS cost report to the team chat",
                code=lambda_.Code.from_asset(
                    str(REPO_ROOT / "functions" / "weekly_report"), exclude=["**/__pycache__"]
                ),
                handler="handler.lambda_handler",
                timeout=REPORT_TIMEOUT,
                memory_size=REPORT_MEMORY_MB,
                environment=self._environment(),
                layers=[layers.common, layers.report_deps],
                alarm_topic=alarm_topic,
            ),
        )

    def _grant_weekly_report(self) -> None:
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        for statement in (
            iam.PolicyStatement(
                sid="ReadCostAndUsage",
                actions=["ce:GetCostAndUsage"],
                resources=["*"],  # Cost Explorer has no resource-level permissions
            ),
            iam.PolicyStatement(
                sid="ReadWebhookSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret.secret_arn for secret in self.secrets],
            ),
            # Claiming and marking messages are conditional UpdateItems; reading and listing the
            # outbox (get_item, scan) is the operator CLI's job, under the operator's own credentials.
            iam.PolicyStatement(
                sid="UseOutbox",
                actions=["dynamodb:UpdateItem"],
                resources=[self.outbox_table.table_arn],
            ),
        ):
            self.weekly_report.add_to_role_policy(statement)
        Validations.of(self.weekly_report.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Only ce:GetCostAndUsage uses Resource '*': Cost Explorer has no resource-level "
                    "permissions (its actions accept no ARNs). Every other statement of this policy is "
                    "scoped to this stack's log group, DLQ, webhook secrets and outbox table."
                ),
            )
        )

    def _add_scheduler_role(self) -> iam.Role:
        """Scheduler's execution role: invoke this one function and park undeliverable events."""
        role = iam.Role(
            self,
            "WeeklyReportSchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="EventBridge Scheduler role that starts the weekly cost report",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeWeeklyReport",
                actions=["lambda:InvokeFunction"],
                resources=[self.function.function_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ParkUndeliveredEvents",
                actions=["sqs:SendMessage"],
                resources=[self.weekly_report.dead_letter_queue.queue_arn],
            )
        )
        return role

    def _add_schedule(self) -> scheduler.Schedule:
        self.scheduler_role = self._add_scheduler_role()
        return scheduler.Schedule(
            self,
            "WeeklyReportSchedule",
            schedule_name=f"finops-guard-{self.config.stage}-weekly-report",
            description="Runs the weekly cost report",
            schedule=scheduler.ScheduleExpression.expression(
                self.config.report_schedule, TimeZone.of(self.config.timezone)
            ),
            time_window=scheduler.TimeWindow.off(),
            target=scheduler_targets.LambdaInvoke(
                self.function,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"report": "weekly", "scheduled_time": scheduler.ContextAttribute.scheduled_time}
                ),
                retry_attempts=2,
                max_event_age=Duration.hours(1),
                # Events Scheduler could not deliver land next to the function's own async failures.
                dead_letter_queue=self.weekly_report.dead_letter_queue,
                # Immutable: the target would otherwise also grant invoke on every version (":*").
                role=self.scheduler_role.without_policy_updates(),
            ),
        )
