"""Spend forecasts from daily cost history, without asking Cost Explorer again.

The model behind the one forecast the cards show: callers go through finops_guard.costs.outlook,
which picks the days it is fitted on. Two methods:
- burn rate: spend so far in the period / elapsed days, extended to the period end (a card shows
  the daily burn and the runway it gives, never this as a second forecast);
- linear trend: ordinary least squares over the last `lookback` days, with a prediction interval
  for the *sum* of the remaining days (default 80 %). The interval accounts for both the noise of
  each future day and the uncertainty of the fitted line:
      Var(S - Ŝ) = σ² · (h + uᵀ (XᵀX)⁻¹ u),  u = Σ_future (1, x)
  and uses Student's t with n - 2 degrees of freedom.
Scenarios: best = lower bound, likely = point forecast, worst = upper bound.

Limits: daily costs are treated as independent around a straight line. Weekly seasonality,
month-start charges (support, Savings Plans, marketplace) and step changes (a new cluster) break
that assumption; the band is then too narrow. Forecasts never project below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

from finops_guard.core.money import ZERO

DEFAULT_LEVEL = Decimal("0.8")
DEFAULT_LOOKBACK = 28
HORIZONS = (30, 60, 90)


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """Student's t quantile by the Cornish-Fisher expansion around the normal (error < 1e-3 for df >= 3)."""
    z = NormalDist().inv_cdf(probability)
    v = float(degrees_of_freedom)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


@dataclass(frozen=True)
class Band:
    """A forecast of a spend total: point (likely) value and prediction interval, all Decimal."""

    likely: Decimal
    low: Decimal
    high: Decimal
    level: Decimal

    @property
    def best(self) -> Decimal:
        return self.low

    @property
    def worst(self) -> Decimal:
        return self.high


@dataclass(frozen=True)
class Trend:
    intercept: Decimal
    slope: Decimal
    residual_variance: Decimal
    n: int
    sxx: Decimal  # Σ (x - x̄)²

    def predict_sum(self, first_x: int, days: int, level: Decimal) -> Band:
        """Sum of the next `days` values at x = first_x .. first_x + days - 1."""
        if days <= 0:
            return Band(ZERO, ZERO, ZERO, level)
        xs = range(first_x, first_x + days)
        point = sum((max(ZERO, self.intercept + self.slope * x) for x in xs), ZERO)
        if self.n < 3:
            return Band(point, point, point, level)
        mean_x = Decimal(self.n - 1) / 2
        # uᵀ(XᵀX)⁻¹u written with centred x: h²/n + (Σ(x - x̄))² / Sxx
        centred_sum = sum((Decimal(x) - mean_x for x in xs), ZERO)
        leverage = Decimal(days) ** 2 / self.n + (centred_sum**2 / self.sxx if self.sxx else ZERO)
        spread = (self.residual_variance * (days + leverage)).sqrt()
        t = Decimal(str(round(t_quantile((1 + float(level)) / 2, self.n - 2), 6)))
        margin = t * spread
        return Band(point, max(ZERO, point - margin), point + margin, level)


def fit_trend(daily: Sequence[Decimal]) -> Trend:
    """Least-squares line through `daily` at x = 0..n-1."""
    n = len(daily)
    if n == 0:
        return Trend(ZERO, ZERO, ZERO, 0, ZERO)
    mean_x = Decimal(n - 1) / 2
    mean_y = sum(daily, ZERO) / n
    sxx = sum(((Decimal(x) - mean_x) ** 2 for x in range(n)), ZERO)
    sxy = sum(((Decimal(x) - mean_x) * (y - mean_y) for x, y in enumerate(daily)), ZERO)
    slope = sxy / sxx if sxx else ZERO
    intercept = mean_y - slope * mean_x
    residuals = sum(((y - (intercept + slope * x)) ** 2 for x, y in enumerate(daily)), ZERO)
    variance = residuals / (n - 2) if n > 2 else ZERO
    return Trend(intercept, slope, variance, n, sxx)


@dataclass(frozen=True)
class PeriodForecast:
    """Where a period's spend is heading. Money in the cost currency."""

    actual: Decimal
    burn_rate: Decimal  # actual / elapsed days
    burn_rate_total: Decimal  # actual + burn rate x remaining days
    trend_total: Band  # actual + trend over the remaining days, with its interval
    remaining_days: int

    @property
    def likely(self) -> Decimal:
        return self.trend_total.likely


def forecast_period(
    actual: Decimal,
    elapsed_days: int,
    remaining_days: int,
    recent_daily: Sequence[Decimal],
    level: Decimal = DEFAULT_LEVEL,
) -> PeriodForecast:
    """Forecast the period total from `actual` so far and the recent daily history (oldest first,
    ending with the last complete day)."""
    burn = actual / elapsed_days if elapsed_days > 0 else ZERO
    trend = fit_trend(recent_daily)
    rest = trend.predict_sum(len(recent_daily), remaining_days, level)
    total = Band(actual + rest.likely, actual + rest.low, actual + rest.high, level)
    return PeriodForecast(actual, burn, actual + burn * remaining_days, total, remaining_days)


def horizon_forecasts(
    recent_daily: Sequence[Decimal], level: Decimal = DEFAULT_LEVEL, horizons: Sequence[int] = HORIZONS
) -> dict[int, Band]:
    """Spend over the next 30/60/90 days on the trend, each with its prediction interval."""
    trend = fit_trend(recent_daily)
    return {days: trend.predict_sum(len(recent_daily), days, level) for days in horizons}


def runway_days(amount: Decimal, actual: Decimal, burn_rate: Decimal) -> Decimal | None:
    """Days until `amount` is used up at `burn_rate` per day; 0 if already exceeded, None if no burn."""
    if actual >= amount:
        return ZERO
    if burn_rate <= 0:
        return None
    return (amount - actual) / burn_rate
