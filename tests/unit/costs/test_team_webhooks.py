"""The team webhooks secret: one JSON map of team -> channel -> URL, parsed strictly (no sockets)."""

from __future__ import annotations

import json
import logging

import pytest
from finops_guard.core.adapters import secrets
from finops_guard.core.delivery import (
    ChatConfigError,
    ChatMessage,
    ChatNotConfigured,
    deliver_all,
    put_webhook_command,
    team_webhook_key,
)
from finops_guard.costs.adapters import team_webhooks
from finops_guard.costs.teams import TeamWebhooksError, parse_team_webhooks, webhook_url_problem
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.core.test_delivery import MemoryOutbox

SECRET = "finops-guard/prod/team-webhooks"
TEAMS_URL = "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=S3CR3T"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/S3CR3T"


def test_a_team_has_one_url_per_channel_and_a_missing_one_is_none():
    webhooks = parse_team_webhooks(json.dumps({"web": {"teams": TEAMS_URL, "slack": SLACK_URL}, "data": {}}))

    assert webhooks.url("web", "teams") == TEAMS_URL and webhooks.url("web", "slack") == SLACK_URL
    assert webhooks.url("data", "teams") is None  # in the map, no URL for the channel: not set up yet
    assert webhooks.url("ops", "teams") is None  # not in the map at all: not set up yet


def test_the_placeholder_the_stack_creates_is_an_empty_map():
    assert parse_team_webhooks("{}").url("web", "teams") is None


@pytest.mark.parametrize("text", ["", "https://x", "[]", '"{}"', "null", "{", '{"web": ', "[" * 5000, None, b"{}"])
def test_a_value_that_is_no_json_object_is_refused_with_the_typed_error(text):
    with pytest.raises(TeamWebhooksError, match="is not a JSON object"):
        parse_team_webhooks(text)


@pytest.mark.parametrize(
    ("entry", "channel", "problem"),
    [
        ("https://hooks.slack.com/x", "slack", "must be an object"),
        ({"teams": [TEAMS_URL, TEAMS_URL]}, "teams", "one webhook per channel"),
        ({"teams": None}, "teams", "one webhook per channel"),
        ({"email": "a@example.com"}, "teams", "not one of teams, slack"),
        ({"teams": "http://prod-01.westeurope.logic.azure.com/S3CR3T"}, "teams", "must be an https:// URL"),
        ({"teams": SLACK_URL}, "teams", "Teams Workflows webhook"),
        ({"slack": TEAMS_URL}, "slack", "hooks.slack.com"),
    ],
)
def test_a_bad_entry_spoils_only_its_own_team_and_never_echoes_the_value(entry, channel, problem):
    webhooks = parse_team_webhooks(json.dumps({"web": entry, "data": {"teams": TEAMS_URL}}))

    assert webhooks.url("data", "teams") == TEAMS_URL
    with pytest.raises(TeamWebhooksError, match=problem) as raised:
        webhooks.url("web", channel)
    assert "S3CR3T" not in str(raised.value) and "westeurope" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        (TEAMS_URL, "teams"),
        ("https://prod-12.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke", "teams"),
        ("https://default0123.ab.environment.api.powerplatform.com:443/powerautomate/automations/direct/x", "teams"),
        ("https://eu.webhook.office.com/webhookb2/abc", "teams"),
        ("https://prod.powerautomate.com/hooks/x", "teams"),
        (SLACK_URL, "slack"),
        ("http://127.0.0.1:8080/teams/web", "teams"),  # local runs and tests, as the deployment's secrets allow
        ("https://localhost/slack", "slack"),
    ],
)
def test_webhook_urls_of_their_channels_hosts_are_accepted(url, channel):
    assert webhook_url_problem(url, channel) is None


@pytest.mark.parametrize(
    ("url", "channel", "problem"),
    [
        ("http://hooks.slack.com/services/x", "slack", "must be an https:// URL"),
        ("ftp://hooks.slack.com/x", "slack", "must be an https:// URL"),
        ("https://user:pw@hooks.slack.com/services/x", "slack", "user name or password"),
        ("https://hooks.slack.com@evil.example/x", "slack", "user name or password"),
        ("https://evil.example/services/x", "slack", "hooks.slack.com"),
        ("https://hooks.slack.com.evil.example/x", "slack", "hooks.slack.com"),
        ("https://logic.azure.com.evil.example/x", "teams", "Teams Workflows"),
        ("https://hooks.slack.com/" + "x" * 2100, "slack", "1 to 2048 characters"),
        ("https://hooks.slack.com/a b", "slack", "without spaces"),
        ("https://hooks.slack.com:99999/x", "slack", "not a valid URL"),
        ("https://[::1/x", "slack", "not a valid URL"),
        ("", "teams", "1 to 2048"),
        (["https://hooks.slack.com/x"], "slack", "one webhook per channel"),
    ],
)
def test_webhook_urls_are_refused_saying_why_without_echoing_them(url, channel, problem):
    found = webhook_url_problem(url, channel)

    assert found is not None and problem in found
    assert "evil" not in found and "hooks.slack.com/" not in found


def test_changing_one_team_keeps_every_other_entry_exactly_as_read():
    webhooks = parse_team_webhooks(json.dumps({"web": {"teams": TEAMS_URL}, "odd": {"teams": 7}}))

    assert webhooks.with_team("data", {"slack": SLACK_URL}) == {
        "data": {"slack": SLACK_URL},
        "odd": {"teams": 7},  # not ours to repair or drop
        "web": {"teams": TEAMS_URL},
    }
    assert webhooks.without_team("web") == {"odd": {"teams": 7}}
    assert webhooks.status("web", "teams") == "set" and webhooks.status("web", "slack") == "missing"
    assert webhooks.status("odd", "teams") == "invalid"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
URLISH = st.sampled_from([TEAMS_URL, SLACK_URL, "http://127.0.0.1:1/x", "https://u:p@hooks.slack.com/x", "https://["])
ENTRY = st.dictionaries(st.sampled_from(["teams", "slack", "email"]), URLISH | JSON, max_size=3) | JSON
MAPS = st.dictionaries(st.sampled_from(["web", "data", ""]) | st.text(max_size=8), ENTRY, max_size=4)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=st.text(max_size=200) | MAPS.map(json.dumps) | JSON.map(json.dumps) | st.binary(max_size=20))
@example(text='{"web": {"teams": "https://[::1"}}')
@example(text='{"web": {"teams": "https://hooks.slack.com:-1/x"}}')
@example(text="[" * 10000)
@example(text='{"web": {"teams": "\\ud800"}}')
def test_no_secret_value_makes_the_parser_or_a_lookup_raise_anything_but_its_typed_error(text):
    try:
        webhooks = parse_team_webhooks(text)
    except TeamWebhooksError as error:
        assert "S3CR3T" not in str(error)
        return
    for team in [*webhooks.urls, *(t for t, _ in webhooks.problems), "web"]:
        for channel in ("teams", "slack"):
            try:
                url = webhooks.url(team, channel)
            except TeamWebhooksError as error:
                assert "S3CR3T" not in str(error)
                continue
            assert url is None or webhook_url_problem(url, channel) is None


# --- reading it in a function -------------------------------------------------------------------


@pytest.fixture
def secret_value(monkeypatch):
    """The team webhooks secret as Secrets Manager would answer (no socket): reads are counted."""
    state = {"value": "{}", "reads": 0}

    def secret_text(name, *, refresh=False):
        assert name == SECRET
        state["reads"] += 1
        return state["value"]

    monkeypatch.setattr(secrets, "secret_text", secret_text)
    monkeypatch.setattr(secrets, "is_stale", lambda name: False)
    return state


def test_a_function_finds_the_teams_url_in_the_map(secret_value):
    secret_value["value"] = json.dumps({"web": {"teams": TEAMS_URL}})

    assert team_webhooks.read_team_webhook_url(SECRET, "web", channel="teams") == TEAMS_URL


def test_a_team_missing_from_the_map_is_not_set_up_yet_with_the_command_that_fixes_it(secret_value):
    secret_value["value"] = json.dumps({"data": {"teams": TEAMS_URL}})

    with pytest.raises(ChatNotConfigured) as raised:
        team_webhooks.read_team_webhook_url(SECRET, "web", channel="slack")

    assert raised.value.secret_name == team_webhook_key(SECRET, "web", "slack")
    assert str(raised.value) == (
        "slack chat is not set up yet: team 'web' has no slack URL in secret 'finops-guard/prod/team-webhooks'."
        " Put it with: finops-guard teams add web --stage prod --slack-url 'https://...'"
    )


def test_a_placeholder_team_is_read_again_once_stale_so_a_warm_function_sees_teams_add(secret_value, monkeypatch):
    monkeypatch.setattr(secrets, "is_stale", lambda name: True)

    def secret_text(name, *, refresh=False):
        secret_value["reads"] += 1
        return json.dumps({"web": {"teams": TEAMS_URL}}) if refresh else "{}"

    monkeypatch.setattr(secrets, "secret_text", secret_text)

    assert team_webhooks.read_team_webhook_url(SECRET, "web", channel="teams") == TEAMS_URL
    assert secret_value["reads"] == 2


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json " + TEAMS_URL, "is not a JSON object"),
        (json.dumps({"web": {"teams": [TEAMS_URL]}}), "team 'web' teams: URL must be one https:// URL"),
        (json.dumps({"web": {"teams": "http://prod-01.westeurope.logic.azure.com/S3CR3T"}}), "must be an https://"),
    ],
)
def test_a_malformed_map_is_a_configuration_error_not_a_crash_and_names_no_url(secret_value, value, problem):
    secret_value["value"] = value

    with pytest.raises(ChatConfigError) as raised:
        team_webhooks.read_team_webhook_url(SECRET, "web", channel="teams")

    assert not isinstance(raised.value, ChatNotConfigured)  # someone wrote it wrong: that one pages
    assert problem in str(raised.value) and "S3CR3T" not in str(raised.value)
    assert "finops-guard teams add web --stage prod --teams-url" in str(raised.value)


def test_a_missing_team_webhooks_secret_is_a_configuration_error(monkeypatch):
    monkeypatch.setattr(secrets, "secret_text", lambda name, refresh=False: None)

    with pytest.raises(ChatConfigError, match="does not exist"):
        team_webhooks.read_team_webhook_url(SECRET, "web", channel="teams")


def test_the_fix_command_quotes_a_team_name_the_shell_would_split():
    assert put_webhook_command(team_webhook_key(SECRET, "data & ml", "teams")) == (
        "finops-guard teams add 'data & ml' --stage prod --teams-url 'https://...'"
    )
    assert put_webhook_command(team_webhook_key("other-name", "web", "slack")) == (
        "finops-guard teams add web --slack-url 'https://...'"
    )


class NotSetUpPoster:
    def post(self, message):
        raise ChatNotConfigured(message.channel, team_webhook_key(SECRET, "web", message.channel))


def test_a_team_not_in_the_map_keeps_its_message_and_warns_once_with_the_command(caplog):
    messages = [ChatMessage(f"weekly/{i}/team/web/teams", "teams", "weekly-report", {}, "team:web") for i in (1, 2)]

    with caplog.at_level(logging.WARNING):
        result = deliver_all(messages, MemoryOutbox(), NotSetUpPoster(), now=None)

    assert result.not_configured == [(m.message_id, team_webhook_key(SECRET, "web", "teams")) for m in messages]
    assert result.failed == [] and result.delivered == []
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "finops-guard teams add web --stage prod --teams-url 'https://...'" in warning.getMessage()
    assert "https://prod" not in warning.getMessage()


def test_a_message_kept_before_the_upgrade_goes_to_its_team_in_the_team_webhooks_secret():
    from finops_guard.costs import runtime
    from finops_guard.costs.settings import ReportSettings

    config = ReportSettings.from_env({"FINOPSGUARD_STAGE": "prod"})
    old = ChatMessage("weekly-report/2026-11-15/team/data%2Fml/teams", "teams", "weekly-report", {},
                      "finops-guard/prod/teams/data-ml")  # fmt: skip
    new = ChatMessage("weekly-report/2026-11-15/team/web/slack", "slack", "weekly-report", {}, "team:web")
    default = ChatMessage("weekly-report/2026-11-15/teams", "teams", "weekly-report", {})

    assert [runtime._team_of(config, m) for m in (old, new, default)] == ["data/ml", "web", None]
