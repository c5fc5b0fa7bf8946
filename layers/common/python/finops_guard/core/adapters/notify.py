"""Non-webhook channels: budget alert e-mail through the finance SNS topic, and the EventBridge
`Budget Exceeded` event customers attach their own automation to."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_guard.core.adapters.aws import AwsAdapter
from finops_guard.core.delivery import ChatMessage, PostFailed

EVENT_SOURCE = "finops.guard"
BUDGET_EXCEEDED = "Budget Exceeded"


def sns_subject(text: str) -> str:
    """SNS subjects must be ASCII, one line, under 100 characters, starting with a letter, digit or
    punctuation: budget names and dashes are folded to fit (the message body keeps them intact)."""
    folded = unicodedata.normalize("NFKD", text.replace("—", "-").replace("–", "-"))
    ascii_text = "".join(ch for ch in folded.encode("ascii", "ignore").decode() if ch.isprintable())
    return (ascii_text.strip() or "FinOps Guard alert")[:99]


class SnsEmailPoster(AwsAdapter):
    service = "sns"

    """Posts `{"subject", "message"}` payloads to the alert topic (its e-mail subscribers receive them)."""

    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.topic_arn = topic_arn

    def post(self, message: ChatMessage) -> int:
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(message.payload["subject"]),
                Message=message.payload["message"],
            )
        except (ClientError, BotoCoreError) as error:
            failure = PostFailed(f"email: SNS publish failed ({type(error).__name__})")
            failure.attempts = 1  # type: ignore[attr-defined]  # botocore already retried
            raise failure from None
        return 1


class EventBridgePublisher(AwsAdapter):
    service = "events"

    def __init__(self, bus_name: str = "default", client: Any | None = None) -> None:
        super().__init__(client)
        self.bus_name = bus_name

    def budget_exceeded(self, detail: dict[str, Any]) -> None:
        response = self.client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": BUDGET_EXCEEDED,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                    "EventBusName": self.bus_name,
                    "Resources": [],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise RuntimeError(f"EventBridge refused the Budget Exceeded event: {entry.get('ErrorCode')}")
