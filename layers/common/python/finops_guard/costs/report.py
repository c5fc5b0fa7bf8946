"""The weekly cost report: one immutable value built from a CostAggregate, rendered by cards/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from finops_guard.core.periods import ReportWindow
from finops_guard.costs import kpis, outlook
from finops_guard.costs.aggregate import CostAggregate
from finops_guard.costs.attribution import AttributionSummary
from finops_guard.costs.breakdown import Breakdown
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.forecast import DEFAULT_LEVEL, Band
from finops_guard.costs.kpis import Change, Ranked
from finops_guard.costs.teams import Routing

if TYPE_CHECKING:
    from finops_guard.costs.record_types import Charges
    from finops_guard.costs.savings import SavingsSummary
    from finops_guard.costs.setup_status import SetupItem


@dataclass(frozen=True)
class Budget:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class BudgetConsumption:
    budget: Budget
    actual: Decimal  # MTD / budget
    forecast: Decimal  # the month-end forecast (outlook.forecast_period_end) / budget


@dataclass(frozen=True)
class BudgetLine:
    """One stored budget as the daily guard last evaluated it (for the weekly card)."""

    budget_id: str
    name: str
    period_key: str | None
    amount: Decimal
    currency: str
    actual: Decimal | None
    forecast: Decimal | None
    error: str | None = None
    teams: tuple[str, ...] = ()  # routed teams whose scope this budget is (their cards show it too)
    as_of: date | None = None  # the last complete cost day the guard evaluated it for

    def consumption(self, value: Decimal | None) -> Decimal | None:
        return None if value is None else value / self.amount * 100


def budget_lines(
    budgets: Iterable[Any], statuses: Mapping[str, Mapping[str, Any]], routing: Routing | None = None
) -> list[BudgetLine]:
    """Budgets joined with their latest stored status, most consumed (by forecast) first."""
    lines = []
    for budget in budgets:
        teams = tuple(route.team for route in routing.for_budget(budget)) if routing else ()
        status = statuses.get(budget.budget_id) or {}
        lines.append(
            BudgetLine(
                budget_id=budget.budget_id,
                name=budget.name,
                period_key=status.get("period"),
                amount=budget.amount,
                currency=budget.currency,
                actual=Decimal(status["actual"]) if "actual" in status else None,
                forecast=Decimal(status["forecast"]) if "forecast" in status else None,
                error=status.get("error"),
                teams=teams,
                as_of=date.fromisoformat(status["as_of"]) if status.get("as_of") else None,
            )
        )
    return sorted(lines, key=lambda b: (-(b.consumption(b.forecast) or Decimal(-1)), b.budget_id))


@dataclass(frozen=True)
class DailySpend:
    day: date
    amount: Decimal
    estimated: bool


@dataclass(frozen=True)
class WeeklyReport:
    """All figures of one weekly report. Money in `currency`, Decimal, unrounded."""

    report_id: str
    stage: str
    window: ReportWindow
    currency: str
    generated_at: datetime
    month_to_date: Decimal
    daily_burn: Decimal
    forecast_month_end: Band  # outlook.forecast_period_end: the one forecast every card shows
    horizons: dict[int, Band]  # spend over the next 30/60/90 days on the same fit
    week_over_week: Change
    budget: BudgetConsumption | None
    budget_note: str | None
    daily: tuple[DailySpend, ...]
    top_services: tuple[Ranked, ...]
    top_accounts: tuple[Ranked, ...]
    account_names: dict[str, str]
    budgets: tuple[BudgetLine, ...] = ()
    attribution: tuple[AttributionSummary, ...] = ()
    scope: str | None = None  # e.g. "Team web" on a team's own card; None = the whole organisation
    savings: SavingsSummary | None = None  # open opportunities, realised savings, commitment KPI
    setup: tuple[SetupItem, ...] = ()  # what is not set up yet (the card's Setup section); empty once it all is
    forecast_method: str = ""  # how forecast_month_end was made (forecast.PeriodForecast.method)
    weekly_pattern: str | None = None  # "weekends run 25 % lower", when the history shows a weekly rhythm
    has_cost_data: bool = True  # False: Cost Explorer returned nothing for the window (not zero spend)
    # Issue 19: every amount is usage (no credits, refunds, tax) in `metric`; `top_accounts` ranks the
    # values of `breakdown` (linked accounts by default); `charges` adds credits, refunds and tax back.
    metric: CostMetric = DEFAULT_METRIC
    breakdown: Breakdown = Breakdown.LINKED_ACCOUNT
    charges: Charges | None = None

    @property
    def estimated_days(self) -> tuple[date, ...]:
        return tuple(d.day for d in self.daily if d.estimated)


def report_id_for(window: ReportWindow) -> str:
    """Stable per reporting week, so a retried invocation recognises what it already posted."""
    return f"weekly-report/{window.as_of.isoformat()}"


def build_weekly_report(
    aggregate: CostAggregate,
    *,
    stage: str,
    currency: str,
    top_n: int,
    generated_at: datetime,
    monthly_budget: Decimal | None = None,
    forecast_level: Decimal = DEFAULT_LEVEL,
) -> WeeklyReport:
    """Compute the KPIs of the seed glossary from summed Cost Explorer data.

    `currency` is the configured one; Cost Explorer's own unit wins for amounts, and budget
    consumption is only computed when the budget is in that same currency.
    """
    window = aggregate.window
    cost_currency = aggregate.currency or currency
    month_to_date = aggregate.spend(window.month_to_date.each_day())
    burn = kpis.daily_burn(month_to_date, window.elapsed_days)
    forecast = outlook.forecast_period_end(aggregate.daily, window.month, window.as_of, forecast_level)
    month_end = forecast.trend_total
    week = kpis.Change(aggregate.spend(window.this_week.each_day()), aggregate.spend(window.previous_week.each_day()))

    budget, note = None, None
    if monthly_budget is not None:
        if cost_currency != currency:
            note = f"budget is in {currency} but Cost Explorer reports {cost_currency}; not compared"
        else:
            plan = Budget(monthly_budget, currency)
            budget = BudgetConsumption(plan, month_to_date / monthly_budget, month_end.likely / monthly_budget)

    first_day = min(window.query_start, window.trend.first)
    shown_days = [d for d in sorted(aggregate.daily) if first_day <= d <= window.as_of]
    daily = tuple(DailySpend(d, aggregate.daily[d], d in aggregate.estimated_days) for d in shown_days)

    def windows(totals: dict) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        return {k: (t.month_to_date, t.this_week, t.previous_week) for k, t in totals.items()}

    top_accounts = tuple(kpis.top_with_other(windows(aggregate.accounts), top_n))
    return WeeklyReport(
        report_id=report_id_for(window),
        stage=stage,
        window=window,
        currency=cost_currency,
        generated_at=generated_at,
        month_to_date=month_to_date,
        daily_burn=burn,
        forecast_month_end=month_end,
        forecast_method=forecast.method,
        weekly_pattern=forecast.weekly.phrase if forecast.weekly is not None else None,
        horizons=outlook.horizons(aggregate.daily, window.as_of, forecast_level),
        week_over_week=week,
        budget=budget,
        budget_note=note,
        daily=daily,
        top_services=tuple(kpis.top_with_other(windows(aggregate.services), top_n)),
        top_accounts=top_accounts,
        account_names=dict(aggregate.account_names),  # every account's: savings items name theirs too
        has_cost_data=aggregate.has_cost_data,
        metric=aggregate.metric,
    )
