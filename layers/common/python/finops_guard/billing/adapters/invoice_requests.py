"""The invoice-requests table: one item per invoice bot request, keyed by its request id.

Written by the invoice bot (begin, progress) and confirmed once by the Stripe webhook when Stripe
reports the invoice delivered; the confirmation computes the request-to-delivery latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from finops_guard.billing.invoice_bot import InvoiceRequest
from finops_guard.core.adapters.aws import AwsAdapter

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: _deserialize(value) for key, value in item.items()}
    return {key: int(value) if key.endswith(("_minor", "_epoch", "_s")) else value for key, value in values.items()}


class InvoiceRequestTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def begin(self, request: InvoiceRequest, requested_by: str, now: datetime) -> dict[str, Any]:
        """Record the request if it is new; either way return the stored record."""
        item = {
            "request_id": request.request_id,
            "status": "requested",
            "customer": request.customer,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "description": request.description,
            "requested_by": requested_by,
            "requested_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "requested_epoch": int(now.timestamp()),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={key: _serialize(value) for key, value in item.items()},
                ConditionExpression="attribute_not_exists(request_id)",
            )
            return item
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        stored = self.get(request.request_id)
        assert stored is not None
        return stored

    def get(self, request_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def progress(self, request_id: str, status: str, attributes: Mapping[str, Any]) -> None:
        values = {key: value for key, value in attributes.items() if value is not None}
        names = {"#status": "status", **{f"#a{i}": key for i, key in enumerate(values)}}
        params = {":status": _serialize(status), **{f":a{i}": _serialize(v) for i, v in enumerate(values.values())}}
        sets = "".join(f", #a{i} = :a{i}" for i in range(len(values)))
        self.client.update_item(
            TableName=self.table_name,
            Key={"request_id": {"S": request_id}},
            UpdateExpression=f"SET #status = :status{sets}",
            ConditionExpression="attribute_exists(request_id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=params,
        )

    def forget(self, request_id: str) -> None:
        """Drop a request that never got an invoice (Stripe refused the create)."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"request_id": {"S": request_id}},
                ConditionExpression="#status = :requested AND attribute_not_exists(invoice_id)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":requested": {"S": "requested"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def confirm(self, request_id: str, *, event_id: str, event_created: int, now: datetime) -> int | None:
        """Once per request: mark it delivered and return the latency in seconds (Stripe's event time
        minus the request time); None when it was confirmed before or is not a bot request."""
        try:
            reply = self.client.update_item(
                TableName=self.table_name,
                Key={"request_id": {"S": request_id}},
                UpdateExpression=(
                    "SET confirmed_at = :now, confirmed_by = :event, latency_s = :created - requested_epoch"
                ),
                ConditionExpression="attribute_exists(requested_epoch) AND attribute_not_exists(confirmed_at)",
                ExpressionAttributeValues={
                    ":now": {"S": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
                    ":event": {"S": event_id},
                    ":created": {"N": str(event_created)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return int(reply["Attributes"]["latency_s"]["N"])
