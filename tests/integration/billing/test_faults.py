"""Nothing lost, nothing doubled: faults injected between the handlers and their dependencies.

AWS calls go through devtools/fault_proxy.py (loopback, between boto3 and the embedded AWS), chat
posts to the loopback recorder. For each fault: the call is retried within its bound (attempts
counted on the wire), then alarmed (the metric the alarm watches is emitted, or the invocation
raises so the Errors alarm fires and Lambda / API Gateway / Stripe retry), and once the fault
clears the retry or `finops-guard report resend` delivers exactly once. Back-off waits are recorded,
not slept, so the module stays fast. Billing half: the billing notifier's chat faults, the Stripe
webhook's ledger transaction, the signing secret, dunning claims (the cost half's are in
tests/integration/costs/test_faults.py).
"""

from __future__ import annotations

import copy
import json
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from finops_guard import cli
from finops_guard.billing.adapters import billing_store
from finops_guard.billing.adapters.stripe_api import StripeApi
from finops_guard.core.adapters import aws as aws_adapter
from finops_guard.core.adapters import chat as chat_adapter
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from devtools import fault_proxy as fp
from devtools import stripe_events as se
from devtools.chat_recorder import Reply
from devtools.lambda_runner import FakeContext
from devtools.stripe_fake import StripeFake
from tests.conftest import load_handler
from tests.integration.billing.test_billing_ops import SENDER, STRIPE_KEY_SECRET, T0  # the dunning run's
from tests.integration.fault_harness import (
    CHAT_ATTEMPTS,
    DYNAMODB_ATTEMPTS,
    SECRETS_ATTEMPTS,
    emitted,
    fresh_clients,
    outbox_items,
)

pytestmark = pytest.mark.integration

SIGNING_SECRET = "finops-guard/test/stripe-webhook-secret"


@pytest.fixture
def ledger(faults, monkeypatch):
    """The billing tables and the Stripe signing secret, as the webhook and the notifier see them."""
    tables = faults.aws.create_billing_tables()
    faults.aws.put_secret(SIGNING_SECRET, se.TEST_SECRET)
    env = {
        "FINOPSGUARD_STRIPE_SECRET_NAME": SIGNING_SECRET,
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": tables["invoice_requests"],
        "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME", raising=False)
    monkeypatch.delenv("FINOPSGUARD_BILLING_THRESHOLDS", raising=False)
    fresh_clients()
    faults.tables = tables
    return faults


# --- helpers ---------------------------------------------------------------------------------------


def fresh_event(event_type: str) -> dict:
    return copy.deepcopy(se.sample_events()[event_type])


def webhook(request: dict) -> dict:
    handler = load_handler("stripe_webhook")
    return handler.lambda_handler(copy.deepcopy(request), FakeContext("finops-guard-test-stripe-webhook"))


def outcome(reply: dict) -> str:
    assert reply["statusCode"] == 200, reply
    return json.loads(reply["body"])["outcome"]


def scan(deployment, role: str) -> list[dict]:
    return deployment.aws.client("dynamodb").scan(TableName=deployment.tables[role])["Items"]


def ledger_entries(deployment) -> list[tuple[str, int]]:
    rows = scan(deployment, "ledger")
    return sorted((r["kind"]["S"], int(r["amount_minor"]["N"])) for r in rows if "kind" in r)


def nothing_written(deployment) -> bool:
    return all(scan(deployment, role) == [] for role in ("events", "ledger", "objects", "alerts", "dunning"))


def notify(records: list[dict]) -> dict:
    handler = load_handler("billing_notifier")
    return handler.lambda_handler({"Records": copy.deepcopy(records)}, FakeContext("finops-guard-test-notifier"))


def failed_payment_alert(deployment, monkeypatch) -> tuple[list[dict], str]:
    """A payment failure booked by the webhook; the alerts stream records and the opened alert's record id."""
    assert outcome(webhook(se.signed_request(fresh_event("invoice.payment_failed")))) == "applied"
    records = deployment.aws.stream_records(deployment.tables["alerts"])
    opened = [r["eventID"] for r in records if r["dynamodb"].get("NewImage", {}).get("status", {}).get("S") == "open"]
    assert len(opened) == 1
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "billing-notifier")
    return records, opened[0]


# --- chat faults, for the billing notifier (the weekly report's are in its own module) --------------


def test_billing_card_waits_out_a_429_retry_after_and_is_posted_once(ledger, monkeypatch, capsys):
    records, _ = failed_payment_alert(ledger, monkeypatch)
    ledger.chat.then(Reply(429, {"Retry-After": "3"}, "Too many requests"), Reply(202))
    assert notify(records) == {"batchItemFailures": []}
    assert len(ledger.chat.received) == 2 and ledger.sleeps == [3.0]
    assert ledger.chat.received[0].body == ledger.chat.received[1].body
    [kept] = outbox_items(ledger)
    assert (kept["status"]["S"], kept["attempts"]["N"]) == ("delivered", "2")
    assert emitted(capsys)["BillingAlertsPosted"] == 1
    assert notify(records) == {"batchItemFailures": []} and len(ledger.chat.received) == 2  # stream replay


def test_billing_card_survives_a_timeout_and_a_reset_and_is_posted_once(ledger, monkeypatch):
    records, _ = failed_payment_alert(ledger, monkeypatch)
    monkeypatch.setattr(chat_adapter, "TIMEOUT", (1.0, 0.2))  # a 0.2 s read timeout instead of 10 s
    ledger.chat.then(Reply(202, delay_s=0.6), Reply(drop_connection=True), Reply(202))
    assert notify(records) == {"batchItemFailures": []}
    assert len(ledger.chat.received) == 3 and len(ledger.sleeps) == 2
    assert {r.body for r in ledger.chat.received} == {ledger.chat.received[0].body}
    [kept] = outbox_items(ledger)
    assert kept["status"]["S"] == "delivered"
    # The timed-out first attempt reached the recorder: a chat service may show that one too.
    # Retrying a timeout is at-least-once by nature; the outbox makes every later run skip it.


def test_billing_card_after_500s_beyond_the_budget_is_kept_alarmed_and_posted_once_by_the_stream_retry(
    ledger, monkeypatch, capsys
):
    records, record_id = failed_payment_alert(ledger, monkeypatch)
    ledger.chat.then(*[Reply(500, body="upstream error")] * CHAT_ATTEMPTS)
    assert notify(records) == {"batchItemFailures": [{"itemIdentifier": record_id}]}
    assert len(ledger.chat.received) == CHAT_ATTEMPTS and len(ledger.sleeps) == CHAT_ATTEMPTS - 1
    metrics = emitted(capsys)
    assert metrics["ChatDeliveryFailures"] == 1 and metrics["BillingAlertsPosted"] == 0
    assert metrics["ChatDeliveryFailures@stage"] == 1  # what the stage's chat delivery alarm reads
    [kept] = outbox_items(ledger)
    assert (kept["status"]["S"], kept["attempts"]["N"]) == ("failed", str(CHAT_ATTEMPTS))
    first = ledger.chat.received[0].json()

    # The chat service is back: the stream retries the record, the card goes out once, as it was.
    assert notify(records) == {"batchItemFailures": []}
    assert len(ledger.chat.received) == CHAT_ATTEMPTS + 1 and ledger.chat.received[-1].json() == first
    assert cli.main(["report", "resend"]) == 0 and len(ledger.chat.received) == CHAT_ATTEMPTS + 1
    assert notify(records) == {"batchItemFailures": []} and len(ledger.chat.received) == CHAT_ATTEMPTS + 1


# --- DynamoDB faults on the Stripe webhook's transaction -----------------------------------------


@pytest.mark.parametrize("fault", [fp.dynamodb_throughput_exceeded, fp.dynamodb_throttling])
def test_a_throttled_ledger_transaction_is_retried_and_booked_once(ledger, fault):
    request = se.signed_request(fresh_event("invoice.paid"))
    ledger.proxy.inject("TransactWriteItems", fault(), times=2)
    assert outcome(webhook(request)) == "applied"
    assert [s.outcome for s in ledger.proxy.requests("TransactWriteItems")] == ["injected", "injected", "forwarded"]
    assert ledger_entries(ledger) == [("booking_fee", 1250), ("subscription", 4900)]
    assert outcome(webhook(request)) == "duplicate" and len(ledger_entries(ledger)) == 2


def test_persistent_ledger_throttling_answers_5xx_writes_nothing_and_the_redelivery_books_once(ledger, capsys):
    request = se.signed_request(fresh_event("invoice.paid"))
    ledger.proxy.inject("TransactWriteItems", fp.dynamodb_throughput_exceeded(), times=DYNAMODB_ATTEMPTS + 5)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        webhook(request)  # Lambda error -> API Gateway 5xx (alarmed) -> Stripe redelivers
    assert ledger.proxy.attempts("TransactWriteItems") == DYNAMODB_ATTEMPTS
    assert nothing_written(ledger)
    assert not any(name.startswith("StripeEvents") for name in emitted(capsys))

    ledger.proxy.clear()
    assert outcome(webhook(request)) == "applied"
    assert outcome(webhook(request)) == "duplicate"
    assert ledger_entries(ledger) == [("booking_fee", 1250), ("subscription", 4900)]
    assert len(scan(ledger, "events")) == 1


def test_a_transaction_cancelled_for_throttling_writes_nothing_and_the_redelivery_books_once(ledger):
    """Throttling reported inside TransactionCanceledException is not a botocore retry, nor a store
    conflict: the request fails whole, and Stripe's redelivery is the retry."""
    request = se.signed_request(fresh_event("invoice.payment_failed"))
    ledger.proxy.inject("TransactWriteItems", fp.transaction_canceled("ThrottlingError"), times=1)
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        webhook(request)
    assert ledger.proxy.attempts("TransactWriteItems") == 1 and nothing_written(ledger)

    assert outcome(webhook(request)) == "applied" and outcome(webhook(request)) == "duplicate"
    assert len(scan(ledger, "alerts")) == 1 and len(scan(ledger, "dunning")) == 3


def test_transaction_conflicts_are_retried_by_the_store_and_booked_once(ledger):
    request = se.signed_request(fresh_event("invoice.payment_failed"))
    ledger.proxy.inject("TransactWriteItems", fp.transaction_canceled("TransactionConflict"), times=2)
    assert outcome(webhook(request)) == "applied"
    assert ledger.proxy.attempts("TransactWriteItems") == 3
    assert ledger.conflict_waits == [0.05, 0.1]
    assert len(scan(ledger, "events")) == 1 and len(scan(ledger, "alerts")) == 1
    assert sorted(s["step"]["S"] for s in scan(ledger, "dunning")) == ["0#email", "1#sms", "3#email"]


def test_persistent_transaction_conflict_answers_5xx_writes_nothing_and_the_redelivery_books_once(ledger):
    request = se.signed_request(fresh_event("invoice.payment_failed"))
    ledger.proxy.inject(
        "TransactWriteItems", fp.transaction_canceled("TransactionConflict"), times=billing_store.CONFLICT_RETRIES + 3
    )
    with pytest.raises(ClientError, match="TransactionConflict"):
        webhook(request)
    assert ledger.proxy.attempts("TransactWriteItems") == billing_store.CONFLICT_RETRIES
    assert nothing_written(ledger)

    ledger.proxy.clear()
    assert outcome(webhook(request)) == "applied" and outcome(webhook(request)) == "duplicate"
    assert len(scan(ledger, "alerts")) == 1 and len(scan(ledger, "dunning")) == 3


def test_a_ledger_transaction_whose_answer_is_lost_is_retried_and_booked_once(ledger):
    request = se.signed_request(fresh_event("invoice.paid"))
    ledger.proxy.inject("TransactWriteItems", fp.lost_response(), times=1)
    # The first attempt committed; botocore's retry finds the event recorded: "duplicate", booked once.
    assert outcome(webhook(request)) in ("applied", "duplicate")
    assert [s.outcome for s in ledger.proxy.requests("TransactWriteItems")] == ["lost", "forwarded"]
    assert ledger_entries(ledger) == [("booking_fee", 1250), ("subscription", 4900)]
    assert len(scan(ledger, "events")) == 1


def test_a_stalled_ledger_write_is_cut_by_the_read_timeout_retried_and_booked_once(ledger, monkeypatch):
    # Production waits 5 s (CLIENT_CONFIG); 0.3 s here. The stalled original reaches DynamoDB late.
    monkeypatch.setattr(aws_adapter, "CLIENT_CONFIG", aws_adapter.CLIENT_CONFIG.merge(Config(read_timeout=0.3)))
    fresh_clients()
    request = se.signed_request(fresh_event("invoice.paid"))
    ledger.proxy.inject("TransactWriteItems", fp.delay(1.0), times=1)
    assert outcome(webhook(request)) == "applied"
    deadline = time.monotonic() + 5
    while len(ledger.proxy.requests("TransactWriteItems")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    late = [s for s in ledger.proxy.requests("TransactWriteItems") if s.fault]
    assert len(late) == 1 and late[0].status == 400  # the late original found the event recorded
    assert ledger_entries(ledger) == [("booking_fee", 1250), ("subscription", 4900)]


# --- Secrets Manager unavailable -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [fp.secrets_manager_error("ServiceUnavailable", 503), fp.secrets_manager_error("ThrottlingException", 400)],
    ids=["503", "throttled"],
)
def test_signing_secret_unavailable_answers_5xx_writes_nothing_and_the_redelivery_books_once(ledger, fault):
    from finops_guard.core.adapters.secrets import SigningSecretMissing

    request = se.signed_request(fresh_event("invoice.paid"))
    ledger.proxy.inject("GetSecretValue", fault, times=SECRETS_ATTEMPTS + 5, contains=SIGNING_SECRET)
    with pytest.raises(SigningSecretMissing, match=fault.name):
        webhook(request)  # not a 4xx: Stripe must retry it
    assert ledger.proxy.attempts("GetSecretValue") == SECRETS_ATTEMPTS
    assert nothing_written(ledger)

    ledger.proxy.clear()
    assert outcome(webhook(request)) == "applied" and outcome(webhook(request)) == "duplicate"
    assert ledger_entries(ledger) == [("booking_fee", 1250), ("subscription", 4900)]


# --- DynamoDB faults on a dunning step --------------------------------------------------------------


@pytest.fixture
def dunning(ledger, monkeypatch):
    """A loopback Stripe whose events reach the webhook, and one invoice whose payment failed."""
    fake = StripeFake(now=lambda: T0).start()
    ledger.aws.put_secret(STRIPE_KEY_SECRET, fake.api_key)
    ledger.aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    for key, value in {
        "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": STRIPE_KEY_SECRET,
        "FINOPSGUARD_STRIPE_API_BASE": fake.base_url,
        "FINOPSGUARD_DUNNING_SENDER_EMAIL": SENDER,
        "POWERTOOLS_SERVICE_NAME": "dunning-sender",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINOPSGUARD_DUNNING_TEMPLATES", raising=False)
    fresh_clients()
    fake.on_event(lambda event: webhook(se.signed_request(event)))
    customer = "cus_FaultyDunning0001"
    fake.add_customer(customer, email="ap@customer.example", name="Acme Ltd", phone="+15555550123")
    api = StripeApi(lambda: fake.api_key, api_base=fake.base_url)
    invoice = api.create_invoice(customer=customer, currency="EUR", description="November", days_until_due=14,
                                 metadata={}, idempotency_key="faults-create")  # fmt: skip
    api.add_invoice_item(invoice=invoice["id"], customer=customer, amount_minor=250000, currency="EUR",
                         description="Platform fee", idempotency_key="faults-item")  # fmt: skip
    api.finalize_invoice(invoice["id"], idempotency_key="faults-finalize")
    fake.decline_next_payment(invoice["id"])
    with pytest.raises(Exception, match="declined|card"):
        api.pay_invoice(invoice["id"], idempotency_key="faults-pay")
    ledger.invoice_id = invoice["id"]
    assert dunning_steps(ledger) == {"0#email": "pending", "1#sms": "pending", "3#email": "pending"}
    yield ledger
    fake.stop()


def dunning_steps(deployment) -> dict[str, str]:
    items = deployment.aws.client("dynamodb").query(
        TableName=deployment.tables["dunning"], KeyConditionExpression="invoice_id = :i",
        ExpressionAttributeValues={":i": {"S": deployment.invoice_id}},
    )["Items"]  # fmt: skip
    return {item["step"]["S"]: item["status"]["S"] for item in items}


def run_dunning(at: str = "2026-11-17T09:30:00Z") -> dict:
    return load_handler("dunning_sender").lambda_handler({"time": at}, FakeContext("finops-guard-test-dunning"))


def emails_sent() -> int:
    return len(ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages)


def test_a_throttled_dunning_claim_fails_the_run_and_the_step_stays_pending_for_the_next_hour(dunning):
    before = emails_sent()
    dunning.proxy.inject("UpdateItem", fp.dynamodb_throttling(), times=DYNAMODB_ATTEMPTS + 5, contains="claimed_at")
    with pytest.raises(ClientError, match="ThrottlingException"):
        run_dunning()  # Errors alarm; the hourly schedule is the retry
    assert dunning.proxy.attempts("UpdateItem") == DYNAMODB_ATTEMPTS
    assert dunning_steps(dunning)["0#email"] == "pending" and emails_sent() == before

    dunning.proxy.clear()
    assert run_dunning("2026-11-17T10:30:00Z")["sent"] == 1
    assert run_dunning("2026-11-17T11:30:00Z")["sent"] == 0
    assert dunning_steps(dunning)["0#email"] == "sent" and emails_sent() == before + 1


def test_a_dunning_claim_whose_answer_is_lost_still_sends_the_step_once(dunning):
    """Fix: as for the outbox, `claim` sets a fresh `claim_token` with the move to `sending` and, on
    ConditionalCheckFailedException with ReturnValuesOnConditionCheckFailure="ALL_OLD", treats an item
    already `sending` with its own token as claimed."""
    before = emails_sent()
    dunning.proxy.inject("UpdateItem", fp.lost_response(), times=1, contains="claimed_at")
    run = run_dunning()
    assert run["sent"] == 1 and emails_sent() == before + 1
    assert dunning_steps(dunning)["0#email"] == "sent"
