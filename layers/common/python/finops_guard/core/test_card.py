"""The test card `finops-guard report test-card` posts: proof that a channel's webhook works, sent
before the first scheduled card. It says it is a test, which stage and channel it is for, and what
will come there, so nobody in the channel mistakes it for a cost figure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finops_guard.core.cards import adaptive_card, wrap
from finops_guard.core.delivery import ChatMessage

TITLE = "FinOps Guard test card"


def test_card_text(stage: str, channel: str, destination: str) -> str:
    return (
        f"This {channel.capitalize()} channel receives FinOps Guard's cards for stage {stage} ({destination}). "
        "Nothing needs doing: this card only proves the webhook works. It carries no cost figures."
    )


def test_card(stage: str, channel: str, destination: str, sent_at: datetime) -> ChatMessage:
    """One message for `channel` ("teams" | "slack"); `destination` says what the channel is for,
    e.g. "the weekly cost card, budget alerts and anomalies"."""
    text = test_card_text(stage, channel, destination)
    when = f"Sent {sent_at.day} {sent_at:%b %Y %H:%M} UTC"
    payload: dict[str, Any]
    if channel == "slack":
        payload = {
            "text": f"{TITLE} · stage {stage}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": f"{TITLE} · stage {stage}"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": when}]},
            ],
        }
    else:
        body = [
            {"type": "TextBlock", "text": f"{TITLE} · stage {stage}", "weight": "Bolder", "size": "Medium",
             "wrap": True},
            {"type": "TextBlock", "text": text, "wrap": True},
            {"type": "TextBlock", "text": when, "isSubtle": True, "size": "Small", "wrap": True},
        ]  # fmt: skip
        payload = wrap(adaptive_card(body, []))
    message_id = f"test-card/{stage}/{sent_at:%Y%m%dT%H%M%SZ}/{channel}"
    return ChatMessage(message_id=message_id, channel=channel, kind="test-card", payload=payload)
