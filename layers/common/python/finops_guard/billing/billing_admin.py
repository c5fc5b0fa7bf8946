"""The finance admin API's operations: billing summary, invoice alert retry/resend, portal links,
ledger CSV export and the weekly CSV snapshot. Pure: every collaborator is a port, `now` is passed.

Money is integer minor units plus an ISO currency (upper case) everywhere; each amount in a reply
also comes formatted (`format_money`) next to its minor units. Dates and months are UTC.

Every Stripe call that moves money or sends a document carries an idempotency key derived from the
alert record (`finops-guard:<alert id>:pay:<retry_count>`), never a random one: the same attempt,
re-run after a crash, replays Stripe's first answer instead of charging twice. State changes are
single conditional updates in the port; a read only chooses the 4xx answer, never the write.

`handle_api` is the API's one entry point: it reads the API Gateway event once (`api.parse_request`)
and answers every input with a reply, 4xx for anything malformed, never an exception.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from finops_guard.billing.adapters.stripe_api import StripeCardError, StripeRequestError, StripeUnavailable
from finops_guard.billing.api import ApiError, ApiReply, ApiRequest, Route, field_name, parse_request
from finops_guard.billing.invoice_bot import (
    InvoiceRequest,
    InvoiceRequestError,
    InvoicingApi,
    IssuedInvoice,
    RequestConflict,
    RequestStore,
    issue_invoice,
    parse_invoice_request,
)
from finops_guard.core.money import format_money, minor_units

log = logging.getLogger(__name__)

INVOICE_ALERT_KINDS = ("invoice_failed", "payment_action_required", "escalation")
MRR_STATUSES = frozenset({"active", "trialing", "past_due"})
CLAIM_TIMEOUT = timedelta(minutes=5)  # a `retrying` claim older than this belongs to a crashed Lambda
RECONCILIATION_ID = "reconciliation#latest"
TOTAL_PREFIX = "TOTAL#"
MAX_EXPORT_DAYS = 366
SNAPSHOT_DAYS = 7
CSV_COLUMNS = (
    "occurred_at",
    "customer_id",
    "kind",
    "amount",
    "currency",
    "amount_minor",
    "invoice_id",
    "source_id",
    "event_id",
    "entry_key",
)
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
# Months per interval: MRR is the recurring amount spread over one month.
_MONTHS_PER_INTERVAL = {
    "month": Fraction(1),
    "year": Fraction(12),
    "week": Fraction(12, 52),
    "day": Fraction(12, 365),
}
_ALREADY_PAID_CODES = frozenset({"invoice_already_paid"})
_CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,250}")
# ASCII digits only: \d and int() also take other scripts' digits ("٢٠٢٤" is 2024 to int()).
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_YEAR, LAST_YEAR = 2000, 2999  # ledger periods outside these years are typing mistakes
_ALERT_ID = re.compile(r"[A-Za-z0-9_#:.-]{1,256}")  # "<kind>#<Stripe object id>"
# Stripe: "The amount value supports up to eight digits (e.g., a value of 99999999 for a USD
# charge of $999,999.99)". Larger amounts would only be refused by Stripe after our record is made.
STRIPE_MAX_AMOUNT_MINOR = 99_999_999
INVOICE_FIELDS = frozenset({"request_id", "customer", "currency", "description", "amount", "amount_minor"})
_MINOR_AMOUNT = re.compile(r"[0-9]{1,20}")
_MAJOR_AMOUNT = re.compile(r"(-?)([0-9]{1,20})(?:\.([0-9]{1,20}))?")


# --- ports ----------------------------------------------------------------------------------------


class BillingReadsPort(Protocol):
    """The billing tables as the admin API needs them (adapters.billing_reads.BillingReads).
    Items are plain dicts (numbers as int/Decimal); listings are paginated queries, never a Scan."""

    def subscriptions(self) -> Iterable[Mapping[str, Any]]: ...

    def ledger_entries(self, month: str) -> Iterable[Mapping[str, Any]]: ...

    def alerts_with_status(self, status: str) -> Iterable[Mapping[str, Any]]: ...

    def alert(self, alert_id: str) -> Mapping[str, Any] | None: ...

    def billing_object(self, object_id: str) -> Mapping[str, Any] | None: ...

    def claim_retry(
        self, alert_id: str, *, kinds: Iterable[str], now: datetime, stale_before: datetime
    ) -> int | None: ...

    def release_retry(self, alert_id: str, *, retry_count: int, error: Mapping[str, Any], now: datetime) -> bool: ...

    def resolve_alert(self, alert_id: str, *, resolved_by: str, now: datetime) -> bool: ...

    def claim_resend(self, alert_id: str, *, kinds: Iterable[str], now: datetime) -> int | None: ...


class StripePort(Protocol):
    """The Stripe calls the admin API makes (adapters.stripe_api.StripeApi)."""

    def pay_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]: ...

    def send_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]: ...

    def create_portal_session(self, *, customer: str, return_url: str) -> dict[str, Any]: ...


class ExportBucketPort(Protocol):
    def put_csv(self, key: str, text: str) -> str | None: ...


# --- idempotency keys -----------------------------------------------------------------------------


def retry_idempotency_key(alert_id: str, retry_count: int) -> str:
    """Stripe idempotency key of payment attempt `retry_count` of an alert's invoice."""
    return f"finops-guard:{alert_id}:pay:{retry_count}"


def resend_idempotency_key(alert_id: str, resend_count: int) -> str:
    """Stripe idempotency key of send number `resend_count` of an alert's invoice."""
    return f"finops-guard:{alert_id}:send:{resend_count}"


# --- summary --------------------------------------------------------------------------------------


def billing_summary(*, reads: BillingReadsPort, now: datetime) -> ApiReply:
    """GET /billing/summary.

    - `mrr`: per currency, minor units, from subscriptions that are active, trialing or past_due:
      the sum of unit_amount * quantity per item, normalised to one month (month: / interval_count;
      year: / 12; week: * 52 / 12; day: * 365 / 12), summed exactly and rounded half-even to a
      whole minor unit per currency at the end.
    - `booking_fees_mtd`: per currency, minor units, the booking_fee ledger entries of the current
      UTC calendar month (first day 00:00 UTC up to now).
    - `open_alerts`: unresolved alerts (status open, or retrying while a payment retry runs):
      count, count by kind and the list, oldest first.
    - `last_reconciliation`: the latest reconciliation record as stored, or null.
    """
    month = _month_of(now)
    mrr = monthly_recurring_revenue(reads.subscriptions())
    fees: dict[str, int] = {}
    for entry in reads.ledger_entries(month):
        if _is_total(entry) or entry.get("kind") != "booking_fee":
            continue
        currency = str(entry.get("currency") or "").upper()
        fees[currency] = fees.get(currency, 0) + int(entry.get("amount_minor") or 0)
    alerts = sorted(
        (_alert_view(a) for status in ("open", "retrying") for a in reads.alerts_with_status(status)),
        key=lambda a: (str(a["opened_at"] or ""), a["alert_id"]),
    )
    reconciliation = reads.billing_object(RECONCILIATION_ID)
    body = {
        "as_of": _stamp(now),
        "month": month,
        "mrr": _amounts(mrr),
        "booking_fees_mtd": _amounts(fees),
        "open_alerts": {
            "count": len(alerts),
            "by_kind": dict(sorted(Counter(str(a["kind"]) for a in alerts).items())),
            "alerts": alerts,
        },
        "last_reconciliation": None if reconciliation is None else plain(reconciliation),
    }
    return ApiReply(200, body)


def monthly_recurring_revenue(subscriptions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """MRR per currency in minor units (see `billing_summary`). Items without a known recurring
    interval (one-off prices) add nothing; non-positive interval counts are treated as 1."""
    totals: dict[str, Fraction] = {}
    for sub in subscriptions:
        if sub.get("status") not in MRR_STATUSES:
            continue
        currency = str(sub.get("currency") or "").upper()
        for item in sub.get("items") or []:
            months = _MONTHS_PER_INTERVAL.get(str(item.get("interval")))
            if months is None:
                continue
            count = max(int(item.get("interval_count") or 1), 1)
            amount = int(item.get("unit_amount") or 0) * int(item.get("quantity") or 1)
            totals[currency] = totals.get(currency, Fraction(0)) + Fraction(amount) / (months * count)
    # round() of a Fraction is exact and rounds half to even.
    return {currency: round(total) for currency, total in sorted(totals.items())}


# --- invoice alerts -------------------------------------------------------------------------------


def retry_alert(alert_id: str, *, reads: BillingReadsPort, api: StripePort, now: datetime) -> ApiReply:
    """POST /billing/alerts/{id}/retry: pay the alert's invoice now (Stripe `invoices.pay`).

    404 unknown alert; 409 not an invoice alert, resolved, or a retry already running (a claim
    younger than 5 minutes). The claim is one conditional update (open -> retrying, retry_count + 1);
    a claim older than 5 minutes is taken over with the same retry_count, so the same idempotency
    key replays Stripe's first answer. Paid (or already paid) -> resolved, 200. Declined -> open
    again with `last_retry_error`, 402. Other Stripe 4xx -> open again, 409. Connection errors and
    Stripe 5xx propagate and leave the claim for a later takeover.
    """
    alert = _invoice_alert(alert_id, reads)
    status = alert.get("status")
    stale_before = now - CLAIM_TIMEOUT
    if status == "retrying" and str(alert.get("claimed_at") or "") >= _stamp(stale_before):
        raise ApiError(409, "a payment retry of this alert is already in progress")
    if status not in ("open", "retrying"):
        raise ApiError(409, f"alert is {status}, not open")
    invoice_id = _invoice_id(alert)
    attempt = reads.claim_retry(alert_id, kinds=INVOICE_ALERT_KINDS, now=now, stale_before=stale_before)
    if attempt is None:
        raise ApiError(409, "alert changed state meanwhile; read it again")
    try:
        invoice = api.pay_invoice(invoice_id, idempotency_key=retry_idempotency_key(alert_id, attempt))
    except StripeCardError as error:
        reads.release_retry(alert_id, retry_count=attempt, error=_error_record(error, attempt, now), now=now)
        return ApiReply(402, {"error": "payment declined", "code": error.code, "alert_id": alert_id})
    except StripeRequestError as error:
        if error.code in _ALREADY_PAID_CODES or "already paid" in str(error).lower():
            return _resolved(alert_id, reads, now)
        reads.release_retry(alert_id, retry_count=attempt, error=_error_record(error, attempt, now), now=now)
        return ApiReply(409, {"error": str(error), "code": error.code, "alert_id": alert_id})
    invoice_status = invoice.get("status")
    if invoice_status == "paid":
        return _resolved(alert_id, reads, now)
    # Not paid and no error (a payment still processing): the alert stays open for a later look.
    error_record = {"message": f"invoice is {invoice_status} after the payment attempt", "attempt": attempt}
    reads.release_retry(alert_id, retry_count=attempt, error={**error_record, "at": _stamp(now)}, now=now)
    return ApiReply(409, {"error": error_record["message"], "alert_id": alert_id, "invoice_status": invoice_status})


def resend_alert(alert_id: str, *, reads: BillingReadsPort, api: StripePort, now: datetime) -> ApiReply:
    """POST /billing/alerts/{id}/resend: e-mail the alert's open invoice again (Stripe `send_invoice`).

    404 unknown alert; 409 not an invoice alert or not open. resend_count is incremented by one
    conditional update on the open alert before the call and names the idempotency key, so a
    network retry of the same send is replayed by Stripe. Stripe 4xx (invoice not open) -> 409.
    The alert stays open.
    """
    alert = _invoice_alert(alert_id, reads)
    if alert.get("status") != "open":
        raise ApiError(409, f"alert is {alert.get('status')}, not open")
    invoice_id = _invoice_id(alert)
    count = reads.claim_resend(alert_id, kinds=INVOICE_ALERT_KINDS, now=now)
    if count is None:
        raise ApiError(409, "alert changed state meanwhile; read it again")
    try:
        api.send_invoice(invoice_id, idempotency_key=resend_idempotency_key(alert_id, count))
    except StripeRequestError as error:
        return ApiReply(409, {"error": str(error), "code": error.code, "alert_id": alert_id})
    return ApiReply(200, {"alert_id": alert_id, "invoice_id": invoice_id, "sent": True})


def portal_session(body: Mapping[str, Any], *, api: StripePort, return_url: str | None) -> ApiReply:
    """POST /billing/portal-session {"customer": "cus_..."}: a Stripe billing portal link that
    returns to the configured URL. 400 bad body; 409 no return URL configured; 404 unknown customer."""
    unknown = sorted(str(name) for name in set(body) - {"customer"})
    if unknown:
        raise ApiError(400, f"unknown field {field_name(unknown[0])}")
    customer = body.get("customer")
    if customer is None or customer == "":
        raise ApiError(400, "customer is required")
    if not isinstance(customer, str) or not _CUSTOMER_ID.fullmatch(customer):
        raise ApiError(400, "customer must be a Stripe customer id (cus_...)")
    if not return_url:
        raise ApiError(409, "billingPortalReturnUrl is not configured")
    try:
        session = api.create_portal_session(customer=customer, return_url=return_url)
    except StripeRequestError as error:
        if error.status == 404 or error.code == "resource_missing":
            raise ApiError(404, f"no such customer: {customer}") from None
        raise ApiError(409, str(error)) from None
    return ApiReply(200, {"url": session.get("url")})


# --- ledger CSV -----------------------------------------------------------------------------------


def export_csv(params: Mapping[str, str], *, reads: BillingReadsPort, now: datetime) -> ApiReply:
    """GET /billing/export.csv?month=YYYY-MM (default: the current UTC month) or
    ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, `to` exclusive, from < to, at most 366 days).
    The ledger entries of that period as CSV (see `ledger_csv`); 400 naming the bad parameter."""
    period, start, end = _export_period(params, now)
    entries: list[Mapping[str, Any]] = []
    for month in months_between(start, end):
        entries.extend(e for e in reads.ledger_entries(month) if _occurred_on_or_after(e, start, end))
    return ApiReply(
        200,
        ledger_csv(entries),
        content_type=CSV_CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="ledger-{period}.csv"'},
    )


def ledger_csv(entries: Iterable[Mapping[str, Any]]) -> str:
    """RFC 4180 CSV (header row, \\r\\n line ends) of ledger entries, sorted by (occurred_at,
    customer_id, entry_key), monthly TOTAL# rows left out. `amount` is amount_minor in the currency's
    major unit with exactly its minor digits (JPY "1500", KWD "12.345", USD "-20.00")."""
    rows = sorted(
        (e for e in entries if not _is_total(e)),
        key=lambda e: (str(e.get("occurred_at") or ""), str(e.get("customer_id") or ""), str(e.get("entry_key"))),
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in rows:
        currency = str(entry.get("currency") or "").upper()
        amount_minor = int(entry.get("amount_minor") or 0)
        writer.writerow(
            [
                _text(entry.get("occurred_at")),
                _text(entry.get("customer_id")),
                _text(entry.get("kind")),
                major_amount(amount_minor, currency),
                currency,
                str(amount_minor),
                _text(entry.get("invoice_id")),
                _text(entry.get("source_id")),
                _text(entry.get("event_id")),
                _text(entry.get("entry_key")),
            ]
        )
    return out.getvalue()


def major_amount(amount_minor: int, currency: str) -> str:
    """Minor units as a plain decimal string in the major unit: 1500 JPY -> "1500", -2000 USD -> "-20.00"."""
    digits = minor_units(currency)
    return f"{Decimal(amount_minor).scaleb(-digits):.{digits}f}"


def weekly_snapshot(*, reads: BillingReadsPort, bucket: ExportBucketPort, now: datetime) -> list[str]:
    """The weekly finance export: for each UTC month touched by the 7 days ending on `now`'s date
    (one month, two across a month boundary) the whole month's ledger CSV, written to
    ledger/YYYY-MM/ledger-YYYY-MM-as-of-YYYY-MM-DD.csv. Returns the keys written, oldest month first."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=SNAPSHOT_DAYS - 1)
    keys = []
    for month in months_between(first, today + timedelta(days=1)):
        key = f"ledger/{month}/ledger-{month}-as-of-{today.isoformat()}.csv"
        bucket.put_csv(key, ledger_csv(reads.ledger_entries(month)))
        keys.append(key)
    return keys


def months_between(start: date, end: date) -> list[str]:
    """The YYYY-MM months that days in [start, end) fall in, in order."""
    months = []
    year, month = start.year, start.month
    last = end - timedelta(days=1)
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# --- invoice bot requests -------------------------------------------------------------------------


def invoice_request(body: Mapping[str, Any], *, idempotency_key: str | None) -> InvoiceRequest:
    """POST /invoices: the body's fields strictly typed, then the invoice bot's rules
    (`invoice_bot.parse_invoice_request`). Raises InvoiceRequestError naming the field.

    - every field is a JSON string (null = absent), except `amount_minor`, which may be an integer;
      unknown fields are refused;
    - `amount_minor`: ASCII digits only (no "²", no other scripts' digits, which int() accepts);
    - `amount`: a decimal string in major units, ASCII digits, no exponent, at most the currency's
      minor digits (trailing zeros aside);
    - one of the two, not both, from 1 to 99,999,999 minor units (Stripe's largest amount).
    """
    unknown = sorted(str(name) for name in set(body) - INVOICE_FIELDS)
    if unknown:
        raise InvoiceRequestError(f"unknown field {field_name(unknown[0])}")
    for name in ("request_id", "customer", "currency", "description"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvoiceRequestError(f"{name} must be a string")
    amount, amount_minor = body.get("amount"), body.get("amount_minor")
    if amount is not None and amount_minor is not None:
        raise InvoiceRequestError("give amount or amount_minor, not both")
    # The invoice bot checks request_id, customer, currency and description, in that order.
    request = parse_invoice_request(
        {name: body.get(name) for name in ("request_id", "customer", "currency", "description")} | {"amount_minor": 1},
        request_id=idempotency_key,
    )
    if amount_minor is not None:
        minor = _amount_minor(amount_minor)
    else:
        minor = _major_to_minor(amount, request.currency)
    if minor > STRIPE_MAX_AMOUNT_MINOR:
        largest = format_money(
            Decimal(STRIPE_MAX_AMOUNT_MINOR).scaleb(-minor_units(request.currency)), request.currency
        )
        field = "amount_minor" if amount_minor is not None else "amount"
        raise InvoiceRequestError(
            f"{field} is over Stripe's largest amount, {STRIPE_MAX_AMOUNT_MINOR} minor units ({largest})"
        )
    return dataclasses.replace(request, amount_minor=minor)


def _amount_minor(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvoiceRequestError("amount_minor must be a positive integer of minor units")
    if isinstance(raw, str):
        if not _MINOR_AMOUNT.fullmatch(raw):
            raise InvoiceRequestError("amount_minor must be a positive integer of minor units (ASCII digits)")
        raw = int(raw)
    if raw <= 0:
        raise InvoiceRequestError("amount_minor must be greater than zero")
    return raw


def _major_to_minor(raw: Any, currency: str) -> int:
    """A major-unit decimal string to minor units, in exact integer arithmetic (no Decimal context)."""
    if isinstance(raw, float):
        raise InvoiceRequestError('amount must be a string such as "1250.00" (a JSON float loses cents)')
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**20:
        raw = str(raw)
    parts = _MAJOR_AMOUNT.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if parts is None:
        raise InvoiceRequestError('amount is required, as a decimal string such as "1250.00"')
    sign, whole, fraction = parts.group(1), parts.group(2), (parts.group(3) or "").rstrip("0")
    digits = minor_units(currency)
    if len(fraction) > digits:
        raise InvoiceRequestError(f"amount has more than {digits} decimal places for {currency}")
    minor = int(whole) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if sign or minor == 0:
        raise InvoiceRequestError("amount must be greater than zero")
    return minor


# --- the API --------------------------------------------------------------------------------------


class AdminStripe(StripePort, InvoicingApi, Protocol):
    """The one Stripe client the admin API uses (adapters.stripe_api.StripeApi)."""


@dataclass(frozen=True)
class AdminPorts:
    """What the API's routes need, built only when a route reaches them (a refused request builds
    no client). `announce` posts a new invoice's card to the finance channel."""

    reads: Callable[[], BillingReadsPort]
    stripe: Callable[[], AdminStripe]
    invoice_requests: Callable[[], RequestStore]
    announce: Callable[[IssuedInvoice, str, datetime], None]
    portal_return_url: str | None = None
    invoice_days_until_due: int = 30


EXPORT_PARAMETERS = ("month", "from", "to")
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/invoices"): Route(body=True),
    ("GET", "/billing/summary"): Route(),
    ("POST", "/billing/alerts/{id}/retry"): Route(path=("id",)),
    ("POST", "/billing/alerts/{id}/resend"): Route(path=("id",)),
    ("POST", "/billing/portal-session"): Route(body=True),
    ("GET", "/billing/export.csv"): Route(query=EXPORT_PARAMETERS),
}


def handle_api(event: Any, *, ports: AdminPorts, now: datetime) -> ApiReply:
    """Answer one API Gateway request: 2xx, a 4xx naming what is wrong (nothing changed, except a
    declined payment retry, which records its error: 402), or 502 when Stripe cannot be reached.
    No input makes it raise; AWS faults (DynamoDB) propagate and fail the invocation."""
    try:
        key, request = parse_request(event, ROUTES)
        return _route(key, request, ports, now)
    except ApiError as error:
        return error.reply()
    except StripeRequestError as error:
        status = 404 if error.status == 404 else 409
        return ApiReply(status, {"error": f"Stripe refused the request: {error}", "code": error.code})
    except StripeUnavailable as error:
        log.warning("Stripe unreachable", extra={"error": str(error)})
        return ApiReply(502, {"error": "Stripe could not be reached; retry with the same request_id"})


def _route(key: tuple[str, str], request: ApiRequest, ports: AdminPorts, now: datetime) -> ApiReply:
    if key == ("POST", "/invoices"):
        return create_invoice(request, ports=ports, now=now)
    if key == ("GET", "/billing/summary"):
        return billing_summary(reads=ports.reads(), now=now)
    if key == ("POST", "/billing/alerts/{id}/retry"):
        return retry_alert(request.path["id"], reads=ports.reads(), api=ports.stripe(), now=now)
    if key == ("POST", "/billing/alerts/{id}/resend"):
        return resend_alert(request.path["id"], reads=ports.reads(), api=ports.stripe(), now=now)
    if key == ("POST", "/billing/portal-session"):
        return portal_session(request.body, api=ports.stripe(), return_url=ports.portal_return_url)
    if key == ("GET", "/billing/export.csv"):
        return export_csv(request.query, reads=ports.reads(), now=now)
    raise ApiError(404, f"no route {key[0]} {key[1]}")  # a route in ROUTES without a branch here


def create_invoice(request: ApiRequest, *, ports: AdminPorts, now: datetime) -> ApiReply:
    """POST /invoices: 201 issued (and announced), 200 replayed, 400 malformed, 409 the request id
    was used for another invoice. See `invoice_request` and `invoice_bot.issue_invoice`."""
    try:
        wanted = invoice_request(request.body, idempotency_key=request.header("Idempotency-Key"))
    except InvoiceRequestError as error:
        raise ApiError(400, str(error)) from None
    try:
        issued = issue_invoice(
            wanted,
            api=ports.stripe(),
            store=ports.invoice_requests(),
            requested_by=request.caller,
            days_until_due=ports.invoice_days_until_due,
            now=now,
        )
    except RequestConflict as error:
        raise ApiError(409, str(error)) from None
    if not issued.replayed:
        ports.announce(issued, request.caller, now)
    return ApiReply(200 if issued.replayed else 201, issued.to_json())


# --- helpers --------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A stored item as plain JSON: whole Decimals as int, others as exact strings (never float)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return value


def _invoice_alert(alert_id: str, reads: BillingReadsPort) -> Mapping[str, Any]:
    if not isinstance(alert_id, str) or not _ALERT_ID.fullmatch(alert_id):
        raise ApiError(400, "alert id is malformed")
    alert = reads.alert(alert_id)
    if alert is None:
        raise ApiError(404, f"no alert {alert_id}")
    if alert.get("kind") not in INVOICE_ALERT_KINDS:
        raise ApiError(409, f"alert kind {alert.get('kind')} has no invoice to act on")
    return alert


def _invoice_id(alert: Mapping[str, Any]) -> str:
    invoice_id = alert.get("invoice_id")
    if not isinstance(invoice_id, str) or not invoice_id:
        raise ApiError(409, "alert has no invoice id")
    return invoice_id


def _resolved(alert_id: str, reads: BillingReadsPort, now: datetime) -> ApiReply:
    reads.resolve_alert(alert_id, resolved_by="retry", now=now)
    return ApiReply(200, {"alert_id": alert_id, "status": "resolved", "invoice_status": "paid"})


def _error_record(error: StripeRequestError, attempt: int, now: datetime) -> dict[str, Any]:
    return {"code": error.code, "message": str(error), "attempt": attempt, "at": _stamp(now)}


def _alert_view(alert: Mapping[str, Any]) -> dict[str, Any]:
    amount = alert.get("amount_minor")
    currency = alert.get("currency")
    view = {
        "alert_id": alert.get("alert_id"),
        "kind": alert.get("kind"),
        "status": alert.get("status"),
        "customer_id": alert.get("customer_id"),
        "invoice_id": alert.get("invoice_id"),
        "amount_minor": None if amount is None else int(amount),
        "currency": currency,
        "opened_at": alert.get("opened_at"),
    }
    if amount is not None and isinstance(currency, str) and currency:
        view["amount"] = format_money(Decimal(int(amount)).scaleb(-minor_units(currency)), currency)
    return view


def _amounts(totals: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    return {
        currency: {
            "amount_minor": amount,
            "formatted": format_money(Decimal(amount).scaleb(-minor_units(currency)), currency),
        }
        for currency, amount in sorted(totals.items())
    }


def _export_period(params: Mapping[str, str], now: datetime) -> tuple[str, date, date]:
    """(name for the file, first day, day after the last) of the export request."""
    unknown = sorted(str(name) for name in set(params) - set(EXPORT_PARAMETERS))
    if unknown:
        raise ApiError(400, f"unknown parameter {field_name(unknown[0])}")
    if "month" in params:
        if "from" in params or "to" in params:
            raise ApiError(400, "month cannot be combined with from/to")
        month = params["month"]
        start = _parse_month(month)
        return month, start, _next_month(start)
    if "from" in params or "to" in params:
        for name in ("from", "to"):
            if name not in params:
                raise ApiError(400, f"{name} is required with {'to' if name == 'from' else 'from'}")
        start, end = _parse_day(params["from"], "from"), _parse_day(params["to"], "to")
        if start >= end:
            raise ApiError(400, "to must be after from (to is exclusive)")
        if (end - start).days > MAX_EXPORT_DAYS:
            raise ApiError(400, f"from..to spans more than {MAX_EXPORT_DAYS} days")
        return f"{start.isoformat()}-to-{end.isoformat()}", start, end
    start = now.astimezone(UTC).date().replace(day=1)
    return _month_of(now), start, _next_month(start)


def _parse_month(text: str) -> date:
    if not isinstance(text, str) or not _MONTH.fullmatch(text):
        raise ApiError(400, "month must be YYYY-MM")
    try:
        first = date(int(text[:4]), int(text[5:]), 1)
    except ValueError:
        raise ApiError(400, "month must be YYYY-MM") from None
    if not FIRST_YEAR <= first.year <= LAST_YEAR:
        raise ApiError(400, f"month must be from {FIRST_YEAR}-01 to {LAST_YEAR}-12")
    return first


def _parse_day(text: str, name: str) -> date:
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise ApiError(400, f"{name} must be YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be YYYY-MM-DD") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ApiError(400, f"{name} must be from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31")
    return day


def _next_month(first: date) -> date:
    return date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)


def _occurred_on_or_after(entry: Mapping[str, Any], start: date, end: date) -> bool:
    """True when the entry's UTC day is in [start, end)."""
    day = str(entry.get("occurred_at") or "")[:10]
    return start.isoformat() <= day < end.isoformat()


def _is_total(entry: Mapping[str, Any]) -> bool:
    return str(entry.get("entry_key") or "").startswith(TOTAL_PREFIX)


def _month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def _stamp(moment: datetime) -> str:
    """The store's timestamp format (ISO UTC, seconds): sorts as the instants do."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _text(value: Any) -> str:
    return "" if value is None else str(value)
