"""The one forecast FinOps Guard shows: every card, the budget guard and the CLI ask here.

A weekly card once showed three month-end figures for the same organisation (burn rate, a 14-day
trend, and the budget list's 28-day trend). Now the weekly card's KPI, its budget gauge, its
budget list (through the guard's stored status), the team cards and the budget alerts all show
`forecast_period_end`, computed from the daily history each already fetched. The model itself
lives in `forecast.py`; swapping it (issue #20: a seasonal one) is a change there or here, in one
place. Burn rate stays a fact ("Daily burn"), never a second forecast.

The model (forecast.fit_model: a trend with day-of-week effects, month-start charges kept apart,
step changes, errors that carry over from day to day) is fitted on the last 56 days, eight whole
weeks: chosen by backtest (devtools/forecast_backtest.py, README Forecasting), where 28 days gave a
worse point error on noisy, persistent and growing series. Every forecast says which method it used
(`PeriodForecast.method`, e.g. "trend with day-of-week effects, last 56 days", or "short history:
average of 9 days"), and the weekly pattern it found (`PeriodForecast.weekly`), which the weekly
card names. The weekly report's request reaches back 56 days (core.periods.TREND_DAYS) and the
budget guard's too: more pages only for organisations whose month-to-date needs several already.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from finops_guard.core.money import ZERO
from finops_guard.core.periods import DateRange
from finops_guard.costs.forecast import (
    DEFAULT_LEVEL,
    DEFAULT_LOOKBACK,
    Band,
    PeriodForecast,
    forecast_period,
    horizon_forecasts,
)

LOOKBACK_DAYS = DEFAULT_LOOKBACK  # 56; core.periods.TREND_DAYS sizes the weekly report's request the same


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
    return forecast_period(actual, elapsed.days, period.days - elapsed.days, recent, level, last_day=as_of)


def horizons(daily: Mapping[date, Decimal], as_of: date, level: Decimal = DEFAULT_LEVEL) -> dict[int, Band]:
    """Spend over the next 30, 60 and 90 days on the same fit as `forecast_period_end`."""
    recent = [daily.get(day, ZERO) for day in recent_days(as_of).each_day()]
    return horizon_forecasts(recent, level, last_day=as_of)
