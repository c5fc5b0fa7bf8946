"""The costs stack ``FinOpsGuard-<stage>-Costs``: the weekly and team cards, budgets and the budget
guard, cost anomaly alerts, attribution and chargeback, savings recommendations.

It holds no billing resource: deploy it with the core (``npx cdk deploy FinOpsGuard-<stage>-Costs``
deploys the core first) and never create anything for Stripe.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.alerts import AlertTopic
from infra.core.deploy_setup import DeploySetup
from infra.core.layers import Layers, layers_fingerprint
from infra.core.paging import Paging
from infra.core.stack import import_core
from infra.costs.anomalies import Anomalies
from infra.costs.attribution import Attribution
from infra.costs.budgets import Budgets
from infra.costs.cost_reports import CostReports
from infra.costs.monitoring import CostsMonitoring
from infra.costs.payer_reads import allow_payer_anomaly_events, reads_payer_costs
from infra.costs.report_cadence import add_report_cadence
from infra.costs.savings import Savings


class CostsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig, tags: dict[str, str]) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                f"FinOps Guard ({config.stage}) costs: weekly AWS cost reports, budget and cost anomaly alerts, "
                "cost attribution and chargeback, savings recommendations"
            ),
        )
        self.config = config
        core = self.core = import_core(self, config)
        layers, paging, secrets, outbox = core.layers, core.paging, core.webhook_secrets, core.outbox_table
        # Adopts what the account may already have (the AWS-services anomaly monitor) and gives the new
        # stage's report deadline alarm its grace.
        self.setup = DeploySetup(
            self, "CostsSetup", stage=config.stage, product="costs", layers=core.layers, paging=core.paging, tags=tags
        )
        self.finance_alerts = AlertTopic(
            self,
            "FinanceAlerts",
            stage=config.stage,
            name="finance-alerts",
            display_name=f"FinOps Guard {config.stage} budget alerts",
            purpose="finance (budget) alert",
            email=config.finance_alert_email,
            encryption="aws-managed",  # only the budget guard's role publishes
        )
        self.cost_reports = CostReports(
            self,
            "CostReports",
            config=config,
            layers=layers,
            paging=paging,
            webhook_secrets=secrets,
            outbox_table=outbox,
        )
        self.budgets = Budgets(
            self,
            "Budgets",
            config=config,
            layers=layers,
            paging=paging,
            finance_alerts=self.finance_alerts,
            webhook_secrets=secrets,
            outbox_table=outbox,
        )
        self.budgets.allow_budget_reads(self.cost_reports.weekly_report)
        self.anomalies = Anomalies(
            self,
            "Anomalies",
            config=config,
            layers=layers,
            paging=paging,
            webhook_secrets=secrets,
            outbox_table=outbox,
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
            layers=layers,
            paging=paging,
            webhook_secrets=secrets,
            outbox_table=outbox,
        )
        for poster in (self.cost_reports.weekly_report, self.budgets.budget_guard, self.anomalies.anomaly_alerts):
            self.attribution.allow_team_routing(poster)
        if reads_payer_costs(config):
            # The payer's anomaly events, forwarded by its PayerAccess stack, join this account's on the
            # default bus, where the anomaly rule sends them to the inbox.
            self.payer_anomaly_events = allow_payer_anomaly_events(self.anomalies, config)
        self.savings = self._add_savings(layers, paging)
        add_report_cadence(
            config, budgets=self.budgets, attribution=self.attribution, anomalies=self.anomalies, savings=self.savings
        )
        self.monitoring = CostsMonitoring(
            self,
            "CostsMonitoring",
            config=config,
            cost_reports=self.cost_reports,
            budgets=self.budgets,
            anomalies=self.anomalies,
            attribution=self.attribution,
            savings=self.savings,
            setup=self.setup,
        )
        self._add_outputs()

    def _add_savings(self, layers: Layers, paging: Paging) -> Savings:
        # The recommendations table always; the refresh (and the card's reads) with savingsRecommendations.
        savings = Savings(self, "Savings", config=self.config, layers=layers, paging=paging)
        if savings.refresh is not None:
            # The refresh assigns each recommendation to a team (tag or routed account); it posts nothing.
            self.attribution.allow_team_assignment(savings.refresh)
        savings.allow_recommendation_reads(self.cost_reports.weekly_report)
        return savings

    def _add_outputs(self) -> None:
        # A new core layer changes this template, so the deploy re-reads the layer parameters.
        CfnOutput(self, "CoreLayersFingerprint", value=layers_fingerprint())
        reports, budgets, anomalies = self.cost_reports, self.budgets, self.anomalies
        CfnOutput(self, "WeeklyReportFunctionName", value=reports.function.function_name)
        CfnOutput(self, "BudgetsTableName", value=budgets.budgets_table.table_name)
        CfnOutput(self, "BudgetAlertsTableName", value=budgets.budget_alerts_table.table_name)
        CfnOutput(self, "BudgetGuardFunctionName", value=budgets.function.function_name)
        CfnOutput(self, "FinanceTopicArn", value=self.finance_alerts.topic.topic_arn)
        CfnOutput(self, "AnomalyTopicArn", value=anomalies.topic.topic_arn)
        CfnOutput(self, "AnomaliesTableName", value=anomalies.anomalies_table.table_name)
        CfnOutput(self, "AnomalyInboxQueueUrl", value=anomalies.inbox.queue_url)
        CfnOutput(self, "AnomalyFunctionName", value=anomalies.function.function_name)
        attribution = self.attribution
        CfnOutput(self, "TeamRoutesTableName", value=attribution.team_routes_table.table_name)
        if attribution.team_webhooks is not None:
            CfnOutput(self, "TeamWebhooksSecretName", value=attribution.team_webhooks_secret_name)
        CfnOutput(self, "ChargebackBucketName", value=attribution.chargeback_bucket.bucket_name)
        CfnOutput(self, "ChargebackFunctionName", value=attribution.function.function_name)
        savings = self.savings
        CfnOutput(self, "RecommendationsTableName", value=savings.recommendations_table.table_name)
        if savings.function is not None:
            CfnOutput(self, "SavingsRefreshFunctionName", value=savings.function.function_name)
