"""What the daily digest and the month-close check read from the budget guard's own Cost Explorer pages.

The guard asks Cost Explorer once per grouping of budgets (costs/budget_costs.py). `GuardTap` stands
between the guard and its cost source: every page passes through unchanged, and on its way the tap
sums what the digest needs (the organisation's daily spend, each group value's last days, each digest
team's spend) and notes which days Cost Explorer still marks estimated. It makes no request of its
own, so the digest adds none: any source with the guard's `query(request)` shape (Cost Explorer
today, another backend tomorrow) feeds it the same way.

Only whole-organisation requests tell the organisation's spend: their groups add up to every cost of
the day (untagged spend is a group too). Those are the requests of budgets on the `usage` basis,
whose one filter leaves out credits, refunds and tax (costs/record_types.py `usage_only`), so the
digest reads usage, the weekly card's headline; without such a request, those of `net` budgets (no
filter). The guard plans `usage` first, and the tap keeps to the basis of the first whole request it
sees, so the total and the per-value series never mix the two. A request grouped by RECORD_TYPE
counts its usage rows only. A request scoped by a filter (a budget over three or more dimensions) is
read for its estimated days only. Amounts are read in the deployment's cost metric, as the guard
asks for them. Memory: days x (group values + digest teams x values), and
group values are kept for the last `keep_from` days only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.money import ZERO
from finops_guard.costs.aggregate import CostDataError
from finops_guard.costs.budgets import Dimension
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.record_types import CHARGE_KINDS, RECORD_TYPE, usage_only

Series = dict[date, Decimal]


class CostQuerySource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


class WrappedSource:
    """A cost source in front of another: `source` is the wrapped one, and the request count is its
    count (each page it asks for is a billed request), whoever wraps whom."""

    def __init__(self, source: CostQuerySource) -> None:
        self._source = source

    @property
    def source(self) -> CostQuerySource:
        """The wrapped source: what asks Cost Explorer directly, past the tap."""
        return self._source

    @property
    def requests(self) -> int:
        return self._source.requests

    @requests.setter
    def requests(self, value: int) -> None:
        self._source.requests = value


@dataclass
class TeamSpend:
    """One digest team's daily spend (from a request grouped by the team dimension) and, by the other
    dimension of that request (usually SERVICE), its values' daily spend."""

    daily: Series = field(default_factory=lambda: defaultdict(lambda: ZERO))
    by_value: dict[str, Series] = field(default_factory=dict)
    value_dimension: Dimension | None = None


@dataclass
class GuardSpend:
    """What the tap kept. `daily` is None when no request told the organisation's spend."""

    daily: Series | None = None
    by_dimension: dict[Dimension, dict[str, Series]] = field(default_factory=dict)
    teams: dict[str, TeamSpend] = field(default_factory=dict)
    team_data: bool = False  # a request grouped by the team dimension was read
    seen_days: set[date] = field(default_factory=set)
    estimated_days: set[date] = field(default_factory=set)
    currency: str | None = None
    account_names: dict[str, str] = field(default_factory=dict)

    def month_final(self, first: date, last: date) -> bool | None:
        """Did Cost Explorer stop marking the month [first, last] estimated? None when no request of
        the run covered its last day (nothing to tell from)."""
        if last not in self.seen_days:
            return None
        return not any(first <= day <= last for day in self.estimated_days)


class GuardTap(WrappedSource):
    """A cost source that is its wrapped source, and remembers what the digest reads from the pages.

    `keep_from`: the first day whose per-value spend is kept (the digest's 7-day baseline). `team`:
    the team dimension and the teams whose digest wants their own spend. `metric`: the cost metric the
    guard asks for (the deployment's costMetric)."""

    def __init__(
        self,
        source: CostQuerySource,
        *,
        keep_from: date,
        team_dimension: Dimension | None = None,
        teams: Collection[str] = (),
        metric: CostMetric = DEFAULT_METRIC,
    ) -> None:
        super().__init__(source)
        self._metric = metric
        self._whole_filter: str | None = None  # the basis of the first whole request: its filter, as JSON
        self._keep_from = keep_from
        self._team_dimension = team_dimension
        self._teams = frozenset(teams)
        self._total_request: str | None = None
        self._team_request: str | None = None
        self._dimension_requests: dict[Dimension, str] = {}
        self.spend = GuardSpend()

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        plan = self._plan(request)
        for page in self._source.query(request):
            self._observe(page, plan)
            yield page

    def _plan(self, request: Mapping[str, Any]) -> _Plan:
        """Which sums this request feeds: the first whole-organisation request of each kind, once."""
        dimensions = tuple(Dimension(g["Type"], g["Key"]) for g in request.get("GroupBy", ()))
        plan = _Plan(dimensions)
        record_type = Dimension(RECORD_TYPE["Type"], RECORD_TYPE["Key"])
        if record_type in dimensions:
            plan.record_type = dimensions.index(record_type)
        cost_filter = request.get("Filter")
        if cost_filter is not None and cost_filter != usage_only():
            return plan  # scoped to part of the organisation
        if request.get("Granularity", "DAILY") != "DAILY":
            return plan
        # usage (filtered, or apart by RECORD_TYPE), or everything (a net budget's request)
        basis = json.dumps(usage_only() if plan.record_type is not None else cost_filter, sort_keys=True)
        if self._whole_filter is None:
            self._whole_filter = basis
        elif basis != self._whole_filter:
            return plan  # the other basis: the sums keep to the first one's
        key = json.dumps(request, sort_keys=True, default=str)
        if self._total_request in (None, key):
            self._total_request = key
            plan.total = True
            if self.spend.daily is None:
                self.spend.daily = defaultdict(lambda: ZERO)
        for index, dimension in enumerate(dimensions):
            if index == plan.record_type:
                continue
            if self._dimension_requests.setdefault(dimension, key) == key:
                plan.values.append(index)
        if self._team_dimension in dimensions and self._team_request in (None, key):
            self._team_request = key
            plan.team = dimensions.index(self._team_dimension)
            self.spend.team_data = True
        return plan

    def _observe(self, page: Mapping[str, Any], plan: _Plan) -> None:
        spend = self.spend
        for attribute in page.get("DimensionValueAttributes", ()):
            name = attribute.get("Attributes", {}).get("description")
            if name:
                spend.account_names[attribute["Value"]] = name
        for result in page.get("ResultsByTime", ()):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            spend.seen_days.add(day)
            if result.get("Estimated"):
                spend.estimated_days.add(day)
            rows = result.get("Groups") or []
            if not rows and self._metric.value in result.get("Total", {}):
                rows = [{"Keys": [], "Metrics": result["Total"]}]
            for row in rows:
                self._row(day, row, plan)

    def _row(self, day: date, row: Mapping[str, Any], plan: _Plan) -> None:
        spend = self.spend
        amount, unit = metric_amount(row["Metrics"], self._metric)
        if spend.currency is None:
            spend.currency = unit
        elif unit != spend.currency:
            raise CostDataError(f"Cost Explorer returned mixed currencies: {spend.currency} and {unit}")
        keys = row.get("Keys") or []
        if plan.record_type is not None and plan.record_type < len(keys) and keys[plan.record_type] in CHARGE_KINDS:
            return  # a credit, refund or tax: not usage
        if plan.total and spend.daily is not None:
            spend.daily[day] += amount
        if day < self._keep_from:
            return
        values = [d.value_of(k) for d, k in zip(plan.dimensions, keys, strict=False)]
        for index in plan.values:
            if index < len(values):
                series = spend.by_dimension.setdefault(plan.dimensions[index], {}).setdefault(values[index], {})
                series[day] = series.get(day, ZERO) + amount
        if plan.team is not None and plan.team < len(values) and values[plan.team] in self._teams:
            team = spend.teams.setdefault(values[plan.team], TeamSpend())
            team.daily[day] += amount
            others = [i for i in range(len(values)) if i not in (plan.team, plan.record_type)]
            if others:
                team.value_dimension = plan.dimensions[others[0]]
                series = team.by_value.setdefault(values[others[0]], {})
                series[day] = series.get(day, ZERO) + amount


@dataclass
class _Plan:
    dimensions: tuple[Dimension, ...]
    total: bool = False
    values: list[int] = field(default_factory=list)
    team: int | None = None
    record_type: int | None = None  # the RECORD_TYPE key's index, when the request is grouped by it


class RecordingSource(WrappedSource):
    """A cost source that keeps every page it passes on, by request, so a later step can read the same
    answer without asking again (the month-close reusing the chargeback's requests). For small answers
    only: MONTHLY requests of one month."""

    def __init__(self, source: CostQuerySource) -> None:
        super().__init__(source)
        self._pages: dict[str, list[dict[str, Any]]] = {}

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kept = self._pages.setdefault(json.dumps(request, sort_keys=True, default=str), [])
        kept.clear()
        for page in self._source.query(request):
            kept.append(page)
            yield page

    def pages_for(self, request: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The pages an earlier identical request returned, or None when it was not asked."""
        return self._pages.get(json.dumps(request, sort_keys=True, default=str))
