"""Promises the suite used to keep only by accident (issue 15), against moto and loopback HTTP: each
test here fails on a deliberate break of the rule it names, which the rest of the suite let through.

(The Stripe ledger's ordering and exactly-once cases are in tests/integration/billing/test_mutation_gaps.py.)

- Nothing lost: the outbox is marked delivered only after the 2xx; a redirect is no delivery.
- The operator's CLI: not found and failed exit 1 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from finops_guard import cli
from finops_guard.core.adapters.outbox import LEASE
from finops_guard.core.delivery import ChatMessage, deliver_all
from finops_guard.costs import runtime

from devtools.chat_recorder import Reply
from tests.integration.conftest import TEAMS_PATH

pytestmark = pytest.mark.integration
SECRET_NAME = "finops-guard/test/stripe-webhook-secret"
INVOICE = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
BILLING_ROLES = ("events", "ledger", "objects", "alerts", "dunning")


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
    assert "no table finops-guard-test-no-such-outbox in " in one_line_error(stderr)
