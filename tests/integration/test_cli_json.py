"""`--json` on every list command: a JSON array on stdout (an empty one when there is nothing), so a
script never parses the lines meant for people."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from finops_guard import cli

from tests.integration.test_cli_surface import clear_cached_clients
from tests.unit.test_cli_surface import LEAVES

pytestmark = pytest.mark.integration

STAGE = "jsn"
LIST_COMMANDS = [
    ["budgets", "list"],
    ["report", "pending"],
    ["outbox", "list"],
    ["dlq", "list"],
    ["teams", "list"],
    ["savings", "list"],
]


@pytest.fixture
def stage(aws, monkeypatch):
    for name in ("FINOPSGUARD_STAGE", "FINOPSGUARD_OUTBOX_TABLE", "FINOPSGUARD_TEAMS_SECRET_NAME"):
        monkeypatch.delenv(name, raising=False)
    aws.reset()
    clear_cached_clients()
    aws.create_budget_tables(STAGE)
    aws.create_outbox_table(f"finops-guard-{STAGE}-outbox")
    aws.create_team_routes_table(STAGE)
    aws.create_recommendations_table(STAGE)
    aws.put_secret(f"finops-guard/{STAGE}/team-webhooks", "{}")
    aws.client("sqs").create_queue(QueueName=f"finops-guard-{STAGE}-failures")
    yield aws
    clear_cached_clients()


def test_every_list_command_has_json():
    listed = {path for path, parser in LEAVES.items() if path[-1] == "list" or path == ("report", "pending")}
    assert listed == {tuple(argv) for argv in LIST_COMMANDS}
    for argv in LIST_COMMANDS:
        assert any("--json" in action.option_strings for action in LEAVES[tuple(argv)]._actions), argv


@pytest.mark.parametrize("argv", LIST_COMMANDS, ids=" ".join)
def test_an_empty_list_is_an_empty_json_array(argv, stage, capsys):
    code = cli.main([*argv, "--stage", STAGE, "--json"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert json.loads(out) == []


def test_budgets_list_json_is_the_budget_documents_with_amounts_as_strings(stage, capsys):
    added = ["budgets", "add", "--stage", STAGE, "--id", "web", "--amount", "1500.50", "--currency", "EUR"]
    assert cli.main(added) == 0
    capsys.readouterr()

    assert cli.main(["budgets", "list", "--stage", STAGE, "--json"]) == 0

    [budget] = json.loads(capsys.readouterr().out)
    assert (budget["id"], budget["currency"], type(budget["amount"])) == ("web", "EUR", str)  # never a float
    assert Decimal(budget["amount"]) == Decimal("1500.50")
