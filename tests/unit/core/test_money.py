from decimal import Decimal as D

import pytest
from finops_guard.core.money import format_money, format_percent, minor_units, parse_amount, quantize


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
