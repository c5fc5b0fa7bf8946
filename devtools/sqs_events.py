"""SQS event records as Lambda receives them from the anomaly inbox (for tests, demo, bench)."""

from __future__ import annotations

import uuid
from typing import Any

INBOX_ARN = "arn:aws:sqs:us-east-1:123456789012:finops-guard-test-anomaly-inbox"


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{i}:{body}")),
                "receiptHandle": f"handle-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795286400000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": INBOX_ARN,
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
