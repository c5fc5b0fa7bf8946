"""Getting chat messages out without losing or doubling them.

Every message is written to the outbox first (claimed), posted, then marked delivered after the
2xx. A failure marks it failed and keeps its payload for `finops-guard report resend`. The claim
is one conditional write that refuses messages already delivered or being sent by a concurrent
invocation, so a retried or duplicated run does not post the same report twice.
"""

from __future__ import annotations

import logging
import random
import re
import shlex
from collections.abc import Iterable, Sequence
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
    # A team's own channel (teams.team_destination: "team:<team>", never a secret's name, which cannot
    # hold ':'); None = the deployment's channel for `channel`. Kept in the outbox for redrives.
    secret_name: str | None = None


class ChatConfigError(RuntimeError):
    """The channel cannot be used as configured (secret missing, unreadable, or holding a bad URL)."""


def team_webhook_key(secret_name: str, team: str, channel: str) -> str:
    """Where a team channel's URL belongs: `<team webhooks secret>#<channel>:<team>` ('#' cannot be in
    a secret's name). What a team channel that is not set up yet is reported under."""
    return f"{secret_name}#{channel}:{team}"


def put_webhook_command(secret_name: str) -> str:
    """The command that sets up a chat channel: its webhook URL into its secret (for a team channel,
    `finops-guard teams add`, which validates the URL and writes it into the team webhooks secret)."""
    secret, team_key, key = secret_name.partition("#")
    if team_key:
        channel, _, team = key.partition(":")
        stage = re.fullmatch(r"finops-guard/([^/]+)/team-webhooks", secret)
        stage_flag = f" --stage {shlex.quote(stage.group(1))}" if stage else ""
        return f"finops-guard teams add {shlex.quote(team)}{stage_flag} --{channel}-url 'https://...'"
    return f"aws secretsmanager put-secret-value --secret-id {secret_name} --secret-string 'https://...'"


class ChatNotConfigured(ChatConfigError):
    """The channel's webhook secret still holds the placeholder the stack created (no http(s) URL yet).

    A setup step, not a failure: the message waits in the outbox as an undelivered one does, and the
    run neither fails nor counts a ChatDeliveryFailure (that alarm pages)."""

    def __init__(self, channel: str, secret_name: str) -> None:
        self.channel = channel
        self.secret_name = secret_name  # or a team_webhook_key
        secret, team_key, key = secret_name.partition("#")
        where = (
            f"team {key.partition(':')[2]!r} has no {channel} URL in secret '{secret}'"
            if team_key
            else f"secret '{secret_name}' holds no webhook URL"
        )
        super().__init__(f"{channel} chat is not set up yet: {where}. Put it with: {put_webhook_command(secret_name)}")


class PostRejected(RuntimeError):
    """The chat service refused the message for good (a 4xx other than 429): retrying will not help."""


class PostFailed(RuntimeError):
    """Retries exhausted (429/5xx/timeouts) or no time left for another attempt."""


class DeliveryFailed(RuntimeError):
    def __init__(self, failures: list[tuple[str, str]], not_configured: Sequence[tuple[str, str]] = ()) -> None:
        self.failures = failures
        self.not_configured = list(not_configured)  # kept too, for channels not set up yet (not failures)
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
    # (message id, secret name): kept in the outbox because its channel is not set up yet. Not a failure.
    not_configured: list[tuple[str, str]] = field(default_factory=list)

    @property
    def settled(self) -> set[str]:
        """Message ids nothing more can be done for in this run: delivered, already delivered or in
        flight, or kept for a channel that is not set up yet."""
        return {*self.delivered, *self.skipped, *(message_id for message_id, _ in self.not_configured)}


def deliver_all(messages: Iterable[ChatMessage], outbox: Outbox, poster: Poster, now: datetime) -> DeliveryResult:
    """Deliver each message once. Every channel is tried even when an earlier one fails.

    A channel whose webhook secret still holds its placeholder is not set up yet: its messages are
    kept in the outbox as failed ones are (a resend delivers them once the URL is put), listed in
    `not_configured` rather than `failed`, and one WARNING per secret says how to set it up."""
    result = DeliveryResult()
    warned: set[str] = set()
    for message in messages:
        if not outbox.claim(message, now):
            log.info("chat message already delivered or in flight", extra={"message_id": message.message_id})
            result.skipped.append(message.message_id)
            continue
        try:
            attempts = poster.post(message)
        except ChatNotConfigured as error:
            outbox.mark_failed(message.message_id, now, str(error), 0)  # nothing was posted
            result.not_configured.append((message.message_id, error.secret_name))
            if error.secret_name not in warned:
                warned.add(error.secret_name)
                log.warning(
                    f"{error.channel} chat is not set up yet; its messages wait in the outbox. Put the webhook"
                    f" URL with: {put_webhook_command(error.secret_name)} then send them with:"
                    " finops-guard outbox redrive",
                    extra={"channel": error.channel, "secret_name": error.secret_name},
                )
            continue
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
