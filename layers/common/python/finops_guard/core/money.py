"""Money as Decimal plus ISO 4217 currency. Never float."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

# ISO 4217 minor units that differ from the usual 2.
_MINOR_UNITS = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}

ZERO = Decimal(0)

# ISO 4217 active alphabetic codes (fund codes and precious metals excluded).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)


def minor_units(currency: str) -> int:
    """Number of decimal places of `currency` (JPY 0, KWD 3, most 2)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, banker's rounding."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)


def format_money(amount: Decimal, currency: str, *, signed: bool = False) -> str:
    """`$1,234.56`, `¥1,235`, `1,234.568 KWD`; with `signed`, a leading + for gains."""
    value = quantize(amount, currency)
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    digits = f"{abs(value):,.{minor_units(currency)}f}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency.upper()}"


def format_percent(ratio: Decimal | None, *, signed: bool = False, rounding: str = ROUND_DOWN) -> str:
    """A ratio (0.125) as a percent in the one style every card and the CLI use: one decimal below
    10 % (`8.3 %`, `-0.8 %`, `0.0 %`), whole from 10 % (`12 %`, `92 %`, `2,729 %`); None (undefined,
    e.g. growth from zero) as `n/a`.

    Rounded toward zero by default, so a consumption or a share never reads as reaching a line it has
    not reached (89.6 % of a budget reads `89 %`, not the 90 % threshold that did not fire). A caller
    for whom overstating is the safe side passes ROUND_UP (a reconciliation variance never reads as
    within its threshold)."""
    if ratio is None:
        return "n/a"
    value = ratio * 100
    shown = value.quantize(Decimal("0.1"), rounding=rounding)
    if abs(shown) >= 10:
        shown = value.quantize(Decimal(1), rounding=rounding)
    if shown == 0:
        shown = shown.copy_abs()  # -0.04 % reads 0.0 %, not -0.0 %
    sign = "+" if signed and shown > 0 else ""
    return f"{sign}{shown:,} %"


def parse_amount(text: str) -> Decimal:
    """Parse a Cost Explorer amount string exactly (`"12.3456789"`)."""
    amount = Decimal(text)
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return amount


def minor_unit(currency: str) -> Decimal:
    """The value of one minor unit: 0.01 USD, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-minor_units(currency))


def largest_remainder(quotas: Sequence[Decimal], total: int) -> list[int]:
    """Whole units for each quota, summing exactly to `total` (Hamilton's largest-remainder rule).

    Each quota is floored; the units still missing go one each to the largest fractional parts
    (ties to the earlier quota, so the result is deterministic). `total` must lie within
    len(quotas) of the floors' sum, which holds when it is the rounded sum of the quotas.
    """
    floors = [int(q.to_integral_value(rounding=ROUND_FLOOR)) for q in quotas]
    missing = total - sum(floors)
    if not 0 <= missing <= len(quotas):
        raise ValueError(f"cannot reach {total} from {len(quotas)} quotas flooring to {sum(floors)}")
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return floors


def round_to_total(amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Round each amount to the currency's minor unit so that the rounded amounts add up exactly to
    the rounded total (half-even): no cent appears or disappears in a table of rounded lines."""
    unit = minor_unit(currency)
    quotas = [a / unit for a in amounts]
    total = int(sum(quotas, ZERO).to_integral_value(rounding=ROUND_HALF_EVEN))
    return [units * unit for units in largest_remainder(quotas, total)]
