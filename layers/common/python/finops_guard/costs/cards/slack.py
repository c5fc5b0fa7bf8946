"""Slack rendering: Block Kit for an incoming webhook (<= 50 blocks, section text <= 3,000 chars)."""

from __future__ import annotations

from typing import Any

from finops_guard.core.money import format_money
from finops_guard.costs.cards import charges, common
from finops_guard.costs.report import WeeklyReport

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn control characters in names must not turn into links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)}]}


def slack_payload(report: WeeklyReport, timezone: str) -> dict[str, Any]:
    c = report.currency
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{t}*\n{_escape(v)}", MAX_FIELD_TEXT)} for t, v in common.kpi_facts(report)
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(common.title(report), 150)}},
        _context(_escape(common.subtitle(report, timezone))),
        {"type": "section", "fields": fields[:10]},
    ]
    note = common.estimated_note(report)
    if note:
        blocks.append(_context(f":warning: {note}"))
    blocks.append({"type": "divider"})
    if report.has_cost_data:
        blocks += _spend_sections(report, c)
    if report.budgets:
        lines = "\n".join(f"• {_escape(name)}: {_escape(state)}" for name, state in common.budget_rows(report))
        blocks.append(_section(f"*Budgets ({len(report.budgets)}), most consumed first*\n{lines}"))
    if report.savings is not None:
        from finops_guard.costs.cards.savings import slack_section

        blocks += slack_section(report.savings, report.account_names)
    if report.setup:
        lines = "\n".join(
            f"• {_escape(item.text)}" + (f"\n   ↳ {_escape(item.fix)}" if item.fix else "") for item in report.setup
        )
        blocks.append(_section(f"*{common.setup_heading(report)}*\n{lines}"))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open Cost Explorer"},
                    "url": common.COST_EXPLORER_URL,
                }
            ],
        }
    )
    return {"text": _summary(report), "blocks": blocks[:MAX_BLOCKS]}


def _summary(report: WeeklyReport) -> str:
    """The notification text: the two figures a reader wants first, named as the card names them."""
    c = report.currency
    if not report.has_cost_data:
        return f"{common.title(report)}: {common.NO_COST_DATA.split(':')[0]}"
    return (
        f"{common.title(report)}: month-to-date {format_money(report.month_to_date, c)}, "
        f"forecast month-end {format_money(report.forecast_month_end.likely, c)}"
    )


def _spend_sections(report: WeeklyReport, c: str) -> list[dict[str, Any]]:
    early = common.early_in_month(report)
    services = "\n".join(
        f"• {_escape(common.short(s.name))}: {common.ranked_line(s, c, early=early)}" for s in report.top_services
    )
    accounts = "\n".join(
        f"• {_escape(common.account_label(report, a.name))}: {common.ranked_line(a, c, early=early)}"
        for a in report.top_accounts
    )
    blocks = [_section(f"*{common.ranked_heading('Top services', report)}*\n{services or 'no spend'}")]
    if report.top_accounts or report.scope is None:
        blocks.append(_section(f"*{charges.breakdown_heading(report)}*\n{accounts or 'no spend'}"))
    for attribution in report.attribution:
        rows = "\n".join(f"• {_escape(t)}: {v}" for t, v in common.attribution_rows(attribution, c, early=early))
        blocks.append(_section(f"*{_escape(common.attribution_heading(attribution, report))}*\n{rows}"))
    return blocks
