"""Chat webhook URLs from Secrets Manager (one secret per channel, plain string), cached while warm.

A webhook URL is a bearer credential: it is never logged, never put in an exception message and
never stored anywhere but the secret.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from finops_guard.delivery import ChatConfigError

CACHE_SECONDS = 300
_absent_until: dict[str, float] = {}  # optional secrets found missing: not asked again while warm
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def read_webhook_url(secret_name: str, *, channel: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(secret_name, max_age=CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        code = _error_code(error)
        raise ChatConfigError(
            f"{channel} webhook secret '{secret_name}' could not be read ({code}). Create it or put the URL:"
            f" aws secretsmanager put-secret-value --secret-id {secret_name} --secret-string 'https://...'"
        ) from None
    url = value.decode() if isinstance(value, bytes) else str(value)
    return validate_webhook_url(url.strip(), secret_name=secret_name, channel=channel)


def _error_code(error: Exception) -> str:
    """The AWS error code (ResourceNotFoundException, AccessDeniedException, ...), never the value."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ClientError):
        return cause.response["Error"]["Code"]
    found = re.search(r"\((\w+)\) when calling", str(error))
    return found.group(1) if found else type(cause or error).__name__


def validate_webhook_url(url: str, *, secret_name: str, channel: str) -> str:
    """HTTPS only (plain HTTP only to loopback, for local runs). The message never echoes the value."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" and bool(parts.hostname)
    local = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (secure or local):
        raise ChatConfigError(
            f"{channel} webhook secret '{secret_name}' does not hold an https:// webhook URL yet. Put it with:"
            f" aws secretsmanager put-secret-value --secret-id {secret_name} --secret-string 'https://...'"
        )
    return url


def clear_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    _absent_until.clear()


class SigningSecretMissing(RuntimeError):
    """The Stripe signing secret is not configured yet: a 5xx, so Stripe keeps retrying until it is."""


def read_signing_secrets(current: str, previous: str | None) -> list[str]:
    """The `whsec_...` signing secret, then the previous one while a rotation keeps it around."""
    from aws_lambda_powertools.utilities import parameters

    secrets = []
    for name, required in ((current, True), (previous, False)):
        if not name or _absent_until.get(name, 0.0) > time.monotonic():
            continue
        try:
            value = parameters.get_secret(name, max_age=CACHE_SECONDS)
        except parameters.exceptions.GetParameterError as error:
            if required:
                raise SigningSecretMissing(
                    f"Stripe signing secret '{name}' could not be read ({_error_code(error)})"
                ) from None
            # No previous secret: not rotating. Remember that as long as a value would be cached.
            _absent_until[name] = time.monotonic() + CACHE_SECONDS
            continue
        text = (value.decode() if isinstance(value, bytes) else str(value)).strip()
        if text.startswith("whsec_"):
            secrets.append(text)
        elif required:
            raise SigningSecretMissing(
                f"Stripe signing secret '{name}' does not hold a whsec_ value yet: put-secret-value it"
            )
    return secrets
