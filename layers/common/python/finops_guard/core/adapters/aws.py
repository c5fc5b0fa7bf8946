"""The boto3 client every AWS adapter holds: created on first use (no I/O at import), injectable."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Retries stated here rather than left to the botocore the Lambda runtime ships (boto3 is not
# bundled): releases before standard mode became the default use "legacy" mode, which makes 10
# DynamoDB attempts with up to 25.5 s of back-off, past the Stripe webhook's 15 s timeout. Standard
# mode retries throttling (ProvisionedThroughputExceeded, Throttling, LimitExceeded), 5xx, resets
# and timeouts with jittered back-off: 4 attempts in all (botocore's "max_attempts" would count
# retries only) wait at most 1 + 2 + 4 = 7 s when throttled. botocore waits 60 s for an answer by
# default; here a stalled connection is cut after 5 s and retried.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=3, read_timeout=5)


class AwsAdapter:
    service = ""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client(self.service, config=CLIENT_CONFIG)
        return self._client


def written_by_us(error: ClientError, attribute: str, token: str | None) -> dict[str, Any] | None:
    """The item a ConditionalCheckFailedException returned (ReturnValuesOnConditionCheckFailure=ALL_OLD)
    when it carries our own `token`: DynamoDB applied our conditional write but its answer was lost,
    and botocore's retry failed the condition against it. None when someone else's write is there."""
    item: dict[str, Any] = error.response.get("Item", {})
    return item if token is not None and item.get(attribute, {}).get("S") == token else None
