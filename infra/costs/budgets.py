"""Budgets: the budget and alert tables, the daily budget guard and the finance alert wiring."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.alerts import AlertTopic
from infra.core.layers import Layers
from infra.core.monitored_function import MonitoredFunction, MonitoredFunctionProps, function_code
from infra.core.paging import Paging
from infra.core.schedules import FunctionSchedule, add_function_schedule
from infra.core.secrets import WebhookSecrets
from infra.core.storage import state_table, use_outbox_statement
from infra.costs.cost_reports import allow_cost_and_usage_reads
from infra.costs.payer_reads import assume_payer_role, reads_payer_costs

GUARD_TIMEOUT = Duration.seconds(300)
GUARD_MEMORY_MB = 512
EVENT_BUS_NAME = "default"


class Budgets(Construct):
    """Exposes ``budgets_table``, ``budget_alerts_table``, ``budget_guard`` (its ``function``) and ``schedule``.

    The guard reads month-to-date costs, evaluates every budget, records which alerts it sent (so each
    fires once per period), mails the finance topic, posts to chat through the shared outbox and
    puts a budget event on the default event bus.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        finance_alerts: AlertTopic,
        webhook_secrets: WebhookSecrets,
        outbox_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.finance_alerts = finance_alerts
        self.webhook_secrets = webhook_secrets
        self.outbox_table = outbox_table
        # The budgets are configuration, applied again from budgets.yaml; the alert history (kept 400
        # days, what makes each threshold fire once a period) exists nowhere else.
        self.budgets_table = self._add_table(
            "BudgetsTable", "budgets", partition_key="pk", sort_key="budget_id", deletion_protection=False
        )
        self.budget_alerts_table = self._add_table(
            "BudgetAlertsTable",
            "budget-alerts",
            partition_key="budget_id",
            sort_key="alert_key",
            ttl="expires_at",
            deletion_protection=True,
        )
        self.budget_guard = self._add_budget_guard(layers, paging)
        self.function = self.budget_guard.function
        self._grant_budget_guard()
        self.schedule = self._add_schedule()

    def allow_budget_reads(self, reader: MonitoredFunction) -> None:
        """Let another function show budgets and their alert state (the weekly report's budget card)."""
        reader.function.add_environment("FINOPSGUARD_BUDGETS_TABLE", self.budgets_table.table_name)
        reader.function.add_environment("FINOPSGUARD_BUDGET_ALERTS_TABLE", self.budget_alerts_table.table_name)
        reader.add_to_role_policy(self._read_budgets_statement())
        reader.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadBudgetAlerts",
                actions=["dynamodb:BatchGetItem"],
                resources=[self.budget_alerts_table.table_arn],
            )
        )

    def _add_table(
        self,
        construct_id: str,
        name: str,
        *,
        partition_key: str,
        sort_key: str,
        deletion_protection: bool,
        ttl: str | None = None,
    ) -> dynamodb.Table:
        return state_table(
            self,
            construct_id,
            table_name=f"finops-guard-{self.config.stage}-{name}",
            partition_key=partition_key,
            sort_key=sort_key,
            ttl_attribute=ttl,
            deletion_protection=deletion_protection,
        )

    def _environment(self) -> dict[str, str]:
        config = self.config
        return {
            **config.report_environment(),
            **self.webhook_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
            "FINOPSGUARD_BUDGETS_TABLE": self.budgets_table.table_name,
            "FINOPSGUARD_BUDGET_ALERTS_TABLE": self.budget_alerts_table.table_name,
            "FINOPSGUARD_ALERT_TOPIC_ARN": self.finance_alerts.topic.topic_arn,
            "FINOPSGUARD_EVENT_BUS_NAME": EVENT_BUS_NAME,
            "FINOPSGUARD_FORECAST_INTERVAL": config.forecast_interval,
            **config.cost_metric_environment(),
        }

    def _add_budget_guard(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "BudgetGuard",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name="budget-guard",
                description="Checks spend and forecast against every budget and sends threshold alerts",
                code=function_code("budget_guard"),
                timeout=GUARD_TIMEOUT,
                memory_size=GUARD_MEMORY_MB,
                environment=self._environment(),
                layers=[layers.common, layers.report_deps],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _read_budgets_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="ReadBudgets",
            actions=["dynamodb:Query"],
            resources=[self.budgets_table.table_arn],
        )

    def _grant_budget_guard(self) -> None:
        guard = self.budget_guard
        if reads_payer_costs(self.config):
            assume_payer_role(guard, self.config)
        else:
            allow_cost_and_usage_reads(
                guard,
                scoped_to=(
                    "log group, failure queue, webhook secrets, budget, alert, outbox and team routes tables, "
                    "finance topic, the default event bus, and the team webhooks secret"
                ),
            )
        default_bus_arn = Stack.of(self).format_arn(
            service="events", resource="event-bus", resource_name=EVENT_BUS_NAME
        )
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        for statement in (
            self.webhook_secrets.read_statement(),
            self._read_budgets_statement(),
            # Each alert is recorded once per budget, threshold and period (conditional put) and
            # cleared when a budget is deleted; BatchGetItem reads the state of all thresholds at once.
            iam.PolicyStatement(
                sid="TrackBudgetAlerts",
                actions=[
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                ],
                resources=[self.budget_alerts_table.table_arn],
            ),
            use_outbox_statement(self.outbox_table),
            *self.finance_alerts.publish_statements("FinanceAlerts"),
            iam.PolicyStatement(
                sid="PutBudgetEvents",
                actions=["events:PutEvents"],
                resources=[default_bus_arn],
            ),
        ):
            guard.add_to_role_policy(statement)

    def _add_schedule(self) -> scheduler.Schedule:
        return add_function_schedule(
            self,
            self.budget_guard,
            FunctionSchedule(
                construct_prefix="BudgetGuard",
                schedule_name=f"finops-guard-{self.config.stage}-budget-guard",
                purpose="the budget guard",
                expression=self.config.budget_schedule,
                timezone=self.config.timezone,
                payload={"job": "budget-guard"},
            ),
        )
