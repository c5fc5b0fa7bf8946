from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.periods import report_window
from finops_guard.costs.aggregate import CostDataError, aggregate_pages
from finops_guard.costs.report import build_weekly_report

from tests.conftest import load_event


def page(days: dict[date, list[tuple[str, str, str]]], *, unit="USD", estimated=(), names=None, token=None):
    """A GetCostAndUsage page: {day: [(service, account, amount)]}."""
    out = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
                "Total": {},
                "Groups": [
                    {"Keys": [s, a], "Metrics": {"UnblendedCost": {"Amount": amt, "Unit": unit}}}
                    for s, a, amt in groups
                ],
                "Estimated": d in estimated,
            }
            for d, groups in days.items()
        ],
        "DimensionValueAttributes": [{"Value": k, "Attributes": {"description": v}} for k, v in (names or {}).items()],
    }
    if token:
        out["NextPageToken"] = token
    return out


NOW = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # as_of = Sun 15 Nov 2026
WINDOW = report_window(NOW)


def every_day(first: date, last: date, groups):
    return {first + timedelta(days=i): groups for i in range((last - first).days + 1)}


def test_recorded_cost_explorer_page_is_summed_by_day_service_and_account():
    sample = load_event("ce_get_cost_and_usage_page.json")
    aggregate = aggregate_pages([sample], WINDOW)
    day14 = sum((D(g["Metrics"]["UnblendedCost"]["Amount"]) for g in sample["ResultsByTime"][0]["Groups"]), D(0))
    assert aggregate.daily[date(2026, 11, 14)] == day14
    assert aggregate.estimated_days == {date(2026, 11, 15)}
    assert aggregate.account_names["222222222222"] == "prod-data"
    assert aggregate.currency == "USD"


def test_one_day_split_across_pages_is_added_not_overwritten():
    day = date(2026, 11, 15)
    first = page({day: [("EC2", "1", "1.10")]}, token="t")
    second = page({day: [("S3", "1", "2.20")]})
    aggregate = aggregate_pages([first, second], WINDOW)
    assert aggregate.daily[day] == D("3.30")
    assert aggregate.services["EC2"].this_week == D("1.10")


def test_mixed_currencies_are_refused():
    day = date(2026, 11, 15)
    with pytest.raises(CostDataError, match="mixed currencies"):
        aggregate_pages(
            [page({day: [("EC2", "1", "1"), ("S3", "1", "1")]}), page({day: [("S3", "2", "1")]}, unit="EUR")], WINDOW
        )


def test_days_outside_the_month_feed_the_week_but_not_month_to_date():
    window = report_window(datetime(2026, 11, 4, 7, tzinfo=UTC))  # as_of 3 Nov
    data = every_day(window.query_start, window.as_of, [("EC2", "1", "10")])
    aggregate = aggregate_pages([page(data)], window)
    report = build_weekly_report(aggregate, stage="t", currency="USD", top_n=5, generated_at=NOW)
    assert report.month_to_date == D("30")  # 1..3 Nov only
    assert report.week_over_week.current == D("70") and report.week_over_week.previous == D("70")
    assert len(report.daily) == 56  # the forecast's days, shown on the daily chart


def test_report_kpis_for_a_steady_month():
    data = every_day(WINDOW.query_start, WINDOW.as_of, [("EC2", "111", "60.00"), ("S3", "222", "40.00")])
    aggregate = aggregate_pages([page(data, estimated={WINDOW.as_of}, names={"111": "prod"})], WINDOW)
    report = build_weekly_report(
        aggregate, stage="prod", currency="USD", top_n=5, generated_at=NOW, monthly_budget=D("4000")
    )
    assert report.month_to_date == D("1500.00")
    assert report.daily_burn == D("100")
    assert report.forecast_month_end.likely == D("3000.00")
    assert report.forecast_month_end.low == report.forecast_month_end.high == D("3000.00")  # no noise, no band
    assert report.horizons[30].likely == D("3000.00") and sorted(report.horizons) == [30, 60, 90]
    assert report.budget.forecast == D("0.75") and report.budget.actual == D("0.375")
    assert report.estimated_days == (date(2026, 11, 15),)
    assert [s.name for s in report.top_services] == ["EC2", "S3"]
    assert report.account_names == {"111": "prod"}
    assert report.report_id == "weekly-report/2026-11-15"


def test_budget_in_another_currency_is_not_compared():
    data = every_day(WINDOW.query_start, WINDOW.as_of, [("EC2", "1", "1")])
    aggregate = aggregate_pages([page(data)], WINDOW)
    report = build_weekly_report(
        aggregate, stage="t", currency="EUR", top_n=5, generated_at=NOW, monthly_budget=D("10")
    )
    assert report.budget is None and "EUR" in report.budget_note and report.currency == "USD"


def test_report_on_first_of_month_forecasts_exactly_the_month_total():
    now = datetime(2026, 12, 1, 7, tzinfo=UTC)
    window = report_window(now)
    aggregate = aggregate_pages([page(every_day(window.query_start, window.as_of, [("EC2", "1", "3.33")]))], window)
    report = build_weekly_report(aggregate, stage="t", currency="USD", top_n=5, generated_at=now)
    assert report.month_to_date == D("99.90")
    assert report.month_to_date == report.forecast_month_end.likely


def test_missing_days_count_as_zero_spend():
    aggregate = aggregate_pages([page({date(2026, 11, 15): [("EC2", "1", "15")]})], WINDOW)
    report = build_weekly_report(aggregate, stage="t", currency="USD", top_n=5, generated_at=NOW)
    assert report.daily_burn == D("1")
