"""Nothing lost, nothing doubled: faults injected between the handlers and their dependencies.

AWS calls go through devtools/fault_proxy.py (loopback, between boto3 and the embedded AWS), chat
posts to the loopback recorder. For each fault: the call is retried within its bound (attempts
counted on the wire), then alarmed (the metric the alarm watches is emitted, or the invocation
raises so the Errors alarm fires and Lambda / API Gateway / Stripe retry), and once the fault
clears the retry or `finops-guard report resend` delivers exactly once. Back-off waits are recorded,
not slept, so the module stays fast. The weekly report's chat 429/5xx/reset cases live in
test_weekly_report_handler.py and are not repeated here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from finops_guard import cli
from finops_guard.core.delivery import DeliveryFailed

from devtools import fault_proxy as fp
from devtools.lambda_runner import FakeContext
from devtools.sqs_events import sqs_event
from tests.conftest import load_event, load_handler
from tests.integration.conftest import TEAMS_SECRET
from tests.integration.fault_harness import (
    COST_EXPLORER_ATTEMPTS,
    DYNAMODB_ATTEMPTS,
    SECRETS_ATTEMPTS,
    emitted,
    fresh_clients,
    outbox_items,
)

pytestmark = pytest.mark.integration

WEEKLY_MESSAGE = "weekly-report/2026-11-15/teams"


# --- Cost Explorer throttling (the weekly report) -------------------------------------------------


def test_cost_explorer_throttling_is_retried_and_one_card_is_posted(faults):
    faults.seed_costs()
    faults.proxy.inject("GetCostAndUsage", fp.cost_explorer_limit_exceeded(), times=2)
    result = faults.invoke()
    calls = faults.proxy.requests("GetCostAndUsage")
    # The main request, twice throttled then answered; then the month's credits, refunds and tax.
    assert [s.outcome for s in calls] == ["injected", "injected", "forwarded", "forwarded"]
    assert len(faults.botocore_waits) == 2 and all(0 <= w <= 2 for w in faults.botocore_waits)
    assert result["delivered"] == [WEEKLY_MESSAGE] and len(faults.chat.received) == 1


def test_persistent_cost_explorer_throttling_fails_the_run_posts_nothing_and_the_rerun_posts_once(faults, capsys):
    faults.seed_costs()
    faults.proxy.inject("GetCostAndUsage", fp.cost_explorer_limit_exceeded(), times=COST_EXPLORER_ATTEMPTS + 5)
    with pytest.raises(ClientError, match="LimitExceededException"):
        faults.invoke()  # raises: Lambda's Errors alarm fires and the schedule's retry policy runs it again
    assert faults.proxy.attempts("GetCostAndUsage") == COST_EXPLORER_ATTEMPTS
    assert len(faults.botocore_waits) == COST_EXPLORER_ATTEMPTS - 1
    assert faults.chat.received == [] and outbox_items(faults) == []
    assert "WeeklyReportPosted" not in emitted(capsys)

    faults.proxy.clear()
    assert faults.invoke()["delivered"] == [WEEKLY_MESSAGE]
    assert faults.invoke()["skipped"] == [WEEKLY_MESSAGE]  # Lambda's own retry of the failed event
    assert len(faults.chat.received) == 1


# --- DynamoDB throttling on the outbox (the weekly report) ----------------------------------------


def test_throttled_outbox_writes_are_retried_and_one_card_is_posted(faults):
    faults.seed_costs()
    faults.proxy.inject("UpdateItem", fp.dynamodb_throughput_exceeded(), times=2, contains=":sending")  # claim
    faults.proxy.inject("UpdateItem", fp.dynamodb_throttling(), times=1, contains="delivered_at")  # mark delivered
    result = faults.invoke()
    assert [s.outcome for s in faults.proxy.requests("UpdateItem")] == [
        "injected", "injected", "forwarded", "injected", "forwarded"
    ]  # fmt: skip
    assert result["delivered"] == [WEEKLY_MESSAGE] and len(faults.chat.received) == 1
    [kept] = outbox_items(faults)
    assert kept["status"]["S"] == "delivered"


def test_persistent_outbox_throttling_fails_the_run_before_posting_and_the_rerun_posts_once(faults):
    faults.seed_costs()
    faults.proxy.inject("UpdateItem", fp.dynamodb_throughput_exceeded(), times=DYNAMODB_ATTEMPTS + 5)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        faults.invoke()
    assert faults.proxy.attempts("UpdateItem") == DYNAMODB_ATTEMPTS
    assert faults.chat.received == [] and outbox_items(faults) == []  # never posted without its claim

    faults.proxy.clear()
    assert faults.invoke()["delivered"] == [WEEKLY_MESSAGE]
    assert faults.invoke()["skipped"] == [WEEKLY_MESSAGE]
    assert len(faults.chat.received) == 1


def test_an_outbox_claim_whose_answer_is_lost_still_posts_the_card_once(faults):
    """Fix: the claim writes a fresh `claim_token` (uuid4) and asks for
    ReturnValuesOnConditionCheckFailure="ALL_OLD"; on ConditionalCheckFailedException it returns
    `error.response["Item"]["claim_token"] == token` (our own retried claim) instead of False."""
    faults.seed_costs()
    faults.proxy.inject("UpdateItem", fp.lost_response(), times=1, contains=":sending")
    result = faults.invoke()
    assert [s.outcome for s in faults.proxy.requests("UpdateItem")][:2] == ["lost", "forwarded"]
    assert result["delivered"] == [WEEKLY_MESSAGE] and len(faults.chat.received) == 1


# --- Secrets Manager unavailable -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        fp.secrets_manager_error("ServiceUnavailable", 503),
        fp.secrets_manager_error("InternalServiceError", 500),
        fp.secrets_manager_error("ThrottlingException", 400),
    ],
    ids=["503", "500", "throttled"],
)
def test_chat_webhook_secret_unavailable_keeps_the_card_fails_the_run_and_the_resend_posts_once(faults, capsys, fault):
    faults.seed_costs()
    faults.proxy.inject("GetSecretValue", fault, times=SECRETS_ATTEMPTS + 5, contains=TEAMS_SECRET)
    with pytest.raises(DeliveryFailed, match=f"is unavailable right now \\({fault.name}\\)"):
        faults.invoke()
    assert faults.proxy.attempts("GetSecretValue") == SECRETS_ATTEMPTS
    metrics = emitted(capsys)
    assert metrics["ChatDeliveryFailures"] == 1 and metrics["ChatDeliveryFailures@stage"] == 1
    [kept] = outbox_items(faults)
    assert (kept["message_id"]["S"], kept["status"]["S"]) == (WEEKLY_MESSAGE, "failed")
    assert faults.chat.received == []

    faults.proxy.clear()
    assert cli.main(["report", "resend"]) == 0
    assert len(faults.chat.received) == 1 and faults.chat.received[0].json() == json.loads(kept["payload"]["S"])
    assert faults.invoke()["skipped"] == [WEEKLY_MESSAGE] and len(faults.chat.received) == 1


# --- a lost answer on the anomaly record ------------------------------------------------------------


def test_an_anomaly_record_whose_answer_is_lost_still_alerts_once(faults, monkeypatch):
    """Fix: write an `alert_token` (uuid4) with impact_alerted and ask for
    ReturnValuesOnConditionCheckFailure="ALL_OLD": an old item carrying our token is our own alert
    ("new" or "updated" as the other fields say), not a silent sighting."""
    table = faults.aws.create_anomalies_table()
    monkeypatch.setenv("FINOPSGUARD_ANOMALIES_TABLE", table)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "anomaly-alerts")
    fresh_clients()
    anomaly = load_event("anomaly_eventbridge.json")
    anomaly["time"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    faults.proxy.inject("UpdateItem", fp.lost_response(), times=1, contains="realert_at = :next")
    handler = load_handler("anomaly_alerts")
    result = handler.lambda_handler(sqs_event([json.dumps(anomaly)]), FakeContext("finops-guard-test-anomaly-alerts"))
    assert result == {"batchItemFailures": []} and len(faults.chat.received) == 1


def test_the_proxy_names_query_and_json_protocol_operations(faults):
    boto3.client("sns").create_topic(Name="fault-proxy-naming")  # query protocol: the Action field
    boto3.client("dynamodb").list_tables()  # JSON protocol: the X-Amz-Target header
    seen = [(s.service, s.operation, s.outcome) for s in faults.proxy.requests()]
    assert seen == [("sns", "CreateTopic", "forwarded"), ("dynamodb", "ListTables", "forwarded")]
