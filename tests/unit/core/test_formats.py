"""One way to write a date on every card: a day, a range, a month or quarter, an instant, an axis."""

from datetime import UTC, date, datetime

import pytest
from finops_guard.core.formats import (
    format_axis_day,
    format_day,
    format_days,
    format_instant,
    format_month,
    format_period,
    format_stamp,
)


def test_a_day_names_its_weekday_day_month_and_year():
    assert format_day(date(2026, 12, 1)) == "Tue 1 Dec 2026"


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        (date(2026, 12, 1), date(2026, 12, 7), "1–7 Dec 2026"),
        (date(2026, 11, 25), date(2026, 12, 1), "25 Nov – 1 Dec 2026"),
        (date(2026, 12, 28), date(2027, 1, 3), "28 Dec 2026 – 3 Jan 2027"),
        (date(2026, 12, 1), date(2026, 12, 1), "Tue 1 Dec 2026"),  # a range of one day is that day
    ],
)
def test_a_range_of_days_names_what_changes_once(first, last, shown):
    assert format_days(first, last) == shown


@pytest.mark.parametrize(
    ("key", "shown"), [("2026-12", "Dec 2026"), ("2026-Q4", "Q4 2026"), ("2026", "2026"), ("next", "next")]
)
def test_a_period_key_reads_as_a_month_quarter_or_year(key, shown):
    assert format_period(key) == shown
    assert format_month(date(2026, 12, 31)) == "Dec 2026"


def test_an_instant_is_written_in_the_stages_time_zone_and_names_it():
    moment = datetime(2026, 12, 1, 14, 26, 59, tzinfo=UTC)
    assert format_instant(moment, "UTC") == "1 Dec 2026 14:26 UTC"
    assert format_instant(moment, "Europe/Madrid") == "1 Dec 2026 15:26 Europe/Madrid"
    assert format_instant(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Asia/Tokyo") == "1 Jan 2027 08:30 Asia/Tokyo"


def test_a_stored_timestamp_reads_as_an_instant_and_a_bad_one_as_it_is():
    assert format_stamp("2026-12-02T15:59:03+00:00", "UTC") == "2 Dec 2026 15:59 UTC"
    assert format_stamp("2026-12-02T15:59:03Z", "Europe/Madrid") == "2 Dec 2026 16:59 Europe/Madrid"
    assert format_stamp("yesterday", "UTC") == "yesterday"
    assert format_stamp(None, "UTC") == "unknown"


def test_a_chart_axis_day_is_the_same_order_without_weekday_and_year():
    assert format_axis_day(date(2026, 11, 4)) == "4 Nov"
