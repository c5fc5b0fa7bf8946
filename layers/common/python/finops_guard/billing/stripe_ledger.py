"""The Stripe webhook use case: request -> verified event -> typed event -> effects -> one
transaction -> reply.

The signature is checked once on the raw bytes, the body decoded once, and the event parsed once
into strict typed values (`finops_guard.billing.stripe_events`) before any rule sees it. Status codes: 4xx
for anything Stripe should not retry (a missing, malformed or wrong signature, a timestamp outside
the tolerance either way, a body that is not a JSON object or nests too deep, a field of the wrong
type, range or shape — the body names it) — nothing is written; 200 for applied, duplicate, stale
and ignored events; an exception (5xx) only when storage or secrets fail, with nothing
half-written, so Stripe retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from finops_guard.billing.ledger_rules import Effects, effects_of
from finops_guard.billing.settings import BillingSettings
from finops_guard.billing.stripe_events import EventShapeError, parse_event
from finops_guard.billing.stripe_webhook import (
    INVALID_SIGNATURE,
    Rejection,
    check_signature,
    decode,
    raw_body,
    signature_header,
)

log = logging.getLogger(__name__)


class Ledger(Protocol):
    def apply(self, effects: Effects, now: datetime) -> str: ...
    def settle_invoice(self, invoice_id: str, now: datetime) -> tuple[int, int]: ...
    def raise_threshold_alerts(self, effects: Effects, thresholds: Mapping[str, Any], now: datetime) -> list[str]: ...
    def confirm_invoice_request(
        self, request_id: str, event_id: str, event_created: int, now: datetime
    ) -> int | None: ...


@dataclass(frozen=True)
class WebhookOutcome:
    status: int
    body: dict[str, Any]
    event_type: str | None = None
    invoice_latency_s: int | None = None  # set once per invoice bot request, when Stripe confirms delivery


def _check_signature(
    payload: bytes,
    header: str,
    secrets: Callable[[], Sequence[str]],
    refresh: Callable[[], Sequence[str]] | None,
    now: float,
) -> None:
    cached = list(secrets())
    try:
        check_signature(payload, header, cached, now=now)
    except Rejection as rejection:
        if rejection.reason != INVALID_SIGNATURE or refresh is None:
            raise
        fresh = list(refresh())
        if fresh == cached:
            raise
        check_signature(payload, header, fresh, now=now)


def handle_webhook(
    request: Mapping[str, Any],
    *,
    settings: BillingSettings,
    secrets: Callable[[], Sequence[str]],
    ledger: Ledger,
    now: Callable[[], datetime],
    refresh_secrets: Callable[[], Sequence[str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> WebhookOutcome:
    """`secrets()` gives the cached signing secrets; `refresh_secrets()` reads them again (rate-limited
    by the adapter) when a signature fails against the cached ones: a secret rolled in Stripe.
    `clock()` is the wall clock (Unix seconds) the signature's timestamp is checked against; `now()`
    stamps what is written."""
    try:
        payload = raw_body(request, settings.max_body_bytes)
        header = signature_header(request)
        _check_signature(payload, header, secrets, refresh_secrets, clock())
        event = parse_event(decode(payload))
        effects = effects_of(event, dunning_steps=settings.dunning_steps)
    except Rejection as rejection:
        log.warning("stripe webhook rejected", extra={"status": rejection.status, "reason": rejection.reason})
        return WebhookOutcome(rejection.status, {"error": rejection.reason})
    except EventShapeError as error:
        # Signed, so from Stripe (or someone holding the secret): worth an operator's look.
        log.warning("stripe event has an unexpected shape", extra={"reason": str(error), "field": error.field})
        return WebhookOutcome(400, {"error": str(error), "field": error.field})
    if effects.ignored:
        log.info("stripe event type not handled", extra={"event_id": effects.event_id, "type": effects.event_type})
        return WebhookOutcome(200, {"received": True, "outcome": "ignored"}, effects.event_type)
    at = now()
    latency = None
    outcome = ledger.apply(effects, at)
    if outcome in ("applied", "duplicate"):
        # Idempotent follow-ups, re-run on duplicates so a crash after the commit is repaired.
        if effects.settle_invoice:
            ledger.settle_invoice(effects.settle_invoice, at)
        if effects.ledger and settings.thresholds:
            ledger.raise_threshold_alerts(effects, settings.thresholds, at)
        if effects.confirm_invoice_request:
            latency = ledger.confirm_invoice_request(
                effects.confirm_invoice_request, effects.event_id, effects.event_created, at
            )
    log.info("stripe event", extra={"event_id": effects.event_id, "type": effects.event_type, "outcome": outcome})
    return WebhookOutcome(200, {"received": True, "outcome": outcome}, effects.event_type, latency)
