"""Microsoft Teams rendering: an Adaptive Card 1.5 inside a Workflows webhook message.

Teams renders Chart.* elements natively; each has a `fallback` for clients that do not.
The card only ever lists top-N rows and one point per day, so its size does not grow with the
number of accounts or services; `MAX_PAYLOAD_BYTES` is still enforced as a last line of defence.
"""

from __future__ import annotations

from typing import Any

from finops_guard.core.cards import MAX_PAYLOAD_BYTES, adaptive_card, chart_number, open_url, payload_bytes, wrap
from finops_guard.core.formats import format_axis_day
from finops_guard.core.money import format_money, format_percent
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
    values = [
        {"x": f"{format_axis_day(d.day)}{'*' if d.estimated else ''}", "y": chart_number(d.amount, c)}
        for d in report.daily
    ]
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
    said = f"{format_money(report.forecast_month_end.likely, report.currency)} ({format_percent(b.forecast)})"
    return {
        "type": "Chart.Gauge",
        "title": "Monthly budget: forecast consumption",
        "subLabel": f"forecast {said} of {budget_text}",
        "min": 0,
        "max": 100,
        "value": max(0, min(forecast, 100)),
        "valueFormat": "Percentage",
        "segments": [
            {"from": 0, "to": 75, "color": "good", "legend": "on track"},
            {"from": 75, "to": 90, "color": "warning", "legend": "watch"},
            {"from": 90, "to": 100, "color": "attention", "legend": "at risk"},
        ],
        "fallback": _text(f"Budget: forecast {said} of {budget_text}."),
    }


def _ranked_section(heading: str, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [_text(heading, weight="Bolder", separator=True, spacing="Medium"), _facts(rows)]


def build_card(report: WeeklyReport, timezone: str, *, include_daily_chart: bool = True) -> dict[str, Any]:
    c = report.currency
    early = common.early_in_month(report)
    body: list[dict[str, Any]] = _header(report, timezone)
    body.append(_facts(common.kpi_facts(report)))
    if report.has_cost_data:
        body += _spend_sections(report, c, early, include_daily_chart=include_daily_chart)
    if report.budgets:
        body += _ranked_section(f"Budgets ({len(report.budgets)}), most consumed first", common.budget_rows(report))
    if report.savings is not None:
        from finops_guard.costs.cards.savings import teams_section

        body += teams_section(report.savings, c, report.account_names)
    if report.setup:
        body += _setup_section(report)
    return adaptive_card(body, [open_url("Open Cost Explorer", common.COST_EXPLORER_URL)])


def _spend_sections(report: WeeklyReport, c: str, early: bool, *, include_daily_chart: bool) -> list[dict[str, Any]]:
    body = []
    gauge = _budget_gauge(report)
    if gauge:
        body.append(gauge)
    if include_daily_chart and report.daily:
        body.append(_daily_chart(report))
    if report.top_services:
        body.append(_services_chart(report))
    body += _ranked_section(
        common.ranked_heading("Top services", report),
        [(common.short(s.name), common.ranked_line(s, c, early=early)) for s in report.top_services],
    )
    if report.top_accounts or report.scope is None:
        body += _ranked_section(
            charges.breakdown_heading(report),
            [
                (common.account_label(report, a.name), common.ranked_line(a, c, early=early))
                for a in report.top_accounts
            ],
        )
    for summary in report.attribution:
        body += _ranked_section(
            common.attribution_heading(summary, report), common.attribution_rows(summary, c, early=early)
        )
    return body


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
