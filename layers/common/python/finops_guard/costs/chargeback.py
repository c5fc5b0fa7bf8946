"""Monthly chargeback: one month's spend per team (or cost center, project) and service, as a CSV.

Rule for untagged spend (configurable):
- `proportional` (default): the untagged cost of each service is shared among the owners in
  proportion to each owner's share of all *tagged* spend that month. An owner with 30 % of the
  tagged spend carries 30 % of every untagged service. Only owners with a positive tagged total
  share (credits do not attract cost). With no such owner, untagged cost stays unallocated.
- `separate`: untagged cost stays as its own `unallocated` lines, owner left empty.

Credits, refunds and tax (issue 19): the per-dimension requests count usage only; one more request
per run (MONTHLY, grouped by RECORD_TYPE and SERVICE) brings each service's credits, refunds and tax.
They carry no owner (a credit is not tagged), so they follow the same rule as untagged spend:
`proportional` shares them by tagged usage, `separate` keeps them on `unallocated` lines. The CSV
has one column per kind (usage, credits, refunds, tax) and their net, and names the cost metric.

Rounding: every amount is rounded to the currency's minor unit with the largest-remainder rule, in
two steps, per kind, so that (1) each kind's column adds up exactly to that kind's month total as
Cost Explorer reports it, rounded once, and (2) the shares of a service's untagged usage (or of
its credits, refunds, tax) add up exactly to that amount. A line's net is the sum of its kinds. No
cent is created or lost by rounding.

Months are calendar months of UTC cost days (Cost Explorer's days); the period sent to Cost
Explorer ends on the 1st of the next month, exclusive.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finops_guard.core.money import ZERO, largest_remainder, minor_unit, minor_units, round_to_total
from finops_guard.costs.aggregate import CostDataError
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.record_types import CREDIT, REFUND, TAX, ChargeAmounts, usage_only
from finops_guard.costs.teams import AttributionDimension

RULES = ("proportional", "separate")
TAGGED, SHARE, UNALLOCATED = "tagged", "untagged share", "unallocated"
KINDS = ("usage", "credits", "refunds", "tax")
_KIND_OF_RECORD = {CREDIT: "credits", REFUND: "refunds", TAX: "tax"}
CSV_HEADER = (
    "month", "dimension", "owner", "service", "line", *KINDS, "net", "currency", "cost_metric",
)  # fmt: skip


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


def chargeback_request(
    dimension: AttributionDimension, month: Month, metric: CostMetric = DEFAULT_METRIC
) -> dict[str, Any]:
    """The month's usage (no credits, refunds or tax) in `metric`, by the dimension and SERVICE."""
    return {
        "TimePeriod": {"Start": month.first.isoformat(), "End": month.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [metric.value],
        "GroupBy": [dimension.dimension.group_by(), {"Type": "DIMENSION", "Key": "SERVICE"}],
        "Filter": usage_only(),
    }


@dataclass
class MonthCosts:
    """Usage per (owner value, service) of one month; owner '' = untagged. `charges`: each
    service's credits, refunds and tax (record type -> amount), which no owner carries."""

    dimension: AttributionDimension
    amounts: dict[tuple[str, str], Decimal]
    currency: str | None
    estimated: bool
    charges: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    metric: CostMetric = DEFAULT_METRIC


def month_costs(
    dimension: AttributionDimension, pages: Iterable[Mapping[str, Any]], metric: CostMetric = DEFAULT_METRIC
) -> MonthCosts:
    amounts: dict[tuple[str, str], Decimal] = {}
    currency: str | None = None
    estimated = False
    for page in pages:
        for result in page.get("ResultsByTime", ()):
            estimated = estimated or bool(result.get("Estimated"))
            for group in result.get("Groups", ()):
                amount, unit = metric_amount(group["Metrics"], metric)
                if currency is not None and unit != currency:
                    raise CostDataError(f"Cost Explorer returned mixed currencies: {currency} and {unit}")
                currency = unit
                key = (dimension.value_of(group["Keys"][0]), group["Keys"][1])
                amounts[key] = amounts.get(key, ZERO) + amount
    return MonthCosts(dimension, amounts, currency, estimated, metric=metric)


def with_charges(costs: MonthCosts, charges: ChargeAmounts) -> MonthCosts:
    """`costs` with the credits, refunds and tax of a `charges_request` grouped by SERVICE."""
    if charges.currency is not None and costs.currency is not None and charges.currency != costs.currency:
        raise CostDataError(f"Cost Explorer returned mixed currencies: {costs.currency} and {charges.currency}")
    return replace(
        costs,
        charges={service: dict(kinds) for service, kinds in charges.by_value.items()},
        currency=costs.currency or charges.currency,
    )


@dataclass(frozen=True)
class Line:
    owner: str  # '' for unallocated
    service: str
    line: str  # tagged | untagged share | unallocated
    usage: Decimal  # each kind rounded to the minor unit; credits and refunds negative
    credits: Decimal = ZERO
    refunds: Decimal = ZERO
    tax: Decimal = ZERO

    @property
    def amount(self) -> Decimal:
        """The line's net: usage + credits + refunds + tax."""
        return self.usage + self.credits + self.refunds + self.tax

    def kind(self, kind: str) -> Decimal:
        return getattr(self, kind)  # one of KINDS


@dataclass(frozen=True)
class Chargeback:
    month: Month
    dimension: AttributionDimension
    currency: str
    rule: str
    lines: tuple[Line, ...]
    estimated: bool  # Cost Explorer still calls part of the month estimated (invoice not final)
    metric: CostMetric = DEFAULT_METRIC

    @property
    def total(self) -> Decimal:
        """The month's net total (usage + credits + refunds + tax)."""
        return sum((line.amount for line in self.lines), ZERO)

    def kind_total(self, kind: str) -> Decimal:
        return sum((line.kind(kind) for line in self.lines), ZERO)

    def by_owner(self) -> list[tuple[str, Decimal]]:
        """(owner, amount) largest first; unallocated ('') included when present."""
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.owner] = totals.get(line.owner, ZERO) + line.amount
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    def untagged(self) -> Decimal:
        """Usage nobody tagged (shared out or unallocated); credits, refunds and tax not included."""
        return sum((line.usage for line in self.lines if line.line != TAGGED), ZERO)


def build_chargeback(costs: MonthCosts, month: Month, *, rule: str, currency: str = "USD") -> Chargeback:
    """Allocate one month (see the module docstring for the rule and the rounding)."""
    if rule not in RULES:
        raise ValueError(f"chargeback rule {rule!r} must be one of {', '.join(RULES)}")
    currency = costs.currency or currency
    tagged = sorted((key, amount) for key, amount in costs.amounts.items() if key[0] and amount != 0)
    # What no owner carries: untagged usage, and every service's credits, refunds and tax.
    shared = sorted(
        (service, "usage", amount) for (owner, service), amount in costs.amounts.items() if not owner and amount
    )
    shared += sorted(
        (service, _KIND_OF_RECORD[record], amount)
        for service, kinds in costs.charges.items()
        for record, amount in kinds.items()
        if amount and record in _KIND_OF_RECORD
    )
    # Step 1, per kind: round every source amount so that they add up to the kind's rounded month total.
    usage_rounded = round_to_total([a for _, a in tagged] + [a for s, k, a in shared if k == "usage"], currency)
    rounded_tagged = usage_rounded[: len(tagged)]
    rest = {"usage": iter(usage_rounded[len(tagged) :])}
    for kind in KINDS[1:]:
        rest[kind] = iter(round_to_total([a for _, k, a in shared if k == kind], currency))
    shared_rounded = [(service, kind, next(rest[kind])) for service, kind, _ in shared]

    amounts: dict[tuple[str, str, str], dict[str, Decimal]] = {}

    def add(owner: str, service: str, line: str, kind: str, amount: Decimal) -> None:
        kinds = amounts.setdefault((owner, service, line), {})
        kinds[kind] = kinds.get(kind, ZERO) + amount

    for ((owner, service), _), r in zip(tagged, rounded_tagged, strict=True):
        add(owner, service, TAGGED, "usage", r)
    weights: dict[str, Decimal] = {}
    for (owner, _), amount in tagged:
        weights[owner] = weights.get(owner, ZERO) + amount
    owners = sorted(owner for owner, weight in weights.items() if weight > 0)
    unit = minor_unit(currency)
    for service, kind, amount in shared_rounded:
        if rule == "separate" or not owners:
            add("", service, UNALLOCATED, kind, amount)
            continue
        # Step 2: split the rounded amount, in whole minor units, by weight.
        whole = sum((weights[o] for o in owners), ZERO)
        units = int(amount / unit)
        quotas = [Decimal(units) * weights[o] / whole for o in owners]
        for owner, share in zip(owners, largest_remainder(quotas, units), strict=True):
            add(owner, service, SHARE, kind, share * unit)
    lines = [
        Line(owner, service, line, *(kinds.get(kind, ZERO) for kind in KINDS))
        for (owner, service, line), kinds in amounts.items()
    ]
    kept = [line for line in lines if any(line.kind(kind) for kind in KINDS)]
    kept.sort(key=lambda line: (line.owner == "", line.owner, line.service, line.line != TAGGED))
    return Chargeback(month, costs.dimension, currency, rule, tuple(kept), costs.estimated, costs.metric)


def to_csv(chargeback: Chargeback) -> str:
    """RFC 4180 CSV (CRLF line ends), one row per line: usage, credits, refunds, tax and net, with the
    currency's minor digits (credits and refunds negative), the currency and the cost metric."""
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
                *(f"{line.kind(kind):.{places}f}" for kind in KINDS),
                f"{line.amount:.{places}f}",
                chargeback.currency,
                chargeback.metric.value,
            )
        )
    return out.getvalue()


def object_key(month: Month, dimension: AttributionDimension) -> str:
    """`chargeback/2026-10/tag-team.csv`: one object per month and dimension; re-runs add versions."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in f"{dimension.kind}-{dimension.key}".lower()).strip("-")
    return f"chargeback/{month}/{slug}.csv"
