"""The Stripe webhook handler against moto: signatures, exactly once, ordering, the ledger."""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest
from finops_guard.core.adapters import secrets

from devtools import stripe_events as se
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext, clear_billing_caches, deploy_billing, emitted_metrics

pytestmark = pytest.mark.integration
SECRET_NAME = "finops-guard/test/stripe-webhook-secret"
PREVIOUS_NAME = "finops-guard/test/stripe-webhook-secret-previous"
CUSTOMER = "cus_QXg1o8vcGmoR32"
INVOICE = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"


@pytest.fixture
def billing(deployed, monkeypatch):
    thresholds = json.dumps({"USD": "100", "JPY": "50000", "KWD": "100"})
    yield deploy_billing(deployed, monkeypatch, FINOPSGUARD_BILLING_THRESHOLDS=thresholds)
    clear_billing_caches()


def post(request: dict) -> dict:
    return load_handler("stripe_webhook").lambda_handler(request, FakeContext("finops-guard-test-stripe-webhook"))


def deliver(stripe_event: dict, **kwargs) -> dict:
    return post(se.signed_request(stripe_event, **kwargs))


def scan(deployed, role: str) -> list[dict]:
    return deployed.aws.client("dynamodb").scan(TableName=deployed.tables[role])["Items"]


def ledger_entries(deployed) -> list[dict]:
    return [i for i in scan(deployed, "ledger") if not i["entry_key"]["S"].startswith("TOTAL#")]


def nothing_written(deployed) -> bool:
    return all(scan(deployed, role) == [] for role in ("events", "ledger", "objects", "alerts", "dunning"))


def samples() -> dict[str, dict]:
    return se.sample_events()


def fresh(event_type: str, **changes) -> dict:
    event = copy.deepcopy(samples()[event_type])
    event.update(changes)
    return event


def test_paid_invoice_books_subscription_and_booking_fee_entries_once(billing):
    reply = deliver(fresh("invoice.paid"))
    assert reply["statusCode"] == 200 and json.loads(reply["body"]) == {"received": True, "outcome": "applied"}
    entries = sorted((e["kind"]["S"], int(e["amount_minor"]["N"]), e["currency"]["S"]) for e in ledger_entries(billing))
    assert entries == [("booking_fee", 1250, "USD"), ("subscription", 4900, "USD")]
    again = deliver(fresh("invoice.paid"))
    assert json.loads(again["body"])["outcome"] == "duplicate" and len(ledger_entries(billing)) == 2


def test_concurrent_duplicate_deliveries_write_one_set(billing):
    request = se.signed_request(fresh("invoice.paid"))
    replies, errors = [], []

    def run():
        try:
            replies.append(post(copy.deepcopy(request)))
        except Exception as error:  # pragma: no cover - surfaced by the assert
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and [r["statusCode"] for r in replies] == [200] * 6
    outcomes = sorted(json.loads(r["body"])["outcome"] for r in replies)
    assert outcomes == ["applied"] + ["duplicate"] * 5
    assert len(ledger_entries(billing)) == 2 and len(scan(billing, "events")) == 1


def test_payment_failed_after_paid_does_not_reopen_the_invoice(billing):
    deliver(fresh("invoice.paid"))
    late = deliver(fresh("invoice.payment_failed"))
    assert json.loads(late["body"])["outcome"] == "stale"
    invoice = next(i for i in scan(billing, "objects") if i["object_id"]["S"] == INVOICE)
    assert invoice["status"]["S"] == "paid"
    assert scan(billing, "alerts") == [] and scan(billing, "dunning") == []
    assert {e["outcome"]["S"] for e in scan(billing, "events")} == {"applied", "stale"}


def test_same_second_events_at_the_same_rank_keep_the_later_delivery(billing):
    finalized = fresh("invoice.finalized")
    sent = fresh("invoice.sent", created=finalized["created"])
    deliver(finalized)
    assert json.loads(deliver(sent)["body"])["outcome"] == "applied"
    invoice = next(i for i in scan(billing, "objects") if i["object_id"]["S"] == INVOICE)
    assert invoice["last_event_type"]["S"] == "invoice.sent" and "sent_at" in invoice


def test_payment_failure_opens_an_alert_and_schedules_dunning_then_paid_settles_both(billing):
    deliver(fresh("invoice.payment_failed"))
    alerts = scan(billing, "alerts")
    assert [(a["alert_id"]["S"], a["status"]["S"]) for a in alerts] == [(f"invoice_failed#{INVOICE}", "open")]
    steps = sorted((s["step"]["S"], s["status"]["S"], s["due_at"]["S"]) for s in scan(billing, "dunning"))
    assert steps == [
        ("0#email", "pending", "2026-11-17T01:00:00Z"),
        ("1#sms", "pending", "2026-11-18T01:00:00Z"),
        ("3#email", "pending", "2026-11-20T01:00:00Z"),
    ]
    deliver(fresh("invoice.paid"))
    assert {a["status"]["S"] for a in scan(billing, "alerts")} == {"resolved"}
    assert {s["status"]["S"] for s in scan(billing, "dunning")} == {"cancelled"}


def test_settling_is_flagged_in_the_failure_transaction_and_cleared_last(billing, monkeypatch):
    from finops_guard.billing.adapters.billing_store import BillingStore

    deliver(fresh("invoice.payment_failed"))
    invoice = next(i for i in scan(billing, "objects") if i["object_id"]["S"] == INVOICE)
    assert invoice["needs_settlement"] == {"BOOL": True}
    original = BillingStore._conditional_update
    calls = []

    def crash_on_dunning(self, table, *args, **kwargs):
        calls.append(table)
        if table == billing.tables["dunning"]:
            raise RuntimeError("Lambda timed out")
        return original(self, table, *args, **kwargs)

    monkeypatch.setattr(BillingStore, "_conditional_update", crash_on_dunning)
    paid = fresh("invoice.paid")
    with pytest.raises(RuntimeError):
        deliver(paid)  # committed, then died before cancelling the dunning steps: Stripe redelivers
    monkeypatch.setattr(BillingStore, "_conditional_update", original)
    assert json.loads(deliver(paid)["body"])["outcome"] == "duplicate"
    assert {s["status"]["S"] for s in scan(billing, "dunning")} == {"cancelled"}
    invoice = next(i for i in scan(billing, "objects") if i["object_id"]["S"] == INVOICE)
    assert "needs_settlement" not in invoice and invoice["status"]["S"] == "paid"


def test_paying_an_invoice_that_never_failed_touches_no_alerts_or_dunning(billing, monkeypatch):
    from finops_guard.billing.adapters.billing_store import BillingStore

    monkeypatch.setattr(BillingStore, "_conditional_update", lambda *a, **k: pytest.fail("nothing to settle"))
    assert json.loads(deliver(fresh("invoice.paid"))["body"])["outcome"] == "applied"
    assert scan(billing, "alerts") == [] and scan(billing, "dunning") == []


def test_third_failed_attempt_escalates(billing):
    for attempt in (1, 2, 3):
        event = fresh("invoice.payment_failed", id=f"evt_1Attempt{attempt}xxxxxxxxxxxxxx", created=se.CREATED + attempt)
        event["data"]["object"]["attempt_count"] = attempt
        deliver(event)
    kinds = sorted(a["alert_id"]["S"].split("#")[0] for a in scan(billing, "alerts"))
    assert kinds == ["escalation", "invoice_failed"]
    steps = scan(billing, "dunning")
    assert len(steps) == 3 and {s["due_at"]["S"][:10] for s in steps} == {"2026-11-17", "2026-11-18", "2026-11-20"}


def test_refunds_and_credit_notes_are_negative_credit_adjustments(billing):
    deliver(fresh("charge.refunded"))
    more = fresh("charge.refunded", id="evt_1SecondRefundLevel00000", created=se.CREATED + 100100)
    more["data"]["object"]["amount_refunded"] = 2000
    deliver(more)
    deliver(fresh("charge.refunded"))  # the first level again (a retry with another id): nothing new
    deliver(fresh("credit_note.created"))
    credits = sorted(int(e["amount_minor"]["N"]) for e in ledger_entries(billing))
    assert credits == [-1250, -750, -500]


@pytest.mark.parametrize(("currency", "amount", "threshold_hit"), [("jpy", 52000, True), ("kwd", 100500, True)])
def test_zero_and_three_decimal_currencies_are_kept_in_minor_units(billing, currency, amount, threshold_hit):
    event = fresh("invoice.paid")
    inv = se.invoice(INVOICE, CUSTOMER, currency=currency, status="paid", subscription_minor=amount, paid_at=se.CREATED)
    event["data"]["object"] = inv
    deliver(event)
    entry = ledger_entries(billing)[0]
    assert (int(entry["amount_minor"]["N"]), entry["currency"]["S"]) == (amount, currency.upper())
    alerts = [a for a in scan(billing, "alerts") if a["kind"]["S"] == "threshold_exceeded"]
    assert bool(alerts) is threshold_hit  # JPY 52,000 >= 50,000; KWD 100.500 >= 100.000


def test_monthly_threshold_alert_is_raised_once(billing):
    deliver(fresh("invoice.paid"))  # USD 61.50 < 100
    assert scan(billing, "alerts") == []
    second = fresh("invoice.paid", id="evt_1SecondInvoicePaid000000")
    second["data"]["object"] = se.invoice(
        "in_second", CUSTOMER, status="paid", usage_minor=5000, paid_at=se.CREATED + 1
    )
    deliver(second)
    third = fresh("invoice.paid", id="evt_1ThirdInvoicePaid0000000")
    third["data"]["object"] = se.invoice("in_third", CUSTOMER, status="paid", usage_minor=5000, paid_at=se.CREATED + 2)
    deliver(third)
    alerts = scan(billing, "alerts")
    assert [a["alert_id"]["S"] for a in alerts] == [f"threshold_exceeded#{CUSTOMER}#2026-11#USD"]
    assert int(alerts[0]["amount_minor"]["N"]) == 11150


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda r: r["headers"].pop("Stripe-Signature"), 400, "missing Stripe-Signature header"),
        (lambda r: r["headers"].update({"Stripe-Signature": "t=1,v1=deadbeef"}), 400, "invalid signature"),
        (lambda r: r.update(body=r["body"].replace("4900", "4901")), 400, "invalid signature"),
        (lambda r: r.update(body="x" * 300_000), 413, "body over 262144 bytes"),
        (lambda r: r.update(body=None), 400, "empty body"),
    ],
)
def test_bad_requests_get_a_4xx_and_write_nothing(billing, mutate, status, reason):
    request = se.signed_request(fresh("invoice.paid"))
    mutate(request)
    reply = post(request)
    assert (reply["statusCode"], json.loads(reply["body"])["error"]) == (status, reason)
    assert nothing_written(billing)


def test_a_stale_signature_timestamp_is_refused(billing):
    reply = post(se.signed_request(fresh("invoice.paid"), timestamp=int(time.time()) - 301))
    assert reply["statusCode"] == 400 and json.loads(reply["body"])["error"] == "timestamp outside the tolerance"
    assert nothing_written(billing)


def test_malformed_json_with_a_valid_signature_is_a_400(billing):
    body = '{"id": "evt_1", "type": "invoice.paid", '
    reply = post(se.api_gateway_event(body, signature=se.sign(body)))
    assert reply["statusCode"] == 400 and json.loads(reply["body"])["error"] == "body is not JSON"
    assert nothing_written(billing)


def test_base64_bodies_are_verified_on_the_decoded_bytes(billing):
    reply = post(se.signed_request(fresh("invoice.paid"), base64_encoded=True))
    assert json.loads(reply["body"])["outcome"] == "applied"


def test_unknown_event_types_are_acknowledged_and_ignored(billing):
    reply = deliver(fresh("invoice.paid", type="customer.tax_id.created"))
    assert (reply["statusCode"], json.loads(reply["body"])["outcome"]) == (200, "ignored")
    assert nothing_written(billing)


def test_the_previous_secret_is_accepted_while_it_exists(billing):
    billing.aws.put_secret(PREVIOUS_NAME, "whsec_previous_secret_during_rotation")
    secrets.clear_cache()
    reply = deliver(fresh("invoice.paid"), secret="whsec_previous_secret_during_rotation")
    assert json.loads(reply["body"])["outcome"] == "applied"
    other = deliver(fresh("invoice.sent"), secret="whsec_some_other_secret")
    assert other["statusCode"] == 400


def test_every_sample_event_in_events_is_handled(billing):
    outcomes = {}
    for event_type, stripe_event in samples().items():
        outcomes[event_type] = json.loads(deliver(stripe_event)["body"])["outcome"]
    assert set(outcomes.values()) <= {"applied", "stale"}
    assert outcomes["invoice.paid"] == "applied" and outcomes["billing.alert.triggered"] == "applied"


def test_new_billing_alerts_reach_the_finance_channel_once_from_the_stream(billing, monkeypatch):
    deliver(fresh("invoice.payment_failed"))
    deliver(fresh("invoice.paid"))  # resolves it: a MODIFY that must not post again
    records = billing.aws.stream_records(billing.tables["alerts"])
    assert records[-1]["eventName"] == "MODIFY"  # (moto also streams an empty INSERT before the real one)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "billing-notifier")
    notifier = load_handler("billing_notifier")
    result = notifier.lambda_handler({"Records": records}, FakeContext("finops-guard-test-billing-notifier"))
    assert result == {"batchItemFailures": []}
    assert len(billing.chat.received) == 1
    card = billing.chat.received[0].json()["attachments"][0]["content"]
    assert card["body"][0]["text"] == f"Payment failed: {CUSTOMER} — $61.50"
    assert card["actions"][0]["url"] == f"https://dashboard.stripe.com/invoices/{INVOICE}"
    notifier.lambda_handler({"Records": records}, FakeContext("finops-guard-test-billing-notifier"))
    assert len(billing.chat.received) == 1  # a redelivered stream batch posts nothing twice


def test_a_chat_outage_returns_the_stream_records_for_retry(billing):
    from devtools.chat_recorder import Reply

    deliver(fresh("invoice.payment_failed"))
    records = billing.aws.stream_records(billing.tables["alerts"])
    billing.chat.then(*[Reply(503)] * 4)
    notifier = load_handler("billing_notifier")
    result = notifier.lambda_handler({"Records": records}, FakeContext("notifier"))
    opened = [r["eventID"] for r in records if r["dynamodb"].get("NewImage", {}).get("status", {}).get("S") == "open"]
    assert result == {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in opened]}


def test_warm_deliveries_make_no_secrets_manager_call_even_without_a_previous_secret(billing, monkeypatch):
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

    original = SecretsProvider._get
    asked = []

    def counting(self, name, **kwargs):
        asked.append(name)
        return original(self, name, **kwargs)

    monkeypatch.setattr(SecretsProvider, "_get", counting)
    deliver(fresh("invoice.paid"))
    assert asked == [SECRET_NAME, PREVIOUS_NAME]  # cold: the secret, and the rotation check
    deliver(fresh("invoice.sent", id="evt_1WarmSecondDelivery00000"))
    deliver(fresh("invoice.sent", id="evt_1WarmThirdDelivery000000"))
    assert len(asked) == 2


def test_a_secret_rolled_in_stripe_is_picked_up_on_the_first_delivery_it_signs(billing, monkeypatch):
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

    assert json.loads(deliver(fresh("invoice.paid"))["body"])["outcome"] == "applied"  # warm: secret cached
    rolled = "whsec_rolled_in_the_stripe_dashboard_0001"
    billing.aws.client("secretsmanager").put_secret_value(SecretId=SECRET_NAME, SecretString=rolled)
    original, asked = SecretsProvider._get, []
    monkeypatch.setattr(
        SecretsProvider, "_get", lambda self, name, **kw: asked.append(name) or original(self, name, **kw)
    )
    reply = deliver(fresh("customer.subscription.created", id="evt_1SignedWithTheRolledOne0"), secret=rolled)
    assert (reply["statusCode"], json.loads(reply["body"])["outcome"]) == (200, "applied")
    for n in range(5):  # forged deliveries: refused, and no more reads within the minute
        forged = deliver(fresh("invoice.sent", id=f"evt_1Forged{n}xxxxxxxxxxxxxxx"), secret="whsec_forged_000000")
        assert forged["statusCode"] == 400
    assert sorted(asked) == sorted([SECRET_NAME, PREVIOUS_NAME])


def test_with_kpi_metrics_off_an_applied_event_sends_no_metric(billing, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    capsys.readouterr()
    reply = deliver(fresh("invoice.paid"))

    assert json.loads(reply["body"])["outcome"] == "applied"
    assert emitted_metrics(capsys.readouterr().out) == set()


def test_with_kpi_metrics_off_a_bad_signature_still_feeds_the_signature_failures_alarm(billing, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    request = se.signed_request(fresh("invoice.paid"))
    request["headers"]["Stripe-Signature"] = "t=1,v1=deadbeef"
    capsys.readouterr()
    assert post(request)["statusCode"] == 400

    assert emitted_metrics(capsys.readouterr().out) == {"StripeSignatureFailures"}


def test_with_kpi_metrics_on_each_event_outcome_and_rejection_is_counted(billing, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "on")
    capsys.readouterr()
    deliver(fresh("invoice.paid"))
    assert emitted_metrics(capsys.readouterr().out) == {"StripeEventsApplied"}
    request = se.signed_request(fresh("invoice.paid"))
    request["headers"]["Stripe-Signature"] = "t=1,v1=deadbeef"
    post(request)
    assert emitted_metrics(capsys.readouterr().out) == {"StripeWebhookRejected", "StripeSignatureFailures"}
