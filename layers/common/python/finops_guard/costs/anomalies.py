"""Cost Anomaly Detection alerts: one model for both streams, and the rules for alerting once.

Cost Anomaly Detection publishes the same anomaly again as it evolves (its end date moves, its
impact grows). The first sighting alerts; a later one alerts again ("updated") only when the
total impact grew by at least `realert_growth` (default 50 %) since the last alert; anything else
is recorded silently. Anomalies under `min_impact` are recorded and alert once they grow past it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from finops_guard.core import bounded_json
from finops_guard.core.money import ZERO
from finops_guard.costs.teams import message_suffix


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


# Bounds of what the parser accepts: anything outside them cannot come from Cost Anomaly Detection,
# and would break a card, a DynamoDB number (38 significant digits) or a key (2,048 bytes).
MAX_MESSAGE_CHARS = 1_048_576  # SQS's largest message (1 MiB)
MAX_DEPTH = 16  # the envelope, detail, rootCauses, a cause and its impact nest 5 deep
MAX_AMOUNT = Decimal("1e12")  # |amount| and |percentage| below a trillion: no anomaly is larger
# Amounts keep at most 6 decimal places (float artefacts such as 0.30000000000000004 are rounded):
# with |x| < 1e12 every accepted amount prints in plain notation ("0.000001", never "1E-7").
AMOUNT_PLACES = Decimal("1e-6")
MAX_ROOT_CAUSES = 10  # the largest ones kept; the card shows three
MAX_NAME = 256  # services, usage types, regions, account names (AWS's own are far shorter)
MAX_MONITOR_NAME = 1024  # Cost Anomaly Detection's limit on a monitor name
MAX_LINK = 2048
_ANOMALY_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # Cost Anomaly Detection ids are UUIDs
_MESSAGE_ID = _ANOMALY_ID
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,13}(?:\.[0-9]{1,30})?")


def _shown(value: Any) -> str:
    """A refused value as it may appear in a log line: short, one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _amount(value: Any, field: str, message_id: str | None) -> Decimal | None:
    """A JSON number (read as Decimal) or a plain decimal string, finite, |x| < MAX_AMOUNT, rounded
    half-even to 6 decimal places, exponent at most 0; None when absent (null or "")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedAnomaly(message_id, f"{field} is not a number: {_shown(value)}")
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise MalformedAnomaly(message_id, f"{field} is not a number: {_shown(value)}")
        number = Decimal(value)
    elif isinstance(value, Decimal | int):
        number = Decimal(value)
    else:
        raise MalformedAnomaly(message_id, f"{field} is not a number: {_shown(value)}")
    # NaN and Infinity never get here: the JSON reader refuses them, and the text pattern spells digits.
    if not -MAX_AMOUNT < number < MAX_AMOUNT:
        raise MalformedAnomaly(message_id, f"{field} is out of range (|x| < 1e12): {_shown(value)}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -6:
        return number.quantize(AMOUNT_PLACES, rounding=ROUND_HALF_EVEN)
    if exponent > 0:  # 1E+3 -> 1000: one spelling per number in stored items and message ids
        return number.quantize(Decimal(1))
    return number


def _text(value: Any, field: str, message_id: str | None, limit: int = MAX_NAME) -> str | None:
    """An optional display string: None when absent (null or ""), else a str of at most `limit`
    characters."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedAnomaly(message_id, f"{field} is not a string: {_shown(value)}")
    if len(value) > limit:  # lone surrogates never get here: bounded_json refuses them
        raise MalformedAnomaly(message_id, f"{field} is not a name of at most {limit} characters")
    return value


def _matching(value: Any, pattern: re.Pattern[str], field: str, message_id: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedAnomaly(message_id, f"{field} is malformed: {_shown(value)}")
    return value


def _iso_instant(text: str) -> datetime:
    """ISO 8601 date and time as AWS writes it ("2026-11-16T06:40:02.512Z"), with "T" between date
    and time: fromisoformat takes any one separator (it does refuse other scripts' digits)."""
    if text[10:11] != "T":
        raise ValueError(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day_text(value: Any, field: str, message_id: str | None) -> str | None:
    """An anomaly start/end date ("2026-11-14" or "2026-11-14T00:00:00Z"), kept as sent once checked."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        if len(value) > 10:
            _iso_instant(value)
        else:
            date.fromisoformat(value)
    except ValueError:
        raise MalformedAnomaly(message_id, f"{field} is not a date: {_shown(value)}") from None
    return value


def _instant(text: Any, message_id: str | None) -> datetime:
    """The envelope's publish time (see `_iso_instant`); UTC when it names no offset."""
    if not isinstance(text, str):
        raise MalformedAnomaly(message_id, "no publish time")
    try:
        parsed = _iso_instant(text)
    except ValueError:
        raise MalformedAnomaly(message_id, f"bad publish time {_shown(text)}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _root_causes(raw: Any, message_id: str | None) -> tuple[RootCause, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedAnomaly(message_id, "rootCauses is not a list")
    causes = []
    for item in raw:
        if not isinstance(item, dict):
            raise MalformedAnomaly(message_id, "a root cause is not an object")
        impact = item.get("impact")
        if impact is not None and not isinstance(impact, dict):
            raise MalformedAnomaly(message_id, "a root cause's impact is not an object")
        causes.append(
            RootCause(
                service=_text(item.get("service"), "rootCauses.service", message_id),
                region=_text(item.get("region"), "rootCauses.region", message_id),
                account_id=_matching(item.get("linkedAccount"), _ACCOUNT_ID, "rootCauses.linkedAccount", message_id),
                account_name=_text(item.get("linkedAccountName"), "rootCauses.linkedAccountName", message_id),
                usage_type=_text(item.get("usageType"), "rootCauses.usageType", message_id),
                contribution=_amount(impact.get("contribution"), "rootCauses.impact.contribution", message_id)
                if impact
                else None,
            )
        )
    ranked = sorted(causes, key=lambda c: -(c.contribution if c.contribution is not None else -MAX_AMOUNT))
    return tuple(ranked[:MAX_ROOT_CAUSES])


def _anomaly(body: dict[str, Any], *, source: str, message_id: str, published: datetime, account: Any) -> Anomaly:
    anomaly_id = body.get("anomalyId")
    if not isinstance(anomaly_id, str) or not anomaly_id:
        raise MalformedAnomaly(message_id, "no anomalyId")
    if not _ANOMALY_ID.fullmatch(anomaly_id):
        raise MalformedAnomaly(message_id, f"anomalyId is malformed: {_shown(anomaly_id)}")
    impact = body.get("impact")
    total_impact = (
        _amount(impact.get("totalImpact"), "impact.totalImpact", message_id) if isinstance(impact, dict) else None
    )
    if not isinstance(impact, dict) or total_impact is None:
        raise MalformedAnomaly(message_id, f"anomaly {anomaly_id} has no impact.totalImpact")
    causes = _root_causes(body.get("rootCauses"), message_id)
    account_id = _matching(account, _ACCOUNT_ID, "account", message_id)
    service = (
        body.get("dimensionalValue") if body.get("dimensionalValue") not in (None, "") else body.get("dimensionValue")
    )
    account_name = _text(body.get("accountName"), "accountName", message_id)
    return Anomaly(
        anomaly_id=anomaly_id,
        source=source,
        message_id=message_id,
        published_at=published,
        account_id=(causes[0].account_id if causes else None) or account_id,
        account_name=account_name or next((c.account_name for c in causes if c.account_name), None),
        service=_text(service, "dimensionValue", message_id),
        monitor_name=_text(body.get("monitorName"), "monitorName", message_id, MAX_MONITOR_NAME),
        start_date=_day_text(body.get("anomalyStartDate"), "anomalyStartDate", message_id),
        end_date=_day_text(body.get("anomalyEndDate"), "anomalyEndDate", message_id),
        total_impact=total_impact,
        impact_percentage=_amount(impact.get("totalImpactPercentage"), "impact.totalImpactPercentage", message_id),
        expected_spend=_amount(impact.get("totalExpectedSpend"), "impact.totalExpectedSpend", message_id),
        actual_spend=_amount(impact.get("totalActualSpend"), "impact.totalActualSpend", message_id),
        root_causes=causes,
        details_link=_text(body.get("anomalyDetailsLink"), "anomalyDetailsLink", message_id, MAX_LINK),
    )


def _json_object(text: Any, message_id: str | None, what: str) -> dict[str, Any]:
    try:
        body = bounded_json.loads(text, max_depth=MAX_DEPTH, max_chars=MAX_MESSAGE_CHARS, parse_float=Decimal)
    except bounded_json.JsonRefused as refused:
        problem = "not JSON" if refused.reason == "not JSON" else f"refused: {refused.reason}"
        raise MalformedAnomaly(message_id, f"{what} is {problem}") from None
    if not isinstance(body, dict):
        raise MalformedAnomaly(message_id, f"{what} is not a JSON object")
    return body


def _envelope_id(value: Any, fallback_id: str | None) -> str:
    """The SNS MessageId / EventBridge id (it names the message in logs); the SQS record id when
    there is none. One that is there but not an id is refused: AWS always sends a string id."""
    if value is None or value == "":
        return fallback_id or ""
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value):
        raise MalformedAnomaly(fallback_id, f"message id is malformed: {_shown(value)}")
    return value


def parse_message(text: str, fallback_id: str | None = None) -> Anomaly:
    """One inbox message: an SNS notification envelope (subscription to the anomaly topic) or an
    EventBridge `Anomaly Detected` event. Amounts are read as Decimal, never float, and bounded
    (|x| < 1e12, at most 6 decimal places); ids, accounts, dates and names are strings of the
    shape AWS sends. Anything else raises MalformedAnomaly (never another exception)."""
    body = _json_object(text, fallback_id, "body")
    if body.get("Type") == "Notification":
        message_id = _envelope_id(body.get("MessageId"), fallback_id)
        inner = _json_object(body.get("Message"), message_id, "SNS Message")
        published = _instant(body.get("Timestamp"), message_id)
        return _anomaly(inner, source="sns", message_id=message_id, published=published, account=inner.get("accountId"))
    if body.get("detail-type") == "Anomaly Detected" and body.get("source") == "aws.ce":
        message_id = _envelope_id(body.get("id"), fallback_id)
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
