"""Calendar rules for cost reports.

Cost Explorer buckets cost by UTC day and its `End` dates are exclusive. A report therefore covers
*complete UTC cost days only*: the last one is the UTC day before "now", whatever time zone the
schedule fires in (Monday 08:00 in Auckland is still Sunday in UTC, so Sunday is not complete yet).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

TREND_DAYS = 56  # the forecast's lookback (costs.forecast.DEFAULT_LOOKBACK; why 56: costs.outlook)
WEEK_DAYS = 7


@dataclass(frozen=True)
class DateRange:
    """An inclusive range of cost days."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True)
class ReportWindow:
    """Every date a weekly report needs, derived from one instant.

    `as_of` is the last complete UTC cost day. The reporting month is the month containing
    `as_of`, so the report sent on the 1st describes the month that just ended, complete.
    `query_start`/`query_end` are ready for Cost Explorer: start inclusive, end exclusive.
    """

    as_of: date
    month: DateRange
    month_to_date: DateRange
    this_week: DateRange
    previous_week: DateRange
    trend: DateRange
    query_start: date
    query_end: date

    @property
    def days_in_month(self) -> int:
        return self.month.days

    @property
    def elapsed_days(self) -> int:
        return self.month_to_date.days

    @property
    def remaining_days(self) -> int:
        return self.days_in_month - self.elapsed_days

    @property
    def month_complete(self) -> bool:
        return self.as_of == self.month.last


def report_window(now: datetime) -> ReportWindow:
    """Build the report window for an aware instant `now` (any time zone)."""
    if now.tzinfo is None:
        raise ValueError("report_window needs an aware datetime; got a naive one")
    as_of = now.astimezone(UTC).date() - timedelta(days=1)
    month_first = as_of.replace(day=1)
    month_last = as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    trend = DateRange(as_of - timedelta(days=TREND_DAYS - 1), as_of)
    this_week = DateRange(as_of - timedelta(days=WEEK_DAYS - 1), as_of)
    previous_week = DateRange(this_week.first - timedelta(days=WEEK_DAYS), this_week.first - timedelta(days=1))
    return ReportWindow(
        as_of=as_of,
        month=DateRange(month_first, month_last),
        month_to_date=DateRange(month_first, as_of),
        this_week=this_week,
        previous_week=previous_week,
        trend=trend,
        query_start=min(month_first, trend.first),
        query_end=as_of + timedelta(days=1),
    )


@dataclass(frozen=True)
class BudgetPeriod:
    """The budget period containing a cost day. `key` names it in alert ids: 2026-11, 2026-Q4, 2026."""

    kind: str
    key: str
    days: DateRange
    as_of: date

    @property
    def elapsed(self) -> DateRange:
        return DateRange(self.days.first, self.as_of)

    @property
    def elapsed_days(self) -> int:
        return self.elapsed.days

    @property
    def remaining_days(self) -> int:
        return self.days.days - self.elapsed_days

    @property
    def complete(self) -> bool:
        return self.as_of == self.days.last


PERIOD_KINDS = ("monthly", "quarterly", "annual")


def budget_period(kind: str, as_of: date) -> BudgetPeriod:
    """The monthly, quarterly or annual period that `as_of` (a complete UTC cost day) falls in."""
    if kind == "monthly":
        first, months, key = as_of.replace(day=1), 1, f"{as_of:%Y-%m}"
    elif kind == "quarterly":
        quarter = (as_of.month - 1) // 3
        first, months, key = date(as_of.year, 3 * quarter + 1, 1), 3, f"{as_of.year}-Q{quarter + 1}"
    elif kind == "annual":
        first, months, key = date(as_of.year, 1, 1), 12, f"{as_of.year}"
    else:
        raise ValueError(f"unknown budget period {kind!r}; use one of {', '.join(PERIOD_KINDS)}")
    last_month = first.month + months - 1
    last = date(first.year, last_month, calendar.monthrange(first.year, last_month)[1])
    return BudgetPeriod(kind, key, DateRange(first, last), as_of)
