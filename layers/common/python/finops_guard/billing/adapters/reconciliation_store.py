"""The reconciliation's DynamoDB side: the ledger read month by month, the stored result, the alert.

Ledger rows come from the `by-month` index one Query page at a time (a paginator, projected to the
attributes the comparison needs), so a run holds one page, never the month. The result is written
twice to billing-objects: `reconciliation#latest` (only if no newer run has written it) and
`reconciliation#<YYYY-MM-DD>`. The alert's state changes are conditional updates, never
read-then-write: a concurrent or repeated run cannot open a second card or resolve a fresh alert.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from finops_guard.billing.reconciliation import ALERT_KIND, LATEST_ID, OBJECT_TYPE, TOTAL_PREFIX, ReconciliationResult
from finops_guard.core.adapters.aws import AwsAdapter

LEDGER_INDEX = "by-month"
ALERTS_INDEX = "by-status"
_FIELDS = ("customer_id", "entry_key", "kind", "amount_minor", "currency", "source_id", "invoice_id")
_serialize = TypeSerializer().serialize


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _stamp(moment: datetime) -> str:
    """Alert timestamps as the webhook writes them (the by-status index sorts on opened_at)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "ConditionalCheckFailedException")


def ledger_row(item: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry (DynamoDB attribute map) as the plain values the domain compares."""
    return {
        "customer_id": item["customer_id"]["S"],
        "entry_key": item["entry_key"]["S"],
        "kind": item.get("kind", {}).get("S"),
        "amount_minor": int(item.get("amount_minor", {}).get("N", "0")),
        "currency": item.get("currency", {}).get("S", ""),
        "source_id": item.get("source_id", {}).get("S"),
        "invoice_id": item.get("invoice_id", {}).get("S"),
    }


class ReconciliationStore(AwsAdapter):
    service = "dynamodb"

    def __init__(self, *, ledger_table: str, objects_table: str, alerts_table: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.ledger_table = ledger_table
        self.objects_table = objects_table
        self.alerts_table = alerts_table

    # --- the ledger ---------------------------------------------------------------------------------

    def ledger_entries(self, months: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every ledger entry booked in `months` ("YYYY-MM"), page by page; monthly totals skipped."""
        paginator = self.client.get_paginator("query")
        names = {f"#f{i}": name for i, name in enumerate(_FIELDS)}
        for month in months:
            pages = paginator.paginate(
                TableName=self.ledger_table,
                IndexName=LEDGER_INDEX,
                KeyConditionExpression="#month = :month",
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames={**names, "#month": "month"},
                ExpressionAttributeValues={":month": _s(month)},
            )
            for page in pages:
                for item in page.get("Items", []):
                    if not item["entry_key"]["S"].startswith(TOTAL_PREFIX):
                        yield ledger_row(item)

    # --- the result ---------------------------------------------------------------------------------

    def save_result(self, result: ReconciliationResult) -> None:
        """`reconciliation#latest` and `reconciliation#<date>`; an older run never overwrites a newer one."""
        attributes = {key: _serialize(value) for key, value in result.record().items()}
        attributes["object_type"] = _s(OBJECT_TYPE)
        attributes["updated_at"] = _s(_stamp(datetime.now(UTC)))
        for object_id in (LATEST_ID, result.dated_id):
            try:
                self.client.put_item(
                    TableName=self.objects_table,
                    Item={**attributes, "object_id": _s(object_id)},
                    ConditionExpression="attribute_not_exists(object_id) OR ran_at <= :ran_at",
                    ExpressionAttributeValues={":ran_at": attributes["ran_at"]},
                )
            except ClientError as error:
                if not _conditional_failed(error):
                    raise

    # --- the alert ----------------------------------------------------------------------------------

    def raise_alert(self, result: ReconciliationResult) -> str:
        """Open (or re-open) the day's ledger_mismatch alert, or refresh its detail if it is open.
        'opened' | 'reopened' | 'updated'. Only opening or re-opening makes the stream post a card."""
        key = {"alert_id": _s(result.alert_id)}
        stamp = _s(_stamp(result.ran_at))
        detail = _serialize(result.alert_detail())
        for _ in range(3):  # each attempt is one conditional write; another run may flip the status between
            try:
                reply = self.client.update_item(
                    TableName=self.alerts_table,
                    Key=key,
                    UpdateExpression="SET kind = :kind, #status = :open, opened_at = :now, detail = :detail,"
                    " updated_at = :now REMOVE resolved_at",
                    ConditionExpression="attribute_not_exists(alert_id) OR #status <> :open",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":kind": _s(ALERT_KIND),
                        ":open": _s("open"),
                        ":detail": detail,
                        ":now": stamp,
                    },
                    ReturnValues="UPDATED_OLD",
                )
                return "reopened" if reply.get("Attributes") else "opened"
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
            try:
                self.client.update_item(
                    TableName=self.alerts_table,
                    Key=key,
                    UpdateExpression="SET detail = :detail, updated_at = :now",
                    ConditionExpression="#status = :open",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":open": _s("open"), ":detail": detail, ":now": stamp},
                )
                return "updated"
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
        raise RuntimeError(f"alert {result.alert_id} kept changing state; the next run will retry")

    def resolve_alerts(self, now: datetime, *, keep: str | None = None) -> list[str]:
        """Resolve every open ledger_mismatch alert except `keep`; returns the ids this call resolved."""
        paginator = self.client.get_paginator("query")
        candidates = [
            item["alert_id"]["S"]
            for page in paginator.paginate(
                TableName=self.alerts_table,
                IndexName=ALERTS_INDEX,
                KeyConditionExpression="#status = :open",
                FilterExpression="kind = :kind",
                ProjectionExpression="alert_id",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":open": _s("open"), ":kind": _s(ALERT_KIND)},
            )
            for item in page.get("Items", [])
        ]
        resolved = []
        for alert_id in sorted(set(candidates) - {keep}):
            try:
                self.client.update_item(
                    TableName=self.alerts_table,
                    Key={"alert_id": _s(alert_id)},
                    UpdateExpression="SET #status = :resolved, resolved_at = :now, updated_at = :now",
                    ConditionExpression="#status = :open AND kind = :kind",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":resolved": _s("resolved"),
                        ":open": _s("open"),
                        ":kind": _s(ALERT_KIND),
                        ":now": _s(_stamp(now)),
                    },
                )
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
                continue
            resolved.append(alert_id)
        return resolved
