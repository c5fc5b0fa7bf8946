"""Cards a finance reader trusts (issue 17), the cost half: one forecast story, like compared with like
early in the month, names before ids, no data said as no data, and no card contradicting itself."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from finops_guard.core.periods import DateRange, report_window
from finops_guard.costs.aggregate import aggregate_pages
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import decide, evaluate
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.cards import common
from finops_guard.costs.cards.budget_alert import facts, render_alert
from finops_guard.costs.cards.chargeback import render_chargeback
from finops_guard.costs.cards.savings import rows
from finops_guard.costs.cards.slack import slack_payload
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.chargeback import Chargeback, Line, Month
from finops_guard.costs.mock_data import synthetic_pages, synthetic_query_pages
from finops_guard.costs.outlook import forecast_period_end
from finops_guard.costs.report import BudgetLine, build_weekly_report
from finops_guard.costs.savings import summarize
from finops_guard.costs.teams import parse_dimension

from tests.unit.costs.test_savings import AS_OF as SAVINGS_AS_OF
from tests.unit.costs.test_savings import rec

NOW = datetime(2026, 12, 2, 7, tzinfo=UTC)  # as of Tue 1 Dec: one day of December elapsed
MID_MONTH = datetime(2026, 11, 16, 7, tzinfo=UTC)  # as of Sun 15 Nov


def report_at(now=NOW, *, budget=D("250000"), pages=None):
    window = report_window(now)
    pages = synthetic_pages(window.query_start, window.query_end) if pages is None else pages
    return build_weekly_report(aggregate_pages(pages, window), stage="prod", currency="USD", top_n=5,
                               generated_at=now, monthly_budget=budget)  # fmt: skip


def card_facts(payload):
    return {f["title"]: f["value"] for f in payload["attachments"][0]["content"]["body"][3 if "⚠" in json.dumps(
        payload, ensure_ascii=False) else 2]["facts"]}  # fmt: skip


def money(amount: D) -> str:
    from finops_guard.core.money import format_money

    return format_money(amount, "USD")


# --- one forecast ----------------------------------------------------------------------------------


def test_the_weekly_card_states_one_forecast_in_its_kpi_gauge_budget_and_notification():
    report = report_at()
    forecast = money(report.forecast_month_end.likely)
    teams = teams_payload(report, "UTC")
    body = teams["attachments"][0]["content"]["body"]
    facts_ = card_facts(teams)
    [gauge] = [e for e in body if e["type"] == "Chart.Gauge"]
    assert facts_[common.FORECAST_TITLE].startswith(f"{forecast} likely (80 % band")
    assert facts_["Budget consumption"].startswith(f"forecast {forecast} (")
    assert gauge["subLabel"].startswith(f"forecast {forecast} (")
    assert not any("burn rate" in title.lower() for title in facts_)  # burn rate is a fact, not a forecast
    assert facts_["Daily burn"].endswith(" / day")
    slack = slack_payload(report, "UTC")
    assert f"forecast month-end {forecast}" in slack["text"]
    assert f"*{common.FORECAST_TITLE}*\n{forecast} likely" in json.dumps(slack, ensure_ascii=False).replace("\\n", "\n")


def test_the_budget_guard_forecasts_the_same_month_end_as_the_weekly_card_from_the_same_days():
    # Given the organisation's synthetic spend, read once by the weekly report, once by the guard
    report = report_at()
    organisation = parse_budget({"id": "org", "amount": "250000", "currency": "USD"})
    as_of = report.window.as_of
    query = plan_queries([organisation], as_of)[0]
    costs = collect_budget_costs(query, synthetic_query_pages(query.request()), as_of)["org"]
    # When the guard evaluates a monthly budget over the same scope
    status = evaluate(costs, as_of)
    # Then both say the same month-end, to the last digit: one function, one window of days
    assert status.forecast.trend_total == report.forecast_month_end
    assert status.actual == report.month_to_date


def test_the_forecast_fits_the_last_56_days_whatever_the_period():
    daily = {date(2026, 11, 1) + timedelta(days=i): D(100 + i) for i in range(45)}
    november = DateRange(date(2026, 11, 1), date(2026, 11, 30))
    outlook = forecast_period_end(daily, november, date(2026, 11, 30))
    assert outlook.actual == sum(D(100 + i) for i in range(30)) and outlook.remaining_days == 0
    daily = {date(2026, 9, 1) + timedelta(days=i): D(100 + i) for i in range(120)}
    december = DateRange(date(2026, 12, 1), date(2026, 12, 31))
    recent = {d: v for d, v in daily.items() if d >= date(2026, 10, 21)}  # the 56 days up to 15 Dec
    assert forecast_period_end(daily, december, date(2026, 12, 15)) == forecast_period_end(
        recent, december, date(2026, 12, 15)
    )  # days before the 56 do not count


# --- like with like early in the month -------------------------------------------------------------


def test_early_in_the_month_a_ranked_line_shows_the_last_7_days_beside_the_weekly_change():
    report = report_at()  # one day of December
    assert report.window.elapsed_days == 1 and common.early_in_month(report)
    sagemaker = next(s for s in report.top_services if s.name == "Amazon SageMaker")
    line = common.ranked_line(sagemaker, "USD", early=True)
    mtd, week = money(sagemaker.month_to_date), money(sagemaker.week_over_week.current)
    assert line.startswith(f"{mtd} · last 7 days {week} · WoW ")
    text = json.dumps(teams_payload(report, "UTC"), ensure_ascii=False)
    assert "Top services (MTD · last 7 days · week over week)" in text and f"last 7 days {week} · WoW" in text


def test_from_the_seventh_day_a_ranked_line_is_month_to_date_and_the_weekly_change():
    report = report_at(MID_MONTH)
    assert not common.early_in_month(report)
    text = json.dumps(teams_payload(report, "UTC"), ensure_ascii=False)
    ranked = text.split("Top services (MTD · week over week)")[1]
    assert " · WoW " in ranked and "last 7 days $" not in ranked


# --- no data is not zero spend ------------------------------------------------------------------


def test_no_cost_data_reads_as_no_cost_data_not_as_zero_spend():
    window = report_window(NOW)
    empty = [{"ResultsByTime": [{"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
                                 "Total": {}, "Groups": [], "Estimated": False}
                                for d in DateRange(window.query_start, window.as_of).each_day()]}]  # fmt: skip
    report = report_at(pages=empty)
    assert not report.has_cost_data
    for payload in (teams_payload(report, "UTC"), slack_payload(report, "UTC")):
        text = json.dumps(payload, ensure_ascii=False)
        assert "no cost data yet" in text
        assert "$0.00" not in text and "Top services" not in text and "Chart." not in text


# --- no contradictions ---------------------------------------------------------------------------


def team_line(teams=("web",)):
    return BudgetLine("web", "Team web", "2026-Q4", D("14084"), "USD", D("64725.64"), D("109254.50"), teams=teams,
                      as_of=date(2026, 12, 1))  # fmt: skip


def test_a_team_card_listing_its_budget_does_not_say_no_budget_is_configured():
    report = replace(report_at(budget=None), scope="Team web", budgets=(team_line(),))
    text = json.dumps(teams_payload(report, "UTC"), ensure_ascii=False)
    assert "no monthly budget configured" not in text and "no budget" not in text
    assert "Team web" in text and "forecast $109,254.50 (775 %) · actual $64,725.64 (459 %) of $14,084.00" in text


def test_a_team_card_without_a_budget_says_none_names_the_team():
    report = replace(report_at(budget=None), scope="Team data")
    assert card_facts(teams_payload(report, "UTC"))["Budget"] == "no budget names this team"


def test_a_budget_line_evaluated_for_another_day_says_which():
    line = replace(team_line(), as_of=date(2026, 11, 30))
    assert common.budget_state(line, date(2026, 12, 1)).endswith("· Q4 2026 (as of Mon 30 Nov 2026)")
    assert common.budget_state(replace(line, as_of=date(2026, 12, 1)), date(2026, 12, 1)).endswith("· Q4 2026")


def test_the_chargeback_card_names_the_month_its_rerun_command_needs():
    dimension = parse_dimension("tag:Team")
    chargeback = Chargeback(Month(2026, 11), dimension, "USD", "proportional",
                            (Line("web", "AWS Lambda", "tagged", D("10.00")),), estimated=True)  # fmt: skip
    for channel in ("teams", "slack"):
        payload = render_chargeback([(chargeback, "https://example.com/x.csv")], channel,
                                    expires_at=NOW, timezone="Europe/Madrid", complete=True)  # fmt: skip
        text = json.dumps(payload, ensure_ascii=False)
        assert "`finops-guard chargeback run --month 2026-11` again" in text
        assert "Chargeback Nov 2026" in text and "Links expire 2 Dec 2026 08:00 Europe/Madrid" in text


# --- names before ids ------------------------------------------------------------------------------


def test_a_budget_alert_names_accounts_before_their_ids_from_the_same_cost_explorer_answer():
    data = parse_budget({"id": "data", "name": "Data", "amount": "100", "currency": "USD",
                         "scope": {"account": ["222222222222"]}, "alert_on": ["actual"]})  # fmt: skip
    compute = parse_budget({"id": "ec2", "name": "EC2", "amount": "100", "currency": "USD",
                            "scope": {"service": ["Amazon Elastic Compute Cloud - Compute"]},
                            "alert_on": ["actual"]})  # fmt: skip
    as_of = report_window(NOW).as_of
    statuses = {}
    for query in plan_queries([data, compute], as_of):
        for budget_id, costs in collect_budget_costs(query, synthetic_query_pages(query.request()), as_of).items():
            statuses[budget_id] = evaluate(costs, as_of)
    scope = dict(facts(decide(statuses["data"], {}).fire[0]))["Scope"]
    assert scope == "account prod-data (222222222222)"
    slack = render_alert(decide(statuses["ec2"], {}).fire[0], "slack", "UTC")
    contributors = slack["blocks"][2]["text"]["text"]
    assert "• prod-platform (111111111111): $" in contributors and "• 111111111111:" not in contributors


def test_a_budget_alert_states_daily_burn_not_a_second_forecast():
    budget = parse_budget({"id": "b", "name": "B", "amount": "100", "currency": "USD", "alert_on": ["actual"]})
    as_of = report_window(NOW).as_of
    query = plan_queries([budget], as_of)[0]
    status = evaluate(collect_budget_costs(query, synthetic_query_pages(query.request()), as_of)["b"], as_of)
    titles = [title for title, _ in facts(decide(status, {}).fire[0])]
    assert "Forecast period end" in titles and "Daily burn" in titles
    assert not any("projection" in title.lower() or "burn rate" in title.lower() for title in titles)
    assert dict(facts(decide(status, {}).fire[0]))["Period"] == "Dec 2026 (day 1 of 31)"


def test_savings_items_read_as_names_before_ids():
    names = {"111111111111": "prod-platform", "222222222222": "prod-data"}
    plan = rec("sp", "open", "412.80", action_type="PurchaseSavingsPlans", resource_id="111111111111",
               account_id="111111111111")  # fmt: skip
    named = rec("ec2", "open", "30.37", resource_id="i-0776", account_id="222222222222", tags=(("Name", "etl"),))
    bare = rec("vol", "open", "12.34", resource_id="vol-09f8", account_id="333333333333")
    titles = [title for title, _ in rows(summarize([plan, named, bare], SAVINGS_AS_OF), "USD", names)[1:4]]
    assert titles == ["1. prod-platform (111111111111)", "2. etl (i-0776) · prod-data", "3. vol-09f8"]
