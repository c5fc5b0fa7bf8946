"""The ledger_mismatch card (Teams and Slack) from the alert as the alerts stream delivers it."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from finops_guard.billing.cards.billing import render_billing_alert, title
from finops_guard.billing.reconciliation import reconcile

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)


def invoice(invoice_id, customer, amount, *, currency="usd", status="paid", due=None):
    lines = {"data": [{"amount": amount}], "has_more": False}
    return {"id": invoice_id, "customer": customer, "currency": currency, "status": status, "subtotal": amount,
            "amount_due": amount, "due_date": due, "lines": lines}  # fmt: skip


def entry(invoice_id, customer, amount, currency="USD"):
    return {"customer_id": customer, "entry_key": f"k#{invoice_id}", "kind": "subscription", "amount_minor": amount,
            "currency": currency, "source_id": invoice_id, "invoice_id": invoice_id}  # fmt: skip


def streamed_alert(invoices, entries):
    """The alert item the store writes, serialized and read back as the notifier's stream image is."""
    result = reconcile(invoices, entries, now=NOW, start=NOW - timedelta(days=30), threshold_percent=D(1))
    item = {
        "alert_id": result.alert_id,
        "kind": "ledger_mismatch",
        "status": "open",
        "opened_at": "2026-11-16T06:00:00+00:00",
        "detail": result.alert_detail(),
    }
    image = {k: TypeSerializer().serialize(v) for k, v in item.items()}
    return {k: TypeDeserializer().deserialize(v) for k, v in image.items()}


def two_pair_alert():
    late = int((NOW - timedelta(days=3)).timestamp())
    invoices = [
        invoice("in_a1", "cus_a", 10000),
        invoice("in_a2", "cus_a", 5000),
        invoice("in_j1", "cus_j", 50000, currency="jpy"),
        invoice("in_void", "cus_j", 900, currency="jpy", status="void"),
        invoice("in_ok", "cus_k", 12345, currency="kwd"),
        invoice("in_due", "cus_k", 4000, currency="kwd", status="open", due=late),
    ]
    entries = [
        entry("in_a1", "cus_a", 9000),
        entry("in_a2", "cus_a", 5000),
        entry("in_j1", "cus_j", 50000, "JPY"),
        entry("in_void", "cus_j", 900, "JPY"),
        entry("in_ok", "cus_k", 12345, "KWD"),
    ]
    return streamed_alert(invoices, entries)


def texts(card):
    return [b.get("text") for b in card["body"] if b["type"] == "TextBlock"]


def test_title_counts_pairs_and_names_the_threshold():
    assert title(two_pair_alert()) == "Ledger mismatch: 2 customer/currency pairs over 1.0 %"


def test_teams_card_lists_each_mismatching_pair_and_its_invoices_and_the_past_due_count():
    payload = render_billing_alert(two_pair_alert(), "teams")
    card = payload["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Mismatching pairs": "2",
        "Threshold": "variance > 1.0 %",
        "Past-due invoices": "1",
        "Invoices created": "17 Oct – 16 Nov 2026 (UTC)",
        "Opened": "16 Nov 2026 06:00 UTC",
    }
    assert texts(card)[1:] == [
        "cus_a · USD: Stripe $150.00 vs ledger $140.00 (6.7 %)",
        "- in_a1: Stripe $100.00 (paid), ledger $90.00",
        "cus_j · JPY: Stripe ¥50,000 vs ledger ¥50,900 (1.8 %)",
        "- in_void: Stripe ¥0 (void), ledger ¥900",
    ]
    assert card["actions"][0]["url"] == "https://dashboard.stripe.com/invoices"


def test_slack_card_has_one_section_per_pair_and_counts_invoices_not_listed():
    invoices = [invoice(f"in_{i:02d}", "cus_a", 1000) for i in range(25)]
    alert = streamed_alert(invoices, [entry(f"in_{i:02d}", "cus_a", 1100) for i in range(25)])
    payload = render_billing_alert(alert, "slack")
    assert payload["text"] == "Ledger mismatch: 1 customer/currency pair over 1.0 %"
    sections = [b for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    assert len(sections) == 1
    lines = sections[0]["text"]["text"].split("\n")
    assert lines[0] == "*cus_a · USD: Stripe $250.00 vs ledger $275.00 (10 %)*"
    assert len(lines) == 21 and lines[1] == "• in_00: Stripe $10.00 (paid), ledger $11.00"
    context = [b for b in payload["blocks"] if b["type"] == "context"]
    assert context[0]["elements"][0]["text"] == "… and 5 more mismatching invoices"
    assert len(json.dumps(payload)) < 10_000


def test_infinite_variance_reads_as_infinite_not_as_a_number():
    alert = streamed_alert([invoice("in_open", "cus_a", 700, status="open")], [entry("in_open", "cus_a", 700)])
    card = render_billing_alert(alert, "teams")["attachments"][0]["content"]
    assert texts(card)[1] == "cus_a · USD: Stripe $0.00 vs ledger $7.00 (∞ %)"


def test_other_billing_alerts_render_as_before():
    alert = {"kind": "invoice_failed", "customer_id": "cus_a", "invoice_id": "in_1", "amount_minor": D(4900),
             "currency": "USD", "detail": {"attempt_count": D(2)},
             "opened_at": "2026-11-16T06:00:00+00:00"}  # fmt: skip
    card = render_billing_alert(alert, "teams")["attachments"][0]["content"]
    assert texts(card) == ["Payment failed: cus_a — $49.00"] and len(card["body"]) == 2
    slack = render_billing_alert(alert, "slack")
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "actions"]
