"""Finance channel cards for billing alerts (failed payments, escalations, thresholds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from finops_guard.cards.teams import adaptive_card, open_url, wrap
from finops_guard.money import format_money, minor_units

TITLES = {
    "invoice_failed": "Payment failed",
    "payment_action_required": "Payment needs customer action",
    "escalation": "Escalation: payment failed 3 times",
    "threshold_exceeded": "Billing threshold exceeded",
}
STRIPE_DASHBOARD = "https://dashboard.stripe.com"


def money_of(alert: dict[str, Any]) -> str | None:
    amount, currency = alert.get("amount_minor"), alert.get("currency")
    if amount is None or not currency:
        return None
    return format_money(Decimal(int(amount)).scaleb(-minor_units(currency)), currency)


def facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Customer", str(alert.get("customer_id") or "unknown"))]
    if alert.get("invoice_id"):
        rows.append(("Invoice", str(alert["invoice_id"])))
    amount = money_of(alert)
    if amount:
        rows.append(("Amount", amount))
    detail = alert.get("detail") or {}
    if detail.get("attempt_count"):
        rows.append(("Payment attempts", str(detail["attempt_count"])))
    if detail.get("month"):
        rows.append(("Month", str(detail["month"])))
    if detail.get("title"):
        rows.append(("Stripe alert", str(detail["title"])))
    rows.append(("Opened", str(alert.get("opened_at") or "")))
    return rows


def _link(alert: dict[str, Any]) -> str:
    if alert.get("invoice_id"):
        return f"{STRIPE_DASHBOARD}/invoices/{alert['invoice_id']}"
    if alert.get("customer_id"):
        return f"{STRIPE_DASHBOARD}/customers/{alert['customer_id']}"
    return STRIPE_DASHBOARD


def title(alert: dict[str, Any]) -> str:
    base = TITLES.get(str(alert.get("kind")), "Billing alert")
    amount = money_of(alert)
    return f"{base}: {alert.get('customer_id') or 'unknown customer'}" + (f" ({amount})" if amount else "")


def render_billing_alert(alert: dict[str, Any], channel: str) -> dict[str, Any]:
    if channel == "slack":
        fields = [{"type": "mrkdwn", "text": f"*{t}*\n{v}"[:2000]} for t, v in facts(alert)]
        return {
            "text": title(alert),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title(alert)[:150]}},
                {"type": "section", "fields": fields[:10]},
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in Stripe"}, "url": _link(alert)}
                ]},
            ],
        }  # fmt: skip
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(alert), "size": "Large", "weight": "Bolder", "wrap": True,
         "color": "Attention"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts(alert)]},
    ]  # fmt: skip
    return wrap(adaptive_card(body, [open_url("Open in Stripe", _link(alert))]))
