"""Cost Anomaly Detection alerts: one model for both streams, and the rules for alerting once.

Cost Anomaly Detection publishes the same anomaly again as it evolves (its end date moves, its
impact grows). The first sighting alerts; a later one alerts again ("updated") only when the
total impact grew by at least `realert_growth` (default 50 %) since the last alert; anything else
is recorded silently. Anomalies under `min_impact` are recorded and alert once they grow past it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from finops_guard.money import ZERO
from finops_guard.teams import message_suffix


class MalformedAnomaly(ValueError):
    """A message that is not an anomaly alert we can read; carries whatever id it had."""

    def __init__(self, message_id: str | None, problem: str) -> None:
        super().__init__(f"message {message_id or '(no id)'}: {problem}")
        self.message_id = message_id


@dataclass(frozen=True)
class RootCause:
    service: str | None
    region: str | None
    account_id: str | None
    account_name: str | None
    usage_type: str | None
    contribution: Decimal | None


@dataclass(frozen=True)
class Anomaly:
    anomaly_id: str
    source: str  # "sns" | "eventbridge"
    message_id: str
    published_at: datetime
    account_id: str | None
    account_name: str | None
    service: str | None  # the monitor's dimension value (a service for a SERVICE monitor)
    monitor_name: str | None
    start_date: str | None
    end_date: str | None
    total_impact: Decimal
    impact_percentage: Decimal | None
    expected_spend: Decimal | None
    actual_spend: Decimal | None
    root_causes: tuple[RootCause, ...]  # ranked by contribution, largest first
    details_link: str | None

    @property
    def top_cause(self) -> RootCause | None:
        return self.root_causes[0] if self.root_causes else None

    @property
    def region(self) -> str | None:
        return self.top_cause.region if self.top_cause else None

    @property
    def usage_type(self) -> str | None:
        return self.top_cause.usage_type if self.top_cause else None


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _instant(text: Any, message_id: str) -> datetime:
    if not isinstance(text, str):
        raise MalformedAnomaly(message_id, "no publish time")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedAnomaly(message_id, f"bad publish time {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _root_causes(raw: Any) -> tuple[RootCause, ...]:
    causes = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        impact = item.get("impact")
        causes.append(
            RootCause(
                service=item.get("service"),
                region=item.get("region"),
                account_id=item.get("linkedAccount"),
                account_name=item.get("linkedAccountName"),
                usage_type=item.get("usageType"),
                contribution=_decimal(impact.get("contribution")) if isinstance(impact, dict) else None,
            )
        )
    return tuple(sorted(causes, key=lambda c: -(c.contribution if c.contribution is not None else Decimal(-1))))


def _anomaly(body: dict[str, Any], *, source: str, message_id: str, published: datetime, account: Any) -> Anomaly:
    anomaly_id = body.get("anomalyId")
    impact = body.get("impact")
    if not isinstance(anomaly_id, str) or not anomaly_id:
        raise MalformedAnomaly(message_id, "no anomalyId")
    if not isinstance(impact, dict) or _decimal(impact.get("totalImpact")) is None:
        raise MalformedAnomaly(message_id, f"anomaly {anomaly_id} has no impact.totalImpact")
    causes = _root_causes(body.get("rootCauses"))
    account_name = body.get("accountName") or next((c.account_name for c in causes if c.account_name), None)
    top_account = causes[0].account_id if causes else None
    return Anomaly(
        anomaly_id=anomaly_id,
        source=source,
        message_id=message_id,
        published_at=published,
        account_id=top_account or (str(account) if account else None),
        account_name=account_name,
        service=body.get("dimensionalValue") or body.get("dimensionValue"),
        monitor_name=body.get("monitorName"),
        start_date=body.get("anomalyStartDate"),
        end_date=body.get("anomalyEndDate"),
        total_impact=_decimal(impact.get("totalImpact")) or ZERO,
        impact_percentage=_decimal(impact.get("totalImpactPercentage")),
        expected_spend=_decimal(impact.get("totalExpectedSpend")),
        actual_spend=_decimal(impact.get("totalActualSpend")),
        root_causes=causes,
        details_link=body.get("anomalyDetailsLink"),
    )


def parse_message(text: str, fallback_id: str | None = None) -> Anomaly:
    """One inbox message: an SNS notification envelope (subscription to the anomaly topic) or an
    EventBridge `Anomaly Detected` event. Amounts are read as Decimal, never float."""
    try:
        body = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, TypeError):
        raise MalformedAnomaly(fallback_id, "body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedAnomaly(fallback_id, "body is not a JSON object")
    if body.get("Type") == "Notification":
        message_id = str(body.get("MessageId") or fallback_id or "")
        try:
            inner = json.loads(body.get("Message") or "", parse_float=Decimal)
        except (json.JSONDecodeError, TypeError):
            raise MalformedAnomaly(message_id, "SNS Message is not JSON") from None
        if not isinstance(inner, dict):
            raise MalformedAnomaly(message_id, "SNS Message is not a JSON object")
        published = _instant(body.get("Timestamp"), message_id)
        return _anomaly(inner, source="sns", message_id=message_id, published=published, account=inner.get("accountId"))
    if body.get("detail-type") == "Anomaly Detected" and body.get("source") == "aws.ce":
        message_id = str(body.get("id") or fallback_id or "")
        detail = body.get("detail")
        if not isinstance(detail, dict):
            raise MalformedAnomaly(message_id, "event has no detail")
        published = _instant(body.get("time"), message_id)
        return _anomaly(
            detail, source="eventbridge", message_id=message_id, published=published, account=body.get("account")
        )
    raise MalformedAnomaly(fallback_id, "neither an SNS notification nor an 'Anomaly Detected' event")


@dataclass(frozen=True)
class AlertPolicy:
    min_impact: Decimal = ZERO
    realert_growth: Decimal = Decimal("0.5")

    def alertable(self, anomaly: Anomaly) -> bool:
        return anomaly.total_impact >= self.min_impact

    def next_alert_at(self, impact: Decimal) -> Decimal:
        """The total impact a later sighting must reach to alert again."""
        return impact * (1 + self.realert_growth)


@dataclass(frozen=True)
class Sighting:
    """What the store decided for one anomaly message."""

    anomaly: Anomaly
    outcome: str  # "new" | "updated" | "silent" | "below-threshold" | "undelivered"
    alerted_impact: Decimal | None = None  # the impact the pending alert is about

    @property
    def alerts(self) -> bool:
        return self.outcome in ("new", "updated", "undelivered")


def alert_message_id(sightings: list[Sighting], channel: str, team: str | None = None) -> str:
    """Stable per (anomaly, alerted impact) set: a retried batch re-sends the same message.
    anomaly/<id>/<impact>/<channel> or anomaly-digest/<hash of the set>/<channel>; a team's channel
    has `team/<URL-quoted team>` before the channel."""
    destination = channel if team is None else f"{message_suffix(team)}/{channel}"
    if len(sightings) == 1:
        s = sightings[0]
        return f"anomaly/{s.anomaly.anomaly_id}/{s.alerted_impact}/{destination}"
    members = sorted(f"{s.anomaly.anomaly_id}@{s.alerted_impact}" for s in sightings)
    digest = hashlib.sha256("|".join(members).encode()).hexdigest()[:20]
    return f"anomaly-digest/{digest}/{destination}"
