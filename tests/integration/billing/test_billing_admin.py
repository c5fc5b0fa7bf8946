"""The finance admin API's domain against the embedded AWS (moto server) and the loopback Stripe fake:
alert retry/resend with Stripe idempotency, portal sessions, the summary maths over the real stored
shapes, the exact ledger CSV and the weekly snapshot in a versioned, encrypted bucket."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from finops_guard.billing import billing_admin as ba
from finops_guard.billing.adapters.billing_reads import BillingReads
from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables
from finops_guard.billing.adapters.stripe_api import StripeApi, StripeUnavailable
from finops_guard.billing.api import ApiError
from finops_guard.billing.ledger_rules import Effects, LedgerEntry, effects_of
from finops_guard.core.adapters.export_bucket import ExportBucket

from devtools import stripe_events as se
from devtools.stripe_fake import StripeFake

pytestmark = pytest.mark.integration

NOW = datetime(2024, 8, 14, 9, 30, tzinfo=UTC)
CUSTOMER = "cus_QXg1o8vcGmoR32"
BUCKET = "finops-guard-test-exports"


class Admin:
    def __init__(self, aws, tables: dict[str, str], fake: StripeFake) -> None:
        self.aws = aws
        self.tables = tables
        self.fake = fake
        self.dynamodb = aws.client("dynamodb")
        self.operations: list[str] = []
        self.dynamodb.meta.events.register("before-call.dynamodb.*", self._record)
        self.reads = BillingReads(
            ledger_table=tables["ledger"], objects_table=tables["objects"], alerts_table=tables["alerts"],
            client=self.dynamodb,
        )  # fmt: skip
        self.store = BillingStore(
            BillingTables(tables["events"], tables["ledger"], tables["objects"], tables["alerts"], tables["dunning"]),
            client=aws.client("dynamodb"),
        )
        self.api = StripeApi(lambda: fake.api_key, api_base=fake.base_url)
        self._events = 0

    def _record(self, model, **_):
        self.operations.append(model.name)

    def webhook(self, stripe_event: dict, now: datetime = NOW) -> str:
        """What the Stripe webhook does with a verified event (effects, commit, settlement)."""
        effects = effects_of(stripe_event, dunning_steps=[])
        outcome = self.store.apply(effects, now)
        if effects.settle_invoice:
            self.store.settle_invoice(effects.settle_invoice, now)
        return outcome

    def failed_invoice(self, invoice_id: str, *, amount_minor: int = 4900, currency: str = "usd") -> str:
        """An open invoice in the fake whose payment failed, as the webhook records it: the alert id."""
        invoice = self.fake.add_invoice(
            customer=CUSTOMER, currency=currency, amount_minor=amount_minor, status="open",
            created=int((NOW - timedelta(days=3)).timestamp()), invoice_id=invoice_id,
        )  # fmt: skip
        invoice.update(attempt_count=1, attempted=True)
        self._events += 1
        created = int((NOW - timedelta(days=2)).timestamp())
        event = se.event("invoice.payment_failed", invoice, event_id=f"evt_failed{self._events}", created=created)
        assert self.webhook(event, NOW - timedelta(days=2)) == "applied"
        return f"invoice_failed#{invoice_id}"

    def alert(self, alert_id: str) -> dict:
        found = self.reads.alert(alert_id)
        assert found is not None
        return found

    def table_items(self, role: str) -> list[dict]:
        return self.aws.client("dynamodb").scan(TableName=self.tables[role])["Items"]

    def pay_requests(self) -> list[tuple[str, str | None, int]]:
        return [(r.path, r.idempotency_key, r.status) for r in self.fake.requests if r.path.endswith("/pay")]


@pytest.fixture
def admin(aws):
    aws.reset()
    tables = aws.create_billing_tables()
    with StripeFake(now=lambda: int(NOW.timestamp())) as fake:
        fake.add_customer(CUSTOMER, email="billing@example.com", name="Example Ltd")
        yield Admin(aws, tables, fake)


# --- retry ----------------------------------------------------------------------------------------


def test_retry_pays_the_invoice_once_and_resolves_the_alert(admin):
    alert_id = admin.failed_invoice("in_retry_ok")
    reply = ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    assert (reply.status, reply.body) == (200, {"alert_id": alert_id, "status": "resolved", "invoice_status": "paid"})
    assert admin.pay_requests() == [
        ("/v1/invoices/in_retry_ok/pay", "finops-guard:invoice_failed#in_retry_ok:pay:1", 200)
    ]
    assert admin.fake.invoices["in_retry_ok"]["status"] == "paid"
    stored = admin.alert(alert_id)
    assert {k: stored.get(k) for k in ("status", "resolved_by", "resolved_at", "retry_count", "claimed_at")} == {
        "status": "resolved",
        "resolved_by": "retry",
        "resolved_at": "2024-08-14T09:30:00+00:00",
        "retry_count": 1,
        "claimed_at": None,
    }
    assert "Scan" not in admin.operations


def test_retry_resolves_even_when_the_paid_webhook_lands_while_the_claim_is_held(admin):
    # Stripe delivers invoice.paid before /pay returns: the webhook's settlement skips the alert
    # (it is `retrying`, not open), the retry itself resolves it; the ledger is booked once.
    alert_id = admin.failed_invoice("in_retry_hook")
    admin.fake.on_event(lambda event: admin.webhook(event) if event["type"] == "invoice.paid" else None)
    reply = ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    assert reply.status == 200 and admin.fake.callback_errors == []
    assert admin.alert(alert_id)["status"] == "resolved"
    entries = [i for i in admin.table_items("ledger") if not i["entry_key"]["S"].startswith("TOTAL#")]
    assert [(e["kind"]["S"], e["amount_minor"]["N"], e["invoice_id"]["S"]) for e in entries] == [
        ("booking_fee", "4900", "in_retry_hook")
    ]


def test_declined_retry_keeps_the_alert_open_with_the_error_and_answers_402(admin):
    alert_id = admin.failed_invoice("in_retry_declined")
    admin.fake.decline_next_payment("in_retry_declined", code="insufficient_funds")
    reply = ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    assert (reply.status, reply.body) == (
        402,
        {"error": "payment declined", "code": "insufficient_funds", "alert_id": alert_id},
    )
    stored = admin.alert(alert_id)
    assert stored["status"] == "open" and stored["retry_count"] == 1 and "claimed_at" not in stored
    assert stored["last_retry_error"] == {
        "code": "insufficient_funds",
        "message": "Your card was declined.",
        "attempt": 1,
        "at": "2024-08-14T09:30:00+00:00",
    }
    assert [a["alert_id"] for a in admin.reads.alerts_with_status("open")] == [alert_id]
    assert admin.fake.invoices["in_retry_declined"]["status"] == "open"


def test_a_crashed_retry_taken_over_after_five_minutes_replays_stripes_answer_and_pays_once(admin):
    alert_id = admin.failed_invoice("in_retry_crash")

    class CrashAfterStripe:
        """The Lambda dies after Stripe charged, before the alert was updated."""

        def pay_invoice(self, invoice, *, idempotency_key):
            admin.api.pay_invoice(invoice, idempotency_key=idempotency_key)
            raise TimeoutError("Task timed out after 30.00 seconds")

    with pytest.raises(TimeoutError):
        ba.retry_alert(alert_id, reads=admin.reads, api=CrashAfterStripe(), now=NOW)
    left = admin.alert(alert_id)
    assert (left["status"], left["retry_count"], left["claimed_at"]) == ("retrying", 1, "2024-08-14T09:30:00+00:00")

    with pytest.raises(ApiError) as busy:
        ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW + timedelta(minutes=4))
    assert busy.value.status == 409 and len(admin.pay_requests()) == 1

    reply = ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW + timedelta(minutes=6))
    assert reply.status == 200 and admin.alert(alert_id)["status"] == "resolved"
    key = "finops-guard:invoice_failed#in_retry_crash:pay:1"
    assert admin.pay_requests() == [("/v1/invoices/in_retry_crash/pay", key, 200)] * 2
    assert admin.fake.idempotent_replays() == 1
    invoice = admin.fake.invoices["in_retry_crash"]
    assert (invoice["status"], invoice["attempt_count"], invoice["amount_paid"]) == ("paid", 1, 4900)
    assert [e["type"] for e in admin.fake.events].count("invoice.paid") == 1


def test_stripe_5xx_propagates_and_the_takeover_uses_the_same_key(admin, monkeypatch):
    monkeypatch.setattr(stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0)
    alert_id = admin.failed_invoice("in_retry_5xx")
    admin.fake.fail_next(3, status=500)  # the first try and both of stripe-python's network retries
    with pytest.raises(StripeUnavailable):
        ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    assert admin.alert(alert_id)["status"] == "retrying"
    reply = ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW + timedelta(minutes=5, seconds=1))
    assert reply.status == 200
    key = "finops-guard:invoice_failed#in_retry_5xx:pay:1"
    assert {k for _, k, _ in admin.pay_requests()} == {key}
    assert [s for _, _, s in admin.pay_requests()] == [500, 500, 500, 200]
    assert admin.fake.invoices["in_retry_5xx"]["status"] == "paid"


def test_unknown_and_resolved_alerts_are_refused_and_nothing_is_written(admin):
    alert_id = admin.failed_invoice("in_retry_twice")
    assert ba.retry_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW).status == 200
    before = {role: admin.table_items(role) for role in ("alerts", "objects", "ledger", "dunning")}
    requests_before = len(admin.fake.requests)
    for action in (ba.retry_alert, ba.resend_alert):
        with pytest.raises(ApiError) as unknown:
            action("invoice_failed#in_nope", reads=admin.reads, api=admin.api, now=NOW)
        assert (unknown.value.status, unknown.value.reason) == (404, "no alert invoice_failed#in_nope")
        with pytest.raises(ApiError) as resolved:
            action(alert_id, reads=admin.reads, api=admin.api, now=NOW + timedelta(hours=1))
        assert (resolved.value.status, resolved.value.reason) == (409, "alert is resolved, not open")
    assert {role: admin.table_items(role) for role in before} == before
    assert len(admin.fake.requests) == requests_before


# --- resend ---------------------------------------------------------------------------------------


def test_resend_sends_the_open_invoice_with_a_numbered_key_and_keeps_the_alert_open(admin):
    alert_id = admin.failed_invoice("in_resend")
    first = ba.resend_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    second = ba.resend_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW + timedelta(minutes=1))
    assert first.status == second.status == 200
    assert first.body == {"alert_id": alert_id, "invoice_id": "in_resend", "sent": True}
    sends = [(r.path, r.idempotency_key, r.status) for r in admin.fake.requests if r.path.endswith("/send")]
    assert sends == [
        ("/v1/invoices/in_resend/send", "finops-guard:invoice_failed#in_resend:send:1", 200),
        ("/v1/invoices/in_resend/send", "finops-guard:invoice_failed#in_resend:send:2", 200),
    ]
    stored = admin.alert(alert_id)
    assert (stored["status"], stored["resend_count"]) == ("open", 2)


def test_resend_of_an_invoice_that_is_no_longer_open_answers_409_with_stripes_message(admin):
    alert_id = admin.failed_invoice("in_resend_void")
    admin.fake.invoices["in_resend_void"]["status"] = "void"
    reply = ba.resend_alert(alert_id, reads=admin.reads, api=admin.api, now=NOW)
    assert reply.status == 409
    assert reply.body["error"] == "You can only send an open invoice; invoice 'in_resend_void' is void."
    assert admin.alert(alert_id)["status"] == "open"


# --- portal session -------------------------------------------------------------------------------


def test_portal_session_returns_a_link_back_to_the_configured_url(admin):
    reply = ba.portal_session({"customer": CUSTOMER}, api=admin.api, return_url="https://app.example.com/billing")
    assert reply.status == 200 and reply.body["url"].startswith("https://billing.stripe.com/p/session/test_")
    [request] = [r for r in admin.fake.requests if r.path == "/v1/billing_portal/sessions"]
    assert request.params == {"customer": CUSTOMER, "return_url": "https://app.example.com/billing"}


def test_portal_session_for_an_unknown_customer_answers_404(admin):
    with pytest.raises(ApiError) as unknown:
        ba.portal_session({"customer": "cus_Unknown1"}, api=admin.api, return_url="https://app.example.com/billing")
    assert (unknown.value.status, unknown.value.reason) == (404, "no such customer: cus_Unknown1")


# --- summary --------------------------------------------------------------------------------------


def subscription_event(sub_id: str, status: str, currency: str, prices: list[tuple[int, int, str, int]], n: int):
    sub = se.subscription(sub_id, CUSTOMER, status=status, currency=currency)
    template = sub["items"]["data"][0]
    items = []
    for i, (unit_amount, quantity, interval, count) in enumerate(prices):
        item = json.loads(json.dumps(template))
        item["id"] = f"si_{sub_id}_{i}"
        item["quantity"] = quantity
        item["price"].update(id=f"price_{sub_id}_{i}", unit_amount=unit_amount, currency=currency)
        item["price"]["recurring"].update(interval=interval, interval_count=count)
        items.append(item)
    sub["items"]["data"] = items
    return se.event("customer.subscription.updated", sub, event_id=f"evt_sub{n}", created=int(NOW.timestamp()) - n)


def test_summary_adds_monthly_yearly_and_weekly_subscriptions_into_mrr_per_currency(admin):
    subs = [
        ("sub_monthly", "active", "usd", [(4900, 2, "month", 1)]),  # 9800
        ("sub_yearly", "trialing", "usd", [(99900, 1, "year", 1)]),  # 8325
        ("sub_weekly", "past_due", "usd", [(1250, 1, "week", 1), (500, 3, "week", 2)]),  # 5416.67 + 3250
        ("sub_yen", "active", "jpy", [(1500, 1, "month", 1), (10000, 1, "year", 1)]),  # 1500 + 833.33
        ("sub_gone", "canceled", "usd", [(100000, 1, "month", 1)]),
    ]
    for n, (sub_id, status, currency, prices) in enumerate(subs, start=1):
        assert admin.webhook(subscription_event(sub_id, status, currency, prices, n)) == "applied"
    admin.store.client.put_item(
        TableName=admin.tables["objects"],
        Item={
            "object_id": {"S": "reconciliation#latest"},
            "object_type": {"S": "reconciliation"},
            "status": {"S": "ok"},
            "checked_at": {"S": "2024-08-14T06:00:00+00:00"},
            "variance_minor": {"N": "0"},
            "mismatches": {"L": []},
        },
    )
    alert_id = admin.failed_invoice("in_summary", amount_minor=12345, currency="kwd")
    paid = se.event(
        "invoice.paid",
        admin.fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=1250, status="paid",
                               created=int(datetime(2024, 8, 2, tzinfo=UTC).timestamp())),
        event_id="evt_fee", created=int(datetime(2024, 8, 2, tzinfo=UTC).timestamp()),
    )  # fmt: skip
    assert admin.webhook(paid) == "applied"

    body = ba.billing_summary(reads=admin.reads, now=NOW).body
    assert body["mrr"] == {
        # 9800 + 8325 + 1250*52/12 + 1500*52/(12*2) = 9800 + 8325 + 5416.666.. + 3250 = 26791.67 -> 26792
        "USD": {"amount_minor": 26792, "formatted": "$267.92"},
        # 1500 + 10000/12 = 2333.33 -> 2333
        "JPY": {"amount_minor": 2333, "formatted": "¥2,333"},
    }
    assert body["booking_fees_mtd"] == {"USD": {"amount_minor": 1250, "formatted": "$12.50"}}
    assert body["open_alerts"]["count"] == 1 and body["open_alerts"]["by_kind"] == {"invoice_failed": 1}
    assert body["open_alerts"]["alerts"] == [
        {
            "alert_id": alert_id,
            "kind": "invoice_failed",
            "status": "open",
            "customer_id": CUSTOMER,
            "invoice_id": "in_summary",
            "amount_minor": 12345,
            "currency": "KWD",
            "opened_at": "2024-08-12T09:30:00+00:00",
            "amount": "12.345 KWD",
        }
    ]
    assert body["last_reconciliation"] == {
        "object_id": "reconciliation#latest",
        "object_type": "reconciliation",
        "status": "ok",
        "checked_at": "2024-08-14T06:00:00+00:00",
        "variance_minor": 0,
        "mismatches": [],
    }
    assert "Scan" not in admin.operations and admin.operations.count("Query") >= 3


# --- ledger CSV -----------------------------------------------------------------------------------


def book(admin: Admin, *entries: LedgerEntry) -> None:
    for n, entry in enumerate(entries):
        effects = Effects(f"evt_seed_{entry.entry_key}", "seed", ledger=[entry])
        assert admin.store.apply(effects, NOW) == "applied", n


LEDGER = (
    LedgerEntry("cus_B", "2024-08-03T10:00:00Z#in_jp#booking_fee", "2024-08", "booking_fee", 1500, "JPY", "in_jp",
                "in_jp", "evt_jp", "2024-08-03T10:00:00Z"),
    LedgerEntry("cus_A", "2024-08-03T10:00:00Z#cn_1#credit_adjustment", "2024-08", "credit_adjustment", -2000, "USD",
                "in_us", "cn_1", "evt_cn", "2024-08-03T10:00:00Z"),
    LedgerEntry("cus_A", "2024-08-01T09:00:00Z#in_us#subscription", "2024-08", "subscription", 4900, "USD", "in_us",
                "in_us", "evt_us", "2024-08-01T09:00:00Z"),
    LedgerEntry("cus_C", "2024-08-20T00:00:00Z#re_kw#credit_adjustment", "2024-08", "credit_adjustment", -12345,
                "KWD", None, "re_kw", "evt_kw", "2024-08-20T00:00:00Z"),
    LedgerEntry("cus_A", "2024-07-31T23:00:00Z#in_jul#subscription", "2024-07", "subscription", 4900, "USD",
                "in_jul", "in_jul", "evt_jul", "2024-07-31T23:00:00Z"),
)  # fmt: skip
AUGUST_CSV = (
    "occurred_at,customer_id,kind,amount,currency,amount_minor,invoice_id,source_id,event_id,entry_key\r\n"
    "2024-08-01T09:00:00Z,cus_A,subscription,49.00,USD,4900,in_us,in_us,evt_us,2024-08-01T09:00:00Z#in_us#subscription\r\n"
    "2024-08-03T10:00:00Z,cus_A,credit_adjustment,-20.00,USD,-2000,in_us,cn_1,evt_cn,"
    "2024-08-03T10:00:00Z#cn_1#credit_adjustment\r\n"
    "2024-08-03T10:00:00Z,cus_B,booking_fee,1500,JPY,1500,in_jp,in_jp,evt_jp,2024-08-03T10:00:00Z#in_jp#booking_fee\r\n"
    "2024-08-20T00:00:00Z,cus_C,credit_adjustment,-12.345,KWD,-12345,,re_kw,evt_kw,"
    "2024-08-20T00:00:00Z#re_kw#credit_adjustment\r\n"
)
JULY_CSV = (
    "occurred_at,customer_id,kind,amount,currency,amount_minor,invoice_id,source_id,event_id,entry_key\r\n"
    "2024-07-31T23:00:00Z,cus_A,subscription,49.00,USD,4900,in_jul,in_jul,evt_jul,"
    "2024-07-31T23:00:00Z#in_jul#subscription\r\n"
)


def test_export_csv_of_a_month_is_exact_for_usd_jpy_and_kwd_without_total_rows(admin):
    book(admin, *LEDGER)
    assert any(i["entry_key"]["S"].startswith("TOTAL#") for i in admin.table_items("ledger"))
    reply = ba.export_csv({"month": "2024-08"}, reads=admin.reads, now=NOW)
    assert reply.status == 200 and reply.body == AUGUST_CSV
    proxy = reply.to_proxy()
    assert proxy["headers"] == {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="ledger-2024-08.csv"',
    }
    assert "Scan" not in admin.operations


def test_export_csv_of_a_day_range_spans_months_and_excludes_the_to_day(admin):
    book(admin, *LEDGER)
    admin.reads.page_size = 1  # every entry on its own page: the listing follows LastEvaluatedKey
    reply = ba.export_csv({"from": "2024-07-31", "to": "2024-08-03"}, reads=admin.reads, now=NOW)
    assert admin.operations.count("Query") >= len(LEDGER)
    assert reply.body == JULY_CSV + AUGUST_CSV.split("\r\n", 1)[1].split("\r\n", 1)[0] + "\r\n"


def test_weekly_snapshot_writes_each_touched_month_to_the_versioned_encrypted_bucket(admin):
    s3 = admin.aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    book(admin, *LEDGER)
    bucket = ExportBucket(BUCKET, client=s3)
    monday = datetime(2024, 8, 5, 6, 0, tzinfo=UTC)
    keys = ba.weekly_snapshot(reads=admin.reads, bucket=bucket, now=monday)
    assert keys == [
        "ledger/2024-07/ledger-2024-07-as-of-2024-08-05.csv",
        "ledger/2024-08/ledger-2024-08-as-of-2024-08-05.csv",
    ]
    for key, text in zip(keys, (JULY_CSV, AUGUST_CSV), strict=True):
        stored = s3.get_object(Bucket=BUCKET, Key=key)
        assert stored["Body"].read().decode() == text
        assert stored["ContentType"] == "text/csv; charset=utf-8"
        assert stored["ServerSideEncryption"] == "AES256" and stored["VersionId"] not in (None, "null")
    # The same week exported again (a retried schedule) keeps both versions.
    assert ba.weekly_snapshot(reads=admin.reads, bucket=bucket, now=monday) == keys
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=keys[1])["Versions"]
    assert len(versions) == 2
