"""Stripe events -> billing effects: ledger entries, object state, alerts, dunning steps. Pure.

The event arrives parsed into strict typed values (`finops_guard.billing.stripe_events`): the rules here
never meet a float, a string amount or a missing id. Money is integer minor units plus ISO
currency, exactly as Stripe sends it (JPY has no decimals, KWD three); nothing here converts to a
decimal amount. Ordering: each Stripe object (invoice, subscription, charge) keeps a state with a
rank; an event whose state ranks below what is stored (e.g. `invoice.payment_failed` after
`invoice.paid`) is recorded but changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from finops_guard.billing.invoice_bot import METADATA_REQUEST_ID, invoice_confirmation
from finops_guard.billing.stripe_events import HANDLED as HANDLED  # re-exported: the rules' public names
from finops_guard.billing.stripe_events import (
    BillingAlert,
    Charge,
    CreditNote,
    Invoice,
    StripeEvent,
    Subscription,
    parse_event,
)
from finops_guard.billing.stripe_events import EventShapeError as EventShapeError
from finops_guard.billing.stripe_events import line_kind as line_kind

LEDGER_KINDS = ("subscription", "booking_fee", "credit_adjustment")
# Invoice lifecycle: a later state never goes back to an earlier one.
INVOICE_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
ESCALATE_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class LedgerEntry:
    customer_id: str
    entry_key: str  # "<ISO time>#<source id>#<kind>": unique per source, sorts by time
    month: str  # "YYYY-MM" (UTC) for the by-month index
    kind: str
    amount_minor: int  # negative for credits and refunds
    currency: str  # ISO 4217, upper case
    invoice_id: str | None
    source_id: str  # the Stripe object the entry comes from (invoice, credit note, refund)
    event_id: str
    occurred_at: str


@dataclass(frozen=True)
class StateChange:
    """Set an object's state if it is not older than what is stored (rank, then event time)."""

    object_id: str
    object_type: str
    rank: int
    event_created: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class AlertChange:
    alert_id: str  # "<kind>#<object id>"
    kind: str  # invoice_failed | payment_action_required | escalation | threshold_exceeded
    customer_id: str | None
    invoice_id: str | None
    amount_minor: int | None
    currency: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    customer_name: str | None = None  # as the event named the customer: the card shows it before the id


@dataclass(frozen=True)
class DunningStep:
    invoice_id: str
    step: str  # "<day>#<channel>", e.g. "0#email"
    day: int
    channel: str
    due_at: str


@dataclass
class Effects:
    """Everything one event changes. `state` guards ordering; the rest is written only with it."""

    event_id: str
    event_type: str
    state: StateChange | None = None
    ledger: list[LedgerEntry] = field(default_factory=list)
    open_alerts: list[AlertChange] = field(default_factory=list)
    dunning: list[DunningStep] = field(default_factory=list)
    settle_invoice: str | None = None  # paid: resolve its alerts and cancel pending dunning (after commit)
    refund_level: tuple[str, int] | None = None  # (charge id, cumulative refunded) for optimistic refunds
    refund_recorded: int = 0  # the level already booked, filled in by the store before writing
    ignored: bool = False
    event_created: int = 0
    confirm_invoice_request: str | None = None  # an invoice bot request this event confirms delivered
    customer_name: str | None = None  # the event's customer's name, for the alerts it raises (threshold too)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")


def dunning_schedule(invoice_id: str, failed_at: int, steps: list[tuple[int, str]]) -> list[DunningStep]:
    return [
        DunningStep(invoice_id, f"{day}#{channel}", day, channel, _iso(failed_at + day * 86400))
        for day, channel in steps
    ]


def parse_dunning_steps(text: str) -> list[tuple[int, str]]:
    """ "0:email,1:sms,3:email" -> [(0, "email"), (1, "sms"), (3, "email")]."""
    steps = []
    for part in text.split(","):
        day, _, channel = part.strip().partition(":")
        if not day.isdigit() or channel not in ("email", "sms"):
            raise ValueError(f"dunning step {part!r} is not DAY:email or DAY:sms")
        steps.append((int(day), channel))
    return steps


def effects_of(event: StripeEvent | Mapping[str, Any], *, dunning_steps: list[tuple[int, str]]) -> Effects:
    """What a Stripe event changes; a decoded body is parsed first (EventShapeError names a bad
    field). Types we do not handle are `ignored` (answered 200)."""
    parsed = event if isinstance(event, StripeEvent) else parse_event(event)
    effects = Effects(parsed.id, parsed.type, event_created=parsed.created)
    obj = parsed.object
    if isinstance(obj, Invoice):
        _invoice(effects, obj, parsed.created, dunning_steps)
    elif isinstance(obj, Charge):
        _refund(effects, obj, parsed.created)
    elif isinstance(obj, CreditNote):
        _credit_note(effects, obj, parsed.created)
    elif isinstance(obj, Subscription):
        _subscription(effects, obj, parsed.created)
    elif isinstance(obj, BillingAlert):
        _billing_alert(effects, obj, parsed.created)
    else:
        effects.ignored = True
    return effects


def _invoice(effects: Effects, invoice: Invoice, created: int, steps: list[tuple[int, str]]) -> None:
    kind = effects.event_type
    invoice_id, customer, currency = invoice.id, invoice.customer_id, invoice.currency.upper()
    effects.customer_name = name = invoice.customer_name
    if kind == "invoice.paid":
        status = "paid"
    elif kind == "invoice.created":
        status = invoice.status or "draft"
    else:  # finalized, sent, payment_failed, payment_action_required: the invoice is (still) open
        status = "open"
    attributes: dict[str, Any] = {
        "status": status,
        "customer_id": customer,
        "currency": currency,
        "amount_due": invoice.amount_due,
        "attempt_count": invoice.attempt_count,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "last_event_type": kind,
    }
    if kind == "invoice.sent":
        attributes["sent_at"] = _iso(created)
    if kind == "invoice.finalized":
        attributes["finalized_at"] = _iso(created)
    effects.state = StateChange(invoice_id, "invoice", INVOICE_RANK.get(status, 1), created, attributes)
    effects.confirm_invoice_request = invoice_confirmation(
        {"metadata": {METADATA_REQUEST_ID: invoice.bot_request_id}, "collection_method": invoice.collection_method},
        kind,
    )

    if kind == "invoice.paid":
        assert customer is not None  # the parser refuses a paid invoice without a customer
        paid_at = invoice.paid_at or created
        # Lines net per kind: credits and proration credits (negative lines) reduce what is booked,
        # so the entries of an invoice add up to the sum of its lines, as reconciliation compares.
        totals: dict[str, int] = {}
        for line in invoice.lines:
            totals[line.kind] = totals.get(line.kind, 0) + line.amount_minor
        for ledger_kind, amount in sorted(totals.items()):
            effects.ledger.append(
                LedgerEntry(customer, f"{_iso(paid_at)}#{invoice_id}#{ledger_kind}", _month(paid_at), ledger_kind,
                            amount, currency, invoice_id, invoice_id, effects.event_id, _iso(paid_at))
            )  # fmt: skip
        effects.settle_invoice = invoice_id
    elif kind == "invoice.payment_failed":
        attempts, amount = invoice.attempt_count, invoice.amount_due
        effects.open_alerts.append(
            AlertChange(f"invoice_failed#{invoice_id}", "invoice_failed", customer, invoice_id, amount, currency,
                        {"attempt_count": attempts}, name)
        )  # fmt: skip
        effects.dunning = dunning_schedule(invoice_id, created, steps)
        if attempts >= ESCALATE_AFTER_ATTEMPTS:
            effects.open_alerts.append(
                AlertChange(f"escalation#{invoice_id}", "escalation", customer, invoice_id, amount, currency,
                            {"attempt_count": attempts}, name)
            )  # fmt: skip
    elif kind == "invoice.payment_action_required":
        effects.open_alerts.append(
            AlertChange(f"payment_action_required#{invoice_id}", "payment_action_required", customer, invoice_id,
                        invoice.amount_due, currency, customer_name=name)
        )  # fmt: skip


def _refund(effects: Effects, charge: Charge, created: int) -> None:
    refunded, currency = charge.amount_refunded, charge.currency.upper()
    effects.refund_level = (charge.id, refunded)
    # The amount is the delta over the level already recorded; the store fills it in (optimistic).
    effects.ledger.append(
        LedgerEntry(charge.customer_id or "unknown", f"{_iso(created)}#{charge.id}#refund-{refunded}", _month(created),
                    "credit_adjustment", -refunded, currency, charge.invoice_id, charge.id, effects.event_id,
                    _iso(created))
    )  # fmt: skip


def _credit_note(effects: Effects, note: CreditNote, created: int) -> None:
    at = note.created or created
    effects.ledger.append(
        LedgerEntry(note.customer_id or "unknown", f"{_iso(at)}#{note.id}#credit_adjustment", _month(at),
                    "credit_adjustment", -note.total, note.currency.upper(), note.invoice_id, note.id,
                    effects.event_id, _iso(at))
    )  # fmt: skip


def _subscription(effects: Effects, sub: Subscription, created: int) -> None:
    status = "canceled" if effects.event_type.endswith(".deleted") else sub.status or "active"
    items = [
        {
            "price": item.price_id,
            "unit_amount": item.unit_amount,
            "quantity": item.quantity,
            "interval": item.interval,
            "interval_count": item.interval_count,
        }
        for item in sub.items
    ]
    attributes = {
        "status": status,
        "customer_id": sub.customer_id,
        "currency": sub.currency.upper() if sub.currency else None,
        "items": items,
        "last_event_type": effects.event_type,
    }
    # Subscriptions move back and forth (active <-> past_due): order by event time only.
    effects.state = StateChange(sub.id, "subscription", 0, created, attributes)


def _billing_alert(effects: Effects, alert: BillingAlert, created: int) -> None:
    customer = alert.customer_id
    detail: dict[str, Any] = {"source": "stripe billing.alert", "title": alert.title}
    usage = {"usage": alert.usage, "usage_threshold": alert.usage_threshold, "meter": alert.meter}
    detail.update({key: value for key, value in usage.items() if value is not None})
    effects.open_alerts.append(
        AlertChange(f"threshold_exceeded#stripe#{alert.alert_id or 'alert'}#{customer or 'account'}#{_month(created)}",
                    "threshold_exceeded", customer, None, None, None, detail, alert.customer_name)
    )  # fmt: skip
