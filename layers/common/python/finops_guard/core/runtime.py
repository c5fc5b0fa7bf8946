"""Composition pieces both products' handlers use: the chat settings, the outbox, the webhook poster
that stops retrying before the Lambda timeout, and the instant a schedule fired.

Each half's runtime (finops_guard.costs.runtime, finops_guard.billing.runtime) re-exports these, so a
handler builds everything from its own half's runtime.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from finops_guard.core.adapters.chat import WebhookPoster
from finops_guard.core.adapters.outbox import DynamoOutbox
from finops_guard.core.adapters.secrets import read_webhook_url
from finops_guard.core.delivery import ChatConfigError, ChatMessage, ChatNotConfigured
from finops_guard.core.settings import ChatChannels, ChatSettings

SAFETY_MARGIN_S = 10.0


@cache
def chat_settings() -> ChatSettings:
    """The deployment's chat channels, for functions that post to chat and read nothing else of the cost settings."""
    return ChatSettings.from_env(os.environ)


@dataclass
class ChatSetup:
    """The deployment's chat channels as one run found them, before rendering any card."""

    unready: dict[str, str] = field(default_factory=dict)  # channel -> its secret, still holding the placeholder
    # secret -> why it could not be read: delivery reports it as the failure it is, without reading again
    unreadable: dict[str, ChatConfigError] = field(default_factory=dict)


def chat_setup(config: ChatChannels) -> ChatSetup:
    """Reads (and caches) the deployment's webhook secrets, so the card that gets through can say which
    channel is not set up yet."""
    setup = ChatSetup()
    for channel in config.chat_channels:
        secret = config.secret_for(channel)
        try:
            read_webhook_url(secret, channel=channel)
        except ChatNotConfigured:
            setup.unready[channel] = secret
        except ChatConfigError as error:
            setup.unreadable[secret] = error
    return setup


@cache
def outbox(table_name: str) -> DynamoOutbox:
    return DynamoOutbox(table_name)


# A product's own destinations (the cost half's team channels): the URL for a message it routes, else None.
DestinationUrl = Callable[[ChatMessage, bool], "str | None"]


def webhook_poster(
    config: ChatChannels,
    remaining_ms: int | None = None,
    setup: ChatSetup | None = None,
    destination_url: DestinationUrl | None = None,
) -> WebhookPoster:
    """A poster that stops retrying before the Lambda timeout (remaining_ms from the context).
    `setup`: this run's chat_setup; a secret it could not read is not read again in the same run.
    `destination_url`: the URL of a message the caller routes itself (a team's channel), or None."""
    deadline = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_S
    unreadable = setup.unreadable if setup is not None else {}

    def url_for(message: ChatMessage, refresh: bool = False) -> str:
        routed = destination_url(message, refresh) if destination_url is not None else None
        if routed is not None:
            return routed
        # Everything else goes to the deployment's channel (or the secret a message names).
        secret = message.secret_name or config.secret_for(message.channel)
        if secret in unreadable and not refresh:
            raise ChatConfigError(str(unreadable[secret]))
        return read_webhook_url(secret, channel=message.channel, refresh=refresh)

    return WebhookPoster(url_for, refresh_url=lambda message: url_for(message, refresh=True), deadline=deadline)


def scheduled_time(event: dict[str, Any] | None) -> datetime:
    """The instant the schedule fired (stable across retries), else now."""
    text = (event or {}).get("scheduled_time") or (event or {}).get("time")
    if isinstance(text, str) and text and not text.startswith("<"):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return datetime.now(UTC)
