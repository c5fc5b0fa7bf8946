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
from urllib.parse import quote, unquote, urlsplit

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
    """A team (a value of the team dimension, exactly as tagged: tags are case-sensitive), the chat
    channels it has and the accounts it owns. Its webhook URLs are in the team webhooks secret, keyed
    by team; the route only says which channels to post to."""

    team: str
    channels: tuple[str, ...]  # a subset of ROUTE_CHANNELS, in that order
    accounts: tuple[str, ...] = ()

    def destinations(self) -> list[tuple[str, str]]:
        """(channel, destination) for every channel the team has: what a team message carries (as its
        `secret_name`) so the poster, the outbox and a redrive know whose channel it is."""
        return [(channel, team_destination(self.team)) for channel in self.channels]

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"team": self.team, "channels": list(self.channels)}
        if self.accounts:
            document["accounts"] = list(self.accounts)
        return document


def parse_team(team: Any) -> str:
    if not isinstance(team, str) or not team.strip() or len(team) > 256:
        raise TeamConfigError("team: must be the team's tag value (1 to 256 characters)")
    return team


def parse_route(document: Mapping[str, Any]) -> TeamRoute:
    """Validate a route: {"team", "channels": ["teams", "slack"], "accounts"}.

    A route written before the team webhooks secret names `teams_secret`/`slack_secret` instead of
    `channels`: it still parses, each secret meaning "has that channel" (the URL is now looked up in
    the team webhooks secret, so until `teams add` puts it there the team's messages wait in the
    outbox as "not set up yet", with the command to run)."""
    team = parse_team(document.get("team"))
    if "channels" in document:
        channels = document["channels"]
        if (
            not isinstance(channels, list)
            or not all(isinstance(c, str) and c in ROUTE_CHANNELS for c in channels)
            or len(set(channels)) != len(channels)
        ):
            raise TeamConfigError(f"channels: must be a list of distinct channels among {', '.join(ROUTE_CHANNELS)}")
        chosen = set(channels)
    else:
        chosen = set()
        for channel in ROUTE_CHANNELS:
            legacy = document.get(f"{channel}_secret")
            if legacy is not None and (not isinstance(legacy, str) or not legacy.strip()):
                raise TeamConfigError(f"{channel}_secret: must be a Secrets Manager secret name")
            if legacy:
                chosen.add(channel)
    if not chosen:
        raise TeamConfigError("a team route needs a teams or a slack channel")
    accounts = document.get("accounts") or []
    if not isinstance(accounts, list) or not all(isinstance(a, str) and _ACCOUNT.fullmatch(a) for a in accounts):
        raise TeamConfigError("accounts: must be a list of 12-digit AWS account ids")
    return TeamRoute(team, tuple(c for c in ROUTE_CHANNELS if c in chosen), tuple(sorted(set(accounts))))


# A team message's destination. Secret names cannot hold ':', so it is never a secret's name.
_TEAM_DESTINATION = "team:"


def team_destination(team: str) -> str:
    return _TEAM_DESTINATION + team


def destination_team(destination: str | None) -> str | None:
    """The team a message's destination names; None for a secret name (the deployment's channel)."""
    if destination and destination.startswith(_TEAM_DESTINATION):
        return destination.removeprefix(_TEAM_DESTINATION)
    return None


def team_webhooks_secret_name(stage: str) -> str:
    return f"finops-guard/{stage}/team-webhooks"


def legacy_team_secret_prefix(stage: str) -> str:
    """Where each team's webhook secret lived before the team webhooks secret (outbox items may still
    name one)."""
    return f"finops-guard/{stage}/teams/"


def team_of_message(message_id: str) -> str | None:
    """The team a team message's id names (`.../team/<quoted team>/<channel>`), else None."""
    found = re.search(r"/team/([^/]+)/[a-z]+$", message_id)
    return unquote(found.group(1)) if found else None


# --- the team webhooks secret: {"<team>": {"teams": "https://...", "slack": "https://..."}} -----------

MAX_WEBHOOK_URL_CHARS = 2048
MAX_TEAM_WEBHOOKS_CHARS = 65536  # Secrets Manager's limit for a secret value
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Hosts that plausibly take a channel's webhook: Teams Workflows (Logic Apps / Power Automate /
# Power Platform environments) and legacy Office 365 connectors; Slack incoming webhooks.
_CHANNEL_HOSTS = {
    "teams": (".logic.azure.com", ".webhook.office.com", ".powerautomate.com", ".api.powerplatform.com"),
    "slack": ("hooks.slack.com",),
}


class TeamWebhooksError(ValueError):
    """The team webhooks secret (or one entry of it) is not what FinOps Guard accepts. The message
    never echoes a value: values are webhook URLs, which are credentials."""


def webhook_url_problem(url: Any, channel: str) -> str | None:
    """Why `url` cannot be `channel`'s webhook (None when it can): https only (plain http only to
    loopback, for local runs, as the deployment's own webhook secrets allow), no user or password,
    at most 2,048 characters, and a host that takes that channel's webhooks. Never echoes the URL."""
    if not isinstance(url, str):
        return "must be one https:// URL (a string; one webhook per channel)"
    if not url or len(url) > MAX_WEBHOOK_URL_CHARS:
        return f"must be an https:// URL of 1 to {MAX_WEBHOOK_URL_CHARS} characters"
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        return "must be a URL without spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if not (scheme == "https" and host) and not (scheme == "http" and host in _LOOPBACK):
        return "must be an https:// URL"
    if "@" in parts.netloc:
        return "must not hold a user name or password"
    if host in _LOOPBACK:
        return None
    suffixes = _CHANNEL_HOSTS.get(channel, ())
    if not any(host.endswith(s) if s.startswith(".") else host == s for s in suffixes):
        kinds = {"teams": "a Teams Workflows webhook (*.logic.azure.com, *.powerautomate.com,"
                 " *.environment.api.powerplatform.com) or *.webhook.office.com",
                 "slack": "a Slack incoming webhook (hooks.slack.com)"}  # fmt: skip
        return f"must be {kinds.get(channel, 'a known chat webhook host')}"
    return None


@dataclass(frozen=True)
class TeamWebhooks:
    """The parsed team webhooks secret: each team's URL per channel, and each entry's problem (an
    entry that does not validate spoils only its own team or channel, never the others)."""

    urls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    problems: Mapping[tuple[str, str | None], str] = field(default_factory=dict)  # (team, channel|None) -> why
    document: Mapping[str, Any] = field(default_factory=dict, repr=False)  # as read: what a change starts from

    def url(self, team: str, channel: str) -> str | None:
        """The team's webhook URL for `channel`; None when the secret has none (not set up yet).
        Raises TeamWebhooksError when the team's entry, or its URL for this channel, is invalid."""
        for key in ((team, None), (team, channel)):
            if key in self.problems:
                where = f"team {team!r}" + (f" {channel}" if key[1] else "")
                raise TeamWebhooksError(f"{where}: {self.problems[key]}")
        return self.urls.get(team, {}).get(channel)

    def status(self, team: str, channel: str) -> str:
        """What `teams list` shows instead of a URL: set, missing (not set up yet) or invalid."""
        if (team, None) in self.problems or (team, channel) in self.problems:
            return "invalid"
        return "set" if channel in self.urls.get(team, {}) else "missing"

    def with_team(self, team: str, urls: Mapping[str, str]) -> dict[str, Any]:
        """The secret's document with `team`'s entry set to `urls` (removed when empty); every other
        entry exactly as it was read."""
        document = {t: entry for t, entry in self.document.items() if t != team}
        if urls:
            document[team] = {c: urls[c] for c in ROUTE_CHANNELS if c in urls}
        return dict(sorted(document.items()))

    def without_team(self, team: str) -> dict[str, Any]:
        return self.with_team(team, {})


def parse_team_webhooks(text: Any) -> TeamWebhooks:
    """Parse the team webhooks secret's value. A value that is not a JSON object (not JSON, too
    large or deep, an array...) raises TeamWebhooksError; a bad entry is recorded in `problems` for
    its own team or channel only. Nothing else is ever raised, and no message echoes a value."""
    from finops_guard.core import bounded_json

    try:
        document = bounded_json.loads(text, max_depth=4, max_chars=MAX_TEAM_WEBHOOKS_CHARS)
    except bounded_json.JsonRefused as refused:
        raise TeamWebhooksError(f"is not a JSON object of team -> channel URLs ({refused.reason})") from None
    if not isinstance(document, dict):
        raise TeamWebhooksError("is not a JSON object of team -> channel URLs")
    urls: dict[str, dict[str, str]] = {}
    problems: dict[tuple[str, str | None], str] = {}
    for team, entry in document.items():
        if not isinstance(entry, dict):
            problems[(team, None)] = 'must be an object such as {"teams": "https://..."}'
            continue
        if any(key not in ROUTE_CHANNELS for key in entry):
            problems[(team, None)] = f"has a key that is not one of {', '.join(ROUTE_CHANNELS)}"
            continue
        for channel, url in entry.items():
            problem = webhook_url_problem(url, channel)
            if problem is None:
                urls.setdefault(team, {})[channel] = url
            else:
                problems[(team, channel)] = f"URL {problem}"
    return TeamWebhooks(urls, problems, document)


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
