"""The finance admin API and the invoice bot (API Gateway, IAM-authorised), plus the weekly export.

POST /invoices                       create, finalize and send a Stripe invoice; card to finance
GET  /billing/summary                MRR, booking fees month to date, open alerts, last reconciliation
POST /billing/alerts/{id}/retry      pay the alert's invoice now; resolves the alert when paid
POST /billing/alerts/{id}/resend     e-mail the alert's invoice again
POST /billing/portal-session         a Stripe billing portal link for a customer
GET  /billing/export.csv             the ledger of a month (or from/to) as CSV
{"action": "weekly_export"}          (schedule) this month's ledger CSV into the export bucket
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from finops_guard import billing_admin, runtime
from finops_guard.adapters.export_bucket import ExportBucket
from finops_guard.adapters.invoice_requests import InvoiceRequestTable
from finops_guard.adapters.stripe_api import StripeRequestError, StripeUnavailable
from finops_guard.api import ApiError, ApiReply, caller, header, json_body, path_param, query
from finops_guard.delivery import deliver_all
from finops_guard.invoice_bot import (
    InvoiceRequestError,
    IssuedInvoice,
    RequestConflict,
    announcement,
    issue_invoice,
    parse_invoice_request,
)

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@cache
def _invoice_requests() -> InvoiceRequestTable:
    return InvoiceRequestTable(runtime.billing_ops_settings().require("invoice_requests_table"))


def create_invoice(event: dict[str, Any], context: LambdaContext, now: datetime) -> ApiReply:
    config = runtime.billing_ops_settings()
    try:
        request = parse_invoice_request(json_body(event), request_id=header(event, "Idempotency-Key"))
    except InvoiceRequestError as error:
        return ApiReply(400, {"error": str(error)})
    requested_by = caller(event)
    try:
        issued = issue_invoice(request, api=runtime.stripe_api(), store=_invoice_requests(), requested_by=requested_by,
                               days_until_due=config.invoice_days_until_due, now=now)  # fmt: skip
    except RequestConflict as error:
        return ApiReply(409, {"error": str(error)})
    if not issued.replayed:
        metrics.add_metric("InvoicesIssued", MetricUnit.Count, 1)
        _announce(issued, requested_by, context, now)
    return ApiReply(200 if issued.replayed else 201, issued.to_json())


def _announce(issued: IssuedInvoice, requested_by: str, context: LambdaContext, now: datetime) -> None:
    """The card to the finance channel, through the outbox: a chat outage keeps it for resend."""
    chat = runtime.settings()
    messages = announcement(issued, chat.chat_channels, requested_by)
    poster = runtime.webhook_poster(chat, context.get_remaining_time_in_millis())
    result = deliver_all(messages, runtime.outbox(chat.require("outbox_table")), poster, now)
    if result.failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(result.failed))
    if result.not_configured:  # a setup step: counted, never alarmed
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(result.not_configured))


def route(event: dict[str, Any], context: LambdaContext, now: datetime) -> ApiReply:
    config = runtime.billing_ops_settings()
    key = (event.get("httpMethod"), event.get("resource"))
    if key == ("POST", "/invoices"):
        return create_invoice(event, context, now)
    if key == ("GET", "/billing/summary"):
        return billing_admin.billing_summary(reads=runtime.billing_reads(), now=now)
    if key == ("POST", "/billing/alerts/{id}/retry"):
        return billing_admin.retry_alert(
            path_param(event, "id"), reads=runtime.billing_reads(), api=runtime.stripe_api(), now=now
        )
    if key == ("POST", "/billing/alerts/{id}/resend"):
        return billing_admin.resend_alert(
            path_param(event, "id"), reads=runtime.billing_reads(), api=runtime.stripe_api(), now=now
        )
    if key == ("POST", "/billing/portal-session"):
        return billing_admin.portal_session(json_body(event), api=runtime.stripe_api(),
                                            return_url=config.portal_return_url)  # fmt: skip
    if key == ("GET", "/billing/export.csv"):
        return billing_admin.export_csv(query(event), reads=runtime.billing_reads(), now=now)
    return ApiReply(404, {"error": f"no route {key[0]} {key[1]}"})


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
    logger.append_keys(route=f"{event.get('httpMethod')} {event.get('resource')}", caller=caller(event))
    try:
        reply = route(event, context, now)
    except ApiError as error:
        reply = error.reply()
    except StripeRequestError as error:
        status = 404 if error.status == 404 else 409
        reply = ApiReply(status, {"error": f"Stripe refused the request: {error}", "code": error.code})
    except StripeUnavailable as error:
        logger.warning("Stripe unreachable", extra={"error": str(error)})
        reply = ApiReply(502, {"error": "Stripe could not be reached; retry with the same request_id"})
    if reply.status >= 500:
        metrics.add_metric("AdminApiErrors", MetricUnit.Count, 1)
    return reply.to_proxy()
