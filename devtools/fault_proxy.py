"""A loopback HTTP proxy between boto3 and the embedded AWS that injects faults per AWS operation.

Point AWS_ENDPOINT_URL at `FaultProxy.endpoint`. Every request is classified by service (the SigV4
credential scope: dynamodb, ce, secretsmanager, sns...) and operation (the X-Amz-Target header of
JSON protocols, e.g. `DynamoDB_20120810.PutItem` -> PutItem; the Action form field of query
protocols; the path of the Smithy RPC v2 protocol), recorded, then either forwarded to the
upstream or answered by the next rule that matches: an HTTP status with a real AWS error body, a
connection reset before the request reaches AWS, a reset after it did (the write happened, the
answer is lost), or a delay. Each rule applies to its next `times` matching requests only.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_LOG = 10_000  # requests kept in the log; a test making more is broken anyway
UPSTREAM_TIMEOUT_S = 30.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}

Body = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or around) forwarding one request.

    status: answer this HTTP status with `body` (a dict, or a function of the request's JSON body)
    reset: close the connection with a TCP RST; with `after_forward`, only once the upstream answered
    delay_s: wait this long first (then forward, or answer `status`)
    """

    status: int = 0
    body: Body | None = None
    headers: tuple[tuple[str, str], ...] = ()
    reset: bool = False
    after_forward: bool = False
    delay_s: float = 0.0
    name: str = ""

    def describe(self) -> str:
        if self.name:
            return self.name
        if self.reset:
            return "reset-after-forward" if self.after_forward else "reset"
        if self.status:
            return f"HTTP {self.status}"
        return f"delay {self.delay_s:g}s"


@dataclass
class Rule:
    fault: Fault
    service: str | None
    operation: str | None
    contains: str | None
    remaining: int


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it. `outcome`: forwarded | injected | reset | lost (forwarded,
    then the connection was reset: the upstream applied it, the client never heard)."""

    service: str
    operation: str
    outcome: str
    status: int | None
    fault: str = ""
    at: float = field(default_factory=time.monotonic)


def _json_error(code: str, message: str, status: int, *, type_prefix: str = "", json_version: str = "1.0") -> Fault:
    return Fault(
        status=status,
        body={"__type": f"{type_prefix}{code}", "message": message},
        headers=(("Content-Type", f"application/x-amz-json-{json_version}"), ("x-amzn-ErrorType", code)),
        name=code,
    )


# --- faults as AWS sends them ----------------------------------------------------------------------

_DYNAMODB = "com.amazonaws.dynamodb.v20120810#"


def dynamodb_throughput_exceeded() -> Fault:
    return _json_error(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your"
        " provisioning level with the UpdateTable API.",
        400,
        type_prefix=_DYNAMODB,
    )


def dynamodb_throttling() -> Fault:
    """On-demand tables throttle with ThrottlingException (account or partition limits)."""
    return _json_error(
        "ThrottlingException",
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your"
        " table or index so please try again shortly.",
        400,
        type_prefix="com.amazon.coral.availability#",
    )


def transaction_canceled(reason: str = "TransactionConflict", *, item: int = -1) -> Fault:
    """TransactionCanceledException for a TransactWriteItems: `reason` on one item (the last by
    default), "None" on the others, one reason per item of the request as DynamoDB sends them."""
    messages = {
        "TransactionConflict": "Transaction is ongoing for the item",
        "ThrottlingError": "Throughput exceeds the current capacity for one or more global secondary indexes.",
        "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the table was exceeded.",
    }

    def body(request: dict[str, Any]) -> dict[str, Any]:
        count = max(1, len(request.get("TransactItems", [])))
        reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(count)]
        reasons[item] = {"Code": reason, "Message": messages.get(reason, reason)}
        listed = ", ".join(r["Code"] for r in reasons)
        return {
            "__type": f"{_DYNAMODB}TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
            "CancellationReasons": reasons,
        }

    return Fault(
        status=400,
        body=body,
        headers=(("Content-Type", "application/x-amz-json-1.0"),),
        name=f"TransactionCanceledException[{reason}]",
    )


def cost_explorer_limit_exceeded() -> Fault:
    """Cost Explorer's throttle: a 400 LimitExceededException, not a 429."""
    return _json_error("LimitExceededException", "Rate exceeded", 400, json_version="1.1")


def secrets_manager_error(code: str = "ServiceUnavailable", status: int = 503) -> Fault:
    """503 ServiceUnavailable, 500 InternalServiceError or 400 ThrottlingException."""
    messages = {
        "ServiceUnavailable": "Service Unavailable",
        "InternalServiceError": "An error occurred on the server side.",
        "ThrottlingException": "Rate exceeded",
    }
    return _json_error(code, messages.get(code, code), status, json_version="1.1")


def reset() -> Fault:
    """The connection is reset before the request reaches AWS: nothing applied."""
    return Fault(reset=True)


def lost_response() -> Fault:
    """AWS applies the request, then the connection is reset: the client cannot tell it happened."""
    return Fault(reset=True, after_forward=True)


def delay(seconds: float) -> Fault:
    return Fault(delay_s=seconds)


# --- the proxy -------------------------------------------------------------------------------------


def classify(headers: Any, path: str, body: bytes) -> tuple[str, str]:
    """(service, operation) of a signed AWS request; "" where the request does not say."""
    service = ""
    authorization = headers.get("Authorization", "")
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        service = scope[3] if len(scope) > 3 else ""
    target = headers.get("X-Amz-Target", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if "/operation/" in path:  # Smithy RPC v2 CBOR: /service/<name>/operation/<operation>
        return service, path.rsplit("/operation/", 1)[1].split("?", 1)[0]
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        return service, action
    return service, ""


class FaultProxy:
    def __init__(self, upstream: str, *, max_log: int = MAX_LOG) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname in {"127.0.0.1", "localhost"}, "loopback upstreams only"
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[Seen] = []
        self._max_log = max_log
        self._stopped = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )

    # lifecycle

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # rules and log

    def inject(
        self,
        operation: str | None,
        fault: Fault,
        *,
        times: int = 1,
        service: str | None = None,
        contains: str | None = None,
    ) -> Rule:
        """Apply `fault` to the next `times` requests for `operation` (None: any) of `service`
        (None: any) whose body contains `contains` (a table or secret name, say)."""
        assert times >= 1
        rule = Rule(fault, service, operation, contains, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop the remaining rules: the fault is over."""
        with self._lock:
            self._rules.clear()

    def forget(self) -> None:
        with self._lock:
            self._log.clear()

    def requests(
        self, operation: str | None = None, *, service: str | None = None, outcome: str | None = None
    ) -> list[Seen]:
        with self._lock:
            seen = list(self._log)
        return [
            s
            for s in seen
            if (operation is None or s.operation == operation)
            and (service is None or s.service == service)
            and (outcome is None or s.outcome == outcome)
        ]

    def attempts(self, operation: str, *, service: str | None = None) -> int:
        return len(self.requests(operation, service=service))

    # serving

    def _take(self, service: str, operation: str, body: bytes) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining <= 0:
                    continue
                if rule.operation is not None and rule.operation != operation:
                    continue
                if rule.service is not None and rule.service != service:
                    continue
                if rule.contains is not None and rule.contains.encode() not in body:
                    continue
                rule.remaining -= 1
                return rule.fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            if len(self._log) < self._max_log:
                self._log.append(seen)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        service, operation = classify(handler.headers, handler.path, body)
        fault = self._take(service, operation, body)
        handler.close_connection = True  # one request per connection: nothing lingers after stop()
        if fault is not None and fault.delay_s:
            self._stopped.wait(fault.delay_s)
        if fault is not None and fault.reset and not fault.after_forward:
            self._record(Seen(service, operation, "reset", None, fault.describe()))
            _reset(handler)
            return
        if fault is not None and fault.status:
            self._record(Seen(service, operation, "injected", fault.status, fault.describe()))
            _answer_fault(handler, fault, body)
            return
        try:
            status, headers, payload = self._forward(handler, body)
        except OSError as error:
            self._record(Seen(service, operation, "upstream-error", 502, type(error).__name__))
            _send(handler, 502, [("Content-Type", "text/plain")], b"fault proxy: upstream unreachable")
            return
        if fault is not None and fault.reset:
            self._record(Seen(service, operation, "lost", status, fault.describe()))
            _reset(handler)
            return
        self._record(Seen(service, operation, "forwarded", status, fault.describe() if fault else ""))
        _send(handler, status, headers, payload)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, payload
        finally:
            connection.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _answer_fault(handler: BaseHTTPRequestHandler, fault: Fault, request_body: bytes) -> None:
    body = fault.body
    if callable(body):
        try:
            request = json.loads(request_body or b"{}")
        except ValueError:
            request = {}
        body = body(request if isinstance(request, dict) else {})
    payload = json.dumps(body or {}).encode()
    headers = [("Content-Type", "application/x-amz-json-1.1"), *fault.headers]
    headers = list(dict((k.lower(), (k, v)) for k, v in headers).values())
    headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
    _send(handler, fault.status, headers, payload)


def _send(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
    try:
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)
    except OSError:
        pass  # the client gave up (its read timeout): nothing to answer


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with RST rather than FIN: the client sees ECONNRESET, as from a dropped load balancer."""
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.close_connection = True
    handler.connection.close()
