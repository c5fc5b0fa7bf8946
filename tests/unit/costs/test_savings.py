"""Savings recommendations: status rules, ROI arithmetic, summary, team assignment and the refresh
use case with in-memory ports (no AWS, no sockets)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.periods import DateRange
from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.savings import (
    ACCEPTED,
    DISMISSED,
    IMPLEMENTED,
    OPEN,
    RESOLVED_UPSTREAM,
    CommitmentKpi,
    Recommendation,
    RecommendationNotFound,
    Roi,
    StatusConflict,
    Transition,
    TransitionRefused,
    applied,
    assign_team,
    change_status,
    commitment_kpi,
    completed_roi,
    daily_series,
    from_hub,
    hub_amount,
    measure_roi,
    plan_transition,
    realised_in_month,
    roi_due,
    roi_request,
    roi_windows,
    summarize,
)
from finops_guard.costs.savings_refresh import refresh
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import Routing, TeamRoute, parse_dimension

from tests.conftest import load_event

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
AS_OF = date(2026, 11, 15)
DAY = date(2026, 11, 1)  # implemented on


def rec(rec_id="r1", status=OPEN, savings="10.00", **changes) -> Recommendation:
    base = Recommendation(
        rec_id=rec_id,
        resource_id=f"i-{rec_id}",
        account_id="111111111111",
        region="eu-west-1",
        action_type="Rightsize",
        resource_type="Ec2Instance",
        summary="Rightsize m5.xlarge → m5.large",
        estimated_monthly_savings=D(savings),
        effort="Low",
        first_seen="2026-11-01T06:00:00Z",
        last_seen="2026-11-01T06:00:00Z",
        status=status,
    )
    return replace(base, **changes)


def series(before: str, after: str, *, day: date = DAY, on_day: str = "999") -> dict[date, D]:
    windows = roi_windows(day)
    daily = {d: D(before) for d in windows.before.each_day()}
    daily.update({d: D(after) for d in windows.after.each_day()})
    daily[day] = D(on_day)
    return daily


# --- status machine -------------------------------------------------------------------------------


def test_accepting_an_open_item_records_who_when_and_from_what():
    move = plan_transition(rec(), ACCEPTED, at=NOW, by="cli:ana")
    assert (move.from_status, move.to_status) == (OPEN, ACCEPTED)
    assert move.entry.to_document() == {"status": "accepted", "at": "2026-11-16T06:00:00Z", "by": "cli:ana",
                                        "from": "open"}  # fmt: skip


def test_an_open_item_cannot_be_implemented_without_being_accepted_first():
    with pytest.raises(TransitionRefused, match="accept it first"):
        plan_transition(rec(), IMPLEMENTED, at=NOW, by="cli:ana", implemented_on=DAY)


def test_implementing_an_accepted_item_records_the_day():
    move = plan_transition(rec(status=ACCEPTED), IMPLEMENTED, at=NOW, by="cli:ana", implemented_on=DAY)
    done = applied(rec(status=ACCEPTED), move)
    assert (done.status, done.implemented_on, done.history[-1].from_status) == (IMPLEMENTED, DAY, ACCEPTED)


@pytest.mark.parametrize("day, message", [(None, "needs the date"), (date(2026, 11, 17), "in the future")])
def test_implementing_needs_a_day_that_is_not_in_the_future(day, message):
    with pytest.raises(TransitionRefused, match=message):
        plan_transition(rec(status=ACCEPTED), IMPLEMENTED, at=NOW, by="x", implemented_on=day)


def test_implementing_before_the_day_it_was_first_seen_is_allowed():
    # Done before the stage was deployed, or while Cost Optimization Hub still listed it: still real.
    move = plan_transition(rec(status=ACCEPTED), IMPLEMENTED, at=NOW, by="x", implemented_on=date(2026, 10, 31))

    assert move.implemented_on == date(2026, 10, 31)


@pytest.mark.parametrize(
    ("day", "refused"), [(date(1970, 1, 1), True), (date(2025, 10, 15), True), (date(2025, 10, 16), False)]
)
def test_implementing_reaches_back_13_months_at_most(day, refused):
    item = rec(status=ACCEPTED)
    if refused:
        with pytest.raises(TransitionRefused, match="13 months back"):
            plan_transition(item, IMPLEMENTED, at=NOW, by="x", implemented_on=day)
    else:
        assert plan_transition(item, IMPLEMENTED, at=NOW, by="x", implemented_on=day).implemented_on == day


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_dismissing_needs_a_reason(reason):
    with pytest.raises(TransitionRefused, match="needs a reason"):
        plan_transition(rec(), DISMISSED, at=NOW, by="x", reason=reason)


@pytest.mark.parametrize(
    "start, to",
    [(OPEN, ACCEPTED), (OPEN, DISMISSED), (ACCEPTED, IMPLEMENTED), (ACCEPTED, DISMISSED), (ACCEPTED, OPEN),
     (DISMISSED, OPEN)],
)  # fmt: skip
def test_the_operator_moves_the_status_machine_allows(start, to):
    move = plan_transition(rec(status=start), to, at=NOW, by="x", reason="why", implemented_on=DAY)
    assert (move.from_status, move.to_status, move.entry.status) == (start, to, to)


@pytest.mark.parametrize(
    "start, to, message",
    [
        (OPEN, OPEN, "already open"),
        (DISMISSED, ACCEPTED, "can move to open, not accepted"),
        (DISMISSED, IMPLEMENTED, "can move to open, not implemented"),
        (IMPLEMENTED, OPEN, "final"),
        (IMPLEMENTED, DISMISSED, "final"),
        (RESOLVED_UPSTREAM, OPEN, "reopens by itself"),
        (OPEN, RESOLVED_UPSTREAM, "can move to accepted, dismissed, not resolved-upstream"),
        (OPEN, "done", "unknown status"),
    ],
)
def test_the_operator_moves_the_status_machine_refuses(start, to, message):
    with pytest.raises(TransitionRefused, match=message):
        plan_transition(rec(status=start), to, at=NOW, by="x", reason="why", implemented_on=DAY)


class MemoryStore:
    """The recommendations table's contract in memory: conditional moves, upserts that never touch
    status, first_seen or history, ROI stored once."""

    def __init__(self, *recs: Recommendation) -> None:
        self.items = {r.rec_id: r for r in recs}
        self.writes = 0
        self.interfere: dict[str, str] = {}  # rec_id -> status another writer sets just before our write

    def all(self):
        return list(self.items.values())

    def get(self, rec_id):
        return self.items.get(rec_id)

    def upsert(self, listed, now):
        self.writes += 1
        old = self.items.get(listed.rec_id)
        if old is None:
            self.items[listed.rec_id] = listed
            return None
        self.items[listed.rec_id] = replace(listed, status=old.status, first_seen=old.first_seen,
                                            history=old.history, status_reason=old.status_reason,
                                            implemented_on=old.implemented_on, roi=old.roi)  # fmt: skip
        return old

    def transition(self, move: Transition, now):
        if move.rec_id in self.interfere:
            self.items[move.rec_id] = replace(self.items[move.rec_id], status=self.interfere.pop(move.rec_id))
        current = self.items.get(move.rec_id)
        if current is None:
            raise RecommendationNotFound(move.rec_id)
        if current.status != move.from_status:
            raise StatusConflict(move.rec_id, move.from_status, current.status)
        self.writes += 1
        self.items[move.rec_id] = applied(current, move)

    def record_roi(self, rec_id, roi):
        current = self.items[rec_id]
        if current.status != IMPLEMENTED or current.roi is not None:
            return False
        self.items[rec_id] = replace(current, roi=roi)
        return True


def test_a_move_decided_on_a_status_that_changed_meanwhile_is_a_conflict_and_writes_nothing():
    store = MemoryStore(rec())
    store.interfere["r1"] = ACCEPTED  # another operator accepted it between our read and our write
    with pytest.raises(StatusConflict, match="is now accepted, not open"):
        change_status(store, "r1", DISMISSED, now=NOW, by="x", reason="not ours")
    assert store.items["r1"].status == ACCEPTED and store.items["r1"].history == ()


def test_changing_an_unknown_recommendation_says_so():
    with pytest.raises(RecommendationNotFound, match="no recommendation 'nope'"):
        change_status(MemoryStore(), "nope", ACCEPTED, now=NOW, by="x")


# --- reading Cost Optimization Hub ----------------------------------------------------------------


def page_items(name: str) -> list[dict]:
    return load_event(f"cost_optimization_hub_list_recommendations_{name}.json")["items"]


def test_hub_estimates_are_read_from_their_decimal_text_and_rounded_half_even():
    assert [hub_amount(x) for x in (61.32, 12.345, 30.368, 0.1 + 0.2, None)] == [
        D("61.32"), D("12.34"), D("30.37"), D("0.30"), D("0.00"),
    ]  # fmt: skip


def test_a_hub_item_becomes_an_open_recommendation_with_a_short_summary():
    first = from_hub(page_items("page1")[0], NOW)
    assert (first.rec_id, first.status, first.first_seen, first.last_seen) == (
        "MTExMTExMTExMTExLWVjMi1pLTBhMWIyYzNkNGU1ZjYwNzE4", OPEN, "2026-11-16T06:00:00Z", "2026-11-16T06:00:00Z",
    )  # fmt: skip
    assert first.summary == "Rightsize m5.xlarge → m5.large"
    assert (first.estimated_monthly_savings, first.currency, first.effort_label) == (D("61.32"), "USD", "medium")
    assert first.tags == (("Environment", "prod"), ("Team", "web"))
    stop = from_hub(page_items("page2")[0], NOW)
    assert stop.summary == "Stop t3.large"


def test_a_hub_item_without_an_id_is_refused():
    with pytest.raises(ValueError, match="without recommendationId"):
        from_hub({"accountId": "111111111111"}, NOW)


# --- team assignment ------------------------------------------------------------------------------

ROUTES = [TeamRoute("platform", ("teams",), accounts=("111111111111",)),
          TeamRoute("data", ("teams",), accounts=("333333333333",)),
          TeamRoute("web", ("teams",), accounts=("333333333333",))]  # fmt: skip


def test_the_team_comes_from_the_resources_tag_when_the_team_dimension_is_a_tag():
    routing = Routing(parse_dimension("tag:Team"), ROUTES)
    assert assign_team(rec(tags=(("Team", "web"),)), routing) == "web"


def test_an_untagged_resource_belongs_to_the_team_routing_its_account():
    routing = Routing(parse_dimension("tag:Team"), ROUTES)
    assert assign_team(rec(tags=(("Owner", "x"),)), routing) == "platform"


def test_with_a_cost_category_team_dimension_the_account_decides_not_the_tags():
    routing = Routing(parse_dimension("costCategory:Team"), ROUTES)
    assert assign_team(rec(tags=(("Team", "web"),)), routing) == "platform"


def test_an_account_two_teams_route_gives_no_team_and_an_unrouted_one_neither():
    routing = Routing(parse_dimension("tag:Team"), ROUTES)
    assert assign_team(rec(account_id="333333333333"), routing) is None
    assert assign_team(rec(account_id="999999999999"), routing) is None


# --- ROI arithmetic -------------------------------------------------------------------------------


def test_roi_of_a_known_series_is_the_difference_of_daily_means_times_365_over_12():
    measured = measure_roi(series("10.00", "4.00"), DAY, AS_OF)
    assert (measured.before_daily, measured.after_daily, measured.after_days) == (D(10), D(4), 14)
    assert measured.complete and measured.monthly_saving == D("182.50")  # 6 × 365 / 12


def test_roi_windows_are_the_14_days_either_side_with_the_implementation_day_excluded():
    windows = roi_windows(DAY)
    assert (windows.before.first, windows.before.last) == (date(2026, 10, 18), date(2026, 10, 31))
    assert (windows.after.first, windows.after.last) == (date(2026, 11, 2), date(2026, 11, 15))
    assert (windows.query_start, windows.query_end) == (date(2026, 10, 18), date(2026, 11, 16))
    assert measure_roi(series("10", "4", on_day="1000000"), DAY, AS_OF).monthly_saving == D("182.50")


def test_roi_with_a_partial_after_window_is_measuring_and_provisional():
    measured = measure_roi(series("10.00", "7.00"), DAY, DAY + timedelta(days=5))
    assert (measured.after_days, measured.complete, measured.progress()) == (5, False, "measuring (5/14 days)")
    assert measured.monthly_saving == D("91.25")  # provisional: 3 × 365 / 12 on the 5 days in so far
    nothing_yet = measure_roi(series("10.00", "7.00"), DAY, DAY)
    assert (nothing_yet.after_days, nothing_yet.after_daily, nothing_yet.monthly_saving) == (0, None, None)


def test_roi_is_negative_when_the_service_costs_more_after_the_change():
    measured = measure_roi(series("4.00", "5.00"), DAY, AS_OF)
    assert measured.monthly_saving == D("-30.42")  # -1 × 30.41666…


def test_roi_means_use_exact_decimals_of_uneven_series():
    daily = {d: D("0.01") * (i + 1) for i, d in enumerate(roi_windows(DAY).before.each_day())}  # 0.01 .. 0.14
    daily.update({d: D("0.03") for d in roi_windows(DAY).after.each_day()})
    measured = measure_roi(daily, DAY, AS_OF)
    assert measured.before_daily == D("0.075") and measured.monthly_saving == D("1.37")  # 0.045 × 30.4166…


def test_a_day_cost_explorer_did_not_list_counts_as_zero():
    daily = series("14.00", "0")
    del daily[date(2026, 10, 20)]
    assert measure_roi(daily, DAY, AS_OF).before_daily == D(13)


def test_a_complete_measurement_is_stored_with_its_estimated_days_and_an_incomplete_one_is_not():
    implemented = rec(status=IMPLEMENTED, implemented_on=DAY)
    pages = [{"ResultsByTime": [
        {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
         "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}, "Groups": [], "Estimated": d >= AS_OF}
        for d, amount in ((d, "10" if d < DAY else "4") for d in DateRange(date(2026, 10, 18), AS_OF).each_day())
    ]}]  # fmt: skip
    roi = completed_roi(implemented, daily_series(pages), AS_OF, NOW)
    assert roi == Roi("Amazon Elastic Compute Cloud - Compute", D("10.000000"), D("4.000000"), "USD",
                      "2026-11-16T06:00:00Z", 14, 1)  # fmt: skip
    assert completed_roi(implemented, daily_series(pages), AS_OF - timedelta(days=1), NOW) is None


def test_the_roi_request_is_one_daily_query_of_the_service_in_the_account_over_both_windows():
    # Usage only: a credit (or refund, or tax) in the after-window is not a saving.
    assert roi_request(rec(status=IMPLEMENTED, implemented_on=DAY)) == {
        "TimePeriod": {"Start": "2026-10-18", "End": "2026-11-16"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"And": [
            {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111111111111"]}},
            {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}},
            {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund", "Tax"]}}},
        ]},
    }  # fmt: skip


def test_the_roi_is_measured_in_the_deployments_cost_metric():
    request = roi_request(rec(status=IMPLEMENTED, implemented_on=DAY), CostMetric.NET_AMORTIZED)
    assert request["Metrics"] == ["NetAmortizedCost"]
    days = [DAY - timedelta(days=14) + timedelta(days=i) for i in range(29)]
    page = {"ResultsByTime": [
        {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
         "Total": {"NetAmortizedCost": {"Amount": "9" if d < DAY else "3", "Unit": "USD"}}} for d in days
    ]}  # fmt: skip
    series = daily_series([page], CostMetric.NET_AMORTIZED)
    assert series.daily[DAY - timedelta(days=1)] == D(9) and series.daily[DAY + timedelta(days=1)] == D(3)
    with pytest.raises(KeyError, match="no UnblendedCost"):
        daily_series([page])  # an answer in another metric than asked is refused, never read as zero


@pytest.mark.parametrize(
    "changes, due",
    [
        ({}, True),
        ({"implemented_on": DAY + timedelta(days=1)}, False),  # 13 after-days so far
        ({"roi": Roi("s", D(1), D(0), "USD", "t")}, False),  # measured already: never again
        ({"action_type": "PurchaseSavingsPlans", "resource_type": "ComputeSavingsPlans"}, False),
        ({"resource_type": "MemoryDBCluster"}, False),  # no known Cost Explorer service
        ({"status": ACCEPTED}, False),
    ],
)
def test_roi_is_due_once_for_implemented_measurable_items_with_14_complete_after_days(changes, due):
    assert roi_due(rec(**{"status": IMPLEMENTED, "implemented_on": DAY, **changes}), AS_OF) is due


def test_realised_this_month_counts_the_measured_daily_saving_for_the_days_after_implementation():
    measured = rec(status=IMPLEMENTED, implemented_on=date(2026, 10, 20),
                   roi=Roi("s", D("10"), D("4"), "USD", "t"))  # fmt: skip
    assert realised_in_month(measured, AS_OF) == D(6) * 15  # 1..15 Nov
    this_month = replace(measured, implemented_on=date(2026, 11, 9))
    assert realised_in_month(this_month, AS_OF) == D(6) * 6  # 10..15 Nov
    assert realised_in_month(replace(measured, roi=None), AS_OF) is None


# --- commitment KPI -------------------------------------------------------------------------------


def test_commitment_kpi_sums_coverage_over_pages_and_reads_utilisation_percent():
    period = DateRange(date(2026, 11, 1), AS_OF)
    coverage = [
        {"SavingsPlansCoverages": [{"Coverage": {"SpendCoveredBySavingsPlans": "300", "OnDemandCost": "100",
                                                 "TotalCost": "400", "CoveragePercentage": "75"}}]},
        {"SavingsPlansCoverages": [{"Coverage": {"SpendCoveredBySavingsPlans": "0", "OnDemandCost": "100",
                                                 "TotalCost": "100", "CoveragePercentage": "0"}}]},
    ]  # fmt: skip
    utilization = {"Total": {"Utilization": {"UtilizationPercentage": "97.5"}, "Savings": {"NetSavings": "88.10"}}}
    kpi = commitment_kpi(period, coverage, utilization)
    assert (kpi.coverage, kpi.utilisation, kpi.net_savings) == (D("0.6"), D("0.975"), D("88.10"))
    none = commitment_kpi(period, [], None)
    assert (none.coverage, none.utilisation, none.net_savings) == (None, None, None)


# --- summary --------------------------------------------------------------------------------------


def known_items() -> list[Recommendation]:
    roi = Roi("Amazon Elastic Compute Cloud - Compute", D("10"), D("4"), "USD", "2026-11-16T06:00:00Z")
    return [
        rec("a", OPEN, "61.32", team="web"),
        rec("b", OPEN, "12.34", team="data", effort="VeryLow"),
        rec("c", ACCEPTED, "30.37", team="web"),
        rec("d", OPEN, "5.00", team="web"),
        rec("e", IMPLEMENTED, "50.00", team="web", implemented_on=date(2026, 11, 9), roi=roi),
        rec("f", IMPLEMENTED, "20.00", team="data", implemented_on=date(2026, 11, 10)),
        rec("g", DISMISSED, "99.00", team="web", status_reason="prod spike"),
        rec("h", RESOLVED_UPSTREAM, "7.00"),
    ]


def test_the_summary_totals_open_and_accepted_ranks_the_top_three_and_counts_statuses():
    summary = summarize(known_items(), AS_OF, currency="USD")
    assert summary.open_monthly == {"USD": D("109.03")}  # 61.32 + 12.34 + 30.37 + 5.00
    assert [r.rec_id for r in summary.top] == ["a", "c", "b"]
    assert summary.counts == (("open", 3), ("accepted", 1), ("implemented", 2), ("dismissed", 1),
                              ("resolved-upstream", 1))  # fmt: skip
    assert (summary.realised_month, summary.realised_items, summary.measuring) == ({"USD": D(36)}, 1, 1)
    assert [(line.rec.rec_id, line.state, line.monthly, line.after_days) for line in summary.roi_lines] == [
        ("f", "measuring", None, 5), ("e", "measured", D("182.50"), 0),
    ]  # fmt: skip


def test_a_teams_summary_holds_only_its_items_and_no_commitment_kpi():
    kpi = CommitmentKpi(DateRange(date(2026, 11, 1), AS_OF), "USD", D("0.5"), D(1), D(1), None, None)
    summary = summarize(known_items(), AS_OF, team="data", commitment=kpi)
    assert [r.rec_id for r in summary.top] == ["b"] and summary.open_monthly == {"USD": D("12.34")}
    assert summary.commitment is None and summary.count(IMPLEMENTED) == 1
    assert summarize(known_items(), AS_OF, commitment=kpi).commitment == kpi


def test_nothing_open_implemented_or_committed_is_nothing_to_show():
    assert not summarize([rec(status=DISMISSED, status_reason="x"), rec("z", RESOLVED_UPSTREAM)], AS_OF).has_content
    assert summarize([rec()], AS_OF).has_content


# --- the refresh use case -------------------------------------------------------------------------


class ListingHub:
    """Stands in for Cost Optimization Hub: one listing per call, or an error."""

    def __init__(self, *listings):
        self.listings = list(listings)
        self.requests = 0

    def list_all(self, now):
        self.requests += 1
        listing = self.listings.pop(0)
        if isinstance(listing, Exception):
            raise listing
        return [replace(r, first_seen=now.strftime("%Y-%m-%dT%H:%M:%SZ")) for r in listing]


class CountingCosts:
    def __init__(self, daily):
        self.requests = 0
        self.daily = daily
        self.seen = []

    def query(self, request):
        self.requests += 1
        self.seen.append(request)
        start = date.fromisoformat(request["TimePeriod"]["Start"])
        end = date.fromisoformat(request["TimePeriod"]["End"])
        days = DateRange(start, end - timedelta(days=1)).each_day()
        yield {"ResultsByTime": [
            {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
             "Total": {"UnblendedCost": {"Amount": str(self.daily.get(d, 0)), "Unit": "USD"}}} for d in days
        ]}  # fmt: skip


NO_TEAMS = Routing(None)


def test_two_refreshes_keep_one_item_per_id_and_follow_the_estimate_but_not_the_status():
    store = MemoryStore()
    first = refresh(now=NOW, hub=ListingHub([rec("a", savings="10.00")]), store=store, routing=NO_TEAMS)
    change_status(store, "a", ACCEPTED, now=NOW, by="cli:ana")
    later = NOW + timedelta(days=1)
    second = refresh(now=later, hub=ListingHub([rec("a", savings="12.50", effort="High")]), store=store,
                     routing=NO_TEAMS)  # fmt: skip
    assert (first.new, second.new, list(store.items)) == (["a"], [], ["a"])
    kept = store.items["a"]
    assert (kept.status, kept.estimated_monthly_savings, kept.effort) == (ACCEPTED, D("12.50"), "High")
    assert kept.first_seen == "2026-11-16T06:00:00Z" and [h.status for h in kept.history] == [ACCEPTED]


def test_items_gone_upstream_are_resolved_not_deleted_and_implemented_ones_stay_implemented():
    store = MemoryStore(rec("open"), rec("acc", ACCEPTED), rec("dis", DISMISSED, status_reason="no"),
                        rec("impl", IMPLEMENTED, implemented_on=DAY), rec("kept"))  # fmt: skip
    outcome = refresh(now=NOW, hub=ListingHub([rec("kept")]), store=store, routing=NO_TEAMS)
    assert sorted(outcome.resolved_upstream) == ["acc", "dis", "open"]
    assert {k: r.status for k, r in store.items.items()} == {
        "open": RESOLVED_UPSTREAM, "acc": RESOLVED_UPSTREAM, "dis": RESOLVED_UPSTREAM, "impl": IMPLEMENTED,
        "kept": OPEN,
    }  # fmt: skip
    entry = store.items["acc"].history[-1]
    assert (entry.status, entry.from_status, entry.by) == (RESOLVED_UPSTREAM, ACCEPTED, "refresh")


def test_a_listing_that_fails_part_way_writes_nothing_and_resolves_nothing():
    store = MemoryStore(rec("a"), rec("b", ACCEPTED))
    with pytest.raises(TimeoutError):
        refresh(now=NOW, hub=ListingHub(TimeoutError("page 2")), store=store, routing=NO_TEAMS)
    assert store.writes == 0 and {r.status for r in store.items.values()} == {OPEN, ACCEPTED}


def test_an_item_listed_again_after_it_was_resolved_upstream_is_open_again():
    store = MemoryStore(rec("a"))
    refresh(now=NOW, hub=ListingHub([]), store=store, routing=NO_TEAMS)
    assert store.items["a"].status == RESOLVED_UPSTREAM
    outcome = refresh(now=NOW + timedelta(days=1), hub=ListingHub([rec("a")]), store=store, routing=NO_TEAMS)
    assert outcome.reopened == ["a"] and store.items["a"].status == OPEN
    assert [h.status for h in store.items["a"].history] == [RESOLVED_UPSTREAM, OPEN]


def test_an_operators_move_made_meanwhile_wins_over_the_refresh():
    store = MemoryStore(rec("a"))
    store.interfere["a"] = ACCEPTED
    outcome = refresh(now=NOW, hub=ListingHub([]), store=store, routing=NO_TEAMS)
    assert outcome.lost_races == ["a"] and outcome.resolved_upstream == []
    assert store.items["a"].status == ACCEPTED


def test_refresh_stores_the_team_of_each_listed_item():
    routing = Routing(parse_dimension("tag:Team"), ROUTES)
    store = MemoryStore()
    listing = [rec("tagged", tags=(("Team", "web"),)), rec("by-account"), rec("nobody", account_id="999999999999")]
    refresh(now=NOW, hub=ListingHub(listing), store=store, routing=routing)
    assert {k: r.team for k, r in store.items.items()} == {"tagged": "web", "by-account": "platform", "nobody": None}


def test_roi_costs_one_cost_explorer_request_per_due_item_and_none_once_stored():
    implemented = [rec(f"i{n}", IMPLEMENTED, implemented_on=DAY) for n in range(3)]
    measuring = rec("m", IMPLEMENTED, implemented_on=AS_OF - timedelta(days=3))
    commitment = rec("sp", IMPLEMENTED, implemented_on=DAY, action_type="PurchaseSavingsPlans",
                     resource_type="ComputeSavingsPlans")  # fmt: skip
    store = MemoryStore(*implemented, measuring, commitment)
    costs = CountingCosts(series("10.00", "4.00"))
    first = refresh(now=NOW, hub=ListingHub([]), store=store, routing=NO_TEAMS, costs=costs)
    assert (first.cost_requests, sorted(first.roi_measured)) == (3, ["i0", "i1", "i2"])
    assert store.items["i0"].roi.monthly_saving == D("182.50") and store.items["m"].roi is None
    second = refresh(now=NOW + timedelta(days=1), hub=ListingHub([]), store=store, routing=NO_TEAMS, costs=costs)
    assert (second.cost_requests, second.roi_measured, costs.requests) == (0, [], 3)


def test_savings_settings_read_the_table_and_the_kpi_switch():
    env = {"FINOPSGUARD_RECOMMENDATIONS_TABLE": "t", "FINOPSGUARD_SAVINGS_PLANS_KPI": "true"}
    config = ReportSettings.from_env(env)
    assert (config.recommendations_table, config.savings_plans_kpi) == ("t", True)
    empty = ReportSettings.from_env({})
    assert (empty.recommendations_table, empty.savings_plans_kpi) == (None, False)


def test_page_events_hold_every_field_the_hub_documents():
    fields = set().union(*(item for name in ("page1", "page2") for item in page_items(name)))
    assert fields >= {"recommendationId", "accountId", "region", "resourceId", "currentResourceType",
                      "estimatedMonthlySavings", "currencyCode", "implementationEffort", "actionType",
                      "currentResourceSummary", "recommendedResourceSummary", "lastRefreshTimestamp"}  # fmt: skip
    assert json.dumps(load_event("cost_optimization_hub_list_recommendations_page1.json")).count("nextToken") == 1
