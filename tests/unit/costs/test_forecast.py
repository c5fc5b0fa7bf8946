import random
import re
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.costs import forecast
from finops_guard.costs.forecast import (
    DEFAULT_LOOKBACK,
    f_test_p_value,
    fit_model,
    forecast_period,
    horizon_forecasts,
    runway_days,
    t_quantile,
    weekly_pattern,
)
from hypothesis import given, settings
from hypothesis import strategies as st

LAST_DAY = date(2026, 11, 15)  # a Sunday; the 56 days before it hold 1 Oct and 1 Nov


def history(
    value,
    days: int = DEFAULT_LOOKBACK,
    last_day: date = LAST_DAY,
    noise: float = 0.0,
    seed: int = 1,
) -> list[D]:
    """`days` daily costs ending on `last_day`: value(day) plus relative noise, in cents."""
    rng = random.Random(seed)
    days_ = [last_day - timedelta(days=days - 1 - i) for i in range(days)]
    return [D(f"{value(day) * (1 + noise * rng.gauss(0, 1)):.2f}") for day in days_]


# --- statistics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.9, 26, 1.3150), (0.9, 5, 1.4759), (0.95, 10, 1.8125), (0.975, 30, 2.0423)],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-3)


@pytest.mark.parametrize(
    ("f", "df_num", "df_den", "p"), [(2.599, 6, 20, 0.05), (4.965, 1, 10, 0.05), (3.87, 6, 40, 0.004)]
)
def test_f_test_p_value_matches_tables(f, df_num, df_den, p):
    assert f_test_p_value(f, df_num, df_den) == pytest.approx(p, abs=1e-3)


# --- the forecast ----------------------------------------------------------------------------------


def test_a_noiseless_flat_history_forecasts_its_level_with_a_zero_width_band():
    band = fit_model([D(5)] * 28).predict_sum(30)
    assert band.likely == band.low == band.high == D(150)


def test_period_forecast_adds_actual_to_the_projection():
    result = forecast_period(D(150), elapsed_days=15, remaining_days=15, recent_daily=[D(10)] * 28)
    assert result.burn_rate == D(10) and result.burn_rate_total == D(300)
    assert result.trend_total.likely == D(300) and result.likely == D(300)


def test_complete_period_forecast_is_the_actual():
    result = forecast_period(D(310), elapsed_days=31, remaining_days=0, recent_daily=[D(10)] * 28)
    assert result.trend_total == forecast.Band(D(310), D(310), D(310), D("0.8"))


def test_forecast_never_projects_negative_spend():
    falling = [D(56 - x) for x in range(56)]
    band = fit_model(falling).predict_sum(90)
    assert 0 <= band.low <= band.likely


def test_a_rising_history_forecasts_more_than_it_spent_and_the_band_widens_with_the_horizon():
    rising = history(lambda day: 100 + 2 * (day - LAST_DAY).days, days=56, noise=0.05)
    bands = horizon_forecasts(rising, last_day=LAST_DAY)
    widths = [bands[h].high - bands[h].low for h in (30, 60, 90)]
    assert widths[0] < widths[1] < widths[2]
    assert bands[30].likely > 30 * 100
    for band in bands.values():
        assert band.low <= band.likely <= band.high and band.best == band.low and band.worst == band.high


def test_the_95_percent_band_holds_the_80_percent_band():
    spend = history(lambda day: 100, days=56, noise=0.1)
    narrow, wide = (fit_model(spend, LAST_DAY).predict_sum(30, level) for level in (D("0.8"), D("0.95")))
    assert wide.low < narrow.low <= narrow.likely == wide.likely <= narrow.high < wide.high


def test_the_same_history_gives_the_same_forecast():
    spend = history(lambda day: 100 + (day.weekday() >= 5) * -30, days=56, noise=0.1)
    assert fit_model(spend, LAST_DAY).predict_sum(45) == fit_model(list(spend), LAST_DAY).predict_sum(45)


def test_tomorrow_carries_todays_deviation_when_days_are_autocorrelated():
    # Given day-to-day autocorrelated spend (φ = 0.85) that ends above its average
    rng, error, spend = random.Random(4), 0.0, []
    for _ in range(56):
        error = 0.85 * error + rng.gauss(0, 5)
        spend.append(D(f"{100 + error:.2f}"))
    average, today = sum(spend) / 56, spend[-1]
    assert today - average > 5
    # When tomorrow is forecast, then it stays near today, not the average
    tomorrow = fit_model(spend, LAST_DAY).predict_sum(1).likely
    assert abs(tomorrow - today) < abs(tomorrow - average) / 4


def test_one_odd_day_of_independent_noise_is_not_carried():
    spend = history(lambda day: 100, days=56, noise=0.03, seed=8)
    spend[-1] = D(112)
    assert fit_model(spend, LAST_DAY).predict_sum(1).likely < D(104)


# --- month-start charges -----------------------------------------------------------------------------


def with_month_start(day: date) -> float:
    return 100 + (900 if day.day == 1 else 0)


def test_month_start_charges_are_kept_out_of_the_daily_fit_and_added_back_on_the_first():
    spend = history(with_month_start, days=56, noise=0.02)
    model = fit_model(spend, LAST_DAY)
    assert model.month_start_charge == pytest.approx(D(900), rel=D("0.05"))
    # The rest of November holds no 1st; the next 30 days hold 1 December.
    rest_of_month = model.predict_sum(15)
    next_30 = model.predict_sum(30)
    assert rest_of_month.likely == pytest.approx(D(1500), rel=D("0.04"))
    assert next_30.likely == pytest.approx(D(3900), rel=D("0.04"))
    assert next_30.low <= D(3900) <= next_30.high


def test_without_dates_the_first_of_a_month_is_an_ordinary_day():
    spend = history(with_month_start, days=56, noise=0.02)
    assert fit_model(spend).month_start_charge is None


# --- step changes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("days_at_new_level", [3, 12, 30])
def test_a_step_change_is_found_and_the_forecast_follows_the_new_level(days_at_new_level):
    step_on = LAST_DAY - timedelta(days=days_at_new_level - 1)
    spend = history(lambda day: 150 if day >= step_on else 100, days=56, noise=0.03)
    model = fit_model(spend, LAST_DAY)
    assert model.step_on == step_on
    band = model.predict_sum(30, D("0.95"))
    assert band.likely == pytest.approx(D(4500), rel=D("0.05"))
    assert band.low <= D(4500) <= band.high


def test_a_fit_restarts_after_a_step_three_weeks_back_or_more():
    step_on = LAST_DAY - timedelta(days=29)
    spend = history(lambda day: 150 if day >= step_on else 100, days=56, noise=0.03)
    assert fit_model(spend, LAST_DAY).method == "trend, 30 days since a step on Sat 17 Oct 2026"


def test_a_recent_step_resets_the_level_of_the_whole_fit():
    step_on = LAST_DAY - timedelta(days=11)
    spend = history(lambda day: 150 if day >= step_on else 100, days=56, noise=0.03)
    assert fit_model(spend, LAST_DAY).method == "trend, last 56 days, level reset by a step on Wed 4 Nov 2026"


def test_steady_noise_finds_no_step():
    spend = history(lambda day: 100, days=56, noise=0.08, seed=5)
    model = fit_model(spend, LAST_DAY)
    assert model.step_on is None and "step" not in model.method


# --- short histories and fallbacks -------------------------------------------------------------------


def test_a_short_history_falls_back_to_its_average_and_says_so():
    model = fit_model([D(10), D(12), D(11), D(9), D(10), D(12), D(11), D(9), D(10)], LAST_DAY)
    assert model.method == "short history: average of 9 days"
    band = model.predict_sum(10)
    assert band.likely == pytest.approx(D(104.44), abs=D("0.01"))
    assert band.low < band.likely < band.high


def test_a_single_day_forecasts_itself_without_an_interval():
    model = fit_model([D(7)])
    assert model.method == "short history: 1 day, no interval"
    assert model.predict_sum(3) == forecast.Band(D(21), D(21), D(21), D("0.8"))


def test_no_spend_forecasts_nothing():
    for empty in ([], [D(0)] * 56):
        model = fit_model(empty, LAST_DAY)
        assert model.method == "no spend history"
        assert model.predict_sum(30) == forecast.Band(D(0), D(0), D(0), D("0.8"))


def test_days_before_the_first_spend_are_ignored():
    model = fit_model([D(0)] * 40 + [D(10)] * 16, LAST_DAY)
    assert model.days == 16 and model.method == "trend, last 16 days"


def test_amounts_that_are_not_numbers_count_as_zero():
    spend = [D(10)] * 20 + [D("NaN"), D("Infinity"), D("sNaN")] + [D(10)] * 20
    band = fit_model(spend, LAST_DAY).predict_sum(10)
    assert band.low <= band.likely <= band.high


# --- the weekly pattern ---------------------------------------------------------------------------------


def test_a_weekend_dip_is_named():
    spend = history(lambda day: 75 if day.weekday() >= 5 else 100, days=56, noise=0.04)
    pattern = weekly_pattern(spend, LAST_DAY)
    assert pattern is not None and pattern.phrase == "weekends run 25 % lower"
    assert pattern.weekend_change == pytest.approx(D("-0.25"), abs=D("0.02"))
    assert len(pattern.factors) == 7 and sum(pattern.factors) == pytest.approx(D(7), abs=D("0.05"))
    assert fit_model(spend, LAST_DAY).method == "trend with day-of-week effects, last 56 days"


def test_a_busy_weekday_is_named_when_the_weekend_is_not_apart():
    spend = history(lambda day: 140 if day.weekday() == 0 else 100, days=56, noise=0.04)
    pattern = weekly_pattern(spend, LAST_DAY)
    # Monday 140 against a weekly average of 740 / 7: 32 % higher
    assert pattern is not None and pattern.factors[0] == pytest.approx(D("1.32"), abs=D("0.03"))
    assert re.fullmatch(r"Mondays run 3\d % higher than the weekly average", pattern.phrase)


def test_no_pattern_is_named_in_plain_noise_or_without_history():
    assert weekly_pattern(history(lambda day: 100, days=56, noise=0.1, seed=2), LAST_DAY) is None
    assert weekly_pattern([D(5)] * 10, LAST_DAY) is None


def test_the_period_forecast_carries_the_method_and_the_pattern():
    spend = history(lambda day: 75 if day.weekday() >= 5 else 100, days=56, noise=0.04)
    result = forecast_period(D(1300), 15, 15, spend, last_day=LAST_DAY)
    assert result.method == "trend with day-of-week effects, last 56 days"
    assert result.weekly is not None and result.weekly.phrase == "weekends run 25 % lower"


# --- runway -------------------------------------------------------------------------------------------


def test_runway():
    assert runway_days(D(1000), D(400), D(20)) == D(30)
    assert runway_days(D(1000), D(1000), D(20)) == 0
    assert runway_days(D(1000), D(0), D(0)) is None


# --- any input --------------------------------------------------------------------------------------


AMOUNTS = st.one_of(
    st.decimals(min_value=-1000, max_value=100_000, places=2),
    st.decimals(min_value=D("-1e22"), max_value=D("1e22"), places=0),
    st.just(D(0)),
)


@settings(max_examples=150, deadline=None)
@given(
    daily=st.lists(AMOUNTS, max_size=70),
    last_day=st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))),
    days=st.integers(min_value=0, max_value=400),
    level=st.sampled_from([D("0.5"), D("0.8"), D("0.95"), D("0.99")]),
    actual=st.decimals(min_value=-1000, max_value=D("1e12"), places=2),
)
def test_any_history_gives_an_ordered_decimal_band_never_below_zero(daily, last_day, days, level, actual):
    band = fit_model(daily, last_day).predict_sum(days, level)
    assert all(isinstance(x, D) for x in (band.low, band.likely, band.high))
    assert 0 <= band.low <= band.likely <= band.high and band.level == level
    result = forecast_period(actual, 10, days, daily, level, last_day=last_day)
    assert result.trend_total.low <= result.trend_total.likely <= result.trend_total.high
    assert isinstance(result.method, str) and result.method


@settings(max_examples=60, deadline=None)
@given(daily=st.lists(AMOUNTS, max_size=70), last_day=st.dates())
def test_any_history_gives_a_weekly_pattern_or_none(daily, last_day):
    pattern = weekly_pattern(daily, last_day)
    assert pattern is None or (len(pattern.factors) == 7 and pattern.phrase)


def test_a_level_outside_zero_and_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        fit_model([D(5)] * 20).predict_sum(10, D(1))


def test_the_weekly_requests_reach_back_as_far_as_the_forecast_looks():
    from finops_guard.core.periods import TREND_DAYS
    from finops_guard.costs.forecast import DEFAULT_LOOKBACK
    from finops_guard.costs.outlook import LOOKBACK_DAYS

    assert TREND_DAYS == LOOKBACK_DAYS == DEFAULT_LOOKBACK
