"""The billing product's month: idle (no Stripe traffic), and scenario B's 10,000 Stripe events a
month through the webhook (sampled customer groups, weighted), the notifier, the hourly dunning
sender, the reconciliation, export and admin calls on the ledger replicated to full size."""

from __future__ import annotations

import copy
import json
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from devtools.selfcost.dynamodb import table_storage
from devtools.selfcost.lambdas import Invocation, cold_starts
from devtools.selfcost.metering import log_ingest_bytes
from devtools.selfcost.prices import GIB
from devtools.selfcost.simulation import MONTH, SAMPLE_GROUPS, Simulation, scheduled_event

STRIPE_EVENTS_PER_MONTH = 10_000
BILLING_TABLES = ("stripe-events", "billing-ledger", "billing-objects", "billing-alerts", "dunning", "invoice-requests")


def is_billing_table(name: str) -> bool:
    return any(name.endswith(s) for s in BILLING_TABLES)


def run_idle_billing(sim: Simulation, dunning_sample_every: int = 10) -> list[Invocation]:
    """The billing functions of a deployment that never hears from Stripe: the hourly dunning sender
    (every `dunning_sample_every`-th run executed, weighted), the daily reconciliation (the API key
    secret still holds its placeholder) and the weekly export."""
    first = len(sim.lambdas.records)
    for schedule in sim.facts.schedules:
        runs = sim.runs(schedule)
        if schedule.function == "dunning-sender":
            for i in range(0, len(runs), dunning_sample_every):
                represented = runs[i : i + dunning_sample_every]
                sim.lambdas.invoke_async(
                    "dunning-sender", scheduled_event(schedule, runs[i]), at=runs[i],
                    weight=Decimal(len(represented)), hours=[sim.lambdas.hour(r) for r in represented],
                    extra={"scheduler.invocation": Decimal(1)},
                )  # fmt: skip
        elif schedule.function in ("reconciliation", "billing-admin"):
            for at in runs:
                sim.lambdas.invoke_async(schedule.function, scheduled_event(schedule, at), at=at,
                                         extra={"scheduler.invocation": Decimal(1)})  # fmt: skip
    return sim.lambdas.records[first:]


# --- scenario B: 10,000 Stripe events a month ------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    group: int  # the customer group (a renamed copy of billing_month's five customers)
    index: int  # the event's position in billing_month's list
    at: float  # when Stripe delivers it (epoch seconds)
    event: dict[str, Any] | None  # built for sampled groups only


def _rename(event: dict[str, Any], group: int) -> dict[str, Any]:
    """A customer group's own ids: every demo id carries q<group>q (so the ledger can be replicated)."""
    text = json.dumps(event)
    text = (
        text.replace("demo", f"q{group:03d}q").replace("Demo", f"Q{group:03d}Q").replace("cus_", f"cus_q{group:03d}q")
    )
    return dict(json.loads(text))


def stripe_month(groups: int, sampled: int, seed: int = 7) -> list[Delivery]:
    """`groups` x billing_month's 72 events over November, each group shifted by 0-6 days and each
    event by up to an hour; a late or duplicate delivery keeps arriving after the event it follows."""
    from devtools.billing_month import month_of_events

    template = month_of_events()
    deliveries: list[Delivery] = []
    for group in range(groups):
        rng = random.Random(f"{seed}:{group}")
        offset = rng.randrange(0, 6 * 86400)
        last_for_object: dict[str, float] = {}
        for index, event in enumerate(template):
            obj = event["data"]["object"]
            at = event["created"] + offset + rng.randrange(0, 3600)
            key = str(obj.get("id") or obj.get("object"))
            if at <= last_for_object.get(key, 0):
                at = last_for_object[key] + 60  # Stripe delivered it after the one before it in the list
            last_for_object[key] = at
            built = None
            if group < sampled:
                built = _rename(copy.deepcopy(event), group)
                built["created"] += offset
                transitions = built["data"]["object"].get("status_transitions") or {}
                if transitions.get("paid_at"):
                    transitions["paid_at"] += offset
                if built["type"] == "credit_note.created":
                    built["data"]["object"]["created"] += offset
            deliveries.append(Delivery(group, index, float(at), built))
    return sorted(deliveries, key=lambda d: (d.at, d.group, d.index))


class StreamTail:
    """New records of the billing alerts table's stream since the last look (harness reads, not counted)."""

    def __init__(self, aws: Any, table: str) -> None:
        self.streams = aws.client("dynamodbstreams")
        self.arn = aws.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.after: str | None = None

    def new_records(self) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"StreamArn": self.arn, "ShardId": self.shard}
        if self.after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.after)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator)
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator") if page["Records"] else None
        if records:
            self.after = records[-1]["dynamodb"]["SequenceNumber"]
        return [{**r, "eventSourceARN": self.arn} for r in records]


def _access_log_bytes() -> int:
    """One API Gateway access log line in the stage's format, with typical values."""
    from infra.billing.billing_api import ACCESS_LOG_FIELDS

    sample = {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "ip": "3.18.12.63", "httpMethod": "POST",
              "resourcePath": "/stripe/webhook", "status": "200", "responseLength": "48",
              "requestTime": "17/Nov/2026:09:00:00 +0000", "integrationLatency": "38"}  # fmt: skip
    line = json.dumps({k: sample.get(k, "-") for k in ACCESS_LOG_FIELDS}, separators=(",", ":"))
    return log_ingest_bytes([line])


def run_stripe_month(
    sim: Simulation,
    fake: Any,
    take_events: Callable[[], list[dict[str, Any]]],
    sample_groups: int = SAMPLE_GROUPS,
    reconciliations: int = 3,
) -> tuple[list[Invocation], dict[str, Any]]:
    """The webhook month (sampled groups, weighted), the notifier on new billing alerts, and the hourly
    dunning sender interleaved with them; then the reconciliation, weekly export and admin calls on
    the ledger replicated to full size."""
    from devtools import stripe_events as se

    lambdas, start = sim.lambdas, sim.month_start
    groups = math.ceil(STRIPE_EVENTS_PER_MONTH / 72)
    deliveries = stripe_month(groups, sample_groups)
    group_weight = {g: Decimal(len(range(g, groups, sample_groups))) for g in range(sample_groups)}
    full_cold = dict(zip(((d.group, d.index, d.at) for d in deliveries),
                         cold_starts([d.at for d in deliveries]), strict=True))  # fmt: skip
    replicas: dict[tuple[int, int], list[float]] = defaultdict(list)
    for d in deliveries:
        replicas[(d.group % sample_groups, d.index)].append(d.at)
    access_log = Decimal(_access_log_bytes()) / GIB
    api_extra = {"apigateway.request": Decimal(1), "logs.ingest": access_log, "logs.storage": access_log}
    tail = StreamTail(sim.aws, sim.deployment.tables["alerts"])
    first = len(lambdas.records)
    failing: set[str] = set()

    def hours_of(times: Iterable[float]) -> list[int]:
        return [int((t - start.timestamp()) // 3600) for t in times]

    def notify(at: datetime, weight: Decimal, hours: Iterable[int]) -> None:
        records = tail.new_records()
        for i in range(0, len(records), 10):  # the stream trigger's batch size
            lambdas.invoke("billing-notifier", {"Records": records[i : i + 10]}, at=at, cold=True, weight=weight,
                           hours=hours)  # fmt: skip

    def deliver(event: dict[str, Any], at: datetime, *, cold: bool, weight: Decimal, hours: Iterable[int]) -> None:
        if event["type"] == "invoice.payment_failed":
            invoice = event["data"]["object"]
            if invoice["id"] not in failing and invoice["id"] not in fake.invoices:
                failing.add(invoice["id"])
                fake.add_customer(invoice["customer"], email=f"ap@{invoice['customer'][4:].lower()}.example",
                                  name="Customer Ltd", phone="+15555550123")  # fmt: skip
                fake.add_invoice(customer=invoice["customer"], currency=invoice["currency"],
                                 amount_minor=invoice["amount_due"], status="open", invoice_id=invoice["id"],
                                 created=event["created"], due_date=event["created"] + 14 * 86400)  # fmt: skip
        hours = list(hours)
        record = lambdas.invoke("stripe-webhook", se.signed_request(event), at=at, cold=cold, weight=weight,
                                hours=hours, extra=api_extra)  # fmt: skip
        if sim.deployment.tables["alerts"] in record.tables_written:
            notify(at, weight, hours)

    clock = [time.perf_counter()]
    dunning = next(s for s in sim.facts.schedules if s.function == "dunning-sender")
    dunning_runs: list[Invocation] = []
    pending = iter(d for d in deliveries if d.event is not None)
    upcoming = next(pending, None)
    for at in sim.runs(dunning):
        dunning_runs += lambdas.invoke_async("dunning-sender", scheduled_event(dunning, at), at=at,
                                             extra={"scheduler.invocation": Decimal(1)})  # fmt: skip
        while upcoming is not None and upcoming.at < at.timestamp() + 3600:
            assert upcoming.event is not None
            slot = (upcoming.group, upcoming.index)
            deliver(upcoming.event, datetime.fromtimestamp(upcoming.at, UTC), cold=full_cold[(*slot, upcoming.at)],
                    weight=group_weight[upcoming.group], hours=hours_of(replicas[slot]))  # fmt: skip
            upcoming = next(pending, None)
    # Dunning: runs with due steps happen ~group_weight times as often in the full month (capped by the
    # schedule); the rest are idle runs, each like the sample's idle runs.
    busy = [r for r in dunning_runs if r.result and any(r.result.get(k) for k in ("sent", "skipped", "failed"))]
    idle = [r for r in dunning_runs if r not in busy]
    scale = Decimal(groups) / sample_groups
    busy_full = min(Decimal(len(dunning_runs)), Decimal(len(busy)) * scale)
    for r in busy:
        r.weight = busy_full / len(busy)
    for r in idle:
        r.weight = (Decimal(len(dunning_runs)) - busy_full) / len(idle)
    clock.append(time.perf_counter())
    storage = table_storage(sim.aws, scale=scale)
    sample_events = sum(1 for d in deliveries if d.event is not None)
    full_events = len(deliveries)
    # Full size for the jobs that read the whole ledger: replicate the sampled groups' rows. Those
    # harness writes are not billing alerts anyone raised: their stream records are skipped.
    replicate_billing(sim, fake, groups, sample_groups)
    tail.new_records()
    clock.append(time.perf_counter())
    jobs_extra = {"scheduler.invocation": Decimal(1)}
    for schedule in sim.facts.schedules:
        runs = sim.runs(schedule)
        if schedule.function == "reconciliation":
            measured = runs[-reconciliations:]
            share = Decimal(len(runs)) / len(measured)
            chunk = math.ceil(len(runs) / len(measured))
            for n, at in enumerate(measured):
                represented = runs[n * chunk : (n + 1) * chunk]
                lambdas.invoke_async("reconciliation", scheduled_event(schedule, at), at=at, weight=share,
                                     hours=[lambdas.hour(r) for r in represented], extra=jobs_extra)  # fmt: skip
                notify(at, share, [lambdas.hour(r) for r in represented])
        elif schedule.function == "billing-admin":
            lambdas.invoke_async("billing-admin", scheduled_event(schedule, runs[-1]), at=runs[-1],
                                 weight=Decimal(len(runs)), hours=[lambdas.hour(r) for r in runs],
                                 extra=jobs_extra)  # fmt: skip
    clock.append(time.perf_counter())
    for at, event, weight, hours in admin_calls(sim, fake):
        lambdas.invoke("billing-admin", event, at=at, cold=True, weight=weight, hours=hours, extra=api_extra)
        for stripe_event in take_events():  # Stripe's events about what the call did, delivered after it
            deliver(stripe_event, at, cold=False, weight=weight, hours=hours)
    clock.append(time.perf_counter())
    figures = {
        "seconds": dict(
            zip(
                ("month", "replication", "jobs", "admin"),
                (round(b - a, 1) for a, b in zip(clock, clock[1:], strict=False)),
                strict=False,
            )
        ),
        "groups": groups,
        "sample_groups": sample_groups,
        "events_full": full_events,
        "events_sampled": sample_events,
        "scale": str((Decimal(full_events) / sample_events).quantize(Decimal("0.01"))),
        "webhook_cold_share": str((Decimal(sum(full_cold.values())) / len(full_cold)).quantize(Decimal("0.001"))),
        "dunning_busy_runs_sampled": len(busy),
        "dunning_busy_runs_month": str(busy_full.quantize(Decimal("0.1"))),
        "storage": storage,
    }
    return lambdas.records[first:], figures


def replicate_billing(sim: Simulation, fake: Any, groups: int, sample_groups: int = SAMPLE_GROUPS) -> None:
    """Copy each sampled group's ledger, objects and alerts rows to the groups it stands for, and
    give the loopback Stripe the invoices the ledger booked (harness writes, not counted)."""
    dynamodb = sim.aws.client("dynamodb")
    tables = sim.deployment.tables
    for role in ("ledger", "objects", "alerts", "dunning"):
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=tables[role]):
            items.extend(page["Items"])
        copies = []
        for item in items:
            text = json.dumps(item)
            found = re.search(r"q(\d{3})q", text)
            if not found:
                continue
            group = int(found.group(1))
            for target in range(group + sample_groups, groups, sample_groups):
                copies.append(json.loads(text.replace(f"q{group:03d}q", f"q{target:03d}q")
                                         .replace(f"Q{group:03d}Q", f"Q{target:03d}Q")))  # fmt: skip
        for i in range(0, len(copies), 25):
            batch = {tables[role]: [{"PutRequest": {"Item": item}} for item in copies[i : i + 25]]}
            while batch:
                batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    booked: dict[str, list[Any]] = defaultdict(lambda: ["", "", 0, 0])
    for page in dynamodb.get_paginator("scan").paginate(TableName=tables["ledger"]):
        for entry in page["Items"]:
            invoice_id = entry.get("invoice_id", {}).get("S")
            if not invoice_id or entry.get("kind", {}).get("S") not in ("subscription", "booking_fee"):
                continue
            row = booked[invoice_id]
            row[0], row[1] = entry["customer_id"]["S"], entry["currency"]["S"]
            row[2] += int(entry["amount_minor"]["N"])
            occurred = datetime.fromisoformat(entry["occurred_at"]["S"].replace("Z", "+00:00"))
            row[3] = int(occurred.timestamp())
    for invoice_id, (customer, currency, amount, created) in booked.items():
        if invoice_id not in fake.invoices:
            fake.add_invoice(customer=customer, currency=currency.lower(), amount_minor=amount, status="paid",
                             created=created, invoice_id=invoice_id)  # fmt: skip


def admin_calls(sim: Simulation, fake: Any) -> list[tuple[datetime, dict[str, Any], Decimal, list[int]]]:
    """A month of finance admin API use, 20 calls at office hours: 8 summaries, 4 CSV exports, 4 bot
    invoices, 2 portal links, an alert resent and one retried. Calls of one kind cost alike, so each
    kind runs once or twice and is weighted: (time, API Gateway event, weight, hours represented)."""
    dynamodb = sim.aws.client("dynamodb")
    open_alerts = [
        item["alert_id"]["S"]
        for page in dynamodb.get_paginator("scan").paginate(TableName=sim.deployment.tables["alerts"])
        for item in page["Items"]
        if item.get("status", {}).get("S") == "open" and item.get("invoice_id", {}).get("S") in fake.invoices
    ]
    customer = next(iter(fake.customers))

    def call(method: str, resource: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return {"httpMethod": method, "resource": resource, "path": resource.replace("{id}", extra.get("id", "")),
                "headers": {}, "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
                "pathParameters": {"id": extra["id"]} if "id" in extra else None,
                "queryStringParameters": extra.get("query"),
                "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/finance-lead"}}}  # fmt: skip

    def invoice(i: int) -> dict[str, Any]:
        return call("POST", "/invoices", {"request_id": f"bench-invoice-{i}", "customer": customer, "currency": "EUR",
                                          "amount": "1250.00", "description": "Workshop"})  # fmt: skip

    kinds: list[tuple[int, list[dict[str, Any]]]] = [  # (calls a month, the ones executed)
        (8, [call("GET", "/billing/summary")] * 2),
        (4, [call("GET", "/billing/export.csv", query={"month": "2026-11"})]),
        (4, [invoice(1), invoice(2)]),
        (2, [call("POST", "/billing/portal-session", {"customer": customer})]),
    ]
    if open_alerts:
        kinds += [(1, [call("POST", "/billing/alerts/{id}/resend", id=open_alerts[0])]),
                  (1, [call("POST", "/billing/alerts/{id}/retry", id=open_alerts[-1])])]  # fmt: skip
    days = [d for d in range(2, 31) if date(MONTH[0], MONTH[1], d).isoweekday() <= 5]
    slots = iter(datetime(MONTH[0], MONTH[1], days[i % len(days)], 10 + i % 7, tzinfo=UTC) for i in range(100))
    calls = []
    for per_month, executed in kinds:
        times = [next(slots) for _ in range(per_month)]
        share = math.ceil(per_month / len(executed))
        for n, event in enumerate(executed):
            represented = times[n * share : (n + 1) * share]
            calls.append((represented[0], event, Decimal(per_month) / len(executed),
                          [sim.lambdas.hour(t) for t in represented]))  # fmt: skip
    return calls
