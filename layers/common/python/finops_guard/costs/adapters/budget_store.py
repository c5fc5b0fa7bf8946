"""Budgets and their alert state in DynamoDB.

Budgets table: pk = "BUDGET", sk budget_id, the budget's canonical JSON in `document`: one Query
lists them all (no Scan), and apply/put compare documents so re-applying a file writes nothing.
Budget alerts table: pk budget_id, sk alert_key = "<period>#<kind>#<threshold>" for fired alerts
(conditional puts), and sk "STATUS" for the latest evaluation the weekly card shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter
from finops_guard.costs.budgets import Budget, BudgetError, parse_budget

if TYPE_CHECKING:  # the guard's types; the weekly report reads statuses without loading the guard
    from finops_guard.costs.budget_guard import AlertRecord, BudgetStatus

PARTITION = "BUDGET"
STATUS_KEY = "STATUS"
BATCH_GET = 100
BATCH_WRITE = 25


class BudgetConflict(RuntimeError):
    """The stored budget changed since it was read (a concurrent `apply` or `add`)."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": str(value)}


class BudgetTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def all(self) -> list[Budget]:
        """Every valid stored budget. Use `load` to also learn which stored documents are invalid."""
        return self.load()[0]

    def load(self) -> tuple[list[Budget], list[BudgetError]]:
        """(valid budgets, one error per stored document that no longer validates, e.g. hand-edited):
        one bad item must not stop the others from being guarded."""
        budgets, errors = [], []
        for budget_id, document in self._documents():
            try:
                budgets.append(parse_budget(json.loads(document), f"stored budget {budget_id}"))
            except (BudgetError, ValueError) as error:
                errors.append(error if isinstance(error, BudgetError) else BudgetError(budget_id, str(error)))
        return budgets, errors

    def all_with_documents(self) -> list[tuple[Budget, str]]:
        """Stored budgets with their exact stored text (for `apply`, which compares documents)."""
        return [
            (parse_budget(json.loads(document), f"stored budget {budget_id}"), document)
            for budget_id, document in self._documents()
        ]

    def _documents(self) -> list[tuple[str, str]]:
        found = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(PARTITION)},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                found.append((item["budget_id"]["S"], item["document"]["S"]))
        return found

    def get(self, budget_id: str) -> Budget | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": _s(PARTITION), "budget_id": _s(budget_id)}, ConsistentRead=True
        ).get("Item")
        return parse_budget(json.loads(item["document"]["S"])) if item else None

    def put(self, budget: Budget, *, previous: str | None, now: datetime) -> None:
        """Create (previous=None) or replace the budget whose stored document is `previous`."""
        condition = "attribute_not_exists(budget_id)" if previous is None else "document = :previous"
        values = {":previous": _s(previous)} if previous is not None else {}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(PARTITION),
                    "budget_id": _s(budget.budget_id),
                    "document": _s(budget.canonical_json()),
                    "updated_at": _s(now.isoformat(timespec="seconds")),
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise BudgetConflict(f"budget {budget.budget_id!r} changed meanwhile; read it again") from None
            raise

    def put_many(self, budgets: Sequence[Budget], *, now: datetime) -> None:
        """Bulk load (demo, benchmarks, first import): unconditional, 25 per request."""
        with_keys = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": _s(PARTITION),
                        "budget_id": _s(b.budget_id),
                        "document": _s(b.canonical_json()),
                        "updated_at": _s(now.isoformat(timespec="seconds")),
                    }
                }
            }
            for b in budgets
        ]
        for start in range(0, len(with_keys), BATCH_WRITE):
            pending = {self.table_name: with_keys[start : start + BATCH_WRITE]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def delete(self, budget_id: str) -> bool:
        response = self.client.delete_item(
            TableName=self.table_name,
            Key={"pk": _s(PARTITION), "budget_id": _s(budget_id)},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response


class BudgetAlertTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"budget_id": _s(b), "alert_key": _s(k)} for b, k in unique[start : start + BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items.extend(response.get("Responses", {}).get(self.table_name, []))
                request = response.get("UnprocessedKeys") or {}
        return items

    def get_alerts(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], AlertRecord]:
        from finops_guard.costs.budget_guard import AlertRecord

        records = {}
        for item in self._batch_get(keys):
            record = AlertRecord(
                budget_id=item["budget_id"]["S"],
                key=item["alert_key"]["S"],
                amount=Decimal(item["amount"]["N"]),
                message_ids=tuple(item.get("message_ids", {}).get("SS", ())),
                delivered=item.get("delivered", {}).get("BOOL", False),
                created_at=item.get("created_at", {}).get("S", ""),
            )
            records[(record.budget_id, record.key)] = record
        return records

    def record_alerts(self, records: Sequence[AlertRecord], expires_at: int) -> bool:
        """All of one firing's records, or none: False when any already exists (alerted before)."""
        items = []
        for record in records:
            item = {
                "budget_id": _s(record.budget_id),
                "alert_key": _s(record.key),
                "amount": _n(record.amount),
                "delivered": {"BOOL": False},
                "created_at": _s(record.created_at),
                "expires_at": _n(expires_at),
            }
            if record.message_ids:
                item["message_ids"] = {"SS": list(record.message_ids)}
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(alert_key)",
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons", [])
            if error.response["Error"]["Code"] == "TransactionCanceledException" and any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                return False
            raise
        return True

    def mark_delivered(self, budget_id: str, key: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"budget_id": _s(budget_id), "alert_key": _s(key)},
            UpdateExpression="SET delivered = :true",
            ConditionExpression="attribute_exists(alert_key)",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    def rearm(self, record: AlertRecord) -> bool:
        """Delete a fired alert, unless it was re-recorded meanwhile at another amount."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"budget_id": _s(record.budget_id), "alert_key": _s(record.key)},
                ConditionExpression="amount = :amount",
                ExpressionAttributeValues={":amount": _n(record.amount)},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_statuses(self, statuses: Sequence[BudgetStatus], now: datetime) -> None:
        requests = [{"PutRequest": {"Item": status_item(s, now)}} for s in statuses]
        for start in range(0, len(requests), BATCH_WRITE):
            pending = {self.table_name: requests[start : start + BATCH_WRITE]}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    def get_statuses(self, budget_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Latest evaluation per budget as plain values (strings for money)."""
        out = {}
        for item in self._batch_get([(b, STATUS_KEY) for b in budget_ids]):
            out[item["budget_id"]["S"]] = json.loads(item["status"]["S"])
        return out


def status_item(status: BudgetStatus, now: datetime) -> dict[str, Any]:
    forecast = status.forecast.trend_total
    summary = {
        "period": status.period.key,
        "as_of": status.period.as_of.isoformat(),
        "currency": status.currency,
        "amount": str(status.budget.amount),
        "actual": str(status.actual),
        "forecast": str(forecast.likely),
        "forecast_low": str(forecast.low),
        "forecast_high": str(forecast.high),
        "level": str(forecast.level),
        "runway_days": None if status.runway_days is None else str(status.runway_days),
        "error": status.error,
        "evaluated_at": now.isoformat(timespec="seconds"),
    }
    return {
        "budget_id": _s(status.budget.budget_id),
        "alert_key": _s(STATUS_KEY),
        "status": _s(json.dumps(summary, separators=(",", ":"))),
    }
