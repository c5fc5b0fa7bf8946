"""`make bench` must not rot unseen: its smoke mode runs every section of every bench through the same
code with tiny sizes, here on every `make test` (a bench that crashes, or whose results are wrong,
fails the run). The performance targets themselves are judged by the full `make bench` only."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from devtools import bench
from devtools.lambda_runner import ROOT

pytestmark = pytest.mark.integration

SMOKE_BUDGET_S = 300  # the smoke run takes well under a minute; this only stops a hung run
# CPU seconds of the run and every process it starts: about 40 on the 2-core machine (under a minute of
# wall time). Measured in CPU, not wall time, so that a loaded machine does not fail it; growing the
# smoke sizes towards the full bench's (about 400 CPU seconds) does.
SMOKE_CPU_BUDGET_S = 120


@dataclass(frozen=True)
class SmokeRun:
    done: subprocess.CompletedProcess[str]
    wall_s: float
    cpu_s: float

    @property
    def stdout(self) -> str:
        return self.done.stdout


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def smoke_run() -> SmokeRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_", "AWS_"))}
    env |= {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "AWS_CDK_DISABLE_VERSION_CHECK": "1"}
    cpu, started = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "devtools.bench", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_BUDGET_S,
    )
    return SmokeRun(done, time.perf_counter() - started, _children_cpu_s() - cpu)


def test_the_smoke_run_of_make_bench_completes_and_every_section_is_correct(smoke_run: SmokeRun) -> None:
    done = smoke_run.done

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("smoke run: every section ran and its results are right")


@pytest.mark.parametrize(
    ("bench_module", "line"),
    [
        ("bench (imports from the checkout)", "weekly report handler"),
        ("bench_lambda (imports the Lambda way)", "cold import the Lambda way: Python 3.13"),
        ("bench_lambda (the weekly report)", "  weekly-report "),
        ("bench_lambda (the Stripe webhook)", "  stripe-webhook "),
        ("bench_lambda (bytecode shipped)", "modules from its code and layers, all from shipped bytecode"),
        ("bench_lambda (asset sizes)", "    layer finops-guard-dev-report-deps "),
        ("bench (Cost Explorer requests)", "single account, data fits one page  2   (target 2"),
        ("bench (requests per option)", f"{'breakdown REGION':50s} 3 -> 3  (same; UnblendedCost, top regions"),
        ("bench (requests per option)", f"{'costMetric AmortizedCost':50s} 3 -> 3  (same; AmortizedCost"),
        ("bench (requests per option)", f"{'basis net':50s} 2 -> 2  (same;"),
        ("bench (requests per option)", f"{'no attribution dimensions':50s} 1 -> 2  (+1;"),
        ("bench (payloads)", "large (20 accounts x 30 services)"),
        ("bench (budget guard, tag scopes on the synthetic Team tag)", "50 budgets: 2 Cost Explorer requests"),
        ("bench (anomalies)", "6-anomaly burst as 2 concurrent batches"),
        ("bench_webhook", "handler (Lambda entry point, warm)"),
        ("bench_webhook (logic only)", "handler code alone, in-memory ledger"),
        ("bench_reconciliation", "(planted 34), 10 past due (expected 10), stored item"),
        ("bench_reconciliation", "2 list requests of 100"),
        ("selfcost", "SMOKE RUN (the first 3 days, 2 sampled customer groups)"),
        ("selfcost", "correct: True"),
        ("selfcost (fixed charges per stack)", "    Core     | "),
        ("selfcost (fixed charges per stack)", "    Costs    | "),
        ("selfcost (fixed charges per stack)", "    Billing  | "),
        ("selfcost (deployments)", "    (a) core + costs, cdk.json defaults"),
        ("selfcost (deployments)", "    (b) everything (core + costs + billing)"),
        ("forecast_backtest", "Forecast backtest: 8 held-out synthetic series per family and forecast, 56 days"),
        ("forecast_backtest (families)", "    cloud-like (all)     | "),
    ],
)
def test_each_bench_section_ran_in_the_smoke_run(smoke_run: SmokeRun, bench_module: str, line: str) -> None:
    assert line in smoke_run.stdout, f"{bench_module}: {line!r} not in the output\n{smoke_run.stdout[-3000:]}"


def test_the_smoke_run_judges_no_performance_target(smoke_run: SmokeRun) -> None:
    # The smoke sizes are too small to say anything about the targets: its exit status is correctness.
    assert "TARGET MISSED" not in smoke_run.stdout and "all targets met" not in smoke_run.stdout
    assert "not judged (smoke run)" in smoke_run.stdout


def test_the_smoke_run_stays_small(smoke_run: SmokeRun) -> None:
    assert smoke_run.cpu_s < SMOKE_CPU_BUDGET_S, f"{smoke_run.cpu_s:.0f} CPU s ({smoke_run.wall_s:.0f} s wall)"


def test_a_sub_bench_that_crashes_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    crashing = subprocess.Popen(
        [sys.executable, "-c", "raise KeyError(('TAG', 'team'))"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    assert bench._figures(crashing, "Budget") is None
    assert "KeyError: ('TAG', 'team')" in capsys.readouterr().out
