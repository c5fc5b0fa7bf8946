"""Promises the suite used to keep only by accident (issue 15), against moto and loopback HTTP: each
test here fails on a deliberate break of the rule it names, which the rest of the suite let through.

- Never backwards: the sample events' `created` follow the lifecycle, so time order alone would pass
  the other tests; here the lower-ranked event comes at the same second or later.
- Exactly once: a redelivered event that books no ledger entry is refused by its event id alone.
- Nothing lost: the outbox is marked delivered only after the 2xx; a redirect is no delivery.
- The operator's CLI: not found and failed exit 1 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from finops_guard import cli
from finops_guard.core.adapters.outbox import LEASE
from finops_guard.core.delivery import ChatMessage, deliver_all
from finops_guard.costs import runtime

from devtools import stripe_events as se
from devtools.chat_recorder import Reply
from tests.conftest import load_handler
from tests.integration.conftest import TEAMS_PATH, FakeContext, clear_billing_caches, deploy_billing

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


# --- nothing lost: the outbox says delivered only after the 2xx ---------------------------------


def message(message_id: str = "budget-alert/b1/teams") -> ChatMessage:
    return ChatMessage(message_id, "teams", "budget-alert", {"type": "message", "text": message_id})


def outbox_item(deployed, message_id: str) -> dict:
    return deployed.aws.client("dynamodb").get_item(TableName=deployed.table, Key={"message_id": {"S": message_id}})[
        "Item"
    ]


def post(deployed, *messages: ChatMessage, now: datetime | None = None, poster=None):
    poster = poster or runtime.webhook_poster(runtime.settings())
    return deliver_all(list(messages), runtime.outbox(deployed.table), poster, now or datetime.now(UTC))


def test_a_post_that_fails_leaves_the_message_kept_with_no_delivery_mark_and_no_expiry(deployed):
    # Given a Teams outage through every attempt
    deployed.chat.then(*[Reply(500)] * 4)
    # When the message is delivered
    result = post(deployed, message())
    # Then it is failed and kept: never marked delivered, and no TTL that would expire it unsent
    assert [message_id for message_id, _ in result.failed] == ["budget-alert/b1/teams"]
    item = outbox_item(deployed, "budget-alert/b1/teams")
    assert (item["status"]["S"], item["attempts"]["N"]) == ("failed", "4")
    assert "delivered_at" not in item and "expires_at" not in item
    # ... and a redrive posts it once, then marks it delivered
    assert post(deployed, message()).delivered == ["budget-alert/b1/teams"]
    assert outbox_item(deployed, "budget-alert/b1/teams")["status"]["S"] == "delivered"
    assert [r.path for r in deployed.chat.received] == [TEAMS_PATH] * 5


class Killed(BaseException):
    """The Lambda runtime ending the invocation mid-post (timeout, out of memory)."""


def test_a_run_killed_during_the_post_leaves_the_message_to_be_sent_again(deployed):
    # Given a run that dies while its post is on the wire
    poster = runtime.webhook_poster(runtime.settings())

    def dies(_message):
        raise Killed

    poster.post = dies
    claimed_at = datetime.now(UTC)
    with pytest.raises(Killed):
        post(deployed, message(), now=claimed_at, poster=poster)
    # Then the message is still `sending` under its lease, listed as undelivered, never `delivered`
    item = outbox_item(deployed, "budget-alert/b1/teams")
    assert item["status"]["S"] == "sending" and "delivered_at" not in item
    assert [k.message.message_id for k in runtime.outbox(deployed.table).undelivered()] == ["budget-alert/b1/teams"]
    # ... and once the lease is over, the next run posts it, once
    result = post(deployed, message(), now=claimed_at + LEASE + timedelta(seconds=1))
    assert result.delivered == ["budget-alert/b1/teams"]
    assert [r.path for r in deployed.chat.received] == [TEAMS_PATH]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_answering_a_redirect_is_not_a_delivery_and_is_not_followed(deployed, status):
    # Given a Teams webhook URL that answers with a redirect elsewhere
    deployed.chat.then(Reply(status, headers={"Location": deployed.chat.url("/elsewhere")}))
    # When a message is posted
    result = post(deployed, message())
    # Then it is not delivered: kept as failed with the status, and nothing was sent anywhere else
    assert result.delivered == [] and [message_id for message_id, _ in result.failed] == ["budget-alert/b1/teams"]
    item = outbox_item(deployed, "budget-alert/b1/teams")
    assert item["status"]["S"] == "failed" and f"teams answered {status}" in item["last_error"]["S"]
    assert [r.path for r in deployed.chat.received] == [TEAMS_PATH]


def test_a_redirect_without_a_location_is_not_a_delivery_either(deployed):
    deployed.chat.then(Reply(302))
    result = post(deployed, message())
    assert result.delivered == [] and outbox_item(deployed, "budget-alert/b1/teams")["status"]["S"] == "failed"


# --- the operator's CLI: exit 1 for not found or failed, one line on stderr ---------------------


@pytest.fixture
def stderr(capsys, monkeypatch):
    """What the CLI writes to stderr. Earlier tests leave Powertools handlers on finops_guard loggers
    bound to streams captured then and closed since; logging's own complaint about those ("--- Logging
    error ---") is not the CLI's output (outside tests the library logs to a NullHandler)."""
    monkeypatch.setattr(logging, "raiseExceptions", False)
    return capsys


def one_line_error(captured) -> str:
    """The one line the CLI wrote to stderr; a traceback fails the test."""
    err = captured.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_resending_an_unknown_message_id_exits_1_naming_it(deployed, stderr):
    assert cli.main(["report", "resend", "--message-id", "weekly-report/nope/teams"]) == 1
    assert one_line_error(stderr) == "not in the outbox: weekly-report/nope/teams"
    assert deployed.chat.received == []


@pytest.mark.parametrize("command", [["report", "resend"], ["outbox", "redrive", "--stage", "test"]])
def test_a_resend_or_redrive_that_fails_exits_1_with_one_line(deployed, stderr, command):
    # Given a kept message, and Teams refusing it with a body that spans lines
    deployed.chat.then(*[Reply(500)] * 4)
    post(deployed, message())
    deployed.chat.then(Reply(400, body="Bad payload:\n  attachments[0] is invalid\n"))
    # When the operator re-sends it
    code = cli.main(command)
    # Then the command fails, saying which message and why on one line
    assert code == 1
    line = one_line_error(stderr)
    assert "budget-alert/b1/teams" in line and "teams answered 400: Bad payload: attachments[0] is invalid" in line
    assert outbox_item(deployed, "budget-alert/b1/teams")["status"]["S"] == "failed"


def test_showing_an_unknown_budget_exits_1(deployed, stderr):
    deployed.aws.create_budget_tables()
    runtime.budget_table.cache_clear()
    assert cli.main(["budgets", "show", "nope", "--stage", "test"]) == 1
    assert one_line_error(stderr) == "no budget 'nope'"


def test_an_aws_error_exits_1_with_one_line_not_a_traceback(deployed, stderr):
    missing = ["--outbox-table", "finops-guard-test-no-such-outbox"]
    assert cli.main(["report", "resend", "--message-id", "weekly-report/w1/teams", *missing]) == 1
    assert one_line_error(stderr).startswith("finops-guard: An error occurred (ResourceNotFoundException)")
