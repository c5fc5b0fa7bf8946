"""Attribution end to end: the weekly report with team routes, the monthly chargeback and the
`teams` commands, against moto and loopback chat webhooks."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
import requests
from finops_guard import cli
from finops_guard.core.adapters import secrets
from finops_guard.core.periods import report_window
from finops_guard.costs import runtime
from finops_guard.costs.adapters.team_routes import TeamRoutesTable
from finops_guard.costs.attribution import attribution_request
from finops_guard.costs.chargeback import Month, build_chargeback, chargeback_request, month_costs, to_csv
from finops_guard.costs.mock_data import synthetic_query_pages
from finops_guard.costs.teams import TeamRoute, parse_dimension

from devtools.lambda_runner import FakeContext
from tests.conftest import load_handler
from tests.integration.conftest import FIRED_AT, TEAMS_PATH

pytestmark = pytest.mark.integration
TEAM, COST_CENTER = parse_dimension("tag:Team"), parse_dimension("tag:CostCenter")
WEBHOOKS = "finops-guard/test/team-webhooks"
CHARGEBACK_EVENT = {"job": "chargeback", "scheduled_time": "2026-12-01T08:00:00Z"}  # 09:00 in Madrid


@pytest.fixture
def teams(deployed, monkeypatch):
    """The deployment with attribution on and a routes table."""
    table = deployed.aws.create_team_routes_table()
    for key, value in {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": table,
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": WEBHOOKS,
    }.items():
        monkeypatch.setenv(key, value)
    deployed.aws.put_secret(WEBHOOKS, "{}")  # as the stack creates it
    runtime.settings.cache_clear()
    runtime.team_routes_table.cache_clear()
    yield deployed
    runtime.team_routes_table.cache_clear()


def team_webhooks(deployed) -> dict:
    return json.loads(deployed.aws.client("secretsmanager").get_secret_value(SecretId=WEBHOOKS)["SecretString"])


def route(deployed, team: str, accounts: tuple[str, ...] = ()) -> str:
    """A team with its own Teams channel (a recorder path) in the team webhooks secret; returns the path."""
    path = f"/workflows/team-{team}"
    urls = {**team_webhooks(deployed), team: {"teams": deployed.chat.url(path)}}
    deployed.aws.client("secretsmanager").put_secret_value(SecretId=WEBHOOKS, SecretString=json.dumps(urls))
    table = TeamRoutesTable("finops-guard-test-team-routes", deployed.aws.client("dynamodb"))
    table.put(TeamRoute(team, ("teams",), accounts=accounts), FIRED_AT)
    return path


def seed_weekly(deployed) -> None:
    deployed.seed_costs()
    window = report_window(FIRED_AT)
    pages = [
        page
        for dimension in (TEAM, COST_CENTER)
        for page in synthetic_query_pages(attribution_request(dimension, window.query_start, window.query_end, "DAILY"))
    ]
    deployed.aws.seed_cost_and_usage(pages)


def body(received) -> list[dict]:
    return received.json()["attachments"][0]["content"]["body"]


def test_two_teams_get_their_own_cards_and_the_default_channel_gets_attribution(teams):
    web, data = route(teams, "web"), route(teams, "data")
    seed_weekly(teams)
    result = teams.invoke()
    by_path = {r.path: r for r in teams.chat.received}
    assert set(by_path) == {TEAMS_PATH, web, data}
    assert body(by_path[web])[0]["text"].startswith("AWS cost report · Team web · week ending")
    texts = [b.get("text", "") for b in body(by_path[TEAMS_PATH])]
    assert "Spend by Team (MTD · week over week)" in texts
    facts = next(b for b in body(by_path[TEAMS_PATH]) if b.get("type") == "FactSet" and
                 b["facts"][0]["title"] == "Attributed to a Team")["facts"]  # fmt: skip
    assert facts[1]["title"] == "Untagged"
    assert any(f["title"].startswith("Untagged: ") for f in facts)
    assert result["cost_explorer_requests"] == 3
    week = "weekly-report/2026-11-15"
    assert set(result["delivered"]) == {f"{week}/teams", f"{week}/team/web/teams", f"{week}/team/data/teams"}


def test_twenty_teams_cost_the_same_three_cost_explorer_requests(teams):
    for i in range(20):
        route(teams, f"t{i:02d}")
    seed_weekly(teams)
    result = teams.invoke()
    assert len(teams.ce_requests) == 3 == result["cost_explorer_requests"]
    # The organisation's request is by RECORD_TYPE (credits, refunds and tax ride on it): no fourth one.
    assert [r["GroupBy"][0]["Key"] for r in teams.ce_requests] == ["RECORD_TYPE", "Team", "CostCenter"]
    assert len(teams.chat.received) == 21


def test_a_team_card_kept_after_a_failed_post_is_redriven_to_the_teams_own_channel(teams):
    from devtools.chat_recorder import Reply

    web = route(teams, "web")
    seed_weekly(teams)
    teams.chat.then(Reply(202), *[Reply(400, {}, "bad")] * 1)
    with pytest.raises(Exception, match="kept in the outbox"):
        teams.invoke()
    kept = teams.outbox_item("weekly-report/2026-11-15/team/web/teams")
    assert kept["status"]["S"] == "failed" and kept["secret_name"]["S"] == "team:web"
    teams.chat.received.clear()
    assert cli.main(["outbox", "redrive", "--stage", "test", "--outbox-table", teams.table]) == 0
    assert [r.path for r in teams.chat.received] == [web]


@pytest.fixture
def chargeback(teams, monkeypatch):
    bucket = teams.aws.create_export_bucket()
    monkeypatch.setenv("FINOPSGUARD_CHARGEBACK_BUCKET", bucket)
    monkeypatch.setenv("FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES", "30")
    runtime.settings.cache_clear()
    runtime.export_bucket.cache_clear()
    pages = {d: synthetic_query_pages(chargeback_request(d, Month(2026, 11))) for d in (TEAM, COST_CENTER)}
    teams.aws.seed_cost_and_usage(pages[TEAM] + pages[COST_CENTER])
    yield teams, bucket, pages
    runtime.export_bucket.cache_clear()


def invoke_chargeback(event: dict) -> dict:
    return load_handler("chargeback").lambda_handler(event, FakeContext("finops-guard-test-chargeback"))


def test_chargeback_writes_exact_csvs_and_announces_a_working_link(chargeback):
    deployed, bucket, pages = chargeback
    result = invoke_chargeback(CHARGEBACK_EVENT)
    # One per dimension, and one for the month's credits, refunds and tax (none seeded here).
    assert result["month"] == "2026-11" and result["cost_explorer_requests"] == 2 + 1
    s3 = deployed.aws.client("s3")
    stored = s3.get_object(Bucket=bucket, Key="chargeback/2026-11/tag-team.csv")["Body"].read().decode()
    expected = build_chargeback(month_costs(TEAM, pages[TEAM]), Month(2026, 11), rule="proportional")
    assert stored == to_csv(expected)
    rows = list(csv.DictReader(io.StringIO(stored)))
    november = sum(
        Decimal(g["Metrics"]["UnblendedCost"]["Amount"]) for g in pages[TEAM][0]["ResultsByTime"][0]["Groups"]
    )
    assert sum(Decimal(r["net"]) for r in rows) == november.quantize(Decimal("0.01"))
    assert {r["line"] for r in rows} == {"tagged", "untagged share"}
    [card] = deployed.chat.received
    actions = card.json()["attachments"][0]["content"]["actions"]
    assert [a["title"] for a in actions] == ["Download CSV (Team)", "Download CSV (CostCenter)"]
    assert "X-Amz-Expires=1800" in actions[0]["url"]
    assert requests.get(actions[0]["url"], timeout=5).text == stored


def test_a_retried_chargeback_run_announces_once(chargeback):
    deployed, _, _ = chargeback
    invoke_chargeback(CHARGEBACK_EVENT)
    again = invoke_chargeback(CHARGEBACK_EVENT)
    assert again["skipped"] == ["chargeback/2026-11/2026-12-01T08:00:00Z/teams"]
    assert len(deployed.chat.received) == 1


def test_separate_rule_keeps_untagged_lines_unallocated(chargeback, monkeypatch):
    deployed, bucket, _ = chargeback
    monkeypatch.setenv("FINOPSGUARD_CHARGEBACK_UNALLOCATED", "separate")
    runtime.settings.cache_clear()
    invoke_chargeback({"month": "2026-11", "scheduled_time": "2026-12-02T10:00:00Z"})
    stored = deployed.aws.client("s3").get_object(Bucket=bucket, Key="chargeback/2026-11/tag-team.csv")
    rows = list(csv.DictReader(io.StringIO(stored["Body"].read().decode())))
    assert {r["owner"] for r in rows if r["line"] == "unallocated"} == {""}
    assert "untagged share" not in {r["line"] for r in rows}


def test_teams_commands_add_list_and_remove_routes(teams, capsys):
    url = teams.chat.url("/w")
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-url", url, "--account", "111111111111"]) == 0
    assert team_webhooks(teams) == {"web": {"teams": url}}
    assert cli.main(["teams", "list", "--stage", "test"]) == 0
    listed = capsys.readouterr().out
    assert "web\tteams=set\t111111111111" in listed and url not in listed
    assert cli.main(["teams", "remove", "web", "--stage", "test"]) == 0
    assert team_webhooks(teams) == {}
    assert TeamRoutesTable("finops-guard-test-team-routes", teams.aws.client("dynamodb")).all() == []
    assert cli.main(["teams", "remove", "web", "--stage", "test"]) == 1  # not found
    assert capsys.readouterr().err.strip().endswith("no route for team 'web' (see finops-guard teams list)")


def test_teams_add_updates_a_team_keeping_its_other_channel_its_accounts_and_other_teams(teams, capsys):
    teams_url, slack_url = teams.chat.url("/t"), "https://hooks.slack.com/services/T0/B0/x"
    assert cli.main(["teams", "add", "data", "--stage", "test", "--teams-url", teams.chat.url("/d")]) == 0
    assert (
        cli.main(["teams", "add", "web", "--stage", "test", "--teams-url", teams_url, "--account", "111111111111"]) == 0
    )
    assert cli.main(["teams", "add", "web", "--stage", "test", "--slack-url", slack_url]) == 0
    assert team_webhooks(teams) == {
        "data": {"teams": teams.chat.url("/d")},
        "web": {"teams": teams_url, "slack": slack_url},
    }
    routes = TeamRoutesTable("finops-guard-test-team-routes", teams.aws.client("dynamodb"))
    assert routes.get("web") == TeamRoute("web", ("teams", "slack"), ("111111111111",))
    assert "updated team 'web': teams, slack; accounts 111111111111" in capsys.readouterr().out


def test_a_route_in_the_old_shape_waits_as_not_set_up_until_teams_add_puts_its_url(teams, caplog):
    # Written before the team webhooks secret: it names a per-team secret the functions can no longer read.
    old = {"team": "web", "teams_secret": "finops-guard/test/teams/web", "accounts": []}
    teams.aws.client("dynamodb").put_item(
        TableName="finops-guard-test-team-routes",
        Item={"pk": {"S": "ROUTE"}, "sk": {"S": "web"}, "document": {"S": json.dumps(old)}},
    )
    seed_weekly(teams)
    result = teams.invoke()
    assert result["not_configured"] == ["weekly-report/2026-11-15/team/web/teams"]
    command = "finops-guard teams add web --stage test --teams-url 'https://...'"
    assert any(command in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-url", teams.chat.url("/w")]) == 0
    teams.chat.received.clear()
    secrets.clear_cache()  # the redrive is a new process: its cache is empty
    assert cli.main(["outbox", "redrive", "--stage", "test", "--outbox-table", teams.table]) == 0
    assert [r.path for r in teams.chat.received] == ["/w"]


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ([], "give the team's webhook URL: --teams-url"),
        (["--teams-url", "http://prod-01.westeurope.logic.azure.com/workflows/x"], "--teams-url must be an https://"),
        (["--teams-url", "https://hooks.slack.com/services/x"], "--teams-url must be a Teams Workflows webhook"),
        (["--slack-url", "https://u:p@hooks.slack.com/services/x"], "--slack-url must not hold a user name"),
        (["--teams-url", "https://prod-01.logic.azure.com/x", "--account", "12"], "accounts: must be"),
    ],
)
def test_teams_add_refuses_a_bad_url_in_one_line_and_writes_nothing(teams, capsys, flags, error):
    assert cli.main(["teams", "add", "web", "--stage", "test", *flags]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("finops-guard: ") and error in line and "u:p" not in line
    assert team_webhooks(teams) == {}
    assert TeamRoutesTable("finops-guard-test-team-routes", teams.aws.client("dynamodb")).all() == []


def test_teams_add_refuses_to_overwrite_a_malformed_secret(teams, capsys):
    teams.aws.client("secretsmanager").put_secret_value(SecretId=WEBHOOKS, SecretString="not json")
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-url", teams.chat.url("/w")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "is not a JSON object" in line and "--secret-string '{}'" in line
    assert teams.aws.client("secretsmanager").get_secret_value(SecretId=WEBHOOKS)["SecretString"] == "not json"
