"""The budget guard's rules, with in-memory stores (no AWS, no sockets)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.delivery import DeliveryResult
from finops_guard.costs.budget_costs import BudgetCosts, collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import (
    AlertRecord,
    alert_key,
    budget_exceeded_detail,
    decide,
    evaluate,
    run_budget_guard,
)
from finops_guard.costs.budgets import LINKED_ACCOUNT, SERVICE, Dimension, parse_budget
from finops_guard.costs.cards.budget_alert import render_alert

from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster

AS_OF = date(2026, 11, 15)
NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)


def budget(budget_id="b", **changes):
    return parse_budget({"id": budget_id, "amount": "1000", "currency": "USD", **changes})


def costs_for(b, daily_amount, *, days=60, currency="USD", contributors=None):
    costs = BudgetCosts(b, date(2026, 11, 1), SERVICE, currency=currency)
    for i in range(days):
        costs.daily[AS_OF - timedelta(days=i)] = D(daily_amount)
    costs.contributors.update(contributors or {})
    return costs


# --- planning: one request per distinct grouping ---------------------------------------------


def fifty_budgets():
    accounts = [budget(f"acct-{i}", scope={"account": [f"{i:012d}"]}) for i in range(20)]
    services = [budget(f"svc-{i}", scope={"service": [f"Service {i}"]}) for i in range(20)]
    teams = [budget(f"team-{i}", scope={"tag": {"team": [f"t{i}"]}}) for i in range(10)]
    return accounts + services + teams


def test_fifty_budgets_over_three_scope_kinds_need_at_most_three_requests():
    queries = plan_queries(fifty_budgets(), AS_OF, 28)
    assert len(queries) <= 3
    assert sum(len(q.budgets) for q in queries) == 50
    assert {frozenset(q.group_by) for q in queries} == {
        frozenset({LINKED_ACCOUNT, SERVICE}),
        frozenset({Dimension("TAG", "team"), SERVICE}),
    }


def test_organisation_budgets_ride_along_on_an_existing_request():
    queries = plan_queries([budget("org"), budget("a", scope={"account": ["111111111111"]})], AS_OF, 28)
    assert len(queries) == 1 and len(queries[0].budgets) == 2


def test_a_scope_over_three_dimensions_gets_its_own_filtered_request():
    scope = {"account": ["111111111111"], "service": ["Amazon Simple Storage Service"], "tag": {"team": ["web"]}}
    wide = budget("wide", scope=scope)
    queries = plan_queries([wide, budget("org")], AS_OF, 28)
    filtered = [q for q in queries if q.filter is not None]
    assert len(queries) == 2 and filtered[0].filter == wide.cost_explorer_filter()
    usage_only = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund", "Tax"]}}}
    assert filtered[0].request()["Filter"] == {"And": [*wide.cost_explorer_filter()["And"], usage_only]}


def test_query_reaches_back_to_the_longest_period_start_and_ends_exclusive():
    annual = budget("year", period="annual")
    query = plan_queries([annual, budget("month")], AS_OF, 28)[0]
    assert query.start == date(2026, 1, 1) and query.end == date(2026, 11, 16)
    early = plan_queries([budget("month")], date(2026, 11, 3), 28)[0]
    assert early.start == date(2026, 10, 7)  # 28-day trend window reaches into October


# --- collecting costs per budget -------------------------------------------------------------


def page(rows, day=AS_OF, unit="USD"):
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                "Groups": [
                    {"Keys": list(keys), "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": unit}}}
                    for keys, amount in rows
                ],
            }
        ]
    }


def test_costs_are_summed_into_every_budget_whose_scope_matches():
    web = budget("web", scope={"tag": {"team": ["web"]}})
    org = budget("org")
    query = plan_queries([web, org], AS_OF, 28)[0]
    assert query.group_by == (Dimension("TAG", "team"), SERVICE)
    rows = [(("team$web", "EC2"), "10.50"), (("team$data", "EC2"), "4"), (("team$", "S3"), "1.25")]
    result = collect_budget_costs(query, [page(rows)], AS_OF)
    assert result["web"].daily[AS_OF] == D("10.50")
    assert result["org"].daily[AS_OF] == D("15.75")
    assert dict(result["web"].contributors) == {"EC2": D("10.50")}


def test_two_dimension_scope_must_match_both():
    ec2, s3 = "Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service"
    both = budget("both", scope={"account": ["111111111111"], "service": [ec2]})
    query = plan_queries([both], AS_OF, 28)[0]
    rows = [(("111111111111", ec2), "5"), (("111111111111", s3), "7"), (("222222222222", ec2), "9")]
    assert collect_budget_costs(query, [page(rows)], AS_OF)["both"].daily[AS_OF] == D("5")


# --- evaluation ------------------------------------------------------------------------------


def test_threshold_exactly_at_the_boundary_counts_as_crossed():
    status = evaluate(costs_for(budget(), "50"), AS_OF)  # 15 days x 50 = 750 = 75 %
    assert status.actual == D(750) and status.consumption("actual") == D(75)
    assert status.crossed("actual") == (D(50), D(75))


def test_forecast_kind_uses_the_likely_period_end():
    status = evaluate(costs_for(budget(), "30"), AS_OF)  # 450 actual, 900 forecast
    assert status.crossed("actual") == ()
    assert status.forecast.likely == D(900) and status.crossed("forecasted") == (D(50), D(75), D(90))
    assert status.runway_days == D(550) / D(30)  # (1000 - 450) / 30 per day


def test_currency_mismatch_is_refused_not_compared():
    status = evaluate(costs_for(budget(currency="EUR"), "500"), AS_OF)
    assert "refusing to compare" in status.error
    assert status.crossed("actual") == () and not status.hard_limit_exceeded


def test_leap_day_and_quarter_periods_count_their_own_days():
    q = budget(period="quarterly")
    costs = BudgetCosts(q, date(2028, 1, 1), SERVICE, currency="USD")
    for i in range(120):
        costs.daily[date(2028, 3, 31) - timedelta(days=i)] = D(1)
    status = evaluate(costs, date(2028, 3, 31))
    assert status.period.key == "2028-Q1" and status.actual == D(91) and status.forecast.remaining_days == 0


# --- decisions -------------------------------------------------------------------------------


def record(status, kind, threshold, amount="1000", delivered=True):
    key = alert_key(status.period.key, kind, D(threshold))
    return key, AlertRecord("b", key, D(amount), ("m/teams",), delivered, "")


def test_first_crossing_fires_one_alert_for_all_new_thresholds():
    status = evaluate(costs_for(budget(alert_on=["actual"]), "62"), AS_OF)  # 930 = 93 %
    decisions = decide(status, {})
    assert [(f.kind, f.thresholds, f.threshold) for f in decisions.fire] == [("actual", (D(50), D(75), D(90)), D(90))]


def test_already_alerted_thresholds_do_not_fire_again():
    status = evaluate(costs_for(budget(alert_on=["actual"]), "62"), AS_OF)
    existing = dict(record(status, "actual", t) for t in (50, 75, 90))
    assert decide(status, existing).fire == []


def test_raising_the_amount_rearms_thresholds_no_longer_crossed():
    status = evaluate(costs_for(budget(amount="2000", alert_on=["actual"]), "62"), AS_OF)  # 930 = 46.5 %
    existing = dict(record(status, "actual", t) for t in (50, 75, 90))
    decisions = decide(status, existing)
    assert sorted(r.key.split("#")[2] for r in decisions.rearm) == ["50", "75", "90"]


def test_without_a_raise_nothing_rearms_even_if_spend_dropped():
    status = evaluate(costs_for(budget(alert_on=["forecasted"]), "10"), AS_OF)
    existing = dict([record(status, "forecasted", 90)])
    assert decide(status, existing).rearm == []


def test_undelivered_alert_is_redelivered_not_refired():
    status = evaluate(costs_for(budget(alert_on=["actual"]), "62"), AS_OF)
    existing = dict(record(status, "actual", t, delivered=(t != 90)) for t in (50, 75, 90))
    decisions = decide(status, existing)
    assert decisions.fire == [] and [r.key for r in decisions.redeliver] == ["2026-11#actual#90"]


def test_hard_limit_fires_once_at_100_percent_actual():
    status = evaluate(costs_for(budget(enforce_hard_limit=True, alert_on=["actual"]), "70"), AS_OF)
    fired = decide(status, {}).fire
    assert [f.kind for f in fired] == ["actual", "hard-limit"]
    key = alert_key("2026-11", "hard-limit")
    again = decide(status, {key: AlertRecord("b", key, D(1000), (), True, "")}).fire
    assert [f.kind for f in again] == ["actual"]


def test_budget_exceeded_event_detail_has_the_exact_shape():
    b = budget(
        "prod", name="Production", scope={"account": ["111111111111"]}, enforce_hard_limit=True, owner="ops@x.io"
    )
    status = evaluate(costs_for(b, "70"), AS_OF)
    assert budget_exceeded_detail(status) == {
        "budgetId": "prod",
        "budgetName": "Production",
        "scope": {"account": ["111111111111"]},
        "period": {
            "kind": "monthly",
            "key": "2026-11",
            "start": "2026-11-01",
            "end": "2026-11-30",
            "asOf": "2026-11-15",
        },
        "currency": "USD",
        "amount": "1000",
        "actual": "1050.00",
        "forecast": "2100.00",
        "consumptionPercent": "105.0",
        "owner": "ops@x.io",
    }


# --- the whole run, in memory ----------------------------------------------------------------


class MemoryAlertStore:
    def __init__(self):
        self.records = {}
        self.statuses = {}

    def get_alerts(self, keys):
        return {k: self.records[k] for k in keys if k in self.records}

    def record_alerts(self, records, expires_at):
        if any((r.budget_id, r.key) in self.records for r in records):
            return False
        for r in records:
            self.records[(r.budget_id, r.key)] = r
        return True

    def mark_delivered(self, budget_id, key):
        r = self.records[(budget_id, key)]
        self.records[(budget_id, key)] = AlertRecord(r.budget_id, r.key, r.amount, r.message_ids, True, r.created_at)

    def rearm(self, record):
        return self.records.pop((record.budget_id, record.key), None) is not None

    def put_statuses(self, statuses, now):
        self.statuses.update({s.budget.budget_id: s for s in statuses})


class FlatCosts:
    """Every group of every request costs `daily` per day (one page per request)."""

    def __init__(self, daily):
        self.daily, self.requests = D(daily), 0

    def query(self, request):
        self.requests += 1
        start = date.fromisoformat(request["TimePeriod"]["Start"])
        end = date.fromisoformat(request["TimePeriod"]["End"])
        keys = [["111111111111", "EC2"]]
        results = []
        while start < end:
            results.append(
                {
                    "TimePeriod": {"Start": start.isoformat(), "End": (start + timedelta(days=1)).isoformat()},
                    "Groups": [{"Keys": k, "Metrics": {"UnblendedCost": {"Amount": str(self.daily), "Unit": "USD"}}}
                               for k in keys],
                }
            )  # fmt: skip
            start += timedelta(days=1)
        yield {"ResultsByTime": results}


class Events:
    def __init__(self):
        self.sent = []

    def budget_exceeded(self, detail):
        self.sent.append(detail)


def run(budgets, store, outbox, poster, events, daily="62", now=NOW):
    return run_budget_guard(
        budgets, now=now, costs=FlatCosts(daily), store=store, outbox=outbox, poster=poster,
        events=events, render=render_alert, timezone="UTC",
    )  # fmt: skip


@pytest.fixture
def world():
    return MemoryAlertStore(), MemoryOutbox(), ScriptedPoster({}), Events()


def test_rerun_does_not_repeat_an_alert(world):
    store, outbox, poster, events = world
    budgets = [budget(alert_on=["actual"], notify=["teams", "email"])]
    first = run(budgets, store, outbox, poster, events)
    assert [f.threshold for f in first.fired] == [D(90)]
    assert sorted(poster.posted) == [
        "budget-alert/b/2026-11/actual/90@1000/email",
        "budget-alert/b/2026-11/actual/90@1000/teams",
    ]
    second = run(budgets, store, outbox, poster, events)
    assert second.fired == [] and len(poster.posted) == 2
    assert all(r.delivered for r in store.records.values())


def test_new_period_rearms(world):
    store, outbox, poster, events = world
    budgets = [budget(alert_on=["actual"])]
    run(budgets, store, outbox, poster, events, daily="70")
    december = run(budgets, store, outbox, poster, events, daily="70", now=datetime(2026, 12, 21, 7, tzinfo=UTC))
    assert [(f.status.period.key, f.threshold) for f in december.fired] == [("2026-12", D(100))]


def test_raising_the_amount_rearms_then_alerts_again_at_the_new_amount(world):
    store, outbox, poster, events = world
    run([budget(alert_on=["actual"])], store, outbox, poster, events, daily="62")  # 93 % of 1000
    raised = run([budget(amount="1500", alert_on=["actual"])], store, outbox, poster, events, daily="62")
    assert {r.key for r in raised.rearmed} == {"2026-11#actual#75", "2026-11#actual#90"}
    assert [f.threshold for f in raised.fired] == []  # 62 % of 1500: 50 % stays alerted
    later = run([budget(amount="1500", alert_on=["actual"])], store, outbox, poster, events, daily="90")
    assert [f.threshold for f in later.fired] == [D(90)]
    assert poster.posted[-1] == "budget-alert/b/2026-11/actual/90@1500/teams"


def test_failed_delivery_is_retried_by_the_next_run_without_refiring(world):
    from finops_guard.core.delivery import PostFailed

    store, outbox, _, events = world
    failing = ScriptedPoster({"teams": PostFailed("teams: HTTP 500 after 4 attempts")})
    outcome = run([budget(alert_on=["actual"])], store, outbox, failing, events)
    assert outcome.delivery.failed and not store.records[("b", "2026-11#actual#90")].delivered
    healthy = ScriptedPoster({})
    again = run([budget(alert_on=["actual"])], store, outbox, healthy, events)
    assert again.fired == [] and healthy.posted == ["budget-alert/b/2026-11/actual/90@1000/teams"]
    assert store.records[("b", "2026-11#actual#90")].delivered


def test_hard_limit_publishes_one_event_per_period(world):
    store, outbox, poster, events = world
    budgets = [budget(enforce_hard_limit=True, alert_on=["actual"])]
    run(budgets, store, outbox, poster, events, daily="70")
    run(budgets, store, outbox, poster, events, daily="80")
    assert len(events.sent) == 1 and events.sent[0]["consumptionPercent"] == "105.0"


def test_statuses_are_stored_for_the_weekly_card(world):
    store, outbox, poster, events = world
    run([budget("x"), budget("y", amount="5000")], store, outbox, poster, events, daily="10")
    assert set(store.statuses) == {"x", "y"} and store.statuses["y"].actual == D(150)


def test_alert_cards_carry_band_gauge_contributors_and_runway():
    b = budget(name="Prod", alert_on=["forecasted"], notify=["teams", "slack", "email"])
    status = evaluate(costs_for(b, "40", contributors={"EC2": D(400), "S3": D(200)}), AS_OF)
    firing = decide(status, {}).fire[0]
    teams = render_alert(firing, "teams", "UTC")["attachments"][0]["content"]
    text = str(teams)
    assert teams["version"] == "1.5" and any(e["type"] == "Chart.Gauge" for e in teams["body"])
    assert "80 % band" in text and "Runway" in text and "EC2" in text
    assert render_alert(firing, "slack", "UTC")["text"] == "Budget alert: Prod — forecast crossed 100 %"
    email = render_alert(firing, "email", "UTC")
    assert email["subject"].startswith("Budget alert: Prod") and "EC2: $400.00" in email["message"]


def test_delivery_result_default_is_empty():
    assert DeliveryResult().delivered == []


def test_many_alerts_in_one_run_become_one_digest_per_channel(world):
    from finops_guard.costs.cards.budget_alert import render_digest

    store, outbox, poster, events = world
    budgets = [budget(f"b{i}", alert_on=["actual"], notify=["teams", "email"]) for i in range(8)]

    def guard():
        return run_budget_guard(
            budgets, now=NOW, costs=FlatCosts("62"), store=store, outbox=outbox, poster=poster, events=events,
            render=render_alert, render_digest=render_digest, timezone="UTC",
        )  # fmt: skip

    first = guard()
    assert len(first.fired) == 8
    assert sorted(p.split("/")[0] + "/" + p.split("/")[-1] for p in poster.posted) == [
        "budget-digest/email",
        "budget-digest/teams",
    ]
    assert all(r.delivered for r in store.records.values())
    assert guard().fired == [] and len(poster.posted) == 2
    digest = render_digest(first.fired, "teams", "UTC")["attachments"][0]["content"]
    assert digest["body"][0]["text"] == "8 budget alerts, most consumed first"
    assert len(digest["body"][1]["facts"]) == 8 + 1  # and the cost metric they are in
    metric = {"title": "Cost metric", "value": "unblended (UnblendedCost) · basis usage"}
    assert digest["body"][1]["facts"][-1] == metric
