"""The one forecast FinOps Guard shows: every card, the budget guard and the CLI ask here.

A weekly card once showed three month-end figures for the same organisation (burn rate, a 14-day
trend, and the budget list's 28-day trend). Now the weekly card's KPI, its budget gauge, its
budget list (through the guard's stored status), the team cards and the budget alerts all show
`forecast_period_end`, computed from the daily history each already fetched. The model itself
lives in `forecast.py`; swapping it (issue #20: a seasonal one) is a change there or here, in one
place. Burn rate stays a fact ("Daily burn"), never a second forecast.

Why the last 28 days rather than 14: both are whole weeks, so every weekday weighs the same; but a
spike on the last day tilts a least-squares line through 14 points almost four times as much as
one through 28 (its weight in the slope is 6 / (n (n + 1))), and a month-end forecast extends that
slope over up to 30 days; twice the points also narrow the band for the same noise. The budget
guard already read 28 days back, so its Cost Explorer requests do not change; the weekly report's
request now reaches back 28 days instead of 14, which only matters in a month's first four weeks
and is never longer than the request it already sends at each month's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from finops_guard.core.money import ZERO
from finops_guard.core.periods import TREND_DAYS, DateRange
from finops_guard.costs.forecast import DEFAULT_LEVEL, Band, PeriodForecast, forecast_period, horizon_forecasts

LOOKBACK_DAYS = TREND_DAYS  # 28; core.periods sizes the weekly report's request with it
METHOD = f"trend of the last {LOOKBACK_DAYS} days"  # how a card names the forecast it shows


def recent_days(as_of: date) -> DateRange:
    """The days the forecast is fitted on: the last LOOKBACK_DAYS complete UTC cost days up to `as_of`."""
    return DateRange(as_of - timedelta(days=LOOKBACK_DAYS - 1), as_of)


def forecast_period_end(
    daily: Mapping[date, Decimal], period: DateRange, as_of: date, level: Decimal = DEFAULT_LEVEL
) -> PeriodForecast:
    """Spend of `period` (inclusive UTC cost days) at its end, from `daily` spend (currency units per
    UTC cost day; a missing day is zero) up to `as_of`, the last complete day, inside `period`.
    `actual` is the spend from the period's first day to `as_of`; the band is at `level` (0.8 = 80 %)."""
    elapsed = DateRange(period.first, as_of)
    actual = sum((daily.get(day, ZERO) for day in elapsed.each_day()), ZERO)
    recent = [daily.get(day, ZERO) for day in recent_days(as_of).each_day()]
    return forecast_period(actual, elapsed.days, period.days - elapsed.days, recent, level)


def horizons(daily: Mapping[date, Decimal], as_of: date, level: Decimal = DEFAULT_LEVEL) -> dict[int, Band]:
    """Spend over the next 30, 60 and 90 days on the same fit as `forecast_period_end`."""
    return horizon_forecasts([daily.get(day, ZERO) for day in recent_days(as_of).each_day()], level)
