"""Attribution end to end: the weekly report with team routes, the monthly chargeback and the
`teams` commands, against moto and loopback chat webhooks."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import requests
from finops_guard import cli
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
PREFIX = "finops-guard/test/teams/"
CHARGEBACK_EVENT = {"job": "chargeback", "scheduled_time": "2026-12-01T08:00:00Z"}  # 09:00 in Madrid


@pytest.fixture
def teams(deployed, monkeypatch):
    """The deployment with attribution on and a routes table."""
    table = deployed.aws.create_team_routes_table()
    for key, value in {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": table,
        "FINOPSGUARD_TEAM_SECRET_PREFIX": PREFIX,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()
    runtime.team_routes_table.cache_clear()
    yield deployed
    runtime.team_routes_table.cache_clear()


def route(deployed, team: str, accounts: tuple[str, ...] = ()) -> str:
    """A team with its own Teams channel (a recorder path) and its secret; returns the path."""
    path = f"/workflows/team-{team}"
    deployed.aws.put_secret(f"{PREFIX}{team}", deployed.chat.url(path))
    table = TeamRoutesTable("finops-guard-test-team-routes", deployed.aws.client("dynamodb"))
    table.put(TeamRoute(team, teams_secret=f"{PREFIX}{team}", accounts=accounts), FIRED_AT)
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
    assert [r["GroupBy"][0]["Key"] for r in teams.ce_requests] == ["SERVICE", "Team", "CostCenter"]
    assert len(teams.chat.received) == 21


def test_a_team_card_kept_after_a_failed_post_is_redriven_to_the_teams_own_channel(teams):
    from devtools.chat_recorder import Reply

    web = route(teams, "web")
    seed_weekly(teams)
    teams.chat.then(Reply(202), *[Reply(400, {}, "bad")] * 1)
    with pytest.raises(Exception, match="kept in the outbox"):
        teams.invoke()
    kept = teams.outbox_item("weekly-report/2026-11-15/team/web/teams")
    assert kept["status"]["S"] == "failed" and kept["secret_name"]["S"] == f"{PREFIX}web"
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
    assert result["month"] == "2026-11" and result["cost_explorer_requests"] == 2
    s3 = deployed.aws.client("s3")
    stored = s3.get_object(Bucket=bucket, Key="chargeback/2026-11/tag-team.csv")["Body"].read().decode()
    expected = build_chargeback(month_costs(TEAM, pages[TEAM]), Month(2026, 11), rule="proportional")
    assert stored == to_csv(expected)
    rows = list(csv.DictReader(io.StringIO(stored)))
    november = sum(
        Decimal(g["Metrics"]["UnblendedCost"]["Amount"]) for g in pages[TEAM][0]["ResultsByTime"][0]["Groups"]
    )
    assert sum(Decimal(r["amount"]) for r in rows) == november.quantize(Decimal("0.01"))
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
    teams.aws.put_secret(f"{PREFIX}web", teams.chat.url("/w"))
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-secret", f"{PREFIX}web",
                     "--account", "111111111111"]) == 0  # fmt: skip
    assert cli.main(["teams", "list", "--stage", "test"]) == 0
    assert f"web\tteams={PREFIX}web\t111111111111" in capsys.readouterr().out
    assert cli.main(["teams", "remove", "web", "--stage", "test"]) == 0
    assert cli.main(["teams", "remove", "web", "--stage", "test"]) == 1  # not found


def test_teams_add_refuses_a_missing_secret_or_one_outside_the_prefix(teams, capsys):
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-secret", f"{PREFIX}nope"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["teams", "add", "web", "--stage", "test", "--teams-secret", "other/web", "--no-check"]) == 2
    assert "must start with 'finops-guard/test/teams/'" in capsys.readouterr().err
    assert TeamRoutesTable("finops-guard-test-team-routes", teams.aws.client("dynamodb")).all() == []
