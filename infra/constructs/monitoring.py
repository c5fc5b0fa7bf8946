"""Operations: the service-level alarms that page the ops topic on top of each function's standard four,
and the ``FinOpsGuard-<stage>`` CloudWatch dashboard (FinOps KPIs, alarms, service levels, health).

Hand-written alarms and widgets, not cdk-monitoring-constructs, because:
- the paging alarms already exist (MonitoredFunction's four, the API, anomaly, invoice and dunning
  alarms), each with a runbook description ("First: ...") and exact-property tests; the library would
  add a second naming scheme and its own generic descriptions beside them, or serve the dashboard only;
- its defaults (periods, statistics, thresholds, missing-data handling, names) are not ours, which are
  exact: Errors >= 1 in 5 minutes, Duration > 80 % of the timeout, 10 signature failures in 5 minutes,
  the weekly report on a wall-clock window (an evaluation window it does not expose); every one would
  be an override;
- the FinOps half of the dashboard is SEARCH over the budget and currency dimensions and the invoice
  SLO ratio, custom metric math it has no facade for;
- it is one more jsii package pinned to an aws-cdk-lib range, so every CDK upgrade would wait for it,
  for what is a dozen lines of widgets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.constructs.anomalies import FORWARDING_SLO_SECONDS, Anomalies
from infra.constructs.attribution import Attribution
from infra.constructs.billing_api import BillingApi
from infra.constructs.billing_jobs import INVOICE_SLO_PERCENT, BillingJobs
from infra.constructs.budgets import Budgets
from infra.constructs.cost_reports import CostReports
from infra.constructs.deploy_setup import DeploySetup
from infra.constructs.monitored_function import METRICS_NAMESPACE, MonitoredFunction
from infra.constructs.savings import Savings
from infra.constructs.secrets import WebhookSecrets

DAY = Duration.days(1)
HOUR = Duration.hours(1)
WEEK = Duration.days(7)
# Two weekly reports, fourteen budget-guard and reconciliation runs: every KPI has data when it opens.
DASHBOARD_RANGE = Duration.days(14)
# The weekly report deadline. CloudWatch caps an alarm's range (period x evaluation periods) at 7 days,
# and at 1 day for periods under an hour, so "no report in 8 daily periods" (a week plus a day of grace)
# cannot be deployed. A sliding 7-day window would page every week in the minutes between the 7-day mark
# and the next post. Instead: 7 complete calendar days in the report's time zone (a wall-clock window),
# which always hold exactly one of the weekly scheduled days (a report scheduled more often only helps).
# It is evaluated after each midnight, so the report has until the end of its scheduled day (the grace)
# and the alarm fires at the next midnight.
REPORT_DEADLINE_DAYS = 7
# The webhook counts a bot invoice in InvoicesConfirmedWithin5Min when Stripe confirmed it within 300 s.
INVOICE_SLO_SECONDS = 300


@dataclass(frozen=True)
class ChatPoster:
    """A function that posts to chat, the channel it posts to and that channel's webhook secrets."""

    function: MonitoredFunction
    channel: str
    secrets: WebhookSecrets


class Monitoring(Construct):
    """Exposes ``alarms`` (the service-level alarms added here, each owned by its function) and ``dashboard``."""

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
        billing: BillingApi,
        billing_jobs: BillingJobs,
        setup: DeploySetup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.setup = setup
        self.billing = billing
        self.billing_jobs = billing_jobs
        self.weekly_report = cost_reports.weekly_report
        self.budget_guard = budgets.budget_guard
        self.anomaly_alerts = anomalies.anomaly_alerts
        self.reconciliation = billing_jobs.reconciliation
        self.functions = [
            cost_reports.weekly_report,
            budgets.budget_guard,
            anomalies.anomaly_alerts,
            attribution.chargeback,
            *([savings.refresh] if savings.refresh is not None else []),  # savingsRecommendations
            billing.stripe_webhook,
            billing.billing_notifier,
            billing_jobs.dunning_sender,
            billing_jobs.reconciliation,
            billing_jobs.billing_admin,
        ]
        team, finance = cost_reports.webhook_secrets, billing.finance_secrets
        self.chat_posters = [
            ChatPoster(cost_reports.weekly_report, "team", team),
            ChatPoster(budgets.budget_guard, "team", team),
            ChatPoster(anomalies.anomaly_alerts, "team", team),
            ChatPoster(attribution.chargeback, "team", team),
            ChatPoster(billing.billing_notifier, "finance", finance),
            ChatPoster(billing_jobs.billing_admin, "finance", finance),
        ]
        self.alarms = [
            self._add_report_deadline_alarm(),
            *self._add_chat_delivery_alarms(),
            self._add_reconciliation_alarm(),
        ]
        self.dashboard = self._add_dashboard()

    # --- metrics --------------------------------------------------------------------------------

    @staticmethod
    def _metric(
        function: MonitoredFunction,
        metric_name: str,
        *,
        statistic: str,
        period: Duration,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        # Powertools Metrics adds the service name as the "service" dimension to every metric.
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": function.short_name},
            statistic=statistic,
            period=period,
            label=label,
        )

    @staticmethod
    def _search(metric_name: str, service: str, dimension: str, label: str) -> cloudwatch.MathExpression:
        """Every series of ``metric_name`` over ``dimension`` (budgets and currencies are data, not
        known at synth), one line each, labelled with the dimension's value."""
        schema = f"{{{METRICS_NAMESPACE},{dimension},service}}"
        return cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'{schema} MetricName="{metric_name}" service="{service}"\', '
                f"'Maximum', {int(DAY.to_seconds())})"
            ),
            using_metrics={},
            period=DAY,
            label=f"{label} ${{PROP('Dim.{dimension}')}}",
        )

    # --- alarms ---------------------------------------------------------------------------------

    def _add_report_deadline_alarm(self) -> cloudwatch.Alarm:
        config, report = self.config, self.weekly_report
        alarm = report.add_alarm(
            "NotPosted",
            self._metric(report, "WeeklyReportPosted", statistic="Sum", period=DAY),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=REPORT_DEADLINE_DAYS,
            # A day without a post has no data point at all: that is the failure this alarm exists for.
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"No weekly cost report was posted in the last {REPORT_DEADLINE_DAYS} complete days "
                f"({config.timezone}), so the scheduled run ({config.report_schedule}) did not post by the end "
                f"of its day. First: check the {report.alarm_prefix}-Errors and -DeadLetters alarms and that "
                f"the EventBridge Scheduler schedule finops-guard-{config.stage}-weekly-report is ENABLED, open "
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

    def _add_chat_delivery_alarms(self) -> list[cloudwatch.Alarm]:
        """One alarm per posting function, not one metric-math sum: the alarm's name says which
        function and channel failed, its description names that channel's secrets, and a math alarm
        over five metrics costs as much as five alarms."""
        stage = self.config.stage
        alarms = []
        for poster in self.chat_posters:
            function = poster.function
            secrets = " and ".join(poster.secrets.names)
            alarms.append(
                function.add_alarm(
                    "ChatDeliveryFailures",
                    self._metric(function, "ChatDeliveryFailures", statistic="Sum", period=HOUR),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    description=(
                        f"{function.function_name} could not deliver a message to the {poster.channel} chat in "
                        f"the last hour; it is kept in the outbox finops-guard-{stage}-outbox. First: run "
                        f"finops-guard report pending --stage {stage} and read its last error. Secret missing, "
                        f"401, 403 or 404: put the channel's incoming webhook URL into {secrets} "
                        "(aws secretsmanager put-secret-value). 429, 5xx or timeouts: the chat service is "
                        f"failing; once it is back, run finops-guard report resend --stage {stage}."
                    ),
                )
            )
        return alarms

    def _add_reconciliation_alarm(self) -> cloudwatch.Alarm:
        config, job = self.config, self.reconciliation
        return job.add_alarm(
            "Mismatches",
            self._metric(job, "ReconciliationMismatches", statistic="Maximum", period=DAY),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # Each daily run reports its count, 0 when clean. Between runs the state stays what the last
            # run said: a mismatch is paged until a clean run, not forgotten when its data point ages out.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            description=(
                f"The daily reconciliation ({job.function_name}) found a customer and currency whose ledger "
                f"differs from Stripe by more than {config.reconciliation_variance_percent} % over the last 30 "
                "days and opened a ledger_mismatch billing alert (its card in the finance chat lists the "
                f"invoices). First: check the FinOpsGuard-{config.stage}-stripe-webhook-Errors and "
                f"FinOpsGuard-{config.stage}-billing-api-5xx alarms of the past days for events the ledger "
                "missed, then resend those invoices' events from the Stripe Dashboard (Developers > Events; "
                "Stripe keeps them 30 days). It clears after a clean run: the next scheduled one, or invoke "
                f'{job.function_name} with the payload {{"action": "reconcile"}}.'
            ),
        )

    # --- dashboard ------------------------------------------------------------------------------

    def _add_dashboard(self) -> cloudwatch.Dashboard:
        stage = self.config.stage
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Dashboards are global: the region keeps the same stage in two regions apart.
            dashboard_name=f"FinOpsGuard-{stage}-{Aws.REGION}",
            default_interval=DASHBOARD_RANGE,
            # Each widget keeps its own period: daily KPIs stay daily whatever the range.
            period_override=cloudwatch.PeriodOverride.INHERIT,
        )
        sections = (
            ("FinOps KPIs", self._kpi_widgets()),
            (
                f"Alarms (each pages finops-guard-{stage}-ops-alarms; runbook: README, Operations baseline)",
                [self._alarm_status_widget()],
            ),
            ("Service levels", self._service_level_widgets()),
            ("Health: billing API and functions", self._health_widgets()),
        )
        for title, widgets in sections:
            dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {title}", width=24, height=1))
            for row in _rows(widgets):
                dashboard.add_widgets(*row)
        return dashboard

    def _kpi_widgets(self) -> list[cloudwatch.IWidget]:
        currency = self.config.currency
        report, jobs = self.weekly_report, self.reconciliation
        month_to_date = self._metric(
            report, "MonthToDateSpend", statistic="Maximum", period=DAY, label=f"Month-to-date spend ({currency})"
        )
        forecast = self._metric(
            report, "ForecastMonthEnd", statistic="Maximum", period=DAY, label=f"Month-end forecast ({currency})"
        )
        failed_invoices = self._metric(jobs, "FailedInvoices", statistic="Maximum", period=DAY, label="Failed invoices")
        open_alerts = self._metric(
            jobs, "OpenBillingAlerts", statistic="Maximum", period=DAY, label="Open billing alerts"
        )
        anomalies_week = self._metric(
            self.anomaly_alerts, "AnomaliesAlerted", statistic="Sum", period=WEEK, label="Anomalies alerted (7 days)"
        )
        return [
            cloudwatch.SingleValueWidget(
                title="AWS spend this month", metrics=[month_to_date, forecast], width=8, height=6
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
                left=[self._search("BudgetConsumptionPercent", self.budget_guard.short_name, "budget", "Budget")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=100, label="Budget")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=12,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Monthly recurring revenue by currency (daily reconciliation)",
                left=[self._search("MonthlyRecurringRevenue", jobs.short_name, "currency", "MRR")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=12,
                height=6,
            ),
            cloudwatch.SingleValueWidget(
                title="Anomalies and billing",
                metrics=[anomalies_week, failed_invoices, open_alerts],
                width=12,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Failed invoices and open billing alerts",
                left=[failed_invoices, open_alerts],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=12,
                height=6,
            ),
        ]

    def _alarm_status_widget(self) -> cloudwatch.AlarmStatusWidget:
        alarms = [
            *(alarm for function in self.functions for alarm in function.alarms),
            *self.billing.api_alarms,
            *self.billing_jobs.alarms,
        ]
        return cloudwatch.AlarmStatusWidget(
            title="Every FinOps Guard alarm, most recently changed first",
            alarms=list(dict.fromkeys(alarms)),
            sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
            width=24,
            height=8,
        )

    def _service_level_widgets(self) -> list[cloudwatch.IWidget]:
        report, webhook = self.weekly_report, self.billing.stripe_webhook
        return [
            cloudwatch.GraphWidget(
                title="Weekly reports posted (per day)",
                left=[self._metric(report, "WeeklyReportPosted", statistic="Sum", period=DAY, label="Posted")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Bot invoice delivery: latency p99 (s) and % within 5 minutes",
                left=[
                    self._metric(webhook, "InvoiceDeliveryLatency", statistic="p99", period=HOUR, label="Latency p99")
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=INVOICE_SLO_SECONDS, label="5 minutes")],
                right=[self.billing_jobs.invoice_slo_ratio()],
                right_annotations=[cloudwatch.HorizontalAnnotation(value=INVOICE_SLO_PERCENT, label="SLO")],
                right_y_axis=cloudwatch.YAxisProps(min=0, max=100, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Cost anomaly forwarding latency (s)",
                left=[
                    self._metric(
                        self.anomaly_alerts, "AnomalyForwardingLatency", statistic=stat, period=HOUR, label=label
                    )
                    for stat, label in (("p99", "p99"), ("Maximum", "Maximum"))
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=FORWARDING_SLO_SECONDS, label="SLO")],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Chat delivery failures (per hour)",
                left=[
                    self._metric(
                        poster.function,
                        "ChatDeliveryFailures",
                        statistic="Sum",
                        period=HOUR,
                        label=poster.function.short_name,
                    )
                    for poster in self.chat_posters
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation mismatches (per daily run)",
                left=[
                    self._metric(
                        self.reconciliation,
                        "ReconciliationMismatches",
                        statistic="Maximum",
                        period=DAY,
                        label="Mismatching customer/currency pairs",
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Stripe signature failures (per hour)",
                left=[
                    self._metric(
                        webhook, "StripeSignatureFailures", statistic="Sum", period=HOUR, label="Signature failures"
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
        ]

    def _health_widgets(self) -> list[cloudwatch.IWidget]:
        stage = self.billing.api.deployment_stage
        api = cloudwatch.GraphWidget(
            title=f"finops-guard-{self.config.stage}-billing API",
            left=[
                stage.metric_count(period=HOUR, statistic="Sum", label="Requests"),
                stage.metric_client_error(period=HOUR, statistic="Sum", label="4xx"),
                stage.metric_server_error(period=HOUR, statistic="Sum", label="5xx"),
            ],
            right=[stage.metric_latency(period=HOUR, statistic="p99", label="Latency p99 (ms)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=8,
            height=6,
        )
        return [api, *(self._function_health(function) for function in self.functions)]

    @staticmethod
    def _function_health(function: MonitoredFunction) -> cloudwatch.GraphWidget:
        fn = function.function
        return cloudwatch.GraphWidget(
            title=function.function_name,
            left=[
                fn.metric_invocations(period=HOUR, statistic="Sum", label="Invocations"),
                fn.metric_errors(period=HOUR, statistic="Sum", label="Errors"),
                fn.metric_throttles(period=HOUR, statistic="Sum", label="Throttles"),
                function.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=HOUR, statistic="Maximum", label="DLQ messages"
                ),
            ],
            right=[fn.metric_duration(period=HOUR, statistic="p99", label="Duration p99 (ms)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=8,
            height=6,
        )


def _rows(widgets: Sequence[cloudwatch.IWidget]) -> list[list[cloudwatch.IWidget]]:
    """Split widgets into dashboard rows of at most 24 units."""
    rows: list[list[cloudwatch.IWidget]] = [[]]
    used: float = 0
    for widget in widgets:
        if used + widget.width > 24:
            rows.append([])
            used = 0
        rows[-1].append(widget)
        used += widget.width
    return rows
