"""Reconciliation rules: per (customer, currency) sums, the strict 1 % threshold, what is listed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.billing.reconciliation import (
    INFINITE,
    MAX_LISTED_INVOICES,
    months_between,
    reconcile,
    run_reconciliation,
    stripe_amount,
    variance_percent,
    window_start,
)

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)
CREATED = int((NOW - timedelta(days=3)).timestamp())


def invoice(invoice_id, customer, amount, *, currency="usd", status="paid", due=None, lines=None, **extra):
    data = lines if lines is not None else [{"amount": amount}]
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "currency": currency,
        "status": status,
        "subtotal": amount,
        "amount_due": amount,
        "created": CREATED,
        "due_date": due,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
        "lines": {"object": "list", "data": data, "has_more": False},
        **extra,
    }


def entry(invoice_id, customer, amount, *, currency="USD", kind="subscription", key=None, with_invoice_id=True):
    return {
        "customer_id": customer,
        "entry_key": key or f"2026-11-13T10:00:00Z#{invoice_id}#{kind}",
        "kind": kind,
        "amount_minor": amount,
        "currency": currency,
        "source_id": invoice_id,
        "invoice_id": invoice_id if with_invoice_id else None,
    }


def run(invoices, entries, threshold="1"):
    return reconcile(invoices, entries, now=NOW, start=START, threshold_percent=D(threshold))


def test_pairs_sum_both_sides_in_minor_units_and_report_exact_variance():
    invoices = [invoice("in_a1", "cus_a", 6000), invoice("in_a2", "cus_a", 4000), invoice("in_b1", "cus_b", 5000)]
    entries = [
        entry("in_a1", "cus_a", 4900),
        entry("in_a1", "cus_a", 1100, kind="booking_fee"),
        entry("in_a2", "cus_a", 3000),
        entry("in_b1", "cus_b", 5000),
    ]
    result = run(invoices, entries)
    assert (result.invoices_seen, result.ledger_rows_seen, result.pairs_compared) == (3, 4, 2)
    assert result.mismatch_count == 1
    pair = result.mismatches[0]
    assert (pair.customer_id, pair.currency, pair.stripe_minor, pair.ledger_minor) == ("cus_a", "USD", 10000, 9000)
    assert pair.variance_percent == D(10) and pair.difference_minor == -1000
    assert [(i.invoice_id, i.stripe_minor, i.ledger_minor, i.stripe_status) for i in pair.invoices] == [
        ("in_a2", 4000, 3000, "paid")
    ]
    assert pair.invoice_count == 1 and result.invoices_not_listed == 0


@pytest.mark.parametrize(
    ("ledger", "mismatch", "variance"),
    [(10100, False, D("1")), (9900, False, D("1")), (10101, True, D("1.01")), (9899, True, D("1.01"))],
)
def test_exactly_one_percent_is_not_a_mismatch_but_above_is(ledger, mismatch, variance):
    result = run([invoice("in_1", "cus_a", 10000)], [entry("in_1", "cus_a", ledger)])
    assert result.mismatch_count == (1 if mismatch else 0)
    assert variance_percent(10000, ledger) == variance
    if mismatch:
        assert result.mismatches[0].variance_percent == variance


def test_threshold_is_configurable():
    invoices, entries = [invoice("in_1", "cus_a", 10000)], [entry("in_1", "cus_a", 10400)]
    assert run(invoices, entries, threshold="5").mismatch_count == 0
    assert run(invoices, entries, threshold="3.99").mismatch_count == 1
    assert run(invoices, entries, threshold="0").mismatch_count == 1
    exact = run([invoice("in_1", "cus_a", 10000)], [entry("in_1", "cus_a", 10000)], threshold="0")
    assert exact.mismatch_count == 0


def test_zero_on_the_stripe_side():
    assert variance_percent(0, 0) == D(0)
    assert variance_percent(0, 1) == INFINITE
    nothing_paid = run([invoice("in_1", "cus_a", 5000, status="open")], [])
    assert nothing_paid.pairs_compared == 1 and nothing_paid.mismatch_count == 0
    booked_unpaid = run([invoice("in_1", "cus_a", 5000, status="open")], [entry("in_1", "cus_a", 5000)])
    pair = booked_unpaid.mismatches[0]
    assert (pair.stripe_minor, pair.ledger_minor, pair.variance_percent) == (0, 5000, INFINITE)
    assert pair.as_record()["variance_percent"] is None


def test_void_invoice_with_a_ledger_amount_is_listed_with_its_status():
    invoices = [invoice("in_paid", "cus_a", 100000), invoice("in_void", "cus_a", 2000, status="void")]
    entries = [entry("in_paid", "cus_a", 100000), entry("in_void", "cus_a", 2000)]
    result = run(invoices, entries)
    pair = result.mismatches[0]
    assert (pair.stripe_minor, pair.ledger_minor, pair.variance_percent) == (100000, 102000, D(2))
    assert [(i.invoice_id, i.stripe_minor, i.ledger_minor, i.stripe_status) for i in pair.invoices] == [
        ("in_void", 0, 2000, "void")
    ]


def test_currencies_are_kept_apart_per_customer_jpy_and_kwd():
    invoices = [
        invoice("in_jpy", "cus_a", 50000, currency="jpy"),
        invoice("in_kwd", "cus_a", 12345, currency="kwd"),
    ]
    entries = [entry("in_jpy", "cus_a", 50000, currency="JPY"), entry("in_kwd", "cus_a", 12000, currency="KWD")]
    result = run(invoices, entries)
    assert result.pairs_compared == 2 and result.mismatch_count == 1
    pair = result.mismatches[0]
    assert (pair.currency, pair.stripe_minor, pair.ledger_minor) == ("KWD", 12345, 12000)
    assert pair.variance_percent == D(345) * 100 / D(12345)
    assert pair.as_record()["variance_percent"] == D("2.7947")  # 2.79465... rounded away from zero


def test_ledger_booked_in_another_currency_than_the_invoice_is_a_difference_on_both_pairs():
    result = run([invoice("in_1", "cus_a", 1000)], [entry("in_1", "cus_a", 1000, currency="EUR")])
    assert sorted((p.currency, p.stripe_minor, p.ledger_minor) for p in result.mismatches) == [
        ("EUR", 0, 1000),
        ("USD", 1000, 0),
    ]


def test_credit_adjustments_totals_and_unlisted_invoices_are_not_compared():
    invoices = [invoice("in_1", "cus_a", 1000)]
    entries = [
        entry("in_1", "cus_a", 1000),
        entry("in_1", "cus_a", -400, kind="credit_adjustment"),
        entry("in_old", "cus_a", 7000),  # an invoice created before the window
        {"customer_id": "cus_a", "entry_key": "TOTAL#2026-11#USD", "total_minor": 8000, "currency": "USD"},
    ]
    result = run(invoices, entries)
    assert result.mismatch_count == 0 and result.pairs_compared == 1 and result.ledger_rows_seen == 3


def test_ledger_entry_without_invoice_id_matches_on_source_id():
    result = run([invoice("in_1", "cus_a", 1000)], [entry("in_1", "cus_a", 1000, with_invoice_id=False)])
    assert result.mismatch_count == 0


def test_stripe_amount_is_the_sum_of_lines_or_subtotal_when_lines_are_truncated():
    assert stripe_amount(invoice("in_1", "cus_a", 999, lines=[{"amount": 4900}, {"amount": 1250}])) == 6150
    truncated = invoice("in_1", "cus_a", 999, lines=[{"amount": 4900}])
    truncated["lines"]["has_more"] = True
    assert stripe_amount(truncated) == 999
    assert stripe_amount(invoice("in_1", "cus_a", 777, lines=[])) == 777


def test_past_due_lists_open_invoices_due_before_the_run_oldest_first():
    due_past, due_older = int((NOW - timedelta(days=2)).timestamp()), int((NOW - timedelta(days=9)).timestamp())
    invoices = [
        invoice("in_late", "cus_a", 3000, status="open", due=due_past),
        invoice("in_later", "cus_b", 2500, currency="jpy", status="open", due=due_older),
        invoice("in_future", "cus_a", 3000, status="open", due=int((NOW + timedelta(days=1)).timestamp())),
        invoice("in_auto", "cus_a", 3000, status="open", due=None),
        invoice("in_paid", "cus_a", 3000, status="paid", due=due_older),
    ]
    result = run(invoices, [entry("in_paid", "cus_a", 3000)])
    assert result.past_due_count == 2
    assert [(p.invoice_id, p.customer_id, p.currency, p.amount_due) for p in result.past_due] == [
        ("in_later", "cus_b", "JPY", 2500),
        ("in_late", "cus_a", "USD", 3000),
    ]
    assert result.past_due[1].as_record() == {
        "invoice_id": "in_late",
        "customer_id": "cus_a",
        "currency": "USD",
        "amount_due": 3000,
        "due_date": "2026-11-14T06:00:00Z",
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/in_late",
    }


def test_invoice_list_is_capped_across_pairs_and_the_rest_counted():
    invoices = [invoice(f"in_a{i:02d}", "cus_a", 1000) for i in range(15)]
    invoices += [invoice(f"in_b{i:02d}", "cus_b", 1000) for i in range(12)]
    entries = [entry(f"in_a{i:02d}", "cus_a", 1000 + i + 10) for i in range(15)]  # cus_a: +255 in all
    entries += [entry(f"in_b{i:02d}", "cus_b", 1020) for i in range(12)]  # cus_b: +240 in all
    result = run(invoices, entries)
    assert result.mismatch_count == 2
    first, second = result.mismatches
    assert (first.customer_id, first.invoice_count, len(first.invoices)) == ("cus_a", 15, 15)
    assert first.invoices[0].invoice_id == "in_a14"  # largest difference first
    assert (second.customer_id, second.invoice_count, len(second.invoices)) == ("cus_b", 12, 5)
    assert sum(len(p.invoices) for p in result.mismatches) == MAX_LISTED_INVOICES
    assert result.invoices_not_listed == 7
    detail = result.alert_detail()
    assert detail["mismatch_count"] == 2 and detail["invoices_not_listed"] == 7
    assert sum(len(p["invoices"]) for p in detail["mismatches"]) == 20


def test_duplicate_invoice_in_the_listing_counts_once():
    result = run([invoice("in_1", "cus_a", 1000), invoice("in_1", "cus_a", 1000)], [entry("in_1", "cus_a", 1000)])
    assert result.invoices_seen == 1 and result.mismatch_count == 0


def test_window_and_months():
    assert window_start(NOW, 30) == datetime(2026, 10, 17, 6, tzinfo=UTC)
    assert months_between(window_start(NOW, 30), NOW) == ["2026-10", "2026-11"]
    assert months_between(datetime(2025, 12, 20, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)) == [
        "2025-12",
        "2026-01",
    ]
    with pytest.raises(ValueError, match="1..30"):
        window_start(NOW, 31)


def test_stored_record_names_and_counts():
    record = run([invoice("in_1", "cus_a", 10000)], [entry("in_1", "cus_a", 10200)]).record()
    assert record["status"] == "mismatch" and record["alert_id"] == "ledger_mismatch#2026-11-16"
    assert record["ran_at"] == "2026-11-16T06:00:00Z" and record["window_start"] == "2026-10-17T06:00:00Z"
    assert record["mismatches"][0] == {
        "customer_id": "cus_a",
        "currency": "USD",
        "stripe_minor": 10000,
        "ledger_minor": 10200,
        "difference_minor": 200,
        "variance_percent": D("2.0000"),
        "invoice_count": 1,
        "invoices": [
            {
                "invoice_id": "in_1",
                "customer_id": "cus_a",
                "currency": "USD",
                "stripe_minor": 10000,
                "ledger_minor": 10200,
                "stripe_status": "paid",
            }
        ],
    }
    assert (record["mismatches_not_listed"], record["invoices_not_listed"], record["past_due_not_listed"]) == (0, 0, 0)


class FakeStripe:
    def __init__(self, invoices):
        self.invoices, self.calls = invoices, []

    def list_invoices(self, *, created_gte):
        self.calls.append(created_gte)
        return iter(self.invoices)


class FakeStore:
    def __init__(self, entries, open_alerts=()):
        self.entries, self.months, self.saved, self.raised = entries, [], [], []
        self.open = set(open_alerts)

    def ledger_entries(self, months):
        self.months.append(list(months))
        return iter(self.entries)

    def save_result(self, result):
        self.saved.append(result)

    def raise_alert(self, result):
        self.raised.append(result.alert_id)
        opened = result.alert_id not in self.open
        self.open.add(result.alert_id)
        return "opened" if opened else "updated"

    def resolve_alerts(self, now, *, keep=None):
        resolved = sorted(self.open - {keep})
        self.open -= set(resolved)
        return resolved


def test_run_lists_the_window_reads_overlapping_months_and_raises_todays_alert():
    stripe = FakeStripe([invoice("in_1", "cus_a", 10000)])
    store = FakeStore([entry("in_1", "cus_a", 12000)], open_alerts={"ledger_mismatch#2026-11-15"})
    outcome = run_reconciliation(invoices=stripe, ledger=store, sink=store, now=NOW, days=30, threshold_percent=D(1))
    assert stripe.calls == [int(datetime(2026, 10, 17, 6, tzinfo=UTC).timestamp())]
    assert store.months == [["2026-10", "2026-11"]]
    assert outcome.alert == "opened" and outcome.resolved == ["ledger_mismatch#2026-11-15"]
    assert store.saved[0].mismatch_count == 1 and store.open == {"ledger_mismatch#2026-11-16"}


def test_clean_run_resolves_open_alerts_and_raises_none():
    store = FakeStore([entry("in_1", "cus_a", 10000)], open_alerts={"ledger_mismatch#2026-11-16"})
    outcome = run_reconciliation(
        invoices=FakeStripe([invoice("in_1", "cus_a", 10000)]),
        ledger=store,
        sink=store,
        now=NOW,
        days=7,
        threshold_percent=D(1),
    )
    assert outcome.alert is None and outcome.resolved == ["ledger_mismatch#2026-11-16"] and store.raised == []
    assert store.months == [["2026-11"]] and store.saved[0].record()["status"] == "clean"


def test_an_invoice_paid_minutes_before_the_run_is_left_for_the_next_run():
    just_paid = int((NOW - timedelta(minutes=5)).timestamp())
    settled = int((NOW - timedelta(minutes=16)).timestamp())
    invoices = [
        invoice("in_new", "cus_a", 7000, status_transitions={"paid_at": just_paid}),  # webhook still on the way
        invoice("in_old", "cus_a", 3000, status_transitions={"paid_at": settled}),
        invoice("in_void", "cus_b", 0, status="void", status_transitions={"voided_at": just_paid}),
    ]
    result = run(invoices, [entry("in_old", "cus_a", 3000), entry("in_void", "cus_b", 500)])
    assert (result.invoices_in_flight, result.invoices_seen, result.mismatch_count) == (2, 1, 0)
    assert result.record()["invoices_in_flight"] == 2
