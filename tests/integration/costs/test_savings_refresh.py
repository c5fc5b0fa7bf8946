"""The savings refresh handler and the `savings` CLI against the embedded AWS (DynamoDB, Cost
Explorer seeded per request), with Cost Optimization Hub and the Savings Plans APIs answered by
botocore's Stubber, which validates every response against the service model.

The COH pages in events/ are the service's JSON wire output (timestamps as epoch seconds); they are
turned into what boto3 returns by botocore's own response parser before the Stubber serves them.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from finops_guard import cli
from finops_guard.core.periods import DateRange
from finops_guard.costs import runtime
from finops_guard.costs.adapters import recommendations_store
from finops_guard.costs.adapters.cost_optimization_hub import PAGE_SIZE, CostOptimizationHub
from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
from finops_guard.costs.adapters.savings_plans import SavingsPlansSource
from finops_guard.costs.adapters.team_routes import TeamRoutesTable
from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.mock_data import NET_DISCOUNT, synthetic_query_pages
from finops_guard.costs.savings import (
    ACCEPTED,
    DISMISSED,
    IMPLEMENTED,
    OPEN,
    RESOLVED_UPSTREAM,
    StatusConflict,
    TransitionRefused,
    change_status,
    completed_roi,
    daily_series,
    plan_transition,
    roi_request,
)
from finops_guard.costs.teams import TeamRoute

from devtools.hub_stub import fake_client, hub_page, stub_listing
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
TABLE = "finops-guard-test-recommendations"
ROUTES_TABLE = "finops-guard-test-team-routes"
EC2_WEB = "MTExMTExMTExMTExLWVjMi1pLTBhMWIyYzNkNGU1ZjYwNzE4"  # page 1: Rightsize, tag Team=web, account 111…
EBS = "MjIyMjIyMjIyMjIyLWVicy12b2wtMDlmOGU3ZDZjNWI0YTMyMTA"  # page 1: Upgrade, untagged, account 222…
EC2_DATA = "MjIyMjIyMjIyMjIyLWVjMi1pLTA3NzY2NTU0NDMzMjIxMTAw"  # page 2: Stop, tag Team=data
SAVINGS_PLAN = "MTExMTExMTExMTExLWNvbXB1dGUtc2F2aW5ncy1wbGFucw"  # page 2: PurchaseSavingsPlans, untagged, 111…


@pytest.fixture
def savings(deployed, monkeypatch):
    deployed.aws.create_recommendations_table()
    deployed.aws.create_team_routes_table()
    platform = TeamRoute("platform", ("teams",), accounts=("111111111111",))
    TeamRoutesTable(ROUTES_TABLE).put(platform, NOW)
    for key, value in {
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": TABLE,
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ROUTES_TABLE,
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/test/team-webhooks",
        "POWERTOOLS_SERVICE_NAME": "savings-refresh",
    }.items():
        monkeypatch.setenv(key, value)
    caches = (runtime.settings, runtime.team_routes_table, runtime.recommendations_table)
    for cached in caches:
        cached.cache_clear()
    hub = fake_client("cost-optimization-hub")
    monkeypatch.setattr(runtime, "cost_optimization_hub_client", lambda: hub)
    with Stubber(hub) as stubber:
        deployed.hub, deployed.table = stubber, RecommendationsTable(TABLE)
        yield deployed
        stubber.assert_no_pending_responses()
    for cached in caches:
        cached.cache_clear()


def run_refresh(at: datetime = NOW) -> dict:
    event = {"scheduled_time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return load_handler("savings_refresh").lambda_handler(event, FakeContext("finops-guard-test-savings-refresh"))


def statuses(table: RecommendationsTable) -> dict[str, str]:
    return {r.rec_id: r.status for r in table.all()}


def emf(out: str) -> dict:
    """The run's metrics line; {} when the run sent no metric at all."""
    lines = [json.loads(x) for x in out.splitlines() if '"_aws"' in x]
    assert len(lines) <= 1
    return lines[0] if lines else {}


# --- Cost Optimization Hub pagination -------------------------------------------------------------


def test_the_listing_follows_next_token_with_one_request_per_page():
    client = fake_client("cost-optimization-hub")
    with Stubber(client) as stubber:
        stub_listing(stubber, hub_page("page1"), hub_page("page2"))
        hub = CostOptimizationHub(client)
        listed = hub.list_all(NOW)
        stubber.assert_no_pending_responses()
    assert hub.requests == 2
    assert [r.rec_id for r in listed] == [EC2_WEB, EBS, EC2_DATA, SAVINGS_PLAN]
    assert [r.estimated_monthly_savings for r in listed] == [Decimal("61.32"), Decimal("12.34"), Decimal("30.37"),
                                                             Decimal("412.80")]  # fmt: skip


def test_three_pages_cost_three_requests():
    items = hub_page("page1")["items"] + hub_page("page2")["items"]
    pages = [{"items": items[:1], "nextToken": "t1"}, {"items": items[1:3], "nextToken": "t2"}, {"items": items[3:]}]
    client = fake_client("cost-optimization-hub")
    with Stubber(client) as stubber:
        stub_listing(stubber, *pages)
        hub = CostOptimizationHub(client)
        assert len(hub.list_all(NOW)) == 4
        stubber.assert_no_pending_responses()
    assert hub.requests == 3


# --- the daily refresh ----------------------------------------------------------------------------


def test_the_daily_refresh_stores_every_item_with_its_team_and_counts_its_requests(savings, capsys):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    result = run_refresh()
    assert result == {"listed": 4, "new": 4, "reopened": 0, "resolved_upstream": 0, "roi_measured": 0,
                      "lost_races": 0, "cost_optimization_hub_requests": 2, "cost_explorer_requests": 0}  # fmt: skip
    stored = {r.rec_id: r for r in savings.table.all()}
    # Team from the resource's Team tag; untagged: the team routing the account (none routes 222…).
    assert {k: r.team for k, r in stored.items()} == {EC2_WEB: "web", EBS: None, EC2_DATA: "data",
                                                      SAVINGS_PLAN: "platform"}  # fmt: skip
    first = stored[EC2_WEB]
    assert (first.status, first.first_seen, first.estimated_monthly_savings) == (OPEN, "2026-11-16T06:00:00Z",
                                                                                 Decimal("61.32"))  # fmt: skip
    assert [h.to_document() for h in first.history] == [
        {"status": "open", "at": "2026-11-16T06:00:00Z", "by": "refresh", "reason": "listed upstream"}
    ]
    metrics = emf(capsys.readouterr().out)
    assert metrics["RecommendationsNew"] == [4.0] and "CostOptimizationHubRequests" not in metrics
    assert "CostExplorerRequests" not in metrics and "RecommendationsResolvedUpstream" not in metrics
    assert savings.ce_requests == []


def test_a_second_refresh_keeps_one_item_per_id_and_never_touches_status_first_seen_or_history(savings):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    change_status(savings.table, EC2_WEB, ACCEPTED, now=NOW, by="cli:ana")
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    later = NOW + timedelta(days=1)
    assert run_refresh(later)["new"] == 0
    items = savings.aws.client("dynamodb").query(
        TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "REC"}}
    )["Items"]
    assert len(items) == 4
    kept = savings.table.get(EC2_WEB)
    assert (kept.status, kept.first_seen, kept.last_seen) == (ACCEPTED, "2026-11-16T06:00:00Z", "2026-11-17T06:00:00Z")
    assert [h.status for h in kept.history] == [OPEN, ACCEPTED]


def test_a_page_that_fails_resolves_nothing_and_writes_nothing(savings):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    savings.hub.add_response("list_recommendations", hub_page("page1"), {"maxResults": PAGE_SIZE})
    savings.hub.add_client_error("list_recommendations", "ThrottlingException", "Rate exceeded")
    with pytest.raises(ClientError, match="ThrottlingException"):
        run_refresh(NOW + timedelta(days=1))
    assert set(statuses(savings.table).values()) == {OPEN}
    assert {r.last_seen for r in savings.table.all()} == {"2026-11-16T06:00:00Z"}


def test_gone_upstream_resolves_open_items_keeps_implemented_ones_and_a_reappearance_reopens(savings):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh(NOW - timedelta(days=2))  # first seen before it was implemented
    change_status(savings.table, EC2_DATA, ACCEPTED, now=NOW, by="cli:ana")
    change_status(savings.table, EC2_DATA, IMPLEMENTED, now=NOW, by="cli:ana", implemented_on=date(2026, 11, 15))
    stub_listing(savings.hub, hub_page("page1", nextToken=None))  # page 2's items are gone upstream
    assert run_refresh(NOW + timedelta(days=1))["resolved_upstream"] == 1
    assert statuses(savings.table) == {EC2_WEB: OPEN, EBS: OPEN, EC2_DATA: IMPLEMENTED, SAVINGS_PLAN: RESOLVED_UPSTREAM}
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    assert run_refresh(NOW + timedelta(days=2))["reopened"] == 1
    reopened = savings.table.get(SAVINGS_PLAN)
    assert reopened.status == OPEN
    assert [(h.status, h.by) for h in reopened.history] == [(OPEN, "refresh"), (RESOLVED_UPSTREAM, "refresh"),
                                                            (OPEN, "refresh")]  # fmt: skip


# --- conditional status moves ---------------------------------------------------------------------


def test_two_operators_accepting_at_once_one_wins_and_the_other_gets_a_clear_error(savings):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    start = threading.Barrier(2)
    results: list[object] = []

    def accept(who: str) -> None:
        start.wait()
        try:
            results.append(change_status(RecommendationsTable(TABLE), EBS, ACCEPTED, now=NOW, by=who).status)
        except (StatusConflict, TransitionRefused) as error:
            results.append(error)

    threads = [threading.Thread(target=accept, args=(f"cli:{who}",)) for who in ("ana", "bo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(ACCEPTED) == 1
    [error] = [r for r in results if r != ACCEPTED]
    assert "accepted" in str(error)
    assert [h.status for h in savings.table.get(EBS).history] == [OPEN, ACCEPTED]


def test_a_move_decided_on_a_stale_read_is_refused_by_the_conditional_write(savings):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    stale = savings.table.get(EBS)
    change_status(savings.table, EBS, DISMISSED, now=NOW, by="cli:bo", reason="gp2 needed by the vendor")
    with pytest.raises(StatusConflict, match="is now dismissed, not open"):
        savings.table.transition(plan_transition(stale, ACCEPTED, at=NOW, by="cli:ana"), NOW)
    assert [h.status for h in savings.table.get(EBS).history] == [OPEN, DISMISSED]


def test_a_retried_move_whose_first_attempt_was_applied_counts_as_ours(savings, monkeypatch):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    monkeypatch.setattr(recommendations_store.uuid, "uuid4", lambda: type("U", (), {"hex": "same-token"})())
    move = plan_transition(savings.table.get(EBS), ACCEPTED, at=NOW, by="cli:ana")
    savings.table.transition(move, NOW)
    savings.table.transition(move, NOW)  # what botocore's retry does when the first answer was lost
    assert [h.status for h in savings.table.get(EBS).history] == [OPEN, ACCEPTED]


# --- ROI: one Cost Explorer request per implemented item, once ------------------------------------


def roi_page(implemented_on: date, last: date) -> dict:
    days = DateRange(implemented_on - timedelta(days=14), last).each_day()
    amount = {True: "10.00", False: "4.00"}
    return {
        "GroupDefinitions": [],
        "ResultsByTime": [
            {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
             "Total": {"UnblendedCost": {"Amount": "7.00" if d == implemented_on else amount[d < implemented_on],
                                         "Unit": "USD"}},
             "Groups": [], "Estimated": d == last}
            for d in days
        ],
        "DimensionValueAttributes": [],
    }  # fmt: skip


def test_roi_costs_one_cost_explorer_request_per_implemented_item_and_none_once_stored(savings, capsys):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh(datetime(2026, 10, 30, 6, 0, tzinfo=UTC))  # first seen before it was implemented
    implemented_on = date(2026, 11, 1)
    change_status(savings.table, EC2_WEB, ACCEPTED, now=NOW, by="cli:ana")
    change_status(savings.table, EC2_WEB, IMPLEMENTED, now=NOW, by="cli:ana", implemented_on=implemented_on)
    savings.aws.seed_cost_and_usage([roi_page(implemented_on, date(2026, 11, 15))])
    capsys.readouterr()
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    assert run_refresh()["cost_explorer_requests"] == 1
    assert savings.ce_requests == [roi_request(savings.table.get(EC2_WEB))]
    assert emf(capsys.readouterr().out)["CostExplorerRequests"] == [1.0]
    roi = savings.table.get(EC2_WEB).roi
    assert (roi.before_daily, roi.after_daily, roi.monthly_saving, roi.estimated_days) == (
        Decimal("10"), Decimal("4"), Decimal("182.50"), 1,
    )  # fmt: skip
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    assert run_refresh(NOW + timedelta(days=1))["cost_explorer_requests"] == 0
    assert len(savings.ce_requests) == 1 and "CostExplorerRequests" not in emf(capsys.readouterr().out)


@pytest.mark.parametrize("metric", list(CostMetric))
def test_roi_is_measured_on_usage_in_the_deployments_cost_metric(savings, monkeypatch, metric):
    monkeypatch.setenv("FINOPSGUARD_COST_METRIC", metric.value)
    runtime.settings.cache_clear()
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh(datetime(2026, 10, 30, 6, 0, tzinfo=UTC))
    change_status(savings.table, EC2_WEB, ACCEPTED, now=NOW, by="cli:ana")
    change_status(savings.table, EC2_WEB, IMPLEMENTED, now=NOW, by="cli:ana", implemented_on=date(2026, 11, 1))
    implemented = savings.table.get(EC2_WEB)
    request = roi_request(implemented, metric)
    answer = synthetic_query_pages(request)  # the emulated Cost Explorer: EC2 in 111111111111, with its credit
    savings.aws.seed_cost_and_usage(answer)
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    assert run_refresh()["cost_explorer_requests"] == 1
    assert savings.ce_requests == [request] and request["Metrics"] == [metric.value]
    roi = savings.table.get(EC2_WEB).roi
    expected = completed_roi(implemented, daily_series(answer, metric), date(2026, 11, 15), NOW)
    assert expected is not None and (roi.before_daily, roi.after_daily) == (expected.before_daily, expected.after_daily)
    gross = CostMetric.AMORTIZED if metric.amortized else CostMetric.UNBLENDED
    gross_answer = synthetic_query_pages(roi_request(implemented, gross))
    gross_roi = completed_roi(implemented, daily_series(gross_answer, gross), date(2026, 11, 15), NOW)
    factor = 1 - NET_DISCOUNT if metric.net_of_discounts else 1
    assert abs(roi.before_daily - gross_roi.before_daily * factor) <= Decimal("0.000001")
    assert roi.before_daily > 0  # usage only: the 45.00 daily credit on that service is no saving


# --- commitment KPI -------------------------------------------------------------------------------

MTD = DateRange(date(2026, 11, 1), date(2026, 11, 15))
PERIOD = {"Start": "2026-11-01", "End": "2026-11-16"}
COVERAGE = {"SavingsPlansCoverages": [{
    "Attributes": {}, "TimePeriod": PERIOD,
    "Coverage": {"SpendCoveredBySavingsPlans": "620.5", "OnDemandCost": "379.5", "TotalCost": "1000",
                 "CoveragePercentage": "62.05"},
}]}  # fmt: skip
UTILIZATION = {
    "SavingsPlansUtilizationsByTime": [],
    "Total": {
        "Utilization": {"TotalCommitment": "640", "UsedCommitment": "620.5", "UnusedCommitment": "19.5",
                        "UtilizationPercentage": "96.95"},
        "Savings": {"NetSavings": "210.25", "OnDemandCostEquivalent": "850.25"},
        "AmortizedCommitment": {"AmortizedRecurringCommitment": "640", "AmortizedUpfrontCommitment": "0",
                                "TotalAmortizedCommitment": "640"},
    },
}  # fmt: skip


def test_the_commitment_kpi_costs_two_cost_explorer_requests():
    client = fake_client("ce")
    with Stubber(client) as stubber:
        stubber.add_response("get_savings_plans_coverage", COVERAGE, {
            "TimePeriod": PERIOD, "Granularity": "MONTHLY", "Metrics": ["SpendCoveredBySavingsPlans"]})  # fmt: skip
        stubber.add_response("get_savings_plans_utilization", UTILIZATION,
                             {"TimePeriod": PERIOD, "Granularity": "MONTHLY"})  # fmt: skip
        source = SavingsPlansSource(client)
        kpi = source.commitment(MTD)
        stubber.assert_no_pending_responses()
    assert source.requests == 2
    assert (kpi.coverage, kpi.utilisation, kpi.net_savings) == (Decimal("0.6205"), Decimal("0.9695"),
                                                                Decimal("210.25"))  # fmt: skip


def test_without_savings_plans_utilisation_reads_as_no_data_not_as_a_failure():
    client = fake_client("ce")
    with Stubber(client) as stubber:
        stubber.add_response("get_savings_plans_coverage", {"SavingsPlansCoverages": []})
        stubber.add_client_error("get_savings_plans_utilization", "DataUnavailableException", "no data")
        source = SavingsPlansSource(client)
        kpi = source.commitment(MTD)
    assert (source.requests, kpi.coverage, kpi.utilisation) == (2, None, None)


# --- the CLI, end to end --------------------------------------------------------------------------


def savings_cli(*argv: str) -> int:
    """`finops-guard savings ... --stage test`, through the CLI's front door (its usage errors: exit 2)."""
    return cli.main(["savings", *argv, "--stage", "test"])


def test_cli_lists_accepts_implements_dismisses_reopens_and_shows(savings, capsys, monkeypatch):
    monkeypatch.setenv("USER", "ops")
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    capsys.readouterr()
    assert savings_cli("list") == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(cols[0], cols[2]) for cols in lines] == [(SAVINGS_PLAN, "$412.80/month"), (EC2_WEB, "$61.32/month"),
                                                      (EC2_DATA, "$30.37/month"), (EBS, "$12.34/month")]  # fmt: skip
    assert lines[1][1:] == ["open", "$61.32/month", "medium", "Rightsize m5.xlarge → m5.large", "i-0a1b2c3d4e5f60718",
                            "111111111111", "web"]  # fmt: skip

    assert savings_cli("implement", EC2_WEB) == 2
    assert "accept it first" in capsys.readouterr().err and savings.table.get(EC2_WEB).status == OPEN
    assert savings_cli("accept", EC2_WEB, "--by", "ana") == 0
    assert savings_cli("implement", EC2_WEB, "--on", "2026-11-17") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{EC2_WEB}: accepted -> implemented on 2026-11-17 (Rightsize m5.xlarge → m5.large)"
    )
    assert savings_cli("dismiss", EBS, "--reason", "vendor needs gp2") == 0
    assert savings_cli("reopen", EBS) == 0
    capsys.readouterr()
    assert savings_cli("show", EC2_WEB) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["implemented_on"], shown["team"]) == ("implemented", "2026-11-17", "web")
    assert [(h["status"], h["by"]) for h in shown["history"]] == [("open", "refresh"), ("accepted", "ana"),
                                                                  ("implemented", "cli:ops")]  # fmt: skip
    assert [h.status for h in savings.table.get(EBS).history] == [OPEN, DISMISSED, OPEN]
    assert savings.table.get(EBS).history[1].reason == "vendor needs gp2"

    assert savings_cli("list", "--status", "all", "--team", "web") == 0
    assert [line.split("\t")[:2] for line in capsys.readouterr().out.splitlines()] == [[EC2_WEB, "implemented"]]


def test_cli_refusals_and_unknown_ids_write_nothing_and_exit_non_zero(savings, capsys):
    stub_listing(savings.hub, hub_page("page1"), hub_page("page2"))
    run_refresh()
    assert savings_cli("dismiss", EBS) == 2  # --reason is required: argparse's usage error, one line
    assert savings_cli("accept", "no-such-id") == 1 and "no recommendation 'no-such-id'" in capsys.readouterr().err
    assert savings_cli("show", "no-such-id") == 1
    assert savings_cli("accept", EBS) == 0
    assert savings_cli("implement", EBS, "--on", "03/11/2026") == 2
    assert savings_cli("implement", EBS, "--on", (datetime.now(UTC).date() + timedelta(days=2)).isoformat()) == 2
    assert "in the future" in capsys.readouterr().err
    assert savings_cli("implement", EBS, "--on", "1970-01-01") == 2
    refused = capsys.readouterr().err
    assert (
        refused.startswith("finops-guard: refused: implemented on 1970-01-01 is before ") and refused.count("\n") == 1
    )
    assert "(13 months back, Cost Explorer's reach): give the real day" in refused
    assert savings_cli("list", "--status", "closed") == 2
    assert [h.status for h in savings.table.get(EBS).history] == [OPEN, ACCEPTED]
