"""Finance channel cards for billing alerts (failed payments, escalations, thresholds, ledger mismatches)."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal
from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.money import format_money, minor_units

TITLES = {
    "invoice_failed": "Payment failed",
    "payment_action_required": "Payment needs customer action",
    "escalation": "Escalation: payment failed 3 times",
    "threshold_exceeded": "Billing threshold exceeded",
    "ledger_mismatch": "Ledger mismatch",
}
STRIPE_DASHBOARD = "https://dashboard.stripe.com"


def money_of(alert: dict[str, Any]) -> str | None:
    amount, currency = alert.get("amount_minor"), alert.get("currency")
    if amount is None or not currency:
        return None
    return format_money(Decimal(int(amount)).scaleb(-minor_units(currency)), currency)


def facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    if alert.get("kind") == "ledger_mismatch":
        return _mismatch_facts(alert)
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
    if alert.get("kind") == "ledger_mismatch":
        return f"{STRIPE_DASHBOARD}/invoices"
    if alert.get("invoice_id"):
        return f"{STRIPE_DASHBOARD}/invoices/{alert['invoice_id']}"
    if alert.get("customer_id"):
        return f"{STRIPE_DASHBOARD}/customers/{alert['customer_id']}"
    return STRIPE_DASHBOARD


def title(alert: dict[str, Any]) -> str:
    base = TITLES.get(str(alert.get("kind")), "Billing alert")
    if alert.get("kind") == "ledger_mismatch":
        detail = alert.get("detail") or {}
        count = int(detail.get("mismatch_count") or 0)
        over = f" over {_percent(detail.get('variance_percent'))}" if detail.get("variance_percent") is not None else ""
        return f"{base}: {count} customer/currency pair{'' if count == 1 else 's'}{over}"
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
                *_mismatch_blocks_slack(alert),
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in Stripe"}, "url": _link(alert)}
                ]},
            ],
        }  # fmt: skip
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(alert), "size": "Large", "weight": "Bolder", "wrap": True,
         "color": "Attention"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts(alert)]},
        *_mismatch_blocks_teams(alert),
    ]  # fmt: skip
    return wrap(adaptive_card(body, [open_url("Open in Stripe", _link(alert))]))


# --- ledger_mismatch (daily reconciliation, finops_guard/billing/reconciliation.py) ------------------------


def _minor(amount: Any, currency: str) -> str:
    return format_money(Decimal(int(amount or 0)).scaleb(-minor_units(currency)), currency)


def _percent(value: Any) -> str:
    """A stored variance; rounded up so a mismatch never reads as within the threshold. None: infinite."""
    if value is None:
        return "∞ %"
    shown = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_UP).normalize()
    return f"{shown:f} %"


def _mismatch_facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    detail = alert.get("detail") or {}
    rows = [("Mismatching pairs", str(int(detail.get("mismatch_count") or 0)))]
    if detail.get("variance_percent") is not None:
        rows.append(("Threshold", f"variance > {_percent(detail['variance_percent'])}"))
    rows.append(("Past-due invoices", str(int(detail.get("past_due_count") or 0))))
    if detail.get("window_start") and detail.get("window_end"):
        rows.append(("Invoices created", f"{str(detail['window_start'])[:10]} to {str(detail['window_end'])[:10]}"))
    rows.append(("Opened", str(alert.get("opened_at") or "")))
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
            f"{pair.get('customer_id')} · {currency}: Stripe {_minor(pair.get('stripe_minor'), currency)}"
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
