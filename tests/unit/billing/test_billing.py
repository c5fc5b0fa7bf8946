"""Stripe event rules (pure) and fuzzing of the webhook front door (no AWS, no sockets)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime

import pytest
import stripe  # noqa: F401 - imported before sockets are disabled: its HTTP stack probes IPv6 on import
from finops_guard.billing.ledger_rules import EventShapeError, effects_of, line_kind, parse_dunning_steps
from finops_guard.billing.settings import BillingSettings
from finops_guard.billing.stripe_ledger import handle_webhook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools import stripe_events as se

STEPS = [(0, "email"), (1, "sms"), (3, "email")]
SAMPLES = se.sample_events()


def effects(event_type, **changes):
    event = copy.deepcopy(SAMPLES[event_type])
    event.update(changes)
    return effects_of(event, dunning_steps=STEPS)


def test_paid_invoice_splits_lines_into_subscription_and_booking_fee_in_minor_units():
    result = effects("invoice.paid")
    assert [(e.kind, e.amount_minor, e.currency, e.month) for e in result.ledger] == [
        ("booking_fee", 1250, "USD", "2026-11"),
        ("subscription", 4900, "USD", "2026-11"),
    ]
    assert result.state.rank == 3 and result.state.attributes["status"] == "paid"
    assert result.settle_invoice == "in_1Pgc6tB7WZ01zgkWu9fdqL6I"


def test_line_kinds_across_api_versions():
    assert line_kind({"parent": {"type": "subscription_item_details"}}) == "subscription"
    assert line_kind({"parent": {"type": "invoice_item_details"}}) == "booking_fee"
    assert line_kind({"type": "subscription"}) == "subscription" and line_kind({"type": "invoiceitem"}) == "booking_fee"
    assert line_kind({"subscription": "sub_1"}) == "subscription" and line_kind({}) == "booking_fee"


def test_invoice_states_rank_so_nothing_moves_backwards():
    ranks = {t: effects(t).state.rank for t in ("invoice.created", "invoice.finalized", "invoice.payment_failed",
                                               "invoice.paid")}  # fmt: skip
    assert ranks == {"invoice.created": 0, "invoice.finalized": 1, "invoice.payment_failed": 1, "invoice.paid": 3}


def test_payment_failure_opens_alert_and_dunning_and_escalates_at_three_attempts():
    first = effects("invoice.payment_failed")
    assert [a.kind for a in first.open_alerts] == ["invoice_failed"]
    assert [(s.step, s.due_at) for s in first.dunning] == [
        ("0#email", "2026-11-17T01:00:00Z"), ("1#sms", "2026-11-18T01:00:00Z"), ("3#email", "2026-11-20T01:00:00Z"),
    ]  # fmt: skip
    event = copy.deepcopy(SAMPLES["invoice.payment_failed"])
    event["data"]["object"]["attempt_count"] = 3
    third = effects_of(event, dunning_steps=STEPS)
    assert [a.kind for a in third.open_alerts] == ["invoice_failed", "escalation"]


@pytest.mark.parametrize(("currency", "amount"), [("jpy", 5000), ("kwd", 12345), ("usd", 1)])
def test_amounts_stay_integer_minor_units_in_any_currency(currency, amount):
    event = copy.deepcopy(SAMPLES["invoice.paid"])
    event["data"]["object"] = se.invoice("in_x", "cus_x", currency=currency, status="paid", usage_minor=amount)
    [entry] = effects_of(event, dunning_steps=STEPS).ledger
    assert (entry.amount_minor, entry.currency) == (amount, currency.upper())
    assert isinstance(entry.amount_minor, int)


def test_credits_are_negative():
    assert [e.amount_minor for e in effects("credit_note.created").ledger] == [-500]
    refund = effects("charge.refunded")
    assert refund.refund_level == ("ch_1PgafuB7WZ01zgkWXYmPNZs8", 1250) and refund.ledger[0].kind == "credit_adjustment"


def test_unknown_types_are_ignored_and_bad_shapes_refused():
    assert effects("invoice.paid", type="payout.created").ignored
    with pytest.raises(EventShapeError, match="data.object must be an object"):
        effects("invoice.paid", data={})
    with pytest.raises(EventShapeError, match="evt_"):
        effects("invoice.paid", id="nope")


def test_dunning_steps_setting():
    assert parse_dunning_steps("0:email, 2:sms") == [(0, "email"), (2, "sms")]
    with pytest.raises(ValueError, match="fax"):
        parse_dunning_steps("1:fax")


# --- fuzzing the front door ------------------------------------------------------------------------

SETTINGS = BillingSettings("s", None, "e", "l", "o", "a", "d", {}, STEPS, 262_144)


class RecordingLedger:
    def __init__(self):
        self.applied = []

    def apply(self, effects, now):
        self.applied.append(effects)
        return "applied"

    def settle_invoice(self, invoice_id, now):
        return (0, 0)

    def raise_threshold_alerts(self, effects, thresholds, now):
        return []


def call(request, ledger):
    return handle_webhook(request, settings=SETTINGS, secrets=lambda: [se.TEST_SECRET], ledger=ledger,
                          now=lambda: datetime(2026, 11, 17, tzinfo=UTC))  # fmt: skip


header_text = st.text(max_size=200)
bodies = st.one_of(st.none(), st.text(max_size=2000), st.binary(max_size=2000).map(lambda b: b.decode("latin-1")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, signature=st.one_of(st.none(), header_text), b64=st.booleans(),
       extra=st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=4))  # fmt: skip
def test_garbage_requests_get_a_4xx_and_never_write(body, signature, b64, extra):
    request = se.api_gateway_event(body or "", signature=signature)
    request["headers"].update(extra)
    request["body"] = body
    request["isBase64Encoded"] = b64
    ledger = RecordingLedger()
    outcome = call(request, ledger)
    assert 400 <= outcome.status < 500 and ledger.applied == []


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def mutated(event_type: str, field: str, value):
    event = copy.deepcopy(SAMPLES.get(event_type, SAMPLES["invoice.paid"]))
    event["type"] = event_type
    target = event["data"]["object"]
    if field.startswith("lines."):
        lines = target.get("lines", {}).get("data") or [{}]
        lines[0][field.split(".", 1)[1]] = value
    else:
        target[field] = value
    return event


FIELDS = ["id", "customer", "currency", "lines", "lines.amount", "lines.parent", "status_transitions", "attempt_count",
          "amount_due", "amount_refunded", "total", "items", "alert", "invoice", "created", "status"]  # fmt: skip
ids = st.sampled_from(["evt_1Fuzz", "", None, 7])
createds = st.one_of(st.integers(0, 2**33), st.none())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_type=st.sampled_from([*SAMPLES, "payout.paid", ""]), field=st.sampled_from(FIELDS), value=json_values,
       event_id=ids, created=createds)  # fmt: skip
def test_validly_signed_but_odd_events_never_crash(event_type, field, value, event_id, created):
    """Signed by the right secret yet shaped wrong: a 400 or an ignore, never an exception (a 5xx)."""
    event = mutated(event_type, field, value)
    event.update(id=event_id if event_id != "evt_1Fuzz" else event["id"], created=created or event["created"])
    body = json.dumps(event)
    ledger = RecordingLedger()
    outcome = call(se.api_gateway_event(body, signature=se.sign(body)), ledger)
    assert outcome.status in (200, 400)
    if outcome.status == 400:
        assert ledger.applied == []


def test_a_signed_sample_is_applied_through_the_front_door():
    ledger = RecordingLedger()
    body = json.dumps(SAMPLES["invoice.paid"])
    request = se.api_gateway_event(base64.b64encode(body.encode()).decode(), signature=se.sign(body))
    request["isBase64Encoded"] = True
    outcome = call(request, ledger)
    assert outcome.status == 200 and len(ledger.applied) == 1
