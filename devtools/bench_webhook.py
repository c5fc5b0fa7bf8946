"""Webhook throughput on in-process moto: the handler next to a baseline of (signature verify +
one TransactWriteItems), both measured here on equally fresh tables.

Each pair is measured twice: on stock moto, whose TransactWriteItems deep-copies every touched table
once per item (cost grows with table size x items, see devtools/moto_rollback.py), and on moto with
item-level rollback, which costs per item written as DynamoDB does. The targets are judged on the
second; both are printed. `smoke=True` runs the same paths on a handful of events (make test)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import time
from typing import Any

N = 300
WARMUP = 30
SMOKE_N, SMOKE_WARMUP = 12, 3


def _signed_events(prefix: str, count: int) -> list[dict[str, Any]]:
    from devtools import stripe_events as se

    base = se.sample_events()["invoice.paid"]
    requests = []
    for i in range(count):
        event = json.loads(json.dumps(base))
        event["id"] = f"evt_1{prefix}{i:06d}"
        event["data"]["object"].update(id=f"in_{prefix}{i}", customer=f"cus_bench{i % 50}")
        requests.append(se.signed_request(event))
    return requests


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)]
    return statistics.median(ordered) * 1000, p99 * 1000, len(samples) / sum(samples)


def _tables() -> dict[str, str]:
    import boto3

    from devtools.embedded_aws import EmbeddedAws

    class InProcess(EmbeddedAws):
        def __init__(self) -> None:
            self.endpoint = ""

        def client(self, service: str, region: str = "eu-west-1") -> Any:
            return boto3.client(service, region_name=region)

    aws = InProcess()
    aws.client("secretsmanager").create_secret(Name="bench/stripe", SecretString=_secret())
    return aws.create_billing_tables("bench")


def _secret() -> str:
    from devtools.stripe_events import TEST_SECRET

    return TEST_SECRET


def measure(item_level_rollback: bool = True, *, smoke: bool = False) -> dict[str, tuple[float, float, float]]:
    """{"floor"|"baseline"|"handler": (p50 ms, p99 ms, events/s)} on fresh tables for each."""
    n, warmup = (SMOKE_N, SMOKE_WARMUP) if smoke else (N, WARMUP)
    from contextlib import nullcontext

    from moto import mock_aws

    from devtools import moto_rollback

    storage = moto_rollback.item_level_rollback if item_level_rollback else nullcontext
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL",)}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1")
    results = {}
    try:
        with mock_aws(), storage():
            results["floor"] = _baseline(_tables(), n, warmup, same_items=False)
        with mock_aws(), storage():
            results["baseline"] = _baseline(_tables(), n, warmup, same_items=True)
        with mock_aws(), storage(), contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF lines
            results["handler"] = _handler(_tables(), n, warmup)
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value
    return results


def _baseline(tables: dict[str, str], n: int, warmup: int, *, same_items: bool) -> tuple[float, float, float]:
    """Signature verify + one TransactWriteItems: either the very items the handler writes for the
    event (built before the clock starts) or a single put of the event id (the floor)."""
    from datetime import UTC, datetime

    import boto3
    import stripe
    from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables
    from finops_guard.billing.ledger_rules import effects_of

    client = boto3.client("dynamodb")
    store = BillingStore(
        BillingTables(*(tables[r] for r in ("events", "ledger", "objects", "alerts", "dunning"))), client=client
    )
    requests = _signed_events("Same" if same_items else "Base", n + warmup)
    now = datetime.now(UTC)
    if same_items:
        planned = [store._items(effects_of(json.loads(r["body"]), dunning_steps=[]), now) for r in requests]
    else:
        planned = [
            [{"Put": {"TableName": tables["events"], "Item": {"event_id": {"S": json.loads(r["body"])["id"]}},
                      "ConditionExpression": "attribute_not_exists(event_id)"}}]
            for r in requests
        ]  # fmt: skip
    timings = []
    for i, (request, items) in enumerate(zip(requests, planned, strict=True)):
        started = time.perf_counter()
        stripe.Webhook.construct_event(request["body"], request["headers"]["Stripe-Signature"], _secret(), 300)
        client.transact_write_items(TransactItems=items)
        if i >= warmup:
            timings.append(time.perf_counter() - started)
    return _percentiles(timings)


def _handler(tables: dict[str, str], n: int, warmup: int) -> tuple[float, float, float]:
    from finops_guard.billing import runtime
    from finops_guard.core.adapters import secrets

    from devtools.lambda_runner import FakeContext, load_handler

    os.environ.update(
        FINOPSGUARD_STRIPE_SECRET_NAME="bench/stripe",
        FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME="bench/stripe-previous",
        FINOPSGUARD_STRIPE_EVENTS_TABLE=tables["events"],
        FINOPSGUARD_LEDGER_TABLE=tables["ledger"],
        FINOPSGUARD_BILLING_OBJECTS_TABLE=tables["objects"],
        FINOPSGUARD_BILLING_ALERTS_TABLE=tables["alerts"],
        FINOPSGUARD_DUNNING_TABLE=tables["dunning"],
        FINOPSGUARD_BILLING_THRESHOLDS="{}",
        POWERTOOLS_SERVICE_NAME="stripe-webhook",
        POWERTOOLS_METRICS_NAMESPACE="FinOpsGuard",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    runtime.billing_settings.cache_clear()
    runtime.billing_store.cache_clear()
    secrets.clear_cache()
    handler = load_handler("stripe_webhook")
    context = FakeContext("bench-webhook", timeout_s=15)
    timings = []
    for i, request in enumerate(_signed_events("Hand", n + warmup)):
        started = time.perf_counter()
        reply = handler.lambda_handler(request, context)
        if i >= warmup:
            timings.append(time.perf_counter() - started)
        assert reply["statusCode"] == 200, reply
    return _percentiles(timings)


def measure_logic_only(n: int = 2000) -> float:
    """Events/s through the real handler code (signature verify, effects, transaction building)
    with an in-memory ledger: what this code costs without moto's storage."""
    from datetime import UTC, datetime

    from finops_guard.billing.settings import BillingSettings
    from finops_guard.billing.stripe_ledger import handle_webhook

    from devtools import stripe_events as se

    class Building:
        def __init__(self) -> None:
            from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables

            self.store = BillingStore(BillingTables("e", "l", "o", "a", "d"), client=object())

        def apply(self, effects: Any, now: datetime) -> str:
            self.store._items(effects, now)  # build the exact TransactItems, skip the network
            return "applied"

        def settle_invoice(self, invoice_id: str, now: datetime) -> tuple[int, int]:
            return (0, 0)

        def raise_threshold_alerts(self, effects: Any, thresholds: Any, now: datetime) -> list[str]:
            return []

        def confirm_invoice_request(self, request_id: str, event_id: str, created: int, now: datetime) -> int | None:
            return None

    settings = BillingSettings("s", None, "e", "l", "o", "a", "d", {}, [(0, "email")], 262_144)
    requests = _signed_events("Logic", n)
    ledger = Building()
    started = time.perf_counter()
    for request in requests:
        outcome = handle_webhook(request, settings=settings, secrets=lambda: [se.TEST_SECRET], ledger=ledger,
                                 now=lambda: datetime.now(UTC))  # fmt: skip
        assert outcome.status == 200
    return len(requests) / (time.perf_counter() - started)
