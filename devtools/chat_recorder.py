"""A loopback HTTP server standing in for Teams/Slack webhooks: records every POST and answers from
a script (status, headers, body), then 200/202 once the script is used up."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    drop_connection: bool = False
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ChatRecorder:
    def __init__(self, default: Reply | None = None, *, limit_per_second: int | None = None) -> None:
        """`limit_per_second`: answer 429 (Retry-After: 1) to requests beyond that rate, as Teams does."""
        self.limit_per_second = limit_per_second
        self.throttled = 0
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.script: deque[Reply] = deque()
        self.default = default or Reply(202)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if recorder.over_limit():
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                recorder.received.append(Received(self.path, dict(self.headers), body))
                reply = recorder.script.popleft() if recorder.script else recorder.default
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop_connection:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = reply.body.encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def over_limit(self) -> bool:
        if self.limit_per_second is None:
            return False
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.limit_per_second:
                self.throttled += 1
                return True
            self._recent.append(now)
            return False

    def start(self) -> ChatRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "/webhook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def then(self, *replies: Reply) -> ChatRecorder:
        self.script.extend(replies)
        return self

    def clear(self) -> None:
        self.received.clear()
        self.script.clear()
