"""Daily reconciliation (EventBridge Scheduler): Stripe's invoices of the last 30 days vs the ledger.

The result is stored for the summary API; a mismatch opens the day's `ledger_mismatch` alert, whose
card the billing notifier posts from the alerts stream. Rules: finops_guard/billing/reconciliation.py.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from finops_guard.billing import runtime
from finops_guard.billing.adapters.reconciliation_store import ReconciliationStore
from finops_guard.billing.adapters.stripe_api import StripeRequestError
from finops_guard.billing.billing_admin import monthly_recurring_revenue
from finops_guard.billing.reconciliation import run_reconciliation
from finops_guard.core.money import minor_units
from finops_guard.core.service_levels import kpi_metrics_on

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

METRICS_NAMESPACE = "FinOpsGuard"  # as the stack sets POWERTOOLS_METRICS_NAMESPACE
logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@cache
def reconciliation_store() -> ReconciliationStore:
    config = runtime.billing_ops_settings()
    return ReconciliationStore(
        ledger_table=config.ledger_table, objects_table=config.objects_table, alerts_table=config.alerts_table
    )


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = runtime.billing_ops_settings()
    store = reconciliation_store()
    try:
        outcome = run_reconciliation(
            invoices=runtime.stripe_api(),
            ledger=store,
            sink=store,
            now=runtime.scheduled_time(event),
            days=config.reconciliation_days,
            threshold_percent=config.variance_percent,
        )
    except StripeRequestError as error:
        if error.code != "api_key_missing":
            raise
        # A deployment that does not use Stripe (yet): nothing to reconcile, nothing to page about,
        # and no billing KPIs to publish (a daily zero is a custom metric billed for nothing).
        logger.warning("reconciliation skipped: the Stripe API key secret holds no key", extra={"error": str(error)})
        return {"skipped": "no Stripe API key"}
    result = outcome.result
    # Every run, 0 included: the Mismatches alarm keeps the last run's state until a clean one.
    metrics.add_metric("ReconciliationMismatches", MetricUnit.Count, result.mismatch_count)
    kpis = kpi_metrics_on()
    if kpis:
        metrics.add_metric("ReconciliationRuns", MetricUnit.Count, 1)
        metrics.add_metric("ReconciliationPastDue", MetricUnit.Count, result.past_due_count)
    summary = {
        "window_start": result.record()["window_start"],
        "invoices_seen": result.invoices_seen,
        "ledger_rows_seen": result.ledger_rows_seen,
        "pairs_compared": result.pairs_compared,
        "mismatches": result.mismatch_count,
        "past_due": result.past_due_count,
        "in_flight": result.invoices_in_flight,
        "alert": outcome.alert,
        "resolved": outcome.resolved,
    }
    logger.info("reconciliation finished", extra=summary)
    summary["kpis"] = publish_billing_kpis(metrics_on=kpis)
    return summary


def publish_billing_kpis(*, metrics_on: bool) -> dict[str, Any]:
    """The billing KPIs, once a day: MRR per currency (minor units in the log line; major units in the
    metrics, as floats, converted here at the edge), open billing alerts and failed invoices among
    them. Logged always; sent as metrics only when `metrics_on` (only the dashboard reads them)."""
    reads = runtime.billing_reads()
    open_alerts = list(reads.alerts_with_status("open"))
    failed = sum(1 for alert in open_alerts if alert.get("kind") in ("invoice_failed", "escalation"))
    mrr = monthly_recurring_revenue(reads.subscriptions())
    kpis = {"open_alerts": len(open_alerts), "failed_invoices": failed, "mrr_minor": mrr}
    logger.info("billing KPIs", extra=kpis)
    if not metrics_on:
        return kpis
    metrics.add_metric("OpenBillingAlerts", MetricUnit.Count, len(open_alerts))
    metrics.add_metric("FailedInvoices", MetricUnit.Count, failed)
    for currency, minor in mrr.items():
        with single_metric("MonthlyRecurringRevenue", MetricUnit.NoUnit, minor / 10 ** minor_units(currency),
                           namespace=metrics.namespace or METRICS_NAMESPACE) as metric:  # fmt: skip
            metric.add_dimension("service", metrics.service or "reconciliation")
            metric.add_dimension("currency", currency)
    return kpis
