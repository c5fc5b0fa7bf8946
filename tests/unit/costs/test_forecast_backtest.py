"""The forecast's honesty, pinned on a fixed seed: a small run of devtools/forecast_backtest.py (the full one is
`make bench`). Every family's bands must hold the truth about as often as they say."""

from __future__ import annotations

import pytest

from devtools import forecast_backtest

SERIES = 25  # per family and forecast: 25 x 7 families x 4 forecasts (6 columns), a few seconds


@pytest.fixture(scope="module")
def found() -> dict:
    return forecast_backtest.measure(forecast_backtest.Sizes(series=SERIES), models=("new",))


def coverage(found: dict, family: str | None, level: str) -> float:
    cells = [cell for name, row in found["figures"]["new"].items() if family in (None, name) for cell in row.values()]
    return sum(cell[f"cover_{level}"] for cell in cells) / len(cells)


def test_over_every_family_the_80_and_95_percent_bands_hold_the_truth_that_often(found):
    # 1,050 forecasts per level: a standard error of about 1.2 points at 80 %
    assert 76 <= coverage(found, None, "0.8") <= 84
    assert 92 <= coverage(found, None, "0.95") <= 98


@pytest.mark.parametrize("family", list(forecast_backtest.FAMILIES))
def test_no_family_is_far_off(found, family):
    # 150 forecasts per family and level: wider bounds, the same seed every run
    assert 68 <= coverage(found, family, "0.8") <= 92
    assert 86 <= coverage(found, family, "0.95") <= 100


def test_the_backtest_is_deterministic(found):
    again = forecast_backtest.measure(forecast_backtest.Sizes(series=2), models=("new",))
    first = forecast_backtest.measure(forecast_backtest.Sizes(series=2), models=("new",))
    assert again["figures"] == first["figures"]
