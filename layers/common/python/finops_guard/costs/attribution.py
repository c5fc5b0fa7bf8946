"""Cost attribution: spend by team, cost center or project, and how much of it nobody owns.

One `GetCostAndUsage` per attribution dimension, DAILY, grouped by [dimension, SERVICE] over the
weekly report's window, answers everything: each value's month-to-date and week-over-week, the
untagged share and the services it comes from, and a per-team cost aggregate for every team that
has its own channel. So the number of billed requests depends on the number of dimensions (at most
three), never on the number of teams.

Cost Explorer returns spend without the tag (or outside every cost category rule) under an empty
value (`Team$`); it reads "untagged" here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from finops_guard.core.money import ZERO
from finops_guard.core.periods import ReportWindow
from finops_guard.costs import kpis
from finops_guard.costs.aggregate import CostAggregate, Totals
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.kpis import Ranked
from finops_guard.costs.record_types import usage_only
from finops_guard.costs.teams import UNTAGGED, AttributionDimension

TOP_UNTAGGED_SERVICES = 3


def attribution_request(
    dimension: AttributionDimension, start: date, end: date, granularity: str, metric: CostMetric = DEFAULT_METRIC
) -> dict[str, Any]:
    """GetCostAndUsage of usage (no credits, refunds or tax) in `metric` for [start, end) (end
    exclusive), grouped by the dimension, then SERVICE."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": granularity,
        "Metrics": [metric.value],
        "GroupBy": [dimension.dimension.group_by(), {"Type": "DIMENSION", "Key": "SERVICE"}],
        "Filter": usage_only(),
    }


@dataclass
class AttributionAggregate:
    """Running sums of one dimension over the report window, fed page by page.

    `teams`: the values that get their own card; only they keep a full per-day, per-service
    aggregate, so memory grows with routed teams, not with every tag value in the organisation.
    """

    dimension: AttributionDimension
    window: ReportWindow
    teams: Collection[str] = ()
    metric: CostMetric = DEFAULT_METRIC
    overall: CostAggregate = field(init=False)
    values: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    untagged_services: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    team_costs: dict[str, CostAggregate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.overall = CostAggregate(window=self.window, metric=self.metric)
        self.team_costs = {team: CostAggregate(window=self.window, metric=self.metric) for team in self.teams}

    def add_page(self, page: Mapping[str, Any]) -> None:
        self.overall.pages += 1
        for result in page.get("ResultsByTime", ()):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            estimated = bool(result.get("Estimated"))
            for costs in (self.overall, *self.team_costs.values()):
                costs.daily.setdefault(day, ZERO)
                if estimated:
                    costs.estimated_days.add(day)
            for group in result.get("Groups", ()):
                self.overall.groups += 1
                amount = self.overall.group_amount(group)
                value = self.dimension.value_of(group["Keys"][0])
                service = group["Keys"][1]
                self.overall.daily[day] += amount
                touched = [self.values[value], self.overall.services[service]]
                if not value:
                    touched.append(self.untagged_services[service])
                self.overall.add_to_totals(day, amount, *touched)
                team = self.team_costs.get(value) if value else None
                if team is not None:
                    team.daily[day] += amount
                    team.add_to_totals(day, amount, team.services[service])

    @property
    def currency(self) -> str | None:
        return self.overall.currency

    def summary(self, top_n: int) -> AttributionSummary:
        tagged = {v: t for v, t in self.values.items() if v}
        untagged = self.values.get("", Totals())
        return AttributionSummary(
            dimension=self.dimension,
            attributed=sum((t.month_to_date for t in tagged.values()), ZERO),
            untagged=untagged.month_to_date,
            top_values=tuple(kpis.top_with_other(_windows(tagged), top_n)),
            untagged_services=tuple(kpis.top_with_other(_windows(self.untagged_services), TOP_UNTAGGED_SERVICES)),
        )


def _windows(totals: Mapping[str, Totals]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {k: (t.month_to_date, t.this_week, t.previous_week) for k, t in totals.items()}


def aggregate_attribution(
    dimension: AttributionDimension,
    pages: Iterable[Mapping[str, Any]],
    window: ReportWindow,
    teams: Collection[str],
    metric: CostMetric = DEFAULT_METRIC,
) -> AttributionAggregate:
    aggregate = AttributionAggregate(dimension, window, teams, metric)
    for page in pages:
        aggregate.add_page(page)
    return aggregate


@dataclass(frozen=True)
class AttributionSummary:
    """One dimension's month-to-date attribution, for the weekly card."""

    dimension: AttributionDimension
    attributed: Decimal  # month-to-date spend carrying a value of the dimension
    untagged: Decimal  # month-to-date spend without one
    top_values: tuple[Ranked, ...]  # by month-to-date, with week-over-week; the rest as "Other (n)"
    untagged_services: tuple[Ranked, ...]  # where tagging effort pays most

    @property
    def total(self) -> Decimal:
        return self.attributed + self.untagged

    @property
    def untagged_share(self) -> Decimal | None:
        """Untagged / total month-to-date, as a ratio (None when nothing was spent)."""
        return kpis.ratio(self.untagged, self.total)

    @property
    def attributed_share(self) -> Decimal | None:
        share = self.untagged_share
        return None if share is None else 1 - share

    @property
    def untagged_label(self) -> str:
        return UNTAGGED
