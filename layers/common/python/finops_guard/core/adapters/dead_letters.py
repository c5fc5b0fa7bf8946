"""Dead-letter queues: list what failed every retry, and redrive it (operator tool, `finops-guard dlq`).

Each function's asynchronous failures land in `finops-guard-<stage>-<function>-dlq` with the
original event as the message body; redriving invokes the function again with that event
(asynchronously, as the schedule or stream did) and deletes the message once Lambda accepted it.
A message whose re-invoke is refused stays in the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    error: str  # Lambda's ErrorCode / ErrorMessage attributes, when present


class DeadLetterQueue:
    def __init__(self, queue_name: str, sqs: Any | None = None) -> None:
        self.queue_name = queue_name
        self._sqs = sqs or boto3.client("sqs")
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def peek(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` messages, left in the queue (visibility timeout 0)."""
        seen: dict[str, DeadLetter] = {}
        for _ in range(max(1, limit // BATCH)):
            batch = list(self._receive(visibility_timeout=0))
            fresh = [m for m in batch if m.message_id not in seen]
            if not fresh:
                break
            seen.update((m.message_id, m) for m in fresh)
        return list(seen.values())[:limit]

    def take(self, visibility_timeout: int = 60) -> Iterator[DeadLetter]:
        """Messages hidden for `visibility_timeout` s while they are redriven; stops when the queue is empty."""
        while batch := list(self._receive(visibility_timeout=visibility_timeout)):
            yield from batch

    def delete(self, letter: DeadLetter) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=letter.receipt_handle)

    def _receive(self, *, visibility_timeout: int) -> Iterator[DeadLetter]:
        reply = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
        )
        for message in reply.get("Messages", []):
            attributes = message.get("MessageAttributes") or {}
            error = " ".join(
                str(attributes[name].get("StringValue", ""))
                for name in ("ErrorCode", "ErrorMessage")
                if name in attributes
            )
            yield DeadLetter(message["MessageId"], message["ReceiptHandle"], message.get("Body") or "", error)


class AsyncInvoker:
    def __init__(self, lambda_client: Any | None = None) -> None:
        self._lambda = lambda_client or boto3.client("lambda")

    def invoke(self, function_name: str, payload: str) -> None:
        reply = self._lambda.invoke(FunctionName=function_name, InvocationType="Event", Payload=payload.encode())
        if reply.get("StatusCode") != 202:
            raise RuntimeError(f"Lambda did not accept the event for {function_name}: {reply.get('StatusCode')}")
