"""What the daily digest and the month-close check read from the budget guard's own Cost Explorer pages.

The guard asks Cost Explorer once per grouping of budgets (costs/budget_costs.py). `GuardTap` stands
between the guard and its cost source: every page passes through unchanged, and on its way the tap
sums what the digest needs (the organisation's daily spend, each group value's last days, each digest
team's spend) and notes which days Cost Explorer still marks estimated. It makes no request of its
own, so the digest adds none: any source with the guard's `query(request)` shape (Cost Explorer
today, another backend tomorrow) feeds it the same way.

Only requests without a `Filter` tell the organisation's spend: their groups add up to every cost of
the day (untagged spend is a group too). A filtered request (a budget over three or more dimensions)
is read for its estimated days only. Memory: days x (group values + digest teams x values), and
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

from finops_guard.core.money import ZERO, parse_amount
from finops_guard.costs.aggregate import METRIC, CostDataError
from finops_guard.costs.budgets import Dimension

Series = dict[date, Decimal]


class CostQuerySource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


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


class GuardTap:
    """A cost source that is its wrapped source, and remembers what the digest reads from the pages.

    `keep_from`: the first day whose per-value spend is kept (the digest's 7-day baseline). `team`:
    the team dimension and the teams whose digest wants their own spend."""

    def __init__(
        self,
        source: CostQuerySource,
        *,
        keep_from: date,
        team_dimension: Dimension | None = None,
        teams: Collection[str] = (),
    ) -> None:
        self._source = source
        self._keep_from = keep_from
        self._team_dimension = team_dimension
        self._teams = frozenset(teams)
        self._total_request: str | None = None
        self._team_request: str | None = None
        self._dimension_requests: dict[Dimension, str] = {}
        self.spend = GuardSpend()

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

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        plan = self._plan(request)
        for page in self._source.query(request):
            self._observe(page, plan)
            yield page

    def _plan(self, request: Mapping[str, Any]) -> _Plan:
        """Which sums this request feeds: the first unfiltered request of each kind, once."""
        dimensions = tuple(Dimension(g["Type"], g["Key"]) for g in request.get("GroupBy", ()))
        plan = _Plan(dimensions)
        if request.get("Filter") is not None or request.get("Granularity", "DAILY") != "DAILY":
            return plan
        key = json.dumps(request, sort_keys=True, default=str)
        if self._total_request in (None, key):
            self._total_request = key
            plan.total = True
            if self.spend.daily is None:
                self.spend.daily = defaultdict(lambda: ZERO)
        for index, dimension in enumerate(dimensions):
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
            if not rows and METRIC in result.get("Total", {}):
                rows = [{"Keys": [], "Metrics": result["Total"]}]
            for row in rows:
                self._row(day, row, plan)

    def _row(self, day: date, row: Mapping[str, Any], plan: _Plan) -> None:
        spend = self.spend
        metric = row["Metrics"][METRIC]
        unit = metric.get("Unit", "USD")
        if spend.currency is None:
            spend.currency = unit
        elif unit != spend.currency:
            raise CostDataError(f"Cost Explorer returned mixed currencies: {spend.currency} and {unit}")
        amount = parse_amount(metric["Amount"])
        if plan.total and spend.daily is not None:
            spend.daily[day] += amount
        if day < self._keep_from:
            return
        keys = row.get("Keys") or []
        values = [d.value_of(k) for d, k in zip(plan.dimensions, keys, strict=False)]
        for index in plan.values:
            if index < len(values):
                series = spend.by_dimension.setdefault(plan.dimensions[index], {}).setdefault(values[index], {})
                series[day] = series.get(day, ZERO) + amount
        if plan.team is not None and plan.team < len(values) and values[plan.team] in self._teams:
            team = spend.teams.setdefault(values[plan.team], TeamSpend())
            team.daily[day] += amount
            others = [i for i in range(len(values)) if i != plan.team]
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


class RecordingSource:
    """A cost source that keeps every page it passes on, by request, so a later step can read the same
    answer without asking again (the month-close reusing the chargeback's requests). For small answers
    only: MONTHLY requests of one month."""

    def __init__(self, source: CostQuerySource) -> None:
        self._source = source
        self._pages: dict[str, list[dict[str, Any]]] = {}

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

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kept = self._pages.setdefault(json.dumps(request, sort_keys=True, default=str), [])
        kept.clear()
        for page in self._source.query(request):
            kept.append(page)
            yield page

    def pages_for(self, request: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The pages an earlier identical request returned, or None when it was not asked."""
        return self._pages.get(json.dumps(request, sort_keys=True, default=str))
