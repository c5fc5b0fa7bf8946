"""Attribution by team / cost center: untagged spend, top values, team cards, request frugality."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from finops_guard.core.periods import report_window
from finops_guard.costs.attribution import aggregate_attribution, attribution_request
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import Routing, TeamRoute, parse_dimension, team_destination
from finops_guard.costs.weekly_report import compose

from tests.conftest import load_event

NOW = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # as_of Sun 15 Nov 2026
WINDOW = report_window(NOW)
TEAM = parse_dimension("tag:Team")
COST_CENTER = parse_dimension("tag:CostCenter")


def settings(**changes: str) -> ReportSettings:
    env = {"FINOPSGUARD_STAGE": "test", "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
           "FINOPSGUARD_TEAM_DIMENSION": "tag:Team", **changes}  # fmt: skip
    return ReportSettings.from_env(env)


class TaggedCosts:
    """Cost Explorer in memory: every day, `daily[(team, service)]` in each team's tag; counts requests."""

    def __init__(self, daily: dict[tuple[str, str], str]) -> None:
        self.daily = {k: D(v) for k, v in daily.items()}
        self.requests = 0
        self.seen: list[dict[str, Any]] = []

    def _days(self, start: date, end: date) -> list[date]:
        return [start + timedelta(days=i) for i in range((end - start).days)]

    def _result(self, day: date, groups: list[dict[str, Any]]) -> dict[str, Any]:
        period = {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()}
        return {"TimePeriod": period, "Total": {}, "Groups": groups, "Estimated": False}

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.requests += 1
        self.seen.append(request)
        key = request["GroupBy"][0]["Key"]
        start, end = (date.fromisoformat(request["TimePeriod"][k]) for k in ("Start", "End"))
        if request["Granularity"] == "MONTHLY":  # the month's credits, refunds and tax: none here
            yield {"ResultsByTime": []}
            return
        if key in ("SERVICE", "RECORD_TYPE"):  # the organisation's request: by SERVICE or RECORD_TYPE, then account
            groups = [{"Keys": [s if key == "SERVICE" else "Usage", "111111111111"],
                       "Metrics": {"UnblendedCost": {"Amount": str(a), "Unit": "USD"}}}
                      for (_, s), a in self.daily.items()]  # fmt: skip
        else:
            groups = [{"Keys": [f"{key}${t}", s], "Metrics": {"UnblendedCost": {"Amount": str(a), "Unit": "USD"}}}
                      for (t, s), a in self.daily.items()]  # fmt: skip
        yield {"ResultsByTime": [self._result(d, groups) for d in self._days(start, end)]}


def test_untagged_spend_reads_as_untagged_with_its_share_and_services():
    sample = load_event("ce_get_cost_and_usage_by_tag_page.json")
    summary = aggregate_attribution(TEAM, [sample], WINDOW, ()).summary(top_n=5)
    untagged = D("16.4210034852") + D("61.0073119") + D("16.3988")
    assert summary.untagged == untagged
    assert summary.attributed == D("52.8810000001") + D("418.4400315") + D("40.1208") + D("51.2") + D("402.9") + D(
        "44.0"
    )
    assert summary.untagged_share == untagged / (untagged + summary.attributed)
    assert [s.name for s in summary.untagged_services] == ["EC2 - Other", "Amazon Virtual Private Cloud"]
    assert "" not in [v.name for v in summary.top_values]


def test_top_values_rank_by_month_to_date_with_week_over_week():
    sample = load_event("ce_get_cost_and_usage_by_tag_page.json")
    summary = aggregate_attribution(TEAM, [sample], WINDOW, ()).summary(top_n=2)
    assert [v.name for v in summary.top_values] == ["platform", "data", "Other (1)"]
    platform = summary.top_values[0]
    assert platform.week_over_week.current == D("418.4400315") + D("402.9")
    assert platform.week_over_week.previous == 0


def test_only_routed_teams_keep_a_per_team_aggregate():
    sample = load_event("ce_get_cost_and_usage_by_tag_page.json")
    aggregate = aggregate_attribution(TEAM, [sample], WINDOW, ["web", "nobody"])
    assert set(aggregate.team_costs) == {"web", "nobody"}
    web = aggregate.team_costs["web"]
    assert web.daily == {date(2026, 11, 14): D("40.1208"), date(2026, 11, 15): D("44.0")}
    assert web.estimated_days == {date(2026, 11, 15)}
    assert aggregate.team_costs["nobody"].spend(web.daily) == 0


def test_attribution_request_groups_by_the_dimension_then_service_with_an_exclusive_end():
    request = attribution_request(
        parse_dimension("costCategory:Project"), date(2026, 11, 1), date(2026, 11, 16), "DAILY"
    )
    assert request["GroupBy"] == [{"Type": "COST_CATEGORY", "Key": "Project"}, {"Type": "DIMENSION", "Key": "SERVICE"}]
    assert request["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-11-16"}


def twenty_teams() -> tuple[TaggedCosts, Routing]:
    costs = TaggedCosts({(f"team{i:02d}", "EC2"): f"{i + 1}.00" for i in range(20)} | {("", "VPC"): "7.00"})
    routes = [TeamRoute(f"team{i:02d}", ("teams",)) for i in range(20)]
    return costs, Routing(TEAM, routes)


def test_twenty_routed_teams_cost_one_request_per_dimension_not_per_team():
    costs, routing = twenty_teams()
    _, messages = compose(settings(), costs, now=NOW, routing=routing)
    assert costs.requests == 3  # the organisation (by RECORD_TYPE: credits, refunds, tax ride on it), Team, CostCenter
    assert [r["GroupBy"][0]["Key"] for r in costs.seen] == ["RECORD_TYPE", "Team", "CostCenter"]
    assert len(messages) == 1 + 20


def test_each_routed_team_gets_its_own_card_in_its_own_channel_with_its_spend_only():
    costs, routing = twenty_teams()
    _, messages = compose(settings(), costs, now=NOW, routing=routing)
    team03 = next(m for m in messages if m.secret_name == team_destination("team03"))
    assert team03.message_id == "weekly-report/2026-11-15/team/team03/teams" and team03.channel == "teams"
    body = team03.payload["attachments"][0]["content"]["body"]
    assert body[0]["text"].startswith("AWS cost report · Team team03 · week ending")
    facts = {f["title"]: f["value"] for f in body[2]["facts"]}
    assert facts["Month-to-date"].startswith("$60.00 ")  # 4.00 a day for 15 days
    assert not any(b.get("text", "").startswith("Top linked accounts") for b in body)


def test_the_default_card_shows_attributed_versus_untagged_for_each_dimension():
    costs, routing = twenty_teams()
    report, messages = compose(settings(), costs, now=NOW, routing=routing)
    team = report.attribution[0]
    assert team.untagged == D("105.00") and team.attributed == D(210 * 15)
    texts = [b.get("text", "") for b in messages[0].payload["attachments"][0]["content"]["body"]]
    assert "Spend by Team (MTD · week over week)" in texts and "Spend by CostCenter (MTD · week over week)" in texts
    assert messages[0].secret_name is None


def test_a_team_with_slack_only_gets_a_slack_card_and_no_teams_card():
    costs = TaggedCosts({("web", "EC2"): "1"})
    routing = Routing(TEAM, [TeamRoute("web", ("slack",))])
    _, messages = compose(settings(), costs, now=NOW, routing=routing)
    web = [m for m in messages if m.secret_name]
    assert [(m.channel, m.message_id) for m in web] == [("slack", "weekly-report/2026-11-15/team/web/slack")]


def test_without_attribution_dimensions_the_report_makes_two_requests():
    # The organisation's usage, and the month's credits, refunds and tax (by RECORD_TYPE alone: no teams).
    costs, routing = twenty_teams()
    plain = ReportSettings.from_env({"FINOPSGUARD_STAGE": "test"})
    report, messages = compose(plain, costs, now=NOW, routing=Routing(None, routing.routes))
    assert costs.requests == 2 and report.attribution == () and len(messages) == 1
    assert costs.seen[1]["GroupBy"] == [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}]


def test_team_card_is_under_the_teams_size_limit_with_the_attribution_section():
    costs, routing = twenty_teams()
    report, _ = compose(settings(), costs, now=NOW, routing=routing)
    assert teams_payload(report, "UTC")  # raises when over MAX_PAYLOAD_BYTES


def test_a_budget_naming_a_team_shows_on_that_teams_card_only():
    from finops_guard.costs.report import BudgetLine

    costs, routing = twenty_teams()
    line = BudgetLine("b3", "Team 3 compute", "2026-11", D(100), "USD", D(60), D(120), teams=("team03",))
    _, messages = compose(settings(), costs, now=NOW, routing=routing, budgets=[line])

    def budget_section(secret: str | None) -> bool:
        message = next(m for m in messages if m.secret_name == secret)
        return any(
            b.get("text", "").startswith("Budgets (1)") for b in message.payload["attachments"][0]["content"]["body"]
        )

    assert budget_section(None) and budget_section(team_destination("team03"))
    assert not budget_section(team_destination("team04"))


def test_each_team_card_shows_its_own_savings_and_the_default_card_shows_all():
    from finops_guard.costs.savings import OPEN

    from tests.unit.costs.test_savings import rec

    costs, routing = twenty_teams()
    recommendations = [rec("a", OPEN, "61.32", team="team01"), rec("b", OPEN, "12.34", team="team02")]
    _, messages = compose(settings(), costs, now=NOW, routing=routing, savings=recommendations)

    def savings_facts(secret: str | None) -> dict[str, str]:
        body = next(m for m in messages if m.secret_name == secret).payload["attachments"][0]["content"]["body"]
        heading = next(i for i, b in enumerate(body) if b.get("text") == "Savings opportunities")
        return {f["title"]: f["value"] for f in body[heading + 1]["facts"]}

    assert savings_facts(None)["Open savings (estimated)"].startswith("$73.66 / month")
    assert savings_facts(team_destination("team01"))["Open savings (estimated)"].startswith("$61.32 / month")
    assert savings_facts(team_destination("team02"))["Open savings (estimated)"].startswith("$12.34 / month")
