"""Realistic Stripe events for tests, the demo and the bench: built from Stripe's own API fixtures
(../shared/data/stripe/fixtures3.json), signed exactly as Stripe signs them, wrapped as API Gateway
proxy events. `python -m devtools.stripe_events` rewrites the samples in events/stripe/."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from devtools.lambda_runner import ROOT

# The objects we build events from, extracted from ../shared/data/stripe/fixtures3.json so that a
# clone on its own can run the tests and the demo.
FIXTURES = Path(__file__).with_name("stripe_fixtures.json")
SHARED_FIXTURES = ROOT.parent / "shared" / "data" / "stripe" / "fixtures3.json"
FIXTURE_NAMES = (
    "event",
    "invoice",
    "charge",
    "credit_note",
    "subscription",
    "billing.alert",
    "customer",
    "invoiceitem",
    "billing_portal.session",
)
SAMPLES = ROOT / "events" / "stripe"
TEST_SECRET = "whsec_finopsguard_test_0123456789abcdef"  # noqa: S105 - a test-only signing secret
API_VERSION = "2025-09-30.clover"


@cache
def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(fixtures()[name])


def event(event_type: str, obj: dict[str, Any], *, event_id: str, created: int) -> dict[str, Any]:
    envelope = fixture("event")
    envelope.update(
        id=event_id,
        type=event_type,
        created=created,
        api_version=API_VERSION,
        livemode=False,
        pending_webhooks=1,
        data={"object": obj},
        request={"id": None, "idempotency_key": None},
    )
    return envelope


def invoice(
    invoice_id: str,
    customer: str,
    *,
    currency: str = "usd",
    status: str = "open",
    subscription_minor: int = 0,
    usage_minor: int = 0,
    attempt_count: int = 0,
    paid_at: int | None = None,
    customer_name: str | None = None,
) -> dict[str, Any]:
    """An invoice like Stripe's fixture, with a subscription line and/or a per-use (booking fee) line;
    `customer_name` as Stripe copies the customer's name onto a finalized invoice."""
    inv = fixture("invoice")
    template = inv["lines"]["data"][0]
    lines: list[dict[str, Any]] = []
    for kind, amount in (("subscription_item_details", subscription_minor), ("invoice_item_details", usage_minor)):
        if not amount:
            continue
        line = copy.deepcopy(template)
        line.update(id=f"il_{invoice_id[3:]}_{len(lines)}", amount=amount, currency=currency, invoice=invoice_id)
        line["parent"] = {"type": kind, kind: template["parent"][kind]}
        lines.append(line)
    total = subscription_minor + usage_minor
    inv.update(
        id=invoice_id,
        customer=customer,
        currency=currency,
        status=status,
        amount_due=total,
        amount_paid=total if status == "paid" else 0,
        amount_remaining=0 if status == "paid" else total,
        attempt_count=attempt_count,
        hosted_invoice_url=f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
    )
    if customer_name is not None:
        inv["customer_name"] = customer_name
    inv["lines"]["data"] = lines
    inv["status_transitions"] = {**(inv.get("status_transitions") or {}), "paid_at": paid_at}
    return inv


def charge(charge_id: str, customer: str, *, amount: int, refunded: int, currency: str = "usd") -> dict[str, Any]:
    ch = fixture("charge")
    ch.update(id=charge_id, customer=customer, amount=amount, amount_refunded=refunded, currency=currency,
              refunded=refunded >= amount)  # fmt: skip
    return ch


def credit_note(
    note_id: str, customer: str, invoice_id: str, *, total: int, created: int, currency: str = "usd"
) -> dict[str, Any]:
    cn = fixture("credit_note")
    cn.update(id=note_id, customer=customer, invoice=invoice_id, total=total, amount=total, currency=currency,
              created=created)  # fmt: skip
    return cn


def subscription(sub_id: str, customer: str, *, status: str = "active", currency: str = "usd") -> dict[str, Any]:
    sub = fixture("subscription")
    sub.update(id=sub_id, customer=customer, status=status, currency=currency)
    return sub


def billing_alert(alert_id: str, customer: str) -> dict[str, Any]:
    alert = fixture("billing.alert")
    alert.update(id=alert_id, title="Usage above plan")
    alert["usage_threshold"]["meter"]["display_name"] = "API calls"
    return {"object": "billing.alert.triggered", "alert": alert, "customer": customer, "value": 120000}


def sign(payload: str, secret: str = TEST_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def api_gateway_event(
    body: str, *, signature: str | None, base64_encoded: bool = False, method: str = "POST"
) -> dict[str, Any]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return {
        "resource": "/stripe/webhook",
        "path": "/stripe/webhook",
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {
            "resourcePath": "/stripe/webhook",
            "httpMethod": method,
            "path": "/v1/stripe/webhook",
            "stage": "v1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "3.18.12.63"},
        },
        "body": base64.b64encode(body.encode()).decode() if base64_encoded else body,
        "isBase64Encoded": base64_encoded,
    }


def signed_request(stripe_event: dict[str, Any], *, secret: str = TEST_SECRET, timestamp: int | None = None,
                   base64_encoded: bool = False) -> dict[str, Any]:  # fmt: skip
    body = json.dumps(stripe_event, separators=(",", ":"))
    return api_gateway_event(body, signature=sign(body, secret, timestamp), base64_encoded=base64_encoded)


CREATED = 1794873600  # 2026-11-17T00:00:00Z


def sample_events() -> dict[str, dict[str, Any]]:
    """One event per handled type, for a customer with a USD subscription."""
    cus, inv = "cus_QXg1o8vcGmoR32", "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
    ch, cn, sub = "ch_1PgafuB7WZ01zgkWXYmPNZs8", "cn_1Pgc75B7WZ01zgkWJMPt5riP", "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    base: dict[str, Any] = {"subscription_minor": 4900, "usage_minor": 1250}
    return {
        "invoice.created": event("invoice.created", invoice(inv, cus, status="draft", **base),
                                 event_id="evt_1SampleInvoiceCreated00", created=CREATED),
        "invoice.finalized": event("invoice.finalized", invoice(inv, cus, **base),
                                   event_id="evt_1SampleInvoiceFinalized", created=CREATED + 60),
        "invoice.sent": event("invoice.sent", invoice(inv, cus, **base),
                              event_id="evt_1SampleInvoiceSent000000", created=CREATED + 61),
        "invoice.payment_failed": event("invoice.payment_failed", invoice(inv, cus, attempt_count=1, **base),
                                        event_id="evt_1SampleInvoicePayFailed", created=CREATED + 3600),
        "invoice.payment_action_required": event(
            "invoice.payment_action_required", invoice(inv, cus, attempt_count=1, **base),
            event_id="evt_1SampleInvoiceActionReq", created=CREATED + 3700),
        "invoice.paid": event("invoice.paid", invoice(inv, cus, status="paid", paid_at=CREATED + 90000, **base),
                              event_id="evt_1SampleInvoicePaid000000", created=CREATED + 90000),
        "charge.refunded": event("charge.refunded", charge(ch, cus, amount=6150, refunded=1250),
                                 event_id="evt_1SampleChargeRefunded00", created=CREATED + 100000),
        "credit_note.created": event("credit_note.created",
                                     credit_note(cn, cus, inv, total=500, created=CREATED + 110000),
                                     event_id="evt_1SampleCreditNote000000", created=CREATED + 110000),
        "customer.subscription.created": event("customer.subscription.created", subscription(sub, cus),
                                               event_id="evt_1SampleSubCreated000000", created=CREATED - 86400),
        "customer.subscription.updated": event("customer.subscription.updated",
                                               subscription(sub, cus, status="past_due"),
                                               event_id="evt_1SampleSubUpdated000000", created=CREATED + 3601),
        "customer.subscription.deleted": event("customer.subscription.deleted",
                                               subscription(sub, cus, status="canceled"),
                                               event_id="evt_1SampleSubDeleted000000", created=CREATED + 200000),
        "billing.alert.triggered": event("billing.alert.triggered", billing_alert("alrt_1SampleUsage", cus),
                                         event_id="evt_1SampleBillingAlert00000", created=CREATED + 120000),
    }  # fmt: skip


def refresh_fixtures() -> None:
    """Re-extract our objects from Stripe's full fixture file in ../shared."""
    resources = json.loads(SHARED_FIXTURES.read_text())["resources"]
    current = json.loads(FIXTURES.read_text())
    current["resources"] = {name: resources[name] for name in FIXTURE_NAMES}
    FIXTURES.write_text(json.dumps(current, indent=1, sort_keys=True))
    fixtures.cache_clear()


def write_samples() -> list[Path]:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, stripe_event in sample_events().items():
        path = SAMPLES / f"{event_type.replace('.', '_')}.json"
        path.write_text(json.dumps(signed_request(stripe_event, timestamp=stripe_event["created"]), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    if "--refresh-fixtures" in sys.argv:
        refresh_fixtures()
    for written_path in write_samples():
        print(written_path.relative_to(ROOT))
