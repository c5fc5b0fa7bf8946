"""The finance admin API's domain with in-memory ports: summary maths, alert retry/resend state and
idempotency keys, portal sessions, the exact ledger CSV and the weekly snapshot keys."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from finops_guard.billing import billing_admin as ba
from finops_guard.billing.adapters.stripe_api import StripeCardError, StripeRequestError
from finops_guard.billing.api import ApiError

NOW = datetime(2024, 8, 14, 9, 30, tzinfo=UTC)
ALERT = "invoice_failed#in_1"


# --- in-memory ports ------------------------------------------------------------------------------


class FakeReads:
    """The BillingReads port over dicts, with the adapter's conditional-update semantics."""

    def __init__(self, *, alerts=(), ledger=(), objects=()):
        self.alerts = {a["alert_id"]: dict(a) for a in alerts}
        self.ledger = [dict(e) for e in ledger]
        self.objects = {o["object_id"]: dict(o) for o in objects}
        self.writes: list[tuple[str, str]] = []

    def subscriptions(self):
        return [o for o in self.objects.values() if o.get("object_type") == "subscription"]

    def ledger_entries(self, month):
        return [e for e in self.ledger if e.get("month") == month and not e["entry_key"].startswith("TOTAL#")]

    def alerts_with_status(self, status):
        return [a for a in self.alerts.values() if a.get("status") == status]

    def alert(self, alert_id):
        found = self.alerts.get(alert_id)
        return None if found is None else copy.deepcopy(found)

    def billing_object(self, object_id):
        return copy.deepcopy(self.objects.get(object_id))

    def claim_retry(self, alert_id, *, kinds, now, stale_before):
        alert = self.alerts.get(alert_id)
        if alert is None or alert.get("kind") not in tuple(kinds):
            return None
        stamp = now.isoformat(timespec="seconds")
        if alert["status"] == "open":
            alert.update(status="retrying", retry_count=alert.get("retry_count", 0) + 1, claimed_at=stamp)
        elif alert["status"] == "retrying" and alert.get("claimed_at", "") < stale_before.isoformat(timespec="seconds"):
            alert.update(claimed_at=stamp)
        else:
            return None
        self.writes.append(("claim_retry", alert_id))
        return alert["retry_count"]

    def release_retry(self, alert_id, *, retry_count, error, now):
        alert = self.alerts[alert_id]
        if alert["status"] != "retrying" or alert["retry_count"] != retry_count:
            return False
        alert.update(status="open", last_retry_error=dict(error))
        alert.pop("claimed_at", None)
        self.writes.append(("release_retry", alert_id))
        return True

    def resolve_alert(self, alert_id, *, resolved_by, now):
        alert = self.alerts[alert_id]
        if alert["status"] not in ("open", "retrying"):
            return False
        alert.update(status="resolved", resolved_by=resolved_by, resolved_at=now.isoformat(timespec="seconds"))
        alert.pop("claimed_at", None)
        self.writes.append(("resolve_alert", alert_id))
        return True

    def claim_resend(self, alert_id, *, kinds, now):
        alert = self.alerts.get(alert_id)
        if alert is None or alert.get("kind") not in tuple(kinds) or alert["status"] != "open":
            return None
        alert["resend_count"] = alert.get("resend_count", 0) + 1
        self.writes.append(("claim_resend", alert_id))
        return alert["resend_count"]


class FakeStripe:
    """Records every call; `outcomes` scripts the next answers (an exception to raise, or a dict)."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, str | None]] = []

    def _answer(self, default):
        outcome = self.outcomes.pop(0) if self.outcomes else default
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def pay_invoice(self, invoice, *, idempotency_key):
        self.calls.append(("pay", invoice, idempotency_key))
        return self._answer({"id": invoice, "status": "paid"})

    def send_invoice(self, invoice, *, idempotency_key):
        self.calls.append(("send", invoice, idempotency_key))
        return self._answer({"id": invoice, "status": "open"})

    def create_portal_session(self, *, customer, return_url):
        self.calls.append(("portal", customer, return_url))
        return self._answer({"url": f"https://billing.example/session/{customer}"})


class FakeBucket:
    def __init__(self):
        self.objects: dict[str, str] = {}

    def put_csv(self, key, text):
        self.objects[key] = text


def invoice_alert(**changes) -> dict:
    alert = {
        "alert_id": ALERT,
        "kind": "invoice_failed",
        "status": "open",
        "customer_id": "cus_A",
        "invoice_id": "in_1",
        "amount_minor": Decimal(4900),
        "currency": "USD",
        "opened_at": "2024-08-10T08:00:00+00:00",
    }
    alert.update(changes)
    return alert


def entry(customer, key, kind, amount, currency, occurred_at, **extra) -> dict:
    return {
        "customer_id": customer,
        "entry_key": key,
        "month": occurred_at[:7],
        "kind": kind,
        "amount_minor": Decimal(amount),
        "currency": currency,
        "source_id": extra.pop("source_id", "in_x"),
        "event_id": extra.pop("event_id", "evt_x"),
        "occurred_at": occurred_at,
        **extra,
    }


def subscription(sub_id, status, currency, *items) -> dict:
    return {
        "object_id": sub_id,
        "object_type": "subscription",
        "status": status,
        "currency": currency,
        "items": [
            {"price": f"price_{i}", "unit_amount": Decimal(a), "quantity": Decimal(q), "interval": iv,
             "interval_count": Decimal(c)}
            for i, (a, q, iv, c) in enumerate(items)
        ],
    }  # fmt: skip


# --- summary --------------------------------------------------------------------------------------


def test_mrr_normalises_monthly_yearly_weekly_and_daily_prices_to_one_month():
    subs = [
        subscription("sub_m", "active", "usd", (4900, 2, "month", 1)),  # 9800
        subscription("sub_q", "active", "USD", (30000, 1, "month", 3)),  # 10000
        subscription("sub_y", "trialing", "USD", (120000, 1, "year", 1)),  # 10000
        subscription("sub_w", "past_due", "USD", (1200, 1, "week", 1)),  # 1200*52/12 = 5200
        subscription("sub_d", "active", "USD", (100, 3, "day", 1)),  # 300*365/12 = 9125
    ]
    assert ba.monthly_recurring_revenue(subs) == {"USD": 9800 + 10000 + 10000 + 5200 + 9125}


def test_mrr_ignores_canceled_incomplete_and_one_off_items():
    subs = [
        subscription("sub_a", "active", "EUR", (1000, 1, "month", 1), (500, 1, None, 1)),
        subscription("sub_c", "canceled", "EUR", (99999, 1, "month", 1)),
        subscription("sub_i", "incomplete", "EUR", (99999, 1, "month", 1)),
        subscription("sub_u", "unpaid", "EUR", (99999, 1, "month", 1)),
    ]
    assert ba.monthly_recurring_revenue(subs) == {"EUR": 1000}


def test_mrr_is_summed_exactly_and_rounded_half_even_once_per_currency():
    # Three weekly prices of 1 minor unit: 3 * 52/12 = 13.0 exactly (per-item rounding would say 12).
    thirds = [subscription(f"sub_{i}", "active", "USD", (1, 1, "week", 1)) for i in range(3)]
    assert ba.monthly_recurring_revenue(thirds) == {"USD": 13}
    # 5 / 2 = 2.5 -> 2 and 15 / 2 = 7.5 -> 8 (half to even), each currency on its own.
    halves = [
        subscription("sub_j", "active", "JPY", (5, 1, "month", 2)),
        subscription("sub_k", "active", "KWD", (15, 1, "month", 2)),
    ]
    assert ba.monthly_recurring_revenue(halves) == {"JPY": 2, "KWD": 8}


def test_summary_reports_mrr_fees_of_this_month_open_alerts_and_last_reconciliation():
    reads = FakeReads(
        alerts=[
            invoice_alert(),
            invoice_alert(
                alert_id="escalation#in_2",
                kind="escalation",
                invoice_id="in_2",
                status="retrying",
                amount_minor=Decimal(1500),
                currency="JPY",
                opened_at="2024-08-01T00:00:00+00:00",
            ),
            invoice_alert(alert_id="invoice_failed#in_3", status="resolved"),
            {
                "alert_id": "threshold_exceeded#cus_A#2024-08#USD",
                "kind": "threshold_exceeded",
                "status": "open",
                "customer_id": "cus_A",
                "amount_minor": Decimal(12000),
                "currency": "USD",
                "opened_at": "2024-08-12T00:00:00+00:00",
            },
        ],  # fmt: skip
        ledger=[
            entry("cus_A", "a1", "booking_fee", 1250, "USD", "2024-08-02T10:00:00Z"),
            entry("cus_B", "b1", "booking_fee", 750, "USD", "2024-08-13T10:00:00Z"),
            entry("cus_B", "b2", "booking_fee", 12345, "KWD", "2024-08-13T11:00:00Z"),
            entry("cus_A", "a2", "subscription", 4900, "USD", "2024-08-02T10:00:00Z"),
            entry("cus_A", "a0", "booking_fee", 999, "USD", "2024-07-31T23:59:59Z"),
            {"customer_id": "cus_A", "entry_key": "TOTAL#2024-08#USD", "month": "2024-08", "total_minor": 6150},
        ],
        objects=[
            subscription("sub_1", "active", "USD", (4900, 1, "month", 1)),
            {
                "object_id": "reconciliation#latest",
                "object_type": "reconciliation",
                "status": "mismatch",
                "variance_minor": Decimal(-250),
                "variance_percent": Decimal("1.25"),
                "checked": Decimal(42),
            },
        ],  # fmt: skip
    )
    reply = ba.billing_summary(reads=reads, now=NOW)
    assert reply.status == 200
    assert reply.body == {
        "as_of": "2024-08-14T09:30:00+00:00",
        "month": "2024-08",
        "mrr": {"USD": {"amount_minor": 4900, "formatted": "$49.00"}},
        "booking_fees_mtd": {
            "KWD": {"amount_minor": 12345, "formatted": "12.345 KWD"},
            "USD": {"amount_minor": 2000, "formatted": "$20.00"},
        },
        "open_alerts": {
            "count": 3,
            "by_kind": {"escalation": 1, "invoice_failed": 1, "threshold_exceeded": 1},
            "alerts": [
                {
                    "alert_id": "escalation#in_2",
                    "kind": "escalation",
                    "status": "retrying",
                    "customer_id": "cus_A",
                    "invoice_id": "in_2",
                    "amount_minor": 1500,
                    "currency": "JPY",
                    "opened_at": "2024-08-01T00:00:00+00:00",
                    "amount": "¥1,500",
                },
                {
                    "alert_id": ALERT,
                    "kind": "invoice_failed",
                    "status": "open",
                    "customer_id": "cus_A",
                    "invoice_id": "in_1",
                    "amount_minor": 4900,
                    "currency": "USD",
                    "opened_at": "2024-08-10T08:00:00+00:00",
                    "amount": "$49.00",
                },
                {
                    "alert_id": "threshold_exceeded#cus_A#2024-08#USD",
                    "kind": "threshold_exceeded",
                    "status": "open",
                    "customer_id": "cus_A",
                    "invoice_id": None,
                    "amount_minor": 12000,
                    "currency": "USD",
                    "opened_at": "2024-08-12T00:00:00+00:00",
                    "amount": "$120.00",
                },
            ],
        },  # fmt: skip
        "last_reconciliation": {
            "object_id": "reconciliation#latest",
            "object_type": "reconciliation",
            "status": "mismatch",
            "variance_minor": -250,
            "variance_percent": "1.25",
            "checked": 42,
        },
    }


def test_summary_with_nothing_stored_is_empty_with_null_reconciliation():
    body = ba.billing_summary(reads=FakeReads(), now=NOW).body
    assert body["mrr"] == {} and body["booking_fees_mtd"] == {}
    assert body["open_alerts"] == {"count": 0, "by_kind": {}, "alerts": []}
    assert body["last_reconciliation"] is None


# --- retry ----------------------------------------------------------------------------------------


def test_retry_pays_with_a_key_derived_from_the_alert_and_resolves_it():
    reads, stripe = FakeReads(alerts=[invoice_alert()]), FakeStripe()
    reply = ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert (reply.status, reply.body) == (200, {"alert_id": ALERT, "status": "resolved", "invoice_status": "paid"})
    assert stripe.calls == [("pay", "in_1", "finops-guard:invoice_failed#in_1:pay:1")]
    stored = reads.alerts[ALERT]
    assert (stored["status"], stored["resolved_by"], stored["resolved_at"]) == (
        "resolved",
        "retry",
        "2024-08-14T09:30:00+00:00",
    )
    assert stored["retry_count"] == 1 and "claimed_at" not in stored


def test_retry_idempotency_key_is_stable_when_a_crashed_attempt_is_taken_over():
    reads = FakeReads(alerts=[invoice_alert(retry_count=2)])
    stripe = FakeStripe(ConnectionError("reset by peer"))
    with pytest.raises(ConnectionError):
        ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert reads.alerts[ALERT]["status"] == "retrying"  # the claim is left for a takeover
    # Within 5 minutes the claim may still be running: no second payment attempt.
    with pytest.raises(ApiError) as busy:
        ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW + timedelta(minutes=4, seconds=59))
    assert busy.value.status == 409 and len(stripe.calls) == 1
    later = ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW + timedelta(minutes=5, seconds=1))
    assert later.status == 200
    keys = [key for _, _, key in stripe.calls]
    assert keys == ["finops-guard:invoice_failed#in_1:pay:3"] * 2
    assert reads.alerts[ALERT]["retry_count"] == 3


def test_declined_retry_reopens_the_alert_with_the_error_and_the_next_retry_is_a_new_attempt():
    reads = FakeReads(alerts=[invoice_alert()])
    stripe = FakeStripe(StripeCardError("Your card was declined.", status=402, code="card_declined"))
    reply = ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert (reply.status, reply.body) == (
        402,
        {"error": "payment declined", "code": "card_declined", "alert_id": ALERT},
    )
    stored = reads.alerts[ALERT]
    assert stored["status"] == "open" and "claimed_at" not in stored
    assert stored["last_retry_error"] == {
        "code": "card_declined",
        "message": "Your card was declined.",
        "attempt": 1,
        "at": "2024-08-14T09:30:00+00:00",
    }
    again = ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW + timedelta(minutes=1))
    assert again.status == 200
    assert [key for _, _, key in stripe.calls] == [
        "finops-guard:invoice_failed#in_1:pay:1",
        "finops-guard:invoice_failed#in_1:pay:2",
    ]


def test_retry_of_an_invoice_stripe_says_is_already_paid_resolves_the_alert():
    reads = FakeReads(alerts=[invoice_alert(kind="payment_action_required", alert_id="payment_action_required#in_1")])
    stripe = FakeStripe(StripeRequestError("Invoice is already paid", status=400, code="invoice_already_paid"))
    reply = ba.retry_alert("payment_action_required#in_1", reads=reads, api=stripe, now=NOW)
    assert reply.status == 200 and reply.body["status"] == "resolved"
    assert reads.alerts["payment_action_required#in_1"]["status"] == "resolved"


def test_retry_refused_by_stripe_for_another_reason_reopens_and_answers_409_with_stripes_message():
    reads = FakeReads(alerts=[invoice_alert()])
    stripe = FakeStripe(StripeRequestError("This invoice is void.", status=400, code="invoice_not_open"))
    reply = ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert (reply.status, reply.body) == (
        409,
        {"error": "This invoice is void.", "code": "invoice_not_open", "alert_id": ALERT},
    )
    assert reads.alerts[ALERT]["status"] == "open"


def test_retry_that_leaves_the_invoice_unpaid_keeps_the_alert_open():
    reads = FakeReads(alerts=[invoice_alert()])
    reply = ba.retry_alert(ALERT, reads=reads, api=FakeStripe({"id": "in_1", "status": "open"}), now=NOW)
    assert reply.status == 409 and reply.body["invoice_status"] == "open"
    assert reads.alerts[ALERT]["status"] == "open"


@pytest.mark.parametrize(
    ("alerts", "alert_id", "status", "reason"),
    [
        ([], "invoice_failed#in_404", 404, "no alert invoice_failed#in_404"),
        ([invoice_alert(status="resolved")], ALERT, 409, "alert is resolved, not open"),
        (
            [{"alert_id": "threshold_exceeded#x", "kind": "threshold_exceeded", "status": "open"}],
            "threshold_exceeded#x",
            409,
            "alert kind threshold_exceeded has no invoice to act on",
        ),
        ([invoice_alert(invoice_id=None)], ALERT, 409, "alert has no invoice id"),
        ([], "x" * 600, 400, "alert id is malformed"),
    ],
)
def test_retry_and_resend_refuse_unknown_or_unsuitable_alerts_without_writing(alerts, alert_id, status, reason):
    for action in (ba.retry_alert, ba.resend_alert):
        reads, stripe = FakeReads(alerts=alerts), FakeStripe()
        before = copy.deepcopy(reads.alerts)
        with pytest.raises(ApiError) as refused:
            action(alert_id, reads=reads, api=stripe, now=NOW)
        assert (refused.value.status, refused.value.reason) == (status, reason)
        assert reads.writes == [] and stripe.calls == [] and reads.alerts == before


def test_retry_losing_the_claim_race_answers_409_without_paying():
    reads, stripe = FakeReads(alerts=[invoice_alert()]), FakeStripe()
    reads.claim_retry = lambda *args, **kwargs: None  # another request claimed it after our read
    with pytest.raises(ApiError) as refused:
        ba.retry_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert refused.value.status == 409 and stripe.calls == []


# --- resend ---------------------------------------------------------------------------------------


def test_resend_sends_with_a_key_numbered_by_the_resend_count_and_keeps_the_alert_open():
    reads, stripe = FakeReads(alerts=[invoice_alert()]), FakeStripe()
    first = ba.resend_alert(ALERT, reads=reads, api=stripe, now=NOW)
    second = ba.resend_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert first.status == second.status == 200
    assert first.body == {"alert_id": ALERT, "invoice_id": "in_1", "sent": True}
    assert stripe.calls == [
        ("send", "in_1", "finops-guard:invoice_failed#in_1:send:1"),
        ("send", "in_1", "finops-guard:invoice_failed#in_1:send:2"),
    ]
    assert reads.alerts[ALERT]["status"] == "open" and reads.alerts[ALERT]["resend_count"] == 2


def test_resend_of_an_invoice_stripe_says_is_not_open_answers_409():
    reads = FakeReads(alerts=[invoice_alert()])
    stripe = FakeStripe(StripeRequestError("You can only send an open invoice.", status=400, code="invoice_not_open"))
    reply = ba.resend_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert reply.status == 409 and reply.body["error"] == "You can only send an open invoice."
    assert reads.alerts[ALERT]["status"] == "open"


def test_resend_while_a_retry_runs_answers_409():
    reads, stripe = FakeReads(alerts=[invoice_alert(status="retrying", claimed_at=NOW.isoformat())]), FakeStripe()
    with pytest.raises(ApiError) as refused:
        ba.resend_alert(ALERT, reads=reads, api=stripe, now=NOW)
    assert (refused.value.status, refused.value.reason) == (409, "alert is retrying, not open")
    assert stripe.calls == []


# --- portal session -------------------------------------------------------------------------------


def test_portal_session_returns_stripes_url_with_the_configured_return_url():
    stripe = FakeStripe()
    reply = ba.portal_session({"customer": "cus_QXg1o8vcGmoR32"}, api=stripe, return_url="https://app.example/billing")
    assert (reply.status, reply.body) == (200, {"url": "https://billing.example/session/cus_QXg1o8vcGmoR32"})
    assert stripe.calls == [("portal", "cus_QXg1o8vcGmoR32", "https://app.example/billing")]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({}, 400, "customer is required"),
        ({"customer": ""}, 400, "customer is required"),
        ({"customer": 42}, 400, "customer must be a Stripe customer id (cus_...)"),
        ({"customer": "in_123"}, 400, "customer must be a Stripe customer id (cus_...)"),
        ({"customer": "cus_1 OR 1=1"}, 400, "customer must be a Stripe customer id (cus_...)"),
        ({"customer": "cus_1", "return_url": "https://evil"}, 400, "unknown field return_url"),
    ],
)
def test_portal_session_refuses_malformed_bodies_before_calling_stripe(body, status, reason):
    stripe = FakeStripe()
    with pytest.raises(ApiError) as refused:
        ba.portal_session(body, api=stripe, return_url="https://app.example/billing")
    assert (refused.value.status, refused.value.reason) == (status, reason) and stripe.calls == []


def test_portal_session_without_a_configured_return_url_answers_409():
    stripe = FakeStripe()
    with pytest.raises(ApiError) as refused:
        ba.portal_session({"customer": "cus_1"}, api=stripe, return_url=None)
    assert (refused.value.status, refused.value.reason) == (409, "billingPortalReturnUrl is not configured")
    assert stripe.calls == []


def test_portal_session_for_a_customer_stripe_does_not_know_answers_404():
    stripe = FakeStripe(StripeRequestError("No such customer: 'cus_gone'", status=404, code="resource_missing"))
    with pytest.raises(ApiError) as refused:
        ba.portal_session({"customer": "cus_gone"}, api=stripe, return_url="https://app.example/billing")
    assert (refused.value.status, refused.value.reason) == (404, "no such customer: cus_gone")


# --- ledger CSV -----------------------------------------------------------------------------------


LEDGER = [
    entry("cus_B", "2024-08-03T10:00:00Z#in_2#booking_fee", "booking_fee", 1500, "JPY", "2024-08-03T10:00:00Z",
          source_id="in_2", invoice_id="in_2", event_id="evt_2"),
    entry("cus_A", "2024-08-03T10:00:00Z#cn_1#credit_adjustment", "credit_adjustment", -2000, "USD",
          "2024-08-03T10:00:00Z", source_id="cn_1", invoice_id="in_1", event_id="evt_3"),
    entry("cus_A", "2024-08-01T09:00:00Z#in_1#subscription", "subscription", 4900, "USD", "2024-08-01T09:00:00Z",
          source_id="in_1", invoice_id="in_1", event_id="evt_1"),
    entry("cus_C", "2024-08-20T00:00:00Z#ch_9#booking_fee", "booking_fee", 12345, "KWD", "2024-08-20T00:00:00Z",
          source_id="ch_9", event_id="evt_4"),
    {"customer_id": "cus_A", "entry_key": "TOTAL#2024-08#USD", "month": "2024-08", "total_minor": Decimal(2900),
     "currency": "USD"},
    entry("cus_A", "2024-07-31T23:00:00Z#in_0#subscription", "subscription", 4900, "USD", "2024-07-31T23:00:00Z",
          source_id="in_0", invoice_id="in_0", event_id="evt_0"),
]  # fmt: skip
AUGUST_CSV = (
    "occurred_at,customer_id,kind,amount,currency,amount_minor,invoice_id,source_id,event_id,entry_key\r\n"
    "2024-08-01T09:00:00Z,cus_A,subscription,49.00,USD,4900,in_1,in_1,evt_1,2024-08-01T09:00:00Z#in_1#subscription\r\n"
    "2024-08-03T10:00:00Z,cus_A,credit_adjustment,-20.00,USD,-2000,in_1,cn_1,evt_3,"
    "2024-08-03T10:00:00Z#cn_1#credit_adjustment\r\n"
    "2024-08-03T10:00:00Z,cus_B,booking_fee,1500,JPY,1500,in_2,in_2,evt_2,2024-08-03T10:00:00Z#in_2#booking_fee\r\n"
    "2024-08-20T00:00:00Z,cus_C,booking_fee,12.345,KWD,12345,,ch_9,evt_4,2024-08-20T00:00:00Z#ch_9#booking_fee\r\n"
)


def test_ledger_csv_is_exact_sorted_and_leaves_out_monthly_totals():
    august = [e for e in LEDGER if e["month"] == "2024-08"]
    assert ba.ledger_csv(august) == AUGUST_CSV


def test_ledger_csv_quotes_fields_as_rfc_4180_requires():
    odd = entry('cus_"x",y', "k1", "booking_fee", 5, "EUR", "2024-08-01T00:00:00Z", source_id="a\nb")
    lines = ba.ledger_csv([odd]).split("\r\n")
    assert lines[1] == '2024-08-01T00:00:00Z,"cus_""x"",y",booking_fee,0.05,EUR,5,,"a\nb",evt_x,k1'


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1500, "JPY", "1500"),
        (12345, "KWD", "12.345"),
        (-2000, "USD", "-20.00"),
        (5, "usd", "0.05"),
        (0, "BHD", "0.000"),
    ],
)
def test_major_amount_has_exactly_the_currencys_minor_digits(minor, currency, text):
    assert ba.major_amount(minor, currency) == text


def test_export_defaults_to_the_current_utc_month_as_an_attachment():
    reply = ba.export_csv({}, reads=FakeReads(ledger=LEDGER), now=NOW)
    assert reply.status == 200 and reply.body == AUGUST_CSV
    assert reply.content_type == "text/csv; charset=utf-8"
    assert reply.headers == {"Content-Disposition": 'attachment; filename="ledger-2024-08.csv"'}


def test_export_of_a_named_month():
    reply = ba.export_csv({"month": "2024-07"}, reads=FakeReads(ledger=LEDGER), now=NOW)
    assert reply.body.count("\r\n") == 2 and ",in_0,evt_0," in reply.body
    assert reply.headers["Content-Disposition"] == 'attachment; filename="ledger-2024-07.csv"'


def test_export_of_a_day_range_includes_from_and_excludes_to_across_months():
    reply = ba.export_csv({"from": "2024-07-31", "to": "2024-08-03"}, reads=FakeReads(ledger=LEDGER), now=NOW)
    rows = reply.body.split("\r\n")[1:-1]
    assert [r.split(",")[-1] for r in rows] == [
        "2024-07-31T23:00:00Z#in_0#subscription",
        "2024-08-01T09:00:00Z#in_1#subscription",
    ]
    assert reply.headers["Content-Disposition"] == 'attachment; filename="ledger-2024-07-31-to-2024-08-03.csv"'


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"month": "2024-13"}, "month must be YYYY-MM"),
        ({"month": "2024-8"}, "month must be YYYY-MM"),
        ({"month": "August"}, "month must be YYYY-MM"),
        ({"month": "2024-08", "from": "2024-08-01"}, "month cannot be combined with from/to"),
        ({"from": "2024-08-01"}, "to is required with from"),
        ({"to": "2024-08-01"}, "from is required with to"),
        ({"from": "2024-02-30", "to": "2024-03-01"}, "from must be YYYY-MM-DD"),
        ({"from": "2024-08-01", "to": "tomorrow"}, "to must be YYYY-MM-DD"),
        ({"from": "2024-08-02", "to": "2024-08-02"}, "to must be after from (to is exclusive)"),
        ({"from": "2024-08-02", "to": "2024-08-01"}, "to must be after from (to is exclusive)"),
        ({"from": "2023-01-01", "to": "2024-01-03"}, "from..to spans more than 366 days"),
        ({"months": "2024-08"}, "unknown parameter months"),
    ],
)
def test_export_refuses_malformed_periods_naming_the_parameter(params, reason):
    with pytest.raises(ApiError) as refused:
        ba.export_csv(params, reads=FakeReads(ledger=LEDGER), now=NOW)
    assert (refused.value.status, refused.value.reason) == (400, reason)


def test_export_accepts_a_leap_year_of_366_days():
    reply = ba.export_csv({"from": "2024-01-01", "to": "2025-01-01"}, reads=FakeReads(ledger=LEDGER), now=NOW)
    assert reply.status == 200 and reply.body.count("\r\n") == 1 + 5


def test_months_between_lists_each_month_touched_by_a_half_open_day_range():
    assert ba.months_between(date(2024, 12, 30), date(2025, 2, 1)) == ["2024-12", "2025-01"]
    assert ba.months_between(date(2024, 8, 1), date(2024, 8, 2)) == ["2024-08"]


# --- weekly snapshot ------------------------------------------------------------------------------


def test_weekly_snapshot_within_one_month_writes_that_months_csv():
    bucket = FakeBucket()
    keys = ba.weekly_snapshot(reads=FakeReads(ledger=LEDGER), bucket=bucket, now=NOW)
    assert keys == ["ledger/2024-08/ledger-2024-08-as-of-2024-08-14.csv"]
    assert bucket.objects == {keys[0]: AUGUST_CSV}


def test_weekly_snapshot_across_a_month_boundary_writes_both_months():
    bucket = FakeBucket()
    keys = ba.weekly_snapshot(reads=FakeReads(ledger=LEDGER), bucket=bucket, now=datetime(2024, 8, 5, 6, tzinfo=UTC))
    assert keys == [
        "ledger/2024-07/ledger-2024-07-as-of-2024-08-05.csv",
        "ledger/2024-08/ledger-2024-08-as-of-2024-08-05.csv",
    ]
    assert bucket.objects[keys[1]] == AUGUST_CSV
    assert bucket.objects[keys[0]].split("\r\n")[1].endswith("#in_0#subscription")


def test_weekly_snapshot_on_the_seventh_day_of_a_month_stays_in_that_month():
    bucket = FakeBucket()
    keys = ba.weekly_snapshot(reads=FakeReads(), bucket=bucket, now=datetime(2024, 8, 7, 23, 59, tzinfo=UTC))
    assert keys == ["ledger/2024-08/ledger-2024-08-as-of-2024-08-07.csv"]
    assert bucket.objects[keys[0]] == ",".join(ba.CSV_COLUMNS) + "\r\n"
