"""The daily digest on Teams (Adaptive Card 1.5) and Slack (Block Kit): a handful of lines that
name the UTC day they cover, the spend against its 7-day average, the movers, the budgets that will
run out and the anomalies opened."""

from __future__ import annotations

from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_day, format_period
from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.cards.common import COST_EXPLORER_URL, change_text, named, short
from finops_guard.costs.daily_digest import Digest, Move, OpenedAnomaly, RunwayDrop
from finops_guard.costs.kpis import Change

NO_SPEND = "no figure: the budget guard reads no spend for this scope (no budget groups by it)"


def title(digest: Digest) -> str:
    scope = f" · {digest.scope_label}" if digest.scope_label else ""
    return f"Daily cost digest{scope} · {format_day(digest.day)}"


def subtitle(digest: Digest) -> str:
    estimated = "; Cost Explorer still estimates it" if digest.estimated else ""
    return f"UTC cost day {format_day(digest.day)}{estimated} · posted because {', '.join(digest.reasons)}"


def move_text(item: Move, currency: str) -> str:
    """`$2,612.34 vs $2,401.02 a day (7-day average) · ▲ +8.7 % (+$211.32)`."""
    return (
        f"{format_money(item.day_spend, currency)} vs {format_money(item.average, currency)} a day"
        f" (7-day average) · {change_text(Change(item.day_spend, item.average), currency)}"
    )


def mover_name(digest: Digest, item: Move) -> str:
    if digest.mover_label == "account":
        return named(digest.account_names.get(item.name), item.name)
    return short(item.name or "untagged", 40)


def budget_text(drop: RunwayDrop) -> str:
    status = drop.status
    c = status.currency
    return (
        f"runs out around {format_day(drop.runs_out_on)}, {drop.remaining_days} days before"
        f" {format_period(status.period.key)} ends · actual {format_money(status.actual, c)}"
        f" of {format_money(status.budget.amount, status.budget.currency)}"
        f" ({format_percent(status.actual / status.budget.amount)})"
    )


def anomaly_name(digest: Digest, anomaly: OpenedAnomaly) -> str:
    service = short(anomaly.service or "unknown service", 32)
    if anomaly.account_id:
        return f"{service} in {named(digest.account_names.get(anomaly.account_id), anomaly.account_id)}"
    return service


def anomaly_text(anomaly: OpenedAnomaly, currency: str) -> str:
    return f"impact {format_money(anomaly.impact, currency)}"


def sections(digest: Digest) -> list[tuple[str, list[tuple[str, str]]]]:
    """(heading, rows) in reading order; empty sections are left out."""
    c = digest.currency
    spend = [("Spend", NO_SPEND if digest.spend is None else move_text(digest.spend, c))]
    out: list[tuple[str, list[tuple[str, str]]]] = [("", spend)]
    if digest.movers:
        rows = [(mover_name(digest, m), move_text(m, c)) for m in digest.movers]
        out.append((f"Biggest movers by {digest.mover_label}", rows))
    if digest.budgets:
        out.append(("Budgets that will run out before their period ends",
                    [(short(d.status.budget.name, 40), budget_text(d)) for d in digest.budgets]))  # fmt: skip
    if digest.anomalies:
        out.append(("Anomalies opened", [(anomaly_name(digest, a), anomaly_text(a, c)) for a in digest.anomalies]))
    return out


def teams_digest(digest: Digest) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(digest), "size": "Large", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": subtitle(digest), "isSubtle": True, "wrap": True, "spacing": "None"},
    ]
    for heading, rows in sections(digest):
        if heading:
            body.append({"type": "TextBlock", "text": heading, "weight": "Bolder", "separator": True, "wrap": True})
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in rows]})
    return wrap(adaptive_card(body, [open_url("Open Cost Explorer", COST_EXPLORER_URL)]))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_digest(digest: Digest) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(digest)[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(subtitle(digest))}]},
    ]
    for heading, rows in sections(digest):
        lines = "\n".join(f"• *{_escape(t)}*: {_escape(v)}" for t, v in rows)
        text = f"*{_escape(heading)}*\n{lines}" if heading else lines
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open Cost Explorer"}, "url": COST_EXPLORER_URL}
    ]})  # fmt: skip
    return {"text": title(digest), "blocks": blocks}


def render_digest(digest: Digest, channel: str) -> dict[str, Any]:
    return slack_digest(digest) if channel == "slack" else teams_digest(digest)
