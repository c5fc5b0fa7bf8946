"""The first days after a deploy, billing half: a finance channel still holding its placeholder is a
setup step, never a failure that pages."""

from __future__ import annotations

from datetime import UTC, datetime

from finops_guard.billing.billing_notifier import notify
from finops_guard.core.delivery import ChatMessage, ChatNotConfigured

from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)  # report as of Sun 15 Nov 2026
SLACK_SECRET = "finops-guard/prod/slack-webhook-url"
TEAMS_SECRET = "finops-guard/prod/teams-webhook-url"
PUT_SLACK = f"aws secretsmanager put-secret-value --secret-id {SLACK_SECRET} --secret-string 'https://...'"


# --- a placeholder secret is "not set up", not a failure ----------------------------------------


TEAMS = ChatMessage("r/teams", "teams", "weekly-report", {"n": 1})
SLACK = ChatMessage("r/slack", "slack", "weekly-report", {"n": 2})
TEAM_SLACK = ChatMessage("r/team/web/slack", "slack", "weekly-report", {"n": 3}, "finops-guard/prod/teams/web")


def test_a_billing_alert_for_a_finance_channel_not_set_up_is_kept_and_its_stream_record_not_retried():
    image = {"alert_id": {"S": "invoice_failed#in_1"}, "status": {"S": "open"}, "opened_at": {"S": "2026-11-17"}}
    record = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image}}
    outbox = MemoryOutbox()
    poster = ScriptedPoster({"teams": ChatNotConfigured("teams", "finops-guard/prod/finance-teams-webhook-url")})
    outcome = notify([record], outbox=outbox, poster=poster, channels=["teams"], render=lambda a, c: {}, now=NOW)
    assert outcome.retry == [] and outcome.posted == []
    assert outbox.items["billing-alert/invoice_failed#in_1/2026-11-17/teams"]["status"] == "failed"
