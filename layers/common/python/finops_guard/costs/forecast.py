"""Spend forecasts from daily cost history, without asking Cost Explorer again.

Callers go through finops_guard.costs.outlook (the one forecast every card and the budget guard show).
The model (`fit_model`), fitted to the last DEFAULT_LOOKBACK days (oldest first, ending with the last complete day):

    cost(day) = level + slope · day + weekday effect + own term on each 1st [+ level step] + error
    error(day) = φ · error(day - 1) + innovation

- Two shapes of trend, weighted equally: straight (the model on the amounts) and compound (on their logarithms,
  when every ordinary day is above 10 % of the median): eight weeks cannot tell a straight rise from compound
  growth, so the band covers both continuations.
- Weekday effects (summing to zero) enter when an F-test finds them (p < 0.10) and the history can afford six
  more coefficients; they are named on the card ("weekends run 25 % lower") only when p < 0.01 and 5 % or more.
- Every 1st of a month gets its own term: support, Savings Plans fees and marketplace charges land there. Those
  days are thereby kept out of the daily fit, and the latest 1st's excess is added back on every future 1st.
- A level step (a new cluster, a switched-off account) is looked for by a scan of the residuals. The forecast
  weighs "a step there" against "no step" by the evidence (a logistic in the scan statistic, even at
  STEP_THRESHOLD). Under a step the level restarts there; with three weeks or more after it, the whole fit does.
- φ is not taken at one estimate: the forecast averages over a grid of φ, each weighted by its restricted
  likelihood (Jeffreys' prior), the coefficients by generalised least squares (Prais-Winsten) for each. Each
  carries the last day's error forward, decaying by φ a day; its interval adds the innovations' variance over
  the horizon to the coefficients' uncertainty, with Student's t. Bands are quantiles of the whole mixture.
- Fewer than 14 days: the average of the days there are, labelled "short history"; none: "no spend history".
Deterministic: the same history gives the same forecast.

Chosen by backtest (devtools/forecast_backtest.py, `make bench`; README, Forecasting) over the straight line with
independent errors it replaced and over Holt-Winters with a weekly season. Limits: a step still to come, a change
of slope and a change in the month-start charges are not foreseen; a step in the last day or two looks like
noise; weeks with holidays are ordinary weeks. Forecasts never project below zero. Money is Decimal in and out:
the statistics run in float on the history divided by its largest amount, and every amount comes back as
Decimal, in cents.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from statistics import NormalDist

from finops_guard.core.formats import format_day
from finops_guard.core.money import ZERO

DEFAULT_LEVEL = Decimal("0.8")
DEFAULT_LOOKBACK = 56
HORIZONS = (30, 60, 90)

MIN_MODEL_DAYS = 14  # fewer: the short-history average
WEEKDAY_P = 0.10  # weekday effects enter the forecast below this p-value
PATTERN_P = 0.01  # ... and are named on the card below this one
WEEKDAY_MIN_DF = 6  # residual degrees of freedom left after the six weekday effects
MATERIAL = 0.05  # a weekday difference under 5 % is not named
STEP_MIN_BEFORE = 5  # days before a level step
STEP_MIN_AFTER = 2  # days after it: a step two days ago already moves the forecast
STEP_THRESHOLD = 14.0  # the scan statistic at which a step and no step weigh the same
MIN_WEIGHT = 0.01  # a hypothesis lighter than this is dropped
RESTART_DAYS = 21  # days after a step for the whole fit to restart there
MAX_PHI = 0.9  # of the quick estimate the step scan uses
PROPORTIONAL_FLOOR = 0.1  # a history whose ordinary days all exceed 10 % of its median is also modelled in logs
# φ values the forecast averages over, each weighted by how well it explains the history
PHI_GRID = (-0.5, -0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.87, 0.93, 0.97)
CENT = Decimal("0.01")
WEEKDAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


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


def f_test_p_value(f: float, df_num: int, df_den: int) -> float:
    """P(F > f) for Snedecor's F(df_num, df_den): the regularised incomplete beta I_x(df_den/2, df_num/2)."""
    if f <= 0 or df_num <= 0 or df_den <= 0:
        return 1.0
    if math.isinf(f):
        return 0.0
    return _incomplete_beta(df_den / 2, df_num / 2, df_den / (df_den + df_num * f))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - front * _beta_fraction(b, a, 1 - x) / b
    return front * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 200):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return result


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
class WeeklyPattern:
    """How the days of the week differ, relative to the weekly average (1 = average)."""

    factors: tuple[Decimal, ...]  # Monday first, seven of them
    weekend_change: Decimal  # Saturday and Sunday vs Monday to Friday: -0.25 = weekends 25 % lower
    phrase: str  # "weekends run 25 % lower", or "Mondays run 30 % higher than the weekly average"


# The internal types below are plain classes, not dataclasses: each dataclass costs a cold start about 0.3 ms.


class _Design:
    """Which columns the regression has, so history and future rows are built alike."""

    __slots__ = ("n", "trend", "weekday", "firsts", "step", "columns", "first_columns")

    def __init__(self, n: int, trend: bool, weekday: bool, firsts: tuple[int, ...], step: int | None) -> None:
        self.n = n  # days in the fit
        self.trend, self.weekday = trend, weekday
        self.firsts = firsts  # fit positions of the 1sts of a month, one column each
        self.step = step  # fit position where the level step begins
        self.first_columns = 1 + trend + 6 * weekday
        self.columns = self.first_columns + len(firsts) + (step is not None)

    def row(self, t: int, weekday: int, first: int | None) -> list[float]:
        """Position `t` (0 = first day of the fit), its weekday (0 = Monday), the 1st column it falls on."""
        row = [1.0]
        if self.trend:
            row.append((t - (self.n - 1) / 2) / self.n)
        if self.weekday:
            row += [-1.0] * 6 if weekday == 6 else [1.0 if weekday == w else 0.0 for w in range(6)]
        row += [1.0 if first == i else 0.0 for i in range(len(self.firsts))]
        if self.step is not None:
            row.append(1.0 if t >= self.step else 0.0)
        return row

    def history_row(self, t: int, weekdays: Sequence[int]) -> list[float]:
        return self.row(t, weekdays[t], self.firsts.index(t) if t in self.firsts else None)


class _Fit:
    """Generalised least squares for one φ (φ = 0: ordinary least squares)."""

    __slots__ = ("phi", "beta", "sse", "cholesky", "log_det")

    def __init__(self, phi: float, beta: list[float], sse: float, cholesky: list[list[float]], log_det: float) -> None:
        self.phi, self.beta = phi, beta
        self.sse = sse  # of the transformed residuals: n - p times the innovations' variance
        self.cholesky = cholesky  # L with LLᵀ = X*ᵀX* of the transformed design
        self.log_det = log_det  # log |X*ᵀX*|

    def inverse(self) -> list[list[float]]:
        """(X*ᵀX*)⁻¹ = L⁻ᵀL⁻¹."""
        lower, p = self.cholesky, len(self.cholesky)
        inv = [[0.0] * p for _ in range(p)]  # L⁻¹, lower triangular
        for i in range(p):
            inv[i][i] = 1.0 / lower[i][i]
            for j in range(i):
                inv[i][j] = -_dot(lower[i][j:i], [inv[k][j] for k in range(j, i)]) / lower[i][i]
        columns = [[inv[k][i] for k in range(p)] for i in range(p)]
        return [[_dot(columns[i], columns[j]) for j in range(p)] for i in range(p)]


class _Moments:
    """Cross products of a design and the history, from which the Prais-Winsten regression for any φ follows
    in O(p³): with rows x_t, X*ᵀX* = A - φ C + φ² B, and likewise for X*ᵀy* and y*ᵀy*."""

    def __init__(self, design: _Design, values: Sequence[float], weekdays: Sequence[int]) -> None:
        rows = [design.history_row(t, weekdays) for t in range(design.n)]
        self.design, self.rows, self.values, self.weekdays = design, rows, values, weekdays
        p, n = design.columns, design.n
        columns = [[r[i] for r in rows] for i in range(p)] + [list(values)]  # y as the last column
        a = [[0.0] * (p + 1) for _ in range(p + 1)]
        lag = [[0.0] * (p + 1) for _ in range(p + 1)]
        for i, ci in enumerate(columns):
            for j in range(p + 1):
                if j >= i:
                    a[i][j] = a[j][i] = _dot(ci, columns[j])
                lag[i][j] = _dot(ci[1:], columns[j][: n - 1])  # Σ_t x_t,i x_t-1,j
        ends = [[columns[i][0] * columns[j][0] + columns[i][-1] * columns[j][-1] for j in range(p + 1)]
                for i in range(p + 1)]  # fmt: skip
        b = [[a[i][j] - ends[i][j] for j in range(p + 1)] for i in range(p + 1)]
        c = [[lag[i][j] + lag[j][i] for j in range(p + 1)] for i in range(p + 1)]
        self.a, self.b, self.c = ([row[:p] for row in m[:p]] for m in (a, b, c))
        self.xy_a, self.xy_b, self.xy_c = ([m[i][p] for i in range(p)] for m in (a, b, c))
        self.yy_a, self.yy_b, self.yy_c = (m[p][p] for m in (a, b, c))

    def solve(self, phi: float = 0.0) -> _Fit | None:
        """None when the design is (numerically) singular."""
        p, sq = self.design.columns, phi * phi
        xtx = [[self.a[i][j] + sq * self.b[i][j] - phi * self.c[i][j] for j in range(i + 1)] for i in range(p)]
        lower = _cholesky(xtx)
        if lower is None:
            return None
        xty = [self.xy_a[i] + sq * self.xy_b[i] - phi * self.xy_c[i] for i in range(p)]
        z = [0.0] * p
        for i in range(p):
            z[i] = (xty[i] - _dot(lower[i][:i], z[:i])) / lower[i][i]
        beta = [0.0] * p
        for i in range(p - 1, -1, -1):
            beta[i] = (z[i] - sum(lower[k][i] * beta[k] for k in range(i + 1, p))) / lower[i][i]
        yty = self.yy_a + sq * self.yy_b - phi * self.yy_c
        sse = max(0.0, yty - _dot(z, z))
        log_det = 2 * sum(math.log(lower[i][i]) for i in range(p))
        return _Fit(phi, beta, sse if sse > 1e-13 * max(yty, 1e-300) else 0.0, lower, log_det)

    def errors(self, beta: Sequence[float]) -> list[float]:
        return [y - _dot(r, beta) for r, y in zip(self.rows, self.values, strict=True)]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(map(operator.mul, a, b))


def _cholesky(lower_half: list[list[float]]) -> list[list[float]] | None:
    """L with LLᵀ = the symmetric matrix given by its lower half; None when not (numerically) positive definite."""
    p = len(lower_half)
    lower = [[0.0] * p for _ in range(p)]
    for i in range(p):
        row = lower[i]
        for j in range(i + 1):
            rest = lower_half[i][j] - _dot(row[:j], lower[j][:j])
            if i == j:
                if rest <= 1e-10 * abs(lower_half[i][i]) or rest <= 0:
                    return None
                row[i] = math.sqrt(rest)
            else:
                row[j] = rest / lower[j][j]
    return lower


class _Component:
    """The model for one φ, weighted by how well φ explains the history."""

    __slots__ = ("weight", "phi", "beta", "cov", "variance", "last_error")

    def __init__(
        self, weight: float, phi: float, beta: list[float], cov: list[list[float]], variance: float, last_error: float
    ) -> None:
        self.weight, self.phi, self.beta = weight, phi, beta
        self.cov = cov  # (X*ᵀX*)⁻¹ times the innovations' variance
        self.variance = variance  # of the innovations
        self.last_error = last_error


def _components(moments: _Moments, grid: Sequence[float]) -> list[_Component]:
    """Weights ∝ prior x restricted likelihood of φ (the coefficients and the innovations' variance integrated
    out): with Jeffreys' prior (1 - φ²)^-½, which cancels the likelihood's (1 - φ²)^½, |X*ᵀX*|^-½ SSE(φ)^-(n-p)/2,
    times the grid spacing around φ. A flat prior left φ too low for persistent series (0.66 for a true 0.85 on
    28 days) and their bands too narrow."""
    design = moments.design
    n, p = design.n, design.columns
    fits = [fit for fit in (moments.solve(phi) for phi in grid) if fit is not None]
    if not fits:
        return []
    if n - p <= 0 or any(fit.sse == 0 for fit in fits) or len(fits) == 1:
        fit = next((f for f in fits if f.phi == 0), fits[0])
        return [_component(1.0, fit, moments, n - p)]
    spacing = {
        phi: (nxt - prev) / 2 for prev, phi, nxt in zip((grid[0], *grid[:-1]), grid, (*grid[1:], grid[-1]), strict=True)
    }
    logs = [
        math.log(spacing[f.phi] or 1e-3) - 0.5 * f.log_det
        - (n - p) / 2 * math.log(f.sse)
        for f in fits
    ]  # fmt: skip
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    kept = [(w / total, f) for w, f in zip(weights, fits, strict=True) if w / total > 1e-3]
    norm = sum(w for w, _ in kept)
    return [_component(w / norm, f, moments, n - p) for w, f in kept]


def _component(weight: float, fit: _Fit, moments: _Moments, df: int) -> _Component:
    variance = fit.sse / df if df > 0 else 0.0
    return _Component(
        weight,
        fit.phi,
        fit.beta,
        [[variance * c for c in row] for row in fit.inverse()],
        variance,
        moments.values[-1] - _dot(moments.rows[-1], fit.beta),
    )


class _Part:
    """One shape of trend fitted to the history: straight (on the amounts) or compound (on their logarithms)."""

    __slots__ = ("weight", "proportional", "design", "components", "df", "first_charge")

    def __init__(
        self,
        weight: float,
        proportional: bool,
        design: _Design,
        components: list[_Component],
        df: int,
        first_charge: float = 0.0,
    ) -> None:
        self.weight, self.proportional, self.design, self.components, self.df = (
            weight, proportional, design, components, df
        )  # fmt: skip
        self.first_charge = first_charge  # compound: the latest 1st's excess, added as an amount on future 1sts

    def weighted(self, weight: float) -> _Part:
        return _Part(weight, self.proportional, self.design, self.components, self.df, self.first_charge)


@dataclass(frozen=True, eq=False)
class SpendModel:
    """A daily spend model fitted by `fit_model`; `predict_sum` forecasts the days after its history.

    `method` says what it is, for the card: "trend with day-of-week effects, last 56 days",
    "short history: average of 9 days". Money in the currency of the history.
    """

    method: str
    days: int  # days of history the fit used
    weekly: WeeklyPattern | None = None  # named only with dates, significant (p < 0.01) and material (>= 5 %)
    step_on: date | None = None  # first day at the new level, when a step was found (and dates were given)
    month_start_charge: Decimal | None = None  # the latest 1st's excess over an ordinary day, added on future 1sts
    _scale: Decimal = field(default=ZERO, repr=False)  # the fit is of the history divided by this
    _parts: tuple[_Part, ...] = field(default=(), repr=False)
    _last_weekday: int = field(default=0, repr=False)
    _last_day: date | None = field(default=None, repr=False)

    def predict_sum(self, days: int, level: Decimal = DEFAULT_LEVEL) -> Band:
        """Spend over the `days` days after the history's last day, with its `level` prediction interval.

        Never below zero. Decimal cents; `level` strictly between 0 and 1.
        """
        if not 0 < level < 1:
            raise ValueError(f"a prediction interval's level is between 0 and 1, not {level}")
        if days <= 0 or not self._parts:
            return Band(ZERO, ZERO, ZERO, level)
        firsts = [self._is_first(i) for i in range(1, days + 1)]
        pieces: list[_Piece] = []
        for part in self._parts:
            design, last = part.design, part.design.n - 1
            # A straight trend adds the 1st's own term; a compound one adds the 1st's excess as an amount.
            latest = len(design.firsts) - 1 if design.firsts and not part.proportional else None
            rows = [
                design.row(last + i, (self._last_weekday + i) % 7, latest if firsts[i - 1] else None)
                for i in range(1, days + 1)
            ]
            last_row = design.history_row(last, [self._last_weekday] * (last + 1))
            columns = [[row[j] for row in rows] for j in range(design.columns)]
            offset = part.first_charge * sum(firsts)
            for c in part.components:
                centre, sd = _sum_moments(c, rows, columns, last_row, part.proportional)
                pieces.append(_Piece(part.weight * c.weight, centre, sd if part.df > 0 else 0.0, part.df,
                                     part.proportional, offset))  # fmt: skip
        tail = (1 - float(level)) / 2
        likely, low, high = (max(0.0, _mixture_quantile(pieces, q)) for q in (0.5, tail, 1 - tail))
        return Band(self._money(likely), self._money(min(low, likely)), self._money(max(high, likely)), level)

    def _is_first(self, offset: int) -> bool:
        return self._last_day is not None and (self._last_day + timedelta(days=offset)).day == 1

    def _money(self, scaled: float) -> Decimal:
        return _decimal(scaled, self._scale)


def _sum_moments(
    c: _Component, rows: list[list[float]], columns: list[list[float]], last_row: list[float], proportional: bool
) -> tuple[float, float]:
    """Centre and standard deviation of the sum of the coming days under one component (of log(sum) when
    proportional). `rows`: the coming days' design rows; `columns`: the same, transposed.

    Day i: μ_i = x_iβ + φ^i e_n. The sum is treated as Σ w_i y_i (straight: w_i = 1; compound: the first-order
    expansion of log Σ exp, w_i = exp μ_i / Σ exp μ_j). Its error Σ w_i (x_i - φ^i x_n)(β̂ - β) + Σ_m u_m a_m,
    a_m = Σ_{i>=m} w_i φ^(i-m), has variance gᵀ Cov(β) g + σ² Σ a_m².
    """
    phi, days = c.phi, len(rows)
    if proportional:
        carry, daily = 1.0, []
        for row in rows:
            carry *= phi
            daily.append(_dot(row, c.beta) + carry * c.last_error)
        top = max(daily)
        exps = [math.exp(d - top) for d in daily]
        total = sum(exps)
        weights, centre = [e / total for e in exps], top + math.log(total)
        sums = [_dot(weights, column) for column in columns]
        running, noise, carried, power = 0.0, 0.0, 0.0, 1.0
        for w in reversed(weights):
            running = w + phi * running
            noise += running * running
        if phi:
            for w in weights:
                power *= phi
                carried += w * power
    else:  # w_i = 1: closed forms
        sums = [sum(column) for column in columns]
        carried = phi * (1 - phi**days) / (1 - phi) if phi else 0.0
        centre = _dot(sums, c.beta) + carried * c.last_error
        if phi:
            noise = (days - 2 * carried + phi * phi * (1 - phi ** (2 * days)) / (1 - phi * phi)) / (1 - phi) ** 2
        else:
            noise = float(days)
    g = [s - carried * x for s, x in zip(sums, last_row, strict=True)]
    noise *= c.variance
    parameters = max(0.0, sum(gi * _dot(cov_row, g) for gi, cov_row in zip(g, c.cov, strict=True)))
    if proportional:  # log Σ w_i e^ε_i has mean ≈ (Var ε - Var Σ w_i ε_i) / 2: the median of the sum
        centre += (c.variance / (1 - phi * phi) - noise) / 2
    return centre, math.sqrt(noise + parameters)


class _Piece:
    """One component's forecast of the sum: Student t around `centre` (of log(sum - offset) when proportional)."""

    __slots__ = ("weight", "centre", "sd", "df", "proportional", "offset")

    def __init__(self, weight: float, centre: float, sd: float, df: int, proportional: bool, offset: float) -> None:
        self.weight, self.centre, self.sd, self.df, self.proportional, self.offset = (
            weight, centre, sd, df, proportional, offset
        )  # fmt: skip


def _mixture_quantile(pieces: Sequence[_Piece], probability: float) -> float:
    """Quantile of the mixture of the pieces, in scaled money. Each piece's Student t is taken, at this tail, as
    the normal with the same quantile (exact for a single piece: sd x t/z); the mixture's quantile lies between
    the pieces' own."""
    tail = max(probability, 1 - probability)
    z = NormalDist().inv_cdf(probability)
    spreads = [
        p.sd * (t_quantile(tail, p.df) / NormalDist().inv_cdf(tail) if p.df > 0 and tail > 0.5 else 1.0) for p in pieces
    ]
    own = [
        p.offset + math.exp(min(700.0, p.centre + z * spread)) if p.proportional else p.centre + z * spread
        for p, spread in zip(pieces, spreads, strict=True)
    ]
    low, high = min(own), max(own)
    if len(pieces) == 1 or high - low <= 0:
        return own[0] if len(pieces) == 1 else low
    terms = [
        (p.weight, p.centre, spread * math.sqrt(2), p.proportional, p.offset)
        for p, spread in zip(pieces, spreads, strict=True)
    ]
    while high - low > 1e-7 * max(1.0, abs(high), abs(low)):
        middle = (low + high) / 2
        below = 0.0
        for weight, centre, spread, proportional, offset in terms:
            x = middle
            if proportional:
                if x <= offset:
                    continue
                x = math.log(x - offset)
            if spread > 0:
                below += weight * 0.5 * (1 + math.erf((x - centre) / spread))
            elif x >= centre:
                below += weight
        if below < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _decimal(scaled: float, scale: Decimal) -> Decimal:
    """A scaled float back to Decimal money, in cents (unrounded only where cents exceed Decimal's precision)."""
    amount = Decimal(repr(scaled if math.isfinite(scaled) else 0.0)) * scale
    try:
        return amount.quantize(CENT)
    except InvalidOperation:
        return amount


def fit_model(recent_daily: Sequence[Decimal], last_day: date | None = None) -> SpendModel:
    """Fit the spend model to `recent_daily` (oldest first, ending with `last_day`, the last complete cost day).

    Without `last_day` the weekdays are positional (no pattern is named) and the 1sts of a month are unknown.
    Any input is accepted: days before the first non-zero one are ignored (a scope that did not exist yet);
    amounts that are not finite count as zero.
    """
    amounts = [a if isinstance(a, Decimal) and a.is_finite() else ZERO for a in recent_daily]
    start = next((i for i, a in enumerate(amounts) if a != 0), len(amounts))
    amounts = amounts[start:]
    if not amounts:
        return SpendModel("no spend history", 0)
    scale = max(abs(a) for a in amounts)
    values = [float(a / scale) for a in amounts]
    n = len(values)
    last_weekday = last_day.weekday() if last_day else (len(recent_daily) - 1) % 7
    weekdays = [(last_weekday - (n - 1 - t)) % 7 for t in range(n)]
    firsts = [t for t in range(n) if last_day is not None and (last_day - timedelta(days=n - 1 - t)).day == 1]
    if n < MIN_MODEL_DAYS:
        return _short_history(values, weekdays, firsts, scale, last_day)
    return _regression(values, weekdays, firsts, scale, last_day)


def _short_history(
    values: list[float], weekdays: list[int], firsts: list[int], scale: Decimal, last_day: date | None
) -> SpendModel:
    """The average of the days there are (a 1st set apart when there are other days), independent days."""
    n = len(values)
    design = _Design(n, False, False, tuple(firsts) if len(firsts) < n else (), None)
    components = _components(_Moments(design, values, weekdays), (0.0,))
    charge = components[0].beta[-1] if design.firsts and components else 0.0
    method = f"short history: average of {n} days" if n > 1 else "short history: 1 day, no interval"
    return SpendModel(
        method,
        n,
        month_start_charge=_decimal(charge, scale) if charge > 0 else None,
        _scale=scale,
        _parts=(_Part(1.0, False, design, components, n - design.columns),) if components else (),
        _last_weekday=weekdays[-1],
        _last_day=last_day,
    )


class _Hypothesis:
    """The history fitted with or without a level step: its parts, and what the card says about it."""

    __slots__ = ("parts", "design", "fit", "p_weekday", "restarted")

    def __init__(self, parts: list[_Part], design: _Design, fit: _Fit, p_weekday: float, restarted: bool) -> None:
        self.parts, self.design, self.fit, self.p_weekday, self.restarted = parts, design, fit, p_weekday, restarted


def _regression(
    values: list[float], weekdays: list[int], firsts: list[int], scale: Decimal, last_day: date | None
) -> SpendModel:
    """Straight and compound trends, with and without the likeliest level step, weighted (see _step_weight).
    Designs are chosen on the logarithms when every ordinary day is well above zero, else on the amounts; a
    history at or below zero somewhere gets the straight trend only."""
    ordinary = sorted(v for t, v in enumerate(values) if t not in firsts)
    proportional = min(values) > 0 and ordinary[0] >= PROPORTIONAL_FLOOR * ordinary[len(ordinary) // 2]
    logs = [math.log(v) for v in values] if proportional else values
    n = len(values)
    scan = _Moments(_Design(n, True, _weekday_room(n, len(firsts)), tuple(firsts), None), logs, weekdays)
    step, weight = _scan_step(scan)
    hypotheses = [
        (w, h)
        for w, at in ((weight, step), (1 - weight, None))
        if w >= MIN_WEIGHT and (h := _hypothesis(values, logs, weekdays, firsts, at, proportional)) is not None
    ]
    if not hypotheses:  # a degenerate design (not expected with 14 consecutive days)
        return _short_history(values, weekdays, firsts, scale, last_day)
    total = sum(w for w, _ in hypotheses)
    parts = [part.weighted(part.weight * w / total) for w, h in hypotheses for part in h.parts]
    main = max(hypotheses, key=lambda wh: wh[0])[1]
    design, m = main.design, main.design.n

    step_on, span = None, f"last {m} days"
    if main.restarted or design.step is not None:
        back = m if main.restarted else m - (design.step or 0)  # days at the new level, the last one included
        step_on = last_day - timedelta(days=back - 1) if last_day is not None else None
        when = format_day(step_on) if step_on is not None else f"{back} days ago"
        span = (
            f"{m} days since a step on {when}" if main.restarted else f"last {m} days, level reset by a step on {when}"
        )
    significant = design.weekday and main.p_weekday < PATTERN_P and last_day is not None
    charge = _first_excess(main.parts[0]) if design.firsts else 0.0
    return SpendModel(
        "trend" + (" with day-of-week effects, " if design.weekday else ", ") + span,
        m,
        weekly=_pattern(design, main.fit.beta, proportional) if significant else None,
        step_on=step_on,
        month_start_charge=_decimal(charge, scale) if charge > 0 else None,
        _scale=scale,
        _parts=tuple(parts),
        _last_weekday=weekdays[-1],
        _last_day=last_day,
    )


def _hypothesis(
    values: list[float],
    logs: list[float],
    weekdays: list[int],
    firsts: list[int],
    step: int | None,
    proportional: bool,
) -> _Hypothesis | None:
    """The design for a step at `step` (None: no step) and its straight and compound parts, equally weighted.
    With RESTART_DAYS or more after the step, the fit restarts there; with fewer, the level does."""
    n = len(values)
    restarted = step is not None and n - step >= RESTART_DAYS
    if step is not None and restarted:
        values, logs, weekdays = values[step:], logs[step:], weekdays[step:]
        firsts = [t - step for t in firsts if t >= step]
        n, step = len(values), None
    moments = _Moments(_Design(n, True, False, tuple(firsts), step), logs, weekdays)
    fit, p_weekday = moments.solve(), 1.0
    if fit is None:
        return None
    if _weekday_room(n, moments.design.columns - 2):
        with_weekday = _Moments(_Design(n, True, True, tuple(firsts), step), logs, weekdays)
        fit_weekday = with_weekday.solve()
        if fit_weekday is not None:
            p_weekday = _weekday_p_value(fit.sse, fit_weekday.sse, n - with_weekday.design.columns)
            if p_weekday < WEEKDAY_P:
                moments, fit = with_weekday, fit_weekday
    design = moments.design
    straight = moments if not proportional else _Moments(design, values, weekdays)
    fitted = [_part(straight, False, values), _part(moments, True, values) if proportional else None]
    parts = [part for part in fitted if part is not None]
    if not parts:
        return None
    return _Hypothesis([p.weighted(1 / len(parts)) for p in parts], design, fit, p_weekday, restarted)


def _part(moments: _Moments, proportional: bool, values: list[float]) -> _Part | None:
    """The φ-mixture of one trend shape; a compound one learns the latest 1st's excess as an amount."""
    components = _components(moments, PHI_GRID)
    if not components:
        return None
    design = moments.design
    part = _Part(1.0, proportional, design, components, design.n - design.columns)
    if proportional and design.firsts:
        row = list(moments.rows[design.firsts[-1]])
        row[design.first_columns + len(design.firsts) - 1] = 0.0
        ordinary = sum(c.weight * math.exp(_dot(row, c.beta)) for c in components)
        part.first_charge = max(0.0, values[design.firsts[-1]] - ordinary)
    return part


def _first_excess(straight: _Part) -> float:
    """The latest 1st's own term of a straight trend: what it cost beyond an ordinary day."""
    column = straight.design.first_columns + len(straight.design.firsts) - 1
    return sum(c.weight * c.beta[column] for c in straight.components)


def _weekday_room(n: int, other_columns: int) -> bool:
    """Whether `n` days can afford six weekday effects besides level, slope and `other_columns`."""
    return n - (2 + 6 + other_columns) - 1 >= WEEKDAY_MIN_DF


def _phi(errors: list[float], design: _Design) -> float:
    """Lag-1 autocorrelation of the errors over pairs of ordinary days (a 1st's error is zero by its own
    term), corrected for its small-sample bias and clipped to [0, MAX_PHI].

    The raw estimate of regression residuals falls short by about (2 + 6φ) / m over m pairs (measured for 21 to
    56 days with and without weekday effects), hence φ = (raw + 2/m) / (1 - 6/m).
    """
    skip = set(design.firsts)
    pairs = [(errors[t - 1], errors[t]) for t in range(1, len(errors)) if t not in skip and t - 1 not in skip]
    denominator = sum(e * e for t, e in enumerate(errors) if t not in skip)
    m = len(pairs)
    if m <= 6 or denominator <= 0:
        return 0.0
    raw = sum(a * b for a, b in pairs) / denominator
    return min(MAX_PHI, max(0.0, (raw + 2 / m) / (1 - 6 / m)))


def _scan_step(scan: _Moments) -> tuple[int | None, float]:
    """The fit position where the level most likely stepped, and the weight a step there deserves.

    For a level shift from position k on, the drop in squared error is (Σ_{t>=k} r_t)² / (m - sᵀX(XᵀX)⁻¹Xᵀs),
    m = n - k. The largest drop is judged against the long-run variance of AR(1) errors, measured with the
    step in place: a step left in the residuals would look like strong autocorrelation and hide itself.
    That statistic S is about χ²(1) without a step; the step's weight is 1 / (1 + exp((STEP_THRESHOLD - S) / 2)),
    a likelihood ratio e^(S/2) against prior odds e^(-STEP_THRESHOLD/2) that pay for searching every day.
    """
    design = scan.design
    n, p = design.n, design.columns
    fit = scan.solve()
    if fit is None or n - p - 2 <= 0 or fit.sse <= 0:
        return None, 0.0
    errors, inverse = scan.errors(fit.beta), fit.inverse()
    suffix_x, suffix_r = [0.0] * p, 0.0
    best, best_at = 0.0, None
    for k in range(n - 1, STEP_MIN_BEFORE - 1, -1):
        suffix_x = [s + x for s, x in zip(suffix_x, scan.rows[k], strict=True)]
        suffix_r += errors[k]
        m = n - k
        if m < STEP_MIN_AFTER:
            continue
        leverage = sum(suffix_x[i] * _dot(inverse[i], suffix_x) for i in range(p))
        room = m - leverage
        if room > 1e-9 * m and suffix_r * suffix_r / room > best:
            best, best_at = suffix_r * suffix_r / room, k
    if best_at is None:
        return None, 0.0
    stepped = _Moments(_Design(n, True, design.weekday, design.firsts, best_at), scan.values, scan.weekdays)
    with_step = stepped.solve()
    if with_step is None:
        return None, 0.0
    if with_step.sse <= 0:
        return best_at, 1.0
    phi = _phi(stepped.errors(with_step.beta), stepped.design)
    long_run = with_step.sse / (n - p - 1) * (1 + phi) / (1 - phi)
    return best_at, 1 / (1 + math.exp(min(700.0, (STEP_THRESHOLD - best / long_run) / 2)))


def _weekday_p_value(sse_without: float, sse_with: float, df: int) -> float:
    if df <= 0:
        return 1.0
    if sse_with <= 1e-24:
        return 0.0 if sse_without > 1e-24 else 1.0
    return f_test_p_value(max(0.0, sse_without - sse_with) / 6 / (sse_with / df), 6, df)


def _pattern(design: _Design, beta: list[float], proportional: bool) -> WeeklyPattern | None:
    """The weekday effects as factors of the weekly average at the end of the history, and a phrase."""
    effects = [*beta[2:8], -sum(beta[2:8])]
    if proportional:
        multipliers = [math.exp(e) for e in effects]
        factors = [m / (sum(multipliers) / 7) for m in multipliers]
    else:
        level = beta[0] + beta[1] * ((design.n - 1) / 2) / design.n + (beta[-1] if design.step is not None else 0.0)
        if level <= 0:
            return None
        factors = [1 + e / level for e in effects]
    weekdays, weekend = factors[:5], factors[5:]
    working = sum(weekdays) / 5
    change = (sum(weekend) / 2) / working - 1 if working > 0 else 0.0
    apart = max(weekend) < min(weekdays) or min(weekend) > max(weekdays)
    if apart and abs(change) >= MATERIAL:
        phrase = f"weekends run {round(abs(change) * 100)} % {'lower' if change < 0 else 'higher'}"
    else:
        day = max(range(7), key=lambda d: abs(factors[d] - 1))
        deviation = factors[day] - 1
        if abs(deviation) < MATERIAL:
            return None
        direction = "lower" if deviation < 0 else "higher"
        phrase = f"{WEEKDAY_NAMES[day]} run {round(abs(deviation) * 100)} % {direction} than the weekly average"
    return WeeklyPattern(tuple(Decimal(repr(round(f, 2))) for f in factors), Decimal(repr(round(change, 2))), phrase)


def weekly_pattern(recent_daily: Sequence[Decimal], last_day: date) -> WeeklyPattern | None:
    """The weekly rhythm of `recent_daily` (oldest first, ending with `last_day`), when there is one:
    significant (p < 0.01) and material (a day or the weekend 5 % or more off the weekly average)."""
    return fit_model(recent_daily, last_day).weekly


@dataclass(frozen=True)
class PeriodForecast:
    """Where a period's spend is heading. Money in the cost currency."""

    actual: Decimal
    burn_rate: Decimal  # actual / elapsed days
    burn_rate_total: Decimal  # actual + burn rate x remaining days
    trend_total: Band  # actual + the model's forecast of the remaining days, with its interval
    remaining_days: int
    method: str = ""  # SpendModel.method: "trend with day-of-week effects, last 56 days"
    weekly: WeeklyPattern | None = None  # the history's weekly rhythm, when there is a significant one

    @property
    def likely(self) -> Decimal:
        return self.trend_total.likely


def forecast_period(
    actual: Decimal,
    elapsed_days: int,
    remaining_days: int,
    recent_daily: Sequence[Decimal],
    level: Decimal = DEFAULT_LEVEL,
    *,
    last_day: date | None = None,
) -> PeriodForecast:
    """Forecast the period total from `actual` so far and the recent daily history (oldest first, ending with
    `last_day`, the last complete day). Give `last_day` whenever it is known: the model then knows the weekdays
    and the 1sts of a month."""
    burn = actual / elapsed_days if elapsed_days > 0 else ZERO
    model = fit_model(recent_daily, last_day)
    rest = model.predict_sum(remaining_days, level)
    total = Band(actual + rest.likely, actual + rest.low, actual + rest.high, level)
    return PeriodForecast(
        actual, burn, actual + burn * remaining_days, total, remaining_days, model.method, model.weekly
    )


def horizon_forecasts(
    recent_daily: Sequence[Decimal],
    level: Decimal = DEFAULT_LEVEL,
    horizons: Sequence[int] = HORIZONS,
    *,
    last_day: date | None = None,
) -> dict[int, Band]:
    """Spend over the next 30/60/90 days (after `last_day`), each with its prediction interval."""
    model = fit_model(recent_daily, last_day)
    return {days: model.predict_sum(days, level) for days in horizons}


def runway_days(amount: Decimal, actual: Decimal, burn_rate: Decimal) -> Decimal | None:
    """Days until `amount` is used up at `burn_rate` per day; 0 if already exceeded, None if no burn."""
    if actual >= amount:
        return ZERO
    if burn_rate <= 0:
        return None
    return (amount - actual) / burn_rate
