from decimal import ROUND_UP
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
    assert format_percent(D("0.125"), signed=True) == "+12 %"


@pytest.mark.parametrize(
    ("ratio", "shown"),
    [
        ("0", "0.0 %"),
        ("0.0834", "8.3 %"),
        ("-0.008", "-0.8 %"),
        ("-0.0004", "0.0 %"),  # no "-0.0 %"
        ("0.0999", "9.9 %"),  # below 10 %: one decimal
        ("0.1", "10 %"),
        ("0.917", "91 %"),  # from 10 %: whole
        ("1.04", "104 %"),
        ("27.296", "2,729 %"),  # grouped by thousands
    ],
)
def test_one_percent_style_one_decimal_below_ten_whole_from_ten(ratio, shown):
    assert format_percent(D(ratio)) == shown


def test_a_percent_never_reads_as_reaching_a_line_it_has_not_reached():
    assert format_percent(D("0.896")) == "89 %"  # not the 90 % threshold
    assert format_percent(D("0.99999")) == "99 %"  # not the whole budget
    assert format_percent(D("0.01004"), rounding=ROUND_UP) == "1.1 %"  # a variance over 1 % never reads 1.0 %
    assert format_percent(D("-0.137"), signed=True) == "-13 %" and format_percent(D("0.2"), signed=True) == "+20 %"


def test_cost_explorer_amounts_parse_exactly_and_reject_nan():
    assert parse_amount("0.0000001234") == D("0.0000001234")
    with pytest.raises(ValueError):
        parse_amount("NaN")
