"""`make bench`: the weekly report's performance targets, measured in one run.

- cold import of the report handler vs `import boto3` alone (median of fresh interpreters);
  target: handler <= 1.5 x boto3;
- Cost Explorer requests per report for a single-account organisation on the embedded AWS;
  target: 1 (and how many pages a large organisation costs, following NextPageToken);
- Teams payload bytes for a small and a 1,000-account x 300-service organisation; target <= 28 KB.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from devtools.lambda_runner import ROOT

RUNS = 15
TARGET_IMPORT_RATIO = 1.5
TARGET_BYTES = 28 * 1024
FIRED_AT = datetime(2026, 11, 3, 7, tzinfo=UTC)  # early month: the query spans 14 days, the most a report needs


def import_ms(statement: str) -> float:
    env = dict(os.environ, POWERTOOLS_SERVICE_NAME="weekly-report", PYTHONDONTWRITEBYTECODE="")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/common/python"), str(ROOT / "functions/weekly_report")])
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def bench_imports() -> tuple[float, float]:
    import_ms("import handler")  # warm the bytecode cache once: Lambda ships .pyc-able code too
    boto3_runs, handler_runs = [], []
    for _ in range(RUNS):  # interleaved, so machine noise hits both alike
        boto3_runs.append(import_ms("import boto3"))
        handler_runs.append(import_ms("import handler"))
    return statistics.median(boto3_runs), statistics.median(handler_runs)


def bench_cost_explorer_requests() -> tuple[int, int, int]:
    """Requests for a single account (one page) and for a paged organisation, through the handler."""
    from finops_guard import runtime
    from finops_guard.mock_data import ACCOUNTS, synthetic_pages
    from finops_guard.periods import report_window

    from devtools.chat_recorder import ChatRecorder
    from devtools.embedded_aws import EmbeddedAws
    from devtools.lambda_runner import FakeContext, load_handler

    window = report_window(FIRED_AT)
    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    counts = []
    try:
        with aws.activated():
            single = {"111111111111": ACCOUNTS["111111111111"]}
            org_pages = list(synthetic_pages(window.query_start, window.query_end, groups_per_page=500))
            for label, pages in (
                ("single", list(synthetic_pages(window.query_start, window.query_end, accounts=single))),
                ("org", org_pages),
            ):
                aws.reset()
                table = aws.create_outbox_table()
                aws.put_secret("bench/teams", chat.url("/teams"))
                aws.seed_cost_and_usage(pages)
                os.environ.update(
                    FINOPSGUARD_TEAMS_SECRET_NAME="bench/teams",
                    FINOPSGUARD_OUTBOX_TABLE=table,
                    POWERTOOLS_SERVICE_NAME="weekly-report",
                    POWERTOOLS_METRICS_DISABLED="true",
                    POWERTOOLS_LOG_LEVEL="WARNING",
                )
                runtime.settings.cache_clear()
                runtime.outbox.cache_clear()
                runtime._ce_client.cache_clear()
                seen: list[int] = []
                runtime._ce_client().meta.events.register(
                    "before-parameter-build.ce.GetCostAndUsage", lambda seen=seen, **_: seen.append(1)
                )
                handler = load_handler("weekly_report")
                handler.lambda_handler({"scheduled_time": FIRED_AT.isoformat()}, FakeContext(f"bench-{label}"))
                counts.append(len(seen))
    finally:
        chat.stop()
        aws.stop()
    return counts[0], counts[1], len(org_pages)


def bench_payloads() -> list[tuple[str, int, int, float, float]]:
    from finops_guard.cards.teams import payload_bytes, teams_payload
    from finops_guard.costs import aggregate_pages
    from finops_guard.mock_data import synthetic_pages
    from finops_guard.periods import report_window
    from finops_guard.report import build_weekly_report

    window = report_window(FIRED_AT)
    big_accounts = {f"{i:012d}": f"business-unit-{i:04d}-workload-production" for i in range(1000)}
    big_services = [(f"Marketplace product {i:03d} - a long vendor product name", "0.50") for i in range(300)]
    results = []
    for label, accounts, services in (
        ("small (4 accounts x 34 services)", None, None),
        ("large (1,000 accounts x 300 services)", big_accounts, big_services),
    ):
        started = time.perf_counter()
        pages = synthetic_pages(window.query_start, window.query_end, accounts=accounts, services=services)
        aggregate = aggregate_pages(pages, window)
        report = build_weekly_report(
            aggregate, stage="bench", currency="USD", top_n=5, generated_at=FIRED_AT, monthly_budget=None
        )
        size = payload_bytes(teams_payload(report, "UTC"))
        elapsed = time.perf_counter() - started
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        results.append((label, size, aggregate.groups, elapsed, peak_rss))
    return results


def bench_budget_guard() -> tuple[dict[int, int], float, int]:
    """CE requests for 1/10/50 budgets over three scope kinds, and the guard's run time for 500,
    each through functions/budget_guard/handler.py on the embedded AWS."""
    from finops_guard import runtime
    from finops_guard.adapters import secrets
    from finops_guard.adapters.budget_store import BudgetTable
    from finops_guard.budgets import parse_budget
    from finops_guard.mock_data import ACCOUNTS, SERVICES

    from devtools.chat_recorder import ChatRecorder
    from devtools.embedded_aws import EmbeddedAws
    from devtools.lambda_runner import FakeContext, load_handler

    def budgets(n: int) -> list:
        kinds = [
            lambda i: {"account": [list(ACCOUNTS)[i % 4]]},
            lambda i: {"service": [SERVICES[i % len(SERVICES)][0]]},
            lambda i: {"tag": {"team": [("platform", "data", "web")[i % 3]]}},
        ]
        return [
            parse_budget({"id": f"b{i}", "amount": str(5000 + 37 * i), "currency": "USD", "scope": kinds[i % 3](i),
                          "notify": ["teams"]})
            for i in range(n)
        ]  # fmt: skip

    as_of = FIRED_AT.date() - timedelta(days=1)
    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    requests: dict[int, int] = {}
    seconds, fired = 0.0, 0
    try:
        with aws.activated():
            for n in (1, 10, 50, 500):
                aws.reset()
                outbox = aws.create_outbox_table()
                budgets_table, alerts_table = aws.create_budget_tables("bench")
                aws.put_secret("bench/teams", chat.url("/teams"))
                BudgetTable(budgets_table, aws.client("dynamodb")).put_many(budgets(n), now=FIRED_AT)
                aws.seed_budget_costs(budgets(n), as_of)
                os.environ.update(
                    FINOPSGUARD_TEAMS_SECRET_NAME="bench/teams",
                    FINOPSGUARD_OUTBOX_TABLE=outbox,
                    FINOPSGUARD_BUDGETS_TABLE=budgets_table,
                    FINOPSGUARD_BUDGET_ALERTS_TABLE=alerts_table,
                    POWERTOOLS_SERVICE_NAME="budget-guard",
                    POWERTOOLS_METRICS_DISABLED="true",
                    POWERTOOLS_LOG_LEVEL="WARNING",
                )
                for cached in (runtime.settings, runtime.outbox, runtime._ce_client, runtime.budget_table,
                               runtime.budget_alert_table):  # fmt: skip
                    cached.cache_clear()
                secrets.clear_cache()
                handler = load_handler("budget_guard")
                started = time.perf_counter()
                result = handler.lambda_handler({"scheduled_time": FIRED_AT.isoformat()}, FakeContext("bench-guard"))
                elapsed = time.perf_counter() - started
                requests[n] = result["cost_explorer_requests"]
                if n == 500:
                    seconds, fired = elapsed, len(result["fired"])
    finally:
        chat.stop()
        aws.stop()
    return requests, seconds, fired


def bench_budget_evaluation(n: int = 500) -> float:
    """Planning, summing and forecasting for `n` budgets in memory (no AWS round trips)."""
    from finops_guard.budget_guard import evaluate_all
    from finops_guard.budgets import parse_budget
    from finops_guard.mock_data import ACCOUNTS, SERVICES, MockCostSource

    scopes = [
        lambda i: {"account": [list(ACCOUNTS)[i % 4]]},
        lambda i: {"service": [SERVICES[i % len(SERVICES)][0]]},
        lambda i: {"tag": {"team": [("platform", "data", "web")[i % 3]]}},
    ]
    budgets = [
        parse_budget({"id": f"b{i}", "amount": str(5000 + 37 * i), "currency": "USD", "scope": scopes[i % 3](i)})
        for i in range(n)
    ]
    started = time.perf_counter()
    evaluate_all(budgets, FIRED_AT.date() - timedelta(days=1), MockCostSource(), level=Decimal("0.8"), lookback_days=28)
    return time.perf_counter() - started


def bench_anomalies() -> tuple[float, float, float, int]:
    """Warm per-anomaly time, a 50-anomaly burst in one inbox batch, and the same burst as ten
    concurrent batches against a sink that answers 429 above 4 requests/s (all on loopback)."""
    import json as json_module
    import threading

    from finops_guard import runtime
    from finops_guard.adapters import chat as chat_adapter
    from finops_guard.adapters import secrets

    from devtools.chat_recorder import ChatRecorder
    from devtools.embedded_aws import EmbeddedAws
    from devtools.lambda_runner import FakeContext, load_handler
    from devtools.sqs_events import sqs_event

    sample = json_module.loads((ROOT / "events" / "anomaly_eventbridge.json").read_text())

    def body(anomaly_id: str) -> str:
        event = json_module.loads(json_module.dumps(sample))
        event["time"] = datetime.now(UTC).isoformat(timespec="seconds")
        event["detail"]["anomalyId"] = anomaly_id
        return json_module.dumps(event)

    aws, sink = EmbeddedAws().start(), ChatRecorder(limit_per_second=4).start()
    try:
        with aws.activated():
            aws.reset()
            os.environ.update(
                FINOPSGUARD_TEAMS_SECRET_NAME="bench/teams",
                FINOPSGUARD_OUTBOX_TABLE=aws.create_outbox_table(),
                FINOPSGUARD_ANOMALIES_TABLE=aws.create_anomalies_table("bench"),
                POWERTOOLS_SERVICE_NAME="anomaly-alerts",
                POWERTOOLS_METRICS_NAMESPACE="FinOpsGuard",
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_LOG_LEVEL="WARNING",
            )
            os.environ.pop("FINOPSGUARD_SLACK_SECRET_NAME", None)
            aws.put_secret("bench/teams", sink.url("/teams"))
            for cached in (runtime.settings, runtime.outbox, runtime.anomaly_table):
                cached.cache_clear()
            secrets.clear_cache()
            handler = load_handler("anomaly_alerts")

            def run(bodies: list[str]) -> None:
                result = handler.lambda_handler(sqs_event(bodies), FakeContext("bench-anomalies"))
                assert result == {"batchItemFailures": []}, result

            for i in range(3):
                run([body(f"warmup-{i}")])
            timings = []
            saved = dict(chat_adapter.MIN_INTERVAL_S)
            chat_adapter.MIN_INTERVAL_S.clear()  # processing time, not the 4/s pacing between posts
            for i in range(20):
                started = time.perf_counter()
                run([body(f"single-{i}")])
                timings.append(time.perf_counter() - started)
                time.sleep(0.3)  # stay under the sink's 4/s without pacing
            chat_adapter.MIN_INTERVAL_S.update(saved)
            time.sleep(1.1)
            started = time.perf_counter()
            run([body(f"batch-{i}") for i in range(50)])
            one_batch = time.perf_counter() - started
            time.sleep(1.1)
            chat_adapter.MIN_INTERVAL_S.clear()  # ten containers share no pacer
            sink.throttled = 0
            threads = [
                threading.Thread(target=run, args=([body(f"burst-{b}-{i}") for i in range(5)],)) for b in range(10)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            ten_batches = time.perf_counter() - started
            chat_adapter.MIN_INTERVAL_S.update(saved)
    finally:
        sink.stop()
        aws.stop()
    return statistics.median(timings), one_batch, ten_batches, sink.throttled


def main() -> int:
    ok = True
    boto3_ms, handler_ms = bench_imports()
    ratio = handler_ms / boto3_ms
    ok &= ratio <= TARGET_IMPORT_RATIO
    print(f"cold import, median of {RUNS} fresh interpreters ({sys.version.split()[0]}):")
    print(f"  python -c 'import boto3'          {boto3_ms:7.1f} ms")
    print(f"  weekly report handler             {handler_ms:7.1f} ms   = {ratio:.2f} x boto3 (target <= 1.5)")

    single, org, org_pages = bench_cost_explorer_requests()
    ok &= single == 1 and org == org_pages
    print("Cost Explorer GetCostAndUsage requests per report (counted on the embedded AWS):")
    print(f"  single account, data fits one page  {single}   (target 1)")
    print(f"  4 accounts, 500 groups per page      {org}   (= {org_pages} pages, NextPageToken followed)")

    print("Teams payload bytes (14 cost days, synthetic data streamed through the aggregation):")
    for label, size, groups, seconds, peak_mb in bench_payloads():
        ok &= size <= TARGET_BYTES
        print(
            f"  {label:40s} {size:7,d} B  (target <= {TARGET_BYTES:,})  {groups:,} groups generated and summed"
            f" in {seconds:.1f} s, bench process peak RSS {peak_mb:.0f} MiB"
        )
    requests, seconds, fired = bench_budget_guard()
    ok &= requests[50] <= 3
    print("Budget guard (handler on the embedded AWS; budgets over account, service and tag scopes):")
    for n in (1, 10, 50):
        print(f"  {n:3d} budgets: {requests[n]} Cost Explorer requests" + ("   (target <= 3)" if n == 50 else ""))
    print(f"  500 budgets: run time {seconds:.1f} s ({requests[500]} CE requests, {fired} alerts fired and delivered)")
    print(f"  500 budgets: evaluation alone, in memory {bench_budget_evaluation():.2f} s")
    warm, one_batch, ten_batches, throttled = bench_anomalies()
    print("Cost anomaly forwarding (handler on the embedded AWS, Teams sink on loopback limited to 4 requests/s):")
    print(f"  one anomaly, warm (median of 20): {warm * 1000:.0f} ms from SQS record to delivered card (no pacing)")
    print(f"  50-anomaly burst in one inbox batch: {one_batch:.2f} s (one digest card)")
    print(f"  50-anomaly burst as 10 concurrent batches: {ten_batches:.2f} s ({throttled} answers 429, all retried)")
    ok &= ten_batches < 300

    from devtools.bench_webhook import measure, measure_logic_only

    print("Stripe webhook, warm, in-process moto (300 invoice.paid events after 30 warm-up, fresh tables each):")
    for rollback, label in ((True, "moto with item-level rollback"), (False, "stock moto 5.2 (table copies)")):
        figures = measure(item_level_rollback=rollback)
        print(f"  {label}:")
        for key, what in (
            ("floor", "floor: verify + a 1-item TransactWriteItems        "),
            ("baseline", "baseline: verify + the handler's TransactWriteItems"),
            ("handler", "handler (Lambda entry point, warm)                 "),
        ):
            p50, p99, rate = figures[key]
            print(f"    {what}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  {rate:4.0f} ev/s")
        if rollback:
            (_, b99, brate), (_, h99, hrate) = figures["baseline"], figures["handler"]
            ok &= h99 <= 2 * b99 and hrate >= 300
            print(f"    target p99 <= 2x baseline: {h99 / b99:.2f}x, {'met' if h99 <= 2 * b99 else 'NOT MET'}")
            print(f"    target >= 300 ev/s: {hrate:.0f} ev/s, {'met' if hrate >= 300 else 'NOT MET'}"
                  f" (moto's own ceiling for this transaction is the baseline's {brate:.0f} ev/s)")  # fmt: skip
        else:
            print("    (not judged: each TransactWriteItems item deep-copies its whole table here)")
    print(
        f"  handler code alone, in-memory ledger (verify, effects, transaction items): {measure_logic_only():.0f} ev/s"
    )
    import json

    from devtools.bench_reconciliation import report as reconciliation_report

    # A fresh interpreter, so the peak RSS is the reconciliation's, not that of the sections above.
    recon = subprocess.run(
        [sys.executable, "-m", "devtools.bench_reconciliation", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if recon.returncode in (0, 1) and recon.stdout.strip():
        figures = json.loads(recon.stdout.strip().splitlines()[-1])
        print("\n".join(reconciliation_report(figures)))
        ok &= bool(figures["met"])
    else:
        ok = False
        print(f"Daily reconciliation bench failed (exit {recon.returncode}): {recon.stderr.strip()[-2000:]}")

    from devtools.bench_selfcost import report as selfcost_report

    # A fresh interpreter: its own embedded AWS, environment and module state (one Lambda container each).
    selfcost = subprocess.run(
        [sys.executable, "-m", "devtools.bench_selfcost", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if selfcost.returncode in (0, 1) and selfcost.stdout.strip():
        figures = json.loads(selfcost.stdout.strip().splitlines()[-1])
        print("\n".join(selfcost_report(figures)))
        ok &= bool(figures["scenarios"]["A"]["met"])
    else:
        ok = False
        print(f"Self-cost bench failed (exit {selfcost.returncode}): {selfcost.stderr.strip()[-2000:]}")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
