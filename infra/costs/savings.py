"""Savings opportunities: the recommendations table (always) and, with savingsRecommendations on, the
daily refresh.

The table exists whatever the switch says, as the team routes table does: it is retained on delete
under a fixed name, so creating it only while the switch is on would fail the deploy that turns the
switch on again (the retained table already exists), and ``finops-guard savings ...`` would have no
table while it is off. Empty and on demand, it costs nothing.

EventBridge Scheduler (daily, report time zone) -> savings refresh -> Cost Optimization Hub (every
page of ListRecommendations) -> the recommendations table (one UpdateItem per listed item and status
move; items missing upstream close as resolved-upstream) -> the ROI of implemented items (one Cost
Explorer request per item, once). It posts nothing: the weekly card reads the table.

Team assignment: the refresh reads the team routes (which team owns which accounts) but never a team
webhook secret. The operator CLI (``finops-guard savings ...``) runs with the operator's credentials.
The Savings Plans KPI (savingsPlansKpi) is the weekly report's own Cost Explorer read (cost_reports).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.layers import Layers
from infra.core.monitored_function import MonitoredFunction, MonitoredFunctionProps, function_code
from infra.core.paging import Paging
from infra.core.schedules import FunctionSchedule, add_function_schedule
from infra.core.storage import state_table
from infra.costs.cost_reports import allow_cost_and_usage_reads
from infra.costs.payer_reads import assume_payer_role, reads_payer_costs

SAVINGS_REFRESH_FUNCTION = "savings-refresh"
# Pages of 1,000 recommendations, then one UpdateItem per listed item (hundreds in a large
# organization) and a Cost Explorer request per implemented item due for ROI: seconds to a minute.
SAVINGS_REFRESH_TIMEOUT = Duration.seconds(300)
SAVINGS_REFRESH_MEMORY_MB = 256
# The Service Authorization Reference lists cost-optimization-hub:GetRecommendation as a dependent
# action of ListRecommendations (a caller may need both), and no resource types for either.
COST_OPTIMIZATION_HUB_ACTIONS = ("cost-optimization-hub:ListRecommendations", "cost-optimization-hub:GetRecommendation")


class Savings(Construct):
    """Exposes ``recommendations_table`` (always) and, with savingsRecommendations on (``refresh_enabled``),
    ``refresh`` (a monitored function, and its ``function``) and ``schedule``; these are None when off.

    ``allow_recommendation_reads(fn)`` lets a function read every stored recommendation (the weekly card)
    while the refresh keeps them; with it off it grants nothing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        # The same construct id on and off: the table's logical id never changes with the switch.
        self.recommendations_table = self._add_recommendations_table()
        self.refresh: MonitoredFunction | None = None
        self.function: lambda_.Function | None = None
        self.schedule: scheduler.Schedule | None = None
        if self.refresh_enabled:
            refresh = self._add_refresh(layers, paging)
            self._grant_refresh(refresh)
            self.refresh, self.function = refresh, refresh.function
            self.schedule = self._add_schedule(refresh)

    @property
    def refresh_enabled(self) -> bool:
        return self.config.savings_recommendations

    def allow_recommendation_reads(self, reader: MonitoredFunction) -> None:
        """Let ``reader`` list every stored recommendation: one Query of the single partition.

        Nothing with the refresh off: the weekly card's savings section is part of the opt-in.
        """
        if not self.refresh_enabled:
            return
        reader.function.add_environment("FINOPSGUARD_RECOMMENDATIONS_TABLE", self.recommendations_table.table_name)
        reader.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadRecommendations",
                actions=["dynamodb:Query"],
                resources=[self.recommendations_table.table_arn],
            )
        )

    def _add_recommendations_table(self) -> dynamodb.Table:
        # pk is always "REC" and sk the Cost Optimization Hub recommendation id: one Query lists them all.
        return state_table(
            self,
            "RecommendationsTable",
            table_name=f"finops-guard-{self.config.stage}-recommendations",
            partition_key="pk",
            sort_key="sk",
            deletion_protection=False,  # a copy of Cost Optimization Hub's, rebuilt by every daily refresh
        )

    def _add_refresh(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "SavingsRefresh",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name=SAVINGS_REFRESH_FUNCTION,
                description=(
                    "Keeps the Cost Optimization Hub recommendations in the recommendations table and measures "
                    "the ROI of implemented ones"
                ),
                code=function_code("savings_refresh"),
                timeout=SAVINGS_REFRESH_TIMEOUT,
                memory_size=SAVINGS_REFRESH_MEMORY_MB,
                environment={
                    **self.config.report_environment(),
                    "FINOPSGUARD_RECOMMENDATIONS_TABLE": self.recommendations_table.table_name,
                    **self.config.cost_metric_environment(),
                },
                layers=[layers.common, layers.report_deps],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _grant_refresh(self, refresh: MonitoredFunction) -> None:
        if reads_payer_costs(self.config):
            assume_payer_role(refresh, self.config)  # Cost Optimization Hub and Cost Explorer of the payer
        else:
            allow_cost_and_usage_reads(
                refresh,
                scoped_to="log group, failure queue, recommendations table and team routes table",
                also_unscoped=(
                    " and ".join(COST_OPTIMIZATION_HUB_ACTIONS) + " (its dependent action in the Service "
                    "Authorization Reference), read-only actions for which Cost Optimization Hub defines no "
                    "resource types, so they accept no ARNs"
                ),
            )
            refresh.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ListCostOptimizationHubRecommendations",
                    actions=list(COST_OPTIMIZATION_HUB_ACTIONS),
                    resources=["*"],  # Cost Optimization Hub has no resource-level permissions
                )
            )
        for statement in (
            # Reads are one Query of the single partition; the upsert, each status move and the ROI
            # result are (conditional) UpdateItems. Nothing is put, read singly or deleted.
            iam.PolicyStatement(
                sid="TrackRecommendations",
                actions=["dynamodb:Query", "dynamodb:UpdateItem"],
                resources=[self.recommendations_table.table_arn],
            ),
        ):
            refresh.add_to_role_policy(statement)

    def _add_schedule(self, refresh: MonitoredFunction) -> scheduler.Schedule:
        config = self.config
        return add_function_schedule(
            self,
            refresh,
            FunctionSchedule(
                construct_prefix="SavingsRefresh",
                schedule_name=f"finops-guard-{config.stage}-savings-refresh",
                purpose="the daily savings refresh",
                expression=config.savings_schedule,
                timezone=config.timezone,
                payload={"job": "savings-refresh"},
            ),
        )
