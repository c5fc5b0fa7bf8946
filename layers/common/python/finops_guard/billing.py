"""Stripe events -> billing effects: ledger entries, object state, alerts, dunning steps. Pure.

Money is integer minor units plus ISO currency, exactly as Stripe sends it (JPY has no decimals,
KWD three); nothing here converts to a decimal amount. Ordering: each Stripe object (invoice,
subscription, charge) keeps a state with a rank; an event whose state ranks below what is stored
(e.g. `invoice.payment_failed` after `invoice.paid`) is recorded but changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from finops_guard.invoice_bot import invoice_confirmation

LEDGER_KINDS = ("subscription", "booking_fee", "credit_adjustment")
HANDLED = (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.sent",
    "charge.refunded",
    "credit_note.created",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "billing.alert.triggered",
)
# Invoice lifecycle: a later state never goes back to an earlier one.
INVOICE_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
ESCALATE_AFTER_ATTEMPTS = 3


class EventShapeError(ValueError):
    """The event is signed but lacks what its type must carry (a 400: Stripe will not fix it by retrying)."""


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


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")


def _require(obj: Mapping[str, Any], key: str, event_type: str) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise EventShapeError(f"{event_type}: data.object.{key} is missing")
    return value


def _customer(obj: Mapping[str, Any]) -> str | None:
    customer = obj.get("customer")
    return customer.get("id") if isinstance(customer, Mapping) else customer


def line_kind(line: Mapping[str, Any]) -> str:
    """`subscription` for recurring subscription fees, `booking_fee` for per-use and one-off items."""
    parent = line.get("parent")
    if isinstance(parent, Mapping) and parent.get("type"):
        return "subscription" if parent["type"] == "subscription_item_details" else "booking_fee"
    if line.get("type") in ("subscription", "invoiceitem"):  # API versions before 2025
        return "subscription" if line["type"] == "subscription" else "booking_fee"
    return "subscription" if line.get("subscription") else "booking_fee"


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


def effects_of(event: Mapping[str, Any], *, dunning_steps: list[tuple[int, str]]) -> Effects:
    """What a verified Stripe event changes. Unknown types are `ignored` (answered 200)."""
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    if not event_id.startswith("evt_"):
        raise EventShapeError("event id missing")
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < 2**32:
        raise EventShapeError(f"{event_type}: created missing")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise EventShapeError(f"{event_type}: data.object missing")
    effects = Effects(event_id, event_type, event_created=created)
    try:
        if event_type.startswith("invoice."):
            _invoice(effects, obj, created, dunning_steps)
        elif event_type == "charge.refunded":
            _refund(effects, obj, created)
        elif event_type == "credit_note.created":
            _credit_note(effects, obj, created)
        elif event_type.startswith("customer.subscription."):
            _subscription(effects, obj, created)
        elif event_type == "billing.alert.triggered":
            _billing_alert(effects, event, obj, created)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as error:
        # Authentic (signed) but not shaped as its type promises: Stripe retrying will not fix it.
        raise EventShapeError(f"{event_type}: unexpected object shape ({type(error).__name__})") from None
    if event_type not in HANDLED:
        effects.ignored = True
    return effects


def _invoice(effects: Effects, invoice: Mapping[str, Any], created: int, steps: list[tuple[int, str]]) -> None:
    kind = effects.event_type
    if kind not in HANDLED:
        return
    invoice_id = _require(invoice, "id", kind)
    currency = str(_require(invoice, "currency", kind)).upper()
    customer = _customer(invoice)
    if kind == "invoice.paid":
        status = "paid"
    elif kind == "invoice.created":
        status = str(invoice.get("status") or "draft")
    else:  # finalized, sent, payment_failed, payment_action_required: the invoice is (still) open
        status = "open"
    attributes: dict[str, Any] = {
        "status": status,
        "customer_id": customer,
        "currency": currency,
        "amount_due": int(invoice.get("amount_due") or 0),
        "attempt_count": int(invoice.get("attempt_count") or 0),
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
        "last_event_type": kind,
    }
    if kind == "invoice.sent":
        attributes["sent_at"] = _iso(created)
    if kind == "invoice.finalized":
        attributes["finalized_at"] = _iso(created)
    effects.state = StateChange(invoice_id, "invoice", INVOICE_RANK.get(status, 1), created, attributes)
    effects.confirm_invoice_request = invoice_confirmation(invoice, kind)

    if kind == "invoice.paid":
        if not customer:
            raise EventShapeError("invoice.paid: data.object.customer is missing")
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or created
        totals: dict[str, int] = {}
        for line in (invoice.get("lines") or {}).get("data") or []:
            totals[line_kind(line)] = totals.get(line_kind(line), 0) + int(line.get("amount") or 0)
        for ledger_kind, amount in sorted(totals.items()):
            effects.ledger.append(
                LedgerEntry(customer, f"{_iso(paid_at)}#{invoice_id}#{ledger_kind}", _month(paid_at), ledger_kind,
                            amount, currency, invoice_id, invoice_id, effects.event_id, _iso(paid_at))
            )  # fmt: skip
        effects.settle_invoice = invoice_id
    elif kind == "invoice.payment_failed":
        attempts = int(invoice.get("attempt_count") or 0)
        amount = int(invoice.get("amount_due") or 0)
        effects.open_alerts.append(
            AlertChange(f"invoice_failed#{invoice_id}", "invoice_failed", customer, invoice_id, amount, currency,
                        {"attempt_count": attempts})
        )  # fmt: skip
        effects.dunning = dunning_schedule(invoice_id, created, steps)
        if attempts >= ESCALATE_AFTER_ATTEMPTS:
            effects.open_alerts.append(
                AlertChange(f"escalation#{invoice_id}", "escalation", customer, invoice_id, amount, currency,
                            {"attempt_count": attempts})
            )  # fmt: skip
    elif kind == "invoice.payment_action_required":
        effects.open_alerts.append(
            AlertChange(f"payment_action_required#{invoice_id}", "payment_action_required", customer, invoice_id,
                        int(invoice.get("amount_due") or 0), currency)
        )  # fmt: skip


def _refund(effects: Effects, charge: Mapping[str, Any], created: int) -> None:
    charge_id = _require(charge, "id", effects.event_type)
    currency = str(_require(charge, "currency", effects.event_type)).upper()
    customer = _customer(charge) or "unknown"
    refunded = int(charge.get("amount_refunded") or 0)
    effects.refund_level = (charge_id, refunded)
    invoice = charge.get("invoice")
    invoice_id = invoice.get("id") if isinstance(invoice, Mapping) else invoice
    # The amount is the delta over the level already recorded; the store fills it in (optimistic).
    effects.ledger.append(
        LedgerEntry(customer, f"{_iso(created)}#{charge_id}#refund-{refunded}", _month(created), "credit_adjustment",
                    -refunded, currency, invoice_id, charge_id, effects.event_id, _iso(created))
    )  # fmt: skip


def _credit_note(effects: Effects, note: Mapping[str, Any], created: int) -> None:
    note_id = _require(note, "id", effects.event_type)
    currency = str(_require(note, "currency", effects.event_type)).upper()
    customer = _customer(note) or "unknown"
    total = int(note.get("total") or note.get("amount") or 0)
    at = int(note.get("created") or created)
    effects.ledger.append(
        LedgerEntry(customer, f"{_iso(at)}#{note_id}#credit_adjustment", _month(at), "credit_adjustment", -total,
                    currency, note.get("invoice"), note_id, effects.event_id, _iso(at))
    )  # fmt: skip


def _subscription(effects: Effects, sub: Mapping[str, Any], created: int) -> None:
    sub_id = _require(sub, "id", effects.event_type)
    status = "canceled" if effects.event_type.endswith(".deleted") else str(sub.get("status") or "active")
    items = []
    for item in (sub.get("items") or {}).get("data") or []:
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or {}
        items.append(
            {
                "price": price.get("id"),
                "unit_amount": int(price.get("unit_amount") or price.get("amount") or 0),
                "quantity": int(item.get("quantity") or 1),
                "interval": recurring.get("interval") or price.get("interval"),
                "interval_count": int(recurring.get("interval_count") or price.get("interval_count") or 1),
            }
        )
    attributes = {
        "status": status,
        "customer_id": _customer(sub),
        "currency": str(sub.get("currency") or "").upper() or None,
        "items": items,
        "last_event_type": effects.event_type,
    }
    # Subscriptions move back and forth (active <-> past_due): order by event time only.
    effects.state = StateChange(sub_id, "subscription", 0, created, attributes)


def _billing_alert(effects: Effects, event: Mapping[str, Any], obj: Mapping[str, Any], created: int) -> None:
    nested = obj.get("alert")
    alert: Mapping[str, Any] = nested if isinstance(nested, Mapping) else obj
    customer = _customer(obj)
    alert_id = str(alert.get("id") or "alert")
    effects.open_alerts.append(
        AlertChange(f"threshold_exceeded#stripe#{alert_id}#{customer or 'account'}#{_month(created)}",
                    "threshold_exceeded", customer, None, None, None,
                    {"source": "stripe billing.alert", "title": alert.get("title")})
    )  # fmt: skip
