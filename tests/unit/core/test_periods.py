from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from finops_guard.core.periods import report_window


def monday_0800(tz: str, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=ZoneInfo(tz))


def test_mid_month_monday_reports_complete_days_up_to_sunday():
    window = report_window(datetime(2026, 11, 16, 7, 0, tzinfo=UTC))
    assert window.as_of == date(2026, 11, 15)
    assert (window.month_to_date.first, window.month_to_date.last) == (date(2026, 11, 1), date(2026, 11, 15))
    assert window.elapsed_days == 15 and window.days_in_month == 30 and window.remaining_days == 15
    assert (window.this_week.first, window.this_week.last) == (date(2026, 11, 9), date(2026, 11, 15))
    assert (window.previous_week.first, window.previous_week.last) == (date(2026, 11, 2), date(2026, 11, 8))


def test_cost_explorer_end_date_is_exclusive_day_after_as_of():
    window = report_window(datetime(2026, 11, 16, 7, 0, tzinfo=UTC))
    assert window.query_end == date(2026, 11, 16)
    assert window.query_start == date(2026, 9, 21)  # the forecast's 56 days always reach into earlier months


def test_early_month_query_reaches_back_the_forecasts_56_days_into_earlier_months():
    window = report_window(datetime(2026, 11, 4, 7, 0, tzinfo=UTC))
    assert window.as_of == date(2026, 11, 3)
    assert window.query_start == date(2026, 9, 9)
    assert window.trend.days == 56 and window.trend.first == date(2026, 9, 9)
    assert window.month_to_date.days == 3


def test_report_on_the_first_describes_the_whole_previous_month():
    window = report_window(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert window.as_of == date(2026, 11, 30)
    assert window.month_complete and window.remaining_days == 0
    assert window.elapsed_days == 30


def test_report_on_new_year_describes_december():
    window = report_window(datetime(2027, 1, 1, 9, 0, tzinfo=UTC))
    assert (window.month.first, window.month.last) == (date(2026, 12, 1), date(2026, 12, 31))
    assert window.month_complete


def test_leap_february_has_29_days_and_leap_day_counts():
    window = report_window(datetime(2028, 3, 1, 7, 0, tzinfo=UTC))
    assert window.as_of == date(2028, 2, 29)
    assert window.days_in_month == 29 and window.month_complete


def test_common_february_has_28_days():
    window = report_window(datetime(2027, 2, 15, 7, 0, tzinfo=UTC))
    assert window.days_in_month == 28 and window.remaining_days == 14


def test_schedule_east_of_utc_does_not_report_the_unfinished_utc_day():
    # Monday 08:00 in Auckland is Sunday 19:00 UTC: Sunday's cost day is not complete yet.
    fired = monday_0800("Pacific/Auckland", date(2026, 11, 16))
    assert fired.astimezone(UTC).date() == date(2026, 11, 15)
    assert report_window(fired).as_of == date(2026, 11, 14)


def test_schedule_west_of_utc_reports_through_sunday():
    fired = monday_0800("America/Los_Angeles", date(2026, 11, 16))
    assert report_window(fired).as_of == date(2026, 11, 15)


def test_same_instant_in_any_timezone_gives_the_same_window():
    instant = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # DST change day in Europe
    assert report_window(instant) == report_window(instant.astimezone(ZoneInfo("Europe/Madrid")))


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        report_window(datetime(2026, 11, 16, 7, 0))  # noqa: DTZ001


@pytest.mark.parametrize("offset", range(0, 400, 7))
def test_windows_are_consistent_all_year(offset):
    now = datetime(2027, 1, 1, 12, tzinfo=UTC) + timedelta(days=offset)
    w = report_window(now)
    assert w.query_start <= w.month_to_date.first and w.query_start <= w.trend.first
    assert w.query_end - w.query_start >= timedelta(days=28)
    assert w.elapsed_days + w.remaining_days == w.days_in_month
    assert w.previous_week.last + timedelta(days=1) == w.this_week.first


from finops_guard.core.periods import budget_period  # noqa: E402


@pytest.mark.parametrize(
    ("kind", "as_of", "key", "first", "last", "elapsed"),
    [
        ("monthly", date(2026, 11, 15), "2026-11", date(2026, 11, 1), date(2026, 11, 30), 15),
        ("monthly", date(2028, 2, 29), "2028-02", date(2028, 2, 1), date(2028, 2, 29), 29),
        ("quarterly", date(2026, 11, 15), "2026-Q4", date(2026, 10, 1), date(2026, 12, 31), 46),
        ("quarterly", date(2026, 3, 31), "2026-Q1", date(2026, 1, 1), date(2026, 3, 31), 90),
        ("quarterly", date(2028, 3, 31), "2028-Q1", date(2028, 1, 1), date(2028, 3, 31), 91),
        ("annual", date(2028, 12, 31), "2028", date(2028, 1, 1), date(2028, 12, 31), 366),
    ],
)
def test_budget_periods(kind, as_of, key, first, last, elapsed):
    period = budget_period(kind, as_of)
    assert (period.key, period.days.first, period.days.last, period.elapsed_days) == (key, first, last, elapsed)
    assert period.complete == (as_of == last)


def test_next_day_after_quarter_end_starts_a_new_period():
    assert budget_period("quarterly", date(2026, 4, 1)).key == "2026-Q2"
    assert budget_period("quarterly", date(2026, 4, 1)).elapsed_days == 1


def test_unknown_period_is_refused():
    with pytest.raises(ValueError, match="weekly"):
        budget_period("weekly", date(2026, 1, 1))
