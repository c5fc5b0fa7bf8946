"""Cost Explorer for many budgets at once: one request per distinct grouping, not one per budget.

Each request is DAILY, in the deployment's cost metric, grouped by two dimensions. A budget scoped on one or two of
those dimensions (linked account, service, a tag key, a cost category) is answered from the groups;
whole-organisation budgets ride along on any request (its groups sum to the total). Single
dimensions are paired so that, e.g., account, service and tag budgets cost two requests. Only a
scope over three or more dimensions needs its own filtered request.

A budget's `basis` picks what it counts: `usage` requests exclude credits, refunds and tax (one
`Not` RECORD_TYPE filter, no extra request); `net` requests include them. Budgets are planned per
basis, so all budgets on one basis cost what they did before `basis` existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.money import ZERO
from finops_guard.core.periods import budget_period
from finops_guard.costs.aggregate import CostDataError
from finops_guard.costs.budgets import BASES, LINKED_ACCOUNT, SERVICE, USAGE_BASIS, Budget, Dimension
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.outlook import LOOKBACK_DAYS
from finops_guard.costs.record_types import usage_only


@dataclass(frozen=True)
class CostQuery:
    group_by: tuple[Dimension, ...]
    start: date
    end: date  # exclusive, as Cost Explorer
    budgets: tuple[Budget, ...]
    filter: dict[str, Any] | None = None  # the scope of a budget over three or more dimensions
    metric: CostMetric = DEFAULT_METRIC
    basis: str = USAGE_BASIS

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TimePeriod": {"Start": self.start.isoformat(), "End": self.end.isoformat()},
            "Granularity": "DAILY",
            "Metrics": [self.metric.value],
            "GroupBy": [d.group_by() for d in self.group_by],
        }
        cost_filter = usage_only(self.filter) if self.basis == USAGE_BASIS else self.filter
        if cost_filter is not None:
            request["Filter"] = cost_filter
        return request


class CostQuerySource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


def history_start(budget: Budget, as_of: date, lookback_days: int = LOOKBACK_DAYS) -> date:
    """Earliest day a budget needs: its period start, or `lookback_days` back for the forecast."""
    return min(budget_period(budget.period, as_of).days.first, as_of - timedelta(days=lookback_days - 1))


def plan_queries(
    budgets: Sequence[Budget],
    as_of: date,
    lookback_days: int = LOOKBACK_DAYS,
    metric: CostMetric = DEFAULT_METRIC,
) -> list[CostQuery]:
    """Group budgets into as few Cost Explorer requests as their scopes allow, once per basis in use
    (`usage` first), every request in `metric`."""
    queries: list[CostQuery] = []
    for basis in BASES:
        on_basis = [b for b in budgets if b.basis == basis]
        if on_basis:
            queries += [replace(q, metric=metric, basis=basis) for q in _plan(on_basis, as_of, lookback_days)]
    return queries


def _plan(budgets: Sequence[Budget], as_of: date, lookback_days: int) -> list[CostQuery]:
    groupings: dict[frozenset[Dimension], list[Budget]] = {}
    filtered: dict[str, list[Budget]] = {}
    singles: dict[Dimension, list[Budget]] = defaultdict(list)
    everywhere: list[Budget] = []
    for budget in budgets:
        dims = budget.dimensions
        if len(dims) > 2:
            filtered.setdefault(json_key(budget), []).append(budget)
        elif len(dims) == 2:
            groupings.setdefault(frozenset(dims), []).append(budget)
        elif len(dims) == 1:
            singles[next(iter(dims))].append(budget)
        else:
            everywhere.append(budget)

    unplaced = []
    for dim in sorted(singles):
        home = next((g for g in sorted(groupings, key=sorted) if dim in g), None)
        if home is None:
            unplaced.append(dim)
        else:
            groupings[home].extend(singles[dim])
    for pair, served in _pairs(unplaced):
        groupings.setdefault(frozenset(pair), []).extend(b for dim in served for b in singles[dim])
    if everywhere:
        home_key = min(groupings, key=sorted) if groupings else frozenset((LINKED_ACCOUNT, SERVICE))
        groupings.setdefault(home_key, []).extend(everywhere)

    end = as_of + timedelta(days=1)
    queries = [
        CostQuery(
            group_by=tuple(sorted(dims, key=_group_order)),
            start=min(history_start(b, as_of, lookback_days) for b in members),
            end=end,
            budgets=tuple(members),
        )
        for dims, members in sorted(groupings.items(), key=lambda item: sorted(item[0]))
    ]
    for members in filtered.values():
        contributor = next((d for d in (SERVICE, LINKED_ACCOUNT) if d not in members[0].dimensions), None)
        queries.append(
            CostQuery(
                group_by=(contributor,) if contributor else (),
                start=min(history_start(b, as_of, lookback_days) for b in members),
                end=end,
                budgets=tuple(members),
                filter=members[0].cost_explorer_filter(),
            )
        )
    return queries


def json_key(budget: Budget) -> str:
    return repr(budget.cost_explorer_filter())


def _group_order(dim: Dimension) -> tuple[int, Dimension]:
    # Scope dimensions first, SERVICE last: it is the usual "contributor" breakdown.
    return (1 if dim == SERVICE else 0, dim)


def _pairs(dims: list[Dimension]) -> Iterable[tuple[tuple[Dimension, Dimension], tuple[Dimension, ...]]]:
    """(GroupBy pair, dimensions whose budgets it serves). Single dimensions are paired so two kinds
    of budget share one request; an odd one out takes SERVICE (LINKED_ACCOUNT for service budgets)
    as its contributor breakdown."""
    for i in range(0, len(dims) - 1, 2):
        yield (dims[i], dims[i + 1]), (dims[i], dims[i + 1])
    if len(dims) % 2:
        last = dims[-1]
        yield (last, LINKED_ACCOUNT if last == SERVICE else SERVICE), (last,)


@dataclass
class BudgetCosts:
    """Daily spend inside one budget's scope and what contributed to it in the current period."""

    budget: Budget
    period_first: date
    contributor_dimension: Dimension | None
    daily: dict[date, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    contributors: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    currency: str | None = None
    metric: CostMetric = DEFAULT_METRIC
    account_names: dict[str, str] = field(default_factory=dict)  # from the pages, when grouped by account


def collect_budget_costs(query: CostQuery, pages: Iterable[Mapping[str, Any]], as_of: date) -> dict[str, BudgetCosts]:
    """Stream a query's pages into per-budget daily series. Memory: budgets x days, not groups."""
    results = {
        b.budget_id: BudgetCosts(
            b, budget_period(b.period, as_of).days.first, _contributor(b, query), metric=query.metric
        )
        for b in query.budgets
    }
    index: dict[tuple[Dimension, str], list[Budget]] = defaultdict(list)
    unscoped: list[Budget] = []
    for budget in query.budgets:
        in_groups = [f for f in budget.scope if f.dimension in query.group_by]
        if query.filter is not None or not in_groups:
            unscoped.append(budget)  # the filter (or nothing) already scopes every row
            continue
        for value in in_groups[0].values:
            index[(in_groups[0].dimension, value)].append(budget)
    currency: str | None = None
    names: dict[str, str] = {}
    for page in pages:
        # Grouped by LINKED_ACCOUNT, Cost Explorer names each account in the same answer (no extra request).
        for attribute in page.get("DimensionValueAttributes", ()):
            name = attribute.get("Attributes", {}).get("description")
            if name:
                names[attribute["Value"]] = name
        for result in page.get("ResultsByTime", ()):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            rows = result.get("Groups") or []
            if not rows and query.metric.value in result.get("Total", {}):
                rows = [{"Keys": [], "Metrics": result["Total"]}]
            for row in rows:
                amount, unit = metric_amount(row["Metrics"], query.metric)
                if currency is None:
                    currency = unit
                elif unit != currency:
                    raise CostDataError(f"Cost Explorer returned mixed currencies: {currency} and {unit}")
                values = {dim: dim.value_of(key) for dim, key in zip(query.group_by, row["Keys"], strict=False)}
                candidates = list(unscoped)
                for dim, value in values.items():
                    candidates.extend(index.get((dim, value), ()))
                for budget in candidates:
                    if query.filter is None and not budget.matches(values):
                        continue
                    costs = results[budget.budget_id]
                    costs.daily[day] += amount
                    if day >= costs.period_first and costs.contributor_dimension in values:
                        costs.contributors[values[costs.contributor_dimension]] += amount
    for costs in results.values():
        costs.currency = currency
        costs.account_names = names
    return results


def _contributor(budget: Budget, query: CostQuery) -> Dimension | None:
    free = [d for d in query.group_by if d not in budget.dimensions]
    return free[-1] if free else (query.group_by[-1] if query.group_by else None)
