"""New billing alerts (from the alerts table's stream) to the finance chat channel, once each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from finops_guard.core.delivery import ChatMessage, DeliveryResult, Outbox, Poster, deliver_all

_deserialize = TypeDeserializer().deserialize


@dataclass
class NotifyOutcome:
    posted: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # stream record ids to report as batch failures
    delivery: DeliveryResult = field(default_factory=DeliveryResult)


def new_alerts(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(stream record id, alert) for alerts just opened: inserts, and re-opened ones."""
    found = []
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            continue
        alert = {k: _deserialize(v) for k, v in image.items()}
        old = record.get("dynamodb", {}).get("OldImage") or {}
        was_open = old.get("status", {}).get("S") == "open"
        if alert.get("status") == "open" and (record.get("eventName") == "INSERT" or not was_open):
            found.append((str(record.get("eventID")), alert))
    return found


def notify(
    records: Sequence[Mapping[str, Any]],
    *,
    outbox: Outbox,
    poster: Poster,
    channels: Sequence[str],
    render: Callable[[dict[str, Any], str], dict[str, Any]],
    now: datetime,
) -> NotifyOutcome:
    outcome = NotifyOutcome()
    pending: dict[str, str] = {}
    messages = []
    for record_id, alert in new_alerts(records):
        stamp = str(alert.get("opened_at") or "")
        for channel in channels:
            message_id = f"billing-alert/{alert['alert_id']}/{stamp}/{channel}"
            messages.append(ChatMessage(message_id, channel, "billing-alert", render(alert, channel)))
            pending[message_id] = record_id
    outcome.delivery = deliver_all(messages, outbox, poster, now)
    outcome.posted = outcome.delivery.delivered
    outcome.retry = sorted({pending[message_id] for message_id, _ in outcome.delivery.failed})
    return outcome
