"""The outbox guarantee and the operator's redrive tools: a chat message is written before it is
posted, marked delivered only after the 2xx, listed while kept, and re-sent exactly once. (The
failure queue's `finops-guard dlq`: tests/integration/test_failure_queue.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from finops_guard import cli
from finops_guard.core.delivery import ChatMessage, deliver_all
from finops_guard.costs import runtime

from devtools.chat_recorder import Reply
from tests.integration.conftest import TEAMS_PATH, TEAMS_SECRET

pytestmark = pytest.mark.integration
FINANCE_SECRET = "finops-guard/test/finance-teams-webhook-url"


def message(message_id: str, kind: str = "weekly-report") -> ChatMessage:
    return ChatMessage(message_id, "teams", kind, {"type": "message", "text": message_id})


def post(deployed, *messages: ChatMessage):
    poster = runtime.webhook_poster(runtime.settings())
    return deliver_all(list(messages), runtime.outbox(deployed.table), poster, datetime.now(UTC))


def test_a_message_is_in_the_outbox_before_it_is_posted_and_delivered_only_after_the_2xx(deployed, monkeypatch):
    box = runtime.outbox(deployed.table)
    seen = []
    poster = runtime.webhook_poster(runtime.settings())
    original = poster.post

    def observing(msg):
        seen.append(box.get(msg.message_id).status)  # what a crash at this instant would leave behind
        return original(msg)

    monkeypatch.setattr(poster, "post", observing)
    result = deliver_all([message("weekly-report/w1/teams")], box, poster, datetime.now(UTC))
    assert seen == ["sending"] and result.delivered == ["weekly-report/w1/teams"]
    assert box.get("weekly-report/w1/teams").status == "delivered"


def test_an_outage_keeps_the_message_and_redrive_sends_it_once(deployed, capsys):
    deployed.chat.then(*[Reply(500)] * 4)
    result = post(deployed, message("budget-alert/b1/teams", "budget-alert"))
    assert [message_id for message_id, _ in result.failed] == ["budget-alert/b1/teams"]

    assert cli.main(["outbox", "list", "--stage", "test"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("budget-alert/b1/teams\tfailed\tattempts=4")

    assert cli.main(["outbox", "redrive", "--stage", "test"]) == 0
    assert "delivered budget-alert/b1/teams" in capsys.readouterr().out
    assert cli.main(["outbox", "redrive", "--stage", "test"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to resend"
    assert [r.path for r in deployed.chat.received].count(TEAMS_PATH) == 5  # 4 x 500, then the one 202


def test_redrive_sends_finance_cards_to_the_finance_channel(deployed, capsys):
    deployed.aws.put_secret(FINANCE_SECRET, deployed.chat.url("/finance"))
    deployed.chat.then(*[Reply(503)] * 8)
    finance_card = message("billing-alert/invoice_failed#in_1/t/teams", "billing-alert")
    post(deployed, finance_card, message("anomaly/a1/teams", "anomaly"))
    deployed.chat.clear()
    assert cli.main(["outbox", "redrive", "--stage", "test"]) == 0
    paths = sorted((r.path, r.json()["text"]) for r in deployed.chat.received)
    assert paths == [("/finance", "billing-alert/invoice_failed#in_1/t/teams"), (TEAMS_PATH, "anomaly/a1/teams")]
    assert TEAMS_SECRET != FINANCE_SECRET
