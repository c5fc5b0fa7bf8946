"""Stage-level service metrics: one CloudWatch metric per stage, whichever function emits it.

Powertools Metrics always adds a `service` dimension (the function), so its `ChatDeliveryFailures`
is one metric per posting function. The stage's one chat delivery alarm (infra/core/paging.py)
watches `ChatDeliveryFailures` with the single dimension `stage` instead; every posting function
writes that one here, as an Embedded Metric Format line on stdout (CloudWatch Logs turns it into
the metric; no API call, no extra latency). The Powertools metric stays (sent only on a failure, so
it costs only then): it names the function, which the stage metric does not.

KPI metrics (spend, budget consumption, MRR, event counts: what only the opt-in dashboards read)
are sent only when `kpi_metrics_on()`: each custom metric is $0.30 a month, and a metric nobody reads
is money for nothing. The stack sets FINOPSGUARD_KPI_METRICS to "on" exactly when it deploys the
dashboards; without the variable (local runs, tests) they are on. Alarm metrics and problem counters
sent only when non-zero are always sent; every KPI is also in the function's log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

NAMESPACE = "FinOpsGuard"
CHAT_DELIVERY_FAILURES = "ChatDeliveryFailures"
STAGE_VARIABLE = "FINOPSGUARD_STAGE"
KPI_METRICS_VARIABLE = "FINOPSGUARD_KPI_METRICS"
_STAGE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?")  # as infra/config.py accepts a stage

logger = logging.getLogger(__name__)

# With KPI metrics off, a healthy run of most functions sends no metric at all, which is the point;
# Powertools would warn about it on every such run.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
_warned = False
_warned_kpi = False


def chat_delivery_failures_line(count: int, stage: str, at: datetime) -> str:
    """The EMF document for `count` undelivered chat messages in `stage` at `at` (Timestamp in ms)."""
    document = {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["stage"]],
                    "Metrics": [{"Name": CHAT_DELIVERY_FAILURES, "Unit": "Count"}],
                }
            ],
        },
        "stage": stage,
        CHAT_DELIVERY_FAILURES: count,
    }
    return json.dumps(document, separators=(",", ":"))


def count_chat_delivery_failures(
    count: int,
    *,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    write: Callable[[str], None] | None = None,
) -> bool:
    """Emit the stage's `ChatDeliveryFailures` (count > 0 only: a zero would be billed and alarms
    nothing). Without a valid FINOPSGUARD_STAGE nothing is emitted and one WARNING says so per
    container. Returns whether a line was written; never raises."""
    global _warned
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        return False
    stage = (os.environ if environ is None else environ).get(STAGE_VARIABLE)
    if not isinstance(stage, str) or not _STAGE.fullmatch(stage):
        if not _warned:
            _warned = True
            logger.warning(
                "stage-level ChatDeliveryFailures not emitted: FINOPSGUARD_STAGE is not set to a stage name, "
                "so the stage's chat delivery alarm cannot see this function's failures",
                extra={"stage_variable": stage[:40] if isinstance(stage, str) else None},
            )
        return False
    try:
        line = chat_delivery_failures_line(count, stage, now())
        (write or _print)(line)
    except Exception:  # noqa: BLE001 - a metric must never fail the delivery it reports on
        logger.exception("stage-level ChatDeliveryFailures not emitted")
        return False
    return True


def kpi_metrics_on(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to send the dashboard-only KPI metrics: FINOPSGUARD_KPI_METRICS "on" or absent (local
    runs and tests). "off", or any other value (with one WARNING per container), sends none."""
    global _warned_kpi
    value = (os.environ if environ is None else environ).get(KPI_METRICS_VARIABLE)
    if value is None or value == "on":
        return True
    if value != "off" and not _warned_kpi:
        _warned_kpi = True
        logger.warning(
            "KPI metrics not emitted: FINOPSGUARD_KPI_METRICS is neither on nor off",
            extra={"kpi_metrics_variable": value[:40]},
        )
    return False


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
