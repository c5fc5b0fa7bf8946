import random
from datetime import UTC, datetime

import pytest
from finops_guard.core.adapters import chat  # imported before sockets are disabled: urllib3 probes IPv6 on import
from finops_guard.core.delivery import (
    ChatConfigError,
    ChatMessage,
    PostFailed,
    PostRejected,
    RetryPolicy,
    deliver_all,
    parse_retry_after,
)

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)


class MemoryOutbox:
    """In-memory twin of DynamoOutbox's contract (claim refuses delivered/in-flight messages)."""

    def __init__(self):
        self.items = {}

    def claim(self, message, now):
        item = self.items.get(message.message_id)
        if item and item["status"] in {"delivered", "sending"}:
            return False
        self.items[message.message_id] = {"status": "sending", "payload": message.payload, "attempts": 0}
        return True

    def mark_delivered(self, message_id, now, attempts):
        self.items[message_id].update(status="delivered", attempts=attempts)

    def mark_failed(self, message_id, now, reason, attempts):
        self.items[message_id].update(status="failed", reason=reason, attempts=attempts)


class ScriptedPoster:
    def __init__(self, outcomes):
        self.outcomes = outcomes
        self.posted = []

    def post(self, message):
        self.posted.append(message.message_id)
        outcome = self.outcomes.get(message.channel, 1)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


TEAMS = ChatMessage("r/teams", "teams", "weekly-report", {"n": 1})
SLACK = ChatMessage("r/slack", "slack", "weekly-report", {"n": 2})


def test_delivered_messages_are_marked_after_the_post():
    outbox, poster = MemoryOutbox(), ScriptedPoster({"teams": 2})
    result = deliver_all([TEAMS], outbox, poster, NOW)
    assert result.delivered == ["r/teams"]
    assert outbox.items["r/teams"] == {"status": "delivered", "payload": {"n": 1}, "attempts": 2}


def test_a_message_already_delivered_is_not_posted_again():
    outbox, poster = MemoryOutbox(), ScriptedPoster({})
    deliver_all([TEAMS], outbox, poster, NOW)
    result = deliver_all([TEAMS], outbox, poster, NOW)
    assert poster.posted == ["r/teams"] and result.skipped == ["r/teams"]


def test_a_failed_channel_is_kept_and_the_other_channel_still_goes_out():
    failure = PostFailed("teams: HTTP 500 after 4 attempts")
    failure.attempts = 4
    outbox, poster = MemoryOutbox(), ScriptedPoster({"teams": failure})
    result = deliver_all([TEAMS, SLACK], outbox, poster, NOW)
    assert result.failed == [("r/teams", "teams: HTTP 500 after 4 attempts")]
    assert result.delivered == ["r/slack"]
    assert outbox.items["r/teams"]["status"] == "failed" and outbox.items["r/teams"]["attempts"] == 4
    assert outbox.items["r/teams"]["payload"] == {"n": 1}


@pytest.mark.parametrize("error", [PostRejected("400"), ChatConfigError("no secret")])
def test_permanent_errors_are_kept_as_failed(error):
    outbox = MemoryOutbox()
    result = deliver_all([TEAMS], outbox, ScriptedPoster({"teams": error}), NOW)
    assert outbox.items["r/teams"]["status"] == "failed" and len(result.failed) == 1


def test_failed_message_can_be_claimed_again_for_resend():
    outbox = MemoryOutbox()
    deliver_all([TEAMS], outbox, ScriptedPoster({"teams": PostFailed("x")}), NOW)
    result = deliver_all([TEAMS], outbox, ScriptedPoster({}), NOW)
    assert result.delivered == ["r/teams"]


def test_backoff_grows_exponentially_within_its_cap():
    policy, rng = RetryPolicy(base_delay=1, max_delay=8), random.Random(7)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 7)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4
    assert all(4 <= d <= 8 for d in delays[3:])


def test_retry_after_is_honoured_exactly():
    policy = RetryPolicy(max_retry_after=30)
    assert policy.delay(1, 2.0) == 2.0
    assert policy.delay(3, 0.0) == 0.0


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after("Mon, 16 Nov 2026 07:00:05 GMT", NOW) == 5.0
    assert parse_retry_after("Mon, 16 Nov 2026 06:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None


def test_posts_are_paced_per_channel_at_the_documented_rates(monkeypatch):
    waits, now = [], [100.0]
    monkeypatch.setattr(chat, "_pace_sleep", waits.append)
    pacer = chat._Pacer()
    for _ in range(3):
        pacer.wait("teams", lambda: now[0])
    pacer.wait("slack", lambda: now[0])
    pacer.wait("slack", lambda: now[0])
    assert waits == [0.25, 0.5, 1.0]  # teams 4/s, slack 1/s, channels independent
    now[0] = 200.0
    pacer.wait("teams", lambda: now[0])
    assert waits == [0.25, 0.5, 1.0]  # idle long enough: no wait


def test_each_teams_own_webhook_is_paced_on_its_own(monkeypatch):
    waits = []
    monkeypatch.setattr(chat, "_pace_sleep", waits.append)
    pacer = chat._Pacer()
    pacer.wait("slack", lambda: 100.0)
    pacer.wait("slack", lambda: 100.0, "finops-guard/prod/teams/web-slack")
    pacer.wait("slack", lambda: 100.0, "finops-guard/prod/teams/data-slack")
    assert waits == []  # three webhooks, three first slots
    pacer.wait("slack", lambda: 100.0, "finops-guard/prod/teams/web-slack")
    assert waits == [1.0]


def test_a_post_that_would_wait_past_the_deadline_fails_without_posting(monkeypatch):
    class NoNetwork:
        posts = 0

        def request(self, *args, **kwargs):  # pragma: no cover - must not be reached
            NoNetwork.posts += 1

    monkeypatch.setattr(chat, "PACER", chat._Pacer())
    chat.PACER.reserve("slack", lambda: 10.0)  # someone just posted to Slack: next slot at 11.0
    poster = chat.WebhookPoster(lambda _message: "https://hooks.example/x", http=NoNetwork(), clock=lambda: 10.0,
                                deadline=10.5)  # fmt: skip
    with pytest.raises(PostFailed, match="no time left"):
        poster.post(SLACK)
    assert NoNetwork.posts == 0


def test_sns_subjects_are_folded_to_one_line_of_ascii_under_100_characters():
    from finops_guard.core.adapters.notify import sns_subject

    assert sns_subject("Budget alert: Équipe données — forecast crossed 90 %") == (
        "Budget alert: Equipe donnees - forecast crossed 90 %"
    )
    assert sns_subject("x" * 300) == "x" * 99
    assert sns_subject("line\none") == "lineone" and sns_subject("——") == "--"
    assert sns_subject("✓✓") == "FinOps Guard alert"
