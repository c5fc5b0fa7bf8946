"""The reconciliation handler on the embedded AWS against the Stripe fake on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer
from finops_guard.billing import runtime
from finops_guard.billing.billing_notifier import new_alerts
from finops_guard.core.adapters import secrets

from devtools.stripe_fake import StripeFake
from tests.conftest import load_handler
from tests.integration.conftest import FakeContext, emitted_metrics, logged_by

pytestmark = pytest.mark.integration
KEY_SECRET = "finops-guard/test/stripe-api-key"
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
EVENT = {"scheduled_time": "2026-11-16T06:00:00Z"}
_plain = TypeDeserializer().deserialize


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def recon(deployed, monkeypatch):
    tables = deployed.aws.create_billing_tables()
    fake = StripeFake(now=lambda: epoch(NOW)).start()
    deployed.aws.put_secret(KEY_SECRET, fake.api_key)
    env = {
        "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": KEY_SECRET,
        "FINOPSGUARD_STRIPE_API_BASE": fake.base_url,
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "POWERTOOLS_SERVICE_NAME": "reconciliation",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINOPSGUARD_VARIANCE_PERCENT", raising=False)
    monkeypatch.delenv("FINOPSGUARD_RECONCILIATION_DAYS", raising=False)
    handler = load_handler("reconciliation")

    def clear() -> None:
        runtime.billing_ops_settings.cache_clear()
        runtime.stripe_api.cache_clear()
        handler.reconciliation_store.cache_clear()
        secrets.clear_cache()

    clear()
    deployed.tables, deployed.fake, deployed.handler = tables, fake, handler
    yield deployed
    fake.stop()
    clear()


def invoke(recon, event=None) -> dict:
    return recon.handler.lambda_handler(event or EVENT, FakeContext("finops-guard-test-reconciliation"))


def book(recon, invoice_id: str, customer: str, amount: int, currency: str = "USD", *, paid_at=None) -> None:
    """A ledger entry as the webhook writes it for a paid invoice (one ledger kind), plus its month total."""
    at = paid_at or NOW - timedelta(days=2)
    month, stamp = at.strftime("%Y-%m"), at.strftime("%Y-%m-%dT%H:%M:%SZ")
    dynamodb = recon.aws.client("dynamodb")
    dynamodb.put_item(
        TableName=recon.tables["ledger"],
        Item={
            "customer_id": {"S": customer},
            "entry_key": {"S": f"{stamp}#{invoice_id}#subscription"},
            "month": {"S": month},
            "kind": {"S": "subscription"},
            "amount_minor": {"N": str(amount)},
            "currency": {"S": currency},
            "source_id": {"S": invoice_id},
            "invoice_id": {"S": invoice_id},
            "event_id": {"S": f"evt_{invoice_id}"},
            "occurred_at": {"S": stamp},
            "recorded_at": {"S": stamp},
        },
    )
    dynamodb.update_item(
        TableName=recon.tables["ledger"],
        Key={"customer_id": {"S": customer}, "entry_key": {"S": f"TOTAL#{month}#{currency}"}},
        UpdateExpression="ADD total_minor :a SET #m = :m, currency = :c",
        ExpressionAttributeNames={"#m": "month"},
        ExpressionAttributeValues={":a": {"N": str(amount)}, ":m": {"S": month}, ":c": {"S": currency}},
    )


def seed(
    recon, invoice_id, customer, amount, currency="usd", *, booked=None, status="paid", days_ago=3, paid_at=None, **kw
):
    created = epoch(NOW - timedelta(days=days_ago))
    recon.fake.add_invoice(customer=customer, currency=currency, amount_minor=amount, status=status,
                           created=created, invoice_id=invoice_id, **kw)  # fmt: skip
    if booked is not None:
        book(recon, invoice_id, customer, booked, currency.upper(), paid_at=paid_at)


def item(recon, role: str, key: str, value: str) -> dict | None:
    found = recon.aws.client("dynamodb").get_item(TableName=recon.tables[role], Key={key: {"S": value}}).get("Item")
    return None if found is None else {k: _plain(v) for k, v in found.items()}


def alerts(recon) -> list[dict]:
    items = recon.aws.client("dynamodb").scan(TableName=recon.tables["alerts"])["Items"]
    return sorted(({k: _plain(v) for k, v in i.items()} for i in items), key=lambda a: a["alert_id"])


def list_requests(recon) -> list:
    return [r for r in recon.fake.requests if r.method == "GET" and r.path == "/v1/invoices"]


def seed_mixed(recon) -> None:
    seed(recon, "in_a1", "cus_a", 10000, booked=10000)
    seed(recon, "in_a2", "cus_a", 5000, booked=5000)
    seed(recon, "in_b1", "cus_b", 20000, booked=20000)
    seed(recon, "in_b2", "cus_b", 7000, booked=6000)  # the one difference: cus_b USD 27000 vs 26000
    seed(recon, "in_j1", "cus_j", 50000, "jpy", booked=50500)  # exactly 1 %: not a mismatch
    seed(recon, "in_k1", "cus_k", 12345, "kwd", booked=12345)
    seed(recon, "in_old", "cus_a", 9999, booked=1, days_ago=31, paid_at=NOW - timedelta(days=31))  # outside
    seed(recon, "in_due", "cus_j", 3000, "jpy", status="open", due_date=epoch(NOW - timedelta(days=1)))


def test_one_mismatch_among_several_customers_opens_one_alert_listing_its_invoice(recon, capsys):
    seed_mixed(recon)
    reply = invoke(recon)
    [metrics] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "ReconciliationRuns" in line]
    assert (metrics["ReconciliationRuns"], metrics["ReconciliationMismatches"], metrics["ReconciliationPastDue"]) == (
        [1.0], [1.0], [1.0]
    )  # fmt: skip
    assert reply["mismatches"] == 1 and reply["past_due"] == 1 and reply["alert"] == "opened"
    assert (reply["invoices_seen"], reply["pairs_compared"]) == (7, 4)
    assert reply["ledger_rows_seen"] == 7  # Oct + Nov entries, TOTAL# rows skipped
    assert list_requests(recon)[0].params["created"] == {"gte": str(epoch(NOW - timedelta(days=30)))}

    [alert] = alerts(recon)
    assert (alert["alert_id"], alert["kind"], alert["status"]) == (
        "ledger_mismatch#2026-11-16",
        "ledger_mismatch",
        "open",
    )
    assert alert["opened_at"] == "2026-11-16T06:00:00+00:00"
    detail = alert["detail"]
    assert (detail["mismatch_count"], detail["past_due_count"], detail["variance_percent"]) == (1, 1, Decimal(1))
    [pair] = detail["mismatches"]
    assert (pair["customer_id"], pair["currency"], pair["stripe_minor"], pair["ledger_minor"]) == (
        "cus_b", "USD", 27000, 26000
    )  # fmt: skip
    assert pair["variance_percent"] == Decimal("3.7038")
    assert pair["invoices"] == [
        {"invoice_id": "in_b2", "customer_id": "cus_b", "currency": "USD", "stripe_minor": 7000,
         "ledger_minor": 6000, "stripe_status": "paid"}
    ]  # fmt: skip

    latest = item(recon, "objects", "object_id", "reconciliation#latest")
    assert latest["object_type"] == "reconciliation" and latest["status"] == "mismatch"
    assert latest["alert_id"] == "ledger_mismatch#2026-11-16" and latest["mismatches"] == detail["mismatches"]
    assert latest["window_start"] == "2026-10-17T06:00:00Z" and latest["ran_at"] == "2026-11-16T06:00:00Z"
    assert [p["invoice_id"] for p in latest["past_due"]] == ["in_due"] and latest["past_due_count"] == 1
    dated = item(recon, "objects", "object_id", "reconciliation#2026-11-16")
    same = ("object_id", "updated_at")
    assert {k: v for k, v in dated.items() if k not in same} == {k: v for k, v in latest.items() if k not in same}
    assert len(new_alerts(recon.aws.stream_records(recon.tables["alerts"]))) == 1


def test_rerun_the_same_day_refreshes_the_alert_without_opening_a_second_card(recon):
    seed_mixed(recon)
    invoke(recon)
    seed(recon, "in_b3", "cus_b", 1000)  # paid, not booked
    again = invoke(recon, {"scheduled_time": "2026-11-16T09:00:00Z"})
    assert again["alert"] == "updated"
    [alert] = alerts(recon)
    assert alert["opened_at"] == "2026-11-16T06:00:00+00:00" and alert["updated_at"] == "2026-11-16T09:00:00+00:00"
    assert [i["invoice_id"] for i in alert["detail"]["mismatches"][0]["invoices"]] == ["in_b2", "in_b3"]
    assert len(new_alerts(recon.aws.stream_records(recon.tables["alerts"]))) == 1
    assert item(recon, "objects", "object_id", "reconciliation#latest")["ran_at"] == "2026-11-16T09:00:00Z"


def test_clean_run_the_next_day_resolves_the_open_alert(recon):
    seed_mixed(recon)
    invoke(recon)
    book(recon, "in_b2", "cus_b", 1000, paid_at=NOW - timedelta(days=1))  # the missing 1000 is booked late
    reply = invoke(recon, {"scheduled_time": "2026-11-17T06:00:00Z"})
    assert reply["mismatches"] == 0 and reply["alert"] is None and reply["resolved"] == ["ledger_mismatch#2026-11-16"]
    [alert] = alerts(recon)
    assert (alert["status"], alert["resolved_at"]) == ("resolved", "2026-11-17T06:00:00+00:00")
    latest = item(recon, "objects", "object_id", "reconciliation#latest")
    assert latest["status"] == "clean" and latest["mismatches"] == [] and latest["alert_id"] is None
    assert item(recon, "objects", "object_id", "reconciliation#2026-11-16")["status"] == "mismatch"
    assert invoke(recon, {"scheduled_time": "2026-11-17T07:00:00Z"})["resolved"] == []


def test_a_persisting_mismatch_opens_the_new_days_alert_and_resolves_yesterdays(recon):
    seed_mixed(recon)
    invoke(recon)
    reply = invoke(recon, {"scheduled_time": "2026-11-17T06:00:00Z"})
    assert reply["alert"] == "opened" and reply["resolved"] == ["ledger_mismatch#2026-11-16"]
    assert [(a["alert_id"], a["status"]) for a in alerts(recon)] == [
        ("ledger_mismatch#2026-11-16", "resolved"),
        ("ledger_mismatch#2026-11-17", "open"),
    ]


def test_pagination_follows_every_page_and_compares_all_invoices(recon):
    for i in range(250):
        seed(recon, f"in_p{i:03d}", f"cus_{i % 5}", 1000 + i, days_ago=1 + i % 20, booked=1000 + i)
    recon.fake.add_invoice(customer="cus_3", currency="usd", amount_minor=5000, invoice_id="in_missing",
                           created=epoch(NOW - timedelta(days=29)))  # fmt: skip  # paid, never booked
    reply = invoke(recon)
    requests = list_requests(recon)
    assert len(requests) == 3 and [r.status for r in requests] == [200, 200, 200]
    assert "starting_after" not in requests[0].params and "starting_after" in requests[2].params
    assert reply["invoices_seen"] == 251 and reply["pairs_compared"] == 5 and reply["mismatches"] == 1
    [pair] = alerts(recon)[0]["detail"]["mismatches"]
    assert pair["customer_id"] == "cus_3" and [i["invoice_id"] for i in pair["invoices"]] == ["in_missing"]


def test_threshold_and_window_come_from_settings(recon, monkeypatch):
    seed_mixed(recon)
    monkeypatch.setenv("FINOPSGUARD_VARIANCE_PERCENT", "5")
    monkeypatch.setenv("FINOPSGUARD_RECONCILIATION_DAYS", "2")
    runtime.billing_ops_settings.cache_clear()
    recon.handler.reconciliation_store.cache_clear()
    reply = invoke(recon)
    assert list_requests(recon)[0].params["created"] == {"gte": str(epoch(NOW - timedelta(days=2)))}
    assert reply["invoices_seen"] == 0 and reply["mismatches"] == 0 and alerts(recon) == []
    monkeypatch.setenv("FINOPSGUARD_RECONCILIATION_DAYS", "30")
    runtime.billing_ops_settings.cache_clear()
    assert invoke(recon)["mismatches"] == 0  # cus_b's 3.7 % is within 5 %


def test_a_mismatch_after_a_clean_run_the_same_day_reopens_the_alert_and_posts_again(recon):
    seed_mixed(recon)
    invoke(recon)
    book(recon, "in_b2", "cus_b", 1000, paid_at=NOW - timedelta(days=1))
    assert invoke(recon, {"scheduled_time": "2026-11-16T08:00:00Z"})["resolved"] == ["ledger_mismatch#2026-11-16"]
    seed(recon, "in_b4", "cus_b", 9000)  # paid, not booked
    reply = invoke(recon, {"scheduled_time": "2026-11-16T10:00:00Z"})
    assert reply["alert"] == "reopened"
    [alert] = alerts(recon)
    assert (alert["status"], alert["opened_at"]) == ("open", "2026-11-16T10:00:00+00:00") and "resolved_at" not in alert
    opened = [a for _, a in new_alerts(recon.aws.stream_records(recon.tables["alerts"]))]
    assert [a["opened_at"] for a in opened] == ["2026-11-16T06:00:00+00:00", "2026-11-16T10:00:00+00:00"]


def test_billing_kpis_are_published_for_the_dashboard(recon, capsys):
    dynamodb = recon.aws.client("dynamodb")
    items = [{"price": {"S": "price_1"}, "unit_amount": {"N": "4900"}, "quantity": {"N": "2"},
              "interval": {"S": "month"}, "interval_count": {"N": "1"}}]  # fmt: skip
    for sub_id, currency, status in (
        ("sub_a", "USD", "active"),
        ("sub_b", "JPY", "active"),
        ("sub_c", "USD", "canceled"),
    ):
        dynamodb.put_item(TableName=recon.tables["objects"], Item={
            "object_id": {"S": sub_id}, "object_type": {"S": "subscription"}, "status": {"S": status},
            "currency": {"S": currency}, "items": {"L": [{"M": item} for item in items]}})  # fmt: skip
    for alert_id, kind in (("invoice_failed#in_1", "invoice_failed"), ("threshold_exceeded#cus_1#2026-11#USD",
                                                                       "threshold_exceeded")):  # fmt: skip
        dynamodb.put_item(TableName=recon.tables["alerts"], Item={
            "alert_id": {"S": alert_id}, "kind": {"S": kind}, "status": {"S": "open"},
            "opened_at": {"S": "2026-11-10T00:00:00Z"}})  # fmt: skip
    capsys.readouterr()
    summary = invoke(recon)
    assert summary["kpis"] == {"open_alerts": 2, "failed_invoices": 1, "mrr_minor": {"JPY": 9800, "USD": 9800}}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    mrr = {line["currency"]: line["MonthlyRecurringRevenue"] for line in emf if "MonthlyRecurringRevenue" in line}
    assert mrr == {"USD": [98.0], "JPY": [9800.0]}
    [main] = [line for line in emf if "OpenBillingAlerts" in line]
    assert main["OpenBillingAlerts"] == [2.0] and main["FailedInvoices"] == [1.0]


def test_without_a_stripe_api_key_the_run_is_skipped_without_paging_or_metrics(recon, capsys):
    recon.aws.client("secretsmanager").put_secret_value(SecretId=KEY_SECRET, SecretString="placeholder-0a1b2c")
    secrets.clear_cache()
    runtime.stripe_api.cache_clear()
    capsys.readouterr()
    summary = invoke(recon)
    assert summary == {"skipped": "no Stripe API key"}
    assert '"_aws"' not in capsys.readouterr().out


def test_with_kpi_metrics_off_only_the_mismatch_alarms_metric_is_sent_and_the_kpis_are_logged(
    recon, capsys, monkeypatch
):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    seed_mixed(recon)
    capsys.readouterr()
    with logged_by("reconciliation") as logged:
        reply = invoke(recon)

    out = capsys.readouterr().out
    assert emitted_metrics(out) == {"ReconciliationMismatches"}
    [emf] = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert emf["ReconciliationMismatches"] == [1.0]
    assert logged.extra_of("reconciliation finished")["past_due"] == 1
    kpis = logged.extra_of("billing KPIs")
    assert {key: kpis[key] for key in ("open_alerts", "failed_invoices", "mrr_minor")} == reply["kpis"]


def test_with_kpi_metrics_off_a_clean_run_still_reports_zero_mismatches(recon, capsys, monkeypatch):
    # The Mismatches alarm keeps the last run's state: only a clean run's 0 clears it.
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    seed(recon, "in_a1", "cus_a", 10000, booked=10000)
    capsys.readouterr()
    invoke(recon)

    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emitted_metrics(json.dumps(emf)) == {"ReconciliationMismatches"} and emf["ReconciliationMismatches"] == [0.0]
