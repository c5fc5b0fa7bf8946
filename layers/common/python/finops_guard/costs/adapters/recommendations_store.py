"""The recommendations table: one item per Cost Optimization Hub recommendation, never deleted.

Table `finops-guard-<stage>-recommendations`, PAY_PER_REQUEST, no indexes:
  pk (S, partition key) = "REC"             one Query lists every item (no Scan)
  sk (S, sort key)      = rec_id            COH recommendationId
Attributes: source, resource_id, resource_arn, account_id, region, action_type, resource_type,
recommended_resource_type, summary, estimated_monthly_savings (N), currency, effort, restart_needed,
rollback_possible (BOOL), tags (M of S), team (S, absent = none), first_seen, last_seen (ISO UTC),
status, status_reason, history (L of M {status, at, by, from, reason}), implemented_on (S date),
roi (M: service, before_daily N, after_daily N, currency, measured_at, window_days N,
estimated_days N), updated_at, transition_token.

Writes:
- `upsert` (the refresh): upstream fields and last_seen only; status, first_seen and history are set
  with if_not_exists, so a refresh can never change a status or rewrite history.
- `transition`: conditional on the status the move was decided from (`#status = :from`), appending
  one history entry; a fresh token recognises our own write whose answer was lost (botocore retried
  it and the retry failed the condition). Anyone else's write in between -> StatusConflict.
- `record_roi`: once, conditional on implemented and no roi yet.
A single partition is ample: items are few (hundreds) and written at most once a day each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter, written_by_us
from finops_guard.costs.savings import (
    OPEN,
    HistoryEntry,
    Recommendation,
    RecommendationNotFound,
    Roi,
    StatusConflict,
    Transition,
    utc_text,
)

PARTITION = "REC"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _value(value: Any) -> dict[str, Any]:
    return _serializer.serialize(value)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _roi_document(roi: Roi) -> dict[str, Any]:
    return {
        "service": roi.service,
        "before_daily": roi.before_daily,
        "after_daily": roi.after_daily,
        "currency": roi.currency,
        "measured_at": roi.measured_at,
        "window_days": roi.window_days,
        "estimated_days": roi.estimated_days,
    }


def _roi(document: dict[str, Any] | None) -> Roi | None:
    if not document:
        return None
    return Roi(
        service=str(document["service"]),
        before_daily=Decimal(document["before_daily"]),
        after_daily=Decimal(document["after_daily"]),
        currency=str(document.get("currency", "USD")),
        measured_at=str(document.get("measured_at", "")),
        window_days=int(document.get("window_days", 14)),
        estimated_days=int(document.get("estimated_days", 0)),
    )


def recommendation_of(item: dict[str, Any]) -> Recommendation:
    """A stored item (DynamoDB attribute values) as the domain's Recommendation."""
    d = _plain(item)
    implemented = d.get("implemented_on")
    return Recommendation(
        rec_id=str(d["sk"]),
        resource_id=str(d.get("resource_id", "")),
        resource_arn=str(d.get("resource_arn", "")),
        account_id=str(d.get("account_id", "")),
        region=str(d.get("region", "")),
        action_type=str(d.get("action_type", "")),
        resource_type=str(d.get("resource_type", "")),
        recommended_resource_type=str(d.get("recommended_resource_type", "")),
        summary=str(d.get("summary", "")),
        estimated_monthly_savings=Decimal(d.get("estimated_monthly_savings", 0)),
        currency=str(d.get("currency", "USD")),
        effort=str(d.get("effort", "")),
        restart_needed=d.get("restart_needed"),
        rollback_possible=d.get("rollback_possible"),
        tags=tuple(sorted((str(k), str(v)) for k, v in (d.get("tags") or {}).items())),
        source=str(d.get("source", "")),
        first_seen=str(d.get("first_seen", "")),
        last_seen=str(d.get("last_seen", "")),
        status=str(d.get("status", OPEN)),
        status_reason=d.get("status_reason"),
        history=tuple(HistoryEntry.from_document(h) for h in d.get("history") or ()),
        implemented_on=date.fromisoformat(implemented) if implemented else None,
        team=d.get("team"),
        roi=_roi(d.get("roi")),
    )


# Upstream fields the refresh keeps current; everything else is the operators' (or set once).
_UPSTREAM = (
    "source", "resource_id", "resource_arn", "account_id", "region", "action_type", "resource_type",
    "recommended_resource_type", "summary", "estimated_monthly_savings", "currency", "effort",
)  # fmt: skip


class RecommendationsTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def _key(self, rec_id: str) -> dict[str, Any]:
        return {"pk": {"S": PARTITION}, "sk": {"S": rec_id}}

    def all(self) -> list[Recommendation]:
        """Every stored recommendation, whatever its status (one Query, every page)."""
        return list(self._items())

    def _items(self) -> Iterator[Recommendation]:
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": PARTITION}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                yield recommendation_of(item)

    def get(self, rec_id: str) -> Recommendation | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(rec_id), ConsistentRead=True).get("Item")
        return recommendation_of(item) if item else None

    def upsert(self, listed: Recommendation, now: datetime) -> Recommendation | None:
        """Record what COH lists now; returns the item as it was before (None: new). Never touches
        status, first_seen or history of an existing item (they are only set when absent)."""
        created = HistoryEntry(OPEN, utc_text(now), "refresh", None, "listed upstream")
        current: dict[str, Any] = {name: getattr(listed, name) for name in _UPSTREAM}
        for name in ("restart_needed", "rollback_possible", "team"):
            if getattr(listed, name) is not None:
                current[name] = getattr(listed, name)
        current.update(tags=dict(listed.tags), last_seen=utc_text(now))
        once = {"first_seen": utc_text(now), "status": OPEN, "history": [created.to_document()]}
        # Every attribute through a placeholder: source, region, status... are DynamoDB reserved words.
        names = {f"#{name}": name for name in [*current, *once]}
        values = {f":{name}": _value(value) for name, value in [*current.items(), *once.items()]}
        sets = [f"#{name} = :{name}" for name in current]
        sets += [f"#{name} = if_not_exists(#{name}, :{name})" for name in once]
        expression = "SET " + ", ".join(sets)
        if listed.team is None:
            names["#team"] = "team"
            expression += " REMOVE #team"
        answer = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(listed.rec_id),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        old = answer.get("Attributes")
        return recommendation_of(old) if old else None

    def transition(self, move: Transition, now: datetime) -> None:
        """Write `move` only if the stored status is still `move.from_status`."""
        token = uuid.uuid4().hex
        values: dict[str, Any] = {
            ":from": _value(move.from_status),
            ":to": _value(move.to_status),
            ":entry": _value([move.entry.to_document()]),
            ":empty": _value([]),
            ":now": _value(utc_text(now)),
            ":token": _value(token),
        }
        sets = ["#status = :to", "history = list_append(if_not_exists(history, :empty), :entry)",
                "updated_at = :now", "transition_token = :token"]  # fmt: skip
        removes = []
        if move.status_reason:
            sets.append("status_reason = :reason")
            values[":reason"] = _value(move.status_reason)
        else:
            removes.append("status_reason")
        if move.implemented_on is not None:
            sets.append("implemented_on = :day")
            values[":day"] = _value(move.implemented_on.isoformat())
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(move.rec_id),
                UpdateExpression=expression,
                ConditionExpression="#status = :from",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if written_by_us(error, "transition_token", token) is not None:
                return  # applied, its answer lost: ours
            current = error.response.get("Item")
            if not current:
                raise RecommendationNotFound(move.rec_id) from None
            raise StatusConflict(move.rec_id, move.from_status, current.get("status", {}).get("S")) from None

    def record_roi(self, rec_id: str, roi: Roi) -> bool:
        """Store a completed measurement once; False if it is stored already or the item is no
        longer implemented."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(rec_id),
                UpdateExpression="SET roi = :roi",
                ConditionExpression="#status = :implemented AND attribute_not_exists(roi)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":roi": _value(_roi_document(roi)), ":implemented": _value("implemented")},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
