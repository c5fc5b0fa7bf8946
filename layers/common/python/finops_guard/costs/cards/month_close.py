"""The month-close report's card (Teams Adaptive Card 1.5, Slack Block Kit) and the wording it shares
with its HTML archive: an executive summary, budget variance, next month's plan, the services and
their movers, what changed since the provisional report, and links to the archive."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_UP, Decimal
from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_days, format_instant, format_month, format_period, format_stamp
from finops_guard.core.money import format_money, format_percent, quantize
from finops_guard.costs.cards.charges import METRIC_TITLE, metric_text
from finops_guard.costs.cards.common import NO_COST_DATA, change_text, short
from finops_guard.costs.kpis import Change
from finops_guard.costs.month_close import (
    ACTUAL,
    FINAL,
    BudgetClose,
    MonthCloseReport,
    ServiceLine,
    add_months,
    last_day,
)

MAX_ROWS = 10
PLAN_HEADING = "Next month's plan (proposals are for a human to accept; nothing changes by itself)"
Rows = list[tuple[str, str]]


def variance_percent(value: Decimal | None) -> str:
    """A variance is rounded away from zero: 10.2 % over never reads as the 10 % it is beyond."""
    return format_percent(value, signed=True, rounding=ROUND_UP)


def title(report: MonthCloseReport) -> str:
    return f"Month close · {format_month(report.period.first)} · {report.status}"


def subtitle(report: MonthCloseReport, timezone: str) -> str:
    month = report.period
    return (
        f"Cost days {format_days(month.first, last_day(month))} (UTC)"
        f" · generated {format_stamp(report.generated_at, timezone)}"
    )


def _versus(report: MonthCloseReport, other: Decimal | None) -> str:
    c = report.currency
    if other is None:
        return "no cost data that month"
    return f"{change_text(Change(report.total, other), c)} from {format_money(other, c)}"


def summary_rows(report: MonthCloseReport) -> Rows:
    c = report.currency
    if not report.has_cost_data:
        return [("Total", NO_COST_DATA)]
    month = report.period
    rows = [("Total", format_money(report.total, c)),
            (f"vs {format_month(add_months(month, -1).first)}", _versus(report, report.previous_total))]  # fmt: skip
    year_ago = format_month(add_months(month, -12).first)
    if report.year_ago_reached:
        rows.append((f"vs {year_ago}", _versus(report, report.year_ago_total)))
    else:
        rows.append((f"vs {year_ago}", "beyond the 13 months Cost Explorer keeps"))
    compared = [b for b in report.budgets if b.error is None]
    if report.budgets:
        over = sum(1 for b in compared if b.variance > 0)
        proposed = sum(1 for b in compared if b.proposal is not None)
        rows.append(("Budgets", f"{over} of {len(report.budgets)} over their amount · {proposed} adjustment"
                                f"{'s' if proposed != 1 else ''} proposed"))  # fmt: skip
    for item in report.untagged:
        amounts = f"{format_money(item.untagged, c)} of {format_money(item.total, c)}"
        rows.append((f"Untagged by {item.label}", f"{format_percent(item.share)} ({amounts})"))
    rows.append(("Savings realised", savings_text(report)))
    rows.append((METRIC_TITLE, f"{metric_text(report.cost_metric)}, usage only (no credits, refunds or tax)"))
    return rows


def savings_text(report: MonthCloseReport) -> str:
    measuring = f" ({report.savings_measuring} still measuring)" if report.savings_measuring else ""
    if not report.savings_realised:
        return f"none measured in the month{measuring}"
    amounts = " + ".join(format_money(a, c) for c, a in report.savings_realised)
    items = report.savings_items
    return f"{amounts} from {items} implemented item{'s' if items != 1 else ''}{measuring}"


def budget_variance_text(budget: BudgetClose) -> str:
    if budget.error:
        return f"not compared: {budget.error}"
    c = budget.currency
    if budget.basis == ACTUAL:
        what = f"actual {format_money(budget.measured, c)}"
    else:
        what = f"forecast {format_money(budget.measured, c)} to the end of {format_period(budget.period_key)}"
    return (
        f"{what} of {format_money(budget.amount, c)} · variance {format_money(budget.variance, c, signed=True)}"
        f" ({variance_percent(budget.variance_ratio)})"
    )


def plan_text(budget: BudgetClose) -> str:
    c = budget.currency
    band = (f"{format_money(budget.plan_likely, c)} likely ({format_percent(budget.level)} band: best"
            f" {format_money(budget.plan_low, c)}, worst {format_money(budget.plan_high, c)})")  # fmt: skip
    if budget.plan_low == budget.plan_high:
        band = format_money(budget.plan_likely, c)
    text = f"{format_period(budget.plan_key)}: forecast {band}"
    proposal = budget.proposal
    if budget.error:
        return text
    if proposal is None:
        return f"{text} · keep {format_money(budget.amount, c)}"
    return (
        f"{text} · proposed amount {format_money(proposal.amount, c)}"
        f" ({format_money(proposal.change, c, signed=True)}, {variance_percent(proposal.change_ratio)})"
    )


def budget_rows(report: MonthCloseReport, text: Any) -> Rows:
    rows = [(short(b.name, 40), text(b)) for b in report.budgets[:MAX_ROWS]]
    if len(report.budgets) > MAX_ROWS:
        rows.append(("…", f"{len(report.budgets) - MAX_ROWS} more in the report"))
    return rows


def service_text(line: ServiceLine, currency: str) -> str:
    return f"{format_money(line.amount, currency)} · MoM {change_text(Change(line.amount, line.previous), currency)}"


def mover_text(line: ServiceLine, currency: str) -> str:
    return (
        f"{change_text(Change(line.amount, line.previous), currency)}: {format_money(line.amount, currency)}"
        f" from {format_money(line.previous, currency)}"
    )


def change_rows(report: MonthCloseReport) -> Rows:
    """`$23,016.89 → $22,901.80 (-$115.09)`: the change of the figures as shown, so they add up."""
    c = report.currency
    rows = []
    for line in report.changes:
        before, after = quantize(line.before, c), quantize(line.after, c)
        rows.append((short(line.label, 48), f"{format_money(before, c)} → {format_money(after, c)}"
                                            f" ({format_money(after - before, c, signed=True)})"))  # fmt: skip
    return rows


def changes_note(report: MonthCloseReport) -> str | None:
    if report.status != FINAL:
        return None
    if not report.provisional_posted:
        return "No provisional report was posted for this month."
    if not report.changes:
        return "No figure changed since the provisional report."
    return None


def status_notes(report: MonthCloseReport) -> list[str]:
    notes = []
    month = format_month(report.period.first)
    if not report.complete:
        notes.append("Provisional: the month's last UTC cost day had not ended when this ran.")
    if report.estimated:
        notes.append(
            f"Provisional: Cost Explorer still marks {month} as estimated until AWS finalises the invoice"
            " (usually within the first days); the final report follows, once, when it stops."
        )
    return notes


def requests_note(report: MonthCloseReport) -> str:
    parts = ", ".join(f"{what} {n}" for what, n in report.requests if n)
    total = report.cost_requests
    text = f"Cost Explorer requests for this report: {total}" + (f" ({parts})" if parts else "")
    if report.reused:
        text += f"; {' and '.join(report.reused)} reused from the chargeback run"
    return text + "."


def sections(report: MonthCloseReport) -> list[tuple[str, Rows]]:
    """(heading, rows) in reading order; the first has no heading (the summary)."""
    c = report.currency
    out: list[tuple[str, Rows]] = [("", summary_rows(report))]
    if report.budgets:
        out.append(("Budgets: actual against amount", budget_rows(report, budget_variance_text)))
        out.append((PLAN_HEADING, budget_rows(report, plan_text)))
    if report.services:
        out.append(("Services (month over month)", [(short(s.name, 40), service_text(s, c)) for s in report.services]))
    if report.movers:
        out.append(("Top movers", [(short(s.name, 40), mover_text(s, c)) for s in report.movers]))
    if report.changes:
        out.append(("What changed since the provisional report", change_rows(report)))
    return out


def notes(report: MonthCloseReport, expires_at: datetime | None, timezone: str) -> list[str]:
    found = status_notes(report)
    changed = changes_note(report)
    if changed:
        found.append(changed)
    found.append(requests_note(report))
    if expires_at is not None:
        found.append(
            f"Links expire {format_instant(expires_at, timezone)}; the files stay beside the chargeback CSVs"
            f" (`chargeback/{report.month}/month-close.html`, `.csv`)."
        )
    return found


def teams_card(report: MonthCloseReport, links: tuple[str, str], expires_at: datetime, timezone: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(report), "size": "Large", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": subtitle(report, timezone), "isSubtle": True, "wrap": True, "spacing": "None"},
    ]
    for heading, rows in sections(report):
        if heading:
            body.append({"type": "TextBlock", "text": heading, "weight": "Bolder", "separator": True, "wrap": True})
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in rows]})
    for note in notes(report, expires_at, timezone):
        body.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True, "size": "Small"})
    html, csv = links
    return wrap(adaptive_card(body, [open_url("Open the report (HTML)", html), open_url("Download CSV", csv)]))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_card(report: MonthCloseReport, links: tuple[str, str], expires_at: datetime, timezone: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(report)[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(subtitle(report, timezone))}]},
    ]
    for heading, rows in sections(report):
        lines = "\n".join(f"• *{_escape(t)}*: {_escape(v)}" for t, v in rows)
        text = f"*{_escape(heading)}*\n{lines}" if heading else lines
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    html, csv = links
    link_text = f"<{html}|Open the report (HTML)> · <{csv}|Download CSV>"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link_text}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(" ".join(
        notes(report, expires_at, timezone)))[:3000]}]})  # fmt: skip
    return {"text": title(report), "blocks": blocks}


def render_month_close(
    report: MonthCloseReport, channel: str, *, links: tuple[str, str], expires_at: datetime, timezone: str
) -> dict[str, Any]:
    renderer = slack_card if channel == "slack" else teams_card
    return renderer(report, links, expires_at, timezone)
