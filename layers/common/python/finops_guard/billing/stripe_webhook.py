"""Turning an API Gateway request into a verified, decoded Stripe event, or a short 4xx reason.

The signature is checked once, on the raw body exactly as received (base64-decoded when API
Gateway says so), as Stripe documents it: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, where v1
is HMAC-SHA256(secret, "<t>." + body). The timestamp must be within TOLERANCE_S of now in either
direction (a stale one is a replay, a future one is a replay prepared in advance). During a secret
rotation the previous secret is accepted too, for as long as it exists. Only then is the body
decoded, once, with its nesting measured first (`json.loads` would recurse into a deep body).

Checked here rather than by the stripe library: the library decodes and re-encodes the body,
raises TypeError on a header with non-ASCII characters, accepts timestamps from the future, and
builds a StripeObject we would throw away (a warm request took 5x longer that way); importing it
also cost each cold start's first request 25-40 ms. A test checks this agrees with the library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOLERANCE_S = 300
MAX_SIGNATURE_HEADER = 4096  # Stripe's is ~150 characters (t, one v1 per live secret, maybe a v0)
MAX_SIGNATURES = 16
MAX_DEPTH = 64  # Stripe's events nest about 10 deep; Python's recursion limit is 1000

MISSING_SIGNATURE = "missing Stripe-Signature header"
MALFORMED_SIGNATURE = "malformed Stripe-Signature header"
INVALID_SIGNATURE = "invalid signature"
OUTSIDE_TOLERANCE = "timestamp outside the tolerance"
SIGNATURE_FAILURES = frozenset({MALFORMED_SIGNATURE, INVALID_SIGNATURE, OUTSIDE_TOLERANCE})

_HEADER = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


@dataclass(frozen=True)
class Rejection(Exception):
    status: int
    reason: str


def raw_body(event: Any, max_bytes: int) -> bytes:
    """The body's bytes as Stripe sent them."""
    if not isinstance(event, Mapping):
        raise Rejection(400, "request is not an API Gateway event")
    body = event.get("body")
    if body is None or body == "":
        raise Rejection(400, "empty body")
    if not isinstance(body, str):
        raise Rejection(400, "body is not text")
    if event.get("isBase64Encoded"):
        if len(body) > (max_bytes + 2) // 3 * 4:
            raise Rejection(413, f"body over {max_bytes} bytes")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejection(400, "body is not valid base64") from None
    else:
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no bytes could have been signed
            raise Rejection(400, "body is not UTF-8") from None
    if len(data) > max_bytes:
        raise Rejection(413, f"body over {max_bytes} bytes")
    return data


def signature_header(event: Mapping[str, Any]) -> str:
    headers = event.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        raise Rejection(400, MISSING_SIGNATURE)
    value = next((v for k, v in (headers or {}).items() if str(k).lower() == "stripe-signature"), None)
    if value is None or value == "":
        raise Rejection(400, MISSING_SIGNATURE)
    if not isinstance(value, str):
        raise Rejection(400, MALFORMED_SIGNATURE)
    return value


def parse_signature(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from the header; other schemes (v0) are ignored, as Stripe says."""
    if len(header) > MAX_SIGNATURE_HEADER:
        raise Rejection(400, MALFORMED_SIGNATURE)
    timestamps, signatures = [], []
    for element in header.split(","):
        key, sep, value = element.partition("=")
        if not sep or not _HEADER.fullmatch(key) or not _HEADER.fullmatch(value):
            raise Rejection(400, MALFORMED_SIGNATURE)
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not 0 < len(signatures) <= MAX_SIGNATURES:
        raise Rejection(400, MALFORMED_SIGNATURE)
    return int(timestamps[0]), signatures


def check_signature(payload: bytes, header: str, secrets: Sequence[str], *, now: float | None = None) -> None:
    """Passes if any secret signed `payload` with this header's timestamp, within the tolerance."""
    timestamp, signatures = parse_signature(header)
    signed = str(timestamp).encode("ascii") + b"." + payload
    candidates = [s.encode("ascii") for s in signatures]
    for secret in secrets:
        if not isinstance(secret, str) or not secret.strip():
            continue  # an empty key would let anyone sign
        expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode("ascii")
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
                raise Rejection(400, OUTSIDE_TOLERANCE)
            return
    raise Rejection(400, INVALID_SIGNATURE)


def nesting(payload: bytes) -> int:
    """How deep a JSON text's arrays and objects nest (brackets inside strings do not count)."""
    brackets = _JSON_STRING.sub(b"", payload).translate(None, _NOT_BRACKET)
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(payload: bytes) -> dict[str, Any]:
    """The verified body as a JSON object: decoded once, UTF-8 only, nesting at most MAX_DEPTH."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "body is not UTF-8") from None
    if nesting(payload) > MAX_DEPTH:
        raise Rejection(400, f"body nests deeper than {MAX_DEPTH}")
    try:
        document = json.loads(text, parse_constant=_no_constants)
    except RecursionError:  # not reached after the nesting check; kept as the last line of defence
        raise Rejection(400, f"body nests deeper than {MAX_DEPTH}") from None
    except ValueError:  # malformed, NaN/Infinity, a BOM, an integer of more than 4300 digits
        raise Rejection(400, "body is not JSON") from None
    if not isinstance(document, dict):
        raise Rejection(400, "body is not a JSON object")
    return document


def verify(payload: bytes, header: str, secrets: Sequence[str], *, now: float | None = None) -> dict[str, Any]:
    """The event as a dict, if any secret verifies the signature within the tolerance."""
    check_signature(payload, header, secrets, now=now)
    return decode(payload)


def response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
