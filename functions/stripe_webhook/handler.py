"""Stripe webhook: API Gateway POST /stripe/webhook -> verified, typed event -> ledger, exactly once.

Every request gets an answer: 4xx for anything malformed or unsigned (the body names the reason or
the field), 200 for applied, duplicate, stale and ignored events; only a storage or secrets failure
raises (API Gateway answers 5xx and Stripe retries).

Answers fast: the ledger commit happens in the request; chat messages about new billing alerts go
out asynchronously (the alerts table's stream feeds functions/billing_notifier), so a chat outage
never makes Stripe retry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.billing import runtime
from finops_guard.billing.stripe_ledger import handle_webhook
from finops_guard.billing.stripe_webhook import SIGNATURE_FAILURES, response
from finops_guard.core.adapters.secrets import read_signing_secrets
from finops_guard.core.service_levels import kpi_metrics_on

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.billing_settings()
    outcome = handle_webhook(
        event,
        settings=settings,
        secrets=lambda: read_signing_secrets(settings.stripe_secret_name, settings.stripe_previous_secret_name),
        refresh_secrets=lambda: read_signing_secrets(
            settings.stripe_secret_name, settings.stripe_previous_secret_name, refresh=True
        ),
        ledger=runtime.billing_store(),
        now=lambda: datetime.now(UTC),
    )
    # Per-request counts are dashboard-only (the API's own 4xx metric is free); the ledger's log lines
    # name each event's outcome and each rejection's reason either way.
    kpis = kpi_metrics_on()
    if outcome.status >= 400:
        if kpis:
            metrics.add_metric("StripeWebhookRejected", MetricUnit.Count, 1)
        if outcome.body.get("error") in SIGNATURE_FAILURES:  # the signature-failures alarm's
            metrics.add_metric("StripeSignatureFailures", MetricUnit.Count, 1)
    elif kpis:
        result = outcome.body.get("outcome", "unknown")
        metrics.add_metric(f"StripeEvents{str(result).title()}", MetricUnit.Count, 1)
    if outcome.invoice_latency_s is not None:
        # The invoice SLO: 99 % of bot invoices confirmed delivered within 5 minutes of the request.
        logger.info("bot invoice delivery confirmed", extra={"invoice_latency_s": outcome.invoice_latency_s})
        if kpis:
            metrics.add_metric("InvoiceDeliveryLatency", MetricUnit.Seconds, outcome.invoice_latency_s)
        metrics.add_metric("InvoicesConfirmed", MetricUnit.Count, 1)
        metrics.add_metric("InvoicesConfirmedWithin5Min", MetricUnit.Count, int(outcome.invoice_latency_s <= 300))
    return response(outcome.status, outcome.body)
