"""The first days after a deploy: a chat channel still holding its placeholder, tags not active yet,
anomaly detection still learning. Setup steps said on the card, never failures that page."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.adapters.secrets import validate_webhook_url
from finops_guard.core.delivery import ChatConfigError, ChatMessage, ChatNotConfigured, PostFailed, deliver_all
from finops_guard.core.settings import SettingsError
from finops_guard.costs.attribution import AttributionSummary
from finops_guard.costs.cards.slack import slack_payload
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.setup_status import (
    ACTIVE,
    INACTIVE,
    SetupItem,
    anomaly_learning_item,
    chat_items,
    for_channel,
    tag_items,
    tag_keys_to_check,
)
from finops_guard.costs.teams import parse_dimension
from finops_guard.costs.weekly_report import compose, run_weekly_report

from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster
from tests.unit.costs.test_anomalies import DEFAULT_POLICY, MemoryAnomalyStore, eb_body, forward
from tests.unit.costs.test_attribution import TaggedCosts
from tests.unit.costs.test_cards import build, card_of

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)  # report as of Sun 15 Nov 2026
SLACK_SECRET = "finops-guard/prod/slack-webhook-url"
TEAMS_SECRET = "finops-guard/prod/teams-webhook-url"
PUT_SLACK = f"aws secretsmanager put-secret-value --secret-id {SLACK_SECRET} --secret-string 'https://...'"


def summary(spec: str, attributed: str, untagged: str = "100") -> AttributionSummary:
    return AttributionSummary(parse_dimension(spec), D(attributed), D(untagged), (), ())


# --- a placeholder secret is "not set up", not a failure ----------------------------------------


@pytest.mark.parametrize("value", ["Zq8#kT9!placeholder:Value/32chars", "", "   not a url"])
def test_a_secret_that_holds_no_url_means_the_channel_is_not_set_up(value):
    with pytest.raises(ChatNotConfigured) as raised:
        validate_webhook_url(value, secret_name=SLACK_SECRET, channel="slack")
    assert raised.value.secret_name == SLACK_SECRET and PUT_SLACK in str(raised.value)
    if value.strip():
        assert value not in str(raised.value)


@pytest.mark.parametrize("value", ["http://hooks.example.com/services/T0", "ftp://x/y", "https://"])
def test_a_url_of_the_wrong_kind_is_a_misconfiguration_not_a_setup_step(value):
    with pytest.raises(ChatConfigError) as raised:
        validate_webhook_url(value, secret_name=SLACK_SECRET, channel="slack")
    assert not isinstance(raised.value, ChatNotConfigured)


TEAMS = ChatMessage("r/teams", "teams", "weekly-report", {"n": 1})
SLACK = ChatMessage("r/slack", "slack", "weekly-report", {"n": 2})
TEAM_SLACK = ChatMessage("r/team/web/slack", "slack", "weekly-report", {"n": 3}, "finops-guard/prod/teams/web")


def test_a_channel_not_set_up_keeps_its_message_and_is_no_failure_while_the_other_channel_delivers(caplog):
    outbox = MemoryOutbox()
    poster = ScriptedPoster({"slack": ChatNotConfigured("slack", SLACK_SECRET)})
    with caplog.at_level(logging.WARNING, logger="finops_guard.core.delivery"):
        result = deliver_all([TEAMS, SLACK], outbox, poster, NOW)
    assert result.delivered == ["r/teams"] and result.failed == []
    assert result.not_configured == [("r/slack", SLACK_SECRET)]
    assert result.settled == {"r/teams", "r/slack"}
    kept = outbox.items["r/slack"]
    assert (kept["status"], kept["attempts"], kept["payload"]) == ("failed", 0, {"n": 2})
    assert "not set up yet" in kept["reason"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert PUT_SLACK in warning.getMessage() and warning.secret_name == SLACK_SECRET


def test_one_warning_per_secret_however_many_messages_wait_for_it(caplog):
    poster = ScriptedPoster({"slack": ChatNotConfigured("slack", SLACK_SECRET)})
    digest = ChatMessage("r2/slack", "slack", "budget-alert", {"n": 4})
    with caplog.at_level(logging.WARNING, logger="finops_guard.core.delivery"):
        result = deliver_all([SLACK, digest], MemoryOutbox(), poster, NOW)
    assert len(result.not_configured) == 2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_weekly_report_completes_when_a_channel_is_not_set_up_and_raises_only_for_failures():
    env = {"FINOPSGUARD_STAGE": "prod", "FINOPSGUARD_TEAMS_SECRET_NAME": TEAMS_SECRET,
           "FINOPSGUARD_SLACK_SECRET_NAME": SLACK_SECRET}  # fmt: skip
    config = ReportSettings.from_env(env)
    costs = TaggedCosts({("web", "Amazon S3"): "10"})
    poster = ScriptedPoster({"teams": ChatNotConfigured("teams", TEAMS_SECRET)})
    outcome = run_weekly_report(config, now=NOW, costs=costs, outbox=MemoryOutbox(), poster=poster)
    assert outcome.posted and outcome.delivery.not_configured == [("weekly-report/2026-11-15/teams", TEAMS_SECRET)]

    nothing = ScriptedPoster({c: ChatNotConfigured(c, TEAMS_SECRET) for c in ("teams", "slack")})
    outcome = run_weekly_report(config, now=NOW, costs=costs, outbox=MemoryOutbox(), poster=nothing)
    assert not outcome.posted and len(outcome.delivery.not_configured) == 2  # kept, not posted: no WeeklyReportPosted


def test_an_anomaly_batch_whose_channel_is_not_set_up_is_acknowledged_and_its_card_kept():
    store, outbox = MemoryAnomalyStore(), MemoryOutbox()
    poster = ScriptedPoster({"teams": ChatNotConfigured("teams", TEAMS_SECRET)})
    outcome = forward([eb_body()], store, poster, outbox=outbox)
    assert outcome.retry == [] and outcome.delivery.failed == []
    [(message_id, _)] = outcome.delivery.not_configured
    assert outbox.items[message_id]["status"] == "failed"
    assert outcome.latencies == []  # nothing was posted: the forwarding latency SLO is not fed
    # settled: a later sighting of the same anomaly is silent, so a redrive posts one card, not a pile
    later = forward([eb_body()], store, ScriptedPoster({}), outbox=outbox, now=NOW + timedelta(hours=8))
    assert later.sightings[0].outcome == "silent"


def test_an_anomaly_batch_with_a_real_failure_beside_a_channel_not_set_up_is_still_retried():
    store = MemoryAnomalyStore()
    poster = ScriptedPoster({"teams": PostFailed("teams: HTTP 500"), "slack": ChatNotConfigured("slack", SLACK_SECRET)})
    from finops_guard.costs.anomaly_alerts import InboxRecord, forward_batch
    from finops_guard.costs.cards.anomaly import render_anomalies

    outcome = forward_batch(
        [InboxRecord("sqs-0", eb_body())], store=store, outbox=MemoryOutbox(), poster=poster, policy=DEFAULT_POLICY,
        render=render_anomalies, channels=["teams", "slack"], clock=lambda: NOW,
    )  # fmt: skip
    assert outcome.retry == ["sqs-0"]


# --- what the Setup section says ------------------------------------------------------------------


def test_only_tag_dimensions_that_attribute_nothing_are_checked():
    summaries = [
        summary("tag:Team", "0"),
        summary("tag:CostCenter", "12.50"),
        summary("costCategory:Project", "0"),  # a cost category has no activation to check
    ]
    assert tag_keys_to_check(summaries) == ["Team"]
    assert tag_keys_to_check([summary("tag:Team", "0.01")]) == []


def test_an_inactive_tag_says_how_to_activate_it_and_backfill_this_month():
    [item] = tag_items(["Team"], {"Team": INACTIVE}, date(2026, 11, 1))
    assert item.text == "Tag `Team` is not active as a cost allocation tag."
    activate = """--cost-allocation-tags-status '[{"TagKey":"Team","Status":"Active"}]'"""
    assert f"aws ce update-cost-allocation-tags-status {activate}" in item.fix
    assert "aws ce start-cost-allocation-tag-backfill --backfill-from 2026-11-01T00:00:00Z" in item.fix
    assert "12 months" in item.fix


def test_an_active_tag_with_nothing_tagged_says_so():
    [item] = tag_items(["Team"], {"Team": ACTIVE}, date(2026, 11, 1))
    assert item.text == "Tag `Team` is active as a cost allocation tag but nothing is tagged with it this month."


def test_a_tag_billing_never_saw_and_an_unreadable_status_are_said_differently():
    [unseen] = tag_items(["Team"], {}, date(2026, 11, 1))
    [unknown] = tag_items(["Team"], None, date(2026, 11, 1))
    assert "has not seen it on any resource" in unseen.text
    assert "could not be checked" in unknown.text and "management account" in unknown.fix


@pytest.mark.parametrize(
    ("since", "today", "shown"),
    [
        (date(2026, 11, 10), date(2026, 11, 10), True),  # the deploy day
        (date(2026, 11, 10), date(2026, 11, 19), True),  # day 9
        (date(2026, 11, 10), date(2026, 11, 20), False),  # 10 days of history
        (None, date(2026, 11, 10), False),  # not configured: nothing said
    ],
)
def test_anomaly_detection_is_said_to_be_learning_for_ten_days(since, today, shown):
    item = anomaly_learning_item(since, today)
    assert (item is not None) == shown
    if item is not None:
        assert "started on Tue 10 Nov 2026" in item.text and "24 hours" in item.text
        assert "10 days" in item.text and "from Fri 20 Nov 2026" in item.text


def test_a_channel_not_set_up_is_said_on_the_other_channels_card_only():
    items = chat_items({"slack": SLACK_SECRET})
    assert for_channel(items, "slack") == ()
    [item] = for_channel(items, "teams")
    assert item.text.startswith("Slack is not set up yet") and PUT_SLACK in item.fix


def test_teams_and_slack_cards_carry_the_setup_section_only_when_something_is_not_set_up():
    report = build()
    setup = (SetupItem("Tag `Team` is not active as a cost allocation tag.", "Activate it."),)
    teams_text = json.dumps(card_of(teams_payload(replace(report, setup=setup), "UTC")))
    slack_text = json.dumps(slack_payload(replace(report, setup=setup), "UTC"))
    for text in (teams_text, slack_text):
        assert "Setup: 1 thing not set up yet" in text and "Tag `Team` is not active" in text
    assert "Setup:" not in json.dumps(teams_payload(report, "UTC")) + json.dumps(slack_payload(report, "UTC"))


# --- compose: the checks happen only when needed --------------------------------------------------


class Tags:
    """ListCostAllocationTags in memory; counts requests."""

    def __init__(self, statuses):
        self.answer, self.requests, self.asked = statuses, 0, []

    def statuses(self, keys: Sequence[str]):
        self.requests += 1
        self.asked.append(list(keys))
        return self.answer


def settings(**env: str) -> ReportSettings:
    base = {"FINOPSGUARD_STAGE": "prod", "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
            "FINOPSGUARD_TEAMS_SECRET_NAME": TEAMS_SECRET, "FINOPSGUARD_SLACK_SECRET_NAME": SLACK_SECRET}  # fmt: skip
    return ReportSettings.from_env({**base, **env})


class Untagged(TaggedCosts):
    """Cost Explorer for an account whose tags are not active: every tag dimension is 100 % untagged."""

    def query(self, request):
        for page in super().query(request):
            for result in page["ResultsByTime"]:
                for group in result["Groups"]:
                    group["Keys"][0] = group["Keys"][0].split("$")[0] + "$"
            yield page


def test_a_healthy_account_makes_no_tag_request_and_its_cards_have_no_setup_section():
    tags = Tags({"Team": ACTIVE})
    report, messages = compose(settings(), TaggedCosts({("web", "Amazon S3"): "10"}), now=NOW, tags=tags)
    assert tags.requests == 0 and report.setup == ()
    assert all("Setup:" not in json.dumps(m.payload) for m in messages)


def test_tags_that_attribute_nothing_cost_one_request_for_all_of_them():
    tags = Tags({"Team": INACTIVE, "CostCenter": ACTIVE})
    report, _ = compose(settings(), Untagged({("web", "Amazon S3"): "10"}), now=NOW, tags=tags)
    assert tags.requests == 1 and tags.asked == [["Team", "CostCenter"]]
    assert [i.text.split(" is ")[0] for i in report.setup] == ["Tag `Team`", "Tag `CostCenter`"]


def test_the_teams_card_says_slack_is_not_set_up_and_the_slack_card_does_not():
    unready = {"slack": SLACK_SECRET}
    _, messages = compose(settings(), TaggedCosts({("web", "Amazon S3"): "10"}), now=NOW, unready_channels=unready)
    by_channel = {m.channel: json.dumps(m.payload) for m in messages}
    assert "Slack is not set up yet" in by_channel["teams"]
    assert "Slack is not set up yet" not in by_channel["slack"] and "Setup:" not in by_channel["slack"]


def test_the_card_says_anomaly_detection_is_learning_from_the_monitor_start_date():
    config = settings(FINOPSGUARD_ANOMALY_MONITOR_SINCE="2026-11-12")
    report, _ = compose(config, TaggedCosts({("web", "Amazon S3"): "10"}), now=NOW)
    assert [i.text.split(" and ")[0] for i in report.setup] == ["Cost anomaly detection started on Thu 12 Nov 2026"]
    later, _ = compose(config, TaggedCosts({("web", "Amazon S3"): "10"}), now=NOW + timedelta(days=7))
    assert later.setup == ()


def test_team_cards_carry_no_setup_section():
    from finops_guard.costs.teams import Routing, TeamRoute

    routing = Routing(parse_dimension("tag:Team"), [TeamRoute("web", ("teams",))])
    config = settings(FINOPSGUARD_TEAM_DIMENSION="tag:Team", FINOPSGUARD_ANOMALY_MONITOR_SINCE="2026-11-12")
    _, messages = compose(config, TaggedCosts({("web", "Amazon S3"): "10"}), now=NOW, routing=routing)
    team_card = next(m for m in messages if m.secret_name)
    assert "Setup:" not in json.dumps(team_card.payload)
    assert "Setup:" in json.dumps(next(m for m in messages if m.channel == "teams" and not m.secret_name).payload)


# --- settings -------------------------------------------------------------------------------------


def test_the_anomaly_monitor_start_date_is_read_strictly():
    assert settings(FINOPSGUARD_ANOMALY_MONITOR_SINCE="2026-11-10").anomaly_monitor_since == date(2026, 11, 10)
    assert settings().anomaly_monitor_since is None


@pytest.mark.parametrize("value", ["20261110", "2026-11-31", "2026-W46-2", "10/11/2026", "2026-11-10T00:00:00"])
def test_an_invalid_anomaly_monitor_start_date_is_a_settings_error(value):
    with pytest.raises(SettingsError, match="FINOPSGUARD_ANOMALY_MONITOR_SINCE"):
        settings(FINOPSGUARD_ANOMALY_MONITOR_SINCE=value)
