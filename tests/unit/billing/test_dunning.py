"""Dunning delivery rules: what is sent, skipped or failed, at most once, in the right words."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from finops_guard.billing.dunning import (
    DueStep,
    TemplateError,
    decide,
    mask_contact,
    parse_templates,
    send_due_steps,
    supersede,
)

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def step(day: int = 0, channel: str = "email", invoice_id: str = "in_1") -> DueStep:
    return DueStep(invoice_id, f"{day}#{channel}", day, channel, "2026-11-17T01:00:00Z")


def invoice(**changes) -> dict:
    base = {
        "id": "in_1",
        "number": "FG-0007",
        "status": "open",
        "currency": "usd",
        "amount_due": 123456,
        "amount_remaining": 123456,
        "customer_name": "Jenny Rosen",
        "customer_email": "jenny@example.com",
        "customer_phone": "+15555550123",
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/in_1",
        "due_date": 1795046400,
    }
    return {**base, **changes}


class Store:
    def __init__(self, steps, *, taken=()):
        self.steps = list(steps)
        self.status = {(s.invoice_id, s.step): "pending" for s in steps}
        for key in taken:
            self.status[key] = "sending"
        self.audit = {}

    def due_steps(self, now):
        return [s for s in self.steps if self.status[(s.invoice_id, s.step)] == "pending"]

    def _move(self, s, old, new, **attrs):
        key = (s.invoice_id, s.step)
        if self.status[key] != old:
            return False
        self.status[key] = new
        self.audit[key] = attrs
        return True

    def claim(self, s, now):
        return self._move(s, "pending", "sending")

    def mark_sent(self, s, now, message_id, to_hint):
        return self._move(s, "sending", "sent", message_id=message_id, to=to_hint)

    def mark_send_failed(self, s, now, reason):
        return self._move(s, "sending", "failed", reason=reason)

    def skip(self, s, now, reason):
        return self._move(s, "pending", "skipped", reason=reason)

    def fail(self, s, now, reason):
        return self._move(s, "pending", "failed", reason=reason)


class Channels:
    def __init__(self, fail: bool = False):
        self.sent = []
        self.fail = fail

    def send(self, channel, to, subject, body):
        if self.fail:
            raise ConnectionError("provider down")
        self.sent.append((channel, to, subject, body))
        return f"msg-{len(self.sent)}"


def run(store, invoices, channels=None, **kwargs):
    channels = channels or Channels()
    result = send_due_steps(
        store=store,
        invoice=lambda invoice_id: invoices[invoice_id] if not callable(invoices) else invoices(invoice_id),
        channels=channels,
        templates=parse_templates(None),
        sender_configured=True,
        now=NOW,
        **kwargs,
    )
    return result, channels


def test_a_due_email_step_is_sent_once_with_amount_name_and_pay_link():
    store = Store([step()])
    result, channels = run(store, {"in_1": invoice()})
    assert result.sent == ["in_1/0#email"]
    [(channel, to, subject, body)] = channels.sent
    assert (channel, to, subject) == ("email", "jenny@example.com", "Payment failed for invoice FG-0007")
    assert "Hello Jenny Rosen" in body and "$1,234.56" in body
    assert "https://invoice.stripe.com/i/acct_1/in_1" in body and "due on 2026-11-19." in body
    assert store.audit[("in_1", "0#email")] == {"message_id": "msg-1", "to": "j***@example.com"}
    again, channels_again = run(store, {"in_1": invoice()})
    assert again.sent == [] and channels_again.sent == []


def test_an_invoice_paid_in_between_is_skipped_not_reminded():
    store = Store([step()])
    result, channels = run(store, {"in_1": invoice(status="paid")})
    assert result.skipped == ["in_1/0#email"] and channels.sent == []
    assert store.audit[("in_1", "0#email")] == {"reason": "invoice is paid"}


def test_a_step_claimed_by_another_run_is_not_sent_twice():
    store = Store([step()])
    original = store.claim
    store.claim = lambda s, now: False  # the other run claimed it between query and claim
    result, channels = run(store, {"in_1": invoice()})
    assert channels.sent == [] and result.lost_races == 1
    store.claim = original


def test_a_refused_send_fails_the_step_and_is_never_retried():
    store = Store([step()])
    result, _ = run(store, {"in_1": invoice()}, Channels(fail=True))
    assert result.failed == ["in_1/0#email"]
    assert store.status[("in_1", "0#email")] == "failed"
    assert store.audit[("in_1", "0#email")] == {"reason": "email provider refused: ConnectionError"}
    assert run(store, {"in_1": invoice()})[1].sent == []


def test_stripe_unreachable_leaves_the_step_pending_for_the_next_run():
    def down(invoice_id):
        raise TimeoutError("api.stripe.com")

    store = Store([step()])
    result, channels = run(store, down)
    assert result.errors == ["in_1/0#email"] and channels.sent == []
    assert store.status[("in_1", "0#email")] == "pending"


def test_only_the_latest_of_several_due_steps_of_an_invoice_is_sent():
    store = Store([step(0, "email"), step(1, "sms"), step(3, "email"), step(0, "email", "in_2")])
    result, channels = run(store, {"in_1": invoice(), "in_2": invoice(id="in_2", number="FG-0008")})
    assert sorted(result.sent) == ["in_1/3#email", "in_2/0#email"]
    assert sorted(result.skipped) == ["in_1/0#email", "in_1/1#sms"]
    assert store.audit[("in_1", "1#sms")] == {"reason": "superseded by 3#email"}
    assert channels.sent[0][2] == "Final notice: invoice FG-0007 is unpaid"


def test_no_time_left_defers_steps_without_claiming_them():
    store = Store([step()])
    result, channels = run(store, {"in_1": invoice()}, time_left=lambda: 5.0)
    assert result.errors == ["in_1/0#email"] and store.status[("in_1", "0#email")] == "pending"


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [("jpy", 5000, "¥5,000"), ("kwd", 12345, "12.345 KWD"), ("eur", 1999, "€19.99")],
)
def test_sms_amounts_use_the_currency_minor_units(currency, amount, shown):
    decision = decide(step(1, "sms"), invoice(currency=currency, amount_remaining=amount), parse_templates(None),
                      sender_configured=True)  # fmt: skip
    assert decision.action == "send" and decision.message is not None
    assert decision.message.to == "+15555550123" and decision.message.subject is None
    assert decision.message.body.startswith(f"Payment of {shown} for invoice FG-0007 failed.")


@pytest.mark.parametrize(
    ("channel", "changes", "sender", "reason"),
    [
        ("email", {"customer_email": None}, True, "the invoice has no customer e-mail"),
        ("sms", {"customer_phone": ""}, True, "the invoice has no customer phone number"),
        ("email", {}, False, "no sender e-mail configured (context dunningSenderEmail)"),
    ],
)
def test_missing_contact_or_sender_fails_the_step_with_the_reason(channel, changes, sender, reason):
    decision = decide(step(0, channel), invoice(**changes), parse_templates(None), sender_configured=sender)
    assert (decision.action, decision.reason) == ("fail", reason)


def test_configured_templates_override_defaults_day_specific_first():
    templates = parse_templates(
        json.dumps({"email": {"subject": "Invoice {invoice_number}", "body": "Pay {amount}: {pay_link}"},
                    "1:sms": {"body": "Day {day}: {amount}"}})
    )  # fmt: skip
    email = decide(step(0), invoice(), templates, sender_configured=True).message
    sms = decide(step(1, "sms"), invoice(), templates, sender_configured=True).message
    final = decide(step(3), invoice(), templates, sender_configured=True).message
    assert (email.subject, email.body) == ("Invoice FG-0007", "Pay $1,234.56: https://invoice.stripe.com/i/acct_1/in_1")
    assert sms.body == "Day 1: $1,234.56"
    assert final.subject == "Final notice: invoice FG-0007 is unpaid"  # the default 3:email still wins over "email"


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({"email": {"subject": "Hi {customer}", "body": "x"}}, "unknown placeholder {customer}"),
        ({"sms": {"text": "x"}}, "needs a body"),
        ({"fax": {"body": "x"}}, "keys are email, sms or <day>:<channel>"),
    ],
)
def test_malformed_templates_are_refused_naming_the_problem(templates, message):
    with pytest.raises(TemplateError, match=message):
        parse_templates(json.dumps(templates))


def test_supersede_keeps_one_step_per_invoice():
    send, skip = supersede([step(0), step(1, "sms")])
    assert send == [step(1, "sms")] and skip == [(step(0), "superseded by 1#sms")]


def test_contacts_are_masked_in_the_audit_trail():
    assert mask_contact("jenny@example.com") == "j***@example.com"
    assert mask_contact("+15555550123") == "***0123"
