"""The finance admin API's request and reply shapes (API Gateway REST proxy integration). Pure.

Every route answers through `ApiReply`; client mistakes are `ApiError`s with a 4xx status and a
short reason that names the field, raised before anything is changed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ApiReply:
    status: int
    body: Mapping[str, Any] | str  # a mapping is sent as JSON; a str as is (CSV)
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_proxy(self) -> dict[str, Any]:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body, default=str)
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **self.headers},
            "body": text,
        }


class ApiError(Exception):
    """A request the API refuses (4xx): nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def reply(self) -> ApiReply:
        return ApiReply(self.status, {"error": self.reason})


def json_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object; `{}` for an empty body."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded") and raw:
        try:
            raw = base64.b64decode(raw, validate=True).decode()
        except ValueError:
            raise ApiError(400, "body is not valid base64") from None
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise ApiError(413, f"body is over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ApiError(400, "body is not JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "body must be a JSON object")
    return parsed


def query(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}


def path_param(event: Mapping[str, Any], name: str) -> str:
    value = (event.get("pathParameters") or {}).get(name)
    if not value:
        raise ApiError(400, f"path parameter {name} is missing")
    return str(value)


def header(event: Mapping[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if str(key).lower() == wanted and value:
            return str(value)
    return None


def caller(event: Mapping[str, Any]) -> str:
    """The IAM principal API Gateway authenticated (SigV4), for the audit trail."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("userArn") or identity.get("user") or "unknown")
