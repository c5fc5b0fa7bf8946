"""Turning an API Gateway request into a verified Stripe event, or a short 4xx reason.

The signature is checked on the raw body exactly as received (base64-decoded when API Gateway says
so) by the stripe library with its 300 s tolerance. During a secret rotation the previous secret
is accepted too, for as long as it exists.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOLERANCE_S = 300


@dataclass(frozen=True)
class Rejection(Exception):
    status: int
    reason: str


def raw_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    body = event.get("body")
    if body is None:
        raise Rejection(400, "empty body")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejection(400, "body is not valid base64") from None
    else:
        data = body.encode("utf-8")
    if len(data) > max_bytes:
        raise Rejection(413, f"body over {max_bytes} bytes")
    return data


def signature_header(event: Mapping[str, Any]) -> str:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    value = headers.get("stripe-signature")
    if not value:
        raise Rejection(400, "missing Stripe-Signature header")
    return str(value)


def verify(payload: bytes, header: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The event as a dict, if any secret verifies the signature within the tolerance."""
    import stripe

    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "body is not UTF-8") from None
    stale = False
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(text, header, secret, tolerance=TOLERANCE_S)
        except stripe.SignatureVerificationError as error:
            stale = stale or "tolerance" in str(error).lower()
            continue
        except ValueError:
            raise Rejection(400, "body is not JSON") from None
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            raise Rejection(400, "body is not JSON") from None
        if not isinstance(event, dict):
            raise Rejection(400, "body is not a JSON object")
        return event
    raise Rejection(400, "timestamp outside the tolerance" if stale else "invalid signature")


def response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
