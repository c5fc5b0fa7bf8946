"""The daily digest's rules (issue 22): the quiet rule, movers, budget runways, the tap over the guard's
pages, and the use case with in-memory outbox and poster (no AWS, no sockets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.money import format_money
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import evaluate, evaluate_all
from finops_guard.costs.budgets import SERVICE, Dimension, parse_budget
from finops_guard.costs.cadence_settings import CadenceSettings, parse_destinations
from finops_guard.costs.cards.daily_digest import render_digest, title
from finops_guard.costs.daily_digest import (
    Move,
    OpenedAnomaly,
    QuietRule,
    baseline_days,
    build_digest,
    message_id,
    move,
    movers,
    run_daily_digest,
    runway_fell,
    shown_movers,
)
from finops_guard.costs.guard_tap import GuardTap, RecordingSource
from finops_guard.costs.mock_data import synthetic_query_pages
from finops_guard.costs.teams import AttributionDimension, Routing, TeamRoute
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster

DAY = date(2026, 11, 15)  # a Sunday
NOW = datetime(2026, 11, 16, 9, tzinfo=UTC)
RULE = QuietRule(D("0.2"), D(100))


def flat(amount: str, *, last: str | None = None, day: date = DAY) -> dict[date, D]:
    series = {day - timedelta(days=i): D(amount) for i in range(1, 28)}
    series[day] = D(last if last is not None else amount)
    return series


# --- the baseline and a move -------------------------------------------------------------------------


def test_the_baseline_is_the_seven_days_before_the_day_one_of_each_weekday():
    week = baseline_days(DAY)
    assert (week.first, week.last) == (date(2026, 11, 8), date(2026, 11, 14))
    assert sorted(d.weekday() for d in week.each_day()) == list(range(7))


def test_a_move_compares_the_day_with_its_seven_day_average():
    series = {DAY - timedelta(days=i): D(i) for i in range(1, 8)}  # 1..7: average 4
    series[DAY] = D(10)
    assert move("x", series, DAY) == Move("x", D(10), D(4))
    assert move("x", series, DAY).delta == D(6) and move("x", series, DAY).relative == D("1.5")


# --- the quiet rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "rule", "loud"),
    [
        ("1250", RULE, True),  # +25 % and +$250
        ("1150", RULE, False),  # +15 %: under the share
        ("130", QuietRule(D("0.2"), D(100)), False),  # on a 100 base: +30 % but only +$30
        ("700", RULE, False),  # a fall never posts on its own
        ("1150", QuietRule(D("0.1"), D(0)), True),  # amount 0: the share alone
        ("1050", QuietRule(D(0), D(40)), True),  # share 0: the amount alone
    ],
)
def test_spend_posts_only_when_it_rose_by_the_share_and_the_amount(last, rule, loud):
    base = "100" if last == "130" else "1000"
    digest = build_digest(DAY, currency="USD", rule=rule, daily=flat(base, last=last), by_value={}, label="service")
    assert digest.quiet is not loud
    assert digest.reasons == (("spend rose",) if loud else ())


def test_a_quiet_day_is_quiet_even_with_small_movers_listed():
    by_value = {"EC2": flat("500", last="520"), "S3": flat("100", last="90")}
    digest = build_digest(DAY, currency="USD", rule=RULE, daily=flat("600", last="610"), by_value=by_value,
                          label="service")  # fmt: skip
    assert digest.quiet
    assert [m.name for m in digest.movers] == ["EC2", "S3"]


def test_one_service_rising_beyond_both_thresholds_makes_the_day_loud_though_the_total_did_not():
    by_value = {"EC2": flat("5000"), "SageMaker": flat("10", last="400")}
    digest = build_digest(DAY, currency="USD", rule=RULE, daily=flat("5010", last="5400"), by_value=by_value,
                          label="service")  # fmt: skip
    assert digest.reasons == ("1 service rose",)
    assert digest.movers[0].name == "SageMaker"


def test_new_spend_with_no_average_counts_on_the_amount_alone():
    new = {DAY: D("150")}
    assert move("new", new, DAY).relative is None
    assert move("new", new, DAY).rose_beyond(RULE)
    assert not move("new", {DAY: D("99")}, DAY).rose_beyond(RULE)


def test_an_anomaly_opened_or_a_budget_running_out_makes_the_day_loud():
    anomaly = OpenedAnomaly("a1", "Amazon SageMaker", "222222222222", D("412.5"))
    digest = build_digest(DAY, currency="USD", rule=RULE, daily=flat("1000"), by_value={}, label="service",
                          anomalies=[anomaly])  # fmt: skip
    assert digest.reasons == ("1 anomaly opened",)


# --- movers --------------------------------------------------------------------------------------------


def test_movers_are_the_three_largest_moves_either_way_ties_by_name():
    by_value = {
        "a": flat("100", last="150"),  # +50
        "b": flat("100", last="20"),  # -80
        "c": flat("100", last="150"),  # +50
        "d": flat("100", last="110"),  # +10
        "e": flat("100"),  # did not move
    }
    assert [m.name for m in movers(by_value, DAY)] == ["b", "a", "c"]


def test_every_riser_that_made_the_digest_post_is_shown_before_bigger_falls():
    moves = [Move("fall", D(0), D(1000)), Move("fall2", D(0), D(900)), Move("fall3", D(0), D(800)),
             Move("rise", D(300), D(100))]  # fmt: skip
    assert [m.name for m in shown_movers(moves, RULE)] == ["fall", "fall2", "rise"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.lists(st.decimals(min_value=-1000, max_value=10**6, places=4), min_size=8, max_size=8),
        max_size=12,
    ),
    st.decimals(min_value=0, max_value=5, places=3),
    st.decimals(min_value=0, max_value=10**5, places=2),
)
def test_any_spend_never_raises_and_the_quiet_rule_matches_the_figures(values, share, amount):
    by_value = {name: {DAY - timedelta(days=i): v for i, v in enumerate(series)} for name, series in values.items()}
    rule = QuietRule(share, amount)
    total = {day: sum((s.get(day, D(0)) for s in by_value.values()), D(0)) for day in flat("0")}
    digest = build_digest(DAY, currency="USD", rule=rule, daily=total, by_value=by_value, label="service")
    risers = [m for m in (move(n, s, DAY) for n, s in by_value.items()) if m.rose_beyond(rule)]
    assert digest.quiet == (not risers and not move("spend", total, DAY).rose_beyond(rule))
    assert len(digest.movers) <= 3
    assert {m.name for m in risers[:3]} <= {m.name for m in digest.movers} or len(risers) > 3
    for item in digest.movers:
        assert item.day_spend - item.average == item.delta  # exact: no float anywhere
    for channel in ("teams", "slack"):
        render_digest(digest, channel)


# --- budget runways ------------------------------------------------------------------------------------


def status_of(amount: str, daily: dict[date, D], as_of: date = DAY):
    b = parse_budget({"id": "web", "name": "Web", "amount": amount, "currency": "USD"})
    query = plan_queries([b], as_of)[0]
    costs = collect_budget_costs(query, [], as_of)["web"]
    costs.daily.update(daily)
    costs.currency = "USD"
    return evaluate(costs, as_of)


def test_a_budget_whose_runway_fell_below_its_period_on_the_day_is_listed_once():
    # 100 a day for 14 days, 400 on the 15th: 1,800 of 3,200 spent. The forecast reads the 15th as a step up
    # and spends the 1,400 left in 5 days, with 15 left: short. The day before: 1,800 left at its forecast
    # of 100 a day = 18 days > 16: not short then.
    daily = {date(2026, 11, d): D(100) for d in range(1, 15)} | {DAY: D(400)}
    drop = runway_fell(status_of("3200", daily))
    assert drop is not None and drop.remaining_days == 15
    assert drop.runs_out_on == date(2026, 11, 20)
    # The next day at the same pace: it was already short the day before, so it is not listed again.
    later = daily | {DAY + timedelta(days=1): D(120)}
    assert runway_fell(status_of("3200", later, DAY + timedelta(days=1))) is None


def test_a_budget_with_enough_runway_or_none_is_not_listed():
    daily = {date(2026, 11, d): D(100) for d in range(1, 16)}
    assert runway_fell(status_of("100000", daily)) is None
    assert runway_fell(status_of("100", {})) is None  # no spend: no runway


# --- the tap: the guard's own pages, passed on unchanged -----------------------------------------------


class PagesSource:
    def __init__(self, answer=synthetic_query_pages):
        self.requests = 0
        self.asked = []
        self.answer = answer

    def query(self, request):
        self.asked.append(request)
        for page in self.answer(request):
            self.requests += 1
            yield page


def test_the_tap_passes_every_page_on_and_asks_nothing_more():
    web = {"id": "web", "amount": "9000", "currency": "USD", "scope": {"tag": {"Team": ["web"]}}}
    budgets = [parse_budget({"id": "org", "amount": "90000", "currency": "USD"}), parse_budget(web)]
    plain, tapped = PagesSource(), PagesSource()
    tap = GuardTap(tapped, keep_from=DAY - timedelta(days=7), team_dimension=Dimension("TAG", "Team"), teams=["web"])
    direct = evaluate_all(budgets, DAY, plain, level=D("0.8"))
    through = evaluate_all(budgets, DAY, tap, level=D("0.8"))
    assert [s.forecast for s in through] == [s.forecast for s in direct]
    assert tapped.asked == plain.asked and tap.requests == plain.requests
    spend = tap.spend
    assert spend.daily is not None and spend.daily[DAY] > 0
    assert len(tapped.asked) == 1  # the organisation budget rides on the team request
    assert set(spend.by_dimension) == {SERVICE, Dimension("TAG", "Team")}
    assert min(spend.by_dimension[SERVICE]["AWS Lambda"]) == DAY - timedelta(days=7)  # per value: 8 days kept
    web = spend.teams["web"]
    assert web.value_dimension == SERVICE and web.daily[DAY] > 0
    assert DAY in spend.estimated_days and spend.month_final(date(2026, 10, 1), date(2026, 10, 31)) is True


def test_the_organisation_total_is_counted_once_whatever_the_number_of_requests():
    budgets = [parse_budget({"id": "a", "amount": "9", "currency": "USD", "scope": {"account": ["111111111111"]}}),
               parse_budget({"id": "t", "amount": "9", "currency": "USD", "scope": {"tag": {"Team": ["web"]}}}),
               parse_budget({"id": "c", "amount": "9", "currency": "USD",
                             "scope": {"cost_category": {"Environment": ["prod"]}}})]  # fmt: skip
    tap = GuardTap(PagesSource(), keep_from=DAY - timedelta(days=7))
    evaluate_all(budgets, DAY, tap, level=D("0.8"))
    by_service = tap.spend.by_dimension[SERVICE]
    assert tap.spend.daily is not None
    assert tap.spend.daily[DAY] == sum((s.get(DAY, D(0)) for s in by_service.values()), D(0))


def test_filtered_requests_and_no_request_tell_no_organisation_spend():
    scope = {"account": ["111111111111"], "service": ["AWS Lambda"], "tag": {"Team": ["web"]}}
    three = parse_budget({"id": "x", "amount": "9", "currency": "USD", "scope": scope})
    tap = GuardTap(PagesSource(), keep_from=DAY - timedelta(days=7))
    evaluate_all([three], DAY, tap, level=D("0.8"))
    assert tap.spend.daily is None and DAY in tap.spend.seen_days
    nothing = GuardTap(PagesSource(), keep_from=DAY)
    assert nothing.spend.daily is None and nothing.spend.month_final(date(2026, 10, 1), date(2026, 10, 31)) is None


def test_a_recording_source_keeps_the_pages_of_each_request():
    source = RecordingSource(PagesSource())
    request = {"TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Granularity": "MONTHLY",
               "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}]}  # fmt: skip
    pages = list(source.query(request))
    assert source.pages_for(dict(request)) == pages and source.requests == 1
    assert source.pages_for({**request, "Granularity": "DAILY"}) is None


# --- the use case ----------------------------------------------------------------------------------------


class Opened:
    def __init__(self, anomalies):
        self.anomalies = anomalies
        self.asked = []

    def opened_on(self, day):
        self.asked.append(day)
        return self.anomalies


def tapped_spend(budgets, teams=()):
    tap = GuardTap(PagesSource(), keep_from=DAY - timedelta(days=7), team_dimension=Dimension("TAG", "Team"),
                   teams=teams)  # fmt: skip
    statuses = evaluate_all(budgets, DAY, tap, level=D("0.8"))
    return tap.spend, statuses


ORG = parse_budget({"id": "org", "name": "Organisation", "amount": "900000", "currency": "USD"})
WEB = parse_budget({"id": "web", "name": "Web", "amount": "900000", "currency": "USD",
                    "scope": {"tag": {"Team": ["web"]}}})  # fmt: skip


def run(spend, statuses, anomalies, *, rule=RULE, teams=(), routing=None, outbox=None):
    return run_daily_digest(
        DAY, spend, statuses, anomalies=Opened(anomalies), rule=rule, currency="USD",
        default_channels=["teams", "slack"],
        outbox=outbox or MemoryOutbox(), poster=ScriptedPoster({}), now=NOW, render=render_digest, teams=teams,
        routing=routing,
    )  # fmt: skip


def test_a_loud_day_posts_one_digest_per_channel_naming_its_day(caplog):
    spend, statuses = tapped_spend([ORG])  # the synthetic SageMaker spike: one service rose
    outcome = run(spend, statuses, [])
    ids = [m.message_id for m in outcome.messages]
    assert ids == ["daily-digest/2026-11-15/teams", "daily-digest/2026-11-15/slack"]
    card = outcome.messages[0].payload["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Daily cost digest · Sun 15 Nov 2026" == title(outcome.digests[0])
    assert "Amazon SageMaker" in str(card) and "7-day average" in str(card)
    assert outcome.delivery.delivered == [m.message_id for m in outcome.messages]


def test_a_rerun_of_the_same_day_posts_nothing_new():
    spend, statuses = tapped_spend([ORG])
    outbox = MemoryOutbox()
    first, second = run(spend, statuses, [], outbox=outbox), run(spend, statuses, [], outbox=outbox)
    assert len(first.delivery.delivered) == 2 and second.delivery.delivered == []
    assert len(second.delivery.skipped) == 2


def test_a_quiet_day_posts_nothing_and_the_log_says_so(caplog):
    spend, statuses = tapped_spend([ORG])
    caplog.set_level("INFO", logger="finops_guard.costs.daily_digest")
    outcome = run(spend, statuses, [], rule=QuietRule(D(100), D(10**9)))
    assert outcome.messages == [] and outcome.delivery.delivered == []
    [record] = [r for r in caplog.records if r.getMessage().startswith("daily digest quiet")]
    assert record.__dict__["day"] == "2026-11-15" and record.__dict__["quiet"] is True


def test_a_routed_team_gets_its_own_spend_budgets_and_anomalies_in_its_own_channels():
    web = TeamRoute("web", ("teams", "slack"), ("333333333333",))
    routing = Routing(AttributionDimension("tag", "Team"), [web])
    spend, statuses = tapped_spend([ORG, WEB], teams=["web"])
    anomaly = OpenedAnomaly("a1", "AWS Lambda", "333333333333", D("120"))
    elsewhere = OpenedAnomaly("a2", "Amazon SageMaker", "222222222222", D("900"))
    outcome = run(spend, statuses, [anomaly, elsewhere], rule=QuietRule(D(100), D(10**9)), teams=[web],
                  routing=routing)  # fmt: skip
    team = next(d for d in outcome.digests if d.scope == "web")
    assert team.anomalies == (anomaly,) and team.spend is not None
    assert team.spend.day_spend == spend.teams["web"].daily[DAY]
    ids = [m.message_id for m in outcome.messages]
    assert "daily-digest/2026-11-15/team/web/teams" in ids and "daily-digest/2026-11-15/team/web/slack" in ids
    assert {m.secret_name for m in outcome.messages if "/team/" in m.message_id} == {"team:web"}
    assert "Team web" in str(next(m for m in outcome.messages if m.message_id.endswith("team/web/teams")).payload)


def test_a_team_without_spend_in_the_guard_data_says_so_rather_than_zero():
    web = TeamRoute("web", ("teams",), ("333333333333",))
    spend, statuses = tapped_spend([ORG], teams=["web"])  # no budget groups by Team
    anomaly = OpenedAnomaly("a1", "AWS Lambda", "333333333333", D("120"))
    outcome = run(spend, statuses, [anomaly], teams=[web], routing=Routing(AttributionDimension("tag", "Team"), [web]))
    team = next(m for m in outcome.messages if "/team/" in m.message_id)
    assert "no figure" in str(team.payload) and "$0.00" not in str(team.payload)


def test_the_message_id_names_the_day_and_the_destination():
    assert message_id(DAY, "teams") == "daily-digest/2026-11-15/teams"
    assert message_id(DAY, "slack", "team/a%2Fb") == "daily-digest/2026-11-15/team/a%2Fb/slack"


def test_the_card_writes_money_as_format_money():
    spend, statuses = tapped_spend([ORG])
    digest = run(spend, statuses, []).digests[0]
    assert spend.daily is not None
    assert format_money(spend.daily[DAY], "USD") in str(render_digest(digest, "slack"))


# --- settings ----------------------------------------------------------------------------------------------


def test_digest_destinations_and_thresholds_from_the_environment():
    settings = CadenceSettings.from_env({
        "FINOPSGUARD_DAILY_DIGEST": '["default", "team:web", "default"]', "FINOPSGUARD_DIGEST_MIN_SHARE": "25",
        "FINOPSGUARD_DIGEST_MIN_AMOUNT": "50", "FINOPSGUARD_MONTH_CLOSE_REPORT": "true",
        "FINOPSGUARD_BUDGET_ADJUST_THRESHOLD": "15",
    })  # fmt: skip
    assert settings.digest_destinations == ("default", "team:web")
    assert settings.digest_channels(["teams", "slack"]) == ["teams", "slack"]
    assert settings.digest_team("web") and not settings.digest_team("data")
    assert (settings.digest_min_share, settings.digest_min_amount) == (D("0.25"), D(50))
    assert settings.month_close and settings.budget_adjust_threshold == D("0.15")


def test_the_digest_and_the_month_close_are_off_by_default():
    settings = CadenceSettings.from_env({})
    assert not settings.digest_on and not settings.month_close
    assert settings.digest_channels(["teams"]) == []


@pytest.mark.parametrize("raw", [["everyone"], "teams", [1], ["team:"]])
def test_an_unknown_destination_is_refused(raw):
    from finops_guard.core.settings import SettingsError

    with pytest.raises(SettingsError):
        parse_destinations(raw)


# --- the tap after issue 19: the deployment's metric, usage apart from credits, refunds and tax ---------------


def test_the_tap_reads_usage_in_the_deployments_metric_and_never_mixes_in_a_net_budgets_request():
    from finops_guard.costs.cost_metric import CostMetric

    usage = parse_budget({"id": "org", "amount": "900000", "currency": "USD"})
    net = parse_budget({"id": "paid", "amount": "900000", "currency": "USD", "basis": "net"})
    source = PagesSource()
    tap = GuardTap(source, keep_from=DAY - timedelta(days=7), metric=CostMetric.AMORTIZED)
    statuses = {s.budget.budget_id: s for s in evaluate_all([usage, net], DAY, tap, level=D("0.8"),
                                                            metric=CostMetric.AMORTIZED)}  # fmt: skip
    assert [r["Metrics"] for r in source.asked] == [["AmortizedCost"], ["AmortizedCost"]]
    assert "Filter" in source.asked[0] and "Filter" not in source.asked[1]  # usage first, then net
    assert tap.spend.daily is not None
    assert tap.spend.daily[DAY] == statuses["org"].day_spend  # usage: the weekly card's headline
    assert statuses["paid"].day_spend < statuses["org"].day_spend  # the synthetic credit is left out
    by_service = tap.spend.by_dimension[SERVICE]
    assert sum((s.get(DAY, D(0)) for s in by_service.values()), D(0)) == tap.spend.daily[DAY]


def test_the_tap_counts_the_usage_rows_of_a_request_grouped_by_record_type():
    from finops_guard.costs.breakdown import Breakdown, main_request
    from finops_guard.costs.cost_metric import DEFAULT_METRIC

    start, end = DAY - timedelta(days=7), DAY + timedelta(days=1)
    grouped = GuardTap(PagesSource(), keep_from=start)
    list(grouped.query(main_request(start, end, DEFAULT_METRIC, Breakdown.LINKED_ACCOUNT, by_record_type=True)))
    filtered = GuardTap(PagesSource(), keep_from=start)
    list(filtered.query(main_request(start, end, DEFAULT_METRIC, Breakdown.LINKED_ACCOUNT)))
    assert grouped.spend.daily is not None and filtered.spend.daily is not None
    assert grouped.spend.daily[DAY] == filtered.spend.daily[DAY] > 0
    assert Dimension("DIMENSION", "RECORD_TYPE") not in grouped.spend.by_dimension
