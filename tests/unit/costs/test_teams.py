"""Team routes and attribution dimensions: validation and the questions alerts ask."""

from __future__ import annotations

import pytest
from finops_guard.core.settings import SettingsError
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import (
    Routing,
    TeamConfigError,
    TeamRoute,
    destination_team,
    message_suffix,
    parse_dimension,
    parse_dimensions,
    parse_route,
    team_destination,
    team_of_message,
)

PREFIX = "finops-guard/prod/teams/"


def test_dimensions_are_tags_or_cost_categories():
    assert parse_dimension("tag:Team").dimension.group_by() == {"Type": "TAG", "Key": "Team"}
    assert parse_dimension("costCategory:Cost Center").dimension.group_by() == {
        "Type": "COST_CATEGORY", "Key": "Cost Center"
    }  # fmt: skip


@pytest.mark.parametrize("spec", ["Team", "label:Team", "tag:", "tag:a,b", "tag:" + "x" * 129])
def test_a_malformed_dimension_is_refused_naming_the_field(spec):
    with pytest.raises(TeamConfigError, match=r"dims\[0\]"):
        parse_dimensions([spec], "dims")


def test_more_than_three_dimensions_or_a_repeated_one_are_refused():
    with pytest.raises(TeamConfigError, match="at most 3"):
        parse_dimensions(["tag:A", "tag:B", "tag:C", "tag:D"])
    with pytest.raises(TeamConfigError, match="twice"):
        parse_dimensions(["tag:A", "tag:A"])


def test_an_untagged_group_key_has_an_empty_value():
    team = parse_dimension("tag:Team")
    assert team.value_of("Team$") == "" and team.value_of("Team$web") == "web"


def test_a_route_names_its_channels_and_accounts_never_a_secret_or_url():
    route = parse_route({"team": "web", "channels": ["slack", "teams"], "accounts": ["111111111111"]})
    assert route == TeamRoute("web", ("teams", "slack"), ("111111111111",))
    assert route.destinations() == [("teams", "team:web"), ("slack", "team:web")]
    assert route.to_document() == {"team": "web", "channels": ["teams", "slack"], "accounts": ["111111111111"]}


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"team": "web"}, "needs a teams or a slack channel"),
        ({"team": "web", "channels": []}, "needs a teams or a slack channel"),
        ({"team": "web", "channels": ["email"]}, "channels: must be a list"),
        ({"team": "web", "channels": ["teams", "teams"]}, "channels: must be a list"),
        ({"team": "web", "channels": "teams"}, "channels: must be a list"),
        ({"team": " ", "channels": ["teams"]}, "team: must be"),
        ({"team": "web", "channels": ["teams"], "accounts": ["12"]}, "accounts"),
        ({"team": "web", "teams_secret": 7}, "teams_secret: must be"),
    ],
)
def test_an_invalid_route_is_refused_naming_the_field(document, error):
    with pytest.raises(TeamConfigError, match=error):
        parse_route(document)


def test_a_route_in_the_old_shape_still_parses_each_secret_meaning_that_channel():
    # Written by `teams add --teams-secret/--slack-secret` before the team webhooks secret.
    old = {"team": "web", "teams_secret": PREFIX + "web-t", "slack_secret": PREFIX + "web-s", "accounts": []}
    assert parse_route(old) == TeamRoute("web", ("teams", "slack"))
    assert parse_route({"team": "data", "slack_secret": PREFIX + "d"}).channels == ("slack",)


def test_a_route_survives_its_document_round_trip():
    route = TeamRoute("data & ml", ("teams", "slack"), ("111111111111",))
    assert parse_route(route.to_document()) == route


def test_a_team_destination_is_never_a_secret_name_and_names_its_team():
    assert destination_team(team_destination("data/ml")) == "data/ml"
    assert destination_team("finops-guard/prod/teams-webhook-url") is None and destination_team(None) is None


def test_a_team_message_id_names_its_team_for_messages_kept_before_the_team_webhooks_secret():
    assert team_of_message("weekly-report/2026-11-15/team/data%2Fml/teams") == "data/ml"
    assert team_of_message("anomaly-digest/abc/team/web/slack") == "web"
    assert team_of_message("weekly-report/2026-11-15/teams") is None


def test_message_suffix_quotes_tag_values_that_contain_slashes():
    assert message_suffix("data/ml team") == "team/data%2Fml%20team"


ROUTING = Routing(
    parse_dimension("tag:team"),
    [
        TeamRoute("web", ("teams",), accounts=("111111111111",)),
        TeamRoute("data", ("teams",), accounts=("111111111111", "222222222222")),
    ],
)


def test_a_budget_on_the_team_tag_concerns_that_team():
    budget = parse_budget({"id": "b", "amount": "1", "currency": "USD", "scope": {"tag": {"team": ["web", "x"]}}})
    assert [r.team for r in ROUTING.for_budget(budget)] == ["web"]


def test_a_budget_on_a_routed_account_concerns_every_team_owning_it():
    budget = parse_budget({"id": "b", "amount": "1", "currency": "USD", "scope": {"account": ["111111111111"]}})
    assert [r.team for r in ROUTING.for_budget(budget)] == ["data", "web"]


def test_a_budget_on_another_tag_or_the_whole_organisation_concerns_no_team():
    other = parse_budget({"id": "b", "amount": "1", "currency": "USD", "scope": {"tag": {"owner": ["web"]}}})
    whole = parse_budget({"id": "c", "amount": "1", "currency": "USD"})
    assert ROUTING.for_budget(other) == [] and ROUTING.for_budget(whole) == []


def test_accounts_map_to_teams_and_unknown_or_missing_accounts_to_none():
    assert [r.team for r in ROUTING.for_accounts(["222222222222", None, "999999999999"])] == ["data"]


def test_settings_read_dimensions_and_the_team_dimension():
    config = ReportSettings.from_env({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team, costCategory:Project",
                                      "FINOPSGUARD_TEAM_DIMENSION": "tag:Team"})  # fmt: skip
    assert [d.spec() for d in config.attribution_dimensions] == ["tag:Team", "costCategory:Project"]
    assert config.team_dimension == parse_dimension("tag:Team")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "Team"}, "ATTRIBUTION_DIMENSIONS"),
        ({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:A", "FINOPSGUARD_TEAM_DIMENSION": "tag:B"}, "TEAM_DIMENSION"),
        ({"FINOPSGUARD_CHARGEBACK_UNALLOCATED": "evenly"}, "CHARGEBACK_UNALLOCATED"),
        ({"FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES": "0"}, "CHARGEBACK_LINK_EXPIRY_MINUTES"),
    ],
)
def test_bad_attribution_settings_fail_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        ReportSettings.from_env(env)


def test_settings_read_the_team_webhooks_secret_name():
    config = ReportSettings.from_env({"FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/prod/team-webhooks"})
    assert config.team_webhooks_secret_name == "finops-guard/prod/team-webhooks"
