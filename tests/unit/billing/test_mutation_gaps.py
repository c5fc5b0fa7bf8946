"""Promises the suite used to keep only by accident (issue 15): each test here fails on a deliberate
break of the rule it names, which the rest of the suite let through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.billing.dunning import DueStep, decide, parse_templates, send_due_steps
from finops_guard.billing.reconciliation import reconcile

from tests.unit.billing.test_dunning import invoice

# --- dunning: a settled invoice gets no reminder, whichever way it was settled -------------------

DUNNING_NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def due_step(day: int = 0, channel: str = "email") -> DueStep:
    return DueStep("in_1", f"{day}#{channel}", day, channel, "2026-11-17T01:00:00Z")


def stripe_invoice(status: str) -> dict:
    return invoice(status=status)


class StepStore:
    def __init__(self, steps: list[DueStep]) -> None:
        self.steps = steps
        self.status = {s.step: "pending" for s in steps}
        self.reasons: dict[str, str] = {}

    def due_steps(self, now):
        return [s for s in self.steps if self.status[s.step] == "pending"]

    def _move(self, step, old, new, reason=""):
        if self.status[step.step] != old:
            return False
        self.status[step.step], self.reasons[step.step] = new, reason
        return True

    def claim(self, step, now):
        return self._move(step, "pending", "sending")

    def mark_sent(self, step, now, message_id, to_hint):
        return self._move(step, "sending", "sent")

    def mark_send_failed(self, step, now, reason):
        return self._move(step, "sending", "failed", reason)

    def skip(self, step, now, reason):
        return self._move(step, "pending", "skipped", reason)

    def fail(self, step, now, reason):
        return self._move(step, "pending", "failed", reason)


class Outgoing:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, channel, to, subject, body):
        self.sent.append((channel, to))
        return f"msg-{len(self.sent)}"


@pytest.mark.parametrize("status", ["void", "uncollectible"])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_voided_or_uncollectible_invoice_gets_no_reminder(status, channel):
    # Given a due step whose invoice Stripe now reports voided or written off (no webhook cancelled it)
    store, outgoing = StepStore([due_step(1, channel)]), Outgoing()
    # When the hourly sender runs
    run = send_due_steps(store=store, invoice=lambda _id: stripe_invoice(status), channels=outgoing,
                         templates=parse_templates(None), sender_configured=True, now=DUNNING_NOW)  # fmt: skip
    # Then nothing is sent and the step is closed as skipped, naming why
    assert outgoing.sent == [] and run.sent == []
    assert run.skipped == [f"in_1/1#{channel}"]
    assert (store.status[f"1#{channel}"], store.reasons[f"1#{channel}"]) == ("skipped", f"invoice is {status}")


@pytest.mark.parametrize(
    ("status", "action"), [("open", "send"), ("paid", "skip"), ("void", "skip"), ("uncollectible", "skip")]
)
def test_only_an_invoice_still_collectible_is_reminded(status, action):
    decision = decide(due_step(), stripe_invoice(status), parse_templates(None), sender_configured=True)
    assert decision.action == action


# --- reconciliation: "past due" means a due date before the run, not at it ----------------------

RUN_AT = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)


def open_invoice(invoice_id: str, due: datetime) -> dict:
    return {
        "id": invoice_id,
        "customer": "cus_a",
        "currency": "usd",
        "status": "open",
        "amount_due": 5000,
        "created": int((RUN_AT - timedelta(days=20)).timestamp()),
        "due_date": int(due.timestamp()),
        "lines": {"data": [{"amount": 5000}], "has_more": False},
    }


def test_an_invoice_due_exactly_at_the_run_is_not_yet_past_due_one_second_earlier_it_is():
    invoices = [open_invoice("in_at_run", RUN_AT), open_invoice("in_second_before", RUN_AT - timedelta(seconds=1))]
    result = reconcile(invoices, [], now=RUN_AT, start=RUN_AT - timedelta(days=30), threshold_percent=D(1))
    assert [p.invoice_id for p in result.past_due] == ["in_second_before"]
    assert result.past_due_count == 1


# --- the weekly card's budget gauge shows the forecast consumption, exactly ----------------------

REPORT_AT = datetime(2026, 11, 16, 7, tzinfo=UTC)  # as of Sun 15 Nov: 15 of 30 days elapsed
