"""The FinOps Guard stack: composes the constructs, tags everything and registers cdk-nag."""

from __future__ import annotations

from aws_cdk import App, CfnOutput, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.config import FinOpsGuardConfig, load_config
from infra.constructs.alerts import AlertTopic
from infra.constructs.anomalies import Anomalies
from infra.constructs.attribution import Attribution
from infra.constructs.billing_api import BillingApi
from infra.constructs.billing_jobs import BillingJobs
from infra.constructs.budgets import Budgets
from infra.constructs.cost_reports import CostReports
from infra.constructs.deploy_setup import DeploySetup
from infra.constructs.layers import SharedLayers
from infra.constructs.monitoring import Monitoring
from infra.constructs.savings import Savings


class FinOpsGuardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                f"FinOps Guard ({config.stage}): weekly AWS cost reports, budget and cost anomaly alerts, "
                "cost attribution and chargeback, Stripe billing ledger and billing operations"
            ),
        )
        self.config = config
        self.ops = AlertTopic(
            self,
            "Ops",
            stage=config.stage,
            name="ops-alarms",
            display_name=f"FinOps Guard {config.stage} alarms",
            purpose="ops alarm",
            email=config.ops_alarm_email,
            https_endpoints=config.ops_alarm_https_endpoints,
            allow_cloudwatch_alarms=True,
        )
        self.finance_alerts = AlertTopic(
            self,
            "FinanceAlerts",
            stage=config.stage,
            name="finance-alerts",
            display_name=f"FinOps Guard {config.stage} budget alerts",
            purpose="finance (budget) alert",
            email=config.finance_alert_email,
        )
        self.layers = SharedLayers(self, "Layers", stage=config.stage)
        # Adopts what the account may already have (services anomaly monitor, API Gateway logs role).
        self.setup = DeploySetup(
            self, "DeploySetup", stage=config.stage, layers=self.layers, tags=resource_tags(config)
        )
        self.cost_reports = CostReports(
            self, "CostReports", config=config, layers=self.layers, alarm_topic=self.ops.topic
        )
        self.budgets = Budgets(
            self,
            "Budgets",
            config=config,
            layers=self.layers,
            alarm_topic=self.ops.topic,
            finance_alerts=self.finance_alerts,
            webhook_secrets=self.cost_reports.webhook_secrets,
            outbox_table=self.cost_reports.outbox_table,
        )
        self.budgets.allow_budget_reads(self.cost_reports.weekly_report)
        self.anomalies = Anomalies(
            self,
            "Anomalies",
            config=config,
            layers=self.layers,
            alarm_topic=self.ops.topic,
            webhook_secrets=self.cost_reports.webhook_secrets,
            outbox_table=self.cost_reports.outbox_table,
            setup=self.setup,
        )
        if self.anomalies.monitor_since is not None:
            # The weekly card says anomaly detection is still learning during the monitor's first days.
            self.cost_reports.function.add_environment(
                "FINOPSGUARD_ANOMALY_MONITOR_SINCE", self.anomalies.monitor_since
            )
        self.attribution = Attribution(
            self,
            "Attribution",
            config=config,
            layers=self.layers,
            alarm_topic=self.ops.topic,
            webhook_secrets=self.cost_reports.webhook_secrets,
            outbox_table=self.cost_reports.outbox_table,
        )
        for poster in (self.cost_reports.weekly_report, self.budgets.budget_guard, self.anomalies.anomaly_alerts):
            self.attribution.allow_team_routing(poster)
        self.savings = self._add_savings()
        self.billing = BillingApi(
            self,
            "BillingApi",
            config=config,
            layers=self.layers,
            alarm_topic=self.ops.topic,
            outbox_table=self.cost_reports.outbox_table,
            setup=self.setup,
        )
        self.billing_jobs = BillingJobs(
            self,
            "BillingJobs",
            config=config,
            layers=self.layers,
            alarm_topic=self.ops.topic,
            billing=self.billing,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            cost_reports=self.cost_reports,
            budgets=self.budgets,
            anomalies=self.anomalies,
            attribution=self.attribution,
            savings=self.savings,
            billing=self.billing,
            billing_jobs=self.billing_jobs,
            setup=self.setup,
        )
        self._add_outputs()
        self._add_tags()

    def _add_savings(self) -> Savings:
        # The recommendations table always; the refresh (and the card's reads) with savingsRecommendations.
        savings = Savings(self, "Savings", config=self.config, layers=self.layers, alarm_topic=self.ops.topic)
        if savings.refresh is not None:
            # The refresh assigns each recommendation to a team (tag or routed account); it posts nothing.
            self.attribution.allow_team_assignment(savings.refresh)
        savings.allow_recommendation_reads(self.cost_reports.weekly_report)
        return savings

    def _add_outputs(self) -> None:
        reports, budgets = self.cost_reports, self.budgets
        CfnOutput(self, "TeamsSecretName", value=reports.webhook_secrets.teams_name)
        if reports.webhook_secrets.slack_name is not None:
            CfnOutput(self, "SlackSecretName", value=reports.webhook_secrets.slack_name)
        CfnOutput(self, "OutboxTableName", value=reports.outbox_table.table_name)
        CfnOutput(self, "WeeklyReportFunctionName", value=reports.function.function_name)
        CfnOutput(self, "OpsTopicArn", value=self.ops.topic.topic_arn)
        CfnOutput(self, "BudgetsTableName", value=budgets.budgets_table.table_name)
        CfnOutput(self, "BudgetAlertsTableName", value=budgets.budget_alerts_table.table_name)
        CfnOutput(self, "BudgetGuardFunctionName", value=budgets.function.function_name)
        CfnOutput(self, "FinanceTopicArn", value=self.finance_alerts.topic.topic_arn)
        anomalies = self.anomalies
        CfnOutput(self, "AnomalyTopicArn", value=anomalies.topic.topic_arn)
        CfnOutput(self, "AnomaliesTableName", value=anomalies.anomalies_table.table_name)
        CfnOutput(self, "AnomalyInboxQueueUrl", value=anomalies.inbox.queue_url)
        CfnOutput(self, "AnomalyFunctionName", value=anomalies.function.function_name)
        attribution = self.attribution
        CfnOutput(self, "TeamRoutesTableName", value=attribution.team_routes_table.table_name)
        CfnOutput(self, "ChargebackBucketName", value=attribution.chargeback_bucket.bucket_name)
        CfnOutput(self, "ChargebackFunctionName", value=attribution.function.function_name)
        savings = self.savings
        CfnOutput(self, "RecommendationsTableName", value=savings.recommendations_table.table_name)
        if savings.function is not None:
            CfnOutput(self, "SavingsRefreshFunctionName", value=savings.function.function_name)
        billing = self.billing
        CfnOutput(self, "StripeWebhookUrl", value=billing.webhook_url)
        CfnOutput(self, "StripeSecretName", value=billing.stripe_secret_name)
        CfnOutput(self, "FinanceTeamsSecretName", value=billing.finance_secrets.teams_name)
        CfnOutput(self, "LedgerTableName", value=billing.ledger_table.table_name)
        CfnOutput(self, "BillingAlertsTableName", value=billing.billing_alerts_table.table_name)
        CfnOutput(self, "DunningTableName", value=billing.dunning_table.table_name)
        jobs = self.billing_jobs
        CfnOutput(self, "StripeApiKeySecretName", value=jobs.stripe_api_key_secret_name)
        CfnOutput(self, "BillingExportBucketName", value=jobs.export_bucket.bucket_name)
        CfnOutput(self, "BillingAdminApiUrl", value=jobs.admin_api_url)

    def _add_tags(self) -> None:
        tags = Tags.of(self)
        for key, value in resource_tags(self.config).items():
            tags.add(key, value)


def resource_tags(config: FinOpsGuardConfig) -> dict[str, str]:
    """The cost allocation tags on every resource, so FinOps Guard's own cost shows under them."""
    return {
        "Project": "FinOpsGuard",
        "Environment": config.stage,
        "Owner": config.owner,
        "CostCenter": config.cost_center,
    }


def create_stack(app: App) -> FinOpsGuardStack:
    """Validate the context, build ``FinOpsGuard-<stage>`` and register the AwsSolutions checks.

    Raises ``ConfigError`` before any construct is created when the context is invalid.
    """
    config = load_config(app.node)
    stack = FinOpsGuardStack(app, f"FinOpsGuard-{config.stage}", config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack
