"""Issue 19 through the handlers on the embedded AWS, Cost Explorer answered per request by the
emulated one (finops_guard.costs.mock_data): the cost metric everywhere, a Savings Plan amortized,
credits on the card and in the CSV, budgets on their basis, and the chosen (or detected) breakdown."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from finops_guard.core.periods import report_window
from finops_guard.costs import runtime
from finops_guard.costs.adapters.budget_store import BudgetTable
from finops_guard.costs.aggregate import aggregate_pages
from finops_guard.costs.attribution import attribution_request
from finops_guard.costs.breakdown import Breakdown, main_request
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import evaluate
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.chargeback import Month, chargeback_request
from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.forecast import DEFAULT_LOOKBACK
from finops_guard.costs.mock_data import DEFAULT_EXTRAS, NET_DISCOUNT, Extras, SavingsPlan, synthetic_query_pages
from finops_guard.costs.record_types import charges_request
from finops_guard.costs.teams import parse_dimensions

from tests.conftest import load_handler
from tests.integration.conftest import FIRED_AT, FakeContext

pytestmark = pytest.mark.integration
WINDOW = report_window(FIRED_AT)  # month to date 2026-11-01 .. 2026-11-15; the request reaches back to 2026-10-19
AS_OF = WINDOW.as_of
DIMENSIONS = parse_dimensions(["tag:Team", "tag:CostCenter"])
OCTOBER = Month(2026, 10)
SERVICE = {"Type": "DIMENSION", "Key": "SERVICE"}
# Two Compute Savings Plans: A bought before the window (its monthly fee lands on Nov 1), B inside it.
PLAN_A = SavingsPlan(date(2026, 10, 20), upfront=Decimal("36500"), monthly_fee=Decimal("3000"))
PLAN_B = SavingsPlan(date(2026, 11, 10), upfront=Decimal("36500"), monthly_fee=Decimal("3000"))
PLANS = Extras(credits=(), savings_plans=(PLAN_A, PLAN_B))
EFFECTIVE = Decimal(36500) / 365 + Decimal(3000) / 30  # one plan's amortized day in November: 100 + 100


def seed(deployed: Any, asked: list[dict[str, Any]], extras: Extras = DEFAULT_EXTRAS) -> list[dict[str, Any]]:
    """Queue the emulated answers to exactly these requests, in the order the handler makes them."""
    deployed.aws.seed_cost_and_usage([p for r in asked for p in synthetic_query_pages(r, extras=extras)])
    return asked


def weekly_requests(metric: CostMetric, breakdown: Breakdown, attribution: bool) -> list[dict[str, Any]]:
    main = main_request(WINDOW.query_start, WINDOW.query_end, metric, breakdown, by_record_type=attribution)
    if attribution:
        return [main] + [attribution_request(d, WINDOW.query_start, WINDOW.query_end, "DAILY", metric)
                         for d in DIMENSIONS]  # fmt: skip
    return [main, charges_request(WINDOW.month_to_date.first, WINDOW.query_end, metric)]


def usage_by_day(metric: CostMetric, extras: Extras = DEFAULT_EXTRAS) -> dict[date, Decimal]:
    """What the emulated Cost Explorer says the organisation's usage was each day, in `metric`."""
    request = main_request(WINDOW.query_start, WINDOW.query_end, metric, Breakdown.LINKED_ACCOUNT)
    return aggregate_pages(synthetic_query_pages(request, extras=extras), WINDOW, metric).daily


def month_to_date(daily: dict[date, Decimal]) -> Decimal:
    return sum((daily[d] for d in WINDOW.month_to_date.each_day()), Decimal(0))


def use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"FINOPSGUARD_{key}", value)
    runtime.settings.cache_clear()


def teams_card(deployed: Any) -> dict[str, Any]:
    [received] = [r for r in deployed.chat.received if r.path.startswith("/workflows")]
    return received.json()["attachments"][0]["content"]


def facts(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}


def chart_days(card: dict[str, Any]) -> dict[date, Decimal]:
    """The daily chart's points; its x axis writes a day as `3 Nov` (an estimated one `3 Nov*`)."""
    [line] = [b for b in card["body"] if b["type"] == "Chart.Line"]
    return {
        datetime.strptime(f"{p['x'].rstrip('*')} 2026", "%d %b %Y").date(): Decimal(str(p["y"]))
        for p in line["data"][0]["values"]
    }


@pytest.fixture
def guard(deployed, monkeypatch):
    budgets_table, alerts_table = deployed.aws.create_budget_tables()
    topic, _ = deployed.aws.alert_topic_with_capture()
    use(monkeypatch, BUDGETS_TABLE=budgets_table, BUDGET_ALERTS_TABLE=alerts_table, ALERT_TOPIC_ARN=topic)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "budget-guard")
    for cached in (runtime.budget_table, runtime.budget_alert_table, runtime.event_publisher):
        cached.cache_clear()
    deployed.budgets_table, deployed.alerts_table = budgets_table, alerts_table
    yield deployed
    for cached in (runtime.budget_table, runtime.budget_alert_table, runtime.event_publisher):
        cached.cache_clear()


def run_guard(deployed: Any, documents: list[dict[str, Any]], metric: CostMetric, extras: Extras) -> dict[str, Any]:
    budgets = [parse_budget(d) for d in documents]
    BudgetTable(deployed.budgets_table).put_many(budgets, now=FIRED_AT)
    deployed.aws.seed_budget_costs(budgets, AS_OF, metric=metric, extras=extras)
    before = len(deployed.ce_requests)
    result = load_handler("budget_guard").lambda_handler(
        {"scheduled_time": "2026-11-16T09:00:00Z"}, FakeContext("finops-guard-test-budget-guard")
    )
    asked = [q.request() for q in plan_queries(budgets, AS_OF, DEFAULT_LOOKBACK, metric)]
    assert deployed.ce_requests[before:] == asked  # exactly the planned requests, each in `metric`
    statuses = runtime.budget_alert_table(deployed.alerts_table).get_statuses([b.budget_id for b in budgets])
    result["actual"] = {budget_id: Decimal(s["actual"]) for budget_id, s in statuses.items()}
    return result


def organisation_budget(budget_id: str = "org", **fields: Any) -> dict[str, Any]:
    return {"id": budget_id, "amount": "60000", "currency": "USD", "alert_on": ["actual"], "thresholds": [100],
            **fields}  # fmt: skip


# --- the done-when test: a Savings Plan purchase, amortized ---------------------------------------


def test_amortized_weekly_card_has_no_spike_on_the_purchase_day_and_spreads_the_recurring_fee(deployed, monkeypatch):
    use(monkeypatch, COST_METRIC="AmortizedCost")
    asked = seed(deployed, weekly_requests(CostMetric.AMORTIZED, Breakdown.LINKED_ACCOUNT, False), PLANS)
    deployed.invoke()
    assert deployed.ce_requests == asked
    shown, baseline = chart_days(teams_card(deployed)), usage_by_day(CostMetric.AMORTIZED, Extras(credits=()))
    plan_part = {day: shown[day] - baseline[day].quantize(Decimal("0.01")) for day in shown}
    # Each active plan adds its effective daily cost, the same every day of a month: no purchase spike, no fee
    # on the 1st (October's days, before the month, spread the monthly fee over 31 days).
    for day, part in plan_part.items():
        assert abs(part - PLAN_A.amortized(day) - PLAN_B.amortized(day)) <= Decimal("0.01"), day
        if day.month == 11:
            active = (PLAN_A.active(day), PLAN_B.active(day)).count(True)
            assert abs(part - active * EFFECTIVE) <= Decimal("0.01"), day
    assert plan_part[date(2026, 11, 10)] == plan_part[date(2026, 11, 11)]  # the purchase day is like any other
    assert plan_part[date(2026, 11, 1)] == plan_part[date(2026, 11, 2)]  # the 1st carries no monthly fee
    assert facts(teams_card(deployed))["Cost metric"].startswith("amortized (AmortizedCost)")


def test_unblended_weekly_card_shows_the_purchase_and_the_monthly_fee_as_spikes(deployed, monkeypatch):
    use(monkeypatch, COST_METRIC="UnblendedCost")
    seed(deployed, weekly_requests(CostMetric.UNBLENDED, Breakdown.LINKED_ACCOUNT, False), PLANS)
    deployed.invoke()
    shown, baseline = chart_days(teams_card(deployed)), usage_by_day(CostMetric.UNBLENDED, Extras(credits=()))
    purchase = shown[date(2026, 11, 10)] - baseline[date(2026, 11, 10)]
    fee_day = shown[date(2026, 11, 1)] - baseline[date(2026, 11, 1)]
    assert abs(purchase - (Decimal(36500) + Decimal(3000) * 21 / 30)) <= Decimal("0.01")
    assert abs(fee_day - Decimal(3000)) <= Decimal("0.01")
    assert shown[date(2026, 11, 11)] - baseline[date(2026, 11, 11)] <= Decimal("0.01")  # nothing the next day


@pytest.mark.parametrize(("metric", "fires"), [(CostMetric.UNBLENDED, True), (CostMetric.AMORTIZED, False)])
def test_the_budget_guard_counts_the_purchase_once_unblended_and_spread_amortized(guard, monkeypatch, metric, fires):
    use(monkeypatch, COST_METRIC=metric.value)
    result = run_guard(guard, [organisation_budget()], metric, PLANS)
    baseline = month_to_date(usage_by_day(metric, Extras(credits=())))
    november = Decimal(3000) * 21 / 30 + Decimal(3000)  # B's first month (from the 10th), A's November fee
    plan_part = Decimal(36500) + november if metric is CostMetric.UNBLENDED else (15 + 6) * EFFECTIVE
    assert abs(result["actual"]["org"] - (baseline + plan_part)) <= Decimal("0.000001")
    assert (result["fired"] == ["org:actual:100"]) is fires  # 60,000: the upfront fee alone crosses it


# --- each metric, consistently: weekly card, budget guard, chargeback CSV -------------------------


@pytest.mark.parametrize("metric", list(CostMetric))
def test_each_metric_changes_the_weekly_card_the_guard_and_the_chargeback_alike(guard, monkeypatch, metric):
    use(monkeypatch, COST_METRIC=metric.value, ATTRIBUTION_DIMENSIONS="tag:Team,tag:CostCenter")
    expected = month_to_date(usage_by_day(metric))
    gross = month_to_date(usage_by_day(CostMetric.AMORTIZED if metric.amortized else CostMetric.UNBLENDED))
    assert expected == (gross * (1 - NET_DISCOUNT) if metric.net_of_discounts else gross)

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "weekly-report")
    asked = seed(guard, weekly_requests(metric, Breakdown.LINKED_ACCOUNT, True))
    weekly = guard.invoke()
    assert guard.ce_requests == asked and weekly["cost_explorer_requests"] == 3  # as before issue 19
    assert Decimal(weekly["month_to_date"]) == expected
    assert facts(teams_card(guard))["Cost metric"].startswith(f"{metric.label} ({metric.value})")

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "budget-guard")
    assert run_guard(guard, [organisation_budget(amount="10000000")], metric, DEFAULT_EXTRAS)["actual"]["org"] == (
        expected
    )

    chargeback = run_chargeback(guard, monkeypatch, metric)
    october = synthetic_query_pages(chargeback_request(DIMENSIONS[0], OCTOBER, metric))[0]["ResultsByTime"][0]
    october_usage = sum((Decimal(g["Metrics"][metric.value]["Amount"]) for g in october["Groups"]), Decimal(0))
    rows = chargeback["rows"]
    assert {r["cost_metric"] for r in rows} == {metric.value}
    assert sum(Decimal(r["usage"]) for r in rows) == october_usage.quantize(Decimal("0.01"))


def run_chargeback(deployed: Any, monkeypatch: pytest.MonkeyPatch, metric: CostMetric) -> dict[str, Any]:
    bucket = deployed.aws.create_export_bucket()
    use(monkeypatch, CHARGEBACK_BUCKET=bucket)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "chargeback")
    runtime.export_bucket.cache_clear()
    asked = [chargeback_request(d, OCTOBER, metric) for d in DIMENSIONS]
    asked.append(charges_request(OCTOBER.first, OCTOBER.end, metric, SERVICE))
    seed(deployed, asked)
    before = len(deployed.chat.received)
    result = load_handler("chargeback").lambda_handler({"month": "2026-10", "scheduled_time": "2026-11-01T09:00:00Z"},
                                                       FakeContext("finops-guard-test-chargeback"))  # fmt: skip
    runtime.export_bucket.cache_clear()
    assert result["cost_explorer_requests"] == len(DIMENSIONS) + 1  # one more: the month's credits, refunds, tax
    [card] = [r.json() for r in deployed.chat.received[before:]]
    link = card["attachments"][0]["content"]["actions"][0]["url"]
    result["rows"] = list(csv.DictReader(io.StringIO(requests.get(link, timeout=5).text)))
    result["card"] = card["attachments"][0]["content"]
    return result


# --- credits, refunds and tax, shown --------------------------------------------------------------


def test_the_weekly_card_shows_usage_credits_and_net_month_to_date(deployed, monkeypatch):
    extras = Extras(refunds=(("Amazon Simple Storage Service", "222222222222", 3, Decimal("-120")),),
                    tax_rate=Decimal("0.05"))  # fmt: skip
    seed(deployed, weekly_requests(CostMetric.UNBLENDED, Breakdown.LINKED_ACCOUNT, False), extras)
    result = deployed.invoke()
    usage = Decimal(result["month_to_date"])
    assert usage == month_to_date(usage_by_day(CostMetric.UNBLENDED))  # credits never in spend
    tax = (usage * Decimal("0.05")).quantize(Decimal("0.01"))
    net = usage - Decimal(675) - Decimal(120) + usage * Decimal("0.05")
    line = facts(teams_card(deployed))["Usage, credits, refunds, tax (month-to-date)"]
    assert line == (f"Usage ${usage:,.2f} · Credits -$675.00 · Refunds -$120.00 · Tax ${tax:,.2f}"
                    f" · Net ${net.quantize(Decimal('0.01')):,.2f}")  # fmt: skip


def test_the_chargeback_csv_has_the_months_credits_allocated_like_untagged_spend(guard, monkeypatch):
    use(monkeypatch, ATTRIBUTION_DIMENSIONS="tag:Team,tag:CostCenter")
    result = run_chargeback(guard, monkeypatch, CostMetric.UNBLENDED)
    team_rows = [r for r in result["rows"] if r["dimension"] == "tag:Team"]
    assert sum(Decimal(r["credits"]) for r in team_rows) == Decimal("-45.00") * 31  # every day of October
    assert {r["line"] for r in team_rows if Decimal(r["credits"])} == {"untagged share"}  # proportional (default)
    assert all(Decimal(r["net"]) == sum(Decimal(r[k]) for k in ("usage", "credits", "refunds", "tax"))
               for r in team_rows)  # fmt: skip
    shown = facts(result["card"])
    assert "Credits -$1,395.00" in shown["Usage, credits, refunds, tax"]


# --- budgets honour their basis -------------------------------------------------------------------


def test_a_usage_budget_ignores_the_credit_and_a_net_budget_counts_it(guard, monkeypatch):
    documents = [organisation_budget("before-credits"), organisation_budget("after-credits", basis="net")]
    result = run_guard(guard, documents, CostMetric.UNBLENDED, DEFAULT_EXTRAS)
    assert result["cost_explorer_requests"] == 2  # one per basis: budgets on one basis cost one
    usage = month_to_date(usage_by_day(CostMetric.UNBLENDED))
    assert result["actual"] == {"before-credits": usage, "after-credits": usage - Decimal("45.00") * AS_OF.day}
    query = plan_queries([parse_budget(documents[1])], AS_OF, DEFAULT_LOOKBACK)[0]
    expected = evaluate(collect_budget_costs(query, synthetic_query_pages(query.request()), AS_OF)["after-credits"],
                        AS_OF)  # fmt: skip
    assert result["actual"]["after-credits"] == expected.actual


# --- the breakdown --------------------------------------------------------------------------------


def test_a_chosen_breakdown_is_asked_for_and_titles_the_card(deployed, monkeypatch):
    use(monkeypatch, BREAKDOWN="REGION")
    asked = seed(deployed, weekly_requests(CostMetric.UNBLENDED, Breakdown.REGION, False))
    result = deployed.invoke()
    assert deployed.ce_requests == asked and result["cost_explorer_requests"] == 2
    texts = [b.get("text") for b in teams_card(deployed)["body"]]
    assert "Top regions (MTD · week over week)" in texts and "Top linked accounts (MTD · week over week)" not in texts


@pytest.mark.parametrize(("organisation", "breakdown"), [(False, Breakdown.REGION), (True, Breakdown.LINKED_ACCOUNT)])
def test_without_a_choice_an_organisation_ranks_accounts_and_a_single_account_regions(
    deployed, monkeypatch, organisation, breakdown
):
    monkeypatch.delenv("FINOPSGUARD_BREAKDOWN")
    runtime.settings.cache_clear()
    if organisation:  # the caller (moto's account) becomes the management account
        deployed.aws.client("organizations").create_organization(FeatureSet="ALL")
    runtime._reads_organisation.cache_clear()
    asked = seed(deployed, weekly_requests(CostMetric.UNBLENDED, breakdown, False))
    deployed.invoke()
    assert deployed.ce_requests[0]["GroupBy"][1] == {"Type": "DIMENSION", "Key": breakdown.value}
    assert deployed.ce_requests == asked
    assert f"{breakdown.heading} (MTD · week over week)" in [b.get("text") for b in teams_card(deployed)["body"]]
