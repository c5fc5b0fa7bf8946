"""The invoice bot: one request -> one Stripe invoice, created, itemised, finalized and sent. Pure.

A request carries its own id (the API's `request_id` or `Idempotency-Key`; the CLI makes one and
prints it). The request is recorded first (conditional put), and every Stripe call carries an
idempotency key derived from that record, `finops-guard:invoice:<request id>:<step>`: a retried
request, a Lambda retry or a re-run of the CLI with the same id replays Stripe's answers instead
of creating a second invoice. Progress is recorded after each step, so a retry more than 24 hours
later (when Stripe has forgotten the keys) resumes after the last step that completed.

Latency (the issue's SLO, 99 % within 5 minutes) is measured by the webhook: the invoice carries
`finops_guard_request_id` and `finops_guard_requested_at` in its metadata, and `invoice.sent`
(or `invoice.finalized` for automatically charged invoices) confirms delivery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from finops_guard.core.delivery import ChatMessage
from finops_guard.core.money import ISO_4217, format_money, minor_units

STEPS = ("requested", "created", "item_added", "finalized", "sent")
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{4,}")
MAX_DESCRIPTION = 500
METADATA_REQUEST_ID = "finops_guard_request_id"
METADATA_REQUESTED_AT = "finops_guard_requested_at"


class InvoiceRequestError(ValueError):
    """The request is malformed; the message names the field. Nothing was recorded or sent."""


class RequestConflict(Exception):
    """The request id was used before with different parameters."""


@dataclass(frozen=True)
class InvoiceRequest:
    request_id: str
    customer: str
    amount_minor: int  # in the currency's minor units (JPY: yen, KWD: fils)
    currency: str  # ISO 4217, upper case
    description: str

    def same_as(self, record: Mapping[str, Any]) -> bool:
        return (
            record.get("customer") == self.customer
            and int(record.get("amount_minor", -1)) == self.amount_minor
            and record.get("currency") == self.currency
            and record.get("description") == self.description
        )


@dataclass(frozen=True)
class IssuedInvoice:
    request_id: str
    invoice_id: str
    number: str | None
    status: str
    customer: str
    amount_minor: int
    currency: str
    description: str
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    replayed: bool  # the request had been completed before: nothing was sent to Stripe this time
    customer_name: str | None = None  # as Stripe's invoice names the customer: the card shows it first

    @property
    def amount(self) -> str:
        return format_money(Decimal(self.amount_minor).scaleb(-minor_units(self.currency)), self.currency)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "invoice_id": self.invoice_id,
            "number": self.number,
            "status": self.status,
            "customer": self.customer,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "amount": self.amount,
            "description": self.description,
            "hosted_invoice_url": self.hosted_invoice_url,
            "invoice_pdf": self.invoice_pdf,
            "replayed": self.replayed,
        }


class RequestStore(Protocol):
    def begin(self, request: InvoiceRequest, requested_by: str, now: datetime) -> dict[str, Any]: ...
    def progress(self, request_id: str, status: str, attributes: Mapping[str, Any]) -> None: ...
    def forget(self, request_id: str) -> None: ...


class InvoicingApi(Protocol):
    def create_invoice(self, *, customer: str, currency: str, description: str, days_until_due: int,
                       metadata: Mapping[str, str], idempotency_key: str) -> dict[str, Any]: ...  # fmt: skip
    def add_invoice_item(self, *, invoice: str, customer: str, amount_minor: int, currency: str, description: str,
                         idempotency_key: str) -> dict[str, Any]: ...  # fmt: skip
    def finalize_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]: ...
    def send_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]: ...


def parse_invoice_request(body: Mapping[str, Any], *, request_id: str | None = None) -> InvoiceRequest:
    """`customer`, `currency`, `description`, and `amount` (a decimal string in major units, e.g.
    "1250.00", "1500" JPY, "12.345" KWD) or `amount_minor` (an integer); `request_id` from the body
    or the Idempotency-Key header."""
    rid = str(body.get("request_id") or request_id or "").strip()
    if not REQUEST_ID.fullmatch(rid):
        raise InvoiceRequestError(
            "request_id (or an Idempotency-Key header) is required: 8-128 letters, digits or _.:- ; "
            "it makes a retried request safe"
        )
    customer = str(body.get("customer") or "").strip()
    if not CUSTOMER_ID.fullmatch(customer):
        raise InvoiceRequestError("customer must be a Stripe customer id (cus_...)")
    currency = str(body.get("currency") or "").strip().upper()
    if currency not in ISO_4217:
        raise InvoiceRequestError("currency must be an ISO 4217 code such as USD, EUR, JPY")
    description = str(body.get("description") or "").strip()
    if not description or len(description) > MAX_DESCRIPTION:
        raise InvoiceRequestError(f"description is required (at most {MAX_DESCRIPTION} characters)")
    amount_minor = _amount_minor(body, currency)
    return InvoiceRequest(rid, customer, amount_minor, currency, description)


def _amount_minor(body: Mapping[str, Any], currency: str) -> int:
    digits = minor_units(currency)
    if body.get("amount_minor") is not None:
        raw = body["amount_minor"]
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            raise InvoiceRequestError("amount_minor must be a positive integer of minor units")
        value = int(raw)
    else:
        text = str(body.get("amount") or "").strip()
        if isinstance(body.get("amount"), float):
            raise InvoiceRequestError('amount must be a string such as "1250.00" (a JSON float loses cents)')
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InvoiceRequestError('amount is required, as a decimal string such as "1250.00"') from None
        if not amount.is_finite() or amount.scaleb(digits) != amount.scaleb(digits).to_integral_value():
            raise InvoiceRequestError(f"amount has more than {digits} decimal places for {currency}")
        value = int(amount.scaleb(digits))
    if value <= 0:
        raise InvoiceRequestError("amount must be greater than zero")
    return value


def idempotency_key(request_id: str, step: str) -> str:
    return f"finops-guard:invoice:{request_id}:{step}"


def issue_invoice(
    request: InvoiceRequest,
    *,
    api: InvoicingApi,
    store: RequestStore,
    requested_by: str,
    days_until_due: int,
    now: datetime,
) -> IssuedInvoice:
    """Create, itemise, finalize and send; resume where a previous attempt of this request stopped.
    Raises RequestConflict when the id was used for different parameters."""
    record = store.begin(request, requested_by, now)
    if not request.same_as(record):
        raise RequestConflict(f"request_id {request.request_id} was used for a different invoice")
    done = STEPS.index(str(record.get("status") or "requested"))
    if done == len(STEPS) - 1:
        return _issued(request, record, replayed=True)
    invoice_id = record.get("invoice_id")
    rid = request.request_id
    if not invoice_id:
        requested_at = str(record.get("requested_epoch") or int(now.timestamp()))
        try:
            invoice = api.create_invoice(
                customer=request.customer,
                currency=request.currency,
                description=request.description,
                days_until_due=days_until_due,
                metadata={METADATA_REQUEST_ID: rid, METADATA_REQUESTED_AT: requested_at},
                idempotency_key=idempotency_key(rid, "create"),
            )
        except Exception:
            # Nothing exists in Stripe under our name yet (or a retry replays it by key): keep no record.
            store.forget(rid)
            raise
        invoice_id = str(invoice["id"])
        store.progress(rid, "created", {"invoice_id": invoice_id})
    if done < STEPS.index("item_added"):
        api.add_invoice_item(
            invoice=invoice_id,
            customer=request.customer,
            amount_minor=request.amount_minor,
            currency=request.currency,
            description=request.description,
            idempotency_key=idempotency_key(rid, "item"),
        )
        store.progress(rid, "item_added", {})
    if done < STEPS.index("finalized"):
        invoice = api.finalize_invoice(invoice_id, idempotency_key=idempotency_key(rid, "finalize"))
        store.progress(rid, "finalized", _links(invoice))
    invoice = api.send_invoice(invoice_id, idempotency_key=idempotency_key(rid, "send"))
    links = _links(invoice)
    store.progress(rid, "sent", links)
    return _issued(request, {**record, **links, "invoice_id": invoice_id, "status": "sent"}, replayed=False)


def _links(invoice: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "number": invoice.get("number"),
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
        "invoice_pdf": invoice.get("invoice_pdf"),
        "customer_name": _name(invoice.get("customer_name")),
    }


def _name(value: Any) -> str | None:
    """A customer's name for the finance card: one line, at most 256 characters; None if there is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:256]


def _issued(request: InvoiceRequest, record: Mapping[str, Any], *, replayed: bool) -> IssuedInvoice:
    return IssuedInvoice(
        request_id=request.request_id,
        invoice_id=str(record.get("invoice_id")),
        number=record.get("number"),
        status=str(record.get("status")),
        customer=request.customer,
        amount_minor=request.amount_minor,
        currency=request.currency,
        description=request.description,
        hosted_invoice_url=record.get("hosted_invoice_url"),
        invoice_pdf=record.get("invoice_pdf"),
        replayed=replayed,
        customer_name=record.get("customer_name"),
    )


def invoice_confirmation(invoice: Mapping[str, Any], event_type: str) -> str | None:
    """The bot's request id when this event confirms delivery of a bot invoice: `invoice.sent` for
    invoices e-mailed to the customer, `invoice.finalized` for automatically charged ones."""
    metadata = invoice.get("metadata") or {}
    request_id = metadata.get(METADATA_REQUEST_ID) if isinstance(metadata, Mapping) else None
    if not request_id:
        return None
    automatic = invoice.get("collection_method") == "charge_automatically"
    confirming = "invoice.finalized" if automatic else "invoice.sent"
    return str(request_id) if event_type == confirming else None


class RenderInvoiceSent(Protocol):
    """The finance channel's card for an issued invoice (finops_guard.billing.cards.invoice.render_invoice_sent)."""

    def __call__(self, issued: IssuedInvoice, channel: str, requested_by: str) -> dict[str, Any]: ...


def announcement(
    issued: IssuedInvoice, channels: Sequence[str], requested_by: str, *, render: RenderInvoiceSent
) -> list[ChatMessage]:
    """The finance channel card(s) for an issued invoice; one message id per request and channel,
    so the outbox posts it once however often the request is retried. `render` draws the card (the
    cards import this module's types, so the bot takes its renderer rather than importing it)."""
    return [
        ChatMessage(f"invoice-bot/{issued.request_id}/{channel}", channel, "invoice-sent",
                    render(issued, channel, requested_by))
        for channel in channels
    ]  # fmt: skip
