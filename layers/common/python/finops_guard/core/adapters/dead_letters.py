"""The stage's failure queue `finops-guard-<stage>-failures` and the two ways back (operator tool,
`finops-guard dlq`): invoke a function again, or return a message to the anomaly inbox.

What each message means and what redriving it does is decided in finops_guard/failures.py; this
module only moves messages. A message is deleted only after its redrive was accepted (Lambda's 202,
SQS's MessageId); the command makes every message it keeps visible again when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

BATCH = 10


def failure_queue_name(stage: str) -> str:
    return f"finops-guard-{stage}-failures"


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)  # MessageAttributes, as SQS returns them
    sent_at: datetime | None = None  # SQS's SentTimestamp


class FailureQueue:
    def __init__(self, queue_name: str, sqs: Any | None = None) -> None:
        self.queue_name = queue_name
        self._sqs = sqs or boto3.client("sqs")
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def peek(self, limit: int = 100) -> list[QueuedMessage]:
        """Up to `limit` messages, left in the queue (visibility timeout 0)."""
        seen: dict[str, QueuedMessage] = {}
        for _ in range(max(1, limit // BATCH)):
            batch = list(self._receive(visibility_timeout=0))
            fresh = [m for m in batch if m.message_id not in seen]
            if not fresh:
                break
            seen.update((m.message_id, m) for m in fresh)
        return list(seen.values())[:limit]

    def take(self, visibility_timeout: int = 300) -> Iterator[QueuedMessage]:
        """Each message once, hidden for `visibility_timeout` s while it is redriven; stops when a
        receive brings nothing new (empty, or only messages already handed out). The caller deletes
        or `release`s each one."""
        seen: set[str] = set()
        while True:
            fresh = [m for m in self._receive(visibility_timeout=visibility_timeout) if m.message_id not in seen]
            if not fresh:
                return
            seen.update(m.message_id for m in fresh)
            yield from fresh

    def delete(self, message: QueuedMessage) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)

    def release(self, message: QueuedMessage) -> None:
        """Visible again now: a kept message stays in sight of the alarm and of the next `dlq list`."""
        self._sqs.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
        )

    def _receive(self, *, visibility_timeout: int) -> Iterator[QueuedMessage]:
        reply = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        for message in reply.get("Messages", []):
            yield QueuedMessage(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message.get("Body") or "",
                attributes=dict(message.get("MessageAttributes") or {}),
                sent_at=_sent_at((message.get("Attributes") or {}).get("SentTimestamp")),
            )


def _sent_at(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 15:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class AsyncInvoker:
    def __init__(self, lambda_client: Any | None = None) -> None:
        self._lambda = lambda_client or boto3.client("lambda")

    def invoke(self, function_name: str, payload: str) -> None:
        """Queue the event for the function (InvocationType Event); raises unless Lambda accepted it (202)."""
        reply = self._lambda.invoke(FunctionName=function_name, InvocationType="Event", Payload=payload.encode())
        if reply.get("StatusCode") != 202:
            raise RuntimeError(f"Lambda did not accept the event for {function_name}: {reply.get('StatusCode')}")


class InboxSender:
    def __init__(self, sqs: Any | None = None) -> None:
        self._sqs = sqs or boto3.client("sqs")

    def send(self, queue_name: str, body: str) -> None:
        """Put `body` back on the queue; raises unless SQS accepted it (a MessageId)."""
        url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        reply = self._sqs.send_message(QueueUrl=url, MessageBody=body)
        if not reply.get("MessageId"):
            raise RuntimeError(f"SQS did not accept the message for {queue_name}")
