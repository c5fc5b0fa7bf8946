"""Microsoft Teams rendering: an Adaptive Card 1.5 inside a Workflows webhook message.

Teams renders Chart.* elements natively; each has a `fallback` for clients that do not.
The card only ever lists top-N rows and one point per day, so its size does not grow with the
number of accounts or services; `MAX_PAYLOAD_BYTES` is still enforced as a last line of defence.
"""

from __future__ import annotations

from typing import Any

from finops_guard.core.cards import MAX_PAYLOAD_BYTES, adaptive_card, chart_number, open_url, payload_bytes, wrap
from finops_guard.core.money import format_money
from finops_guard.costs.cards import charges, common
from finops_guard.costs.report import WeeklyReport


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _facts(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in pairs]}


def _header(report: WeeklyReport, timezone: str) -> list[dict[str, Any]]:
    items = [
        _text(common.title(report), size="Large", weight="Bolder"),
        _text(common.subtitle(report, timezone), isSubtle=True, spacing="None", size="Small"),
    ]
    note = common.estimated_note(report)
    if note:
        items.append(_text(f"⚠ {note}", color="Warning", size="Small"))
    return items


def _daily_chart(report: WeeklyReport) -> dict[str, Any]:
    c = report.currency
    values = [{"x": f"{d.day:%m-%d}{'*' if d.estimated else ''}", "y": chart_number(d.amount, c)} for d in report.daily]
    peak = max(report.daily, key=lambda d: d.amount)
    return {
        "type": "Chart.Line",
        "title": f"Daily spend ({c}), * = estimated",
        "xAxisTitle": "UTC cost day",
        "yAxisTitle": c,
        "data": [{"legend": "Daily spend", "color": "categoricalBlue", "values": values}],
        "fallback": _text(
            f"Daily spend over {len(report.daily)} days: peak {format_money(peak.amount, c)} on "
            f"{common.day_label(peak.day)}, last day {format_money(report.daily[-1].amount, c)}."
        ),
    }


def _services_chart(report: WeeklyReport) -> dict[str, Any]:
    c = report.currency
    return {
        "type": "Chart.HorizontalBar",
        "title": f"Top services, month-to-date ({c})",
        "displayMode": "AbsoluteWithAxis",
        "data": [
            {"x": common.short(s.name, 32), "y": chart_number(s.month_to_date, c), "color": "categoricalBlue"}
            for s in report.top_services
        ],
        "fallback": _text("Top services are listed below."),
    }


def _budget_gauge(report: WeeklyReport) -> dict[str, Any] | None:
    if report.budget is None:
        return None
    b = report.budget
    forecast = common.percent_points(b.forecast)
    budget_text = format_money(b.budget.amount, b.budget.currency)
    return {
        "type": "Chart.Gauge",
        "title": "Monthly budget: forecast consumption",
        "subLabel": f"forecast {forecast} % of {budget_text}",
        "min": 0,
        "max": 100,
        "value": max(0, min(forecast, 100)),
        "valueFormat": "Percentage",
        "segments": [
            {"from": 0, "to": 75, "color": "good", "legend": "on track"},
            {"from": 75, "to": 90, "color": "warning", "legend": "watch"},
            {"from": 90, "to": 100, "color": "attention", "legend": "at risk"},
        ],
        "fallback": _text(f"Budget: forecast {forecast} % of {budget_text}."),
    }


def _ranked_section(heading: str, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [_text(heading, weight="Bolder", separator=True, spacing="Medium"), _facts(rows)]


def build_card(report: WeeklyReport, timezone: str, *, include_daily_chart: bool = True) -> dict[str, Any]:
    c = report.currency
    body: list[dict[str, Any]] = _header(report, timezone)
    body.append(_facts(common.kpi_facts(report)))
    gauge = _budget_gauge(report)
    if gauge:
        body.append(gauge)
    if include_daily_chart and report.daily:
        body.append(_daily_chart(report))
    if report.top_services:
        body.append(_services_chart(report))
    body += _ranked_section(
        "Top services (MTD · week over week)",
        [(common.short(s.name), common.ranked_line(s, c)) for s in report.top_services],
    )
    if report.top_accounts or report.scope is None:
        body += _ranked_section(
            charges.breakdown_heading(report),
            [(common.account_label(report, a.name), common.ranked_line(a, c)) for a in report.top_accounts],
        )
    for summary in report.attribution:
        body += _ranked_section(common.attribution_heading(summary), common.attribution_rows(summary, c))
    if report.budgets:
        body += _ranked_section(f"Budgets ({len(report.budgets)}), most consumed first", common.budget_rows(report))
    if report.savings is not None:
        from finops_guard.costs.cards.savings import teams_section

        body += teams_section(report.savings, c)
    if report.setup:
        body += _setup_section(report)
    return adaptive_card(body, [open_url("Open Cost Explorer", common.COST_EXPLORER_URL)])


def _setup_section(report: WeeklyReport) -> list[dict[str, Any]]:
    items = [_text(common.setup_heading(report), weight="Bolder", color="Warning", separator=True, spacing="Medium")]
    for item in report.setup:
        items.append(_text(f"• {item.text}", spacing="Small"))
        if item.fix:
            items.append(_text(item.fix, isSubtle=True, size="Small", spacing="None"))
    return items


def teams_payload(report: WeeklyReport, timezone: str) -> dict[str, Any]:
    """The webhook body for `report`, guaranteed under MAX_PAYLOAD_BYTES."""
    payload = wrap(build_card(report, timezone))
    if payload_bytes(payload) > MAX_PAYLOAD_BYTES:
        payload = wrap(build_card(report, timezone, include_daily_chart=False))
    if payload_bytes(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"Teams card is {payload_bytes(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    return payload
