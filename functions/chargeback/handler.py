"""Monthly chargeback (EventBridge Scheduler, the 1st in the report's time zone): last month's spend
per team / cost center as CSVs in the export bucket, announced in chat with short-lived links.

`{"month": "2026-10"}` runs a given month on demand (as `finops-guard chargeback run` does).
Rules (untagged cost, rounding): finops_guard/costs/chargeback.py.

With the month-close report on, the same run then posts the month's close (provisional while Cost
Explorer still estimates it), reusing this run's requests for the untagged share
(finops_guard/costs/cadence_runtime.py, month_close_run.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.core.delivery import DeliveryFailed
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on
from finops_guard.costs import cadence_runtime, runtime
from finops_guard.costs.chargeback import Month, month_before
from finops_guard.costs.monthly_chargeback import run_chargeback

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from finops_guard.costs.month_close_run import MonthCloseOutcome

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.settings()
    now = runtime.scheduled_time(event)
    requested = (event or {}).get("month")
    month = Month.parse(requested) if isinstance(requested, str) else month_before(now, settings.timezone)
    cadence = cadence_runtime.cadence_settings()
    costs = cadence_runtime.chargeback_source(runtime.cost_source(settings), cadence)
    try:
        outcome = run_chargeback(
            settings,
            month=month,
            now=now,
            run_id=now.strftime("%Y-%m-%dT%H:%M:%SZ"),  # the schedule's time: stable across retries
            costs=costs,
            store=runtime.export_bucket(settings.require("chargeback_bucket")),
            outbox=runtime.outbox(settings.require("outbox_table")),
            poster=runtime.webhook_poster(settings, context.get_remaining_time_in_millis()),
        )
    except DeliveryFailed as failure:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(failure.failures))
        count_chat_delivery_failures(len(failure.failures))  # the stage's alarm
        _count_not_configured(failure.not_configured)
        raise
    finally:
        if kpi_metrics_on():
            metrics.add_metric("CostExplorerRequests", MetricUnit.Count, costs.requests)
    _count_not_configured(outcome.delivery.not_configured)
    close = cadence_runtime.after_chargeback(
        costs, month, now=now, config=settings, cadence=cadence, remaining_ms=context.get_remaining_time_in_millis()
    )
    logger.info(
        "chargeback published",
        extra={
            "month": str(month),
            "objects": [p.key for p in outcome.published],
            "complete": outcome.complete,
            "cost_explorer_requests": costs.requests,
        },
    )
    return {
        "month": str(month),
        "objects": [{"key": p.key, "version_id": p.version_id} for p in outcome.published],
        "totals": {p.chargeback.dimension.spec(): str(p.chargeback.total) for p in outcome.published},
        "currency": outcome.published[0].chargeback.currency if outcome.published else settings.currency,
        "complete": outcome.complete,
        "delivered": outcome.delivery.delivered,
        "skipped": outcome.delivery.skipped,
        "not_configured": [message_id for message_id, _ in outcome.delivery.not_configured],
        "cost_explorer_requests": outcome.cost_requests,
        **_month_close(close),
    }


def _month_close(close: MonthCloseOutcome | None) -> dict[str, Any]:
    """The month-close's part of the answer (when it is on); undelivered cards fail the run."""
    if close is None:
        return {}
    logger.info(
        "month-close checked",
        extra={"month": close.month, "action": close.action, "cost_explorer_requests": close.cost_requests},
    )
    _count_not_configured(close.delivery.not_configured)
    if close.delivery.failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(close.delivery.failed))
        count_chat_delivery_failures(len(close.delivery.failed))
        raise DeliveryFailed(close.delivery.failed, close.delivery.not_configured)
    return {
        "month_close": {
            "month": close.month,
            "action": close.action,
            "delivered": close.delivery.delivered,
            "cost_explorer_requests": close.cost_requests,
        }
    }


def _count_not_configured(kept: list[tuple[str, str]]) -> None:
    # A card kept for a channel not set up yet: counted when non-zero, never alarmed (a setup step).
    if kept:
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(kept))
