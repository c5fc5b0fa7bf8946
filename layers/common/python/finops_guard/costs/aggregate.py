"""Turn Cost Explorer `GetCostAndUsage` pages into the totals a report needs.

The report asks Cost Explorer once for DAILY usage in the deployment's cost metric, grouped by
SERVICE and the breakdown (LINKED_ACCOUNT by default; see breakdown.py). Everything (daily totals,
top services, top breakdown values, week-over-week) is summed from those groups, streaming page by
page, so memory stays bounded by (days + services + breakdown values), not by the number of groups
an organisation returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from finops_guard.core.money import ZERO
from finops_guard.core.periods import ReportWindow
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.record_types import CHARGE_KINDS


class CostDataError(ValueError):
    """Cost Explorer returned something the report cannot use (mixed currencies, bad amounts)."""


@dataclass
class Totals:
    """Spend of one service or account in the three windows the report compares."""

    month_to_date: Decimal = ZERO
    this_week: Decimal = ZERO
    previous_week: Decimal = ZERO

    @property
    def week_over_week(self) -> Decimal:
        return self.this_week - self.previous_week


@dataclass
class CostAggregate:
    """Running sums over the report window; fed with `add_page`."""

    window: ReportWindow
    currency: str | None = None
    daily: dict[date, Decimal] = field(default_factory=dict)
    estimated_days: set[date] = field(default_factory=set)
    services: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    accounts: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))  # by the breakdown's values
    account_names: dict[str, str] = field(default_factory=dict)
    pages: int = 0
    groups: int = 0
    metric: CostMetric = DEFAULT_METRIC
    # Keys[0] is RECORD_TYPE rather than SERVICE: credits, refunds and tax are summed apart, month to
    # date, in `charges`, and never count as spend; `services` then comes from elsewhere.
    by_record_type: bool = False
    charges: dict[str, Decimal] = field(default_factory=dict)

    def add_page(self, page: Mapping[str, Any]) -> None:
        self.pages += 1
        for attribute in page.get("DimensionValueAttributes", ()):
            name = attribute.get("Attributes", {}).get("description")
            if name:
                self.account_names[attribute["Value"]] = name
        for result in page.get("ResultsByTime", ()):
            self._add_result(result)

    def _add_result(self, result: Mapping[str, Any]) -> None:
        day = date.fromisoformat(result["TimePeriod"]["Start"])
        self.daily.setdefault(day, ZERO)
        if result.get("Estimated"):
            self.estimated_days.add(day)
        day_total = ZERO
        for group in result.get("Groups", ()):
            self.groups += 1
            amount = self.group_amount(group)
            first, value = group["Keys"][0], group["Keys"][1]
            if self.by_record_type:
                if first in CHARGE_KINDS:
                    if day in self.window.month_to_date:
                        self.charges[first] = self.charges.get(first, ZERO) + amount
                    continue
                self.add_to_totals(day, amount, self.accounts[value])
            else:
                self.add_to_totals(day, amount, self.services[first], self.accounts[value])
            day_total += amount
        if not result.get("Groups") and self.metric.value in result.get("Total", {}):
            day_total = metric_amount(result["Total"], self.metric)[0]
        self.daily[day] += day_total

    def group_amount(self, group: Mapping[str, Any]) -> Decimal:
        amount, unit = metric_amount(group["Metrics"], self.metric)
        self._check_currency(unit)
        return amount

    def add_to_totals(self, day: date, amount: Decimal, *totals: Totals) -> None:
        """Count `amount`, spent on `day`, in each of `totals` for the windows the day falls in."""
        in_month = day in self.window.month_to_date
        in_week = day in self.window.this_week
        in_previous = day in self.window.previous_week
        for total in totals:
            if in_month:
                total.month_to_date += amount
            if in_week:
                total.this_week += amount
            if in_previous:
                total.previous_week += amount

    def _check_currency(self, unit: str) -> None:
        if self.currency is None:
            self.currency = unit
        elif unit != self.currency:
            raise CostDataError(f"Cost Explorer returned mixed currencies: {self.currency} and {unit}")

    @property
    def has_cost_data(self) -> bool:
        """Cost Explorer returned some cost in the window. Without any, a card says "no cost data
        yet": a new account, or a tag not active yet, is not zero spend."""
        return self.groups > 0 or bool(self.services) or any(amount != 0 for amount in self.daily.values())

    def spend(self, days: Iterable[date]) -> Decimal:
        return sum((self.daily.get(day, ZERO) for day in days), ZERO)


def aggregate_pages(
    pages: Iterable[Mapping[str, Any]],
    window: ReportWindow,
    metric: CostMetric = DEFAULT_METRIC,
    *,
    by_record_type: bool = False,
) -> CostAggregate:
    """Sum every page of a `GetCostAndUsage` answer for `window`, reading `metric`; `by_record_type`:
    the answer is grouped by RECORD_TYPE first (see CostAggregate)."""
    aggregate = CostAggregate(window=window, metric=metric, by_record_type=by_record_type)
    for page in pages:
        aggregate.add_page(page)
    return aggregate
