"""Settings both products share: the environment prefix, the error naming a bad variable, value parsers,
and the chat channels (webhook secrets, outbox) every function that posts to chat reads.

Values are names and knobs set by the CDK stack (never secrets): secret *names* travel in the
environment, secret values only ever come from Secrets Manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

PREFIX = "FINOPSGUARD_"


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def decimal_in(text: str, name: str, low: Decimal | None, high: Decimal | None) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise SettingsError(f"{PREFIX}{name}={text!r} is not a number") from None
    if not value.is_finite() or (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{PREFIX}{name}={text!r} is out of range")
    return value


def iso_date(text: str | None, name: str) -> date | None:
    """`YYYY-MM-DD` exactly (date.fromisoformat alone would also take `20261110` or `2026-W46-2`)."""
    if text is None:
        return None
    problem = SettingsError(f"{PREFIX}{name}={text!r} must be a date as YYYY-MM-DD")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise problem
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise problem from None


class ChatChannels:
    """The deployment's chat channels, as every settings object that posts to chat has them."""

    teams_secret_name: str | None
    slack_secret_name: str | None
    outbox_table: str | None

    def require(self, field_name: str) -> str:
        value = getattr(self, field_name)
        if not value:
            raise SettingsError(f"{PREFIX}{field_name.upper()} is not set")
        return value

    @property
    def chat_channels(self) -> list[str]:
        return ["teams", "slack"] if self.slack_secret_name else ["teams"]

    def secret_for(self, channel: str) -> str:
        name = {"teams": self.teams_secret_name, "slack": self.slack_secret_name}.get(channel)
        if not name:
            raise SettingsError(f"no webhook secret is configured for channel {channel!r}")
        return name


def timezone_name(text: str | None) -> str:
    """The stage's IANA time zone (`FINOPSGUARD_TIMEZONE`), UTC when unset: cards write instants in it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = (text or "").strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{PREFIX}TIMEZONE={name!r} is not an IANA time zone") from None
    return name


@dataclass(frozen=True)
class ChatSettings(ChatChannels):
    """What a function that only posts to chat reads (the billing notifier, the invoice bot's card)."""

    teams_secret_name: str | None
    slack_secret_name: str | None
    outbox_table: str | None
    timezone: str = "UTC"  # the stage's: a card's instants are written in it

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChatSettings:
        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value.strip() if isinstance(value, str) and value.strip() else None

        return cls(
            teams_secret_name=get("TEAMS_SECRET_NAME"),
            slack_secret_name=get("SLACK_SECRET_NAME"),
            outbox_table=get("OUTBOX_TABLE"),
            timezone=timezone_name(get("TIMEZONE")),
        )
