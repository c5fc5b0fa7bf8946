"""The billing product's reconciliation alarm and its opt-in dashboard.

The other billing alarms live with what they watch (the API's 5xx and signature failures in
billing_api.py, the invoice latency SLO and dunning in billing_jobs.py); function failures and chat
delivery page through the core (infra/core/paging.py).
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.billing.billing_api import BillingApi
from infra.billing.billing_jobs import INVOICE_SLO_PERCENT, BillingJobs
from infra.config import FinOpsGuardConfig
from infra.core.dashboard import (
    DAY,
    HOUR,
    add_dashboard,
    alarm_status_widget,
    chat_delivery_widget,
    function_health,
    function_metric,
    search_metric,
)

# The webhook counts a bot invoice in InvoicesConfirmedWithin5Min when Stripe confirmed it within 300 s.
INVOICE_SLO_SECONDS = 300


class BillingMonitoring(Construct):
    """Exposes ``alarms`` (reconciliation mismatches) and ``dashboard`` (None unless ``dashboard: true``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        billing: BillingApi,
        billing_jobs: BillingJobs,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.billing = billing
        self.billing_jobs = billing_jobs
        self.reconciliation = billing_jobs.reconciliation
        self.functions = [
            billing.stripe_webhook,
            billing.billing_notifier,
            billing_jobs.dunning_sender,
            billing_jobs.reconciliation,
            billing_jobs.billing_admin,
        ]
        self.alarms = [self._add_reconciliation_alarm()]
        self.dashboard = self._add_dashboard() if config.dashboard else None

    def _add_reconciliation_alarm(self) -> cloudwatch.Alarm:
        config, job = self.config, self.reconciliation
        return job.add_alarm(
            "Mismatches",
            function_metric(job, "ReconciliationMismatches", statistic="Maximum", period=DAY),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # Each daily run reports its count, 0 when clean. Between runs the state stays what the last
            # run said: a mismatch is paged until a clean run, not forgotten when its data point ages out.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            description=(
                f"The daily reconciliation ({job.function_name}) found a customer and currency whose ledger "
                f"differs from Stripe by more than {config.reconciliation_variance_percent} % over the last 30 "
                "days and opened a ledger_mismatch billing alert (its card in the finance chat lists the "
                f"invoices). First: check the FinOpsGuard-{config.stage}-Failures and "
                f"FinOpsGuard-{config.stage}-billing-api-5xx alarms of the past days for events the ledger "
                "missed, then resend those invoices' events from the Stripe Dashboard (Developers > Events; "
                "Stripe keeps them 30 days). It clears after a clean run: the next scheduled one, or invoke "
                f'{job.function_name} with the payload {{"action": "reconcile"}}.'
            ),
        )

    # --- dashboard ------------------------------------------------------------------------------

    def _add_dashboard(self) -> cloudwatch.Dashboard:
        stage = self.config.stage
        alarms = [
            *(alarm for function in self.functions for alarm in function.alarms),
            *self.billing.api_alarms,
            *self.billing_jobs.alarms,
        ]
        return add_dashboard(
            self,
            stage=stage,
            product="Billing",
            sections=(
                ("Billing KPIs", self._kpi_widgets()),
                (
                    f"Alarms (each pages finops-guard-{stage}-ops-alarms; runbook: README, Operations)",
                    [alarm_status_widget(self, stage, alarms)],
                ),
                ("Service levels", self._service_level_widgets()),
                ("Health: billing API and functions", self._health_widgets()),
            ),
        )

    def _kpi_widgets(self) -> list[cloudwatch.IWidget]:
        jobs = self.reconciliation
        failed_invoices = function_metric(
            jobs, "FailedInvoices", statistic="Maximum", period=DAY, label="Failed invoices"
        )
        open_alerts = function_metric(
            jobs, "OpenBillingAlerts", statistic="Maximum", period=DAY, label="Open billing alerts"
        )
        return [
            cloudwatch.GraphWidget(
                title="Monthly recurring revenue by currency (daily reconciliation)",
                left=[search_metric("MonthlyRecurringRevenue", jobs.short_name, "currency", "MRR")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
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

    def _service_level_widgets(self) -> list[cloudwatch.IWidget]:
        webhook = self.billing.stripe_webhook
        return [
            cloudwatch.GraphWidget(
                title="Bot invoice delivery: latency p99 (s) and % within 5 minutes",
                left=[
                    function_metric(
                        webhook, "InvoiceDeliveryLatency", statistic="p99", period=HOUR, label="Latency p99"
                    )
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=INVOICE_SLO_SECONDS, label="5 minutes")],
                right=[self.billing_jobs.invoice_slo_ratio()],
                right_annotations=[cloudwatch.HorizontalAnnotation(value=INVOICE_SLO_PERCENT, label="SLO")],
                right_y_axis=cloudwatch.YAxisProps(min=0, max=100, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation mismatches (per daily run)",
                left=[
                    function_metric(
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
                    function_metric(
                        webhook, "StripeSignatureFailures", statistic="Sum", period=HOUR, label="Signature failures"
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
            chat_delivery_widget(self.config.stage),
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
        return [api, *(function_health(function) for function in self.functions)]
