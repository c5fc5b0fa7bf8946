"""Usage, credits, refunds and tax: shown apart, never silently netted.

Cost Explorer's RECORD_TYPE dimension (the console's "Charge type") tells a credit (`Credit`), a
refund (`Refund`) and tax (`Tax`) from everything else: usage, commitment fees (`RIFee`,
`SavingsPlanUpfrontFee`, `SavingsPlanRecurringFee`), support, discounts. All four metrics carry
credits, refunds and tax alike; the net metrics also subtract discounts, which stay in usage here.

How the reports use it:
- every spend request (the weekly report's daily request, attribution, budgets on the `usage`
  basis, chargeback, the savings ROI) excludes the three with one `Not` filter, so services,
  breakdowns, teams, forecasts and budget consumption are usage: a $5,000 credit cannot make a bad
  month look good, and tax posted on the 1st cannot look like a spike;
- one extra MONTHLY request per weekly report (and per chargeback run) grouped by RECORD_TYPE
  brings the three back, month to date, for the card's `Usage · Credits · Refunds · Tax · Net` line
  and the CSV's columns. Net = usage + credits + refunds + tax (credits and refunds are negative).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from finops_guard.core.money import ZERO
from finops_guard.costs.cost_metric import CostMetric, metric_amount

CREDIT, REFUND, TAX = "Credit", "Refund", "Tax"
CHARGE_KINDS = (CREDIT, REFUND, TAX)  # Cost Explorer's RECORD_TYPE values, as the API spells them
RECORD_TYPE = {"Type": "DIMENSION", "Key": "RECORD_TYPE"}


def charges_only() -> dict[str, Any]:
    """A Filter keeping credits, refunds and tax only."""
    return {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(CHARGE_KINDS)}}


def usage_only(scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Filter keeping usage only (no credit, refund or tax), inside `scope` (a Cost Explorer
    expression) when there is one."""
    exclude = {"Not": charges_only()}
    if scope is None:
        return exclude
    parts = list(scope["And"]) if set(scope) == {"And"} else [dict(scope)]
    return {"And": [*parts, exclude]}


def charges_request(start: date, end: date, metric: CostMetric, by: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The one extra request: credits, refunds and tax over [start, end) (end exclusive), MONTHLY,
    grouped by RECORD_TYPE and, when given, a second grouping `by` (the team dimension, the service)."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [metric.value],
        "GroupBy": [dict(RECORD_TYPE), *([dict(by)] if by else [])],
        "Filter": charges_only(),
    }


@dataclass(frozen=True)
class Charges:
    """Month-to-date money by kind, in `currency`. Credits and refunds are negative, as Cost Explorer
    reports them; tax positive. Unrounded Decimal."""

    usage: Decimal
    credits: Decimal = ZERO
    refunds: Decimal = ZERO
    tax: Decimal = ZERO
    currency: str = "USD"

    @property
    def net(self) -> Decimal:
        """What is paid: usage + credits + refunds + tax."""
        return self.usage + self.credits + self.refunds + self.tax

    @property
    def any_besides_usage(self) -> bool:
        return bool(self.credits or self.refunds or self.tax)


@dataclass
class ChargeAmounts:
    """Credits, refunds and tax summed from the pages of a `charges_request`: overall and per value
    of its second grouping (team, service; '' when the second key is absent or empty)."""

    metric: CostMetric
    by_value: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    currency: str | None = None
    pages: int = 0

    def add_page(self, page: Mapping[str, Any], value_of: Any = None) -> None:
        self.pages += 1
        for result in page.get("ResultsByTime", ()):
            for group in result.get("Groups", ()):
                keys = group.get("Keys") or []
                kind = keys[0] if keys else ""
                if kind not in CHARGE_KINDS:
                    continue  # a request without the filter (or an emulator) may answer other types
                amount, unit = metric_amount(group["Metrics"], self.metric)
                self._check_currency(unit)
                raw = keys[1] if len(keys) > 1 else ""
                value = value_of(raw) if value_of is not None else raw
                kinds = self.by_value.setdefault(value, {})
                kinds[kind] = kinds.get(kind, ZERO) + amount

    def _check_currency(self, unit: str) -> None:
        from finops_guard.costs.aggregate import CostDataError

        if self.currency is None:
            self.currency = unit
        elif unit != self.currency:
            raise CostDataError(f"Cost Explorer returned mixed currencies: {self.currency} and {unit}")

    def kind_total(self, kind: str, value: str | None = None) -> Decimal:
        """One kind's amount, overall (`value` None) or for one value of the second grouping."""
        if value is not None:
            return self.by_value.get(value, {}).get(kind, ZERO)
        return sum((kinds.get(kind, ZERO) for kinds in self.by_value.values()), ZERO)

    def charges(self, usage: Decimal, currency: str, value: str | None = None) -> Charges:
        """`usage` (from the usage requests) with this answer's credits, refunds and tax."""
        return Charges(
            usage=usage,
            credits=self.kind_total(CREDIT, value),
            refunds=self.kind_total(REFUND, value),
            tax=self.kind_total(TAX, value),
            currency=self.currency or currency,
        )


def charge_amounts(pages: Iterable[Mapping[str, Any]], metric: CostMetric, value_of: Any = None) -> ChargeAmounts:
    """Sum every page of a `charges_request` answer. `value_of` maps the second key (`Team$web` -> `web`)."""
    amounts = ChargeAmounts(metric)
    for page in pages:
        amounts.add_page(page, value_of)
    return amounts
