"""Dunning delivery and the invoice bot against the embedded AWS, a loopback Stripe and chat sink.

Stripe's own events (from the loopback fake) are signed and delivered to the webhook handler, so
each scenario runs the whole loop: Stripe -> webhook -> tables -> dunning sender / invoice bot.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from finops_guard.billing import runtime
from finops_guard.billing.adapters.stripe_api import StripeApi
from finops_guard.core.adapters import secrets
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from devtools import stripe_events as se
from devtools.stripe_fake import StripeFake
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext, emitted_metrics, logged_by

pytestmark = pytest.mark.integration
REGION = "eu-west-1"
STRIPE_KEY_SECRET = "finops-guard/test/stripe-api-key"
SENDER = "billing@finops.example.com"
T0 = int(datetime(2026, 11, 17, 9, 0, tzinfo=UTC).timestamp())


@pytest.fixture
def ops(deployed, monkeypatch):
    tables = deployed.aws.create_billing_tables()
    deployed.aws.put_secret("finops-guard/test/stripe-webhook-secret", se.TEST_SECRET)
    clock = {"now": T0}
    fake = StripeFake(now=lambda: clock["now"]).start()
    deployed.aws.put_secret(STRIPE_KEY_SECRET, fake.api_key)
    deployed.aws.client("ses", REGION).verify_email_identity(EmailAddress=SENDER)
    env = {
        "FINOPSGUARD_STRIPE_SECRET_NAME": "finops-guard/test/stripe-webhook-secret",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": tables["invoice_requests"],
        "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": STRIPE_KEY_SECRET,
        "FINOPSGUARD_STRIPE_API_BASE": fake.base_url,
        "FINOPSGUARD_DUNNING_SENDER_EMAIL": SENDER,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINOPSGUARD_DUNNING_TEMPLATES", raising=False)
    caches = (runtime.billing_settings, runtime.billing_store, runtime.billing_ops_settings, runtime.stripe_api)
    for cached in caches:
        cached.cache_clear()
    secrets.clear_cache()
    load_handler("billing_admin")._invoice_requests.cache_clear()
    deployed.tables, deployed.fake, deployed.clock = tables, fake, clock
    deployed.webhook_replies = []
    fake.on_event(lambda event: deployed.webhook_replies.append(webhook(event)))
    yield deployed
    fake.stop()
    for cached in caches:
        cached.cache_clear()


def webhook(stripe_event: dict) -> dict:
    handler = load_handler("stripe_webhook")
    return handler.lambda_handler(se.signed_request(stripe_event), FakeContext("finops-guard-test-stripe-webhook"))


def run_dunning(at: str) -> dict:
    return load_handler("dunning_sender").lambda_handler({"time": at}, FakeContext("finops-guard-test-dunning"))


def admin(method: str, resource: str, body: dict | None = None, **extra) -> dict:
    event = {
        "httpMethod": method,
        "resource": resource,
        "path": resource,
        "headers": extra.pop("headers", {}),
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/finance-lead"}},
        **extra,
    }
    reply = load_handler("billing_admin").lambda_handler(event, FakeContext("finops-guard-test-billing-admin"))
    return {**reply, "json": json.loads(reply["body"]) if reply["headers"]["Content-Type"].startswith("app") else None}


def stripe(ops) -> StripeApi:
    return StripeApi(lambda: ops.fake.api_key, api_base=ops.fake.base_url)


def failed_invoice(ops, customer: str = "cus_DunningCustomer01") -> str:
    """An open invoice whose first payment attempt fails (Stripe sends invoice.payment_failed)."""
    ops.fake.add_customer(customer, email="ap@customer.example", name="Acme Ltd", phone="+15555550123")
    api = stripe(ops)
    invoice = api.create_invoice(customer=customer, currency="EUR", description="November", days_until_due=14,
                                 metadata={}, idempotency_key=f"test-{customer}-create")  # fmt: skip
    api.add_invoice_item(invoice=invoice["id"], customer=customer, amount_minor=250000, currency="EUR",
                         description="Platform fee", idempotency_key=f"test-{customer}-item")  # fmt: skip
    api.finalize_invoice(invoice["id"], idempotency_key=f"test-{customer}-finalize")
    ops.fake.decline_next_payment(invoice["id"])
    with pytest.raises(Exception, match="declined|card"):
        api.pay_invoice(invoice["id"], idempotency_key=f"test-{customer}-pay-1")
    return invoice["id"]


def dunning_status(ops, invoice_id: str) -> dict[str, str]:
    items = ops.aws.client("dynamodb").query(
        TableName=ops.tables["dunning"], KeyConditionExpression="invoice_id = :i",
        ExpressionAttributeValues={":i": {"S": invoice_id}},
    )["Items"]  # fmt: skip
    return {item["step"]["S"]: item["status"]["S"] for item in items}


def sent_emails() -> list:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def sent_sms() -> list:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def test_the_dunning_sequence_goes_out_step_by_step_once_and_stops_when_paid(ops):
    emails_before, sms_before = len(sent_emails()), len(sent_sms())
    invoice_id = failed_invoice(ops)
    assert [r["statusCode"] for r in ops.webhook_replies] == [200, 200, 200]  # created, finalized, payment_failed
    assert dunning_status(ops, invoice_id) == {"0#email": "pending", "1#sms": "pending", "3#email": "pending"}

    assert run_dunning("2026-11-17T09:30:00Z") == {"sent": 1, "skipped": 0, "failed": 0, "deferred": 0, "stuck": []}
    assert run_dunning("2026-11-17T10:30:00Z")["sent"] == 0  # hourly again: nothing twice
    email = sent_emails()[emails_before:]
    assert len(email) == 1 and email[0].destinations["ToAddresses"] == ["ap@customer.example"]
    assert "€2,500.00" in email[0].body and "Acme Ltd" in email[0].body
    assert run_dunning("2026-11-18T09:30:00Z")["sent"] == 1
    [sms] = sent_sms()[sms_before:]
    assert sms[0] == "+15555550123" and sms[1].startswith("Payment of €2,500.00 for invoice")

    stripe(ops).pay_invoice(invoice_id, idempotency_key="test-pay-2")  # invoice.paid -> webhook cancels day 3
    assert dunning_status(ops, invoice_id) == {"0#email": "sent", "1#sms": "sent", "3#email": "cancelled"}
    assert run_dunning("2026-11-20T09:30:00Z")["sent"] == 0 and len(sent_emails()) == emails_before + 1


def test_a_step_due_after_payment_whose_webhook_is_late_is_skipped_by_the_stripe_recheck(ops):
    invoice_id = failed_invoice(ops, "cus_PaidMeanwhile0001")
    ops.fake.invoices[invoice_id]["status"] = "paid"  # paid in Stripe; invoice.paid not delivered yet
    emails_before = len(sent_emails())
    assert run_dunning("2026-11-17T09:30:00Z") == {"sent": 0, "skipped": 1, "failed": 0, "deferred": 0, "stuck": []}
    assert dunning_status(ops, invoice_id)["0#email"] == "skipped" and len(sent_emails()) == emails_before


def test_stripe_down_leaves_due_steps_pending_for_the_next_hour(ops):
    invoice_id = failed_invoice(ops, "cus_StripeDown000001")
    ops.fake.fail_next(10, status=500)
    assert run_dunning("2026-11-17T09:30:00Z")["deferred"] == 1
    assert dunning_status(ops, invoice_id)["0#email"] == "pending"


INVOICE = {"request_id": "req-20261117-acme-0001", "customer": "cus_InvoiceBot00001", "currency": "EUR",
           "amount": "1250.00", "description": "Consulting, November"}  # fmt: skip


def test_the_invoice_bot_issues_posts_links_and_measures_delivery_latency_once(ops, capsys):
    ops.fake.add_customer("cus_InvoiceBot00001", email="ap@bot.example", name="Bot Customer")
    ops.clock["now"] = int(datetime.now(UTC).timestamp()) + 42  # Stripe confirms 42 s after the request
    reply = admin("POST", "/invoices", INVOICE)
    assert reply["statusCode"] == 201, reply
    issued = reply["json"]
    invoice = ops.fake.invoices[issued["invoice_id"]]
    assert (invoice["status"], invoice["amount_due"], invoice["currency"]) == ("open", 125000, "eur")
    assert (
        issued["hosted_invoice_url"] == invoice["hosted_invoice_url"]
        and issued["invoice_pdf"] == invoice["invoice_pdf"]
    )
    assert invoice["metadata"]["finops_guard_request_id"] == "req-20261117-acme-0001"
    keys = [r.idempotency_key for r in ops.fake.requests if r.method == "POST"]
    assert keys[-4:] == [
        f"finops-guard:invoice:req-20261117-acme-0001:{s}" for s in ("create", "item", "finalize", "send")
    ]

    [card] = [json.dumps(m.json()) for m in ops.chat.received if b"Invoice sent" in m.body]
    assert invoice["hosted_invoice_url"] in card and invoice["invoice_pdf"] in card and "1,250.00" in card

    key = {"request_id": {"S": "req-20261117-acme-0001"}}
    record = ops.aws.client("dynamodb").get_item(TableName=ops.tables["invoice_requests"], Key=key)["Item"]
    assert record["status"]["S"] == "sent" and 40 <= int(record["latency_s"]["N"]) <= 45
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"InvoicesConfirmed"' in line]
    assert len(metrics) == 1 and metrics[0]["InvoicesConfirmedWithin5Min"] == [1.0]

    sent = next(e for e in ops.fake.events if e["type"] == "invoice.sent")
    assert json.loads(webhook(sent)["body"])["outcome"] == "duplicate"  # Stripe redelivers: no second latency
    assert '"InvoicesConfirmed"' not in capsys.readouterr().out


def test_with_kpi_metrics_off_the_invoice_slo_metrics_are_still_sent_and_the_latency_logged(ops, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    ops.fake.add_customer("cus_InvoiceBot00001", email="ap@bot.example", name="Bot Customer")
    ops.clock["now"] = int(datetime.now(UTC).timestamp()) + 42
    capsys.readouterr()
    with logged_by("stripe_webhook") as logged:
        assert admin("POST", "/invoices", INVOICE)["statusCode"] == 201

    assert emitted_metrics(capsys.readouterr().out) == {"InvoicesConfirmed", "InvoicesConfirmedWithin5Min"}
    assert 40 <= logged.extra_of("bot invoice delivery confirmed")["invoice_latency_s"] <= 45


def test_the_same_request_twice_makes_one_invoice(ops):
    ops.fake.add_customer("cus_InvoiceBot00001")
    first, second = admin("POST", "/invoices", INVOICE), admin("POST", "/invoices", INVOICE)
    assert (first["statusCode"], second["statusCode"]) == (201, 200)
    assert second["json"]["replayed"] is True and second["json"]["invoice_id"] == first["json"]["invoice_id"]
    assert len([i for i in ops.fake.invoices.values() if i["customer"] == "cus_InvoiceBot00001"]) == 1
    conflict = admin("POST", "/invoices", {**INVOICE, "amount": "99.00"})
    assert conflict["statusCode"] == 409


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({**INVOICE, "currency": "EURO"}, 400, "currency must be an ISO 4217 code"),
        ({**INVOICE, "request_id": None}, 400, "request_id (or an Idempotency-Key header) is required"),
        ({**INVOICE, "customer": "cus_NotInStripe00001"}, 404, "Stripe refused the request"),
    ],
)
def test_bad_invoice_requests_get_a_4xx_and_leave_nothing(ops, body, status, error):
    reply = admin("POST", "/invoices", body)
    assert reply["statusCode"] == status and reply["json"]["error"].startswith(error)
    assert ops.aws.client("dynamodb").scan(TableName=ops.tables["invoice_requests"])["Items"] == []
    assert ops.fake.invoices == {}


def test_unknown_routes_are_404(ops):
    assert admin("DELETE", "/billing/summary")["statusCode"] == 404


def test_the_cli_issues_the_same_way_and_resumes_by_request_id(ops, capsys, monkeypatch):
    from finops_guard import cli

    ops.fake.add_customer("cus_CliCustomer00001")
    ops.aws.put_secret("finops-guard/test/finance-teams-webhook-url", ops.chat.url("/finance"))
    args = ["invoice", "create", "--customer", "cus_CliCustomer00001", "--amount", "1500", "--currency", "JPY",
            "--description", "Workshop", "--request-id", "cli-req-000000001", "--stage", "test"]  # fmt: skip
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    issued, _ = json.JSONDecoder().raw_decode(out[out.index('{\n  "request_id"') :])
    assert (issued["amount_minor"], issued["amount"], issued["status"]) == (1500, "¥1,500", "sent")
    assert ops.fake.invoices[issued["invoice_id"]]["amount_due"] == 1500
    assert [m.path for m in ops.chat.received] == ["/finance"]
    assert cli.main(args) == 0  # the same request again: answered from the record, no second invoice or card
    assert len(ops.fake.invoices) == 1 and len(ops.chat.received) == 1
    assert cli.main([*args[:4], "--amount", "12.5", *args[6:]]) == 2  # JPY has no decimals


def test_a_step_claimed_by_a_run_that_died_is_reported_as_stuck_not_resent(ops, capsys):
    invoice_id = failed_invoice(ops, "cus_DiedMidSend00001")
    ops.aws.client("dynamodb").update_item(
        TableName=ops.tables["dunning"], Key={"invoice_id": {"S": invoice_id}, "step": {"S": "0#email"}},
        UpdateExpression="SET #s = :sending, claimed_at = :at",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":sending": {"S": "sending"}, ":at": {"S": "2026-11-17T09:05:00Z"}},
    )  # fmt: skip
    emails_before = len(sent_emails())
    capsys.readouterr()
    assert run_dunning("2026-11-17T09:10:00Z")["sent"] == 0  # claimed 5 minutes ago: in flight, not stuck
    assert "DunningStepsStuck" not in capsys.readouterr().out
    later = run_dunning("2026-11-17T10:30:00Z")
    assert later["sent"] == 0 and later["stuck"] == [f"{invoice_id}/0#email"]  # reported, never re-sent
    assert '"DunningStepsStuck":[1.0]' in capsys.readouterr().out.replace(" ", "")
    assert len(sent_emails()) == emails_before
