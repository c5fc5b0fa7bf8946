"""Monthly chargeback: one month's spend per team (or cost center, project) and service, as a CSV.

Rule for untagged spend (configurable):
- `proportional` (default): the untagged cost of each service is shared among the owners in
  proportion to each owner's share of all *tagged* spend that month. An owner with 30 % of the
  tagged spend carries 30 % of every untagged service. Only owners with a positive tagged total
  share (credits do not attract cost). With no such owner, untagged cost stays unallocated.
- `separate`: untagged cost stays as its own `unallocated` lines, owner left empty.

Rounding: every line is rounded to the currency's minor unit with the largest-remainder rule, in
two steps, so that (1) the lines add up exactly to the month's total as Cost Explorer reports it,
rounded once, and (2) the shares of an untagged service add up exactly to that service's untagged
amount. No cent is created or lost by rounding.

Months are calendar months of UTC cost days (Cost Explorer's days); the period sent to Cost
Explorer ends on the 1st of the next month, exclusive.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finops_guard.core.money import ZERO, largest_remainder, minor_unit, minor_units, parse_amount, round_to_total
from finops_guard.costs.aggregate import METRIC, CostDataError
from finops_guard.costs.teams import AttributionDimension

RULES = ("proportional", "separate")
TAGGED, SHARE, UNALLOCATED = "tagged", "untagged share", "unallocated"
CSV_HEADER = ("month", "dimension", "owner", "service", "line", "amount", "currency")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            first = date.fromisoformat(f"{text}-01")
        except ValueError:
            raise ValueError(f"month {text!r} must be YYYY-MM") from None
        return cls(first.year, first.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month: Cost Explorer's exclusive end."""
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def month_before(now: datetime, timezone: str) -> Month:
    """The month that ended before `now`'s date in `timezone`: run on the 1st, bill the previous month."""
    local = now.astimezone(ZoneInfo(timezone)).date()
    return Month(local.year - (local.month == 1), (local.month - 2) % 12 + 1)


def month_complete(month: Month, now: datetime) -> bool:
    """Has the month's last UTC cost day ended? East of UTC, the 1st can begin before it has."""
    return now.astimezone(UTC).date() >= month.end


def chargeback_request(dimension: AttributionDimension, month: Month) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": month.first.isoformat(), "End": month.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "GroupBy": [dimension.dimension.group_by(), {"Type": "DIMENSION", "Key": "SERVICE"}],
    }


@dataclass
class MonthCosts:
    """Spend per (owner value, service) of one month; owner '' = untagged."""

    dimension: AttributionDimension
    amounts: dict[tuple[str, str], Decimal]
    currency: str | None
    estimated: bool


def month_costs(dimension: AttributionDimension, pages: Iterable[Mapping[str, Any]]) -> MonthCosts:
    amounts: dict[tuple[str, str], Decimal] = {}
    currency: str | None = None
    estimated = False
    for page in pages:
        for result in page.get("ResultsByTime", ()):
            estimated = estimated or bool(result.get("Estimated"))
            for group in result.get("Groups", ()):
                metric = group["Metrics"][METRIC]
                unit = metric.get("Unit", "USD")
                if currency is not None and unit != currency:
                    raise CostDataError(f"Cost Explorer returned mixed currencies: {currency} and {unit}")
                currency = unit
                key = (dimension.value_of(group["Keys"][0]), group["Keys"][1])
                amounts[key] = amounts.get(key, ZERO) + parse_amount(metric["Amount"])
    return MonthCosts(dimension, amounts, currency, estimated)


@dataclass(frozen=True)
class Line:
    owner: str  # '' for unallocated
    service: str
    line: str  # tagged | untagged share | unallocated
    amount: Decimal  # rounded to the minor unit


@dataclass(frozen=True)
class Chargeback:
    month: Month
    dimension: AttributionDimension
    currency: str
    rule: str
    lines: tuple[Line, ...]
    estimated: bool  # Cost Explorer still calls part of the month estimated (invoice not final)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def by_owner(self) -> list[tuple[str, Decimal]]:
        """(owner, amount) largest first; unallocated ('') included when present."""
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.owner] = totals.get(line.owner, ZERO) + line.amount
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    def untagged(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.line != TAGGED), ZERO)


def build_chargeback(costs: MonthCosts, month: Month, *, rule: str, currency: str = "USD") -> Chargeback:
    """Allocate one month (see the module docstring for the rule and the rounding)."""
    if rule not in RULES:
        raise ValueError(f"chargeback rule {rule!r} must be one of {', '.join(RULES)}")
    currency = costs.currency or currency
    tagged = sorted((key, amount) for key, amount in costs.amounts.items() if key[0] and amount != 0)
    untagged = sorted((service, amount) for (owner, service), amount in costs.amounts.items() if not owner and amount)
    # Step 1: round every source amount so that they add up to the rounded month total.
    rounded = round_to_total([a for _, a in tagged] + [a for _, a in untagged], currency)
    lines = [Line(owner, service, TAGGED, r) for ((owner, service), _), r in zip(tagged, rounded, strict=False)]
    weights: dict[str, Decimal] = {}
    for (owner, _), amount in tagged:
        weights[owner] = weights.get(owner, ZERO) + amount
    owners = sorted(owner for owner, weight in weights.items() if weight > 0)
    unit = minor_unit(currency)
    for (service, _), amount in zip(untagged, rounded[len(tagged) :], strict=True):
        if rule == "separate" or not owners:
            lines.append(Line("", service, UNALLOCATED, amount))
            continue
        # Step 2: split the service's rounded untagged amount, in whole minor units, by weight.
        whole = sum((weights[o] for o in owners), ZERO)
        units = int(amount / unit)
        quotas = [Decimal(units) * weights[o] / whole for o in owners]
        for owner, share in zip(owners, largest_remainder(quotas, units), strict=True):
            lines.append(Line(owner, service, SHARE, share * unit))
    kept = [line for line in lines if line.amount != 0]
    kept.sort(key=lambda line: (line.owner == "", line.owner, line.service, line.line != TAGGED))
    return Chargeback(month, costs.dimension, currency, rule, tuple(kept), costs.estimated)


def to_csv(chargeback: Chargeback) -> str:
    """RFC 4180 CSV (CRLF line ends), one row per line, amounts with the currency's minor digits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    places = minor_units(chargeback.currency)
    for line in chargeback.lines:
        writer.writerow(
            (
                str(chargeback.month),
                chargeback.dimension.spec(),
                line.owner,
                line.service,
                line.line,
                f"{line.amount:.{places}f}",
                chargeback.currency,
            )
        )
    return out.getvalue()


def object_key(month: Month, dimension: AttributionDimension) -> str:
    """`chargeback/2026-10/tag-team.csv`: one object per month and dimension; re-runs add versions."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in f"{dimension.kind}-{dimension.key}".lower()).strip("-")
    return f"chargeback/{month}/{slug}.csv"
