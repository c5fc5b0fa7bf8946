"""Forwarding a batch of anomaly messages: parse, decide per anomaly, send one card (or one digest
card when several alert together) per channel, and tell SQS which records to retry.

Bursts: the SQS inbox hands the function up to 50 messages gathered over 20 s, so a burst becomes
one digest per channel instead of 50 posts; the webhook poster also spaces posts per channel
(Teams 4/s, Slack 1/s) and retries 429s with Retry-After.

Teams: an anomaly whose top root cause (or the anomaly itself) is in an account a team's route
lists also goes to that team's channels, in one card (or digest) per team holding only its
anomalies. The default channels still get every anomaly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.delivery import ChatMessage, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.costs.anomalies import (
    AlertPolicy,
    Anomaly,
    MalformedAnomaly,
    Sighting,
    alert_message_id,
    parse_message,
)
from finops_guard.costs.teams import Routing, TeamRoute

log = logging.getLogger(__name__)


class AnomalyStore(Protocol):
    def record(self, anomaly: Anomaly, policy: AlertPolicy, now: datetime) -> Sighting: ...
    def mark_delivered(self, anomaly_id: str, impact: Decimal) -> None: ...


Render = Callable[[list[Sighting], str], dict[str, Any]]


@dataclass(frozen=True)
class InboxRecord:
    record_id: str  # the SQS messageId: what a partial batch failure names
    body: str


def inbox_records(event: Any) -> list[InboxRecord]:
    """The SQS event's records. A record without a string messageId cannot be named in a partial
    batch failure (naming a wrong one fails the whole batch), so it is logged and left out; SQS
    never sends one. A body that is not a string is kept, and refused as malformed on its own."""
    raw = event.get("Records") if isinstance(event, dict) else None
    records = []
    for item in raw if isinstance(raw, list) else []:
        record_id = item.get("messageId") if isinstance(item, dict) else None
        if not isinstance(record_id, str) or not record_id:
            log.error("SQS record without a messageId skipped")
            continue
        body = item.get("body")
        records.append(InboxRecord(record_id, body if isinstance(body, str) else ""))
    return records


@dataclass
class BatchOutcome:
    sightings: list[Sighting] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (record id, reason)
    retry: list[str] = field(default_factory=list)  # record ids SQS must deliver again
    delivery: DeliveryResult = field(default_factory=DeliveryResult)
    latencies: list[Decimal] = field(default_factory=list)  # seconds, published -> posted

    @property
    def alerted(self) -> list[Sighting]:
        return [s for s in self.sightings if s.alerts]


def teams_of(anomaly: Anomaly, routing: Routing) -> list[TeamRoute]:
    """Cost Anomaly Detection names accounts, not tags: the teams routed to the top root cause's
    account or to the anomaly's own (which the model fills from the envelope when there is no cause)."""
    top = anomaly.top_cause
    return routing.for_accounts([top.account_id if top else None, anomaly.account_id])


def _team_messages(alerting: list[Sighting], routing: Routing, render: Render) -> list[ChatMessage]:
    """One card (or digest) per routed team and channel, holding only that team's anomalies."""
    by_team: dict[str, tuple[TeamRoute, list[Sighting]]] = {}
    for sighting in alerting:  # largest impact first, as in the default card
        for route in teams_of(sighting.anomaly, routing):
            by_team.setdefault(route.team, (route, []))[1].append(sighting)
    messages = []
    for team in sorted(by_team):
        route, sightings = by_team[team]
        for channel, secret_name in route.destinations():
            message_id = alert_message_id(sightings, channel, team)
            messages.append(ChatMessage(message_id, channel, "cost-anomaly", render(sightings, channel), secret_name))
    return messages


def forward_batch(
    records: Sequence[InboxRecord],
    *,
    store: AnomalyStore,
    outbox: Outbox,
    poster: Poster,
    policy: AlertPolicy,
    render: Render,
    channels: Sequence[str],
    clock: Callable[[], datetime],
    routing: Routing | None = None,
) -> BatchOutcome:
    """Alert the anomalies of one SQS batch: the default `channels` get them all, each routed team its
    own. They are marked delivered once every message is delivered (or was already, or is kept for
    a channel not set up yet); otherwise the batch's records go back to SQS."""
    outcome = BatchOutcome()
    parsed: list[tuple[InboxRecord, Anomaly]] = []
    for record in records:
        try:
            parsed.append((record, parse_message(record.body, record.record_id)))
        except MalformedAnomaly as error:
            log.error("malformed anomaly message", extra={"record_id": record.record_id, "reason": str(error)})
            outcome.malformed.append((record.record_id, str(error)))
            outcome.retry.append(record.record_id)

    now = clock()
    records_of: dict[str, list[str]] = {}
    latest: dict[str, Sighting] = {}
    for record, anomaly in sorted(parsed, key=lambda pair: pair[1].published_at):
        try:
            sighting = store.record(anomaly, policy, now)
        except Exception:  # a store fault on one record must not drop the batch's other anomalies
            log.exception("anomaly not recorded; SQS will retry it", extra={"record_id": record.record_id})
            outcome.retry.append(record.record_id)
            continue
        outcome.sightings.append(sighting)
        records_of.setdefault(anomaly.anomaly_id, []).append(record.record_id)
        if sighting.alerts:
            latest[anomaly.anomaly_id] = sighting
    alerting = sorted(latest.values(), key=lambda s: -s.anomaly.total_impact)
    if not alerting:
        return outcome

    messages = [ChatMessage(alert_message_id(alerting, c), c, "cost-anomaly", render(alerting, c)) for c in channels]
    if routing is not None:
        messages += _team_messages(alerting, routing, render)
    outcome.delivery = deliver_all(messages, outbox, poster, now)
    # A card kept for a channel not set up yet (placeholder webhook secret) settles its anomalies like a
    # delivered one: retrying cannot help before the URL is put (the records would only end in the failure queue),
    # the card waits in the outbox for `finops-guard outbox redrive`, and a later sighting alerts again
    # only if the anomaly grew, so the redrive does not post a pile of copies.
    if all(m.message_id in outcome.delivery.settled for m in messages):
        done = set(outcome.delivery.delivered) | set(outcome.delivery.skipped)
        reached_chat = any(m.message_id in done for m in messages)
        posted = clock()
        first_published: dict[str, datetime] = {}
        for _, anomaly in parsed:
            seen = first_published.get(anomaly.anomaly_id, anomaly.published_at)
            first_published[anomaly.anomaly_id] = min(seen, anomaly.published_at)
        for sighting in alerting:
            store.mark_delivered(sighting.anomaly.anomaly_id, sighting.alerted_impact or sighting.anomaly.total_impact)
            if reached_chat:  # the latency SLO measures posting; nothing was posted when nothing is set up
                seconds = (posted - first_published[sighting.anomaly.anomaly_id]).total_seconds()
                outcome.latencies.append(Decimal(str(round(seconds, 3))))
    else:
        # Kept in the outbox; SQS brings these records back and the store answers "undelivered". The
        # whole batch comes back, even anomalies whose team card went out: the default card holds
        # them all, and only the same batch rebuilds the same message ids, so the outbox skips what
        # was posted and sends only what is missing (a lone retried anomaly would get a new id and
        # be posted twice to the default channel).
        for sighting in alerting:
            outcome.retry.extend(records_of[sighting.anomaly.anomaly_id])
    return outcome
