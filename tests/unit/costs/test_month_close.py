"""The month-close report's rules (issue 22): the variance and proposal arithmetic exact in Decimal, the
history request, the report from synthetic Cost Explorer answers, provisional then final once each
with in-memory stores, the archive (no AWS, no sockets)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from functools import cache

import pytest
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.cards.month_close import render_month_close, title, variance_percent
from finops_guard.costs.chargeback import Month
from finops_guard.costs.guard_tap import GuardSpend
from finops_guard.costs.mock_data import synthetic_query_pages
from finops_guard.costs.month_close import (
    ACTUAL,
    FINAL,
    FORECAST,
    PROVISIONAL,
    MonthCloseReport,
    Proposal,
    budget_close,
    changes,
    history_request,
    month_history,
    propose,
    reachable_from,
    service_lines,
    variance,
)
from finops_guard.costs.month_close_archive import to_csv, to_html
from finops_guard.costs.month_close_run import (
    Inputs,
    Publishing,
    StoredReport,
    check_after_guard,
    close_after_chargeback,
    closed_month,
    compute,
)
from finops_guard.costs.teams import AttributionDimension
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster

OCT = Month(2026, 10)
ON_THE_1ST = datetime(2026, 11, 1, 9, tzinfo=UTC)
TEAM = AttributionDimension("tag", "Team")


# --- variance and proposal: exact in Decimal --------------------------------------------------------------


def test_variance_is_the_difference_and_its_share_of_the_amount():
    assert variance(D("1120.50"), D("1000")) == (D("120.50"), D("0.1205"))
    assert variance(D("800"), D("1000")) == (D("-200"), D("-0.2"))


def test_a_proposal_rounds_the_plan_up_to_a_whole_unit_and_states_the_change():
    assert propose(D("1000"), D("1149.01"), D("0.12"), D("0.1")) == Proposal(D("1150"), D("150"), D("0.15"))
    assert propose(D("1000"), D("612.4"), D("-0.4"), D("0.1")) == Proposal(D("613"), D("-387"), D("-0.387"))


@pytest.mark.parametrize("ratio", [D("0.1"), D("-0.1"), D("0.05"), D(0)])
def test_no_proposal_within_the_threshold_exactly_at_it_included(ratio):
    assert propose(D("1000"), D("2000"), ratio, D("0.1")) is None


def test_no_proposal_when_the_plan_foresees_no_spend():
    assert propose(D("1000"), D(0), D("-1"), D("0.1")) is None


amounts = st.decimals(min_value=D("0.01"), max_value=D("1e11"), places=2)
spend = st.decimals(min_value=D(0), max_value=D("1e11"), places=6)


@settings(max_examples=500, deadline=None)
@given(amounts, spend, spend, st.decimals(min_value=0, max_value=10, places=3))
def test_any_figures_give_exact_variances_and_proposals_never_below_the_plan(amount, measured, plan, threshold):
    difference, share = variance(measured, amount)
    assert amount + difference == measured  # exact: no cent created or lost
    assert (share > 0) == (measured > amount) and (share < 0) == (measured < amount)
    proposal = propose(amount, plan, share, threshold)
    if proposal is None:
        assert abs(share) <= threshold or plan <= 0
        return
    assert abs(share) > threshold
    assert plan <= proposal.amount < plan + 1 and proposal.amount == proposal.amount.to_integral_value()
    assert amount + proposal.change == proposal.amount
    assert proposal.change_ratio == proposal.change / amount
    variance_percent(proposal.change_ratio)  # any ratio renders


# --- the history request ---------------------------------------------------------------------------------


def test_the_history_request_reaches_a_year_back_while_cost_explorer_keeps_it():
    request = history_request(OCT, date(2026, 11, 1))
    assert request["TimePeriod"] == {"Start": "2025-10-01", "End": "2026-11-01"}
    assert request["Granularity"] == "MONTHLY" and request["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
    assert reachable_from(date(2026, 11, 30)) == Month(2025, 10)


def test_a_month_beyond_cost_explorers_reach_a_year_back_gets_month_over_month_only():
    assert history_request(OCT, date(2026, 12, 2))["TimePeriod"]["Start"] == "2025-11-01"
    assert history_request(OCT, date(2028, 1, 1))["TimePeriod"]["Start"] == "2026-09-01"
    assert history_request(OCT, date(2026, 11, 1), year_ago=False)["TimePeriod"]["Start"] == "2026-09-01"


# --- services and movers -------------------------------------------------------------------------------------


def test_services_are_ranked_by_the_months_spend_and_movers_by_their_change():
    current = {f"s{i}": D(100 - i) for i in range(10)} | {"new": D(5)}
    previous = {f"s{i}": D(100 - i) for i in range(10)} | {"s9": D(10), "gone": D(40)}
    shown, moved = service_lines(current, previous, top=3)
    # s3..s9, new, and gone (spent only the month before)
    assert [s.name for s in shown] == ["s0", "s1", "s2", "Other (9)"]
    assert shown[-1].amount == sum(current.values()) - D(100 + 99 + 98)
    assert [(m.name, m.change) for m in moved] == [("s9", D(81)), ("gone", D(-40)), ("new", D(5))]


# --- budgets at the close ------------------------------------------------------------------------------------


def costs_of(document, daily):
    b = parse_budget({"currency": "USD", **document})
    as_of = date(2026, 10, 31)
    costs = collect_budget_costs(plan_queries([b], as_of)[0], [], as_of)[b.budget_id]
    costs.daily.update(daily)
    costs.currency = "USD"
    return costs


OCTOBER = {date(2026, 10, d): D(40) for d in range(1, 32)}  # 1,240 in the month, flat


def test_a_monthly_budget_closes_on_its_actual_and_plans_next_month():
    close = budget_close(costs_of({"id": "m", "amount": "1000"}, OCTOBER), OCT, threshold=D("0.1"))
    assert (close.basis, close.measured, close.actual) == (ACTUAL, D(1240), D(1240))
    assert (close.variance, close.variance_ratio) == (D(240), D("0.24"))
    assert close.plan_key == "2026-11" and close.plan_likely == D(1200)  # 30 days of a flat 40
    assert close.proposal == Proposal(D(1200), D(200), D("0.2"))


def test_a_quarterly_budget_mid_quarter_closes_on_its_forecast_to_the_quarter_end():
    close = budget_close(costs_of({"id": "q", "amount": "4000", "period": "quarterly"}, OCTOBER), OCT)
    assert close.basis == FORECAST and close.period_key == close.plan_key == "2026-Q4"
    assert close.measured == D(1240 + 40 * 61)  # October's actual and 61 more days of 40
    assert close.proposal is None  # 3,680 of 4,000: within 10 %


def test_a_budget_in_another_currency_is_not_compared():
    costs = costs_of({"id": "e", "amount": "1000", "currency": "EUR"}, OCTOBER)
    close = budget_close(costs, OCT)
    assert close.error and close.proposal is None


# --- the report, from synthetic Cost Explorer answers ---------------------------------------------------------


class Source:
    def __init__(self):
        self.requests = 0
        self.asked = []

    def query(self, request):
        self.asked.append(request)
        for page in synthetic_query_pages(request):
            self.requests += 1
            yield page


BUDGETS = [parse_budget({"id": "org", "name": "Organisation", "amount": "60000", "currency": "USD"}),
           parse_budget({"id": "web", "name": "Web team", "amount": "9000", "currency": "USD",
                         "scope": {"tag": {"Team": ["web"]}}})]  # fmt: skip
INPUTS = Inputs(budgets=BUDGETS, dimensions=(TEAM,), currency="USD")


def test_the_report_states_every_figure_and_the_requests_it_made():
    source = Source()
    report = compute(OCT, now=ON_THE_1ST, costs=source, inputs=INPUTS)
    history = month_history(synthetic_query_pages(history_request(OCT, date(2026, 11, 1))))
    assert report.total == history.totals["2026-10"] and report.previous_total == history.totals["2026-09"]
    assert report.year_ago_reached and report.year_ago_total == history.totals["2025-10"]
    assert [b.budget_id for b in report.budgets] == ["org", "web"]
    assert report.requests == (("13-month history", 1), ("budgets", 1), ("attribution", 1))
    assert report.cost_requests == source.requests == len(source.asked) == 3
    assert report.untagged[0].share is not None and 0 < report.untagged[0].share < 1
    assert report.status == PROVISIONAL and report.estimated  # the synthetic last day is estimated


def test_reused_chargeback_data_saves_its_requests_and_says_so():
    from finops_guard.costs.chargeback import chargeback_request, month_costs

    reused = {TEAM.spec(): month_costs(TEAM, synthetic_query_pages(chargeback_request(TEAM, OCT)))}
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused=reused)
    assert report.requests == (("13-month history", 1), ("budgets", 1)) and report.reused == ("spend by Team",)


def test_the_report_survives_its_json_form_unchanged():
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    assert MonthCloseReport.from_document(json.loads(json.dumps(report.to_document()))) == report


def test_what_changed_lists_the_figures_that_moved_by_at_least_a_cent():
    provisional = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    final = MonthCloseReport.from_document({**provisional.to_document(), "status": FINAL,
                                            "total": str(provisional.total + D("12.345")),
                                            "estimated": False})  # fmt: skip
    assert [(c.label, c.after - c.before) for c in changes(provisional, final)] == [("Total", D("12.345"))]
    same = MonthCloseReport.from_document({**provisional.to_document(), "total": str(provisional.total + D("0.001"))})
    assert changes(provisional, same) == ()


# --- provisional then final, once each ----------------------------------------------------------------------------


class MemoryStore:
    def __init__(self):
        self.items: dict[tuple[str, str], StoredReport] = {}

    def get(self, month):
        return {s: v for (m, s), v in self.items.items() if m == month}

    def create(self, report, now):
        key = (report.month, report.status)
        if key in self.items:
            return False
        self.items[key] = StoredReport(report, False)
        return True

    def mark_announced(self, month, status):
        self.items[(month, status)] = StoredReport(self.items[(month, status)].report, True)


class MemoryArchive:
    def __init__(self):
        self.versions: dict[str, list[str]] = {}

    def put_text(self, key, text, content_type):
        self.versions.setdefault(key, []).append(text)
        return f"v{len(self.versions[key])}"

    def download_link(self, key, version_id, expires_in_s):
        return f"https://bucket.example/{key}?versionId={version_id}&expires={expires_in_s}"


@pytest.fixture
def world():
    outbox, poster, archive, store = MemoryOutbox(), ScriptedPoster({}), MemoryArchive(), MemoryStore()
    publishing = Publishing(archive, outbox, poster, ["teams", "slack"], "Europe/Madrid", "test")
    return store, publishing, poster, archive


def final_spend() -> GuardSpend:
    spend = GuardSpend()
    spend.seen_days = {date(2026, 10, 31), date(2026, 11, 3)}
    spend.estimated_days = {date(2026, 11, 3)}
    return spend


def test_the_chargeback_posts_the_provisional_report_once_and_reruns_post_nothing(world):
    store, publishing, poster, archive = world
    first = close_after_chargeback(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused={}, store=store,
                                   publishing=publishing)  # fmt: skip
    again = close_after_chargeback(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused={}, store=store,
                                   publishing=publishing)  # fmt: skip
    assert first.action == "posted provisional" and poster.posted == [
        "month-close/2026-10/provisional/teams",
        "month-close/2026-10/provisional/slack",
    ]
    assert again.action == "provisional report already posted" and again.cost_requests == 0
    assert list(archive.versions) == ["chargeback/2026-10/month-close.csv", "chargeback/2026-10/month-close.html"]


def test_the_guard_posts_the_final_report_once_when_cost_explorer_stops_estimating(world):
    store, publishing, poster, _ = world
    close_after_chargeback(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused={}, store=store,
                           publishing=publishing)  # fmt: skip
    nov_2 = datetime(2026, 11, 3, 9, tzinfo=UTC)
    still = GuardSpend(seen_days={date(2026, 10, 31)}, estimated_days={date(2026, 10, 31)})
    waiting = check_after_guard(date(2026, 11, 2), still, now=nov_2, costs=Source(), inputs=INPUTS, store=store,
                                publishing=publishing)  # fmt: skip
    assert waiting.action == "waiting for Cost Explorer to finalise the month" and waiting.cost_requests == 0

    final_answers = FinalSource()
    nov_4 = datetime(2026, 11, 4, 9, tzinfo=UTC)
    final = check_after_guard(date(2026, 11, 3), final_spend(), now=nov_4, costs=final_answers, inputs=INPUTS,
                              store=store, publishing=publishing)  # fmt: skip
    assert final.action == "posted final" and final.report is not None and final.report.status == FINAL
    assert final.report.provisional_posted and final.cost_requests == 3
    again = check_after_guard(date(2026, 11, 4), final_spend(), now=nov_4, costs=Source(), inputs=INPUTS,
                              store=store, publishing=publishing)  # fmt: skip
    assert again.action == "final report already posted"
    assert poster.posted[2:] == ["month-close/2026-10/final/teams", "month-close/2026-10/final/slack"]


class FinalSource(Source):
    """Cost Explorer once the month is final: nothing marked estimated, the total up by 25.00."""

    def query(self, request):
        for page in super().query(request):
            for result in page["ResultsByTime"]:
                result["Estimated"] = False
            yield page


def test_without_the_guards_pages_the_history_request_alone_tells_whether_the_month_is_final(world):
    store, publishing, _, _ = world
    close_after_chargeback(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused={}, store=store,
                           publishing=publishing)  # fmt: skip
    source = Source()  # its MONTHLY answer for October: the synthetic last day is estimated
    outcome = check_after_guard(date(2026, 11, 2), GuardSpend(), now=datetime(2026, 11, 3, tzinfo=UTC),
                                costs=source, inputs=INPUTS, store=store, publishing=publishing)  # fmt: skip
    assert outcome.action == "waiting for Cost Explorer to finalise the month"
    assert outcome.cost_requests == 1 and source.asked == [history_request(OCT, date(2026, 11, 3))]


def test_when_the_guards_pages_still_estimate_the_month_the_check_is_free(world):
    store, publishing, _, _ = world
    close_after_chargeback(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS, reused={}, store=store,
                           publishing=publishing)  # fmt: skip
    source = Source()
    still = GuardSpend(seen_days={date(2026, 10, 31)}, estimated_days={date(2026, 10, 31)})
    outcome = check_after_guard(date(2026, 11, 2), still, now=datetime(2026, 11, 3, tzinfo=UTC), costs=source,
                                inputs=INPUTS, store=store, publishing=publishing)  # fmt: skip
    assert outcome.action == "waiting for Cost Explorer to finalise the month" and source.asked == []


def test_a_stored_report_not_yet_announced_is_posted_again_without_asking_cost_explorer(world):
    store, publishing, poster, _ = world
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    store.create(report, ON_THE_1ST)  # a run that crashed before posting
    source = Source()
    outcome = check_after_guard(date(2026, 11, 1), final_spend(), now=datetime(2026, 11, 2, tzinfo=UTC),
                                costs=source, inputs=INPUTS, store=store, publishing=publishing)  # fmt: skip
    assert outcome.action == "posted the stored provisional report again" and source.asked == []
    assert poster.posted == ["month-close/2026-10/provisional/teams", "month-close/2026-10/provisional/slack"]
    assert store.get("2026-10")[PROVISIONAL].announced


def test_the_guard_waits_for_the_chargeback_on_the_months_last_day_and_stops_after_28_days():
    assert closed_month(date(2026, 10, 31)) == OCT
    assert closed_month(date(2026, 11, 27)) == OCT
    assert closed_month(date(2026, 11, 28)) is None
    assert closed_month(date(2026, 12, 1)) == Month(2026, 11)


def test_the_guard_posts_the_provisional_report_itself_when_the_chargebacks_is_a_day_late(world):
    store, publishing, poster, _ = world
    outcome = check_after_guard(date(2026, 11, 1), GuardSpend(seen_days={date(2026, 10, 31)},
                                estimated_days={date(2026, 10, 31)}), now=datetime(2026, 11, 2, tzinfo=UTC),
                                costs=Source(), inputs=INPUTS, store=store, publishing=publishing)  # fmt: skip
    assert outcome.action == "posted provisional" and len(poster.posted) == 2
    on_the_day = check_after_guard(date(2026, 10, 31), GuardSpend(), now=ON_THE_1ST, costs=Source(),
                                   inputs=INPUTS, store=MemoryStore(), publishing=publishing)  # fmt: skip
    assert on_the_day.action.startswith("waiting for the chargeback")


# --- the card and the archive --------------------------------------------------------------------------------------


def test_the_card_names_the_month_its_status_and_links_the_archive():
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    links = ("https://b.example/r.html", "https://b.example/r.csv")
    card = render_month_close(report, "teams", links=links, expires_at=ON_THE_1ST, timezone="UTC")
    content = card["attachments"][0]["content"]
    assert content["body"][0]["text"] == title(report) == "Month close · Oct 2026 · provisional"
    assert [a["url"] for a in content["actions"]] == list(links)
    text = json.dumps(card, ensure_ascii=False)
    assert "Web team" in text and "Cost Explorer requests for this report: 3" in text
    slack = render_month_close(report, "slack", links=links, expires_at=ON_THE_1ST, timezone="UTC")
    assert len(slack["blocks"]) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in slack["blocks"])


def test_the_csv_has_one_figure_per_row_in_machine_text():
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    total = next(r for r in rows if r["section"] == "summary" and r["metric"] == "actual")
    assert total["value"] == f"{report.total:.2f}" and total["month"] == "2026-10"
    assert {r["section"] for r in rows} >= {"summary", "budget", "plan", "service", "untagged", "requests"}


def test_the_html_page_is_self_contained_and_escapes_every_text():
    report = compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
    hostile = MonthCloseReport.from_document({**report.to_document(), "budgets": [
        {**report.to_document()["budgets"][0], "name": "<script>alert(1)</script>"}]})  # fmt: skip
    page = to_html(hostile, "Europe/Madrid", "test")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "default-src 'none'" in page and "http" not in page.split("<body>")[1]


def test_a_month_with_no_cost_data_says_so_rather_than_zero():
    empty = MonthCloseReport.from_document({**compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=INPUTS)
                                            .to_document(), "has_cost_data": False, "total": "0"})  # fmt: skip
    card = render_month_close(empty, "teams", links=("https://a", "https://b"), expires_at=ON_THE_1ST, timezone="UTC")
    assert "no cost data yet" in json.dumps(card)


money = st.decimals(min_value=D("-1e9"), max_value=D("1e9"), places=4)
positive = st.decimals(min_value=D("0.01"), max_value=D("1e9"), places=2)


@st.composite
def budget_documents(draw):
    amount, measured, plan = draw(positive), draw(money), draw(money)
    low, high = sorted((draw(money), draw(money)))
    proposal = propose(
        amount, plan, variance(measured, amount)[1], draw(st.decimals(min_value=0, max_value=2, places=2))
    )
    return {
        "budget_id": draw(st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)), "name": draw(st.text(max_size=60)),
        "currency": draw(st.sampled_from(["USD", "JPY", "KWD", "EUR"])), "amount": str(amount),
        "period_key": draw(st.sampled_from(["2026-10", "2026-Q4", "2026"])), "actual": str(draw(money)),
        "basis": draw(st.sampled_from([ACTUAL, FORECAST])), "measured": str(measured),
        "plan_key": draw(st.sampled_from(["2026-11", "2026-Q4", "2027"])), "plan_likely": str(plan),
        "plan_low": str(low), "plan_high": str(high), "level": "0.8",
        "error": draw(st.none() | st.text(max_size=30)),
        "proposal": None if proposal is None else {"amount": str(proposal.amount), "change": str(proposal.change),
                                                   "change_ratio": str(proposal.change_ratio)},
    }  # fmt: skip


@cache
def base_document() -> dict:
    return compute(OCT, now=ON_THE_1ST, costs=Source(), inputs=Inputs(dimensions=(TEAM,))).to_document()


@settings(max_examples=100, deadline=None)
@given(st.lists(budget_documents(), max_size=14), money, st.none() | money, st.booleans(), st.booleans())
def test_any_report_renders_its_card_csv_and_page_without_raising(budgets, total, previous, estimated, final):
    document = {**base_document(), "budgets": budgets, "total": str(total), "estimated": estimated,
                "previous_total": None if previous is None else str(previous),
                "status": FINAL if final else PROVISIONAL}  # fmt: skip
    report = MonthCloseReport.from_document(document)
    for channel in ("teams", "slack"):
        card = render_month_close(report, channel, links=("https://a", "https://b"), expires_at=ON_THE_1ST,
                                  timezone="Asia/Tokyo")  # fmt: skip
        assert len(json.dumps(card).encode()) < 28 * 1024 or channel == "slack"
    to_csv(report)
    to_html(report, "UTC", "test")


def test_the_report_reads_usage_in_the_deployments_metric_as_the_weekly_card_does():
    from finops_guard.costs.cost_metric import CostMetric
    from finops_guard.costs.record_types import usage_only

    source = Source()
    inputs = Inputs(budgets=BUDGETS, dimensions=(TEAM,), currency="USD", metric=CostMetric.NET_AMORTIZED)
    report = compute(OCT, now=ON_THE_1ST, costs=source, inputs=inputs)
    assert {tuple(r["Metrics"]) for r in source.asked} == {("NetAmortizedCost",)}
    history = history_request(OCT, date(2026, 11, 1), metric=CostMetric.NET_AMORTIZED)
    assert source.asked[0] == history and history["Filter"] == usage_only()  # no credit nets into the total
    assert report.total == month_history(synthetic_query_pages(history), CostMetric.NET_AMORTIZED).totals["2026-10"]
    assert report.metric == "NetAmortizedCost" and MonthCloseReport.from_document(report.to_document()) == report
    card = json.dumps(render_month_close(report, "teams", links=("https://a", "https://b"), expires_at=ON_THE_1ST,
                                         timezone="UTC"))  # fmt: skip
    assert "net amortized (NetAmortizedCost), usage only" in card
    assert "cost metric (usage only),NetAmortizedCost" in to_csv(report)
