"""The team webhooks secret: one JSON map of every routed team's chat URLs (finops_guard.costs.teams
parses it). The functions read it through the core's secret cache; `finops-guard teams add|remove|list`
reads and writes it directly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finops_guard.core.adapters import secrets
from finops_guard.core.delivery import ChatConfigError, ChatNotConfigured, put_webhook_command, team_webhook_key

if TYPE_CHECKING:
    from finops_guard.costs.teams import TeamWebhooks


def read_team_webhook_url(secret_name: str, team: str, *, channel: str, refresh: bool = False) -> str:
    """`team`'s webhook URL for `channel` in the team webhooks secret (one JSON map for every team,
    read once per container like any secret). Raises ChatNotConfigured when the map has no URL for
    them (read again at most once a minute, so a warm container sees a `teams add` made since), and
    ChatConfigError when the secret is missing, unreadable, or its value or the team's entry is
    invalid. No message names a URL."""
    from finops_guard.costs.teams import TeamWebhooksError, parse_team_webhooks

    key = team_webhook_key(secret_name, team, channel)
    fix = put_webhook_command(key)
    try:
        text = secrets.secret_text(secret_name, refresh=refresh)
        if text is None:
            raise ChatConfigError(
                f"team webhooks secret '{secret_name}' does not exist (the stack creates it with team routing on);"
                f" deploy, then: {fix}"
            )
        url = parse_team_webhooks(text).url(team, channel)
        if url is None and not refresh and secrets.is_stale(secret_name):
            url = parse_team_webhooks(secrets.secret_text(secret_name, refresh=True)).url(team, channel)
    except TeamWebhooksError as error:
        raise ChatConfigError(f"team webhooks secret '{secret_name}' {error}; put a valid URL with: {fix}") from None
    except secrets.SecretUnreadable as error:
        raise ChatConfigError(
            f"team webhooks secret '{secret_name}' is unavailable right now ({error.code}); the message is kept"
            " in the outbox: finops-guard outbox redrive once Secrets Manager answers again"
        ) from None
    if url is None:
        raise ChatNotConfigured(channel, key)
    return url


class TeamWebhooksSecret:
    """The team webhooks secret as `finops-guard teams add|remove|list` reads and writes it (values
    read and put directly, never through the functions' cache).

    Read, change, put: two operators running `teams add` at the same moment can lose one change
    (Secrets Manager has no conditional put); `teams list` shows what is there."""

    def __init__(self, secret_name: str, client: Any | None = None) -> None:
        self.secret_name = secret_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            from finops_guard.core.adapters.aws import CLIENT_CONFIG

            self._client = boto3.client("secretsmanager", config=CLIENT_CONFIG)
        return self._client

    def read(self) -> TeamWebhooks:
        """The parsed map. Raises TeamWebhooksError when the value is not a JSON object, and lets
        ResourceNotFoundException and other AWS errors through (the CLI reports them)."""
        from finops_guard.costs.teams import parse_team_webhooks

        answer = self.client.get_secret_value(SecretId=self.secret_name)
        return parse_team_webhooks(answer.get("SecretString"))

    def write(self, document: Mapping[str, Mapping[str, str]]) -> None:
        self.client.put_secret_value(
            SecretId=self.secret_name, SecretString=json.dumps(document, sort_keys=True, separators=(",", ":"))
        )
