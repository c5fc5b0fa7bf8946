"""Reports at every cadence (issue 22): the daily digest and the month-close report, on the functions
that already run at those cadences. They add no function, schedule, alarm, table or bucket, so
nothing to their fixed cost: only settings and grants.

- **Daily digest** (``dailyDigest``): the budget guard, after its budgets, posts a digest of its day
  from the pages it read (no Cost Explorer request), with the anomalies opened that day: a Scan of the
  anomalies table (a few hundred items at most).
- **Month-close report** (``monthCloseReport``): the chargeback on the 1st posts the month it billed
  (reading the budgets and, with savings on, the recommendations; keeping its state under the
  ``#month-close`` partition of the budget alerts table, and no other); the budget guard posts the
  final report once Cost Explorer stops marking the month estimated, archiving it beside the
  chargeback's CSVs (``chargeback/<YYYY-MM>/month-close.csv`` and ``.html`` only).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.config import FinOpsGuardConfig
from infra.costs.anomalies import Anomalies
from infra.costs.attribution import Attribution
from infra.costs.budgets import Budgets
from infra.costs.savings import Savings

MONTH_CLOSE_PARTITION = "#month-close"  # finops_guard/costs/adapters/month_close_store.py
MONTH_CLOSE_OBJECTS = "chargeback/*/month-close.*"


def add_report_cadence(
    config: FinOpsGuardConfig, *, budgets: Budgets, attribution: Attribution, anomalies: Anomalies, savings: Savings
) -> None:
    reports = config.reports
    guard = budgets.budget_guard
    for name, value in reports.guard_environment().items():
        guard.function.add_environment(name, value)
    if reports.daily_digest:
        guard.function.add_environment("FINOPSGUARD_ANOMALIES_TABLE", anomalies.anomalies_table.table_name)
        guard.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadAnomaliesOpened",
                actions=["dynamodb:Scan"],
                resources=[anomalies.anomalies_table.table_arn],
            )
        )
    if not reports.month_close_report:
        return
    _month_close_on_chargeback(config, budgets, attribution, savings)
    _month_close_on_guard(config, budgets, attribution, savings)


def _month_close_on_chargeback(
    config: FinOpsGuardConfig, budgets: Budgets, attribution: Attribution, savings: Savings
) -> None:
    """The chargeback's grant for its archive (chargeback/*) already covers month-close.csv and .html."""
    chargeback = attribution.chargeback
    for name, value in {
        **config.reports.month_close_environment(),
        "FINOPSGUARD_FORECAST_INTERVAL": config.forecast_interval,
    }.items():
        chargeback.function.add_environment(name, value)
    budgets.allow_budget_reads(chargeback)  # the budgets, and BatchGetItem of the alerts table
    savings.allow_recommendation_reads(chargeback)
    chargeback.add_to_role_policy(
        iam.PolicyStatement(
            sid="KeepMonthCloseState",
            actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
            resources=[budgets.budget_alerts_table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [MONTH_CLOSE_PARTITION]}},
        )
    )


def _month_close_on_guard(
    config: FinOpsGuardConfig, budgets: Budgets, attribution: Attribution, savings: Savings
) -> None:
    """The guard already keeps its alerts in the budget alerts table (Put, Update, BatchGet): the
    month-close state needs no more there. It may write the month-close files and nothing else."""
    guard, bucket = budgets.budget_guard, attribution.chargeback_bucket
    guard.function.add_environment("FINOPSGUARD_CHARGEBACK_BUCKET", bucket.bucket_name)
    guard.function.add_environment(
        "FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES", str(config.chargeback_link_expiry_minutes)
    )
    savings.allow_recommendation_reads(guard)
    guard.add_to_role_policy(
        iam.PolicyStatement(
            sid="PublishMonthClose",
            actions=["s3:PutObject", "s3:GetObjectVersion"],
            resources=[bucket.arn_for_objects(MONTH_CLOSE_OBJECTS)],
        )
    )
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    bucket_id = Stack.of(guard).get_logical_id(cfn_bucket)
    Validations.of(guard.role.node.find_child("DefaultPolicy")).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{MONTH_CLOSE_OBJECTS}]",
            reason=(
                "The budget guard writes the final month-close report as chargeback/<YYYY-MM>/month-close.csv and "
                "month-close.html, the month known only at run time, so the month part of the key is a wildcard. "
                "It allows only s3:PutObject and s3:GetObjectVersion (the pre-signed link of the version just "
                "written), on those two file names in this stack's chargeback bucket; the guard cannot touch the "
                "chargeback CSVs, list or delete anything."
            ),
        )
    )
