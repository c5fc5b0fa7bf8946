"""`make bench` section: the forecast backtest, on held-out synthetic daily cost series.

For every family of series below, `Sizes.series` series per forecast, each drawn afresh from a fixed seed:
- month end, forecast on day 7, 14 or 21 of a month from the last DEFAULT_LOOKBACK days (what the budget guard
  fetches), compared with the month's real total (spend so far + the forecast of the remaining days);
- the next 30, 60 and 90 days, forecast on a random day of a month.
Reported per family: how often the 80 % and the 95 % band held the truth (target 76-84 % and 92-98 %), and the
mean absolute percentage error of the likely value (target: no worse than today's model). Three models run on
the same series: the model of finops_guard.costs.forecast ("new"), the straight-line trend it replaced ("old",
kept below as the baseline, in Decimal as it was), and additive Holt-Winters with a weekly season (the challenger
the issue named; its smoothing constants by grid search, its band from the ETS(A,A,A) variance of a sum).

The families are shaped like cloud spend: a level between 20 and 20,000 a day (log-uniform), daily noise of 3 to
15 % of it, a straight trend of -9 to +15 % a month, and, per family, a weekday rhythm (weekends 10-50 % lower),
day-to-day autocorrelation (AR(1), φ 0.3-0.85), a level step somewhere in the history (+20-80 % or -20-50 %),
a charge on every 1st of a month (2-12 days of spend, the same every month), or compound growth
(3-20 % a month instead of the straight trend); "cloud-like" combines them all (a step in half of its series).
No step falls in the forecast period itself: no model can see that coming.

No real series: no public daily cloud-cost series with a licence that allows keeping it here was found (this
machine has no live network; the one published daily cost series met, mybinder.org's, is not AWS-shaped and its
data licence is not stated next to it).

`python -m devtools.forecast_backtest` prints the tables; `--json` prints the figures as JSON (bench.py runs it in
a fresh interpreter); `--smoke` runs a few series per family (a test that the backtest runs, not a figure);
`--series N` sets the series per family and forecast, `--jobs N` the processes (default 2),
`--markdown` prints README tables.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from finops_guard.costs.forecast import DEFAULT_LOOKBACK, Band, fit_model, t_quantile

SEED = 20261121
HISTORY_DAYS = DEFAULT_LOOKBACK
OLD_LOOKBACK = 28  # DEFAULT_LOOKBACK before this model
MONTH_END_DAYS = (7, 14, 21)
HORIZON_DAYS = (30, 60, 90)
LEVELS = (Decimal("0.8"), Decimal("0.95"))
TARGET_COVERAGE = {"0.8": (76.0, 84.0), "0.95": (92.0, 98.0)}
COLUMNS = tuple(f"month end, day {d}" for d in MONTH_END_DAYS) + tuple(f"next {h} days" for h in HORIZON_DAYS)
MODELS = ("new", "old", "holt-winters")


@dataclass(frozen=True)
class Sizes:
    series: int  # per family and forecast


FULL = Sizes(series=1000)
SMOKE = Sizes(series=8)


@dataclass(frozen=True)
class Shape:
    weekly: bool = False
    autocorrelated: bool = False
    step: float = 0.0  # probability of a level step in the history
    month_start: bool = False
    growth: bool = False


FAMILIES = {
    "independent noise": Shape(),
    "weekly rhythm": Shape(weekly=True),
    "autocorrelation": Shape(autocorrelated=True),
    "step changes": Shape(step=1.0),
    "month-start charges": Shape(month_start=True),
    "growth": Shape(growth=True),
    "cloud-like (all)": Shape(weekly=True, autocorrelated=True, step=0.5, month_start=True, growth=True),
}


def simulate(shape: Shape, rng: random.Random, first: date, days: int, as_of: date, history: int) -> list[Decimal]:
    """`days` daily costs from `first`; a step, if any, within the history that ends on `as_of`."""
    level = math.exp(rng.uniform(math.log(20), math.log(20_000)))
    noise = rng.uniform(0.03, 0.15)
    slope = 0.0 if shape.growth else rng.uniform(-0.003, 0.005)  # a day, relative to the level
    growth = rng.uniform(0.03, 0.2) if shape.growth else 0.0  # a month, compound
    weekly = [1.0] * 7
    if shape.weekly:
        weekend = 1 - rng.uniform(0.1, 0.5)
        weekly = [rng.uniform(0.97, 1.03) for _ in range(5)] + [weekend * rng.uniform(0.97, 1.03) for _ in range(2)]
    phi = rng.uniform(0.3, 0.85) if shape.autocorrelated else 0.0
    step_at, step = days, 1.0
    if rng.random() < shape.step:
        step_at = (as_of - first).days - history + 1 + rng.randint(2, history - 2)
        step = rng.uniform(1.2, 1.8) if rng.random() < 0.6 else rng.uniform(0.5, 0.8)
    charge = level * rng.uniform(2, 12) if shape.month_start else 0.0
    error = rng.gauss(0, 1)
    values = []
    for t in range(days):
        day = first + timedelta(days=t)
        trend = (1 + growth) ** (t / 30.4) if shape.growth else 1 + slope * t
        base = level * trend * (step if t >= step_at else 1.0) * weekly[day.weekday()]
        if t:
            error = phi * error + math.sqrt(1 - phi * phi) * rng.gauss(0, 1)
        value = base * (1 + noise * error)
        if day.day == 1:
            value += charge
        values.append(Decimal(f"{max(0.0, value):.2f}"))
    return values


@dataclass(frozen=True)
class Case:
    """One forecast to make: the history up to `last_day`, the spend to add, and the truths to hit."""

    history: tuple[Decimal, ...]
    last_day: date
    actual: Decimal  # month to date, for a month-end case; 0 for a horizon case
    days: tuple[int, ...]  # days after last_day to forecast: the month's rest, or 30, 60, 90
    truths: tuple[Decimal, ...]  # actual + the real spend of those days
    columns: tuple[str, ...]


def cases(family: str, rng: random.Random, history_days: int = HISTORY_DAYS) -> list[Case]:
    """A month-end case from each of MONTH_END_DAYS and a horizon case, each on a series of its own."""
    shape = FAMILIES[family]
    made = []
    for origin in (*MONTH_END_DAYS, None):
        year, month = rng.randint(2024, 2026), rng.randint(1, 12)
        month_days = ((date(year + month // 12, month % 12 + 1, 1)) - date(year, month, 1)).days
        as_of = date(year, month, origin or rng.randint(1, month_days))
        first = as_of - timedelta(days=history_days - 1)
        ahead = month_days - as_of.day if origin else max(HORIZON_DAYS)
        series = simulate(shape, rng, first, history_days + ahead, as_of, history_days)
        history, future = tuple(series[:history_days]), series[history_days:]
        if origin:
            actual = sum(history[history_days - origin :], Decimal(0))
            made.append(Case(history, as_of, actual, (ahead,), (actual + sum(future, Decimal(0)),),
                             (f"month end, day {origin}",)))  # fmt: skip
        else:
            truths = tuple(sum(future[:h], Decimal(0)) for h in HORIZON_DAYS)
            made.append(Case(history, as_of, Decimal(0), HORIZON_DAYS, truths,
                             tuple(f"next {h} days" for h in HORIZON_DAYS)))  # fmt: skip
    return made


Predictor = Callable[[int, Decimal], Band]


def new_model(history: Sequence[Decimal], last_day: date) -> Predictor:
    return fit_model(history, last_day).predict_sum


# --- the baseline: today's model before this change, unchanged (straight line, t-intervals, in Decimal) -------


@dataclass(frozen=True)
class OldTrend:
    intercept: Decimal
    slope: Decimal
    residual_variance: Decimal
    n: int
    sxx: Decimal

    def predict_sum(self, first_x: int, days: int, level: Decimal) -> Band:
        zero = Decimal(0)
        if days <= 0:
            return Band(zero, zero, zero, level)
        xs = range(first_x, first_x + days)
        point = sum((max(zero, self.intercept + self.slope * x) for x in xs), zero)
        if self.n < 3:
            return Band(point, point, point, level)
        mean_x = Decimal(self.n - 1) / 2
        centred_sum = sum((Decimal(x) - mean_x for x in xs), zero)
        leverage = Decimal(days) ** 2 / self.n + (centred_sum**2 / self.sxx if self.sxx else zero)
        spread = (self.residual_variance * (days + leverage)).sqrt()
        t = Decimal(str(round(t_quantile((1 + float(level)) / 2, self.n - 2), 6)))
        margin = t * spread
        return Band(point, max(zero, point - margin), point + margin, level)


def old_fit_trend(daily: Sequence[Decimal]) -> OldTrend:
    zero = Decimal(0)
    n = len(daily)
    if n == 0:
        return OldTrend(zero, zero, zero, 0, zero)
    mean_x = Decimal(n - 1) / 2
    mean_y = sum(daily, zero) / n
    sxx = sum(((Decimal(x) - mean_x) ** 2 for x in range(n)), zero)
    sxy = sum(((Decimal(x) - mean_x) * (y - mean_y) for x, y in enumerate(daily)), zero)
    slope = sxy / sxx if sxx else zero
    intercept = mean_y - slope * mean_x
    residuals = sum(((y - (intercept + slope * x)) ** 2 for x, y in enumerate(daily)), zero)
    variance = residuals / (n - 2) if n > 2 else zero
    return OldTrend(intercept, slope, variance, n, sxx)


def old_model(history: Sequence[Decimal], last_day: date) -> Predictor:
    """As the budget guard ran it: on the last OLD_LOOKBACK days."""
    recent = history[-OLD_LOOKBACK:]
    trend = old_fit_trend(recent)
    return lambda days, level: trend.predict_sum(len(recent), days, level)


# --- the challenger: additive Holt-Winters with a weekly season --------------------------------------------

ALPHAS, BETAS, GAMMAS = (0.05, 0.15, 0.3, 0.5, 0.7), (0.0, 0.01, 0.03, 0.1), (0.0, 0.05, 0.15, 0.3)


def holt_winters(history: Sequence[Decimal], last_day: date) -> Predictor:
    """ETS(A,A,A), season 7, started from the first two weeks; α, β, γ minimise the one-step squared error."""
    y = [float(v) for v in history]
    n, m = len(y), 7
    level0 = sum(y[:m]) / m
    trend0 = (sum(y[m : 2 * m]) / m - level0) / m
    season0 = [y[i] - level0 for i in range(m)]
    best: tuple[float, float, float, float, float, float, list[float]] | None = None
    for alpha in ALPHAS:
        for beta in BETAS:
            for gamma in GAMMAS:
                if gamma > 1 - alpha:
                    continue
                level, trend, season, sse = level0, trend0, season0[:], 0.0
                for t in range(n):
                    error = y[t] - (level + trend + season[t % m])
                    sse += error * error
                    level, trend = level + trend + alpha * error, trend + beta * error
                    season[t % m] += gamma * error
                if best is None or sse < best[0]:
                    best = (sse, alpha, beta, gamma, level, trend, season)
    assert best is not None
    sse, alpha, beta, gamma, level, trend, season = best
    sigma = math.sqrt(sse / max(1, n - 3 - m))

    def predict(days: int, band_level: Decimal) -> Band:
        point = sum(max(0.0, level + i * trend + season[(n - 1 + i) % m]) for i in range(1, days + 1))
        c = [alpha + j * beta + (gamma if j % m == 0 else 0.0) for j in range(days)]
        cumulative, variance = [0.0], 0.0
        for j in range(1, days):
            cumulative.append(cumulative[-1] + c[j])
        for k in range(1, days + 1):
            variance += (1 + cumulative[days - k]) ** 2
        z = t_quantile((1 + float(band_level)) / 2, 10_000)
        margin = z * sigma * math.sqrt(variance)
        as_decimal = [Decimal(f"{v:.2f}") for v in (point, max(0.0, point - margin), point + margin)]
        return Band(as_decimal[0], as_decimal[1], as_decimal[2], band_level)

    return predict


MODEL_FUNCTIONS: dict[str, Callable[[Sequence[Decimal], date], Predictor]] = {
    "new": new_model,
    "old": old_model,
    "holt-winters": holt_winters,
}


@dataclass
class Tally:
    covered: dict[str, int] = field(default_factory=lambda: {str(level): 0 for level in LEVELS})
    errors: list[float] = field(default_factory=list)

    def add(self, bands: Sequence[Band], truth: Decimal) -> None:
        for band in bands:
            self.covered[str(band.level)] += band.low <= truth <= band.high
        self.errors.append(float(abs(bands[0].likely - truth) / truth) * 100 if truth else 0.0)

    def figures(self) -> dict[str, float]:
        n = len(self.errors)
        return {
            **{f"cover_{level}": 100 * count / n for level, count in self.covered.items()},
            "mape": sum(self.errors) / n,
        }


def _family(task: tuple[str, int, int, tuple[str, ...], int]) -> tuple[str, dict[str, Any], dict[str, float]]:
    """One family's series through every model: its figures, and the seconds each model took."""
    family, number, series, models, history_days = task
    rng = random.Random(SEED * 100 + number)
    tallies = {model: {c: Tally() for c in COLUMNS} for model in models}
    seconds = dict.fromkeys(models, 0.0)
    for _ in range(series):
        for case in cases(family, rng, history_days):
            for model in models:
                clock = time.perf_counter()
                predict = MODEL_FUNCTIONS[model](case.history, case.last_day)
                for days, truth, column in zip(case.days, case.truths, case.columns, strict=True):
                    bands = []
                    for level in LEVELS:
                        rest = predict(days, level)
                        bands.append(Band(case.actual + rest.likely, case.actual + rest.low, case.actual + rest.high,
                                          level))  # fmt: skip
                    tallies[model][column].add(bands, truth)
                seconds[model] += time.perf_counter() - clock
    return family, {m: {c: tallies[m][c].figures() for c in COLUMNS} for m in models}, seconds


def measure(
    sizes: Sizes, models: Sequence[str] = MODELS, history_days: int = HISTORY_DAYS, jobs: int = 1
) -> dict[str, Any]:
    """Every family through `models`, in `jobs` processes (a family each at a time; the same figures either way)."""
    started = time.perf_counter()
    tasks = [(family, number, sizes.series, tuple(models), history_days) for number, family in enumerate(FAMILIES)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_family, tasks))
    else:
        results = [_family(task) for task in tasks]
    figures = {model: {family: found[model] for family, found, _ in results} for model in models}
    seconds = {model: sum(spent[model] for _, _, spent in results) for model in models}
    misses = judge(figures) if "old" in figures and "new" in figures else []
    correct = all(
        0 <= cell["cover_0.8"] <= cell["cover_0.95"] <= 100 and math.isfinite(cell["mape"])
        for model in figures.values()
        for family in model.values()
        for cell in family.values()
    )
    forecasts = sizes.series * len(FAMILIES) * (len(MONTH_END_DAYS) + 1)
    return {
        "series": sizes.series,
        "history_days": history_days,
        "seed": SEED,
        "figures": figures,
        "fit_ms": {model: 1000 * spent / forecasts for model, spent in seconds.items()},
        "seconds": time.perf_counter() - started,
        "misses": misses,
        "correct": correct,
        "smoke": sizes != FULL,
        "met": sizes == FULL and correct and not misses,
    }


def judge(figures: dict[str, Any]) -> list[str]:
    """Every cell of the new model outside its coverage target, or with a larger MAPE than the old model's."""
    misses = []
    for family, row in figures["new"].items():
        for column, cell in row.items():
            for level, (low, high) in TARGET_COVERAGE.items():
                if not low <= cell[f"cover_{level}"] <= high:
                    misses.append(f"{family}, {column}: {level} band covers {cell[f'cover_{level}']:.1f} %")
            old = figures["old"][family][column]["mape"]
            if cell["mape"] > old:
                misses.append(f"{family}, {column}: MAPE {cell['mape']:.1f} % > old {old:.1f} %")
    return misses


def report(found: dict[str, Any]) -> list[str]:
    figures = found["figures"]
    verdict = "not judged (smoke run)" if found.get("smoke") else "met" if found["met"] else "NOT MET"
    shown = [m for m in MODELS if m in figures]
    lines = [
        f"Forecast backtest: {found['series']:,} held-out synthetic series per family and forecast,"
        f" {found['history_days']} days of history, seed {found['seed']} ({found['seconds']:.0f} s; fit + forecast"
        f" per series: " + ", ".join(f"{m} {found['fit_ms'][m]:.1f} ms" for m in shown) + ")",
    ]
    header = f"    {'family':20s} | " + " | ".join(f"{c:>19s}" for c in COLUMNS)
    for metric, title in (
        ("cover_0.8", "80 % band coverage, % (target 76-84)"),
        ("cover_0.95", "95 % band coverage, % (target 92-98)"),
        ("mape", "MAPE of the likely value, % (target: new <= old)"),
    ):
        lines.append(f"  {title}: " + " / ".join(shown))
        lines.append(header)
        for family in FAMILIES:
            cells = []
            for column in COLUMNS:
                cells.append(" / ".join(f"{figures[m][family][column][metric]:.1f}" for m in shown))
            lines.append(f"    {family:20s} | " + " | ".join(f"{c:>19s}" for c in cells))
    lines.append(f"  forecast targets (every 80 % band 76-84 %, every 95 % band 92-98 %, MAPE <= old): {verdict}")
    if not found.get("smoke"):
        lines += [f"    missed: {miss}" for miss in found["misses"]]
    return lines


def markdown(found: dict[str, Any]) -> list[str]:
    """The figures as README tables: coverage and MAPE of the new model, the old one's in brackets."""
    figures = found["figures"]
    lines = []
    for metric, title in (("cover_0.8", "80 % band held the truth"), ("cover_0.95", "95 % band held the truth"),
                          ("mape", "MAPE of the likely value")):  # fmt: skip
        lines += [f"| {title}, new (old) | " + " | ".join(COLUMNS) + " |", "| --- |" + " --- |" * len(COLUMNS)]
        for family in FAMILIES:
            cells = [f"{figures['new'][family][c][metric]:.1f} % ({figures['old'][family][c][metric]:.1f})"
                     for c in COLUMNS]  # fmt: skip
            lines.append(f"| {family} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def main(argv: list[str]) -> int:
    """Exit 0 when every target is met; with --smoke, when the run was correct (its size judges nothing)."""
    smoke = "--smoke" in argv
    sizes = SMOKE if smoke else FULL
    if "--series" in argv:
        sizes = Sizes(series=int(argv[argv.index("--series") + 1]))
    history = int(argv[argv.index("--history") + 1]) if "--history" in argv else HISTORY_DAYS
    models = argv[argv.index("--models") + 1].split(",") if "--models" in argv else MODELS
    jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1 if smoke else min(2, os.cpu_count() or 1)
    found = measure(sizes, models, history, jobs)
    if "--json" in argv:
        print(json.dumps(found))
    elif "--markdown" in argv:
        print("\n".join(markdown(found)))
    else:
        print("\n".join(report(found)))
    return 0 if found["correct" if smoke else "met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
