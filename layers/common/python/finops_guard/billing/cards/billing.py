"""Finance channel cards for billing alerts (failed payments, escalations, thresholds, ledger mismatches)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_UP, Decimal
from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_days, format_period, format_stamp
from finops_guard.core.money import format_money, format_percent, minor_units

TITLES = {
    "invoice_failed": "Payment failed",
    "payment_action_required": "Payment needs customer action",
    "escalation": "Escalation: payment failed 3 times",
    "threshold_exceeded": "Billing threshold exceeded",
    "ledger_mismatch": "Ledger mismatch",
}
STRIPE_ALERT_TITLE = "Stripe usage alert"
STRIPE_DASHBOARD = "https://dashboard.stripe.com"


def money_of(alert: dict[str, Any]) -> str | None:
    amount, currency = alert.get("amount_minor"), alert.get("currency")
    if amount is None or not currency:
        return None
    return format_money(Decimal(int(amount)).scaleb(-minor_units(currency)), currency)


def customer_label(alert: dict[str, Any]) -> str:
    """`Northwind Traders (cus_DemoNorthwind1)`: the name the dunning e-mails use, then the id."""
    customer_id, name = alert.get("customer_id"), alert.get("customer_name")
    if not customer_id:
        return str(name or "unknown customer")
    return f"{name} ({customer_id})" if name else str(customer_id)


def _threshold(alert: dict[str, Any]) -> str | None:
    """The monthly amount a ledger threshold alert crossed (`detail.threshold_minor`), formatted."""
    limit, currency = (alert.get("detail") or {}).get("threshold_minor"), alert.get("currency")
    if limit is None or not currency:
        return None
    return format_money(Decimal(int(limit)).scaleb(-minor_units(currency)), currency)


def _is_stripe_alert(alert: dict[str, Any]) -> bool:
    return (alert.get("detail") or {}).get("source") == "stripe billing.alert"


def _usage(detail: dict[str, Any]) -> str | None:
    """`120,000 API calls (alert at 102,680)`: the meter's value and the alert's threshold, when sent."""
    usage, limit = detail.get("usage"), detail.get("usage_threshold")
    if usage is None and limit is None:
        return None
    meter = f" {detail['meter']}" if detail.get("meter") else ""
    said = f"{int(usage):,}{meter}" if usage is not None else "unknown"
    return said + (f" (alert at {int(limit):,})" if limit is not None else "")


def facts(alert: dict[str, Any], timezone: str = "UTC") -> list[tuple[str, str]]:
    if alert.get("kind") == "ledger_mismatch":
        return _mismatch_facts(alert, timezone)
    detail = alert.get("detail") or {}
    rows = [("Customer", customer_label(alert))]
    if alert.get("invoice_id"):
        rows.append(("Invoice", str(alert["invoice_id"])))
    amount, threshold = money_of(alert), _threshold(alert)
    month = format_period(str(detail["month"])) if detail.get("month") else None
    if amount and threshold:
        rows.append((f"Billed in {month}" if month else "Billed this month", amount))
        rows.append(("Threshold", f"{threshold} a month"))
    elif amount:
        rows.append(("Amount", amount))
    if detail.get("attempt_count"):
        rows.append(("Payment attempts", str(detail["attempt_count"])))
    if month and not threshold:
        rows.append(("Month", month))
    if detail.get("title"):
        rows.append(("Stripe alert", str(detail["title"])))
    if (usage := _usage(detail)) is not None:
        rows.append(("Usage", usage))
    rows.append(("Opened", format_stamp(alert.get("opened_at"), timezone)))
    return rows


def _link(alert: dict[str, Any]) -> str:
    if alert.get("kind") == "ledger_mismatch":
        return f"{STRIPE_DASHBOARD}/invoices"
    if alert.get("invoice_id"):
        return f"{STRIPE_DASHBOARD}/invoices/{alert['invoice_id']}"
    if alert.get("customer_id"):
        return f"{STRIPE_DASHBOARD}/customers/{alert['customer_id']}"
    return STRIPE_DASHBOARD


def title(alert: dict[str, Any]) -> str:
    """The card's headline, with the number it is about: the amount, and for a threshold the threshold."""
    base = TITLES.get(str(alert.get("kind")), "Billing alert")
    detail = alert.get("detail") or {}
    if alert.get("kind") == "ledger_mismatch":
        count = int(detail.get("mismatch_count") or 0)
        limit = detail.get("variance_percent")
        over = f" over {_threshold_percent(limit)}" if limit is not None else ""
        return f"{base}: {count} customer/currency pair{'' if count == 1 else 's'}{over}"
    customer, amount, threshold = customer_label(alert), money_of(alert), _threshold(alert)
    if _is_stripe_alert(alert):
        usage = _usage(detail)
        return f"{STRIPE_ALERT_TITLE}: {customer} — {detail.get('title') or 'threshold reached'}" + (
            f": {usage}" if usage else ""
        )
    if amount and threshold:
        month = format_period(str(detail["month"])) if detail.get("month") else "this month"
        return f"{base}: {customer} billed {amount} in {month}, over the {threshold} threshold"
    return f"{base}: {customer}" + (f" — {amount}" if amount else "")


def render_billing_alert(alert: dict[str, Any], channel: str, timezone: str = "UTC") -> dict[str, Any]:
    """The finance channel's card for one billing alert; instants in `timezone`, the stage's."""
    head = title(alert)
    rows = facts(alert, timezone)
    if channel == "slack":
        fields = [{"type": "mrkdwn", "text": f"*{t}*\n{_escape(v)}"[:2000]} for t, v in rows]
        return {
            "text": head,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
                {"type": "section", "fields": fields[:10]},
                *_mismatch_blocks_slack(alert),
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in Stripe"}, "url": _link(alert)}
                ]},
            ],
        }  # fmt: skip
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": head, "size": "Large", "weight": "Bolder", "wrap": True,
         "color": "Attention"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in rows]},
        *_mismatch_blocks_teams(alert),
    ]  # fmt: skip
    return wrap(adaptive_card(body, [open_url("Open in Stripe", _link(alert))]))


# --- ledger_mismatch (daily reconciliation, finops_guard/billing/reconciliation.py) ------------------------


def _minor(amount: Any, currency: str) -> str:
    return format_money(Decimal(int(amount or 0)).scaleb(-minor_units(currency)), currency)


def _percent(value: Any) -> str:
    """A stored variance (in percent) in the cards' percent style, rounded up so a mismatch never
    reads as within the threshold. None: infinite (the ledger has it, Stripe says nothing was paid)."""
    if value is None:
        return "∞ %"
    return format_percent(Decimal(str(value)) / 100, rounding=ROUND_UP)


def _threshold_percent(value: Any) -> str:
    """The configured variance threshold, rounded toward zero: "over 1.0 %" stays true of 1.04 %."""
    return format_percent(Decimal(str(value)) / 100)


def _window(detail: dict[str, Any]) -> str | None:
    """The days the reconciliation compared (stored as UTC instants): `2 Nov – 2 Dec 2026`."""
    try:
        first = date.fromisoformat(str(detail["window_start"])[:10])
        last = date.fromisoformat(str(detail["window_end"])[:10])
    except (KeyError, ValueError):
        return None
    return format_days(first, last)


def _mismatch_facts(alert: dict[str, Any], timezone: str) -> list[tuple[str, str]]:
    detail = alert.get("detail") or {}
    rows = [("Mismatching pairs", str(int(detail.get("mismatch_count") or 0)))]
    if detail.get("variance_percent") is not None:
        rows.append(("Threshold", f"variance > {_threshold_percent(detail['variance_percent'])}"))
    rows.append(("Past-due invoices", str(int(detail.get("past_due_count") or 0))))
    if (window := _window(detail)) is not None:
        rows.append(("Invoices created", f"{window} (UTC)"))
    rows.append(("Opened", format_stamp(alert.get("opened_at"), timezone)))
    return rows


def _listed_pairs(alert: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(pair line, invoice lines) for each mismatching pair with listed invoices."""
    if alert.get("kind") != "ledger_mismatch":
        return []
    pairs = []
    for pair in (alert.get("detail") or {}).get("mismatches") or []:
        invoices = pair.get("invoices") or []
        if not invoices:
            continue
        currency = str(pair.get("currency") or "USD")
        head = (
            f"{customer_label(pair)} · {currency}: Stripe {_minor(pair.get('stripe_minor'), currency)}"
            f" vs ledger {_minor(pair.get('ledger_minor'), currency)} ({_percent(pair.get('variance_percent'))})"
        )
        lines = [
            f"{i.get('invoice_id')}: Stripe {_minor(i.get('stripe_minor'), currency)} ({i.get('stripe_status')}),"
            f" ledger {_minor(i.get('ledger_minor'), currency)}"
            for i in invoices
        ]
        pairs.append((head, lines))
    return pairs


def _not_listed(alert: dict[str, Any]) -> str | None:
    detail = alert.get("detail") or {}
    count = int(detail.get("invoices_not_listed") or 0)
    return f"… and {count} more mismatching invoice{'' if count == 1 else 's'}" if count else None


def _mismatch_blocks_teams(alert: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for head, lines in _listed_pairs(alert):
        blocks.append({"type": "TextBlock", "text": head, "weight": "Bolder", "wrap": True, "spacing": "Medium"})
        blocks.extend({"type": "TextBlock", "text": f"- {line}", "wrap": True, "spacing": "None"} for line in lines)
    more = _not_listed(alert) if blocks else None
    if more:
        blocks.append({"type": "TextBlock", "text": more, "isSubtle": True, "wrap": True})
    return blocks


def _mismatch_blocks_slack(alert: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for head, lines in _listed_pairs(alert):
        text = f"*{_escape(head)}*\n" + "\n".join(f"• {_escape(line)}" for line in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 3000)}})
    more = _not_listed(alert) if blocks else None
    if more:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
