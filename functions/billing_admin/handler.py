"""The finance admin API and the invoice bot (API Gateway, IAM-authorised), plus the weekly export.

POST /invoices                       create, finalize and send a Stripe invoice; card to finance
GET  /billing/summary                MRR, booking fees month to date, open alerts, last reconciliation
POST /billing/alerts/{id}/retry      pay the alert's invoice now; resolves the alert when paid
POST /billing/alerts/{id}/resend     e-mail the alert's invoice again
POST /billing/portal-session         a Stripe billing portal link for a customer
GET  /billing/export.csv             the ledger of a month (or from/to) as CSV
{"action": "weekly_export"}          (schedule) this month's ledger CSV into the export bucket

Every API request goes through `billing_admin.handle_api`, which parses the event once and answers
any input with a reply (4xx naming the field at fault); only AWS faults fail the invocation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.billing import billing_admin, runtime
from finops_guard.billing.adapters.invoice_requests import InvoiceRequestTable
from finops_guard.billing.api import caller
from finops_guard.billing.invoice_bot import IssuedInvoice, announcement
from finops_guard.core.adapters.export_bucket import ExportBucket
from finops_guard.core.delivery import deliver_all
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@cache
def _invoice_requests() -> InvoiceRequestTable:
    return InvoiceRequestTable(runtime.billing_ops_settings().require("invoice_requests_table"))


def _announce(issued: IssuedInvoice, requested_by: str, context: LambdaContext, now: datetime) -> None:
    """The card to the finance channel, through the outbox: a chat outage keeps it for resend."""
    from finops_guard.billing.cards.invoice import render_invoice_sent  # loaded with the first invoice, as before

    logger.info("invoice issued", extra={"request_id": issued.request_id, "invoice_id": issued.invoice_id})
    if kpi_metrics_on():
        metrics.add_metric("InvoicesIssued", MetricUnit.Count, 1)
    chat = runtime.chat_settings()
    messages = announcement(issued, chat.chat_channels, requested_by, render=render_invoice_sent)
    poster = runtime.webhook_poster(chat, context.get_remaining_time_in_millis())
    result = deliver_all(messages, runtime.outbox(chat.require("outbox_table")), poster, now)
    if result.failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(result.failed))
        count_chat_delivery_failures(len(result.failed))  # the stage's alarm
    if result.not_configured:  # a setup step: counted, never alarmed
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(result.not_configured))


def _ports(context: LambdaContext) -> billing_admin.AdminPorts:
    config = runtime.billing_ops_settings()
    return billing_admin.AdminPorts(
        reads=runtime.billing_reads,
        stripe=runtime.stripe_api,
        invoice_requests=_invoice_requests,
        announce=lambda issued, requested_by, now: _announce(issued, requested_by, context, now),
        portal_return_url=config.portal_return_url,
        invoice_days_until_due=config.invoice_days_until_due,
    )


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    if event.get("action") == "weekly_export":
        config = runtime.billing_ops_settings()
        bucket = ExportBucket(config.require("export_bucket"))
        keys = billing_admin.weekly_snapshot(
            reads=runtime.billing_reads(), bucket=bucket, now=runtime.scheduled_time(event)
        )
        logger.info("weekly ledger export written", extra={"keys": keys})
        return {"written": keys}
    logger.append_keys(route=f"{event.get('httpMethod')} {event.get('resource')}"[:200], caller=caller(event))
    reply = billing_admin.handle_api(event, ports=_ports(context), now=now)
    if reply.status >= 500:
        metrics.add_metric("AdminApiErrors", MetricUnit.Count, 1)
    return reply.to_proxy()
