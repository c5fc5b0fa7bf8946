"""The billing tables as the finance admin API reads and changes them.

Listings are paginated Query calls on the tables' indexes (billing-objects "by-type", billing-ledger
"by-month", billing-alerts "by-status"), never a Scan. Alert state changes are single conditional
updates: a concurrent retry, or the webhook resolving the alert meanwhile, makes the update fail
cleanly instead of overwriting. Items come back as plain dicts (numbers as Decimal).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter

TOTAL_PREFIX = "TOTAL#"
_deserialize = TypeDeserializer().deserialize
_serialize = TypeSerializer().serialize


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _item(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserialize(value) for key, value in raw.items()}


class BillingReads(AwsAdapter):
    service = "dynamodb"

    def __init__(
        self,
        *,
        ledger_table: str,
        objects_table: str,
        alerts_table: str,
        client: Any | None = None,
        page_size: int | None = None,
    ) -> None:
        super().__init__(client)
        self.ledger_table = ledger_table
        self.objects_table = objects_table
        self.alerts_table = alerts_table
        self.page_size = page_size  # items per Query page; None lets DynamoDB fill 1 MB pages

    # --- listings ---------------------------------------------------------------------------------

    def subscriptions(self) -> Iterator[dict[str, Any]]:
        """Every subscription's stored state (any status), through the by-type index."""
        return self._query(
            TableName=self.objects_table,
            IndexName="by-type",
            KeyConditionExpression="object_type = :type",
            ExpressionAttributeValues={":type": _s("subscription")},
        )

    def ledger_entries(self, month: str) -> Iterator[dict[str, Any]]:
        """The ledger entries of a YYYY-MM month (by-month index), monthly TOTAL# rows left out."""
        for entry in self._query(
            TableName=self.ledger_table,
            IndexName="by-month",
            KeyConditionExpression="#month = :month",
            ExpressionAttributeNames={"#month": "month"},
            ExpressionAttributeValues={":month": _s(month)},
        ):
            if not str(entry.get("entry_key", "")).startswith(TOTAL_PREFIX):
                yield entry

    def alerts_with_status(self, status: str) -> Iterator[dict[str, Any]]:
        """Alerts in one status (by-status index), oldest opened first."""
        return self._query(
            TableName=self.alerts_table,
            IndexName="by-status",
            KeyConditionExpression="#status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": _s(status)},
        )

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        if self.page_size:
            request["PaginationConfig"] = {"PageSize": self.page_size}
        for page in self.client.get_paginator("query").paginate(**request):
            for raw in page.get("Items", []):
                yield _item(raw)

    # --- single items -----------------------------------------------------------------------------

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return self._get(self.alerts_table, {"alert_id": _s(alert_id)})

    def billing_object(self, object_id: str) -> dict[str, Any] | None:
        return self._get(self.objects_table, {"object_id": _s(object_id)})

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        raw = self.client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return None if raw is None else _item(raw)

    # --- alert state changes (each one conditional update) ----------------------------------------

    def claim_retry(self, alert_id: str, *, kinds: Iterable[str], now: datetime, stale_before: datetime) -> int | None:
        """Take the alert for a payment retry: open -> retrying with retry_count + 1, or take over a
        `retrying` claim made before `stale_before` keeping its retry_count. The retry_count to use,
        or None when the alert is in neither state (or not of `kinds`)."""
        kind_values = {f":k{i}": _s(kind) for i, kind in enumerate(kinds)}
        kind_check = f"kind IN ({', '.join(kind_values)})"
        fresh = self._update(
            alert_id,
            "SET #status = :retrying, retry_count = if_not_exists(retry_count, :zero) + :one,"
            " claimed_at = :now, updated_at = :now",
            f"#status = :open AND {kind_check}",
            {
                ":retrying": _s("retrying"),
                ":open": _s("open"),
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":now": _s(_stamp(now)),
                **kind_values,
            },
        )
        if fresh is not None:
            return int(fresh["retry_count"])
        takeover = self._update(
            alert_id,
            "SET claimed_at = :now, updated_at = :now, retry_count = if_not_exists(retry_count, :one)",
            f"#status = :retrying AND (attribute_not_exists(claimed_at) OR claimed_at < :stale) AND {kind_check}",
            {
                ":retrying": _s("retrying"),
                ":stale": _s(_stamp(stale_before)),
                ":one": {"N": "1"},
                ":now": _s(_stamp(now)),
                **kind_values,
            },
        )
        return None if takeover is None else int(takeover["retry_count"])

    def release_retry(self, alert_id: str, *, retry_count: int, error: Mapping[str, Any], now: datetime) -> bool:
        """retrying -> open after a failed attempt, recording why; only while this attempt's claim holds."""
        return (
            self._update(
                alert_id,
                "SET #status = :open, last_retry_error = :error, updated_at = :now REMOVE claimed_at",
                "#status = :retrying AND retry_count = :count",
                {
                    ":open": _s("open"),
                    ":retrying": _s("retrying"),
                    ":count": {"N": str(retry_count)},
                    ":error": _serialize(dict(error)),
                    ":now": _s(_stamp(now)),
                },
            )
            is not None
        )

    def resolve_alert(self, alert_id: str, *, resolved_by: str, now: datetime) -> bool:
        """open or retrying -> resolved. False when it was already resolved (by the webhook, say)."""
        return (
            self._update(
                alert_id,
                "SET #status = :resolved, resolved_at = :now, resolved_by = :by, updated_at = :now REMOVE claimed_at",
                "#status IN (:open, :retrying)",
                {
                    ":resolved": _s("resolved"),
                    ":open": _s("open"),
                    ":retrying": _s("retrying"),
                    ":by": _s(resolved_by),
                    ":now": _s(_stamp(now)),
                },
            )
            is not None
        )

    def claim_resend(self, alert_id: str, *, kinds: Iterable[str], now: datetime) -> int | None:
        """resend_count + 1 on an open alert of `kinds`; the new count, or None when it is not open."""
        kind_values = {f":k{i}": _s(kind) for i, kind in enumerate(kinds)}
        updated = self._update(
            alert_id,
            "SET resend_count = if_not_exists(resend_count, :zero) + :one, last_resend_at = :now, updated_at = :now",
            f"#status = :open AND kind IN ({', '.join(kind_values)})",
            {":open": _s("open"), ":zero": {"N": "0"}, ":one": {"N": "1"}, ":now": _s(_stamp(now)), **kind_values},
        )
        return None if updated is None else int(updated["resend_count"])

    def _update(self, alert_id: str, update: str, condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """The updated item, or None when the condition did not hold (nothing written)."""
        try:
            reply = self.client.update_item(
                TableName=self.alerts_table,
                Key={"alert_id": _s(alert_id)},
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(alert_id) AND {condition}",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _item(reply.get("Attributes", {}))
