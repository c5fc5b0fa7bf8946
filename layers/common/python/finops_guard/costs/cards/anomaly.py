"""Cost anomaly cards: one anomaly in detail, or a digest when several arrive together."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_day, format_days
from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.anomalies import Anomaly, Sighting
from finops_guard.costs.cards import common

DIGEST_ROWS = 10
CONSOLE_URL = "https://console.aws.amazon.com/cost-management/home#/anomaly-detection"


def _impact(anomaly: Anomaly, currency: str) -> str:
    money = format_money(anomaly.total_impact, currency, signed=True)
    if anomaly.impact_percentage is None:
        return money
    return f"{money} ({format_percent(anomaly.impact_percentage / 100)})"


def _link(anomaly: Anomaly) -> str:
    link = anomaly.details_link or ""
    parts = urlsplit(link)
    trusted = parts.scheme == "https" and (parts.hostname or "").endswith(".console.aws.amazon.com")
    return link if trusted or (parts.scheme == "https" and parts.hostname == "console.aws.amazon.com") else CONSOLE_URL


def _date(text: str | None) -> date | None:
    """An anomaly's start or end day (checked when parsed: `2026-11-14`, or that with a time)."""
    return date.fromisoformat(text[:10]) if text else None


def _day(text: str | None) -> str:
    day = _date(text)
    return format_day(day) if day else "?"


def _dates(anomaly: Anomaly) -> str:
    """`14–15 Nov 2026`; an anomaly still open has no end day yet: `since Sat 14 Nov 2026`."""
    first, last = _date(anomaly.start_date), _date(anomaly.end_date)
    if first is None:
        return f"until {format_day(last)}" if last else "unknown"
    return format_days(first, last) if last and last >= first else f"since {format_day(first)}"


def title(sighting: Sighting, currency: str) -> str:
    a = sighting.anomaly
    word = "Cost anomaly updated" if sighting.outcome == "updated" else "Cost anomaly"
    return f"{word}: {a.service or 'unknown service'} {_impact(a, currency)}"


def facts(sighting: Sighting, currency: str) -> list[tuple[str, str]]:
    a = sighting.anomaly
    account = f"{a.account_name} ({a.account_id})" if a.account_name else (a.account_id or "unknown")
    rows = [
        ("Service", a.service or "unknown"),
        ("Account", account),
        ("Region", a.region or "unknown"),
        ("Usage type", a.usage_type or "unknown"),
        ("Total impact", _impact(a, currency)),
    ]
    if a.expected_spend is not None and a.actual_spend is not None:
        rows.append(
            (
                "Expected vs actual",
                f"{format_money(a.expected_spend, currency)} → {format_money(a.actual_spend, currency)}",
            )
        )
    rows.append(("Dates", _dates(a)))
    if a.monitor_name:
        rows.append(("Monitor", a.monitor_name))
    return rows


def root_cause_rows(anomaly: Anomaly, currency: str) -> list[tuple[str, str]]:
    rows = []
    for i, cause in enumerate(anomaly.root_causes[:3], 1):
        where = " · ".join(x for x in (cause.account_name or cause.account_id, cause.region, cause.usage_type) if x)
        amount = format_money(cause.contribution, currency) if cause.contribution is not None else "n/a"
        rows.append((f"{i}. {common.short(cause.service or 'unknown', 40)}", f"{amount} — {where}"))
    return rows


def _factset(rows: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in rows]}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return wrap(adaptive_card(body, actions))


def teams_single(sighting: Sighting, currency: str) -> dict[str, Any]:
    a = sighting.anomaly
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title(sighting, currency),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention",
        },  # fmt: skip
        _factset(facts(sighting, currency)),
    ]
    causes = root_cause_rows(a, currency)
    if causes:
        body.append({"type": "TextBlock", "text": "Root causes, by impact", "weight": "Bolder", "separator": True})
        body.append(_factset(causes))
    return _card(body, [open_url("Open in Cost Anomaly Detection", _link(a))])


def teams_digest(sightings: list[Sighting], currency: str) -> dict[str, Any]:
    total = sum((s.anomaly.total_impact for s in sightings), Decimal(0))
    rows = [
        (
            f"{'↻ ' if s.outcome == 'updated' else ''}{common.short(s.anomaly.service or 'unknown', 40)}",
            f"{_impact(s.anomaly, currency)} · {s.anomaly.account_name or s.anomaly.account_id or '?'}"
            f" · {s.anomaly.region or '?'} · {_day(s.anomaly.start_date)}",
        )
        for s in sightings[:DIGEST_ROWS]
    ]
    hidden = len(sightings) - DIGEST_ROWS
    if hidden > 0:
        rest = sum((s.anomaly.total_impact for s in sightings[DIGEST_ROWS:]), Decimal(0))
        rows.append(("…", f"{hidden} more, {format_money(rest, currency, signed=True)} together"))
    body = [
        {
            "type": "TextBlock",
            "text": f"{len(sightings)} cost anomalies, {format_money(total, currency, signed=True)}",
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention",
        },  # fmt: skip
        {"type": "TextBlock", "text": "Largest first; ↻ = grown since its last alert.", "isSubtle": True, "wrap": True},
        _factset(rows),
    ]
    return _card(body, [open_url("Open Cost Anomaly Detection", CONSOLE_URL)])


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(sightings: list[Sighting], currency: str) -> dict[str, Any]:
    if len(sightings) == 1:
        s = sightings[0]
        head = title(s, currency)
        fields = [{"type": "mrkdwn", "text": f"*{t}*\n{_slack_escape(v)}"[:2000]} for t, v in facts(s, currency)]
        causes = "\n".join(f"{_slack_escape(t)}: {_slack_escape(v)}" for t, v in root_cause_rows(s.anomaly, currency))
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {"type": "section", "fields": fields[:10]},
        ]
        if causes:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Root causes*\n{causes}"[:3000]}})
        url = _link(s.anomaly)
    else:
        total = sum((x.anomaly.total_impact for x in sightings), Decimal(0))
        head = f"{len(sightings)} cost anomalies, {format_money(total, currency, signed=True)}"
        lines = "\n".join(
            f"• {_slack_escape(x.anomaly.service or 'unknown')}: {_impact(x.anomaly, currency)}"
            f" ({_slack_escape(x.anomaly.account_name or x.anomaly.account_id or '?')})"
            for x in sightings[:DIGEST_ROWS]
        )
        if len(sightings) > DIGEST_ROWS:
            lines += f"\n…and {len(sightings) - DIGEST_ROWS} more"
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}},
        ]
        url = CONSOLE_URL
    blocks.append(
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Cost Anomaly Detection"}, "url": url}
        ]}
    )  # fmt: skip
    return {"text": head, "blocks": blocks}


def render_anomalies(sightings: list[Sighting], channel: str, currency: str = "USD") -> dict[str, Any]:
    if channel == "slack":
        return slack(sightings, currency)
    return teams_single(sightings[0], currency) if len(sightings) == 1 else teams_digest(sightings, currency)
