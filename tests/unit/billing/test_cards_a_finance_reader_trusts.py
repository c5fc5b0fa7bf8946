"""Cards a finance reader trusts (issue 17), the billing half: the customer's name before its id (as
the dunning e-mails greet them), the threshold a threshold card is about, instants in the stage's
time zone, and names that never cost an event its delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import stripe  # noqa: F401 - imported before sockets are disabled: its HTTP stack probes IPv6 on import
from finops_guard.billing.cards.billing import facts, render_billing_alert, title
from finops_guard.billing.cards.invoice import render_invoice_sent
from finops_guard.billing.invoice_bot import IssuedInvoice
from finops_guard.billing.ledger_rules import effects_of
from finops_guard.billing.reconciliation import reconcile

from devtools import stripe_events as se

NOW = datetime(2026, 12, 2, 15, 59, 3, tzinfo=UTC)


def failed_invoice(**changes):
    invoice = se.invoice("in_1", "cus_Northwind01", currency="eur", usage_minor=250000, attempt_count=1,
                         customer_name="Northwind Traders")  # fmt: skip
    invoice.update(changes)
    return se.event("invoice.payment_failed", invoice, event_id="evt_1NamedCustomer000000", created=1796227200)


def test_a_payment_failed_alert_carries_the_customers_name_from_the_invoice():
    [alert] = effects_of(failed_invoice(), dunning_steps=[(0, "email")]).open_alerts
    assert (alert.customer_id, alert.customer_name) == ("cus_Northwind01", "Northwind Traders")


@pytest.mark.parametrize("name", [None, 42, "", "x" * 300, {"first": "Jo"}])
def test_a_name_a_card_cannot_show_is_dropped_never_a_reason_to_refuse_the_event(name):
    [alert] = effects_of(failed_invoice(customer_name=name), dunning_steps=[(0, "email")]).open_alerts
    assert alert.customer_id == "cus_Northwind01" and alert.customer_name is None


def test_a_paid_invoice_names_its_customer_for_the_threshold_alert_it_may_raise():
    paid = se.invoice("in_2", "cus_Sakura0001", currency="jpy", usage_minor=240000, status="paid",
                      paid_at=1796227200, customer_name="Sakura\n Stays")  # fmt: skip
    effects = effects_of(se.event("invoice.paid", paid, event_id="evt_1PaidNamed00000000000", created=1796227200),
                         dunning_steps=[])  # fmt: skip
    assert effects.customer_name == "Sakura Stays"  # one line in a card's fact


def stored(kind="invoice_failed", **changes):
    """An alert as the notifier reads it from the stream (numbers as Decimal)."""
    alert = {"alert_id": f"{kind}#in_1", "kind": kind, "status": "open", "customer_id": "cus_Northwind01",
             "customer_name": "Northwind Traders", "invoice_id": "in_1", "amount_minor": D(250000),
             "currency": "EUR", "detail": {"attempt_count": D(1)},
             "opened_at": "2026-12-02T15:59:03+00:00"}  # fmt: skip
    return {**alert, **changes}


def test_a_billing_card_names_the_customer_before_the_id_and_opens_in_the_stages_time_zone():
    alert = stored()
    assert title(alert) == "Payment failed: Northwind Traders (cus_Northwind01) — €2,500.00"
    rows = dict(facts(alert, "Europe/Madrid"))
    assert rows["Customer"] == "Northwind Traders (cus_Northwind01)"
    assert rows["Opened"] == "2 Dec 2026 16:59 Europe/Madrid"
    assert dict(facts({**alert, "customer_name": None}))["Customer"] == "cus_Northwind01"  # the id when no name


def test_a_ledger_threshold_card_states_the_threshold_and_the_month_it_was_crossed_in():
    alert = stored("threshold_exceeded", customer_name="Sakura Stays", customer_id="cus_Sakura0001",
                   invoice_id=None, amount_minor=D(240000), currency="JPY",
                   detail={"month": "2026-11", "threshold_minor": D(150000)})  # fmt: skip
    assert title(alert) == (
        "Billing threshold exceeded: Sakura Stays (cus_Sakura0001) billed ¥240,000 in Nov 2026,"
        " over the ¥150,000 threshold"
    )
    rows = dict(facts(alert))
    assert rows["Billed in Nov 2026"] == "¥240,000" and rows["Threshold"] == "¥150,000 a month"
    assert "Month" not in rows and "Amount" not in rows


def test_a_stripe_usage_alert_states_the_usage_and_the_alerts_threshold():
    event = se.event("billing.alert.triggered", se.billing_alert("alrt_1", "cus_Sakura0001"),
                     event_id="evt_1StripeUsage0000000000", created=1796227200)  # fmt: skip
    [change] = effects_of(event, dunning_steps=[]).open_alerts
    assert change.detail == {"source": "stripe billing.alert", "title": "Usage above plan", "usage": 120000,
                             "usage_threshold": 102680, "meter": "API calls"}  # fmt: skip
    alert = stored("threshold_exceeded", customer_name=None, customer_id="cus_Sakura0001", invoice_id=None,
                   amount_minor=None, currency=None, detail=change.detail)  # fmt: skip
    assert title(alert) == (
        "Stripe usage alert: cus_Sakura0001 — Usage above plan: 120,000 API calls (alert at 102,680)"
    )


def test_slack_cannot_be_made_to_mention_or_link_by_a_customers_name():
    payload = render_billing_alert(stored(customer_name="<!channel> & co"), "slack")
    fields = json.dumps(payload["blocks"][1])
    assert "<!channel>" not in fields and "&lt;!channel&gt; &amp; co" in fields


def test_a_ledger_mismatch_pair_is_named_as_stripes_invoices_name_the_customer():
    invoice = {"id": "in_a", "customer": "cus_a", "customer_name": "Acme Rentals", "currency": "usd",
               "status": "paid", "subtotal": 1000,
               "lines": {"data": [{"amount": 1000}], "has_more": False}}  # fmt: skip
    ledger = [{"customer_id": "cus_a", "entry_key": "k", "kind": "subscription", "amount_minor": 900,
               "currency": "USD", "source_id": "in_a", "invoice_id": "in_a"}]  # fmt: skip
    result = reconcile([invoice], ledger, now=NOW, start=NOW - timedelta(days=30), threshold_percent=D(1))
    alert = {"kind": "ledger_mismatch", "opened_at": "2026-12-02T15:59:03Z", "detail": result.alert_detail()}
    card = render_billing_alert(alert, "teams")["attachments"][0]["content"]
    assert card["body"][2]["text"] == "Acme Rentals (cus_a) · USD: Stripe $10.00 vs ledger $9.00 (10 %)"


def test_the_invoice_sent_card_names_the_customer_as_stripes_invoice_does():
    issued = IssuedInvoice("req-1", "in_1", "FG-0017", "sent", "cus_Fabrikam01", 125000, "EUR", "Workshop",
                           None, None, replayed=False, customer_name="Fabrikam Events")  # fmt: skip
    payload = render_invoice_sent(issued, "teams", "arn:aws:iam::123456789012:user/finance")
    body = payload["attachments"][0]["content"]["body"]
    assert body[0]["text"] == "Invoice sent: Fabrikam Events (cus_Fabrikam01) — €1,250.00"
    assert body[1]["facts"][0] == {"title": "Customer", "value": "Fabrikam Events (cus_Fabrikam01)"}
