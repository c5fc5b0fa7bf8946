"""Teams: who owns which spend, and where each team wants to hear about it.

Attribution reads spend by *dimensions*: cost allocation tags and cost categories, written in
configuration as `tag:<key>` or `costCategory:<name>`. One of them is the *team dimension*: its
values are team names, and a team with a route (in the team routes table) gets its own weekly
card, and the budget and anomaly alerts that concern it, in its own Teams and/or Slack channel.
The deployment's default channel still gets everything.

A budget concerns a team when its scope filters on the team dimension with that team's value, or
on an account the team's route lists. An anomaly concerns a team when its root cause (or, lacking
one, the anomaly itself) is in an account the team's route lists: Cost Anomaly Detection names
accounts, not tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from finops_guard.costs.budgets import Dimension

UNTAGGED = "untagged"  # how Cost Explorer's empty tag/category value reads in cards and CSVs
MAX_DIMENSIONS = 3  # each is one more billed Cost Explorer request per weekly run
_TAG_KEY = re.compile(r"[\w.:/=+\-@ ]{1,128}")
_ACCOUNT = re.compile(r"\d{12}")
ROUTE_CHANNELS = ("teams", "slack")


class TeamConfigError(ValueError):
    """An invalid dimension or team route; the message names the field."""


@dataclass(frozen=True)
class AttributionDimension:
    """A cost allocation tag (`tag:Team`) or cost category (`costCategory:Project`) to attribute by."""

    kind: str  # "tag" | "costCategory"
    key: str

    @property
    def dimension(self) -> Dimension:
        return Dimension("TAG" if self.kind == "tag" else "COST_CATEGORY", self.key)

    @property
    def label(self) -> str:
        return self.key

    def spec(self) -> str:
        return f"{self.kind}:{self.key}"

    def value_of(self, group_key: str) -> str:
        """The team (or cost center...) a Cost Explorer group key names; '' = untagged."""
        return self.dimension.value_of(group_key) if "$" in group_key else ""


def parse_dimension(spec: str, field_name: str = "dimension") -> AttributionDimension:
    kind, sep, key = spec.strip().partition(":")
    if not sep or kind not in ("tag", "costCategory") or not _TAG_KEY.fullmatch(key):
        raise TeamConfigError(
            f"{field_name}: {spec!r} must be tag:<tag key> or costCategory:<cost category name>"
            " (a key of 1 to 128 letters, digits, spaces or _.:/=+-@)"
        )
    return AttributionDimension(kind, key)


def parse_dimensions(specs: Iterable[str], field_name: str = "dimensions") -> tuple[AttributionDimension, ...]:
    parsed = tuple(parse_dimension(s, f"{field_name}[{i}]") for i, s in enumerate(specs))
    if len(parsed) > MAX_DIMENSIONS:
        raise TeamConfigError(f"{field_name}: at most {MAX_DIMENSIONS} dimensions (each costs a request a week)")
    if len({d.spec() for d in parsed}) != len(parsed):
        raise TeamConfigError(f"{field_name}: a dimension is listed twice")
    return parsed


def display_value(value: str) -> str:
    return value or UNTAGGED


@dataclass(frozen=True)
class TeamRoute:
    """A team (a value of the team dimension, exactly as tagged: tags are case-sensitive) and its
    channels. Secrets hold webhook URLs; only their names are stored here."""

    team: str
    teams_secret: str | None = None
    slack_secret: str | None = None
    accounts: tuple[str, ...] = ()

    def destinations(self) -> list[tuple[str, str]]:
        """(channel, webhook secret name) for every channel the team has."""
        pairs = [("teams", self.teams_secret), ("slack", self.slack_secret)]
        return [(channel, secret) for channel, secret in pairs if secret]

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"team": self.team}
        if self.teams_secret:
            document["teams_secret"] = self.teams_secret
        if self.slack_secret:
            document["slack_secret"] = self.slack_secret
        if self.accounts:
            document["accounts"] = list(self.accounts)
        return document


def parse_route(document: Mapping[str, Any], secret_prefix: str | None = None) -> TeamRoute:
    """Validate a route. `secret_prefix` (finops-guard/<stage>/teams/) is where the stack lets the
    functions read team webhook secrets; a secret elsewhere would fail at delivery, so refuse it now."""
    team = document.get("team")
    if not isinstance(team, str) or not team.strip() or len(team) > 256:
        raise TeamConfigError("team: must be the team's tag value (1 to 256 characters)")
    secrets: dict[str, str | None] = {}
    for channel in ROUTE_CHANNELS:
        name = document.get(f"{channel}_secret")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise TeamConfigError(f"{channel}_secret: must be a Secrets Manager secret name")
        if name and secret_prefix and not name.startswith(secret_prefix):
            raise TeamConfigError(
                f"{channel}_secret: {name!r} must start with {secret_prefix!r}"
                " (the functions may only read team webhook secrets under that prefix)"
            )
        secrets[channel] = name or None
    if not any(secrets.values()):
        raise TeamConfigError("a team route needs a teams_secret or a slack_secret")
    accounts = document.get("accounts") or []
    if not isinstance(accounts, list) or not all(isinstance(a, str) and _ACCOUNT.fullmatch(a) for a in accounts):
        raise TeamConfigError("accounts: must be a list of 12-digit AWS account ids")
    return TeamRoute(team, secrets["teams"], secrets["slack"], tuple(sorted(set(accounts))))


def team_secret_prefix(stage: str) -> str:
    return f"finops-guard/{stage}/teams/"


def message_suffix(team: str) -> str:
    """The part of a message id naming a team's channel (URL-quoted: tag values may contain '/')."""
    return f"team/{quote(team, safe='')}"


@dataclass(frozen=True)
class Routing:
    """The team routes of a deployment, indexed for the questions alerts ask."""

    dimension: AttributionDimension | None
    routes: Sequence[TeamRoute] = ()
    available: bool = True  # False when the routes could not be read: "no route" then means "unknown"
    _by_team: dict[str, TeamRoute] = field(init=False, repr=False, compare=False)
    _by_account: dict[str, list[TeamRoute]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_account: dict[str, list[TeamRoute]] = {}
        for route in self.routes:
            for account in route.accounts:
                by_account.setdefault(account, []).append(route)
        object.__setattr__(self, "_by_team", {r.team: r for r in self.routes})
        object.__setattr__(self, "_by_account", by_account)

    def route(self, team: str) -> TeamRoute | None:
        return self._by_team.get(team)

    def for_accounts(self, accounts: Iterable[str | None]) -> list[TeamRoute]:
        found = {r.team: r for a in accounts if a for r in self._by_account.get(a, [])}
        return [found[t] for t in sorted(found)]

    def for_budget(self, budget: Any) -> list[TeamRoute]:
        """Teams a budget's scope names: by the team dimension's values, or by a routed account."""
        teams: dict[str, TeamRoute] = {}
        for scope_filter in budget.scope:
            if self.dimension is not None and scope_filter.dimension == self.dimension.dimension:
                for value in scope_filter.values:
                    if value in self._by_team:
                        teams[value] = self._by_team[value]
            if scope_filter.kind == "account":
                for route in self.for_accounts(scope_filter.values):
                    teams[route.team] = route
        return [teams[t] for t in sorted(teams)]
