"""Getting chat messages out without losing or doubling them.

Every message is written to the outbox first (claimed), posted, then marked delivered after the
2xx. A failure marks it failed and keeps its payload for `finops-guard report resend`. The claim
is one conditional write that refuses messages already delivered or being sent by a concurrent
invocation, so a retried or duplicated run does not post the same report twice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatMessage:
    message_id: str
    channel: str  # "teams" | "slack"
    kind: str
    payload: dict[str, Any]
    # The webhook secret of a team's own channel; None = the deployment's channel for `channel`.
    secret_name: str | None = None


class ChatConfigError(RuntimeError):
    """The channel cannot be used as configured (secret missing or without a webhook URL)."""


class PostRejected(RuntimeError):
    """The chat service refused the message for good (a 4xx other than 429): retrying will not help."""


class PostFailed(RuntimeError):
    """Retries exhausted (429/5xx/timeouts) or no time left for another attempt."""


class DeliveryFailed(RuntimeError):
    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        listed = "; ".join(f"{message_id}: {reason}" for message_id, reason in failures)
        super().__init__(f"{len(failures)} chat message(s) kept in the outbox, not delivered: {listed}")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: exponential backoff with jitter; Retry-After honoured, and a Retry-After
    beyond `max_retry_after` ends the retries (the message is kept) rather than retrying early."""

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class Outbox(Protocol):
    def claim(self, message: ChatMessage, now: datetime) -> bool: ...
    def mark_delivered(self, message_id: str, now: datetime, attempts: int) -> None: ...
    def mark_failed(self, message_id: str, now: datetime, reason: str, attempts: int) -> None: ...


class Poster(Protocol):
    def post(self, message: ChatMessage) -> int:
        """Send; return the number of attempts used or raise PostRejected/PostFailed/ChatConfigError."""
        ...


@dataclass
class DeliveryResult:
    delivered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def deliver_all(messages: Iterable[ChatMessage], outbox: Outbox, poster: Poster, now: datetime) -> DeliveryResult:
    """Deliver each message once. Every channel is tried even when an earlier one fails."""
    result = DeliveryResult()
    for message in messages:
        if not outbox.claim(message, now):
            log.info("chat message already delivered or in flight", extra={"message_id": message.message_id})
            result.skipped.append(message.message_id)
            continue
        try:
            attempts = poster.post(message)
        except (PostRejected, PostFailed, ChatConfigError) as error:
            attempts = getattr(error, "attempts", 1)
            outbox.mark_failed(message.message_id, now, str(error), attempts)
            log.error(
                "chat delivery failed; message kept", extra={"message_id": message.message_id, "reason": str(error)}
            )
            result.failed.append((message.message_id, str(error)))
            continue
        outbox.mark_delivered(message.message_id, now, attempts)
        result.delivered.append(message.message_id)
    return result


class RoutingPoster:
    """One poster per channel (webhooks for chat, SNS for e-mail), chosen by the message's channel."""

    def __init__(self, by_channel: dict[str, Poster]) -> None:
        self._by_channel = by_channel

    def post(self, message: ChatMessage) -> int:
        poster = self._by_channel.get(message.channel)
        if poster is None:
            raise ChatConfigError(f"channel {message.channel!r} is not configured for this deployment")
        return poster.post(message)
