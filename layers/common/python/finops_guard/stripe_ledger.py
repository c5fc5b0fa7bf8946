"""The Stripe webhook use case: request -> verified event -> effects -> one transaction -> reply.

Status codes: 4xx for anything Stripe should not retry (bad signature, stale timestamp, missing
header, malformed JSON, body over the cap) — nothing is written; 200 for applied, duplicate, stale
and ignored events; an exception (5xx) for anything worth retrying, with nothing half-written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from finops_guard.billing import Effects, EventShapeError, effects_of
from finops_guard.settings import BillingSettings
from finops_guard.stripe_webhook import Rejection, raw_body, signature_header, verify

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


def _verify(
    payload: bytes, header: str, secrets: Callable[[], Sequence[str]], refresh: Callable[[], Sequence[str]] | None
) -> Any:
    cached = list(secrets())
    try:
        return verify(payload, header, cached)
    except Rejection as rejection:
        if rejection.reason != "invalid signature" or refresh is None:
            raise
        fresh = list(refresh())
        if fresh == cached:
            raise
        return verify(payload, header, fresh)


def handle_webhook(
    request: Mapping[str, Any],
    *,
    settings: BillingSettings,
    secrets: Callable[[], Sequence[str]],
    ledger: Ledger,
    now: Callable[[], datetime],
    refresh_secrets: Callable[[], Sequence[str]] | None = None,
) -> WebhookOutcome:
    """`secrets()` gives the cached signing secrets; `refresh_secrets()` reads them again (rate-limited
    by the adapter) when a signature fails against the cached ones: a secret rolled in Stripe."""
    try:
        payload = raw_body(request, settings.max_body_bytes)
        header = signature_header(request)
        event = _verify(payload, header, secrets, refresh_secrets)
        effects = effects_of(event, dunning_steps=settings.dunning_steps)
    except Rejection as rejection:
        log.warning("stripe webhook rejected", extra={"status": rejection.status, "reason": rejection.reason})
        return WebhookOutcome(rejection.status, {"error": rejection.reason})
    except EventShapeError as error:
        log.warning("stripe event has an unexpected shape", extra={"reason": str(error)})
        return WebhookOutcome(400, {"error": str(error)})
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
