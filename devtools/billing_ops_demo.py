"""`make demo`, billing operations: a dunning sequence, a reconciliation with one mismatch and an
invoice-bot round trip, on the embedded AWS with a loopback Stripe (devtools/stripe_fake.py).

Stripe's events from the fake are signed and handed to the webhook handler as Stripe would post
them, so the loop is the real one: Stripe -> webhook -> tables -> dunning sender / reconciliation
/ invoice bot -> finance channel.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.embedded_aws import EmbeddedAws
from devtools.lambda_runner import FakeContext, load_handler
from devtools.local_serve import STAGE, LocalBilling
from devtools.stripe_events import sign
from devtools.stripe_fake import StripeFake

SENDER = "billing@finops-guard.example"
REGION = "eu-west-1"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_billing_operations(aws: EmbeddedAws, billing: LocalBilling) -> tuple[list[str], list[tuple[str, str]]]:
    """(printable lines, (title, HTML) of each dunning e-mail and SMS); cards land in the chat
    recorder through the outbox as usual."""
    from finops_guard.billing import runtime
    from finops_guard.billing.adapters.stripe_api import StripeApi
    from finops_guard.core.adapters import secrets

    start = int(datetime.now(UTC).replace(minute=0, second=0, microsecond=0).timestamp()) - 5 * 86400
    clock = {"now": start}
    fake = StripeFake(now=lambda: clock["now"]).start()
    fake.on_event(lambda event: _post(billing, event))
    aws.put_secret(f"finops-guard/{STAGE}/stripe-api-key", fake.api_key)
    aws.client("ses", REGION).verify_email_identity(EmailAddress=SENDER)
    os.environ.update(
        {
            "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": f"finops-guard/{STAGE}/stripe-api-key",
            "FINOPSGUARD_STRIPE_API_BASE": fake.base_url,
            "FINOPSGUARD_INVOICE_REQUESTS_TABLE": billing.tables["invoice_requests"],
            "FINOPSGUARD_DUNNING_SENDER_EMAIL": SENDER,
            "FINOPSGUARD_VARIANCE_PERCENT": "1",
        }
    )
    for cached in (runtime.billing_settings, runtime.billing_store, runtime.billing_ops_settings, runtime.stripe_api):
        cached.cache_clear()
    secrets.clear_cache()
    api = StripeApi(lambda: fake.api_key, api_base=fake.base_url)
    lines = ["Billing operations (loopback Stripe, embedded AWS):"]
    try:
        lines += _dunning(api, fake, clock, start)
        lines += _reconciliation(fake, billing, clock)
        lines += _invoice_bot(fake, clock)
    finally:
        fake.stop()
    return lines, _dunning_messages()


def _dunning_messages() -> list[tuple[str, str]]:
    import html

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    sections = []
    for message in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        title = f"Dunning e-mail (SES) to {message.destinations['ToAddresses'][0]}: {message.subject}"
        sections.append((title, f"<pre>{html.escape(message.body)}</pre>"))
    for number, text, *_ in sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values():
        sections.append((f"Dunning SMS (SNS) to {number}", f"<pre>{html.escape(text)}</pre>"))
    return sections


def _post(billing: LocalBilling, event: dict[str, Any]) -> None:
    body = json.dumps(event, separators=(",", ":"))
    status, reply = billing.webhook(body, {"Stripe-Signature": sign(body)})
    if status != 200:
        raise RuntimeError(f"webhook refused {event['type']}: {status} {reply}")


def _failed_invoice(api: Any, fake: StripeFake, customer: str, name: str, amount_minor: int, currency: str) -> str:
    fake.add_customer(customer, email=f"accounts@{name.split()[0].lower()}.example", name=name, phone="+15555550123")
    invoice = api.create_invoice(customer=customer, currency=currency, description="Monthly platform fee",
                                 days_until_due=14, metadata={}, idempotency_key=f"demo-{customer}-create")  # fmt: skip
    api.add_invoice_item(invoice=invoice["id"], customer=customer, amount_minor=amount_minor, currency=currency,
                         description="Platform fee", idempotency_key=f"demo-{customer}-item")  # fmt: skip
    api.finalize_invoice(invoice["id"], idempotency_key=f"demo-{customer}-finalize")
    fake.decline_next_payment(invoice["id"], "insufficient_funds")
    try:
        api.pay_invoice(invoice["id"], idempotency_key=f"demo-{customer}-attempt-1")
    except Exception:  # noqa: S110 - the decline is the point: Stripe sends invoice.payment_failed
        pass
    return str(invoice["id"])


def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)


def _dunning(api: Any, fake: StripeFake, clock: dict[str, int], start: int) -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    os.environ["POWERTOOLS_SERVICE_NAME"] = "dunning-sender"
    unpaid = _failed_invoice(api, fake, "cus_DemoNorthwind1", "Northwind Traders", 250000, "eur")
    paid_later = _failed_invoice(api, fake, "cus_DemoContoso001", "Contoso Hotels", 1250000, "jpy")
    sender = load_handler("dunning_sender")
    lines = ["  dunning (hourly sender; day 0 e-mail, day 1 SMS, day 3 final e-mail):"]
    for day in (0, 1, 2, 3):
        if day == 1:
            clock["now"] = start + 86400 + 7200
            api.pay_invoice(paid_later, idempotency_key="demo-contoso-attempt-2")  # paid: its next steps cancel
            lines.append(f"    day 1: Contoso Hotels paid {paid_later} (invoice.paid -> pending steps cancelled)")
        at = _iso(start + day * 86400 + 3600)
        run = sender.lambda_handler({"time": at}, FakeContext(f"finops-guard-{STAGE}-dunning-sender"))
        lines.append(f"    {at}: sent {run['sent']}, skipped {run['skipped']}, failed {run['failed']}")
    ses = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    sms = list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())
    for message in ses:
        lines.append(f"    e-mail to {message.destinations['ToAddresses'][0]}: {message.subject!r}")
    for number, text, *_ in sms:
        lines.append(f"    SMS to {number}: {text!r}")
    dynamodb = aws_client("dynamodb")
    for invoice_id, who in ((unpaid, "Northwind Traders, never paid"), (paid_later, "Contoso Hotels, paid on day 1")):
        items = dynamodb.query(TableName=os.environ["FINOPSGUARD_DUNNING_TABLE"],
                               KeyConditionExpression="invoice_id = :i",
                               ExpressionAttributeValues={":i": {"S": invoice_id}})["Items"]  # fmt: skip
        steps = ", ".join(f"{i['step']['S']} {i['status']['S']}" for i in sorted(items, key=lambda i: i["step"]["S"]))
        lines.append(f"    {invoice_id} ({who}): {steps}")
    lines.append("    (the other skips: due steps of the replayed month's invoices, unknown to this loopback Stripe)")
    return lines


def _reconciliation(fake: StripeFake, billing: LocalBilling, clock: dict[str, int]) -> list[str]:
    """Stripe holds every invoice the month's webhook replay booked, plus one the ledger got wrong:
    its invoice.paid lost a usage line, so Stripe's subtotal is 20 % above the ledger's."""
    from collections import defaultdict
    from decimal import Decimal

    from finops_guard.core.money import format_money, minor_units

    os.environ["POWERTOOLS_SERVICE_NAME"] = "reconciliation"
    booked: dict[str, list[Any]] = defaultdict(lambda: ["", "", 0, ""])
    for entry in billing.ledger(datetime.fromtimestamp(clock["now"], UTC).strftime("%Y-%m")):
        invoice_id = entry.get("invoice_id", {}).get("S")
        if not invoice_id or entry["kind"]["S"] == "credit_adjustment" or invoice_id in fake.invoices:
            continue
        row = booked[invoice_id]
        row[0], row[1], row[3] = entry["customer_id"]["S"], entry["currency"]["S"], entry["occurred_at"]["S"]
        row[2] += int(entry["amount_minor"]["N"])
    recent = int((datetime.now(UTC) - timedelta(days=25)).timestamp())
    from devtools.billing_month import NAMES

    for customer, name in NAMES.items():  # the month's customers, named as on their invoices
        if customer not in fake.customers:
            fake.add_customer(customer, name=name)
    for invoice_id, (customer, currency, amount, _) in sorted(booked.items()):
        stripe_amount = amount * 6 // 5 if invoice_id == "in_demo2w1" else amount  # the one the ledger got wrong
        fake.add_invoice(customer=customer, currency=currency.lower(), amount_minor=stripe_amount, status="paid",
                         created=recent, invoice_id=invoice_id)  # fmt: skip
    fake.add_invoice(customer="cus_DemoPastDue001", currency="usd", amount_minor=89000, status="open",
                     created=recent, due_date=recent + 10 * 86400)  # fmt: skip
    summary = load_handler("reconciliation").lambda_handler({}, FakeContext(f"finops-guard-{STAGE}-reconciliation"))
    wrong = booked["in_demo2w1"]
    shown = format_money(Decimal(wrong[2]).scaleb(-minor_units(wrong[1])), wrong[1])
    return [
        "  reconciliation (Stripe invoices of the last 30 days vs the ledger, variance > 1 %):",
        f"    {summary['invoices_seen']} invoices, {summary['ledger_rows_seen']} ledger rows, "
        f"{summary['pairs_compared']} customer/currency pairs compared",
        f"    mismatches: {summary['mismatches']} (in_demo2w1: ledger {shown}, Stripe 20 % more); "
        f"past due: {summary['past_due']}; alert: {summary['alert']}",
    ]


def _invoice_bot(fake: StripeFake, clock: dict[str, int]) -> list[str]:
    os.environ["POWERTOOLS_SERVICE_NAME"] = "billing-admin"
    fake.add_customer("cus_DemoFabrikam01", email="ap@fabrikam.example", name="Fabrikam Events")
    requested = datetime.now(UTC)
    clock["now"] = int(requested.timestamp()) + 38  # Stripe sends it 38 s later
    body = {"request_id": "demo-invoice-0001", "customer": "cus_DemoFabrikam01", "currency": "EUR",
            "amount": "1250.00", "description": "Workshop, November"}  # fmt: skip
    event = {"httpMethod": "POST", "resource": "/invoices", "path": "/invoices", "headers": {},
             "body": json.dumps(body), "isBase64Encoded": False,
             "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/finance-lead"}}}  # fmt: skip
    reply = load_handler("billing_admin").lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-billing-admin"))
    issued = json.loads(reply["body"])
    from finops_guard.billing import runtime
    from finops_guard.billing.adapters.invoice_requests import InvoiceRequestTable

    record = InvoiceRequestTable(runtime.billing_ops_settings().require("invoice_requests_table")).get(
        "demo-invoice-0001"
    )
    latency = (record or {}).get("latency_s")
    return [
        "  invoice bot (POST /invoices, IAM-authorised):",
        f"    {reply['statusCode']}: {issued.get('number')} {issued.get('amount')} to {issued.get('customer')}",
        f"    hosted: {issued.get('hosted_invoice_url')}",
        f"    PDF:    {issued.get('invoice_pdf')}",
        f"    invoice.sent confirmed by the webhook {latency} s after the request (SLO: 99 % within 300 s)",
    ]
