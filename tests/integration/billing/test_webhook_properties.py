"""Property tests of the Stripe webhook (issue 15): generated families, signed with the real signing
helper and unsigned, for every handled event type.

Every case asserts exactly one of: a 4xx and every table unchanged, or a 200 (applied, duplicate,
stale or ignored); never an exception. Well-formed variations must be applied, with exact amounts.

Where the cases run, and how many (moto over HTTP costs ~70 ms a case on CI's 2 cores, and the
tables are scanned after each case, so the bulk runs against an in-memory stand-in):
- `handle_webhook` with the real BillingStore over `ValidatingDynamoDB`, which checks every request
  against botocore's DynamoDB model and DynamoDB's limits (key sizes, UTF-8, integer numbers, item
  and transaction sizes): 1,000 signed, 1,000 unsigned, 500 well-formed cases, and 1,000 money
  cases judged by an oracle (booked exactly, or refused with a 400 naming the field);
- `lambda_handler`, the Lambda entry point (Powertools decorators, metrics, reply), over the same
  stand-in: 1,000 mixed cases;
- `lambda_handler` on the embedded moto server: 150 mixed cases, scanning all six tables after each.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from finops_guard.billing import runtime
from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables
from finops_guard.billing.settings import BillingSettings
from finops_guard.billing.stripe_events import MAX_ID_LENGTH, MAX_MINOR, MAX_TIMESTAMP, MIN_TIMESTAMP
from finops_guard.billing.stripe_ledger import handle_webhook
from finops_guard.core.adapters import secrets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from devtools import stripe_events as se
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext

pytestmark = pytest.mark.integration

SAMPLES = se.sample_events()
TYPES = sorted(SAMPLES)
NOW = 1_800_000_000
STEPS = [(0, "email"), (1, "sms"), (3, "email")]
TABLES = BillingTables("events", "ledger", "objects", "alerts", "dunning", "requests")
SETTINGS = BillingSettings("s", None, "events", "ledger", "objects", "alerts", "dunning", {"USD": Decimal(100)}, STEPS,
                           262_144, "requests")  # fmt: skip
OUTCOMES = {"applied", "duplicate", "stale", "ignored"}
SECRET_NAME = "finops-guard/test/stripe-webhook-secret"

# --- an in-memory DynamoDB that refuses what DynamoDB would refuse --------------------------------

MODEL = get_session().get_service_model("dynamodb")
VALIDATOR = ParamValidator()
KEYS = {"events": ("event_id", None), "ledger": ("customer_id", "entry_key"), "objects": ("object_id", None),
        "alerts": ("alert_id", None), "dunning": ("invoice_id", "step"), "requests": ("request_id", None)}  # fmt: skip
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,37})")


def _size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return len(inner.encode("utf-8"))  # a lone surrogate raises here: DynamoDB refuses it too
    if kind == "M":
        return sum(len(k.encode("utf-8")) + _size(v) for k, v in inner.items()) + 3
    if kind == "L":
        return sum(_size(v) for v in inner) + 3
    return 1


def _check_value(value: dict[str, Any]) -> None:
    ((kind, inner),) = value.items()
    if kind == "N":
        assert INTEGER.fullmatch(inner), f"not an integer number: {inner!r}"
    elif kind == "M":
        for item in inner.values():
            _check_value(item)
    elif kind == "L":
        for item in inner:
            _check_value(item)
    _size(value)


class ValidatingDynamoDB:
    """Just enough DynamoDB for BillingStore. Nothing is stored: reads find nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _call(self, operation: str, params: dict[str, Any]) -> None:
        report = VALIDATOR.validate(params, MODEL.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()
        self.calls.append((operation, params))
        if operation == "TransactWriteItems":
            assert len(params["TransactItems"]) <= 100
            assert sum(_size({"M": r.get("Item", {})}) for e in params["TransactItems"] for r in e.values()) < 4 << 20
            for entry in params["TransactItems"]:
                for request in entry.values():
                    self._check_request(request)
        elif operation != "Query":
            self._check_request(params)

    def _check_request(self, request: dict[str, Any]) -> None:
        partition, sort = KEYS[request["TableName"]]
        key = request.get("Key") or request.get("Item") or {}
        assert 0 < len(key[partition]["S"].encode("utf-8")) <= 2048, "partition key size"
        if sort:
            assert 0 < len(key[sort]["S"].encode("utf-8")) <= 1024, "sort key size"
        for value in [*request.get("Item", {}).values(), *request.get("ExpressionAttributeValues", {}).values()]:
            _check_value(value)
        assert _size({"M": request.get("Item", {})}) < 400 * 1024, "item size"
        if request["TableName"] == "ledger" and "Item" in request:
            assert re.fullmatch(r"[A-Z]{3}", request["Item"]["currency"]["S"])

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self._call("TransactWriteItems", params)
        return {}

    def put_item(self, **params: Any) -> dict[str, Any]:
        self._call("PutItem", params)
        return {}

    def update_item(self, **params: Any) -> dict[str, Any]:
        self._call("UpdateItem", params)
        return {"Attributes": {"latency_s": {"N": "42"}}} if params.get("ReturnValues") == "UPDATED_NEW" else {}

    def get_item(self, **params: Any) -> dict[str, Any]:
        self._call("GetItem", params)
        return {}

    def query(self, **params: Any) -> dict[str, Any]:
        self._call("Query", params)
        return {"Items": []}

    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] in WRITES]

    def ledger_items(self) -> list[dict[str, Any]]:
        return [r["Put"]["Item"] for op, p in self.writes() if op == "TransactWriteItems" for r in p["TransactItems"]
                if "Put" in r and r["Put"]["TableName"] == "ledger"]  # fmt: skip


# --- the families ----------------------------------------------------------------------------------

READ_FIELDS = {
    "invoice": ["id", "customer", "currency", "status", "amount_due", "attempt_count", "hosted_invoice_url",
                "status_transitions", "status_transitions.paid_at", "lines", "lines.data", "lines.data.0",
                "lines.data.0.amount", "lines.data.1.amount", "lines.data.0.parent", "lines.data.0.parent.type",
                "lines.data.1.type", "lines.data.0.subscription", "metadata", "collection_method", "object"],
    "charge": ["id", "customer", "currency", "amount_refunded", "invoice", "object"],
    "credit_note": ["id", "customer", "currency", "total", "amount", "created", "invoice", "object"],
    "subscription": ["id", "customer", "currency", "status", "items", "items.data", "items.data.0",
                     "items.data.0.price", "items.data.0.price.id", "items.data.0.price.unit_amount",
                     "items.data.0.price.recurring", "items.data.0.price.recurring.interval",
                     "items.data.0.price.recurring.interval_count", "items.data.0.quantity", "items.data.0.plan",
                     "object"],
    "alert": ["alert", "alert.id", "alert.title", "customer"],
}  # fmt: skip
ENVELOPE = ["id", "type", "created", "data", "data.object"]
MONEY_FIELDS = {  # what the ledger books, in minor units, and its currency and time
    "invoice": ["currency", "amount_due", "lines.data.0.amount", "lines.data.1.amount", "status_transitions.paid_at"],
    "charge": ["currency", "amount_refunded"],
    "credit_note": ["currency", "total", "created"],
    "subscription": ["currency", "items.data.0.price.unit_amount", "items.data.0.quantity"],
    "alert": ["customer", "alert.id"],
}
MONEY_TYPES = ["invoice.paid", "invoice.paid", "charge.refunded", "credit_note.created", "invoice.payment_failed",
               "customer.subscription.updated"]  # fmt: skip


def object_kind(event_type: str) -> str:
    return {"charge.refunded": "charge", "credit_note.created": "credit_note",
            "billing.alert.triggered": "alert"}.get(event_type, event_type.split(".")[0].replace(
                "customer", "subscription"))  # fmt: skip


def all_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        path = f"{prefix}{key}"
        yield path
        yield from all_paths(child, path + ".")


PATHS = {t: [f"data.object.{p}" for p in READ_FIELDS[object_kind(t)]] for t in TYPES}
MONEY_PATHS = {t: [f"data.object.{p}" for p in MONEY_FIELDS[object_kind(t)]] for t in TYPES}
ANY_PATHS = {t: sorted(all_paths(SAMPLES[t])) for t in TYPES}


def put(event: Any, path: str, value: Any) -> bool:
    """Set (or with `...` delete) a dotted path; False when the path no longer exists."""
    *parents, last = path.split(".")
    target = event
    for part in parents:
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        elif isinstance(target, dict) and part in target:
            target = target[part]
        else:
            return False
    if isinstance(target, list):
        if not last.isdigit() or int(last) >= len(target):
            return False
        key: Any = int(last)
    elif isinstance(target, dict):
        key = last
    else:
        return False
    if value is ...:
        if key in target or isinstance(target, list):
            del target[key]
    else:
        target[key] = value
    return True


odd_strings = st.sampled_from(
    ["", " ", "4900", "49.99", "-1", "usd", "USD", "US", "usdd", "x" * 255, "x" * 256, "in_" + "x" * 3000, "\ud800",
     "a\udfffb", "\udbff", "cus_#1", "ín_1", "evt_1", "https://x", "http://x", "NaN", "null", "true", "in_1\n",
     "2026-11-17T00:00:00Z", "1794873600", "obj\u0000"]
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**20), 10**20), st.sampled_from(
        [0, -1, 1, MAX_MINOR, MAX_MINOR + 1, -MAX_MINOR, -MAX_MINOR - 1, MIN_TIMESTAMP - 1, MAX_TIMESTAMP, 2**63]),
    st.floats(), st.sampled_from([49.99, 4900.0, -0.0, 1e400]), st.text(max_size=30), odd_strings,
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["id", "object", "amount", "data", "type", "x"]), children, max_size=3),
    ),
    max_leaves=6,
)
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-0", "4900.0", "1E2", "1" * 5000, '"\\ud800"', '"\\udfff"',
              "[]", "{}", '{"id": 7}', "0.1"]  # fmt: skip
other_types = st.one_of(
    st.sampled_from(["payout.paid", "invoice.upcoming", "invoice.voided", "customer.created", "charge.succeeded",
                     "v2.core.event", "Invoice.Paid", "invoice..paid", "", "invoice.paid ", "ínvoice.paid"]),
    st.text(max_size=20),
)  # fmt: skip
_counter = iter(range(10**9))


def fresh_sample(event_type: str) -> dict[str, Any]:
    """The sample with a new event id and object id, so each case is a new delivery."""
    event = copy.deepcopy(SAMPLES[event_type])
    n = next(_counter)
    event["id"] = f"evt_prop{n}"
    obj = event["data"]["object"]
    if event_type != "billing.alert.triggered":
        obj["id"] = f"{obj['id'][:3]}prop{n}"
    return event


@st.composite
def hostile_bodies(draw: st.DrawFn) -> tuple[str, str]:
    """(event type, JSON text) of one signed-family case."""
    family = draw(st.sampled_from(["money", "money", "field", "field", "envelope", "any_field", "delete", "token",
                                   "deep", "not_object", "type", "several"]))  # fmt: skip
    event_type = draw(st.sampled_from(MONEY_TYPES if family == "money" else TYPES))
    event = fresh_sample(event_type)
    paths = st.sampled_from({"money": MONEY_PATHS, "envelope": {t: ENVELOPE for t in TYPES}}.get(family, PATHS)[
        event_type])  # fmt: skip
    if family == "not_object":
        return event_type, json.dumps(draw(st.one_of(scalars, st.lists(values, max_size=3))))
    if family == "type":
        put(event, "type", draw(other_types))
        put(event, "data.object", draw(st.one_of(values, st.just(event["data"]["object"]))))
        return event_type, json.dumps(event)
    if family in ("token", "deep"):
        put(event, draw(st.one_of(paths, st.sampled_from(ANY_PATHS[event_type]))), "__RAW__")
        if family == "token":
            raw = draw(st.sampled_from(RAW_TOKENS))
        else:
            depth, opener = draw(st.integers(1, 3000)), draw(st.sampled_from(["[", '{"a":']))
            raw = opener * depth + ("1" if opener != "[" else "") + ("]" if opener == "[" else "}") * depth
        return event_type, json.dumps(event).replace('"__RAW__"', raw, 1)
    if family == "delete":
        put(event, draw(paths), ...)
    elif family == "any_field":
        put(event, draw(st.sampled_from(ANY_PATHS[event_type])), draw(values))
    else:
        for _ in range(draw(st.integers(1, 4)) if family == "several" else 1):
            put(event, draw(paths), draw(values))
    return event_type, json.dumps(event)


timestamps = st.integers(MIN_TIMESTAMP, MAX_TIMESTAMP - 1)
KINDS = {"subscription_item_details": "subscription", "invoice_item_details": "booking_fee"}


def _amount(low: int, *, optional: bool = False) -> Any:
    return lambda v: (optional and v is None) or (type(v) is int and low <= v <= MAX_MINOR)


def _currency(optional: bool = False) -> Any:
    return lambda v: (optional and v is None) or (isinstance(v, str) and re.fullmatch(r"[a-z]{3}", v) is not None)


def _timestamp(v: Any) -> bool:
    return v is None or (type(v) is int and MIN_TIMESTAMP <= v < MAX_TIMESTAMP)


# Which values a money field may hold, by event type and path: the oracle of the money property.
MONEY_ORACLE = {
    ("invoice.paid", "data.object.lines.data.0.amount"): _amount(-MAX_MINOR),
    ("invoice.paid", "data.object.lines.data.1.amount"): _amount(-MAX_MINOR),
    ("invoice.paid", "data.object.currency"): _currency(),
    ("invoice.paid", "data.object.amount_due"): _amount(0, optional=True),
    ("invoice.paid", "data.object.status_transitions.paid_at"): _timestamp,
    ("invoice.payment_failed", "data.object.amount_due"): _amount(0, optional=True),
    ("invoice.payment_failed", "data.object.currency"): _currency(),
    ("charge.refunded", "data.object.amount_refunded"): _amount(0),
    ("charge.refunded", "data.object.currency"): _currency(),
    ("credit_note.created", "data.object.total"): _amount(0, optional=True),  # null: Stripe's `amount` is used
    ("credit_note.created", "data.object.currency"): _currency(),
    ("credit_note.created", "data.object.created"): _timestamp,
    ("customer.subscription.updated", "data.object.currency"): _currency(optional=True),
    ("customer.subscription.updated", "data.object.items.data.0.price.unit_amount"): _amount(0, optional=True),
}
money_values = st.one_of(
    values,
    st.integers(-MAX_MINOR - 2, MAX_MINOR + 2),
    st.sampled_from([0, 1, -1, MAX_MINOR, -MAX_MINOR, MAX_MINOR + 1, -MAX_MINOR - 1, MIN_TIMESTAMP, MAX_TIMESTAMP - 1,
                     MAX_TIMESTAMP, True, False, None, 4900.0, 49.99, "4900", "usd", "jpy", "USD", "us"]),
    st.from_regex(r"[a-z]{3}", fullmatch=True),
    timestamps,
)  # fmt: skip


def is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def booked_by_kind(client: ValidatingDynamoDB) -> dict[str, int]:
    booked: dict[str, int] = {}
    for item in client.ledger_items():
        booked[item["kind"]["S"]] = booked.get(item["kind"]["S"], 0) + int(item["amount_minor"]["N"])
    return booked


def lines_by_kind(event: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in event["data"]["object"]["lines"]["data"]:
        kind = KINDS[line["parent"]["type"]]
        totals[kind] = totals.get(kind, 0) + line["amount"]
    return totals


ids = st.from_regex(r"[A-Za-z0-9_-]{1,255}", fullmatch=True)
amounts = st.integers(-MAX_MINOR, MAX_MINOR)


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, int]]:
    """A valid event of any handled type with generated ids, currency, timestamps and amounts; and
    the ledger amounts (minor units, by kind) it must book."""
    event_type = draw(st.sampled_from(TYPES))
    event = fresh_sample(event_type)
    obj = event["data"]["object"]
    event["created"] = draw(timestamps)
    if event_type != "billing.alert.triggered":
        obj["id"] = draw(ids)
    customer = draw(ids)
    obj["customer"] = draw(st.sampled_from([customer, {"id": customer, "object": "customer"}]))
    currency = draw(st.from_regex(r"[a-z]{3}", fullmatch=True))
    expected: dict[str, int] = {}
    if event_type != "billing.alert.triggered":
        obj["currency"] = currency
    if event_type == "invoice.paid":
        template = obj["lines"]["data"][0]
        obj["lines"]["data"] = []
        for amount, parent in draw(st.lists(st.tuples(amounts, st.sampled_from(sorted(KINDS))), max_size=5)):
            line = copy.deepcopy(template)
            line.update(amount=amount, parent={"type": parent})
            obj["lines"]["data"].append(line)
            expected[KINDS[parent]] = expected.get(KINDS[parent], 0) + amount
        obj["status_transitions"] = {"paid_at": draw(st.one_of(st.none(), timestamps))}
    elif event_type == "charge.refunded":
        refunded = draw(st.integers(0, MAX_MINOR))
        obj["amount_refunded"] = refunded
        expected = {"credit_adjustment": -refunded} if refunded else {}
    elif event_type == "credit_note.created":
        total = draw(st.integers(0, MAX_MINOR))
        obj.update(total=total, created=draw(st.one_of(st.none(), timestamps)))
        expected = {"credit_adjustment": -total}
    elif event_type.startswith("customer.subscription."):
        obj["items"]["data"][0]["price"]["unit_amount"] = draw(st.one_of(st.none(), st.integers(0, MAX_MINOR)))
    elif event_type.startswith("invoice."):
        obj["amount_due"] = draw(st.integers(0, MAX_MINOR))
    return event, expected


@st.composite
def unsigned_requests(draw: st.DrawFn, now: int) -> dict[str, Any]:
    """Requests without a valid signature: no, random, forged, stale, future or tampered."""
    event = fresh_sample(draw(st.sampled_from(TYPES)))
    body = json.dumps(event)
    family = draw(st.sampled_from(["none", "random", "shaped", "other_secret", "stale", "future", "tampered",
                                   "garbage_body", "base64"]))  # fmt: skip
    signature: str | None
    if family == "none":
        signature = None
    elif family == "random":
        signature = draw(st.text(max_size=200))
    elif family == "shaped":
        signature = f"t={draw(st.integers(-5, 10**13))},v1={draw(st.text('0123456789abcdefé', max_size=70))}"
    elif family == "other_secret":
        signature = se.sign(body, "whsec_" + draw(st.text(min_size=1, max_size=20)), now)
    elif family in ("stale", "future"):
        skew = draw(st.integers(301, 10**9))
        signature = se.sign(body, timestamp=now - skew if family == "stale" else now + skew)
    elif family == "tampered":
        signature = se.sign(body, timestamp=now)
        body = body.replace(event["id"], event["id"] + draw(st.sampled_from(["0", "x", " ", "é"])), 1)
    else:
        signature = draw(st.one_of(st.none(), st.text(max_size=100)))
        body = draw(st.text(max_size=500))
    request = se.api_gateway_event(body, signature=signature)
    if family == "base64":
        request["isBase64Encoded"] = True
        request["body"] = draw(st.sampled_from(["%%%", "e30", "é", body]))
    if family == "garbage_body":
        request["headers"].update(draw(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=3)))
    return request


# --- the use case over the validating stand-in: 1,000 + 1,000 + 500 ---------------------------------


def run(request: dict[str, Any]) -> tuple[Any, ValidatingDynamoDB]:
    client = ValidatingDynamoDB()
    outcome = handle_webhook(request, settings=SETTINGS, secrets=lambda: [se.TEST_SECRET],
                             ledger=BillingStore(TABLES, client=client),
                             now=lambda: datetime(2026, 11, 17, tzinfo=UTC), clock=lambda: NOW)  # fmt: skip
    return outcome, client


def assert_one_promise(status: int, body: dict[str, Any], client: ValidatingDynamoDB) -> None:
    label(f"{status} {body.get('outcome') or body.get('error', '').split(' must ')[0].split(' is ')[0]}"[:60])
    if 400 <= status < 500:
        assert client.calls == [], f"a {status} touched DynamoDB: {body}"
    else:
        assert status == 200 and body.get("outcome") in OUTCOMES, body


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_bodies())
def test_signed_events_of_every_type_are_a_4xx_writing_nothing_or_a_200(case):
    _, body = case
    outcome, client = run(se.api_gateway_event(body, signature=se.sign(body, timestamp=NOW)))
    assert_one_promise(outcome.status, outcome.body, client)
    if outcome.status == 400 and "field" in outcome.body:
        assert outcome.body["field"] in outcome.body["error"]


LINE, REFUND = ("invoice.paid", "data.object.lines.data.0.amount"), ("charge.refunded", "data.object.amount_refunded")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(MONEY_ORACLE)), value=money_values)
@example(field=LINE, value=49.99).via("the issue: a float truncated to 49")
@example(field=LINE, value="4900").via("the issue: a string taken as money")
@example(field=LINE, value=True).via("the issue: true booked as 1")
@example(field=LINE, value=None).via("the issue: null booked as 0")
@example(field=LINE, value=-4900).via("a credit line: booked, netted")
@example(field=LINE, value=MAX_MINOR + 1).via("out of range")
@example(field=REFUND, value=-1).via("the issue: a negative refund")
@example(field=("invoice.paid", "data.object.currency"), value="USD").via("Stripe sends lower case")
@example(field=("invoice.paid", "data.object.currency"), value="not a currency").via("the issue: any string")
@example(field=("credit_note.created", "data.object.total"), value=0).via("a zero credit note books 0")
def test_a_money_field_is_booked_exactly_or_refused_with_a_400_naming_it(field, value):
    """The oracle says which values a field may hold; anything else (a float, a string, a bool, out of
    range, negative where only credits may be) must be a 400 naming exactly that field."""
    event_type, path = field
    event = fresh_sample(event_type)
    put(event, path, value)
    body = json.dumps(event)
    outcome, client = run(se.api_gateway_event(body, signature=se.sign(body, timestamp=NOW)))
    label("refused" if not MONEY_ORACLE[field](value) else "booked")
    if not MONEY_ORACLE[field](value):
        named = re.sub(r"\.(\d+)", r"[\1]", path) if is_json(value) else None  # NaN: "body is not JSON"
        assert (outcome.status, outcome.body.get("field")) == (400, named)
        assert client.calls == []
        return
    assert outcome.status == 200, outcome.body
    assert booked_by_kind(client) == expected_ledger(event)
    assert {i["currency"]["S"] for i in client.ledger_items()} <= {str(event["data"]["object"]["currency"]).upper()}


def expected_ledger(event: dict[str, Any]) -> dict[str, int]:
    """What a valid event must book, by kind, in minor units (computed from the event, not the code)."""
    obj = event["data"]["object"]
    if event["type"] == "invoice.paid":
        return lines_by_kind(event)
    if event["type"] == "charge.refunded":
        return {"credit_adjustment": -obj["amount_refunded"]} if obj["amount_refunded"] else {}  # 0: nothing new
    if event["type"] == "credit_note.created":
        return {"credit_adjustment": -(obj["total"] if obj.get("total") is not None else obj["amount"])}
    return {}


PAID = json.dumps(SAMPLES["invoice.paid"])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=unsigned_requests(NOW))
@example(request=se.api_gateway_event(PAID, signature=se.sign(PAID, timestamp=NOW + 301))).via("the issue: future")
@example(request=se.api_gateway_event(PAID, signature=f"t={NOW},v1=é")).via("the issue: non-ASCII header")
def test_requests_without_a_valid_signature_are_a_4xx_and_touch_nothing(request):
    outcome, client = run(request)
    label(f"{outcome.status} {outcome.body.get('error')}")
    assert 400 <= outcome.status < 500 and client.calls == []


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=well_formed())
def test_well_formed_events_of_every_type_are_applied_with_exact_minor_units(case):
    event, expected = case
    body = json.dumps(event)
    outcome, client = run(se.api_gateway_event(body, signature=se.sign(body, timestamp=NOW)))
    assert (outcome.status, outcome.body["outcome"]) == (200, "applied" if expected != {} or
                                                          event["type"] != "charge.refunded" else "stale")  # fmt: skip
    booked: dict[str, int] = {}
    for item in client.ledger_items():
        assert item["currency"]["S"] == event["data"]["object"]["currency"].upper()
        booked[item["kind"]["S"]] = booked.get(item["kind"]["S"], 0) + int(item["amount_minor"]["N"])
    assert booked == expected
    assert all(len(i["customer_id"]["S"]) <= MAX_ID_LENGTH for i in client.ledger_items())


# --- the Lambda entry point over the same stand-in: 1,000 --------------------------------------------


def billing_env(monkeypatch, tables: dict[str, str]) -> None:
    env = {
        "FINOPSGUARD_STRIPE_SECRET_NAME": SECRET_NAME,
        "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": f"{SECRET_NAME}-previous",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": tables["invoice_requests"],
        "FINOPSGUARD_BILLING_THRESHOLDS": json.dumps({"USD": "100", "JPY": "50000"}),
        "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runtime.billing_settings.cache_clear()
    runtime.billing_store.cache_clear()
    secrets.clear_cache()


def any_request(now: int) -> st.SearchStrategy[dict[str, Any]]:
    def signed(case: tuple[str, str]) -> dict[str, Any]:
        return se.api_gateway_event(case[1], signature=se.sign(case[1], timestamp=now))

    return st.one_of(
        hostile_bodies().map(signed),
        well_formed().map(lambda case: se.signed_request(case[0], timestamp=now)),
        unsigned_requests(now),
    )


@pytest.fixture
def entry_point(monkeypatch):
    billing_env(monkeypatch, {role: role for role in ("events", "ledger", "objects", "alerts", "dunning")}
                | {"invoice_requests": "requests"})  # fmt: skip
    handler = load_handler("stripe_webhook")  # after the environment: Powertools reads it at import
    holder: list[ValidatingDynamoDB] = []
    monkeypatch.setattr(runtime, "billing_store", lambda: BillingStore(TABLES, client=holder[-1]))
    monkeypatch.setattr(handler, "read_signing_secrets", lambda *a, **k: [se.TEST_SECRET])
    yield handler, holder
    runtime.billing_settings.cache_clear()


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_the_lambda_entry_point_answers_every_request_without_raising(entry_point, data):
    handler, holder = entry_point
    request = data.draw(any_request(int(time.time())))
    holder.append(ValidatingDynamoDB())
    reply = handler.lambda_handler(request, FakeContext("finops-guard-test-stripe-webhook"))
    assert reply["headers"] == {"Content-Type": "application/json"}
    assert_one_promise(reply["statusCode"], json.loads(reply["body"]), holder[-1])


# --- the Lambda entry point on the embedded moto server: 150 ---------------------------------------


@pytest.fixture
def on_moto(deployed, monkeypatch):
    def deploy() -> dict[str, str]:
        deployed.aws.reset()
        tables = deployed.aws.create_billing_tables()
        deployed.aws.put_secret(SECRET_NAME, se.TEST_SECRET)
        return tables

    tables = deploy()
    billing_env(monkeypatch, tables)
    yield deployed, tables, deploy
    runtime.billing_settings.cache_clear()
    runtime.billing_store.cache_clear()


def snapshot(aws, tables: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    dynamodb = aws.client("dynamodb")
    return {role: sorted(dynamodb.scan(TableName=name, ConsistentRead=True)["Items"], key=json.dumps)
            for role, name in tables.items()}  # fmt: skip


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_on_dynamodb_every_request_is_a_4xx_leaving_every_table_unchanged_or_a_200(on_moto, data):
    deployed, tables, deploy = on_moto
    if sum(len(items) for items in snapshot(deployed.aws, tables).values()) > 60:
        deploy()  # keep the scans short: state carries over between cases, a reset now and then
    before = snapshot(deployed.aws, tables)
    request = data.draw(any_request(int(time.time())))
    reply = load_handler("stripe_webhook").lambda_handler(request, FakeContext("finops-guard-test-stripe-webhook"))
    status, body = reply["statusCode"], json.loads(reply["body"])
    label(f"{status} {body.get('outcome') or body.get('error', '').split(' must ')[0].split(' is ')[0]}"[:60])
    after = snapshot(deployed.aws, tables)
    if 400 <= status < 500:
        assert after == before, body
    else:
        assert status == 200 and body["outcome"] in OUTCOMES, body
        for item in after["ledger"]:
            assert INTEGER.fullmatch(item.get("amount_minor", item.get("total_minor", {"N": "0"}))["N"])
