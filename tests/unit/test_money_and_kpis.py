from decimal import Decimal as D

import pytest
from finops_guard.core.money import format_money, format_percent, minor_units, parse_amount, quantize
from finops_guard.costs import kpis


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("1234.565"), "USD", "$1,234.56"),  # banker's rounding
        (D("1234.575"), "USD", "$1,234.58"),
        (D("1234.5"), "JPY", "¥1,234"),
        (D("1234.5678"), "KWD", "1,234.568 KWD"),
        (D("-12.3"), "EUR", "-€12.30"),
        (D("0"), "CHF", "0.00 CHF"),
    ],
)
def test_money_is_rounded_to_the_currency_minor_unit(amount, currency, text):
    assert format_money(amount, currency) == text


def test_signed_money_shows_a_plus_for_increases():
    assert format_money(D("5"), "USD", signed=True) == "+$5.00"


def test_minor_units_follow_iso_4217():
    assert (minor_units("JPY"), minor_units("KWD"), minor_units("usd")) == (0, 3, 2)


def test_quantize_keeps_decimal_exact():
    assert quantize(D("0.1") + D("0.2"), "USD") == D("0.30")


def test_percent_of_undefined_ratio_is_na():
    assert format_percent(None) == "n/a"
    assert format_percent(D("0.125"), signed=True) == "+12.5 %"


def test_cost_explorer_amounts_parse_exactly_and_reject_nan():
    assert parse_amount("0.0000001234") == D("0.0000001234")
    with pytest.raises(ValueError):
        parse_amount("NaN")


def test_daily_burn_divides_by_elapsed_calendar_days():
    assert kpis.daily_burn(D("300"), 15) == D("20")


def test_burn_rate_forecast_extends_the_average_to_month_end():
    assert kpis.forecast_burn_rate(D("300"), 15, 30) == D("600")
    assert kpis.forecast_burn_rate(D("290"), 29, 29) == D("290")  # complete (leap) month


def test_week_over_week_change_from_zero_is_undefined():
    change = kpis.Change(D("70"), D("0"))
    assert change.delta == D("70") and change.relative is None
    assert kpis.Change(D("110"), D("100")).relative == D("0.1")


def test_top_n_keeps_the_biggest_and_sums_the_rest_as_other():
    items = {f"svc{i}": (D(i), D(i), D(0)) for i in range(1, 9)}
    items["idle"] = (D(0), D(0), D(0))
    ranked = kpis.top_with_other(items, 5)
    assert [r.name for r in ranked] == ["svc8", "svc7", "svc6", "svc5", "svc4", "Other (3)"]
    assert ranked[-1].month_to_date == D(1 + 2 + 3)
    assert ranked[-1].week_over_week.current == D(6)


def test_top_n_without_a_rest_has_no_other_row():
    ranked = kpis.top_with_other({"a": (D(2), D(1), D(1)), "b": (D(1), D(0), D(1))}, 5)
    assert [r.name for r in ranked] == ["a", "b"]
