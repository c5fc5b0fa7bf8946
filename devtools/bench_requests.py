"""Cost Explorer requests per report for each option of issue 19 (cost metric, breakdown, budget
basis) and with or without attribution: the weekly report (with its team cards), the daily budget
guard and the monthly chargeback, through their use cases, every request answered by the emulated
Cost Explorer (finops_guard.costs.mock_data.synthetic_query_pages, one page each). Each answer is
parsed as the functions parse it, so a request the emulator cannot answer, or an answer the code
cannot read, fails the bench.

Before issue 19 (for the comparison printed): weekly report 1 + 1 per attribution dimension; budget
guard 1 per grouping (50 budgets over account, service and tag: 2); chargeback 1 per dimension.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)
DIMENSIONS = "tag:Team,tag:CostCenter"


class CountingCostExplorer:
    """The emulated Cost Explorer, counting billed requests (one page each) and what they asked."""

    def __init__(self) -> None:
        self.requests = 0
        self.asked: list[dict[str, Any]] = []

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from finops_guard.costs.mock_data import synthetic_query_pages

        self.asked.append(request)
        for page in synthetic_query_pages(request):
            self.requests += 1
            yield page


@dataclass(frozen=True)
class Count:
    report: str
    option: str
    before: int
    after: int
    detail: str = ""


def _settings(**env: str) -> Any:
    from finops_guard.costs.settings import ReportSettings

    return ReportSettings.from_env({"FINOPSGUARD_STAGE": "bench", **{f"FINOPSGUARD_{k}": v for k, v in env.items()}})


def weekly(option: str, before: int, breakdown: Any = None, **env: str) -> Count:
    from finops_guard.costs.teams import Routing, TeamRoute, parse_dimension
    from finops_guard.costs.weekly_report import compose

    settings = _settings(**env)
    routing = Routing(None)
    if settings.team_dimension is not None:  # two routed teams: their cards cost no request
        routing = Routing(parse_dimension("tag:Team"), [TeamRoute("web", ("teams",)), TeamRoute("data", ("teams",))])
    source = CountingCostExplorer()
    report, _ = compose(settings, source, now=NOW, routing=routing, breakdown=breakdown)
    shown = report.charges.credits if report.charges else Decimal(0)
    detail = f"{report.metric.value}, {report.breakdown.heading.lower()}, credits {shown:.2f}"
    return Count("weekly report", option, before, source.requests, detail)


def guard(option: str, before: int, bases: tuple[str, ...], metric: str = "UnblendedCost") -> Count:
    from finops_guard.costs.budget_guard import evaluate_all
    from finops_guard.costs.cost_metric import parse_metric

    from devtools.bench import bench_budgets

    budgets = bench_budgets(50)
    budgets = [replace(b, basis=bases[i % len(bases)]) for i, b in enumerate(budgets)]
    source = CountingCostExplorer()
    statuses = evaluate_all(budgets, NOW.date() - timedelta(days=1), source, level=Decimal("0.8"),
                            metric=parse_metric(metric))  # fmt: skip
    detail = f"{len(statuses)} budgets evaluated"
    return Count("budget guard (50 budgets)", option, before, source.requests, detail)


def chargeback(option: str, before: int, **env: str) -> Count:
    from finops_guard.costs.chargeback import Month
    from finops_guard.costs.monthly_chargeback import compute

    source = CountingCostExplorer()
    chargebacks = compute(_settings(**env), Month(2026, 10), source)
    credits = chargebacks[0].kind_total("credits")
    return Count("chargeback", option, before, source.requests, f"credits {credits:.2f} in the CSV")


def request_counts() -> list[Count]:
    from finops_guard.costs.breakdown import Breakdown

    counts = [
        weekly("no attribution dimensions", 1, Breakdown.REGION),
        weekly(
            "attributionDimensions: 2 (default), teams routed",
            3,
            ATTRIBUTION_DIMENSIONS=DIMENSIONS,
            TEAM_DIMENSION="tag:Team",
        ),  # fmt: skip
    ]
    counts += [
        weekly(f"breakdown {b.value}", 3, b, ATTRIBUTION_DIMENSIONS=DIMENSIONS, BREAKDOWN=b.value) for b in Breakdown
    ]
    counts += [
        weekly(f"costMetric {m}", 3, None, ATTRIBUTION_DIMENSIONS=DIMENSIONS, COST_METRIC=m)
        for m in ("UnblendedCost", "AmortizedCost", "NetAmortizedCost", "NetUnblendedCost")
    ]
    counts += [
        guard("basis usage (default)", 2, ("usage",)),
        guard("basis net", 2, ("net",)),
        guard("half usage, half net", 2, ("usage", "net")),
        guard("basis usage, costMetric AmortizedCost", 2, ("usage",), "AmortizedCost"),
    ]
    counts += [
        chargeback("attributionDimensions: 2", 2, ATTRIBUTION_DIMENSIONS=DIMENSIONS),
        chargeback("attributionDimensions: 1", 1, ATTRIBUTION_DIMENSIONS="tag:Team"),
    ]
    return counts


def allowed(count: Count) -> bool:
    """Issue 19's rule: at most one more request per report than before. Budgets on both bases are
    the exception, planned once per basis (each basis alone costs what it did)."""
    if count.option == "half usage, half net":
        return count.after <= 2 * count.before
    return count.after <= count.before + 1


def report_lines(counts: list[Count]) -> list[str]:
    lines = ["Cost Explorer requests per report and option (emulated Cost Explorer, one page each; before -> after):"]
    for count in counts:
        extra = count.after - count.before
        change = "same" if extra == 0 else f"{extra:+d}"
        flag = "" if allowed(count) else "  MORE THAN ALLOWED"
        lines.append(f"  {count.report:26s} {count.option:50s} {count.before} -> {count.after}"
                     f"  ({change}; {count.detail}){flag}")  # fmt: skip
    return lines
