"""The FinOps Guard stack: composes the constructs, tags everything and registers cdk-nag."""

from __future__ import annotations

from aws_cdk import App, CfnOutput, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.config import FinOpsGuardConfig, load_config
from infra.constructs.cost_reports import CostReports
from infra.constructs.layers import SharedLayers
from infra.constructs.ops import OpsAlerts


class FinOpsGuardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"FinOps Guard ({config.stage}): weekly AWS cost reports in chat",
        )
        self.config = config
        self.ops = OpsAlerts(self, "Ops", stage=config.stage, email=config.ops_alarm_email)
        self.layers = SharedLayers(self, "Layers", stage=config.stage)
        self.cost_reports = CostReports(
            self, "CostReports", config=config, layers=self.layers, alarm_topic=self.ops.topic
        )
        self._add_outputs()
        self._add_tags()

    def _add_outputs(self) -> None:
        reports = self.cost_reports
        CfnOutput(self, "TeamsSecretName", value=reports.teams_secret_name)
        if reports.slack_secret_name is not None:
            CfnOutput(self, "SlackSecretName", value=reports.slack_secret_name)
        CfnOutput(self, "OutboxTableName", value=reports.outbox_table.table_name)
        CfnOutput(self, "WeeklyReportFunctionName", value=reports.function.function_name)
        CfnOutput(self, "OpsTopicArn", value=self.ops.topic.topic_arn)

    def _add_tags(self) -> None:
        tags = Tags.of(self)
        tags.add("Project", "FinOpsGuard")
        tags.add("Environment", self.config.stage)
        tags.add("Owner", self.config.owner)
        tags.add("CostCenter", self.config.cost_center)


def create_stack(app: App) -> FinOpsGuardStack:
    """Validate the context, build ``FinOpsGuard-<stage>`` and register the AwsSolutions checks.

    Raises ``ConfigError`` before any construct is created when the context is invalid.
    """
    config = load_config(app.node)
    stack = FinOpsGuardStack(app, f"FinOpsGuard-{config.stage}", config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack
