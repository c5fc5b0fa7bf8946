"""Wording shared by the Teams and Slack renderings, so both say the same thing."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from finops_guard.core.formats import format_day, format_days, format_instant, format_period
from finops_guard.core.money import format_money, format_percent
from finops_guard.core.periods import WEEK_DAYS
from finops_guard.costs.cards import charges

if TYPE_CHECKING:  # types only: the budget and chargeback cards share this wording without the report's code
    from finops_guard.costs.attribution import AttributionSummary
    from finops_guard.costs.forecast import Band
    from finops_guard.costs.kpis import Change, Ranked
    from finops_guard.costs.report import BudgetLine, WeeklyReport

COST_EXPLORER_URL = "https://us-east-1.console.aws.amazon.com/costmanagement/home#/cost-explorer"
MAX_NAME = 48
FORECAST_TITLE = "Forecast month-end"
NO_COST_DATA = (
    "no cost data yet: Cost Explorer has nothing for these days (a new account shows its costs within"
    " 24 hours; a tag attributes spend only once it is an active cost allocation tag)"
)


def short(name: str, limit: int = MAX_NAME) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def day_label(day: date) -> str:
    return format_day(day)


def title(report: WeeklyReport) -> str:
    scope = f" · {report.scope}" if report.scope else ""
    return f"AWS cost report{scope} · week ending {format_day(report.window.as_of)}"


def subtitle(report: WeeklyReport, timezone: str) -> str:
    month = report.window.month_to_date
    return (
        f"Stage {report.stage} · cost days {format_days(month.first, month.last)} (UTC)"
        f" · generated {format_instant(report.generated_at, timezone)}"
    )


def change_text(change: Change, currency: str) -> str:
    arrow = "▲" if change.delta > 0 else ("▼" if change.delta < 0 else "=")
    return (
        f"{arrow} {format_percent(change.relative, signed=True)} ({format_money(change.delta, currency, signed=True)})"
    )


def early_in_month(report: WeeklyReport) -> bool:
    """Fewer than 7 days of the month have elapsed: a month-to-date total is shorter than the week a
    week-over-week delta compares, so ranked lines show the last 7 days' total beside that delta."""
    return report.window.elapsed_days < WEEK_DAYS


def kpi_facts(report: WeeklyReport) -> list[tuple[str, str]]:
    """(title, value) pairs in reading order."""
    c = report.currency
    window = report.window
    month_word = "Month total" if window.month_complete else "Month-to-date"
    if not report.has_cost_data:
        return [(month_word, NO_COST_DATA)]
    facts = [
        (month_word, f"{format_money(report.month_to_date, c)} ({window.elapsed_days} of {window.days_in_month} days)"),
        ("Daily burn", f"{format_money(report.daily_burn, c)} / day"),
        (FORECAST_TITLE, forecast_text(report)),
        (
            "Week over week",
            f"{change_text(report.week_over_week, c)} · last 7 days {format_money(report.week_over_week.current, c)}"
            f" vs {format_money(report.week_over_week.previous, c)}",
        ),
    ]
    facts.append(("Next 30 / 60 / 90 days (same trend)", " · ".join(
        format_money(report.horizons[days].likely, c) for days in sorted(report.horizons)
    )))  # fmt: skip
    if report.budget is not None:
        b = report.budget
        facts.append(("Budget consumption", consumption_text(
            report.forecast_month_end.likely, report.month_to_date, b.budget.amount, b.budget.currency
        )))  # fmt: skip
    elif report.budget_note:
        facts.append(("Budget", report.budget_note))
    elif not report.budgets:  # else the Budgets section below lists the budgets of this scope
        facts.append(("Budget", "no budget names this team" if report.scope else "no monthly budget configured"))
    facts += charges.kpi_facts(report)
    return facts


def consumption_text(forecast: Decimal, actual: Decimal, amount: Decimal, currency: str) -> str:
    """`forecast $87,497.62 (116 %) · actual $3,142.02 (4.1 %) of $75,000.00`: each figure with its share."""
    return (
        f"forecast {format_money(forecast, currency)} ({format_percent(forecast / amount)})"
        f" · actual {format_money(actual, currency)} ({format_percent(actual / amount)})"
        f" of {format_money(amount, currency)}"
    )


def forecast_text(report: WeeklyReport) -> str:
    """The forecast, its band and the method behind it; the weekly rhythm when the history has one."""
    text = band_text(report.forecast_month_end, report.currency)
    method = f" · {report.forecast_method}" if report.forecast_method else ""
    rhythm = f" · {report.weekly_pattern}" if report.weekly_pattern else ""
    return text + method + rhythm


def band_text(band: Band, currency: str) -> str:
    """`$71,166.14 likely (80 % band: best $69,900.00, worst $72,400.00)`; a complete month has no band."""
    if band.low == band.high:
        return format_money(band.likely, currency)
    best, worst = format_money(band.best, currency), format_money(band.worst, currency)
    return (
        f"{format_money(band.likely, currency)} likely ({format_percent(band.level)} band: best {best}, worst {worst})"
    )


def estimated_note(report: WeeklyReport) -> str | None:
    days = report.estimated_days
    if not days:
        return None
    listed = ", ".join(format_day(d) for d in days)
    return f"Estimated by Cost Explorer (may still change): {listed}"


def ranked_heading(what: str, report: WeeklyReport) -> str:
    """`Top services (MTD · week over week)`; early in the month the lines also say the last 7 days."""
    return (
        f"{what} (MTD · last 7 days · week over week)" if early_in_month(report) else f"{what} (MTD · week over week)"
    )


def ranked_line(item: Ranked, currency: str, *, early: bool = False) -> str:
    """`$806.78 · WoW ▼ -0.8 % (-$43.29)`; `early` (see early_in_month): `$719.83 · last 7 days
    $2,442.83 · WoW ▲ +928 % (+$2,205.28)`, so the weekly delta stands beside a weekly total."""
    mtd = format_money(item.month_to_date, currency)
    week = f" · last 7 days {format_money(item.week_over_week.current, currency)}" if early else ""
    return f"{mtd}{week} · WoW {change_text(item.week_over_week, currency)}"


def account_label(report: WeeklyReport, account_id: str) -> str:
    return named(report.account_names.get(account_id), account_id)


def named(name: str | None, identifier: str, limit: int = 32) -> str:
    """`prod-data (222222222222)`: a name before its id; the id alone when there is no name."""
    return f"{short(name, limit)} ({identifier})" if name and name != identifier else identifier


def percent_points(ratio: Decimal) -> int:
    """A gauge's value: whole percent, rounded toward zero as format_percent writes it beside."""
    return int((ratio * 100).to_integral_value(rounding=ROUND_DOWN))


def attribution_rows(summary: AttributionSummary, currency: str, *, early: bool = False) -> list[tuple[str, str]]:
    """Attributed vs untagged, the top values with week-over-week, and the biggest untagged services."""
    c = currency
    rows = [
        (
            f"Attributed to a {summary.dimension.label}",
            f"{format_percent(summary.attributed_share)} ({format_money(summary.attributed, c)})",
        ),
        ("Untagged", f"{format_percent(summary.untagged_share)} ({format_money(summary.untagged, c)})"),
    ]
    rows += [(short(item.name, 40), ranked_line(item, c, early=early)) for item in summary.top_values]
    rows += [(f"Untagged: {short(s.name, 32)}", ranked_line(s, c, early=early)) for s in summary.untagged_services]
    return rows


def attribution_heading(summary: AttributionSummary, report: WeeklyReport) -> str:
    return ranked_heading(f"Spend by {summary.dimension.label}", report)


MAX_BUDGET_ROWS = 8


def budget_rows(report: WeeklyReport) -> list[tuple[str, str]]:
    """(name, state) for the most consumed budgets, then a count of the rest."""
    rows = [
        (short(line.name, 40), budget_state(line, report.window.as_of)) for line in report.budgets[:MAX_BUDGET_ROWS]
    ]
    hidden = len(report.budgets) - MAX_BUDGET_ROWS
    if hidden > 0:
        rows.append(("…", f"{hidden} more: finops-guard budgets list"))
    return rows


def budget_state(line: BudgetLine, as_of: date) -> str:
    """`forecast $87,497.62 (35 %) · actual $3,142.02 (1.2 %) of $250,000.00 · Dec 2026`, with the day
    the guard evaluated it when that is not the report's last day."""
    if line.error:
        return f"not evaluated: {line.error}"
    if line.actual is None or line.forecast is None:
        return "not evaluated yet (the daily guard has not run)"
    state = consumption_text(line.forecast, line.actual, line.amount, line.currency)
    if line.period_key:
        state += f" · {format_period(line.period_key)}"
    if line.as_of is not None and line.as_of != as_of:
        state += f" (as of {format_day(line.as_of)})"
    return state


def setup_heading(report: WeeklyReport) -> str:
    count = len(report.setup)
    return f"Setup: {count} thing{'s' if count != 1 else ''} not set up yet"
