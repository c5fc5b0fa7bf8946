"""The cost product's service level: the weekly report deadline alarm, and its opt-in dashboard.

The other cost alarms live with what they watch (the anomaly forwarding latency in anomalies.py);
function failures and chat delivery page through the core (infra/core/paging.py).
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.dashboard import (
    DAY,
    HOUR,
    WEEK,
    add_dashboard,
    alarm_status_widget,
    chat_delivery_widget,
    function_health,
    function_metric,
    search_metric,
)
from infra.core.deploy_setup import DeploySetup
from infra.core.monitored_function import METRICS_NAMESPACE
from infra.costs.anomalies import FORWARDING_SLO_SECONDS, Anomalies
from infra.costs.attribution import Attribution
from infra.costs.budgets import Budgets
from infra.costs.cost_reports import CostReports
from infra.costs.savings import Savings

# The weekly report deadline. CloudWatch caps an alarm's range (period x evaluation periods) at 7 days,
# and at 1 day for periods under an hour, so "no report in 8 daily periods" (a week plus a day of grace)
# cannot be deployed. A sliding 7-day window would page every week in the minutes between the 7-day mark
# and the next post. Instead: 7 complete calendar days in the report's time zone (a wall-clock window),
# which always hold exactly one of the weekly scheduled days (a report scheduled more often only helps).
# It is evaluated after each midnight, so the report has until the end of its scheduled day (the grace)
# and the alarm fires at the next midnight.
REPORT_DEADLINE_DAYS = 7


class CostsMonitoring(Construct):
    """Exposes ``alarms`` (the report deadline) and ``dashboard`` (None unless ``dashboard: true``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        cost_reports: CostReports,
        budgets: Budgets,
        anomalies: Anomalies,
        attribution: Attribution,
        savings: Savings,
        setup: DeploySetup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.setup = setup
        self.weekly_report = cost_reports.weekly_report
        self.budget_guard = budgets.budget_guard
        self.anomaly_alerts = anomalies.anomaly_alerts
        self.functions = [
            cost_reports.weekly_report,
            budgets.budget_guard,
            anomalies.anomaly_alerts,
            attribution.chargeback,
            *([savings.refresh] if savings.refresh is not None else []),  # savingsRecommendations
        ]
        self.alarms = [self._add_report_deadline_alarm()]
        self.dashboard = self._add_dashboard() if config.dashboard else None

    def _add_report_deadline_alarm(self) -> cloudwatch.Alarm:
        config, report = self.config, self.weekly_report
        alarm = report.add_alarm(
            "NotPosted",
            function_metric(report, "WeeklyReportPosted", statistic="Sum", period=DAY),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=REPORT_DEADLINE_DAYS,
            # A day without a post has no data point at all: that is the failure this alarm exists for.
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"No weekly cost report was posted in the last {REPORT_DEADLINE_DAYS} complete days "
                f"({config.timezone}), so the scheduled run ({config.report_schedule}) did not post by the end "
                f"of its day. First: check the FinOpsGuard-{config.stage}-Failures alarm (finops-guard dlq list) and "
                f"that the EventBridge Scheduler schedule finops-guard-{config.stage}-weekly-report is ENABLED, open "
                "the log group "
                f"{report.log_group.log_group_name} in CloudWatch Logs Insights and read the ERROR lines, fix "
                f"the cause, then post it: aws lambda invoke --function-name {report.function_name} "
                '--cli-binary-format raw-in-base64-out --payload \'{"report": "weekly"}\' out.json. '
                "The alarm clears at the next midnight. A new stage counts its deploy as the first week's "
                "post, so it pages only when the first scheduled day passes without a report. If the log "
                "says a channel is not set up (ChatNotConfigured), put its webhook URL with the "
                "put-secret-value command the WARNING line gives, then run finops-guard report resend."
            ),
        )
        # Without it a new stage's alarm would start in ALARM: a week with no post yet is breaching.
        grace = self.setup.report_grace(
            self,
            "WeeklyReportGrace",
            namespace=METRICS_NAMESPACE,
            metric_name="WeeklyReportPosted",
            dimensions={"service": report.short_name},
            timezone=config.timezone,  # the alarm's wall-clock days
        )
        alarm.node.add_dependency(grace)
        cfn_alarm = alarm.node.default_child
        assert isinstance(cfn_alarm, cloudwatch.CfnAlarm)
        cfn_alarm.evaluation_window = cloudwatch.CfnAlarm.EvaluationWindowProperty(
            wall_clock_window=cloudwatch.CfnAlarm.WallClockWindowProperty(timezone=config.timezone)
        )
        return alarm

    # --- dashboard ------------------------------------------------------------------------------

    def _add_dashboard(self) -> cloudwatch.Dashboard:
        stage = self.config.stage
        return add_dashboard(
            self,
            stage=stage,
            product="Costs",
            sections=(
                ("FinOps KPIs", self._kpi_widgets()),
                (
                    f"Alarms (each pages finops-guard-{stage}-ops-alarms; runbook: README, Operations)",
                    [
                        alarm_status_widget(
                            self, stage, [alarm for function in self.functions for alarm in function.alarms]
                        )
                    ],
                ),
                ("Service levels", self._service_level_widgets()),
                ("Health: functions", [function_health(function) for function in self.functions]),
            ),
        )

    def _kpi_widgets(self) -> list[cloudwatch.IWidget]:
        currency = self.config.currency
        report = self.weekly_report
        month_to_date = function_metric(
            report, "MonthToDateSpend", statistic="Maximum", period=DAY, label=f"Month-to-date spend ({currency})"
        )
        forecast = function_metric(
            report, "ForecastMonthEnd", statistic="Maximum", period=DAY, label=f"Month-end forecast ({currency})"
        )
        anomalies_week = function_metric(
            self.anomaly_alerts, "AnomaliesAlerted", statistic="Sum", period=WEEK, label="Anomalies alerted (7 days)"
        )
        return [
            cloudwatch.SingleValueWidget(
                title="AWS spend this month", metrics=[month_to_date, forecast, anomalies_week], width=8, height=6
            ),
            cloudwatch.GraphWidget(
                title=f"Month-to-date spend and month-end forecast ({currency}, weekly report)",
                left=[month_to_date, forecast],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=16,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Budget consumption (% of each budget, daily budget guard)",
                left=[search_metric("BudgetConsumptionPercent", self.budget_guard.short_name, "budget", "Budget")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=100, label="Budget")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=24,
                height=6,
            ),
        ]

    def _service_level_widgets(self) -> list[cloudwatch.IWidget]:
        report = self.weekly_report
        return [
            cloudwatch.GraphWidget(
                title="Weekly reports posted (per day)",
                left=[function_metric(report, "WeeklyReportPosted", statistic="Sum", period=DAY, label="Posted")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Cost anomaly forwarding latency (s)",
                left=[
                    function_metric(
                        self.anomaly_alerts, "AnomalyForwardingLatency", statistic=stat, period=HOUR, label=label
                    )
                    for stat, label in (("p99", "p99"), ("Maximum", "Maximum"))
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=FORWARDING_SLO_SECONDS, label="SLO")],
                width=8,
                height=6,
            ),
            chat_delivery_widget(self.config.stage),
        ]
