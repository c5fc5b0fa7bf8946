"""Teams and Slack card primitives both products use: the Adaptive Card 1.5 envelope of a Teams
Workflows webhook message, its actions, its size, and chart numbers that keep money exact.

`MAX_PAYLOAD_BYTES` is what a Teams Workflows webhook accepts; every card is kept under it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from finops_guard.core.money import quantize

MAX_PAYLOAD_BYTES = 28 * 1024


def chart_number(amount: Decimal, currency: str) -> float:
    """Chart coordinates must be JSON numbers. Rounded to the minor unit first, the float's
    JSON text is exactly the Decimal's, so no money value is altered on the way."""
    return float(quantize(amount, currency))


def adaptive_card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """An Adaptive Card 1.5 at full width in Teams."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "msteams": {"width": "Full"},
        "body": body,
        "actions": actions,
    }


def open_url(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def wrap(card: dict[str, Any]) -> dict[str, Any]:
    """The Teams Workflows ("When a Teams webhook request is received") message envelope."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def payload_bytes(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
