"""What the Stripe webhook accepts and refuses, one behaviour per test (issue 15). No AWS, no sockets.

Every refusal is a 4xx that writes nothing; a refusal of a signed event names the field."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe  # imported before sockets are disabled: its HTTP stack probes IPv6 on import
from finops_guard.billing import stripe_webhook
from finops_guard.billing.ledger_rules import effects_of
from finops_guard.billing.settings import BillingSettings
from finops_guard.billing.stripe_events import MAX_MINOR, EventShapeError, parse_event
from finops_guard.billing.stripe_ledger import handle_webhook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools import stripe_events as se
from tests.conftest import ROOT
from tests.unit.billing import test_billing

STEPS = [(0, "email"), (1, "sms"), (3, "email")]
SETTINGS = BillingSettings("s", None, "e", "l", "o", "a", "d", {}, STEPS, 262_144)
SAMPLES = se.sample_events()
NOW = 1_800_000_000.0  # the wall clock the signature is checked against in these tests
CUSTOMER, INVOICE = "cus_QXg1o8vcGmoR32", "in_1Pgc6tB7WZ01zgkWu9fdqL6I"


class RecordingLedger(test_billing.RecordingLedger):
    """test_billing's recording ledger, which also records the invoice bot's confirmations."""

    def __init__(self) -> None:
        super().__init__()
        self.confirmed: list[str] = []

    def confirm_invoice_request(self, request_id, event_id, event_created, now):
        self.confirmed.append(request_id)
        return 1


def call(request, ledger=None, *, clock=NOW, secrets=(se.TEST_SECRET,)):
    ledger = RecordingLedger() if ledger is None else ledger
    outcome = handle_webhook(request, settings=SETTINGS, secrets=lambda: list(secrets), ledger=ledger,
                             now=lambda: datetime(2026, 11, 17, tzinfo=UTC), clock=lambda: clock)  # fmt: skip
    return outcome, ledger


def signed(body: str, *, timestamp: int | None = None, secret: str = se.TEST_SECRET) -> dict:
    t = int(NOW) if timestamp is None else timestamp
    return se.api_gateway_event(body, signature=se.sign(body, secret, t))


def sample(event_type: str) -> dict:
    return copy.deepcopy(SAMPLES[event_type])


def put(event: dict, path: str, value: Any) -> dict:
    """Set `data.object.lines.data.0.amount`-style paths (list indices as numbers); `...` deletes."""
    *parents, last = path.split(".")
    target: Any = event
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return event


def deliver(event: dict, **kwargs):
    return call(signed(json.dumps(event)), **kwargs)


def refused(outcome, ledger, field: str | None = None) -> bool:
    named = field is None or (outcome.body.get("field") == field and field in outcome.body.get("error", ""))
    return outcome.status == 400 and ledger.applied == [] and named


# --- without any valid signature ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["t=1,v1=é", "é", "t=１２３,v1=00", "t=١٢٣,v1=00", "t=1,v1=\x00", "t=1, v1=00", "t=1,v1=00\u2028", "\ud800"],
)
def test_a_signature_header_with_non_ascii_characters_is_a_400(header):
    outcome, ledger = call(se.api_gateway_event("{}", signature=header))
    assert (outcome.status, outcome.body["error"]) == (400, "malformed Stripe-Signature header") and not ledger.applied


def test_a_valid_signature_followed_by_a_non_ascii_element_is_a_400_not_an_exception():
    body = json.dumps(sample("invoice.paid"))
    outcome, ledger = call(se.api_gateway_event(body, signature=se.sign(body, timestamp=int(NOW)) + ",v1=ü"))
    assert refused(outcome, ledger) and outcome.body["error"] == "malformed Stripe-Signature header"


signature_like = st.builds("t={},v1={}".format, st.integers(0, 2**40), st.text(max_size=80))


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(st.text(max_size=300), signature_like))
def test_every_unsigned_header_value_gets_a_400(header):
    outcome, ledger = call(se.api_gateway_event(json.dumps(sample("invoice.paid")), signature=header))
    assert outcome.status == 400 and not ledger.applied


@pytest.mark.parametrize("offset", [301, 3600, 86400 * 365])
def test_a_signature_timestamp_in_the_future_is_refused(offset):
    outcome, ledger = deliver_at(int(NOW) + offset)
    assert refused(outcome, ledger) and outcome.body["error"] == "timestamp outside the tolerance"


@pytest.mark.parametrize("offset", [-301, -86400])
def test_a_stale_signature_timestamp_is_refused(offset):
    outcome, ledger = deliver_at(int(NOW) + offset)
    assert refused(outcome, ledger) and outcome.body["error"] == "timestamp outside the tolerance"


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamps_within_the_tolerance_either_way_are_accepted(offset):
    outcome, ledger = deliver_at(int(NOW) + offset)
    assert outcome.status == 200 and len(ledger.applied) == 1


def deliver_at(timestamp: int):
    return call(signed(json.dumps(sample("invoice.paid")), timestamp=timestamp))


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("t=1800000000", "malformed Stripe-Signature header"),  # no v1
        ("v1=" + "0" * 64, "malformed Stripe-Signature header"),  # no t
        ("t=1800000000,t=1800000000,v1=" + "0" * 64, "malformed Stripe-Signature header"),
        ("t=-1,v1=" + "0" * 64, "malformed Stripe-Signature header"),
        ("t=1e9,v1=" + "0" * 64, "malformed Stripe-Signature header"),
        ("t=" + "9" * 5000 + ",v1=00", "malformed Stripe-Signature header"),
        ("t=1800000000,v1", "malformed Stripe-Signature header"),
        ("t=1800000000,v1=" + "0" * 64, "invalid signature"),
        ("t=1800000000,v0=" + "0" * 64 + ",v1=ab", "invalid signature"),
    ],
)
def test_malformed_or_wrong_signature_headers_are_400s(signature, reason):
    outcome, ledger = call(se.api_gateway_event(json.dumps(sample("invoice.paid")), signature=signature))
    assert refused(outcome, ledger) and outcome.body["error"] == reason


@pytest.mark.parametrize("headers", [None, [], "Stripe-Signature: x", {"Stripe-Signature": ["t=1,v1=00"]},
                                     {"Stripe-Signature": 5}, {"stripe-signature": ""}])  # fmt: skip
def test_headers_that_are_not_a_map_of_strings_are_400s(headers):
    request = signed(json.dumps(sample("invoice.paid")))
    request["headers"] = headers
    outcome, ledger = call(request)
    assert refused(outcome, ledger)


def test_a_header_name_in_any_case_is_found():
    request = signed(json.dumps(sample("invoice.paid")))
    request["headers"] = {"STRIPE-SIGNATURE": request["headers"]["Stripe-Signature"]}
    assert call(request)[0].status == 200


@pytest.mark.parametrize("request_value", [None, [], "POST", 7])
def test_a_request_that_is_not_an_api_gateway_event_is_a_400(request_value):
    outcome, ledger = call(request_value)
    assert refused(outcome, ledger)


@pytest.mark.parametrize("body", [7, ["x"], {"a": 1}, b"{}"])
def test_a_body_that_is_not_text_is_a_400(body):
    request = signed("{}")
    request["body"] = body
    assert refused(*call(request))


def test_a_body_with_a_lone_surrogate_is_a_400_before_anything_else():
    outcome, ledger = call(se.api_gateway_event("\ud800", signature="t=1,v1=00"))
    assert refused(outcome, ledger) and outcome.body["error"] == "body is not UTF-8"


def test_the_signature_is_checked_on_the_raw_bytes_then_non_utf8_is_refused():
    raw = b'{"id": "evt_1", "x": "\xff"}'
    t = int(NOW)
    import hashlib
    import hmac

    v1 = hmac.new(se.TEST_SECRET.encode(), str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()
    request = se.api_gateway_event("", signature=f"t={t},v1={v1}")
    request.update(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
    outcome, ledger = call(request)
    assert refused(outcome, ledger) and outcome.body["error"] == "body is not UTF-8"


def test_an_oversized_base64_body_is_refused_before_decoding():
    request = signed("{}")
    request.update(body="A" * 400_000, isBase64Encoded=True)
    assert call(request)[0].status == 413


@pytest.mark.parametrize(("signed_with", "secrets"), [("", [""]), (" ", [" "]), (se.TEST_SECRET, [])])
def test_an_empty_signing_secret_never_verifies(signed_with, secrets):
    """An empty key would let anyone sign: such a secret is skipped, as is an empty list."""
    outcome, ledger = call(signed(json.dumps(sample("invoice.paid")), secret=signed_with), secrets=secrets)
    assert refused(outcome, ledger) and outcome.body["error"] == "invalid signature"


@settings(max_examples=200, deadline=None)
@given(payload=st.text(max_size=300), secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
       max_size=40), age=st.integers(0, 290), tamper=st.booleans())  # fmt: skip
def test_signatures_are_judged_as_stripes_own_library_judges_them(payload, secret, age, tamper):
    """Within the past tolerance, our check and stripe.WebhookSignature.verify_header agree."""
    now = time.time()
    header = se.sign(payload, "whsec_" + secret, int(now) - age)
    if tamper:
        header = header[:-1] + ("0" if header[-1] != "0" else "1")
    try:
        stripe.WebhookSignature.verify_header(payload, header, "whsec_" + secret, tolerance=300)
        theirs = True
    except stripe.SignatureVerificationError:
        theirs = False
    try:
        stripe_webhook.check_signature(payload.encode(), header, ["whsec_" + secret], now=now)
        ours = True
    except stripe_webhook.Rejection:
        ours = False
    assert ours == theirs == (not tamper)


# --- signed but wrongly shaped ------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["[]", "[1, 2]", "null", "0", "-1.5", '"evt_1"', "true", '""'])
def test_a_signed_body_that_is_not_a_json_object_is_a_400(body):
    outcome, ledger = call(signed(body))
    assert refused(outcome, ledger) and outcome.body["error"] == "body is not a JSON object"


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 65 + "]" * 65, "[" * 3000],
)
def test_a_signed_body_nested_too_deep_is_a_400_not_a_recursion_error(body):
    outcome, ledger = call(signed(body))
    assert refused(outcome, ledger) and outcome.body["error"] == "body nests deeper than 64"


def test_a_deep_value_in_a_field_we_never_read_is_refused_too():
    event = sample("invoice.paid")
    event["data"]["object"]["metadata"] = {"note": "__DEEP__"}
    body = json.dumps(event).replace('"__DEEP__"', "[" * 2000 + "]" * 2000)
    assert refused(*call(signed(body)))


def test_nesting_up_to_the_limit_is_accepted_and_brackets_inside_strings_do_not_count():
    event = sample("invoice.paid")
    event["data"]["object"]["metadata"] = {"note": "[[[[{{{{" * 100, "deep": "__DEEP__"}
    body = json.dumps(event).replace('"__DEEP__"', "[" * 60 + "]" * 60)  # 4 levels above it: 64 in all
    assert stripe_webhook.nesting(body.encode()) == 64
    outcome, ledger = call(signed(body))
    assert outcome.status == 200 and len(ledger.applied) == 1


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1" * 5000])
def test_non_json_numbers_are_refused(token):
    event = put(sample("invoice.paid"), "data.object.lines.data.0.amount", "__N__")
    outcome, ledger = call(signed(json.dumps(event).replace('"__N__"', token)))
    assert refused(outcome, ledger) and outcome.body["error"] == "body is not JSON"


def test_the_body_is_verified_once_and_decoded_once_without_the_stripe_library(monkeypatch):
    loads = []
    real_loads = json.loads
    monkeypatch.setattr(stripe_webhook.json, "loads", lambda *a, **k: loads.append(1) or real_loads(*a, **k))
    monkeypatch.setattr(stripe.Webhook, "construct_event", lambda *a, **k: pytest.fail("built a StripeObject"))
    monkeypatch.setattr(stripe.WebhookSignature, "verify_header", lambda *a, **k: pytest.fail("stripe verified"))
    outcome, ledger = deliver(sample("invoice.paid"))
    assert outcome.status == 200 and loads == [1]


# ids, customer and invoice references

NOT_IDS = [12345, 0, True, False, 1.5, ["in_1"], {}, {"id": 5}, {"object": "customer"}, "", "x" * 256, "in_#1",
           "in 1", "in_1\n", "in_\ud800", "ín_1", "in_1/2"]  # fmt: skip
ID_FIELDS = [
    ("invoice.paid", "data.object.id"),
    ("invoice.paid", "data.object.customer"),
    ("invoice.payment_failed", "data.object.id"),
    ("invoice.created", "data.object.customer"),
    ("charge.refunded", "data.object.id"),
    ("charge.refunded", "data.object.customer"),
    ("charge.refunded", "data.object.invoice"),
    ("credit_note.created", "data.object.id"),
    ("credit_note.created", "data.object.invoice"),
    ("customer.subscription.updated", "data.object.id"),
    ("customer.subscription.updated", "data.object.customer"),
    ("billing.alert.triggered", "data.object.customer"),
    ("billing.alert.triggered", "data.object.alert.id"),
]


@pytest.mark.parametrize(("event_type", "path"), ID_FIELDS)
@pytest.mark.parametrize("value", NOT_IDS, ids=repr)
def test_ids_that_are_not_bounded_id_strings_are_400s_naming_the_field(event_type, path, value):
    outcome, ledger = deliver(put(sample(event_type), path, value))
    reference = path.endswith((".customer", ".invoice"))  # an expanded object stands for its id
    assert refused(outcome, ledger, path + ".id" if reference and isinstance(value, dict) else path)


@pytest.mark.parametrize("value", [None, "", 7, "evt", "ev_1", "evt_\ud800", "evt_" + "x" * 252])
def test_an_event_id_that_is_not_a_stripe_event_id_is_a_400(value):
    assert refused(*deliver(put(sample("invoice.paid"), "id", value)), "id")


def test_ids_of_255_characters_are_accepted_and_256_refused():
    ok = deliver(put(sample("invoice.paid"), "data.object.id", "in_" + "x" * 252))
    assert ok[0].status == 200 and ok[1].applied[0].settle_invoice == "in_" + "x" * 252
    assert refused(*deliver(put(sample("invoice.paid"), "data.object.id", "in_" + "x" * 253)), "data.object.id")


@pytest.mark.parametrize(("event_type", "path"), [("invoice.paid", "data.object.customer"),
                                                  ("charge.refunded", "data.object.customer"),
                                                  ("credit_note.created", "data.object.invoice")])  # fmt: skip
def test_an_expanded_object_where_an_id_is_expected_counts_as_its_id(event_type, path):
    expanded = {"id": "cus_Expanded01" if "customer" in path else "in_Expanded01", "object": "x", "deleted": True}
    outcome, ledger = deliver(put(sample(event_type), path, expanded))
    entry = ledger.applied[0].ledger[0]
    assert outcome.status == 200 and expanded["id"] in (entry.customer_id, entry.invoice_id)


def test_a_paid_invoice_without_a_customer_is_a_400_naming_it():
    assert refused(*deliver(put(sample("invoice.paid"), "data.object.customer", None)), "data.object.customer")


# lone surrogates, where they would be stored


@pytest.mark.parametrize(
    ("event_type", "path"),
    [("billing.alert.triggered", "data.object.alert.title"), ("invoice.sent", "data.object.hosted_invoice_url"),
     ("invoice.sent", "data.object.metadata.finops_guard_request_id"), ("invoice.paid", "data.object.currency"),
     ("customer.subscription.created", "data.object.items.data.0.price.id"), ("invoice.created", "data.object.status")],
)  # fmt: skip
def test_escaped_lone_surrogates_are_refused_where_they_would_be_stored(event_type, path):
    event = sample(event_type)
    if path.endswith("finops_guard_request_id"):
        event["data"]["object"]["metadata"] = {}
    value = "https://x/\ud800" if path.endswith("url") else "\udfff"
    body = json.dumps(put(event, path, value))
    assert "\\udfff" in body or "\\ud800" in body
    assert refused(*call(signed(body)), path.replace(".data.0.", ".data[0]."))


# timestamps


@pytest.mark.parametrize("value", [0, -1, 1, 1_230_767_999, 4_102_444_800, 2**32, 10**20, 1.8e9, "1800000000", True,
                                   None])  # fmt: skip
def test_event_timestamps_out_of_any_sane_range_are_400s(value):
    assert refused(*deliver(put(sample("invoice.paid"), "created", value)), "created")


@pytest.mark.parametrize(("event_type", "path"), [("invoice.paid", "data.object.status_transitions.paid_at"),
                                                  ("credit_note.created", "data.object.created")])  # fmt: skip
@pytest.mark.parametrize("value", [-5, 10**20, 1.8e9, "x", False, [1]])
def test_object_timestamps_out_of_range_are_400s(event_type, path, value):
    assert refused(*deliver(put(sample(event_type), path, value)), path)


def test_timestamps_at_the_edges_of_the_range_are_accepted():
    for created in (1_230_768_000, 4_102_444_799):
        outcome, ledger = deliver(put(sample("invoice.paid"), "created", created))
        assert outcome.status == 200 and ledger.applied[0].event_created == created


# money


@pytest.mark.parametrize(
    ("value", "why"),
    [(49.99, "a float would be truncated to 49"), (4900.0, "a float, even integral"), ("4900", "a string"),
     (True, "true would become 1"), (False, "false would become 0"), (None, "null would become 0"),
     ({"value": 4900}, "an object"), ([4900], "a list"), (MAX_MINOR + 1, "beyond the bound"),
     (-(MAX_MINOR + 1), "beyond the bound"), (10**30, "beyond any bound")],
)  # fmt: skip
def test_a_line_amount_that_is_not_an_integer_of_minor_units_is_a_400_and_books_nothing(value, why):
    outcome, ledger = deliver(put(sample("invoice.paid"), "data.object.lines.data.0.amount", value))
    assert refused(outcome, ledger, "data.object.lines.data[0].amount"), why


def test_a_missing_line_amount_is_a_400():
    outcome, ledger = deliver(put(sample("invoice.paid"), "data.object.lines.data.1.amount", ...))
    assert refused(outcome, ledger, "data.object.lines.data[1].amount")


def test_negative_invoice_lines_are_credits_that_net_against_their_kind():
    """Stripe: a negative invoice item reduces the amount due; a proration credit is a negative line."""
    event = sample("invoice.paid")
    lines = event["data"]["object"]["lines"]["data"]
    credit = put(copy.deepcopy(lines[0]), "amount", -1000)  # a proration credit on the subscription
    lines.append(credit)
    outcome, ledger = deliver(event)
    booked = sorted((e.kind, e.amount_minor) for e in ledger.applied[0].ledger)
    assert outcome.status == 200 and booked == [("booking_fee", 1250), ("subscription", 3900)]


@pytest.mark.parametrize(("event_type", "path"), [("invoice.payment_failed", "data.object.amount_due"),
                                                  ("charge.refunded", "data.object.amount_refunded"),
                                                  ("credit_note.created", "data.object.total"),
                                                  ("customer.subscription.created",
                                                   "data.object.items.data.0.price.unit_amount")])  # fmt: skip
@pytest.mark.parametrize("value", [-1, -4900, 12.5, "12", True])
def test_amounts_that_can_only_be_zero_or_more_refuse_negatives_floats_strings_and_bools(event_type, path, value):
    assert refused(*deliver(put(sample(event_type), path, value)), path.replace(".data.0.", ".data[0]."))


@pytest.mark.parametrize(("event_type", "path"), [("charge.refunded", "data.object.amount_refunded"),
                                                  ("credit_note.created", "data.object.total")])  # fmt: skip
def test_zero_refunds_and_credit_notes_are_accepted(event_type, path):
    outcome, ledger = deliver(put(sample(event_type), path, 0))
    assert outcome.status == 200 and [e.amount_minor for e in ledger.applied[0].ledger] == [0]


def test_the_largest_amount_is_booked_exactly():
    event = sample("invoice.paid")
    put(event, "data.object.lines.data.0.amount", MAX_MINOR)
    outcome, ledger = deliver(event)
    assert outcome.status == 200 and ("subscription", MAX_MINOR) in [(e.kind, e.amount_minor)
                                                                       for e in ledger.applied[0].ledger]  # fmt: skip


@pytest.mark.parametrize("value", ["US", "usdd", "USD", "Usd", "u$d", "", " usd", "usd\n", "ｕｓｄ", 840, None, ["usd"],
                                   {"code": "usd"}])  # fmt: skip
@pytest.mark.parametrize("event_type", ["invoice.paid", "charge.refunded", "credit_note.created", "invoice.sent"])
def test_anything_but_three_lower_case_letters_is_not_a_currency(event_type, value):
    assert refused(*deliver(put(sample(event_type), "data.object.currency", value)), "data.object.currency")


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd", "xcg"])
def test_well_shaped_currencies_are_booked_upper_case_in_minor_units(currency):
    outcome, ledger = deliver(put(sample("invoice.paid"), "data.object.currency", currency))
    assert outcome.status == 200 and {e.currency for e in ledger.applied[0].ledger} == {currency.upper()}


# enums, counts, text


def test_a_new_enum_value_from_stripe_is_accepted_but_a_non_enum_is_refused():
    ok = deliver(put(sample("invoice.created"), "data.object.status", "some_future_status"))
    assert ok[0].status == 200 and ok[1].applied[0].state.rank == 1
    assert refused(*deliver(put(sample("invoice.created"), "data.object.status", 3)), "data.object.status")
    assert refused(*deliver(put(sample("invoice.created"), "data.object.status", "Paid!")), "data.object.status")


@pytest.mark.parametrize("value", [-1, 2.0, "3", True, 10**6])
def test_attempt_counts_must_be_small_non_negative_integers(value):
    path = "data.object.attempt_count"
    assert refused(*deliver(put(sample("invoice.payment_failed"), path, value)), path)


@pytest.mark.parametrize(("path", "value"), [("data.object.items.data.0.quantity", -1),
                                             ("data.object.items.data.0.quantity", 1.5),
                                             ("data.object.items.data.0.price.recurring.interval_count", 0),
                                             ("data.object.items.data.0.price.recurring.interval_count", 1096),
                                             ("data.object.items.data.0.price.recurring.interval", 5),
                                             ("data.object.items", [1]),
                                             ("data.object.items.data", {"0": 1}),
                                             ("data.object.items.data.0", "si_1")])  # fmt: skip
def test_subscription_items_are_typed(path, value):
    outcome, ledger = deliver(put(sample("customer.subscription.updated"), path, value))
    assert refused(outcome, ledger, path.replace(".data.0", ".data[0]"))


def test_more_subscription_items_than_fit_one_item_are_refused():
    event = sample("customer.subscription.updated")
    items = event["data"]["object"]["items"]["data"]
    items.extend(copy.deepcopy(items[0]) for _ in range(100))
    assert refused(*deliver(event), "data.object.items.data")


@pytest.mark.parametrize(("event_type", "path", "value"), [
    ("invoice.sent", "data.object.hosted_invoice_url", "http://phish.example/pay"),
    ("invoice.sent", "data.object.hosted_invoice_url", 5),
    ("invoice.sent", "data.object.hosted_invoice_url", "https://x/" + "a" * 2048),
    ("billing.alert.triggered", "data.object.alert.title", "t" * 501),
    ("billing.alert.triggered", "data.object.alert.title", {"text": "x"}),
    ("invoice.sent", "data.object.metadata", ["finops_guard_request_id"]),
    ("invoice.sent", "data.object.metadata.finops_guard_request_id", ["req-12345678"]),
])  # fmt: skip
def test_stored_text_is_bounded_typed_text(event_type, path, value):
    event = sample(event_type)
    event["data"]["object"].setdefault("metadata", {})
    assert refused(*deliver(put(event, path, value)), path)


def test_a_metadata_request_id_that_is_not_the_bots_shape_confirms_nothing_but_the_invoice_is_recorded():
    event = put(sample("invoice.sent"), "data.object.collection_method", "send_invoice")
    event["data"]["object"]["metadata"] = {"finops_guard_request_id": "typed by hand"}
    outcome, ledger = deliver(event)
    assert outcome.status == 200 and ledger.confirmed == [] and ledger.applied[0].state is not None
    event["data"]["object"]["metadata"] = {"finops_guard_request_id": "req-12345678"}
    assert deliver(event)[1].confirmed == ["req-12345678"]


@pytest.mark.parametrize(("event_type", "path", "value"), [
    ("invoice.paid", "data.object.lines", [1]), ("invoice.paid", "data.object.lines.data", {"a": 1}),
    ("invoice.paid", "data.object.lines.data.0", 7), ("invoice.paid", "data.object.lines.data.0.parent", "x"),
    ("invoice.paid", "data.object.lines.data.0.parent.type", 7),
    ("invoice.paid", "data.object.status_transitions", [1]),
    ("invoice.paid", "data.object.object", "charge"), ("charge.refunded", "data.object.object", "invoice"),
    ("billing.alert.triggered", "data.object.alert", "alrt_1"), ("invoice.paid", "data", []),
    ("invoice.paid", "data.object", "in_1"), ("invoice.paid", "type", 7), ("invoice.paid", "type", "Invoice.Paid"),
])  # fmt: skip
def test_containers_of_the_wrong_type_are_400s_naming_the_field(event_type, path, value):
    assert refused(*deliver(put(sample(event_type), path, value)), path.replace(".data.0", ".data[0]"))


def test_an_unhandled_type_is_ignored_without_reading_its_object():
    event = put(sample("invoice.paid"), "type", "payout.paid")
    event["data"]["object"] = {"amount": 49.99, "currency": "NOT A CURRENCY", "id": ["x"]}
    outcome, ledger = deliver(event)
    assert (outcome.status, outcome.body["outcome"], ledger.applied) == (200, "ignored", [])


def test_a_billing_alert_object_that_is_the_alert_itself_is_read_too():
    event = sample("billing.alert.triggered")
    event["data"]["object"] = {"id": "alrt_Flat01", "title": "Flat shape", "customer": CUSTOMER}
    outcome, ledger = deliver(event)
    [alert] = ledger.applied[0].open_alerts
    assert outcome.status == 200 and alert.alert_id.startswith("threshold_exceeded#stripe#alrt_Flat01#" + CUSTOMER)
    event["data"]["object"]["id"] = 7
    assert refused(*deliver(event), "data.object.id")


@pytest.mark.parametrize("lines", [None, {"object": "list"}, {"data": None}, {"data": []}])
def test_a_paid_invoice_without_lines_books_nothing_but_is_recorded(lines):
    outcome, ledger = deliver(put(sample("invoice.paid"), "data.object.lines", lines))
    assert outcome.status == 200 and ledger.applied[0].ledger == [] and ledger.applied[0].settle_invoice


@pytest.mark.parametrize("document", [[], None, "evt_1", 7])
def test_parsing_something_that_is_not_an_object_names_the_body(document):
    with pytest.raises(EventShapeError) as raised:
        parse_event(document)
    assert raised.value.field == "body"


def test_every_sample_event_parses_to_typed_values():
    for event_type, event in SAMPLES.items():
        parsed = parse_event(copy.deepcopy(event))
        assert parsed.type == event_type and parsed.object is not None
        assert effects_of(parsed, dunning_steps=STEPS).ignored is False


def test_a_shape_error_names_its_field():
    with pytest.raises(EventShapeError) as raised:
        parse_event(put(sample("invoice.paid"), "data.object.lines.data.1.amount", 12.5))
    assert raised.value.field == "data.object.lines.data[1].amount"


# --- cold start --------------------------------------------------------------------------------------


def test_handling_a_request_loads_neither_stripe_nor_pydantic():
    """The webhook's cold start: verification is hmac + hashlib, parsing is this package's own code."""
    code = (
        "import sys, json; sys.path[:0] = ['functions/stripe_webhook', 'layers/common/python', '.'];"
        "import handler;"
        "from datetime import UTC, datetime;"
        "from devtools import stripe_events as se;"
        "from finops_guard.billing.settings import BillingSettings;"
        "from finops_guard.billing.stripe_ledger import handle_webhook;"
        "L = type('L', (), {'apply': lambda s, e, n: 'applied', 'settle_invoice': lambda s, i, n: (0, 0),"
        " 'raise_threshold_alerts': lambda s, e, t, n: [], 'confirm_invoice_request': lambda s, *a: None});"
        "o = handle_webhook(se.signed_request(se.sample_events()['invoice.paid']),"
        " settings=BillingSettings('s', None, 'e', 'l', 'o', 'a', 'd', {}, [], 262144),"
        " secrets=lambda: [se.TEST_SECRET], ledger=L(), now=lambda: datetime.now(UTC));"
        "print(o.status, sorted({m.split('.')[0] for m in sys.modules} & {'stripe', 'pydantic'}))"
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "stripe-webhook"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split("\n")[-2] == "200 []"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(0, 200), text=st.text(alphabet='[]{}"\\ab', max_size=50))
def test_nesting_matches_the_decoders_own_depth(depth, text):
    body = json.dumps({"s": text, "v": "__V__"}).replace('"__V__"', "[" * depth + "]" * depth)
    assert stripe_webhook.nesting(body.encode()) == min(depth + 1, stripe_webhook.MAX_DEPTH + 1)  # stops counting
