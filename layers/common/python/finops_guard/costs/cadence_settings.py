"""Settings of the reports at every cadence (issue 22): the daily digest and the month-close report.

Read from the environment once, like costs/settings.py, and kept apart from it: these switches
matter to two functions only (the budget guard and the chargeback), and each is off by default.

- `FINOPSGUARD_DAILY_DIGEST`: a JSON list of destinations: `default` (every chat channel of the
  deployment), `teams`, `slack`, `team:*` (every routed team), `team:<name>`; empty or unset: off.
- `FINOPSGUARD_DIGEST_MIN_SHARE` (percent, default 20) and `FINOPSGUARD_DIGEST_MIN_AMOUNT`
  (currency units, default 100): the quiet rule (costs/daily_digest.py).
- `FINOPSGUARD_MONTH_CLOSE_REPORT`: `true` to post the month-close report.
- `FINOPSGUARD_BUDGET_ADJUST_THRESHOLD` (percent, default 10): a budget whose variance is beyond it
  gets a proposed amount on the month-close report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from finops_guard.core.settings import PREFIX, SettingsError, decimal_in, flag

DEFAULT = "default"
EVERY_TEAM = "team:*"
TEAM_PREFIX = "team:"
CHANNELS = ("teams", "slack")
MAX_PERCENT = Decimal(1000)
MAX_AMOUNT = Decimal("1e12")


def parse_destinations(raw: object, name: str = "DAILY_DIGEST") -> tuple[str, ...]:
    """A list of digest destinations, each once, in the order given."""
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise SettingsError(f"{PREFIX}{name} must be a JSON list of destinations")
    found: list[str] = []
    for destination in raw:
        text = destination.strip()
        team = text.removeprefix(TEAM_PREFIX)
        if text not in (DEFAULT, *CHANNELS) and not (text.startswith(TEAM_PREFIX) and 0 < len(team) <= 256):
            raise SettingsError(
                f"{PREFIX}{name}: {destination!r} is not a destination (default, teams, slack, team:*, team:<name>)"
            )
        if text not in found:
            found.append(text)
    return tuple(found)


@dataclass(frozen=True)
class CadenceSettings:
    digest_destinations: tuple[str, ...] = ()
    digest_min_share: Decimal = Decimal("0.2")  # a ratio: 0.2 = 20 %
    digest_min_amount: Decimal = Decimal(100)
    month_close: bool = False
    budget_adjust_threshold: Decimal = Decimal("0.1")  # a ratio

    @property
    def digest_on(self) -> bool:
        return bool(self.digest_destinations)

    def digest_channels(self, chat_channels: Sequence[str]) -> list[str]:
        """The deployment's channels that get the digest (in the deployment's order)."""
        wanted = set(self.digest_destinations)
        return [c for c in chat_channels if DEFAULT in wanted or c in wanted]

    def digest_team(self, team: str) -> bool:
        """Does `team` (a routed team) get its own digest?"""
        return EVERY_TEAM in self.digest_destinations or f"{TEAM_PREFIX}{team}" in self.digest_destinations

    @property
    def digest_teams_named(self) -> tuple[str, ...]:
        return tuple(d.removeprefix(TEAM_PREFIX) for d in self.digest_destinations
                     if d.startswith(TEAM_PREFIX) and d != EVERY_TEAM)  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CadenceSettings:
        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value.strip() if isinstance(value, str) and value.strip() else None

        destinations: tuple[str, ...] = ()
        text = get("DAILY_DIGEST")
        if text is not None:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raise SettingsError(f"{PREFIX}DAILY_DIGEST must be a JSON list of destinations") from None
            destinations = parse_destinations(raw)
        share = decimal_in(get("DIGEST_MIN_SHARE") or "20", "DIGEST_MIN_SHARE", Decimal(0), MAX_PERCENT)
        amount = decimal_in(get("DIGEST_MIN_AMOUNT") or "100", "DIGEST_MIN_AMOUNT", Decimal(0), MAX_AMOUNT)
        threshold = decimal_in(
            get("BUDGET_ADJUST_THRESHOLD") or "10", "BUDGET_ADJUST_THRESHOLD", Decimal(0), MAX_PERCENT
        )
        return cls(
            digest_destinations=destinations,
            digest_min_share=share / 100,
            digest_min_amount=amount,
            month_close=flag(env.get(PREFIX + "MONTH_CLOSE_REPORT")),
            budget_adjust_threshold=threshold / 100,
        )
