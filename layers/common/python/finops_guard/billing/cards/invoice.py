"""Finance channel card for an invoice the invoice bot issued: who, how much, and the two links."""

from __future__ import annotations

from typing import Any

from finops_guard.billing.invoice_bot import IssuedInvoice
from finops_guard.core.cards import adaptive_card, open_url, wrap


def customer_label(issued: IssuedInvoice) -> str:
    """`Fabrikam Events (cus_DemoFabrikam01)`: the name on Stripe's invoice, then the id."""
    return f"{issued.customer_name} ({issued.customer})" if issued.customer_name else issued.customer


def _facts(issued: IssuedInvoice, requested_by: str) -> list[tuple[str, str]]:
    return [
        ("Customer", customer_label(issued)),
        ("Amount", issued.amount),
        ("Invoice", issued.number or issued.invoice_id),
        ("Description", issued.description),
        ("Requested by", requested_by),
        ("Request id", issued.request_id),
    ]


def render_invoice_sent(issued: IssuedInvoice, channel: str, requested_by: str) -> dict[str, Any]:
    title = f"Invoice sent: {customer_label(issued)} — {issued.amount}"
    links = [(label, url) for label, url in (("Open invoice", issued.hosted_invoice_url),
                                               ("Invoice PDF", issued.invoice_pdf)) if url]  # fmt: skip
    if channel == "slack":
        fields = [{"type": "mrkdwn", "text": f"*{t}*\n{_escape(v)}"[:2000]} for t, v in _facts(issued, requested_by)]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": fields[:10]},
        ]
        if links:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url} for label, url in links
            ]})  # fmt: skip
        return {"text": title, "blocks": blocks}
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "size": "Large", "weight": "Bolder", "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _facts(issued, requested_by)]},
    ]
    return wrap(adaptive_card(body, [open_url(label, url) for label, url in links]))


def _escape(text: str) -> str:
    """Slack mrkdwn control characters in names and descriptions must not turn into links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
