"""`make bench` section: the daily reconciliation of 10,000 Stripe invoices against 100,000 ledger rows.

- Stripe side: devtools/stripe_fake.py seeded with 10,000 invoices of the window, served over 127.0.0.1
  from a separate process (so its memory is not counted as ours); the real StripeApi lists them,
  100 per page (100 list requests) through stripe-python's auto-pagination.
- Ledger side: the real ReconciliationStore paging code over an in-memory source of DynamoDB Query
  pages of the `by-month` index (items in attribute-value form, the projection applied, cut at 1 MB
  of item data with a LastEvaluatedKey, as DynamoDB does). Not moto: its GSI query scans the whole
  table for every page, which would measure moto, not this code.
- Measured: wall time of `run_reconciliation` (untraced run), tracemalloc peak of a second, traced
  run, and the process' peak RSS after the untraced run (Python + boto3 + stripe + the run).

Everything is generated from a fixed seed; the expected mismatches are planted and checked.
`python -m devtools.bench_reconciliation` prints the figures; `--json` prints them as JSON (bench.py
runs it in a fresh interpreter, so other sections' memory does not show in the RSS figure); `--smoke`
runs the same code on 200 invoices and 2,000 ledger rows (a test that the bench still works, not a figure).
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.lambda_runner import ROOT

SEED = 20261116


@dataclass(frozen=True)
class Sizes:
    invoices: int  # a multiple of 100: Stripe lists 100 a page
    ledger_rows: int
    customers: int
    credits: int


FULL = Sizes(invoices=10_000, ledger_rows=100_000, customers=2_000, credits=3_000)
SMOKE = Sizes(invoices=200, ledger_rows=2_000, customers=60, credits=60)
TARGET_S = 30.0
TARGET_MB = 256.0
PAGE_BYTES = 1024 * 1024  # DynamoDB stops a Query page after 1 MB of items read
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
DAYS = 30
CURRENCIES = (("usd", 60), ("eur", 25), ("jpy", 10), ("kwd", 5))
STATUSES = (("paid", 85), ("open", 8), ("void", 4), ("uncollectible", 2), ("draft", 1))
MISSING, DOUBLED, VOID_BOOKED = 20, 10, 5  # planted mismatching pairs of each kind


@dataclass(frozen=True)
class PlannedInvoice:
    invoice_id: str
    customer: str
    currency: str  # lower case, as Stripe
    status: str
    created: int
    lines: tuple[tuple[str, int], ...]  # (ledger kind, amount minor)
    due_date: int | None

    @property
    def amount(self) -> int:
        return sum(amount for _, amount in self.lines)


@dataclass(frozen=True)
class Plan:
    sizes: Sizes
    invoices: tuple[PlannedInvoice, ...]
    missing: frozenset[str]  # paid invoices never booked
    doubled: frozenset[str]  # paid invoices booked twice
    void_booked: frozenset[str]  # void invoices booked as if paid
    expected_mismatches: int
    expected_past_due: int


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def make_plan(sizes: Sizes = FULL, seed: int = SEED) -> Plan:
    rng = random.Random(seed)
    start = int((NOW - timedelta(days=DAYS)).timestamp()) + 60
    end = int(NOW.timestamp()) - 3600  # older than the in-flight grace: every invoice is compared
    primary = {f"cus_bench{c:05d}": _weighted(rng, CURRENCIES) for c in range(sizes.customers)}
    customers = sorted(primary)
    invoices = []
    for i in range(sizes.invoices):
        customer = rng.choice(customers)
        currency = primary[customer] if rng.random() > 0.05 else _weighted(rng, CURRENCIES)
        status = _weighted(rng, STATUSES)
        created = rng.randint(start, end)
        subscription = rng.randint(500, 40_000)
        lines: tuple[tuple[str, int], ...] = (("subscription", subscription),)
        if rng.random() < 0.6:
            lines += (("booking_fee", rng.randint(100, 10_000)),)
        due = created + 14 * 86400 if status == "open" else None
        invoices.append(PlannedInvoice(f"in_bench{i:06d}", customer, currency, status, created, lines, due))

    pairs: dict[tuple[str, str], list[PlannedInvoice]] = {}
    for invoice in invoices:
        pairs.setdefault((invoice.customer, invoice.currency), []).append(invoice)
    order = sorted(pairs)
    rng.shuffle(order)
    missing: set[str] = set()
    doubled: set[str] = set()
    void_booked: set[str] = set()
    for pair in order:
        paid = [i for i in pairs[pair] if i.status == "paid"]
        voids = [i for i in pairs[pair] if i.status == "void"]
        paid_total = sum(i.amount for i in paid)
        if not paid:
            continue
        largest = max(paid, key=lambda i: (i.amount, i.invoice_id))
        # The largest of n paid invoices is >= 1/n of the pair: far above 1 % for these pair sizes.
        if len(missing) < MISSING and len(paid) < 50:
            missing.add(largest.invoice_id)
        elif len(doubled) < DOUBLED and len(paid) < 50:
            doubled.add(largest.invoice_id)
        elif len(void_booked) < VOID_BOOKED and voids and max(v.amount for v in voids) * 100 > paid_total * 2:
            void_booked.add(max(voids, key=lambda i: (i.amount, i.invoice_id)).invoice_id)
    now = int(NOW.timestamp())
    past_due = sum(1 for i in invoices if i.status == "open" and i.due_date is not None and i.due_date < now)
    return Plan(sizes, tuple(invoices), frozenset(missing), frozenset(doubled), frozenset(void_booked),
                len(missing) + len(doubled) + len(void_booked), past_due)  # fmt: skip


# --- the ledger: DynamoDB Query pages, generated lazily -------------------------------------------


def _month(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(customer: str, at: int, source: str, kind: str, amount: int, currency: str, invoice: str | None,
           suffix: str = "") -> dict[str, Any]:  # fmt: skip
    """A ledger item exactly as the webhook writes it."""
    stamp = _stamp(at)
    item = {
        "customer_id": {"S": customer},
        "entry_key": {"S": f"{stamp}#{source}#{kind}{suffix}"},
        "month": {"S": _month(at)},
        "kind": {"S": kind},
        "amount_minor": {"N": str(amount)},
        "currency": {"S": currency},
        "source_id": {"S": source},
        "event_id": {"S": f"evt_{source}{suffix}"},
        "occurred_at": {"S": stamp},
        "recorded_at": {"S": stamp},
    }
    if invoice:
        item["invoice_id"] = {"S": invoice}
    return item


def ledger_items(plan: Plan, month: str, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Every item of the month in the by-month index: the window's bookings (with the planted
    errors), credit adjustments, bookings of older invoices up to the plan's ledger rows, and TOTAL# rows."""
    rng = random.Random(f"{seed}-{month}")
    listed = [i for i in plan.invoices if _month(i.created) == month]
    totals: dict[tuple[str, str], int] = {}
    for invoice in listed:
        booked = (invoice.status == "paid" and invoice.invoice_id not in plan.missing) or (
            invoice.invoice_id in plan.void_booked
        )
        if not booked:
            continue
        currency = invoice.currency.upper()
        for kind, amount in invoice.lines:
            yield _entry(invoice.customer, invoice.created, invoice.invoice_id, kind, amount, currency,
                         invoice.invoice_id)  # fmt: skip
            totals[(invoice.customer, currency)] = totals.get((invoice.customer, currency), 0) + amount
        if invoice.invoice_id in plan.doubled:  # the webhook booked it twice (a second event id)
            for kind, amount in invoice.lines:
                yield _entry(invoice.customer, invoice.created, invoice.invoice_id, kind, amount, currency,
                             invoice.invoice_id, suffix="-again")  # fmt: skip
    for n in range(_credits(plan, month)):
        invoice = rng.choice(listed)
        yield _entry(invoice.customer, invoice.created + 3600, f"cn_bench{month}{n:05d}", "credit_adjustment",
                     -rng.randint(50, 500), invoice.currency.upper(), invoice.invoice_id)  # fmt: skip
    budget = _older_rows(plan, month)
    first = int(datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    for n in range(budget):
        customer = f"cus_bench{rng.randrange(plan.sizes.customers):05d}"
        source = f"in_prev{month.replace('-', '')}{n // 2:06d}"
        yield _entry(customer, first + rng.randrange(28 * 86400), source, ("subscription", "booking_fee")[n % 2],
                     rng.randint(100, 40_000), "USD", source)  # fmt: skip
    for (customer, currency), total in sorted(totals.items()):
        yield {
            "customer_id": {"S": customer},
            "entry_key": {"S": f"TOTAL#{month}#{currency}"},
            "month": {"S": month},
            "total_minor": {"N": str(total)},
            "currency": {"S": currency},
        }


def _credits(plan: Plan, month: str) -> int:
    """Credit adjustments of the month, in proportion to its invoices (one formula for both uses)."""
    month_share = sum(1 for i in plan.invoices if _month(i.created) == month) / len(plan.invoices)
    return round(plan.sizes.credits * month_share)


def _older_rows(plan: Plan, month: str) -> int:
    """Rows of invoices created before the window, so the months hold the plan's ledger rows in all."""
    months = sorted({_month(i.created) for i in plan.invoices})
    window_rows = {
        m: sum(
            len(i.lines) * (2 if i.invoice_id in plan.doubled else 1)
            for i in plan.invoices
            if _month(i.created) == m
            and ((i.status == "paid" and i.invoice_id not in plan.missing) or i.invoice_id in plan.void_booked)
        )
        + _credits(plan, m)
        for m in months
    }
    spare = plan.sizes.ledger_rows - sum(window_rows.values())
    share = spare // len(months)
    return share + (spare - share * len(months) if month == months[-1] else 0)


def _item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name) + len(next(iter(value.values()))) for name, value in item.items())


class QueryPages:
    """The `get_paginator("query").paginate(...)` of a DynamoDB client, for the by-month index (ledger)
    and the by-status index (open alerts: none here). Also takes the result's put/update writes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.pages = 0
        self.items_read = 0
        self.writes: list[dict[str, Any]] = []

    def get_paginator(self, operation: str) -> QueryPages:
        assert operation == "query"
        return self

    def paginate(self, **request: Any) -> Iterator[dict[str, Any]]:
        if request["IndexName"] != "by-month":
            yield {"Items": [], "Count": 0, "ScannedCount": 0}
            return
        names = request.get("ExpressionAttributeNames", {})
        month = request["ExpressionAttributeValues"][":month"]["S"]
        assert request["KeyConditionExpression"] == "#month = :month" and names["#month"] == "month"
        wanted = [names.get(p.strip(), p.strip()) for p in request["ProjectionExpression"].split(",")]
        page: list[dict[str, Any]] = []
        size = 0
        for item in ledger_items(self.plan, month):
            page.append({name: item[name] for name in wanted if name in item})
            size += _item_bytes(item)  # the limit counts the item read, not the projection
            if size >= PAGE_BYTES:
                yield self._page(page, item)
                page, size = [], 0
        yield self._page(page, None)

    def _page(self, items: list[dict[str, Any]], last: dict[str, Any] | None) -> dict[str, Any]:
        self.pages += 1
        self.items_read += len(items)
        page: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if last is not None:
            page["LastEvaluatedKey"] = {k: last[k] for k in ("month", "entry_key", "customer_id")}
        return page

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.writes.append(request)
        return {}

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.writes.append(request)
        return {}


# --- the Stripe side: the fake in its own process ---------------------------------------------------


def serve_fake(sizes: Sizes) -> None:
    """Child process: seed the Stripe fake with the plan's invoices, print how to reach it, serve
    until stdin closes."""
    from devtools.stripe_fake import StripeFake

    plan = make_plan(sizes)
    with StripeFake(now=lambda: int(NOW.timestamp())) as fake:
        for invoice in plan.invoices:
            fake.add_invoice(
                customer=invoice.customer,
                currency=invoice.currency,
                amount_minor=invoice.amount,
                status=invoice.status,
                created=invoice.created,
                due_date=invoice.due_date,
                invoice_id=invoice.invoice_id,
                lines=[{"kind": kind, "amount": amount} for kind, amount in invoice.lines],
            )
        print(json.dumps({"base_url": fake.base_url, "api_key": fake.api_key}), flush=True)
        sys.stdin.read()
        requests = sum(1 for r in fake.requests if r.path == "/v1/invoices")
        print(json.dumps({"list_requests": requests}), flush=True)


class Timed:
    """A source whose iteration time is summed: where the run's seconds go, without a second run."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.seconds = 0.0

    def list_invoices(self, **kwargs: Any) -> Iterator[Any]:
        return self._timed(self.source, kwargs)

    def ledger_entries(self, months: Any) -> Iterator[Any]:
        return self._timed(self.source, {"months": months})

    def _timed(self, source: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        started = time.perf_counter()
        iterator = iter(source(**kwargs))
        self.seconds += time.perf_counter() - started
        while True:
            started = time.perf_counter()
            try:
                value = next(iterator)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield value


def _reset_peak_rss() -> None:
    """A child started by a big parent (make bench) inherits the parent's high-water mark on Linux:
    reset it to the current RSS (clear_refs "5", Linux >= 4.0) so the figure is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def _rss_mb() -> float:
    """Peak resident set size of this process in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(sizes: Sizes = FULL) -> dict[str, Any]:
    from finops_guard.billing.adapters.reconciliation_store import ReconciliationStore
    from finops_guard.billing.adapters.stripe_api import StripeApi
    from finops_guard.billing.reconciliation import run_reconciliation

    _reset_peak_rss()
    plan = make_plan(sizes)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.bench_reconciliation",
            "--serve-fake",
            *(["--smoke"] if sizes == SMOKE else []),
        ],  # fmt: skip
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        started = time.perf_counter()
        reachable = json.loads(child.stdout.readline())
        seeding_s = time.perf_counter() - started

        def once() -> tuple[Any, QueryPages, float, Timed, Timed]:
            pages = QueryPages(plan)
            store = ReconciliationStore(ledger_table="ledger", objects_table="objects", alerts_table="alerts",
                                        client=pages)  # fmt: skip
            stripe = Timed(StripeApi(lambda: str(reachable["api_key"]), api_base=reachable["base_url"]).list_invoices)
            ledger = Timed(store.ledger_entries)
            begun = time.perf_counter()
            outcome = run_reconciliation(invoices=stripe, ledger=ledger, sink=store, now=NOW, days=DAYS,
                                         threshold_percent=Decimal(1))  # fmt: skip
            return outcome, pages, time.perf_counter() - begun, stripe, ledger

        outcome, pages, seconds, stripe_time, ledger_time = once()
        rss = _rss_mb()
        tracemalloc.start()
        traced, _, traced_seconds, _, _ = once()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        child.stdin.close()
        tail = child.stdout.read()
        child.wait(timeout=30)
    list_requests = json.loads(tail.strip().splitlines()[-1])["list_requests"] if tail.strip() else -1
    result = outcome.result
    latest = [w["Item"] for w in pages.writes if w.get("Item", {}).get("object_id") == {"S": "reconciliation#latest"}]
    correct = (
        result.invoices_seen == sizes.invoices
        and result.ledger_rows_seen == sizes.ledger_rows
        and result.mismatch_count == plan.expected_mismatches
        and result.past_due_count == plan.expected_past_due
        and traced.result.mismatch_count == plan.expected_mismatches
        and list_requests == 2 * sizes.invoices // 100
    )
    return {
        "invoices": result.invoices_seen,
        "ledger_rows": result.ledger_rows_seen,
        "ledger_items_read": pages.items_read,
        "ledger_pages": pages.pages,
        "list_requests_per_run": list_requests // 2 if list_requests > 0 else list_requests,
        "pairs": result.pairs_compared,
        "mismatches": result.mismatch_count,
        "expected_mismatches": plan.expected_mismatches,
        "past_due": result.past_due_count,
        "expected_past_due": plan.expected_past_due,
        "stored_item_bytes": len(json.dumps(latest[0])),
        "seconds": seconds,
        "stripe_seconds": stripe_time.seconds,
        "ledger_seconds": ledger_time.seconds,
        "traced_seconds": traced_seconds,
        "tracemalloc_peak_mb": peak / 1024 / 1024,
        "peak_rss_mb": rss,
        "fake_seeding_seconds": seeding_s,
        "correct": correct,
        "smoke": sizes != FULL,  # the targets are for the full size: not judged
        "met": sizes == FULL
        and correct
        and seconds <= TARGET_S
        and peak / 1024 / 1024 <= TARGET_MB
        and rss <= TARGET_MB,
    }


def report(figures: dict[str, Any]) -> list[str]:
    f = figures
    verdict = "not judged (smoke run)" if f.get("smoke") else "met" if f["met"] else "NOT MET"
    return [
        f"Daily reconciliation, {f['invoices']:,} Stripe invoices vs {f['ledger_rows']:,} ledger rows (seed {SEED}):",
        f"  Stripe: the Stripe fake in its own process on 127.0.0.1, {f['list_requests_per_run']} list requests"
        " of 100 (auto-pagination)",
        f"  ledger: ReconciliationStore's paginator over in-memory DynamoDB Query pages ({f['ledger_pages']} pages of"
        f" <= 1 MB, {f['ledger_items_read']:,} items incl. TOTAL# rows); not moto, whose GSI query is O(table) per"
        " page and would measure moto, not us",
        f"  found {f['mismatches']} mismatching customer/currency pairs of {f['pairs']:,} (planted"
        f" {f['expected_mismatches']}), {f['past_due']} past due (expected {f['expected_past_due']}),"
        f" stored item {f['stored_item_bytes'] / 1024:.1f} KB: {'correct' if f['correct'] else 'WRONG'}",
        f"  run time {f['seconds']:.1f} s (target <= {TARGET_S:.0f} s): listing Stripe {f['stripe_seconds']:.1f} s"
        " (mostly stripe-python building StripeObjects and to_dict), ledger paging"
        f" {f['ledger_seconds']:.1f} s, comparing and storing"
        f" {f['seconds'] - f['stripe_seconds'] - f['ledger_seconds']:.1f} s"
        f" ({f['traced_seconds']:.1f} s under tracemalloc)",
        f"  memory: tracemalloc peak {f['tracemalloc_peak_mb']:.1f} MB, process peak RSS {f['peak_rss_mb']:.0f} MiB"
        f" (Python + boto3 + stripe + the run; target <= {TARGET_MB:.0f} MB): {verdict}",
    ]


def main(argv: list[str]) -> int:
    """Exit 0 when the targets are met; with --smoke, when the run was correct (its size judges nothing)."""
    smoke = "--smoke" in argv
    sizes = SMOKE if smoke else FULL
    if "--serve-fake" in argv:
        serve_fake(sizes)
        return 0
    figures = measure(sizes)
    if "--json" in argv:
        print(json.dumps(figures))
    else:
        print("\n".join(report(figures)))
    return 0 if figures["correct" if smoke else "met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
