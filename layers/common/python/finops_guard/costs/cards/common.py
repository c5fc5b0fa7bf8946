"""Wording shared by the Teams and Slack renderings, so both say the same thing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.attribution import AttributionSummary
from finops_guard.costs.cards import charges
from finops_guard.costs.forecast import Band
from finops_guard.costs.kpis import Change, Ranked
from finops_guard.costs.report import WeeklyReport

COST_EXPLORER_URL = "https://us-east-1.console.aws.amazon.com/costmanagement/home#/cost-explorer"
MAX_NAME = 48


def short(name: str, limit: int = MAX_NAME) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def title(report: WeeklyReport) -> str:
    as_of = report.window.as_of
    scope = f" · {report.scope}" if report.scope else ""
    return f"AWS cost report{scope} · week ending {day_label(as_of)} {as_of.year}"


def subtitle(report: WeeklyReport, timezone: str) -> str:
    window = report.window
    local = report.generated_at.astimezone(ZoneInfo(timezone))
    month = window.month_to_date
    return (
        f"Stage {report.stage} · cost days {month.first.day}–{month.last.day} {month.last:%b %Y} (UTC)"
        f" · generated {local:%Y-%m-%d %H:%M} {timezone}"
    )


def change_text(change: Change, currency: str) -> str:
    arrow = "▲" if change.delta > 0 else ("▼" if change.delta < 0 else "=")
    return (
        f"{arrow} {format_percent(change.relative, signed=True)} ({format_money(change.delta, currency, signed=True)})"
    )


def kpi_facts(report: WeeklyReport) -> list[tuple[str, str]]:
    """(title, value) pairs in reading order."""
    c = report.currency
    window = report.window
    month_word = "Month total" if window.month_complete else "Month-to-date"
    facts = [
        (month_word, f"{format_money(report.month_to_date, c)} ({window.elapsed_days} of {window.days_in_month} days)"),
        ("Daily burn", f"{format_money(report.daily_burn, c)} / day"),
        ("Forecast month-end (burn rate)", format_money(report.forecast_burn_rate, c)),
        ("Forecast month-end (14-day trend)", band_text(report.forecast_trend, c)),
        (
            "Week over week",
            f"{change_text(report.week_over_week, c)} · last 7 days {format_money(report.week_over_week.current, c)}"
            f" vs {format_money(report.week_over_week.previous, c)}",
        ),
    ]
    facts.append(("Next 30 / 60 / 90 days (trend)", " · ".join(
        format_money(report.horizons[days].likely, c) for days in sorted(report.horizons)
    )))  # fmt: skip
    if report.budget is not None:
        b = report.budget
        facts.append(
            (
                "Budget consumption",
                f"forecast {format_percent(b.forecast, places=0)} · actual {format_percent(b.actual, places=0)}"
                f" of {format_money(b.budget.amount, b.budget.currency)}",
            )
        )
    else:
        facts.append(("Budget", report.budget_note or "no monthly budget configured"))
    facts += charges.kpi_facts(report)
    return facts


def band_text(band: Band, currency: str) -> str:
    """`$71,166.14 likely (80 % band: best $69,900.00, worst $72,400.00)`; a complete month has no band."""
    if band.low == band.high:
        return format_money(band.likely, currency)
    level = int(band.level * 100)
    best, worst = format_money(band.best, currency), format_money(band.worst, currency)
    return f"{format_money(band.likely, currency)} likely ({level} % band: best {best}, worst {worst})"


def estimated_note(report: WeeklyReport) -> str | None:
    days = report.estimated_days
    if not days:
        return None
    listed = ", ".join(day_label(d) for d in days)
    return f"Estimated by Cost Explorer (may still change): {listed}"


def ranked_line(item: Ranked, currency: str) -> str:
    return f"{format_money(item.month_to_date, currency)} · WoW {change_text(item.week_over_week, currency)}"


def account_label(report: WeeklyReport, account_id: str) -> str:
    name = report.account_names.get(account_id)
    return f"{short(name, 32)} ({account_id})" if name else account_id


def percent_points(ratio: Decimal) -> int:
    return int((ratio * 100).to_integral_value())


def attribution_rows(summary: AttributionSummary, currency: str) -> list[tuple[str, str]]:
    """Attributed vs untagged, the top values with week-over-week, and the biggest untagged services."""
    c = currency
    rows = [
        (
            f"Attributed to a {summary.dimension.label}",
            f"{format_percent(summary.attributed_share)} ({format_money(summary.attributed, c)})",
        ),
        ("Untagged", f"{format_percent(summary.untagged_share)} ({format_money(summary.untagged, c)})"),
    ]
    rows += [(short(item.name, 40), ranked_line(item, c)) for item in summary.top_values]
    rows += [(f"Untagged: {short(s.name, 32)}", ranked_line(s, c)) for s in summary.untagged_services]
    return rows


def attribution_heading(summary: AttributionSummary) -> str:
    return f"Spend by {summary.dimension.label} (MTD · week over week)"


MAX_BUDGET_ROWS = 8


def budget_rows(report: WeeklyReport) -> list[tuple[str, str]]:
    """(name, state) for the most consumed budgets, then a count of the rest."""
    rows = []
    for line in report.budgets[:MAX_BUDGET_ROWS]:
        if line.error:
            state = f"not evaluated: {line.error}"
        elif line.actual is None or line.forecast is None:
            state = "not evaluated yet (the daily guard has not run)"
        else:
            forecast, actual = line.forecast / line.amount, line.actual / line.amount
            state = (
                f"forecast {format_percent(forecast, places=0)} · actual {format_percent(actual, places=0)}"
                f" of {format_money(line.amount, line.currency)} ({line.period_key})"
            )
        rows.append((short(line.name, 40), state))
    hidden = len(report.budgets) - MAX_BUDGET_ROWS
    if hidden > 0:
        rows.append(("…", f"{hidden} more: finops-guard budgets list"))
    return rows


def setup_heading(report: WeeklyReport) -> str:
    count = len(report.setup)
    return f"Setup: {count} thing{'s' if count != 1 else ''} not set up yet"
