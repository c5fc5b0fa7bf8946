"""The chat outbox in DynamoDB: every outgoing message is kept until a 2xx marks it delivered.

Item: message_id (key), channel, kind, payload (JSON text), secret_name (a team channel's webhook
secret, absent for the deployment's own channels), status (sending|delivered|failed),
attempts, created_at, updated_at, lease_until, last_error, delivered_at, expires_at (TTL, set only
once delivered: undelivered messages are kept until someone re-sends them).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter, written_by_us
from finops_guard.core.delivery import ChatMessage

LEASE = timedelta(minutes=5)
KEEP_DELIVERED = timedelta(days=90)
MAX_ERROR = 1000


@dataclass(frozen=True)
class KeptMessage:
    message: ChatMessage
    status: str
    attempts: int
    updated_at: str
    last_error: str | None


def _iso(now: datetime) -> str:
    return now.isoformat(timespec="seconds")


class DynamoOutbox(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def claim(self, message: ChatMessage, now: datetime) -> bool:
        """Write the message as `sending`, unless it was delivered or another sender holds its lease.
        The claim carries a fresh token: if DynamoDB applied it but the answer was lost, botocore's
        retry fails the condition against our own claim, and the token tells the two cases apart."""
        token = uuid.uuid4().hex
        # A team channel's message remembers its secret, so a redrive posts it to the same team.
        destination = {":secret": {"S": message.secret_name}} if message.secret_name else {}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"message_id": {"S": message.message_id}},
                UpdateExpression=(
                    "SET #status = :sending, channel = :channel, kind = :kind, payload = :payload,"
                    " lease_until = :lease, updated_at = :now, created_at = if_not_exists(created_at, :now),"
                    " attempts = if_not_exists(attempts, :zero), claim_token = :token"
                    + (", secret_name = :secret" if destination else "")
                ),
                ConditionExpression=(
                    "attribute_not_exists(message_id) OR"
                    " (#status <> :delivered AND (#status <> :sending OR lease_until < :now))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":sending": {"S": "sending"},
                    ":delivered": {"S": "delivered"},
                    ":channel": {"S": message.channel},
                    ":kind": {"S": message.kind},
                    ":payload": {"S": json.dumps(message.payload, ensure_ascii=False, separators=(",", ":"))},
                    ":lease": {"S": _iso(now + LEASE)},
                    ":now": {"S": _iso(now)},
                    ":zero": {"N": "0"},
                    ":token": {"S": token},
                    **destination,
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return written_by_us(error, "claim_token", token) is not None
            raise
        return True

    def mark_delivered(self, message_id: str, now: datetime, attempts: int) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"message_id": {"S": message_id}},
            UpdateExpression=(
                "SET #status = :delivered, delivered_at = :now, updated_at = :now, expires_at = :expires,"
                " attempts = attempts + :n REMOVE lease_until, last_error"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":delivered": {"S": "delivered"},
                ":now": {"S": _iso(now)},
                ":expires": {"N": str(int((now + KEEP_DELIVERED).timestamp()))},
                ":n": {"N": str(attempts)},
            },
        )

    def mark_failed(self, message_id: str, now: datetime, reason: str, attempts: int) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"message_id": {"S": message_id}},
            UpdateExpression=(
                "SET #status = :failed, last_error = :reason, updated_at = :now, attempts = attempts + :n"
                " REMOVE lease_until"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":failed": {"S": "failed"},
                ":reason": {"S": reason[:MAX_ERROR]},
                ":now": {"S": _iso(now)},
                ":n": {"N": str(attempts)},
            },
        )

    def get(self, message_id: str) -> KeptMessage | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"message_id": {"S": message_id}}, ConsistentRead=True
        ).get("Item")
        return _kept(item) if item else None

    def undelivered(self) -> list[KeptMessage]:
        """Messages still to send (failed, or `sending` whose sender died). Operator tool: a Scan of
        a small table, never on a hot path."""
        kept: list[KeptMessage] = []
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table_name,
            FilterExpression="#status <> :delivered",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":delivered": {"S": "delivered"}},
            ConsistentRead=True,
        ):
            kept.extend(_kept(item) for item in page.get("Items", []))
        return sorted(kept, key=lambda k: k.message.message_id)


def _kept(item: dict[str, Any]) -> KeptMessage:
    message = ChatMessage(
        message_id=item["message_id"]["S"],
        channel=item["channel"]["S"],
        kind=item.get("kind", {}).get("S", "unknown"),
        payload=json.loads(item["payload"]["S"]),
        secret_name=item.get("secret_name", {}).get("S"),
    )
    return KeptMessage(
        message=message,
        status=item["status"]["S"],
        attempts=int(item.get("attempts", {}).get("N", "0")),
        updated_at=item.get("updated_at", {}).get("S", ""),
        last_error=item.get("last_error", {}).get("S"),
    )
