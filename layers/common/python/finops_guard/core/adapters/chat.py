"""HTTPS POST of a chat payload to a Teams Workflows or Slack incoming webhook, with bounded retries.

Errors and log lines name the channel and status, never the URL: the URL is the credential.

Posts with urllib3, which botocore has already loaded in every function: requests (and its
charset_normalizer, idna and cookie jar) cost a third of a cost function's cold import for one POST.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import urllib3
from urllib3 import exceptions as http_errors

from finops_guard.core.delivery import ChatMessage, PostFailed, PostRejected, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)
TIMEOUT = (3.05, 10)  # connect, read (seconds)
MAX_LOGGED_BODY = 500
# Module-level so tests can replace waiting without touching time.sleep: retry back-off and
# rate pacing separately.
_sleep = time.sleep
_pace_sleep = time.sleep
# Chat services' documented rates: Teams webhooks 4 requests/s, Slack incoming webhooks ~1/s.
MIN_INTERVAL_S = {"teams": 0.25, "slack": 1.0}
# A webhook answering these no longer accepts this URL: read the secret again, once, in case it changed.
URL_GONE = frozenset({401, 403, 404, 410})
# No answer, a dropped connection, a failed handshake: worth another attempt (what requests called
# Timeout and ConnectionError). urllib3 raises them as they are, since it never retries here itself.
TRANSIENT = (
    http_errors.TimeoutError,
    http_errors.NewConnectionError,
    http_errors.ProtocolError,
    http_errors.SSLError,
    http_errors.ProxyError,
)


class _Pacer:
    """Process-wide spacing of posts per webhook (shared by every poster in a warm container). The
    rates are per webhook, so each team's own webhook (`destination`, its secret) has its own slots:
    twenty team cards on Slack take twenty slots in parallel, not twenty seconds in a row."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_slot: dict[tuple[str, str | None], float] = {}

    def reserve(self, channel: str, clock: Callable[[], float], destination: str | None = None) -> float:
        """Take the webhook's next free slot; returns how long to wait for it."""
        interval = MIN_INTERVAL_S.get(channel, 0.0)
        key = (channel, destination)
        with self._lock:
            now = clock()
            slot = max(now, self._next_slot.get(key, now))
            self._next_slot[key] = slot + interval
        return slot - now

    def wait(self, channel: str, clock: Callable[[], float], destination: str | None = None) -> None:
        delay = self.reserve(channel, clock, destination)
        if delay > 0:
            _pace_sleep(delay)


PACER = _Pacer()


def _fail(error_type: type[Exception], text: str, attempts: int) -> Exception:
    error = error_type(text)
    error.attempts = attempts  # type: ignore[attr-defined]
    return error


class WebhookPoster:
    def __init__(
        self,
        url_for: Callable[[ChatMessage], str],
        *,
        policy: RetryPolicy | None = None,
        http: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
        refresh_url: Callable[[ChatMessage], str] | None = None,
    ) -> None:
        self._url_for = url_for
        self._refresh_url = refresh_url  # reads the secret again when the webhook says the URL is gone
        self._policy = policy or RetryPolicy()
        self._http = http or urllib3.PoolManager()
        self._sleep = sleep or _sleep
        self._clock = clock
        self._deadline = deadline

    def post(self, message: ChatMessage) -> int:
        url = self._url_for(message)
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        last = "no attempt"
        for attempt in range(1, self._policy.max_attempts + 1):
            retry_after = None
            pace = PACER.reserve(message.channel, self._clock, message.secret_name)
            if self._deadline is not None and self._clock() + pace > self._deadline:
                raise _fail(PostFailed, f"{message.channel}: no time left in this run; kept for the next", attempt - 1)
            if pace > 0:
                _pace_sleep(pace)
            try:
                # Never follow a redirect: it would carry the card to a URL nobody configured, and what
                # answers there is no delivery. A 3xx is refused like any other 4xx.
                response = self._http.request(
                    "POST",
                    url,
                    body=body,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]),
                    retries=False,
                    redirect=False,
                )
            except TRANSIENT as error:
                last = type(error).__name__  # str(error) would contain the URL
            else:
                status = response.status
                if 200 <= status < 300:
                    return attempt
                detail = response.data.decode("utf-8", errors="replace")[:MAX_LOGGED_BODY]
                if status in URL_GONE and self._refresh_url is not None:
                    fresh = self._refresh_url(message)
                    if fresh != url:  # the URL was replaced in its secret (a new Workflows webhook): use it
                        url = fresh
                        log.warning("chat webhook URL was replaced; retrying with the new one",
                                    extra={"channel": message.channel, "status": status})  # fmt: skip
                        continue
                if status != 429 and status < 500:
                    log.error(
                        "chat webhook rejected the message",
                        extra={"channel": message.channel, "status": status, "response": detail},
                    )
                    raise _fail(PostRejected, f"{message.channel} answered {status}: {detail}", attempt)
                last = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            if attempt == self._policy.max_attempts:
                break
            delay = self._policy.delay(attempt, retry_after)
            if delay > self._policy.max_retry_after:
                raise _fail(PostFailed, f"{message.channel}: {last}; asked to wait {delay:.0f} s", attempt)
            if self._deadline is not None and self._clock() + delay > self._deadline:
                raise _fail(PostFailed, f"{message.channel}: {last}; no time left to retry", attempt)
            log.warning(
                "chat webhook attempt failed; retrying",
                extra={"channel": message.channel, "attempt": attempt, "outcome": last, "delay_s": round(delay, 2)},
            )
            self._sleep(delay)
        raise _fail(
            PostFailed,
            f"{message.channel}: {last} after {self._policy.max_attempts} attempts",
            self._policy.max_attempts,
        )
