"""The savings section of the weekly card (Teams and Slack say the same rows, from `rows`).

Both renderings return a list of elements to append to a card body (Adaptive Card elements /
Block Kit blocks), empty when there is nothing to show (no open, accepted or implemented item and
no commitment KPI), so a deployment without savings data sends the card it always sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.cards.common import short
from finops_guard.costs.savings import (
    ACCEPTED,
    IMPLEMENTED,
    OPEN,
    ROI_WINDOW_DAYS,
    STATUSES,
    CommitmentKpi,
    Recommendation,
    RoiLine,
    SavingsSummary,
)

HEADING = "Savings opportunities"
MAX_SECTION_TEXT = 3000
HOW_TO = "finops-guard savings list"


def amounts(by_currency: dict[str, Decimal], currency: str) -> str:
    """`$1,234.56`, or `$10.00 + €5.00` when items are in several currencies; zero in `currency`."""
    if not by_currency:
        return format_money(Decimal(0), currency)
    return " + ".join(format_money(by_currency[c], c) for c in sorted(by_currency))


def item_label(rec: Recommendation, account_names: Mapping[str, str]) -> str:
    """Names before ids: `prod-platform (111111111111)` for an account-wide item (a Savings Plans
    purchase), `etl-worker (i-0776…) · prod-data` for a resource with a Name tag, else
    `i-07766554433221100 · prod-data`; the account name is Cost Explorer's (the weekly report's own answer)."""
    account = account_names.get(rec.account_id)
    if rec.resource_label == rec.account_id:
        return f"{short(account, 32)} ({rec.account_id})" if account else f"account {rec.account_id}"
    name = rec.tag("Name")
    label = f"{short(name, 32)} ({short(rec.resource_label, 24)})" if name else short(rec.resource_label, 40)
    return f"{label} · {short(account, 32)}" if account else label


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def roi_text(line: RoiLine) -> str:
    rec = line.rec
    estimate = f"estimated {format_money(rec.estimated_monthly_savings, rec.currency)} / month"
    if line.state == "measured" and line.monthly is not None and rec.roi is not None:
        return f"{estimate} · realised {format_money(line.monthly, rec.roi.currency)} / month"
    if line.state == "measuring":
        return f"{estimate} · measuring ({line.after_days}/{ROI_WINDOW_DAYS} days)"
    return f"{estimate} · not measured: {line.note}"


def commitment_text(kpi: CommitmentKpi) -> str:
    parts = [f"coverage {format_percent(kpi.coverage)}"]
    if kpi.utilisation is None:
        parts.append("no active Savings Plans")
    else:
        parts.append(f"utilisation {format_percent(kpi.utilisation)}")
        if kpi.net_savings is not None:
            parts.append(f"net savings {format_money(kpi.net_savings, kpi.currency)}")
    return " · ".join(parts)


def rows(
    summary: SavingsSummary, currency: str, account_names: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(title, value) pairs in reading order; empty when the summary has nothing to show.
    `account_names`: account id -> name, as the weekly report's Cost Explorer answer gave them."""
    names = account_names or {}
    if not summary.has_content:
        return []
    out = [
        (
            "Open savings (estimated)",
            f"{amounts(summary.open_monthly, currency)} / month · "
            f"{summary.count(OPEN)} open, {summary.count(ACCEPTED)} accepted",
        )
    ]
    for rank, rec in enumerate(summary.top, 1):
        out.append((
            f"{rank}. {item_label(rec, names)}",
            f"{format_money(rec.estimated_monthly_savings, rec.currency)} / month · {rec.summary}"
            f" · {rec.effort_label} effort",
        ))  # fmt: skip
    if summary.count(IMPLEMENTED):
        if summary.realised_items:
            realised = (
                f"{amounts(summary.realised_month, currency)} from {_items(summary.realised_items)}"
                f" (measured {ROI_WINDOW_DAYS} days before/after)"
            )
        else:
            realised = "nothing measured yet"
        if summary.measuring:
            realised += f" · {_items(summary.measuring)} measuring"
        out.append(("Realised this month", realised))
        out += [(f"ROI: {item_label(line.rec, names)}", roi_text(line)) for line in summary.roi_lines]
    if summary.commitment is not None:
        out.append(("Savings Plans, month-to-date", commitment_text(summary.commitment)))
    counts = " · ".join(f"{status.replace('-', ' ')} {summary.count(status)}" for status in STATUSES
                        if summary.count(status))  # fmt: skip
    if counts:
        out.append(("By status", f"{counts} ({HOW_TO})"))
    return out


def teams_section(
    summary: SavingsSummary, currency: str, account_names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Adaptive Card elements: a heading and one FactSet; [] when there is nothing to show."""
    pairs = rows(summary, currency, account_names)
    if not pairs:
        return []
    return [
        {"type": "TextBlock", "text": HEADING, "wrap": True, "weight": "Bolder", "separator": True,
         "spacing": "Medium"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in pairs]},
    ]  # fmt: skip


def _escape(text: str) -> str:
    """Slack mrkdwn control characters in names must not turn into links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_section(summary: SavingsSummary, account_names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Block Kit: one mrkdwn section (clipped to Slack's 3,000 characters); [] when nothing to show."""
    pairs = rows(summary, summary.currency, account_names)
    if not pairs:
        return []
    lines = "\n".join(f"• *{_escape(t)}*: {_escape(v)}" for t, v in pairs)
    text = f"*{HEADING}*\n{lines}"
    if len(text) > MAX_SECTION_TEXT:
        text = text[: MAX_SECTION_TEXT - 1] + "…"
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
