"""The weekly cost report: the function and its schedule (it posts through the core's secrets and outbox)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.layers import Layers
from infra.core.monitored_function import MonitoredFunction, MonitoredFunctionProps, function_code
from infra.core.paging import Paging
from infra.core.schedules import FunctionSchedule, add_function_schedule
from infra.core.secrets import WebhookSecrets
from infra.core.storage import use_outbox_statement
from infra.costs.payer_reads import assume_payer_role, reads_payer_costs

REPORT_TIMEOUT = Duration.seconds(120)
REPORT_MEMORY_MB = 256
# The weekly card's commitment KPI (savingsPlansKpi): two Cost Explorer requests a week, USD 0.01 each.
SAVINGS_PLANS_KPI_ACTIONS = ("ce:GetSavingsPlansCoverage", "ce:GetSavingsPlansUtilization")
# The weekly card's Setup section: is a `tag:` attribution dimension that attributes nothing activated?
# One request (USD 0.01), only in that state.
TAG_STATUS_ACTION = "ce:ListCostAllocationTags"
# Without a `breakdown` in context: does Cost Explorer see an organisation (LINKED_ACCOUNT) or a single
# account (REGION)? Free, once per warm container; sts:GetCallerIdentity needs no permission. Not asked
# (nor granted) when reading the payer's costs: the payer is the organisation's management account.
ORGANISATION_CHECK_ACTION = "organizations:DescribeOrganization"


def allow_cost_and_usage_reads(reader: MonitoredFunction, *, scoped_to: str, also_unscoped: str | None = None) -> None:
    """Let ``reader`` call ce:GetCostAndUsage and acknowledge the '*' resource it must use.

    One acknowledgment covers every Resource '*' of the reader's policy, so a reader with other
    unscoped statements names them and why in ``also_unscoped`` (e.g. "x:Y, which ...").
    """
    reader.add_to_role_policy(
        iam.PolicyStatement(
            sid="ReadCostAndUsage",
            actions=["ce:GetCostAndUsage"],
            resources=["*"],  # Cost Explorer has no resource-level permissions
        )
    )
    no_arns = "Cost Explorer has no resource-level permissions (its actions accept no ARNs)"
    unscoped = (
        f"Only ce:GetCostAndUsage uses Resource '*': {no_arns}."
        if also_unscoped is None
        else f"Resource '*' is used only by ce:GetCostAndUsage, as {no_arns}, and by {also_unscoped}."
    )
    Validations.of(reader.role.node.find_child("DefaultPolicy")).acknowledge(
        Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason=f"{unscoped} Every other statement of this policy is scoped to this stack's {scoped_to}.",
        )
    )


class CostReports(Construct):
    """Exposes ``weekly_report`` (its ``function``) and ``schedule``; ``webhook_secrets`` and
    ``outbox_table`` are the core's, which every posting function shares."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        webhook_secrets: WebhookSecrets,
        outbox_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.webhook_secrets = webhook_secrets
        self.outbox_table = outbox_table
        self.weekly_report = self._add_weekly_report(layers, paging)
        self.function = self.weekly_report.function
        self._grant_weekly_report()
        self.schedule = self._add_schedule()

    def _environment(self) -> dict[str, str]:
        config = self.config
        environment = {
            **config.report_environment(),
            "FINOPSGUARD_TOP_N": str(config.top_n),
            **self.webhook_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
            **config.cost_metric_environment(),
            **config.breakdown_environment(),
        }
        if config.monthly_budget is not None:
            environment["FINOPSGUARD_MONTHLY_BUDGET"] = config.monthly_budget
        if config.savings_plans_kpi:
            environment["FINOPSGUARD_SAVINGS_PLANS_KPI"] = "true"
        return environment

    def _add_weekly_report(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "WeeklyReport",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name="weekly-report",
                description="Posts the weekly AWS cost report to the team chat",
                code=function_code("weekly_report"),
                timeout=REPORT_TIMEOUT,
                memory_size=REPORT_MEMORY_MB,
                environment=self._environment(),
                layers=[layers.common, layers.report_deps],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _grant_weekly_report(self) -> None:
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        if reads_payer_costs(self.config):
            assume_payer_role(self.weekly_report, self.config)
        else:
            self._grant_cost_explorer_reads()
        for statement in (
            self.webhook_secrets.read_statement(),
            use_outbox_statement(self.outbox_table),
        ):
            self.weekly_report.add_to_role_policy(statement)

    def _grant_cost_explorer_reads(self) -> None:
        kpi = self.config.savings_plans_kpi
        tags = any(spec.startswith("tag:") for spec in self.config.attribution_dimensions)
        unscoped = []
        if kpi:
            unscoped.append(
                f"{' and '.join(SAVINGS_PLANS_KPI_ACTIONS)} (the weekly card's Savings Plans KPI, two requests a week)"
            )
        if tags:
            unscoped.append(
                f"{TAG_STATUS_ACTION} (whether an attribution tag is active, asked only when it attributes nothing)"
            )
        organisation_check = self.config.breakdown is None
        if organisation_check:
            unscoped.append(
                f"{ORGANISATION_CHECK_ACTION} (whether Cost Explorer sees an organisation, which picks the card's "
                "breakdown; read-only, and Organizations has no resource-level permission for it)"
            )
        allow_cost_and_usage_reads(
            self.weekly_report,
            scoped_to=(
                "log group, failure queue, webhook secrets, outbox, budget, team routes and recommendations tables, "
                "and the team webhooks secret"
            ),
            also_unscoped=(
                f"{' and by '.join(unscoped)}, read-only actions without resource-level permissions too"
                if unscoped
                else None
            ),
        )
        if kpi:
            self.weekly_report.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadSavingsPlansKpi",
                    actions=list(SAVINGS_PLANS_KPI_ACTIONS),
                    resources=["*"],  # Cost Explorer has no resource-level permissions
                )
            )
        if tags:
            self.weekly_report.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadCostAllocationTagStatus",
                    actions=[TAG_STATUS_ACTION],
                    resources=["*"],  # Cost Explorer has no resource-level permissions
                )
            )
        if organisation_check:
            self.weekly_report.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadOrganisationShape",
                    actions=[ORGANISATION_CHECK_ACTION],
                    resources=["*"],  # DescribeOrganization takes no resource ARN
                )
            )

    def _add_schedule(self) -> scheduler.Schedule:
        return add_function_schedule(
            self,
            self.weekly_report,
            FunctionSchedule(
                construct_prefix="WeeklyReport",
                schedule_name=f"finops-guard-{self.config.stage}-weekly-report",
                purpose="the weekly cost report",
                expression=self.config.report_schedule,
                timezone=self.config.timezone,
                payload={"report": "weekly"},
            ),
        )
