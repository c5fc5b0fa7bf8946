"""The first days after `cdk deploy`, end to end on moto and loopback chat: a webhook secret still
holding its placeholder is a setup step (the run completes, nothing pages, the message waits in the
outbox and goes out once the URL is put), and the card says what is not set up yet.
Billing half: the finance channel's billing alerts."""

from __future__ import annotations

import json

import pytest
from finops_guard import cli
from finops_guard.core.adapters import secrets

from tests.conftest import load_handler
from tests.integration.conftest import FakeContext
from tests.integration.first_days_harness import Output, placeholder

pytestmark = pytest.mark.integration


# --- alerts: the anomaly batch (SQS) and the budget guard -----------------------------------------


def test_a_billing_alert_for_a_finance_channel_not_set_up_is_acknowledged_on_the_stream_and_redriven_later(
    deployed, monkeypatch, capsys
):
    # The notifier's Teams secret is the finance channel's (the stack sets it so); here the fixture's.
    placeholder(deployed)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "billing-notifier")
    image = {
        "alert_id": {"S": "invoice_failed#in_1"}, "kind": {"S": "invoice_failed"}, "status": {"S": "open"},
        "customer_id": {"S": "cus_1"}, "amount_minor": {"N": "1234"}, "currency": {"S": "USD"},
        "opened_at": {"S": "2026-11-17T00:00:00+00:00"},
    }  # fmt: skip
    records = [{"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image}}]
    notifier = load_handler("billing_notifier")

    result = notifier.lambda_handler({"Records": records}, FakeContext("finops-guard-test-billing-notifier"))

    assert result == {"batchItemFailures": []}  # not retried into the stream's DLQ: the card is kept
    output = Output(deployed, capsys)
    assert output.metrics["ChatNotConfigured"] == 1 and "ChatDeliveryFailures" not in output.metrics
    [kept] = deployed.aws.client("dynamodb").scan(TableName=deployed.table)["Items"]
    assert (kept["kind"]["S"], kept["status"]["S"]) == ("billing-alert", "failed")

    finance = "finops-guard/test/finance-teams-webhook-url"  # where `outbox redrive` sends finance cards
    deployed.aws.put_secret(finance, deployed.chat.url("/workflows/finance"))
    secrets.clear_cache()
    assert cli.main(["outbox", "redrive", "--stage", "test"]) == 0
    assert [r.path for r in deployed.chat.received] == ["/workflows/finance"]
    assert deployed.chat.received[0].json() == json.loads(kept["payload"]["S"])
