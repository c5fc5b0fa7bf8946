"""Promises the suite used to keep only by accident (issue 15), against moto and loopback HTTP: each
test here fails on a deliberate break of the rule it names, which the rest of the suite let through.

- Never backwards: the sample events' `created` follow the lifecycle, so time order alone would pass
  the other tests; here the lower-ranked event comes at the same second or later.
- Exactly once: a redelivered event that books no ledger entry is refused by its event id alone.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from devtools import stripe_events as se
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext, clear_billing_caches, deploy_billing

pytestmark = pytest.mark.integration
SECRET_NAME = "finops-guard/test/stripe-webhook-secret"
INVOICE = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
BILLING_ROLES = ("events", "ledger", "objects", "alerts", "dunning")


@pytest.fixture
def billing(deployed, monkeypatch):
    yield deploy_billing(deployed, monkeypatch)
    clear_billing_caches()


def event(event_type: str, **changes) -> dict:
    stripe_event = copy.deepcopy(se.sample_events()[event_type])
    stripe_event.update(changes)
    return stripe_event


def deliver(stripe_event: dict) -> str:
    """Stripe posts the event (signed now); the outcome the webhook answers with."""
    reply = load_handler("stripe_webhook").lambda_handler(
        se.signed_request(stripe_event), FakeContext("finops-guard-test-stripe-webhook")
    )
    assert reply["statusCode"] == 200, reply
    return json.loads(reply["body"])["outcome"]


def scan(deployed, role: str) -> list[dict]:
    items = deployed.aws.client("dynamodb").scan(TableName=deployed.tables[role])["Items"]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def invoice_record(deployed) -> dict:
    return next(item for item in scan(deployed, "objects") if item["object_id"]["S"] == INVOICE)


def set_status(deployed, role: str, key: dict, status: str) -> None:
    deployed.aws.client("dynamodb").update_item(
        TableName=deployed.tables[role],
        Key=key,
        UpdateExpression="SET #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": {"S": status}},
    )


# --- never backwards: rank decides, not the event time ------------------------------------------


@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        ("invoice.paid", "invoice.payment_failed"),  # paid (3) then a failure report (open, 1)
        ("invoice.paid", "invoice.finalized"),  # paid (3) then finalized (open, 1)
        ("invoice.finalized", "invoice.created"),  # open (1) then created (draft, 0)
    ],
)
@pytest.mark.parametrize("seconds_later", [0, 3600], ids=["same-second", "an-hour-later"])
def test_a_lower_ranked_invoice_event_changes_nothing_even_when_it_is_newer(billing, higher, lower, seconds_later):
    # Given the invoice in its higher state
    first = event(higher)
    assert deliver(first) == "applied"
    before = invoice_record(billing)
    # When an event of a lower state arrives created at the same second, or later
    assert deliver(event(lower, created=first["created"] + seconds_later)) == "stale"
    # Then the invoice keeps its state, and the stale event opened no alert and scheduled no dunning
    assert invoice_record(billing) == before
    assert scan(billing, "alerts") == [] and scan(billing, "dunning") == []
    assert sorted(e["outcome"]["S"] for e in scan(billing, "events")) == ["applied", "stale"]


def test_paid_wins_over_a_failure_report_created_after_it_and_delivered_first(billing):
    # Given Stripe's failure report (created an hour after the payment) delivered before the payment
    paid = event("invoice.paid")
    assert deliver(event("invoice.payment_failed", created=paid["created"] + 3600)) == "applied"
    assert [a["status"]["S"] for a in scan(billing, "alerts")] == ["open"]
    # When the (older) paid event arrives
    assert deliver(paid) == "applied"
    # Then the invoice is paid, its alert resolved and its dunning cancelled
    assert invoice_record(billing)["status"]["S"] == "paid"
    assert [a["status"]["S"] for a in scan(billing, "alerts")] == ["resolved"]
    assert {s["status"]["S"] for s in scan(billing, "dunning")} == {"cancelled"}


# --- exactly once: the event id alone refuses a redelivery --------------------------------------


class Clock:
    """The webhook's clock, an hour on between the first delivery and Stripe's redelivery."""

    at = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)

    @classmethod
    def now(cls, tz=None):
        return cls.at


@pytest.fixture
def webhook_clock(monkeypatch):
    monkeypatch.setattr(load_handler("stripe_webhook"), "datetime", Clock)
    monkeypatch.setattr(Clock, "at", Clock.at)
    return Clock


def snapshot(deployed) -> dict[str, list[dict]]:
    return {role: scan(deployed, role) for role in BILLING_ROLES}


@pytest.mark.parametrize("event_type", ["billing.alert.triggered", "invoice.payment_failed", "invoice.finalized"])
def test_a_redelivered_event_that_books_no_ledger_entry_changes_nothing(billing, webhook_clock, event_type):
    # Given an event that only raises an alert, schedules dunning or moves the invoice's state
    original = event(event_type)
    assert deliver(original) == "applied"
    assert scan(billing, "ledger") == []
    # ... and finance has since resolved what it raised, the sender has sent the first reminder
    for alert in scan(billing, "alerts"):
        set_status(billing, "alerts", {"alert_id": alert["alert_id"]}, "resolved")
    for step in scan(billing, "dunning"):
        if step["step"]["S"] == "0#email":
            set_status(billing, "dunning", {"invoice_id": step["invoice_id"], "step": step["step"]}, "sent")
    before = snapshot(billing)
    # When Stripe delivers the same event again an hour later (our 200 was lost on the way)
    webhook_clock.at += timedelta(hours=1)
    # Then it is a duplicate, and not one attribute of any table changed
    assert deliver(copy.deepcopy(original)) == "duplicate"
    assert snapshot(billing) == before
