"""Budget and anomaly alerts reach a routed team's own webhook (moto: the team routes table and the
team webhooks secret; a loopback chat endpoint with one path per webhook), and the default one still."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from finops_guard.costs import runtime
from finops_guard.costs.adapters.team_routes import TeamRoutesTable
from finops_guard.costs.teams import TeamRoute

from tests.integration.conftest import TEAMS_PATH
from tests.integration.costs.test_anomaly_handler import EVENT, anomalies, fresh, invoke  # noqa: F401 - fixture
from tests.integration.costs.test_budget_guard_handler import (  # noqa: F401 - fixture
    DATA_ACCOUNT,
    actual_spend,
    apply,
    guard,
    invoke_guard,
)

pytestmark = pytest.mark.integration
WEBHOOKS = "finops-guard/test/team-webhooks"
DATA_PATH = "/workflows/team-data-s3cr3t-token"


@pytest.fixture
def data_team(deployed, monkeypatch):
    """Team `data` (tag team=data, account 222222222222) with its own Teams webhook."""
    table = deployed.aws.create_team_routes_table()
    route = TeamRoute("data", ("teams",), accounts=(DATA_ACCOUNT,))
    TeamRoutesTable(table, deployed.aws.client("dynamodb")).put(route, datetime.now(UTC))
    deployed.aws.put_secret(WEBHOOKS, json.dumps({"data": {"teams": deployed.chat.url(DATA_PATH)}}))
    for key, value in {
        "FINOPSGUARD_TEAM_ROUTES_TABLE": table,
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": WEBHOOKS,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()
    runtime.team_routes_table.cache_clear()
    yield deployed
    runtime.settings.cache_clear()
    runtime.team_routes_table.cache_clear()


def cards_by_path(deployed) -> dict[str, list[dict]]:
    cards: dict[str, list[dict]] = {}
    for request in deployed.chat.received:
        cards.setdefault(request.path, []).append(request.json()["attachments"][0]["content"])
    return cards


def test_a_budget_scoped_on_a_teams_tag_alerts_its_channel_and_the_default_one(guard, data_team, tmp_path):  # noqa: F811
    scope = {"tag": {"Team": ["data"]}}
    amount = (actual_spend({"id": "x", "scope": scope}) / Decimal("0.93")).quantize(Decimal("1"))  # ~93 % used
    documents = [{"id": "data-team", "name": "Data team", "scope": scope, "amount": str(amount),
                  "currency": "USD", "alert_on": ["actual"], "notify": ["teams"]}]  # fmt: skip
    assert apply(tmp_path, documents) == 0
    result = invoke_guard(guard, documents)
    assert sorted(result["delivered"]) == [
        f"budget-alert/data-team/2026-11/actual/90@{amount}/team/data/teams",
        f"budget-alert/data-team/2026-11/actual/90@{amount}/teams",
    ]
    cards = cards_by_path(guard)
    assert set(cards) == {TEAMS_PATH, DATA_PATH}
    assert [c["body"][0]["text"] for c in cards[DATA_PATH]] == ["Budget alert: Data team — actual spend crossed 90 %"]
    assert cards[TEAMS_PATH] == cards[DATA_PATH]


def test_an_anomaly_in_a_teams_account_reaches_its_channel_and_the_default_one(anomalies, data_team):  # noqa: F811
    assert invoke(anomalies, [fresh(EVENT)]) == {"batchItemFailures": []}  # top root cause: 222222222222
    cards = cards_by_path(anomalies)
    assert set(cards) == {TEAMS_PATH, DATA_PATH}
    assert [c["body"][0]["text"] for c in cards[DATA_PATH]] == ["Cost anomaly: Amazon SageMaker +$2,421.77 (6,115 %)"]
    assert cards[TEAMS_PATH] == cards[DATA_PATH]
