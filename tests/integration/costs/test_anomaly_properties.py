"""Issue 15 against the embedded AWS: the same generated inputs as tests/unit/costs/test_anomaly_hardening.py,
fewer of them (each case is real DynamoDB and HTTP on 127.0.0.1), through the function's Lambda entry point.

Anomaly batches (both shapes, good and bad mixed) through the SQS handler: exactly the bad
records come back in batchItemFailures, each batch with a good anomaly posts one card to the
loopback Teams endpoint holding each good anomaly once, and each is stored as delivered.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given

from tests.conftest import load_handler
from tests.integration.conftest import MOTO, FakeContext
from tests.integration.costs.test_anomaly_handler import anomalies  # noqa: F401 - fixture
from tests.unit.costs.test_anomaly_hardening import batches, with_issue_batches

pytestmark = pytest.mark.integration
RUN = itertools.count()


# --- anomaly batches ------------------------------------------------------------------------------


def sqs_batch(bodies: list[str], run: int) -> dict:
    return {"Records": [{"messageId": f"m-{run}-{i}", "body": body, "eventSource": "aws:sqs"}
                        for i, body in enumerate(bodies)]}  # fmt: skip


def stored(deployed, anomaly_id: str) -> dict | None:
    client = deployed.aws.client("dynamodb")
    return client.get_item(TableName=deployed.anomalies_table, Key={"anomaly_id": {"S": anomaly_id}}).get("Item")


def rows(card: dict) -> int:
    """How many anomalies a posted Teams card holds: one, or a digest's rows."""
    body = card["attachments"][0]["content"]["body"]
    return 1 if body[0]["text"].startswith("Cost anomaly") else len(body[2]["facts"])


@MOTO
@given(batch=batches())
@with_issue_batches
def test_a_mixed_batch_through_the_handler_fails_exactly_its_bad_records_and_posts_each_good_one_once(
    anomalies,  # noqa: F811
    batch,
):
    bodies, good_ids, bad = batch
    run = next(RUN)
    prefix = f"run{run}x"  # the table outlives the example: fresh anomaly ids each time
    bodies = [body.replace("good-", prefix) for body in bodies]
    good = {anomaly_id.replace("good-", prefix) for anomaly_id in good_ids}
    posted_before = len(anomalies.chat.received)
    handler = load_handler("anomaly_alerts")
    result = handler.lambda_handler(sqs_batch(bodies, run), FakeContext("finops-guard-test-anomaly-alerts"))
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == [f"m-{run}-{record_id.removeprefix('sqs-')}" for record_id in bad]
    cards = [r.json() for r in anomalies.chat.received[posted_before:]]
    if good:
        assert len(cards) == 1 and rows(cards[0]) == len(good)
    else:
        assert cards == []
    for anomaly_id in good:
        item = stored(anomalies, anomaly_id)
        assert item is not None and item["delivered"]["BOOL"] is True
