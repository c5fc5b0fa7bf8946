"""The finance admin API's request and reply shapes (API Gateway REST proxy integration). Pure.

Every route answers through `ApiReply`; client mistakes are `ApiError`s with a 4xx status and a
short reason that names the field, raised before anything is changed. `parse_request` reads an
API Gateway event once into an `ApiRequest` of checked strings: the route's path parameters
(percent-decoded once, bounded, charset-checked), its query parameters (only those it declares,
each once, bounded, printable ASCII) and, for routes that take one, the JSON object body (at most
64 KiB, nesting at most 32 deep, parsed once).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from finops_guard.core import bounded_json

MAX_BODY_BYTES = 64 * 1024
MAX_BODY_DEPTH = 32  # admin bodies are flat objects; this only stops pathological nesting
MAX_QUERY_PARAMETERS = 10
MAX_QUERY_VALUE = 256
MAX_PATH_VALUE = 256
MAX_CALLER = 2048
PATH_VALUE = re.compile(r"[A-Za-z0-9_#:.-]{1,256}")  # alert ids: "<kind>#<Stripe id>"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


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


@dataclass(frozen=True)
class Route:
    """What a route reads from the request; everything else in it is refused or ignored."""

    path: tuple[str, ...] = ()  # path parameters it needs
    query: tuple[str, ...] = ()  # query parameters it accepts (any other is a 400)
    body: bool = False  # whether it reads a JSON object body (otherwise the body is not read)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    resource: str
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, Any]
    headers: Mapping[str, str]  # names in lower case
    caller: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower()) or None


def field_name(name: Any) -> str:
    """A client-supplied name as it may appear in an error reason: itself when it is a plain
    identifier, else a placeholder (never a huge or unprintable string echoed back)."""
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "(a name that is not [A-Za-z0-9_.-]{1,64})"


def parse_request(event: Any, routes: Mapping[tuple[str, str], Route]) -> tuple[tuple[str, str], ApiRequest]:
    """The route key (method, resource) and the checked request. 404 unknown route; 400/413 naming
    the path parameter, query parameter or body at fault."""
    if not isinstance(event, Mapping):
        raise ApiError(400, "request is not an API Gateway event")
    method, resource = event.get("httpMethod"), event.get("resource")
    route = routes.get((method, resource)) if isinstance(method, str) and isinstance(resource, str) else None
    if route is None:
        raise ApiError(404, f"no route {field_name(method)} {_resource_name(resource)}")
    assert isinstance(method, str) and isinstance(resource, str)
    request = ApiRequest(
        method=method,
        resource=resource,
        path={name: path_param(event, name) for name in route.path},
        query=query(event, route.query),
        body=json_body(event) if route.body else {},
        headers=_headers(event),
        caller=caller(event),
    )
    return (method, resource), request


def _resource_name(resource: Any) -> str:
    if isinstance(resource, str) and len(resource) <= 128 and re.fullmatch(r"[A-Za-z0-9_/{}.-]*", resource):
        return resource
    return "(unknown resource)"


def json_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object; `{}` for an empty body. 413 over 64 KiB; 400 not UTF-8,
    not JSON, nested deeper than 32, or not an object."""
    raw = event.get("body")
    if raw is None:
        return {}
    if not isinstance(raw, str):
        raise ApiError(400, "body is malformed")
    if event.get("isBase64Encoded") is True and raw:
        if len(raw) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            raise ApiError(413, f"body is over {MAX_BODY_BYTES} bytes")
        try:
            data = base64.b64decode(raw, validate=True)
        except (ValueError, binascii.Error):
            raise ApiError(400, "body is not valid base64") from None
        if len(data) > MAX_BODY_BYTES:
            raise ApiError(413, f"body is over {MAX_BODY_BYTES} bytes")
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "body is not valid UTF-8 text") from None
    elif len(raw) > MAX_BODY_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise ApiError(413, f"body is over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        parsed = bounded_json.loads(raw, max_depth=MAX_BODY_DEPTH, max_chars=MAX_BODY_BYTES)
    except bounded_json.JsonRefused as refused:
        raise ApiError(400, f"body is {refused.reason}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "body must be a JSON object")
    return parsed


def query(event: Mapping[str, Any], accepted: tuple[str, ...]) -> dict[str, str]:
    """The query parameters the route accepts, each given once, at most 256 printable ASCII
    characters; any other parameter is a 400 naming it."""
    raw = event.get("queryStringParameters")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApiError(400, "query string is malformed")
    if len(raw) > MAX_QUERY_PARAMETERS:
        raise ApiError(400, f"more than {MAX_QUERY_PARAMETERS} query parameters")
    repeated = event.get("multiValueQueryStringParameters")
    params: dict[str, str] = {}
    for name, value in raw.items():
        if name not in accepted:
            raise ApiError(400, f"unknown parameter {field_name(name)}")
        if isinstance(repeated, Mapping) and isinstance(repeated.get(name), list) and len(repeated[name]) > 1:
            raise ApiError(400, f"{name} is given more than once")
        if not isinstance(value, str) or len(value) > MAX_QUERY_VALUE or not _PRINTABLE_ASCII.fullmatch(value):
            raise ApiError(400, f"{name} must be at most {MAX_QUERY_VALUE} printable ASCII characters")
        params[name] = value
    return params


def path_param(event: Mapping[str, Any], name: str) -> str:
    """A path parameter, percent-decoded once (REST APIs may pass it still encoded: `#` arrives as
    %23), of 1-256 characters A-Z a-z 0-9 _ # : . -"""
    params = event.get("pathParameters")
    value = params.get(name) if isinstance(params, Mapping) else None
    if value is None or value == "":
        raise ApiError(400, f"path parameter {name} is missing")
    refused = ApiError(400, f"path parameter {name} must be 1-{MAX_PATH_VALUE} characters of A-Z a-z 0-9 _ # : . -")
    if not isinstance(value, str) or len(value) > 3 * MAX_PATH_VALUE:
        raise refused
    if "%" in value:
        if "%" in _PERCENT_ESCAPE.sub("", value):
            raise refused
        value = unquote(value, errors="replace")  # invalid UTF-8 becomes U+FFFD, which the charset refuses
    if not PATH_VALUE.fullmatch(value):
        raise refused
    return value


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("headers")
    if not isinstance(raw, Mapping):
        return {}
    return {key.lower(): value for key, value in raw.items() if isinstance(key, str) and isinstance(value, str)}


def header(event: Mapping[str, Any], name: str) -> str | None:
    return _headers(event).get(name.lower()) or None


def caller(event: Any) -> str:
    """The IAM principal API Gateway authenticated (SigV4), for the audit trail."""
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    identity = context.get("identity") if isinstance(context, Mapping) else None
    if not isinstance(identity, Mapping):
        return "unknown"
    for key in ("userArn", "user"):
        value = identity.get(key)
        if isinstance(value, str) and value and len(value) <= MAX_CALLER and _PRINTABLE_ASCII.fullmatch(value):
            return value
    return "unknown"
