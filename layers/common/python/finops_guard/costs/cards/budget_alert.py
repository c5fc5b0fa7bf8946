"""Budget alert renderings: Teams Adaptive Card, Slack Block Kit, and a plain e-mail."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_period
from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.budget_guard import HARD_LIMIT, BudgetStatus, Firing
from finops_guard.costs.cards import charges, common


def _pct(consumption: Decimal) -> str:
    """A consumption (already in percent of the amount, e.g. 104.0) in the cards' one percent style."""
    return format_percent(consumption / 100)


def threshold_text(threshold: Decimal) -> str:
    """A configured threshold (percent of the amount) in the same style: rounded toward zero, so
    "crossed 87 %" stays true of a 87.5 % threshold."""
    return format_percent(threshold / 100)


def headline(firing: Firing) -> str:
    budget = firing.status.budget
    if firing.kind == HARD_LIMIT:
        return f"Budget exceeded: {budget.name} is over 100 % of its amount"
    what = "actual spend" if firing.kind == "actual" else "forecast"
    return f"Budget alert: {budget.name} — {what} crossed {threshold_text(firing.threshold)}"


def runway_text(status: BudgetStatus) -> str:
    days = status.runway_days
    if days is None:
        return "no spend yet"
    if days == 0:
        return "exhausted"
    if days > status.period.remaining_days:
        return f"{days.quantize(Decimal('1'))} days at the current burn — lasts past the period end"
    left = status.period.remaining_days
    return f"{days.quantize(Decimal('1'))} days at the current burn ({left} days left in the period)"


def facts(firing: Firing) -> list[tuple[str, str]]:
    status = firing.status
    budget, c = status.budget, status.currency
    band = status.forecast.trend_total
    rows = [
        ("Scope", budget.describe_scope(status.account_names)),
        (
            "Period",
            f"{format_period(status.period.key)} (day {status.period.elapsed_days} of {status.period.days.days})",
        ),
        ("Budget", format_money(budget.amount, budget.currency)),
        ("Actual", f"{format_money(status.actual, c)} ({_pct(status.consumption('actual'))})"),
        (
            "Forecast period end",
            f"{format_money(band.likely, c)} likely ({_pct(status.consumption('forecasted'))});"
            f" {format_percent(band.level)} band: best {format_money(band.best, c)},"
            f" worst {format_money(band.worst, c)} · {status.forecast.method}",
        ),
        ("Daily burn", f"{format_money(status.forecast.burn_rate, c)} / day"),
        ("Runway", runway_text(status)),
    ]
    if len(firing.thresholds) > 1:
        rows.append(("Also crossed", ", ".join(threshold_text(t) for t in firing.thresholds[:-1])))
    if budget.owner:
        rows.append(("Owner", budget.owner))
    rows.append(charges.budget_fact(status))
    return rows


def contributor_rows(status: BudgetStatus) -> list[tuple[str, str]]:
    """(name, spend this period); an account by its name, then its id."""
    by_account = status.contributor_label == "account"
    return [
        (common.named(status.account_names.get(name), name, 40) if by_account else common.short(name),
         format_money(amount, status.currency))
        for name, amount in status.contributors
    ]  # fmt: skip


def teams_alert(firing: Firing, timezone: str) -> dict[str, Any]:
    status = firing.status
    kind = "actual" if firing.kind in ("actual", HARD_LIMIT) else "forecasted"
    consumption = status.consumption(kind)
    value = common.percent_points(consumption / 100)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(firing),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention" if consumption >= 100 else "Warning",
        },
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts(firing)]},
        {
            "type": "Chart.Gauge",
            "title": f"{'Actual' if kind == 'actual' else 'Forecast'} consumption",
            "subLabel": f"{_pct(consumption)} of {format_money(status.budget.amount, status.budget.currency)}",
            # Full gauge = the whole budget; the subLabel carries the exact figure when it is over.
            "min": 0,
            "max": 100,
            "value": max(0, min(value, 100)),
            "valueFormat": "Percentage",
            "segments": [
                {"from": 0, "to": 75, "color": "good", "legend": "under 75 %"},
                {"from": 75, "to": 90, "color": "warning", "legend": "75–90 %"},
                {"from": 90, "to": 100, "color": "attention", "legend": "90 % and over"},
            ],
            "fallback": {"type": "TextBlock", "text": f"Consumption {_pct(consumption)}.", "wrap": True},
        },
    ]
    contributors = contributor_rows(status)
    if contributors:
        body.append(
            {
                "type": "TextBlock",
                "text": f"Top contributors by {status.contributor_label or 'group'} this period",
                "weight": "Bolder",
                "separator": True,
                "wrap": True,
            }
        )
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in contributors]})
    return wrap(adaptive_card(body, [open_url("Open Cost Explorer", common.COST_EXPLORER_URL)]))


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_alert(firing: Firing, timezone: str) -> dict[str, Any]:
    status = firing.status
    fields = [{"type": "mrkdwn", "text": f"*{t}*\n{_slack_escape(v)}"[:2000]} for t, v in facts(firing)]
    lines = "\n".join(f"• {_slack_escape(n)}: {v}" for n, v in contributor_rows(status)) or "no spend yet"
    return {
        "text": headline(firing),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(firing)[:150]}},
            {"type": "section", "fields": fields[:10]},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Top contributors by {status.contributor_label or 'group'}*\n{lines}"[:3000],
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open Cost Explorer"},
                        "url": common.COST_EXPLORER_URL,
                    }
                ],
            },
        ],
    }


def email_alert(firing: Firing, timezone: str) -> dict[str, Any]:
    lines = [headline(firing), ""] + [f"{t}: {v}" for t, v in facts(firing)]
    contributors = contributor_rows(firing.status)
    if contributors:
        lines += ["", f"Top contributors by {firing.status.contributor_label or 'group'}:"]
        lines += [f"  {n}: {v}" for n, v in contributors]
    lines += ["", f"Cost Explorer: {common.COST_EXPLORER_URL}"]
    return {"subject": headline(firing), "message": "\n".join(lines)}


def render_alert(firing: Firing, channel: str, timezone: str) -> dict[str, Any]:
    renderers = {"teams": teams_alert, "slack": slack_alert, "email": email_alert}
    return renderers[channel](firing, timezone)


DIGEST_ROWS = 15


def _digest_rows(firings: list[Firing]) -> list[tuple[str, str]]:
    rows = []
    for firing in firings[:DIGEST_ROWS]:
        status = firing.status
        kind = "forecast" if firing.kind == "forecasted" else "actual"
        consumption = status.consumption("forecasted" if firing.kind == "forecasted" else "actual")
        rows.append(
            (
                common.short(status.budget.name, 40),
                f"{kind} {_pct(consumption)} of {format_money(status.budget.amount, status.budget.currency)}"
                f" (crossed {threshold_text(firing.threshold)}) · {status.budget.describe_scope(status.account_names)}",
            )
        )
    if len(firings) > DIGEST_ROWS:
        rows.append(("…", f"{len(firings) - DIGEST_ROWS} more: finops-guard budgets list"))
    rows.append(charges.digest_fact(firings))
    return rows


def render_digest(firings: list[Firing], channel: str, timezone: str) -> dict[str, Any]:
    """Many budget alerts in one run (typically the first run after adding budgets): one message."""
    head = f"{len(firings)} budget alerts, most consumed first"
    rows = _digest_rows(firings)
    if channel == "email":
        lines = [head, ""] + [f"{t}: {v}" for t, v in rows] + ["", f"Cost Explorer: {common.COST_EXPLORER_URL}"]
        return {"subject": head, "message": "\n".join(lines)}
    if channel == "slack":
        text = "\n".join(f"• *{_slack_escape(t)}*: {_slack_escape(v)}" for t, v in rows)
        return {
            "text": head,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            ],
        }
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": head, "size": "Large", "weight": "Bolder", "wrap": True, "color": "Warning"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in rows]},
    ]
    return wrap(adaptive_card(body, [open_url("Open Cost Explorer", common.COST_EXPLORER_URL)]))
