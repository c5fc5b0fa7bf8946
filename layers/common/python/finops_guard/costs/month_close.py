"""The month-close report: last month in full for the people who sign off, and next month's plan.

What it says (money Decimal in the cost currency, ratios plain Decimals, 0.12 = 12 %):
- the month's total, against the month before and the same month last year (one Cost Explorer request
  of 13 monthly results grouped by service, which also gives the service breakdown and its movers);
  usage in the deployment's cost metric, as the weekly card's headline (costs/record_types.py: credits,
  refunds and tax are not netted into it; costs/cost_metric.py);
- every budget's actual against its amount, the variance in money and percent: for a budget whose
  period ended with the month, its actual; for one whose period goes on (a quarter, a year), its
  forecast to the period end (the one forecast every card shows, costs/outlook.py);
- the untagged share of each attribution dimension (the chargeback's own data when it runs there);
- savings realised in the month (costs/savings.py, implemented items with a measured ROI);
- the plan: each budget's next period (or its current one, when it goes on) forecast with its band,
  and where the variance is beyond the threshold a proposed amount for a human to accept. Nothing
  changes by itself.

Provisional or final: on the 1st Cost Explorer still marks the month estimated (AWS finalises the
invoice in the first days), and east of UTC the month's last UTC day may not have ended. The report
then says "provisional"; it is posted again, once, as "final" when Cost Explorer stops marking the
month estimated, with what changed (month_close_run.py decides when).

Months are calendar months of UTC cost days, as Cost Explorer's; `Month` is the chargeback's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from finops_guard.core.money import ZERO, quantize
from finops_guard.core.periods import budget_period
from finops_guard.costs.aggregate import CostDataError
from finops_guard.costs.budget_costs import BudgetCosts
from finops_guard.costs.chargeback import Month, MonthCosts
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.forecast import DEFAULT_LEVEL
from finops_guard.costs.kpis import ratio
from finops_guard.costs.outlook import forecast_period_end
from finops_guard.costs.record_types import usage_only

KIND = "month-close"
PROVISIONAL, FINAL = "provisional", "final"
STATUSES = (PROVISIONAL, FINAL)
HISTORY_MONTHS = 13  # Cost Explorer's API reaches 13 months back, plus the current month
TOP_SERVICES = 8
TOP_MOVERS = 3
DEFAULT_ADJUST_THRESHOLD = Decimal("0.1")
ACTUAL, FORECAST = "actual", "forecast"


def add_months(month: Month, months: int) -> Month:
    index = month.year * 12 + month.month - 1 + months
    return Month(index // 12, index % 12 + 1)


def month_of(day: date) -> Month:
    return Month(day.year, day.month)


def last_day(month: Month) -> date:
    return month.end - timedelta(days=1)


def reachable_from(today: date) -> Month:
    """The oldest month Cost Explorer's API answers on `today` (UTC): 13 months before the current one."""
    return add_months(month_of(today), -HISTORY_MONTHS)


class PeriodRefused(RuntimeError):
    """Cost Explorer refused a request's time period (data it no longer keeps, or not yet)."""


def history_request(
    month: Month, today: date, *, year_ago: bool = True, metric: CostMetric = DEFAULT_METRIC
) -> dict[str, Any]:
    """MONTHLY usage (no credits, refunds or tax: the weekly card's headline) in `metric`, grouped by
    SERVICE, from the same month last year (when Cost Explorer still reaches it on `today`, else the
    month before) to `month`'s end: one request for the total, month over month, year over year, the
    service breakdown and its movers."""
    previous = add_months(month, -1)
    start = max(add_months(month, -12), reachable_from(today), key=lambda m: (m.year, m.month))
    if not year_ago or (start.year, start.month) > (previous.year, previous.month):
        start = previous  # a month Cost Explorer no longer reaches a year back: month over month only
    return {
        "TimePeriod": {"Start": start.first.isoformat(), "End": month.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [metric.value],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        "Filter": usage_only(),
    }


@dataclass
class MonthHistory:
    """Spend per month (`YYYY-MM`) in total and by service, and the months Cost Explorer estimates."""

    totals: dict[str, Decimal] = field(default_factory=dict)
    services: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    estimated: set[str] = field(default_factory=set)
    currency: str | None = None

    def has(self, month: Month) -> bool:
        return str(month) in self.totals


def month_history(pages: Iterable[Mapping[str, Any]], metric: CostMetric = DEFAULT_METRIC) -> MonthHistory:
    """Sum MONTHLY pages (grouped by SERVICE, or not grouped) of `metric` into a MonthHistory."""
    history = MonthHistory()
    for page in pages:
        for result in page.get("ResultsByTime", ()):
            key = result["TimePeriod"]["Start"][:7]
            history.totals.setdefault(key, ZERO)
            services = history.services.setdefault(key, {})
            if result.get("Estimated"):
                history.estimated.add(key)
            rows = result.get("Groups") or []
            if not rows and metric.value in result.get("Total", {}):
                rows = [{"Keys": [], "Metrics": result["Total"]}]
            for row in rows:
                amount, unit = metric_amount(row["Metrics"], metric)
                if history.currency is None:
                    history.currency = unit
                elif unit != history.currency:
                    raise CostDataError(f"Cost Explorer returned mixed currencies: {history.currency} and {unit}")
                history.totals[key] += amount
                if row.get("Keys"):
                    name = row["Keys"][0]
                    services[name] = services.get(name, ZERO) + amount
    return history


# --- the arithmetic: exact in Decimal -----------------------------------------------------------------


def variance(measured: Decimal, amount: Decimal) -> tuple[Decimal, Decimal]:
    """(measured - amount, that difference / amount): money over (+) or under (-) the amount, and the
    same as a ratio of the amount. `amount` is a budget amount, always > 0."""
    difference = measured - amount
    return difference, difference / amount


@dataclass(frozen=True)
class Proposal:
    """A new amount for a human to accept: `plan` rounded up to a whole currency unit."""

    amount: Decimal
    change: Decimal  # amount - the current amount
    change_ratio: Decimal  # change / the current amount


def propose(amount: Decimal, plan: Decimal, variance_ratio: Decimal, threshold: Decimal) -> Proposal | None:
    """A proposal when the variance is beyond `threshold` (strictly: |variance_ratio| > threshold) and
    the plan foresees spend; None otherwise. The proposed amount is the plan rounded up to a whole
    currency unit (a budget is set in round figures; up, so it is never below the plan)."""
    if abs(variance_ratio) <= threshold or plan <= 0:
        return None
    proposed = plan.to_integral_value(rounding=ROUND_CEILING)
    change = proposed - amount
    return Proposal(proposed, change, change / amount)


@dataclass(frozen=True)
class BudgetClose:
    """One budget at the month's close. `basis` says what `measured` is: the period's actual (the
    period ended with the month) or its forecast to the period end (it goes on)."""

    budget_id: str
    name: str
    currency: str
    amount: Decimal
    period_key: str
    actual: Decimal  # the period's spend up to the month's last day
    basis: str  # ACTUAL | FORECAST
    measured: Decimal
    plan_key: str  # the period the plan is for
    plan_likely: Decimal
    plan_low: Decimal
    plan_high: Decimal
    level: Decimal
    proposal: Proposal | None = None
    error: str | None = None

    @property
    def variance(self) -> Decimal:
        return variance(self.measured, self.amount)[0]

    @property
    def variance_ratio(self) -> Decimal:
        return variance(self.measured, self.amount)[1]


def budget_close(
    costs: BudgetCosts, month: Month, *, level: Decimal = DEFAULT_LEVEL, threshold: Decimal = DEFAULT_ADJUST_THRESHOLD
) -> BudgetClose:
    """A budget at `month`'s close from its daily spend (costs/budget_costs.py, fetched as of the month's
    last day): actual, variance, next period's forecast with its band, and a proposal."""
    budget = costs.budget
    as_of = last_day(month)
    period = budget_period(budget.period, as_of)
    current = forecast_period_end(costs.daily, period.days, as_of, level)
    currency = costs.currency or budget.currency
    if period.complete:
        basis, measured = ACTUAL, current.actual
        plan_period = budget_period(budget.period, as_of + timedelta(days=1))
        plan = forecast_period_end(costs.daily, plan_period.days, as_of, level).trend_total
    else:
        basis, measured, plan_period, plan = FORECAST, current.likely, period, current.trend_total
    error = None
    if currency != budget.currency:
        error = f"budget is in {budget.currency} but Cost Explorer reports {currency}; refusing to compare"
    _, share = variance(measured, budget.amount)
    return BudgetClose(
        budget_id=budget.budget_id,
        name=budget.name,
        currency=budget.currency,
        amount=budget.amount,
        period_key=period.key,
        actual=current.actual,
        basis=basis,
        measured=measured,
        plan_key=plan_period.key,
        plan_likely=plan.likely,
        plan_low=plan.low,
        plan_high=plan.high,
        level=level,
        proposal=None if error else propose(budget.amount, plan.likely, share, threshold),
        error=error,
    )


@dataclass(frozen=True)
class ServiceLine:
    name: str
    amount: Decimal  # the month
    previous: Decimal  # the month before

    @property
    def change(self) -> Decimal:
        return self.amount - self.previous


def service_lines(
    current: Mapping[str, Decimal], previous: Mapping[str, Decimal], top: int = TOP_SERVICES
) -> tuple[list[ServiceLine], list[ServiceLine]]:
    """(the `top` services by the month's spend then "Other (n)", the TOP_MOVERS services whose spend
    changed most from the month before, either way). Ties by name; services with no spend in either
    month are left out."""
    names = sorted(n for n in set(current) | set(previous) if current.get(n, ZERO) or previous.get(n, ZERO))
    lines = [ServiceLine(n, current.get(n, ZERO), previous.get(n, ZERO)) for n in names]
    ranked = sorted(lines, key=lambda s: (-s.amount, s.name))
    shown = ranked[:top]
    rest = ranked[top:]
    if rest:
        shown.append(ServiceLine(f"Other ({len(rest)})", sum((s.amount for s in rest), ZERO),
                                 sum((s.previous for s in rest), ZERO)))  # fmt: skip
    moved = sorted((s for s in lines if s.change != 0), key=lambda s: (-abs(s.change), s.name))[:TOP_MOVERS]
    return shown, moved


@dataclass(frozen=True)
class Untagged:
    """One attribution dimension's untagged spend in the month (from the chargeback's request)."""

    dimension: str  # tag:Team
    label: str  # Team
    untagged: Decimal
    total: Decimal

    @property
    def share(self) -> Decimal | None:
        return ratio(self.untagged, self.total)


def untagged_of(costs: MonthCosts) -> Untagged:
    total = sum(costs.amounts.values(), ZERO)
    untagged = sum((a for (owner, _), a in costs.amounts.items() if not owner), ZERO)
    return Untagged(costs.dimension.spec(), costs.dimension.label, untagged, total)


@dataclass(frozen=True)
class ChangeLine:
    """A figure the final report changed from the provisional one."""

    label: str
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class MonthCloseReport:
    month: str  # YYYY-MM
    status: str  # PROVISIONAL | FINAL
    currency: str
    total: Decimal
    has_cost_data: bool
    previous_total: Decimal | None  # the month before (None: Cost Explorer had nothing)
    year_ago_total: Decimal | None  # the same month last year (None: not reached or nothing)
    year_ago_reached: bool
    services: tuple[ServiceLine, ...]
    movers: tuple[ServiceLine, ...]
    untagged: tuple[Untagged, ...]
    savings_realised: tuple[tuple[str, Decimal], ...]  # (currency, amount)
    savings_items: int
    savings_measuring: int
    budgets: tuple[BudgetClose, ...]
    estimated: bool  # Cost Explorer still marks the month estimated
    complete: bool  # the month's last UTC cost day had ended
    generated_at: str  # ISO instant, UTC
    requests: tuple[tuple[str, int], ...]  # (what, Cost Explorer requests) made by this run for it
    reused: tuple[str, ...] = ()  # what came from the chargeback run's own requests
    changes: tuple[ChangeLine, ...] = ()  # final only: what changed since the provisional report
    provisional_posted: bool = False  # final only: a provisional report was posted before
    metric: str = DEFAULT_METRIC.value  # the cost metric of every amount (costMetric), as Cost Explorer spells it

    @property
    def cost_metric(self) -> CostMetric:
        return CostMetric(self.metric)

    @property
    def period(self) -> Month:
        return Month.parse(self.month)

    @property
    def cost_requests(self) -> int:
        return sum(n for _, n in self.requests)

    def to_document(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> MonthCloseReport:
        return _report_from_json(document)


def status_of(estimated: bool, complete: bool) -> str:
    return FINAL if complete and not estimated else PROVISIONAL


def changes(provisional: MonthCloseReport, final: MonthCloseReport) -> tuple[ChangeLine, ...]:
    """What differs at the currency's minor unit between the two reports: the total, each budget's
    actual, each dimension's untagged spend, the savings realised."""
    c = final.currency
    lines: list[ChangeLine] = []

    def compare(label: str, before: Decimal, after: Decimal) -> None:
        if quantize(before, c) != quantize(after, c):
            lines.append(ChangeLine(label, before, after))

    compare("Total", provisional.total, final.total)
    before_budgets = {b.budget_id: b for b in provisional.budgets}
    for budget in final.budgets:
        earlier = before_budgets.get(budget.budget_id)
        if earlier is not None:
            compare(f"{budget.name}: actual", earlier.actual, budget.actual)
    before_untagged = {u.dimension: u for u in provisional.untagged}
    for item in final.untagged:
        earlier_untagged = before_untagged.get(item.dimension)
        if earlier_untagged is not None:
            compare(f"Untagged by {item.label}", earlier_untagged.untagged, item.untagged)
    before_savings = dict(provisional.savings_realised)
    for currency, amount in final.savings_realised:
        compare("Savings realised", before_savings.get(currency, ZERO), amount)
    return tuple(lines)


def with_changes(final: MonthCloseReport, provisional: MonthCloseReport | None) -> MonthCloseReport:
    if provisional is None:
        return final
    return replace(final, changes=changes(provisional, final), provisional_posted=True)


# --- JSON form (money as decimal strings, never floats): stored, and re-rendered on a retry ------------


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _to_json(report: MonthCloseReport) -> dict[str, Any]:
    def service(s: ServiceLine) -> dict[str, Any]:
        return {"name": s.name, "amount": str(s.amount), "previous": str(s.previous)}

    def budget(b: BudgetClose) -> dict[str, Any]:
        proposal = b.proposal
        return {
            "budget_id": b.budget_id, "name": b.name, "currency": b.currency, "amount": str(b.amount),
            "period_key": b.period_key, "actual": str(b.actual), "basis": b.basis, "measured": str(b.measured),
            "plan_key": b.plan_key, "plan_likely": str(b.plan_likely), "plan_low": str(b.plan_low),
            "plan_high": str(b.plan_high), "level": str(b.level), "error": b.error,
            "proposal": None if proposal is None else {"amount": str(proposal.amount), "change": str(proposal.change),
                                                       "change_ratio": str(proposal.change_ratio)},
        }  # fmt: skip

    return {
        "month": report.month, "status": report.status, "currency": report.currency, "total": str(report.total),
        "has_cost_data": report.has_cost_data, "previous_total": _d(report.previous_total),
        "year_ago_total": _d(report.year_ago_total), "year_ago_reached": report.year_ago_reached,
        "services": [service(s) for s in report.services], "movers": [service(s) for s in report.movers],
        "untagged": [{"dimension": u.dimension, "label": u.label, "untagged": str(u.untagged), "total": str(u.total)}
                     for u in report.untagged],
        "savings_realised": [[c, str(a)] for c, a in report.savings_realised],
        "savings_items": report.savings_items, "savings_measuring": report.savings_measuring,
        "budgets": [budget(b) for b in report.budgets], "estimated": report.estimated, "complete": report.complete,
        "generated_at": report.generated_at, "requests": [[w, n] for w, n in report.requests],
        "reused": list(report.reused),
        "changes": [{"label": c.label, "before": str(c.before), "after": str(c.after)} for c in report.changes],
        "provisional_posted": report.provisional_posted, "metric": report.metric,
    }  # fmt: skip


def _dn(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _report_from_json(doc: Mapping[str, Any]) -> MonthCloseReport:
    def service(s: Mapping[str, Any]) -> ServiceLine:
        return ServiceLine(s["name"], Decimal(s["amount"]), Decimal(s["previous"]))

    def budget(b: Mapping[str, Any]) -> BudgetClose:
        p = b.get("proposal")
        proposal = None if p is None else Proposal(Decimal(p["amount"]), Decimal(p["change"]),
                                                   Decimal(p["change_ratio"]))  # fmt: skip
        return BudgetClose(
            budget_id=b["budget_id"], name=b["name"], currency=b["currency"], amount=Decimal(b["amount"]),
            period_key=b["period_key"], actual=Decimal(b["actual"]), basis=b["basis"], measured=Decimal(b["measured"]),
            plan_key=b["plan_key"], plan_likely=Decimal(b["plan_likely"]), plan_low=Decimal(b["plan_low"]),
            plan_high=Decimal(b["plan_high"]), level=Decimal(b["level"]), proposal=proposal, error=b.get("error"),
        )  # fmt: skip

    return MonthCloseReport(
        month=doc["month"], status=doc["status"], currency=doc["currency"], total=Decimal(doc["total"]),
        has_cost_data=bool(doc["has_cost_data"]), previous_total=_dn(doc.get("previous_total")),
        year_ago_total=_dn(doc.get("year_ago_total")), year_ago_reached=bool(doc.get("year_ago_reached")),
        services=tuple(service(s) for s in doc.get("services", ())),
        movers=tuple(service(s) for s in doc.get("movers", ())),
        untagged=tuple(Untagged(u["dimension"], u["label"], Decimal(u["untagged"]), Decimal(u["total"]))
                       for u in doc.get("untagged", ())),
        savings_realised=tuple((c, Decimal(a)) for c, a in doc.get("savings_realised", ())),
        savings_items=int(doc.get("savings_items", 0)), savings_measuring=int(doc.get("savings_measuring", 0)),
        budgets=tuple(budget(b) for b in doc.get("budgets", ())), estimated=bool(doc["estimated"]),
        complete=bool(doc["complete"]), generated_at=doc["generated_at"],
        requests=tuple((w, int(n)) for w, n in doc.get("requests", ())), reused=tuple(doc.get("reused", ())),
        changes=tuple(ChangeLine(c["label"], Decimal(c["before"]), Decimal(c["after"]))
                      for c in doc.get("changes", ())),
        provisional_posted=bool(doc.get("provisional_posted")),
        metric=str(doc.get("metric") or DEFAULT_METRIC.value),  # stored before costMetric: unblended
    )  # fmt: skip


def report_from_data(
    month: Month,
    *,
    history: MonthHistory,
    budgets: Sequence[BudgetClose],
    untagged: Sequence[Untagged],
    savings: tuple[tuple[tuple[str, Decimal], ...], int, int],
    estimated: bool,
    complete: bool,
    currency: str,
    generated_at: str,
    requests: Sequence[tuple[str, int]],
    reused: Sequence[str] = (),
    metric: CostMetric = DEFAULT_METRIC,
) -> MonthCloseReport:
    """Assemble the report from what the requests returned (see month_close_run.compute)."""
    key = str(month)
    previous, year_ago = add_months(month, -1), add_months(month, -12)
    services, movers = service_lines(history.services.get(key, {}), history.services.get(str(previous), {}))
    realised, items, measuring = savings
    return MonthCloseReport(
        month=key,
        status=status_of(estimated, complete),
        currency=history.currency or currency,
        total=history.totals.get(key, ZERO),
        has_cost_data=bool(history.services.get(key)) or history.totals.get(key, ZERO) != 0,
        previous_total=history.totals.get(str(previous)),
        year_ago_total=history.totals.get(str(year_ago)),
        year_ago_reached=history.has(year_ago),
        services=tuple(services),
        movers=tuple(movers),
        untagged=tuple(untagged),
        savings_realised=realised,
        savings_items=items,
        savings_measuring=measuring,
        budgets=tuple(budgets),
        estimated=estimated,
        complete=complete,
        generated_at=generated_at,
        requests=tuple(requests),
        reused=tuple(reused),
        metric=metric.value,
    )
