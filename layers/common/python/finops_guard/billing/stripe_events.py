"""Stripe webhook events parsed at the boundary into strict typed values. Pure: no I/O, no stripe.

Only what the billing rules use is read, and every value read is checked; anything else raises
`EventShapeError` naming the field (the webhook answers 400 and writes nothing). Fields the rules
do not read are never looked at, so Stripe adding or reshaping them changes nothing here.

- Money: a JSON integer of minor units (not a bool, float or string), |amount| <= MAX_MINOR.
  Invoice lines may be negative (credits, proration credits); amounts due, refunded levels, credit
  note totals and prices are 0 or more.
- Currency: three lower-case letters, as Stripe sends it. The shape, not a list: Stripe adds
  currencies (and keeps some ISO has withdrawn), the ledger books minor units as sent and needs no
  exponent to be right, and a list would stop no one who can sign an event.
- Ids (keys in DynamoDB): 1..MAX_ID_LENGTH characters of [A-Za-z0-9_-], the characters Stripe
  allows in ids. An expanded object (`{"id": "cus_..", "object": "customer", ...}`) where an id is
  expected counts as its `id`: Stripe documents these fields as "string or expanded object".
- Timestamps: integer Unix seconds within [MIN_TIMESTAMP, MAX_TIMESTAMP).
- Enums (statuses, intervals, line types): the shape of an enum value, not a list, because Stripe
  adds values without a new API version; an unknown status ranks like an open invoice.
- Text (titles, URLs, metadata): bounded strings that can be encoded as UTF-8 (no lone surrogates).

The typed values are NamedTuples, not dataclasses: the same immutability and names at a seventh of
the class-creation cost, which the webhook pays on every cold start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from finops_guard.billing.invoice_bot import METADATA_REQUEST_ID, REQUEST_ID

# Stripe's largest amount is 8 digits for most currencies and more for a few (IDR); the bound only
# keeps every sum exact (below 2**53, so even a double-based reader of the ledger adds exactly).
MAX_MINOR = 10**15 - 1
# Stripe: "object IDs we generate will never exceed 255 characters". DynamoDB keys allow 2048 bytes
# (partition) and 1024 (sort); our longest key built from ids, an alert id with two ids, stays < 600.
MAX_ID_LENGTH = 255
MIN_TIMESTAMP = 1_230_768_000  # 2009-01-01T00:00:00Z, before Stripe's first event
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01T00:00:00Z
MAX_TEXT = 500  # Stripe's metadata values and alert titles are shorter
MAX_NAME = 256  # a customer's name as Stripe's dashboard takes it
MAX_URL = 2048
MAX_ATTEMPTS = 10_000
MAX_QUANTITY = 10**9
MAX_INTERVAL_COUNT = 1095  # Stripe allows at most three years (1095 days, 156 weeks, 36 months)
MAX_SUBSCRIPTION_ITEMS = 100  # Stripe allows 20; each is stored in the subscription's item (400 KB cap)

_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,251}")
_EVENT_TYPE = re.compile(r"[a-z0-9_]{1,64}(?:\.[a-z0-9_]{1,64}){0,5}")
_CURRENCY = re.compile(r"[a-z]{3}")
_ENUM = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SURROGATE = re.compile("[\ud800-\udfff]")

INVOICE_TYPES = (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.sent",
)
SUBSCRIPTION_TYPES = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
HANDLED = (*INVOICE_TYPES, "charge.refunded", "credit_note.created", *SUBSCRIPTION_TYPES, "billing.alert.triggered")


class EventShapeError(ValueError):
    """A signed event lacks what its type must carry or carries it in the wrong shape: a 400, since
    Stripe retrying will not fix it. `field` is the path in the event (`data.object.currency`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class InvoiceLine(NamedTuple):
    amount_minor: int  # negative for credits and proration credits
    kind: str  # subscription | booking_fee


class Invoice(NamedTuple):
    id: str
    customer_id: str | None
    currency: str  # ISO 4217, lower case as Stripe sends it
    status: str | None
    amount_due: int  # minor units, >= 0
    attempt_count: int
    hosted_invoice_url: str | None
    paid_at: int | None
    lines: tuple[InvoiceLine, ...]  # read for invoice.paid only; empty otherwise
    collection_method: str | None
    bot_request_id: str | None  # the invoice bot's request id from the metadata, if it is one
    customer_name: str | None = None  # for finance cards only: names before ids


class Charge(NamedTuple):
    id: str
    customer_id: str | None
    currency: str
    amount_refunded: int  # cumulative, minor units, >= 0
    invoice_id: str | None


class CreditNote(NamedTuple):
    id: str
    customer_id: str | None
    currency: str
    total: int  # minor units, >= 0: the credit given
    created: int | None
    invoice_id: str | None


class SubscriptionItem(NamedTuple):
    price_id: str | None
    unit_amount: int  # minor units, >= 0 (0 when the price has no flat unit amount, e.g. tiered)
    quantity: int
    interval: str | None
    interval_count: int


class Subscription(NamedTuple):
    id: str
    customer_id: str | None
    currency: str | None
    status: str | None
    items: tuple[SubscriptionItem, ...]


class BillingAlert(NamedTuple):
    alert_id: str | None
    title: str | None
    customer_id: str | None
    customer_name: str | None = None  # from an expanded customer object, when Stripe sent one
    usage: int | None = None  # the meter's value that triggered the alert (`value`)
    usage_threshold: int | None = None  # the alert's `usage_threshold.gte`
    meter: str | None = None  # the meter's display name


StripeObject = Invoice | Charge | CreditNote | Subscription | BillingAlert


class StripeEvent(NamedTuple):
    id: str
    type: str
    created: int
    object: StripeObject | None  # None for the types we do not handle (answered 200, ignored)


def parse_event(document: Any) -> StripeEvent:
    """A decoded webhook body as a typed event. Raises EventShapeError naming the first bad field."""
    if not isinstance(document, dict):
        raise EventShapeError("body", "must be a JSON object")
    event_id = document.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise EventShapeError("id", "must be a Stripe event id (evt_...)")
    event_type = document.get("type")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise EventShapeError("type", "must be a Stripe event type")
    created = _required_timestamp(document.get("created"), "created")
    data = document.get("data")
    if not isinstance(data, dict):
        raise EventShapeError("data", "must be an object")
    obj = _object(data.get("object"), "data.object")
    parsed: StripeObject | None = None
    if event_type in INVOICE_TYPES:
        parsed = _invoice(obj, event_type)
    elif event_type == "charge.refunded":
        parsed = _charge(obj)
    elif event_type == "credit_note.created":
        parsed = _credit_note(obj)
    elif event_type in SUBSCRIPTION_TYPES:
        parsed = _subscription(obj)
    elif event_type == "billing.alert.triggered":
        parsed = _billing_alert(obj)
    return StripeEvent(event_id, event_type, created, parsed)


def line_kind(line: Mapping[str, Any]) -> str:
    """`subscription` for recurring subscription fees, `booking_fee` for per-use and one-off items."""
    parent = line.get("parent")
    if isinstance(parent, Mapping) and parent.get("type"):
        return "subscription" if parent["type"] == "subscription_item_details" else "booking_fee"
    if line.get("type") in ("subscription", "invoiceitem"):  # API versions before 2025
        return "subscription" if line["type"] == "subscription" else "booking_fee"
    return "subscription" if line.get("subscription") else "booking_fee"


# --- the handled objects ---------------------------------------------------------------------------

OBJ = "data.object"  # where the object lies in the event, for the field names in errors


def _invoice(obj: Mapping[str, Any], event_type: str) -> Invoice:
    _object_type(obj, "invoice")
    customer = _ref(obj.get("customer"), f"{OBJ}.customer")
    if event_type == "invoice.paid" and customer is None:
        raise EventShapeError(f"{OBJ}.customer", "is required for invoice.paid")
    transitions = _optional_object(obj.get("status_transitions"), f"{OBJ}.status_transitions") or {}
    lines: tuple[InvoiceLine, ...] = ()
    if event_type == "invoice.paid":
        lines = _invoice_lines(obj.get("lines"))
    return Invoice(
        id=_required_id(obj.get("id"), f"{OBJ}.id"),
        customer_id=customer,
        currency=_currency(obj.get("currency"), f"{OBJ}.currency"),
        status=_enum(obj.get("status"), f"{OBJ}.status"),
        amount_due=_minor(obj.get("amount_due"), f"{OBJ}.amount_due", low=0, default=0),
        attempt_count=_count(obj.get("attempt_count"), f"{OBJ}.attempt_count", 0, MAX_ATTEMPTS, default=0),
        hosted_invoice_url=_url(obj.get("hosted_invoice_url"), f"{OBJ}.hosted_invoice_url"),
        paid_at=_timestamp(transitions.get("paid_at"), f"{OBJ}.status_transitions.paid_at"),
        lines=lines,
        collection_method=_enum(obj.get("collection_method"), f"{OBJ}.collection_method"),
        bot_request_id=_bot_request_id(obj.get("metadata")),
        customer_name=_display_text(obj.get("customer_name")),
    )


def _invoice_lines(value: Any) -> tuple[InvoiceLine, ...]:
    lines = _optional_object(value, f"{OBJ}.lines")
    if lines is None:
        return ()
    data = lines.get("data")
    if data is None:
        return ()
    if not isinstance(data, list):
        raise EventShapeError(f"{OBJ}.lines.data", "must be a list")
    parsed = []
    for i, raw in enumerate(data):
        path = f"{OBJ}.lines.data[{i}]"
        line = _object(raw, path)
        parent = _optional_object(line.get("parent"), f"{path}.parent")
        if parent is not None:
            _enum(parent.get("type"), f"{path}.parent.type")
        _enum(line.get("type"), f"{path}.type")
        _ref(line.get("subscription"), f"{path}.subscription")
        # Negative lines are real: credits and proration credits reduce what the invoice books.
        amount = _minor(line.get("amount"), f"{path}.amount", low=-MAX_MINOR)
        parsed.append(InvoiceLine(amount, line_kind(line)))
    return tuple(parsed)


def _bot_request_id(value: Any) -> str | None:
    metadata = _optional_object(value, f"{OBJ}.metadata")
    if metadata is None:
        return None
    request_id = _text(metadata.get(METADATA_REQUEST_ID), f"{OBJ}.metadata.{METADATA_REQUEST_ID}", MAX_TEXT)
    # Metadata is free text anyone with dashboard access can edit: only our own shape is a request.
    return request_id if request_id is not None and REQUEST_ID.fullmatch(request_id) else None


def _charge(obj: Mapping[str, Any]) -> Charge:
    _object_type(obj, "charge")
    return Charge(
        id=_required_id(obj.get("id"), f"{OBJ}.id"),
        customer_id=_ref(obj.get("customer"), f"{OBJ}.customer"),
        currency=_currency(obj.get("currency"), f"{OBJ}.currency"),
        amount_refunded=_minor(obj.get("amount_refunded"), f"{OBJ}.amount_refunded", low=0),
        invoice_id=_ref(obj.get("invoice"), f"{OBJ}.invoice"),
    )


def _credit_note(obj: Mapping[str, Any]) -> CreditNote:
    _object_type(obj, "credit_note")
    total_field = "total" if obj.get("total") is not None else "amount"
    return CreditNote(
        id=_required_id(obj.get("id"), f"{OBJ}.id"),
        customer_id=_ref(obj.get("customer"), f"{OBJ}.customer"),
        currency=_currency(obj.get("currency"), f"{OBJ}.currency"),
        total=_minor(obj.get(total_field), f"{OBJ}.{total_field}", low=0),
        created=_timestamp(obj.get("created"), f"{OBJ}.created"),
        invoice_id=_ref(obj.get("invoice"), f"{OBJ}.invoice"),
    )


def _subscription(obj: Mapping[str, Any]) -> Subscription:
    _object_type(obj, "subscription")
    items = _optional_object(obj.get("items"), f"{OBJ}.items") or {}
    data = items.get("data")
    if data is not None and not isinstance(data, list):
        raise EventShapeError(f"{OBJ}.items.data", "must be a list")
    if data is not None and len(data) > MAX_SUBSCRIPTION_ITEMS:
        raise EventShapeError(f"{OBJ}.items.data", f"has more than {MAX_SUBSCRIPTION_ITEMS} items")
    currency = obj.get("currency")
    return Subscription(
        id=_required_id(obj.get("id"), f"{OBJ}.id"),
        customer_id=_ref(obj.get("customer"), f"{OBJ}.customer"),
        currency=None if currency is None else _currency(currency, f"{OBJ}.currency"),
        status=_enum(obj.get("status"), f"{OBJ}.status"),
        items=tuple(_subscription_item(raw, f"{OBJ}.items.data[{i}]") for i, raw in enumerate(data or ())),
    )


def _subscription_item(raw: Any, path: str) -> SubscriptionItem:
    item = _object(raw, path)
    key = "price" if item.get("price") is not None else "plan"  # plans: API versions before prices
    price = _optional_object(item.get(key), f"{path}.{key}") or {}
    recurring = _optional_object(price.get("recurring"), f"{path}.{key}.recurring") or {}
    amount_key = "unit_amount" if price.get("unit_amount") is not None else "amount"
    interval = _enum(recurring.get("interval"), f"{path}.{key}.recurring.interval") or _enum(
        price.get("interval"), f"{path}.{key}.interval"
    )
    count_source, count_path = recurring, f"{path}.{key}.recurring"
    if recurring.get("interval_count") is None:
        count_source, count_path = price, f"{path}.{key}"
    return SubscriptionItem(
        price_id=_text(price.get("id"), f"{path}.{key}.id", MAX_ID_LENGTH),  # legacy plan ids are free text
        unit_amount=_minor(price.get(amount_key), f"{path}.{key}.{amount_key}", low=0, default=0),
        quantity=_count(item.get("quantity"), f"{path}.quantity", 0, MAX_QUANTITY, default=1),
        interval=interval,
        interval_count=_count(
            count_source.get("interval_count"), f"{count_path}.interval_count", 1, MAX_INTERVAL_COUNT, default=1
        ),
    )


def _billing_alert(obj: Mapping[str, Any]) -> BillingAlert:
    nested = _optional_object(obj.get("alert"), f"{OBJ}.alert")
    alert, path = (nested, f"{OBJ}.alert") if nested is not None else (obj, OBJ)
    customer = obj.get("customer")
    found = (nested or obj).get("usage_threshold")
    usage: Mapping[str, Any] = found if isinstance(found, dict) else {}
    meter: Mapping[str, Any] = usage["meter"] if isinstance(usage.get("meter"), dict) else {}
    return BillingAlert(
        alert_id=_id(alert.get("id"), f"{path}.id"),
        title=_text(alert.get("title"), f"{path}.title", MAX_TEXT),
        customer_id=_ref(customer, f"{OBJ}.customer"),
        customer_name=_display_text(customer.get("name")) if isinstance(customer, dict) else None,
        usage=_display_count(obj.get("value")),
        usage_threshold=_display_count(usage.get("gte")),
        meter=_display_text(meter.get("display_name")),
    )


# --- values ----------------------------------------------------------------------------------------


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EventShapeError(path, "must be an object")
    return value


def _optional_object(value: Any, path: str) -> Mapping[str, Any] | None:
    return None if value is None else _object(value, path)


def _object_type(obj: Mapping[str, Any], expected: str) -> None:
    declared = obj.get("object")
    if declared is not None and declared != expected:
        raise EventShapeError(f"{OBJ}.object", f"must be {expected!r} for this event type")


def _id(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise EventShapeError(path, f"must be an id of 1-{MAX_ID_LENGTH} letters, digits, _ or -")
    return value


def _required_id(value: Any, path: str) -> str:
    found = _id(value, path)
    if found is None:
        raise EventShapeError(path, "is missing")
    return found


def _ref(value: Any, path: str) -> str | None:
    """An id, or an expanded object standing for it: its own `id`."""
    if isinstance(value, dict):
        return _required_id(value.get("id"), f"{path}.id")
    return _id(value, path)


def _minor(value: Any, path: str, *, low: int, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if type(value) is not int:  # bool is an int subclass; floats and strings are not money
        raise EventShapeError(path, "must be an integer amount in minor units")
    if not low <= value <= MAX_MINOR:
        raise EventShapeError(path, f"must be between {low} and {MAX_MINOR}")
    return value


def _count(value: Any, path: str, low: int, high: int, *, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise EventShapeError(path, f"must be an integer between {low} and {high}")
    return value


def _currency(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise EventShapeError(path, "must be a three-letter lower-case ISO 4217 code")
    return value


def _timestamp(value: Any, path: str) -> int | None:
    return None if value is None else _required_timestamp(value, path)


def _required_timestamp(value: Any, path: str) -> int:
    if type(value) is not int or not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
        raise EventShapeError(path, "must be Unix seconds between 2009 and 2100")
    return value


def _enum(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ENUM.fullmatch(value):
        raise EventShapeError(path, "must be a lower-case enum value")
    return value


def _text(value: Any, path: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length or _SURROGATE.search(value):
        raise EventShapeError(path, f"must be text of at most {max_length} characters")
    return value


def _display_text(value: Any) -> str | None:
    """Text only a card shows (a customer's name): never a reason to refuse the event, so a value
    that is not short, clean text is dropped instead (the card then shows the id alone)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or _SURROGATE.search(value):
        return None
    return " ".join(value.split())  # no line breaks inside a card's fact


def _display_count(value: Any) -> int | None:
    """A count only a card shows (meter usage): an integer in range, else dropped."""
    return value if type(value) is int and 0 <= value <= MAX_MINOR else None


def _url(value: Any, path: str) -> str | None:
    url = _text(value, path, MAX_URL)
    if url is not None and not url.startswith("https://"):
        raise EventShapeError(path, "must be an https URL")
    return url
