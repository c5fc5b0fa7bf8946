import random
from decimal import Decimal as D

import pytest
from finops_guard.costs import forecast
from finops_guard.costs.forecast import fit_trend, forecast_period, horizon_forecasts, runway_days, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.9, 26, 1.3150), (0.9, 5, 1.4759), (0.95, 10, 1.8125), (0.975, 30, 2.0423)],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-3)


def test_trend_recovers_an_exact_line():
    trend = fit_trend([D(10 + 2 * x) for x in range(28)])
    assert trend.slope == D(2) and trend.intercept == D(10) and trend.residual_variance == 0


def test_a_noiseless_series_has_a_zero_width_band():
    band = fit_trend([D(5)] * 28).predict_sum(28, 30, D("0.8"))
    assert band.likely == band.low == band.high == D(150)


def test_band_widens_with_horizon_and_contains_the_point():
    rng = random.Random(1)
    series = [D(str(round(100 + rng.gauss(0, 10), 2))) for _ in range(28)]
    bands = horizon_forecasts(series)
    widths = [bands[h].high - bands[h].low for h in (30, 60, 90)]
    assert widths[0] < widths[1] < widths[2]
    for band in bands.values():
        assert band.low <= band.likely <= band.high
        assert band.best == band.low and band.worst == band.high


def test_period_forecast_adds_actual_to_the_projection():
    result = forecast_period(D(150), elapsed_days=15, remaining_days=15, recent_daily=[D(10)] * 28)
    assert result.burn_rate == D(10) and result.burn_rate_total == D(300)
    assert result.trend_total.likely == D(300) and result.likely == D(300)


def test_complete_period_forecast_is_the_actual():
    result = forecast_period(D(310), elapsed_days=31, remaining_days=0, recent_daily=[D(10)] * 28)
    assert result.trend_total == forecast.Band(D(310), D(310), D(310), D("0.8"))


def test_forecast_never_projects_negative_spend():
    falling = [D(28 - x) for x in range(28)]
    band = fit_trend(falling).predict_sum(28, 60, D("0.8"))
    assert band.likely == 0 and band.low == 0


def test_runway():
    assert runway_days(D(1000), D(400), D(20)) == D(30)
    assert runway_days(D(1000), D(1000), D(20)) == 0
    assert runway_days(D(1000), D(0), D(0)) is None


def backtest(level: D, trials: int, horizon: int, noise: float, seed: int):
    rng = random.Random(seed)
    covered, errors = 0, []
    for _ in range(trials):
        base, slope = rng.uniform(50, 500), rng.uniform(-1, 3)

        def day(x, base=base, slope=slope):
            return max(0.0, base + slope * x + rng.gauss(0, noise * base))

        history = [D(str(round(day(x), 4))) for x in range(28)]
        truth = D(str(round(sum(day(x) for x in range(28, 28 + horizon)), 4)))
        band = fit_trend(history).predict_sum(28, horizon, level)
        covered += band.low <= truth <= band.high
        errors.append(abs(band.likely - truth) / truth)
    return covered / trials, sorted(errors)[len(errors) // 2]


def test_backtest_80_percent_interval_covers_the_truth_about_80_percent_of_the_time():
    coverage, median_error = backtest(D("0.8"), trials=400, horizon=30, noise=0.1, seed=20261121)
    assert 0.74 <= coverage <= 0.86
    assert median_error < D("0.08")


def test_backtest_95_percent_interval_is_wider_and_covers_more():
    coverage, _ = backtest(D("0.95"), trials=400, horizon=30, noise=0.1, seed=7)
    assert 0.91 <= coverage <= 0.99
