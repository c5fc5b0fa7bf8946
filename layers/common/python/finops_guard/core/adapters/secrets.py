"""Secrets from Secrets Manager: chat webhook URLs, Stripe signing secrets and key (plain strings). The
team webhooks secret (one JSON map) is read through the same cache by finops_guard.costs.adapters.team_webhooks.

Cached for the life of the container: a warm invocation makes no Secrets Manager call. A value is
read again only when it stops working (a chat webhook answering 401/403/404/410, a Stripe signature
that fails against every cached secret, Stripe refusing the API key), at most once a minute per
secret, so a rotated value is picked up on first use and a flood of forged webhooks cannot turn
into a flood of Secrets Manager calls. A missing optional secret (the `-previous` signing secret
outside a rotation) is remembered as missing the same way.

A webhook URL is a bearer credential: it is never logged, never put in an exception message and
never stored anywhere but the secret.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from finops_guard.core.delivery import ChatConfigError, ChatNotConfigured, put_webhook_command

REFRESH_INTERVAL_S = 60.0
_MISSING = object()
_values: dict[str, object] = {}  # secret name -> its value, or _MISSING for an absent optional secret
_refreshed_at: dict[str, float] = {}  # secret name -> when a failure last made us read it again (monotonic)
_fetched_at: dict[str, float] = {}  # secret name -> when its value was last read from Secrets Manager


class SecretUnreadable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _read(name: str, *, refresh: bool = False) -> object:
    """The cached value (or _MISSING); with `refresh`, read again unless read within the last minute."""
    from aws_lambda_powertools.utilities import parameters

    refreshed_recently = time.monotonic() - _refreshed_at.get(name, float("-inf")) < REFRESH_INTERVAL_S
    if name in _values and (not refresh or refreshed_recently):
        return _values[name]
    if refresh:
        _refreshed_at[name] = time.monotonic()
    _fetched_at[name] = time.monotonic()
    try:
        value = parameters.get_secret(name, force_fetch=True)
    except parameters.exceptions.GetParameterError as error:
        code = _error_code(error)
        if code != "ResourceNotFoundException":
            raise SecretUnreadable(code) from None
        _values[name] = _MISSING
        return _MISSING
    text = (value.decode() if isinstance(value, bytes) else str(value)).strip()
    _values[name] = text
    return text


def secret_text(name: str, *, refresh: bool = False) -> str | None:
    """A secret's string value, None when the secret does not exist. Raises SecretUnreadable otherwise."""
    value = _read(name, refresh=refresh)
    return None if value is _MISSING else str(value)


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


_URL_SHAPE = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    """Not a URL at all: still the random placeholder the stack created (or empty), so the channel is
    not set up yet. A URL of the wrong kind (http:// to a public host, ftp://) was put by someone and
    is refused as a misconfiguration instead: that one should page."""
    return _URL_SHAPE.match(value) is None


def read_webhook_url(secret_name: str, *, channel: str, refresh: bool = False) -> str:
    """The webhook URL in `secret_name`. Raises ChatNotConfigured while the secret still holds its
    placeholder, ChatConfigError when it is missing, unreadable or holds a URL that is not https."""
    try:
        url = secret_text(secret_name, refresh=refresh)
        if url is not None and is_placeholder(url) and not refresh and is_stale(secret_name):
            # A cached placeholder may have been replaced since: read it again (at most once a minute),
            # so a warm container picks up the URL put after it started.
            url = secret_text(secret_name, refresh=True)
        code = "ResourceNotFoundException"
    except SecretUnreadable as error:
        url, code = None, error.code
    if url is None and code != "ResourceNotFoundException":
        raise ChatConfigError(
            f"{channel} webhook secret '{secret_name}' is unavailable right now ({code}); the message is kept"
            " in the outbox: finops-guard outbox redrive once Secrets Manager answers again"
        ) from None
    if url is None:
        raise ChatConfigError(
            f"{channel} webhook secret '{secret_name}' could not be read ({code}). Create it or put the URL:"
            f" {put_webhook_command(secret_name)}"
        ) from None
    return validate_webhook_url(url, secret_name=secret_name, channel=channel)


def _error_code(error: Exception) -> str:
    """The AWS error code (ResourceNotFoundException, AccessDeniedException, ...), never the value."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ClientError):
        return cause.response["Error"]["Code"]
    found = re.search(r"\((\w+)\) when calling", str(error))
    return found.group(1) if found else type(cause or error).__name__


def is_stale(name: str) -> bool:
    """Whether the cached value of `name` is at least REFRESH_INTERVAL_S old (worth reading again)."""
    return time.monotonic() - _fetched_at.get(name, float("-inf")) >= REFRESH_INTERVAL_S


def validate_webhook_url(url: str, *, secret_name: str, channel: str) -> str:
    """HTTPS only (plain HTTP only to loopback, for local runs). A value that is no URL at all is the
    placeholder: the channel is not set up yet. The message never echoes the value."""
    if is_placeholder(url):
        raise ChatNotConfigured(channel, secret_name)
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "https" and bool(parts.hostname)
    local = parts.scheme.lower() == "http" and parts.hostname in _LOOPBACK
    if not (secure or local):
        raise ChatConfigError(
            f"{channel} webhook secret '{secret_name}' holds a URL that is not an https:// webhook URL."
            f" Put the right one with: {put_webhook_command(secret_name)}"
        )
    return url


def clear_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    _values.clear()
    _refreshed_at.clear()
    _fetched_at.clear()


class SigningSecretMissing(RuntimeError):
    """The Stripe signing secret is not configured yet: a 5xx, so Stripe keeps retrying until it is."""


def read_signing_secrets(current: str, previous: str | None, *, refresh: bool = False) -> list[str]:
    """The `whsec_...` signing secret, then the previous one while a rotation keeps it around.
    `refresh`: a signature failed against these; read both again (at most once a minute)."""
    secrets = []
    for name, required in ((current, True), (previous, False)):
        if not name:
            continue
        try:
            text = secret_text(name, refresh=refresh)
        except SecretUnreadable as error:
            if required:
                raise SigningSecretMissing(f"Stripe signing secret '{name}' could not be read ({error.code})") from None
            continue
        if text is None:
            if required:
                raise SigningSecretMissing(f"Stripe signing secret '{name}' does not exist")
            continue  # no previous secret: not rotating
        if text.startswith("whsec_"):
            secrets.append(text)
        elif required:
            raise SigningSecretMissing(
                f"Stripe signing secret '{name}' does not hold a whsec_ value yet: put-secret-value it"
            )
    return secrets


def secret_exists(name: str) -> bool:
    """Does the secret exist? DescribeSecret: metadata only, the value is never read (for operator
    checks such as `teams add`, which may run with credentials that cannot read values)."""
    import boto3

    from finops_guard.core.adapters.aws import CLIENT_CONFIG

    try:
        boto3.client("secretsmanager", config=CLIENT_CONFIG).describe_secret(SecretId=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True
