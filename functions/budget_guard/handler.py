"""Daily budget guard: EventBridge Scheduler -> Cost Explorer (one request per grouping) -> alerts.

Each crossed threshold alerts once per period (conditional writes), in the budget's channels and
those of the teams its scope names; `Budget Exceeded` goes to EventBridge for budgets with a hard
limit. Undelivered alerts stay in the outbox and make the invocation fail, so the Errors alarm pages.
An alert for a channel not set up yet (its webhook secret still holds the placeholder) is kept the
same way without failing the run; the next run sends it once the URL is put.

With the daily digest or the month-close report switched on, the same run also posts the digest of
its day and takes the month-close's daily look at last month (finops_guard/costs/cadence_runtime.py),
from the pages it read for the budgets: the digest adds no Cost Explorer request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from finops_guard.core.delivery import DeliveryFailed
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on
from finops_guard.costs import cadence_runtime, runtime
from finops_guard.costs.budget_guard import run_budget_guard
from finops_guard.costs.budgets import InvalidStoredBudgets
from finops_guard.costs.cards.budget_alert import render_alert, render_digest

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

METRICS_NAMESPACE = "FinOpsGuard"  # as the stack sets POWERTOOLS_METRICS_NAMESPACE
logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.settings()
    cadence = cadence_runtime.cadence_settings()
    now = runtime.scheduled_time(event)
    routing = runtime.routing(settings)
    costs = cadence_runtime.guard_source(runtime.cost_source(settings), cadence, routing, now, settings.cost_metric)
    budgets, invalid = runtime.budget_table(settings.require("budgets_table")).load()
    outcome = run_budget_guard(
        budgets,
        now=now,
        costs=costs,
        store=runtime.budget_alert_table(settings.require("budget_alerts_table")),
        outbox=runtime.outbox(settings.require("outbox_table")),
        poster=runtime.alert_poster(settings, context.get_remaining_time_in_millis()),
        events=runtime.event_publisher(settings.event_bus_name),
        render=render_alert,
        render_digest=render_digest,
        routing=routing,
        timezone=settings.timezone,
        level=settings.forecast_interval,
        metric=settings.cost_metric,
    )
    reports = cadence_runtime.after_budget_guard(
        costs, outcome, now=now, config=settings, cadence=cadence, routing=routing, budgets=budgets,
        remaining_ms=context.get_remaining_time_in_millis(),
    )  # fmt: skip
    # The dashboard's per-budget consumption (actual spend, percent of the amount).
    consumption = {
        s.budget.budget_id: float(round(s.consumption("actual"), 1)) for s in outcome.statuses if not s.error
    }
    if kpi_metrics_on():  # one metric per budget, $0.30 a month each: only for the dashboard that reads them
        metrics.add_metric("BudgetsEvaluated", MetricUnit.Count, len(outcome.statuses))
        if outcome.fired:
            metrics.add_metric("BudgetAlertsFired", MetricUnit.Count, len(outcome.fired))
        metrics.add_metric("CostExplorerRequests", MetricUnit.Count, outcome.cost_requests)
        for budget_id, percent in consumption.items():
            with single_metric("BudgetConsumptionPercent", MetricUnit.Percent, percent,
                               namespace=metrics.namespace or METRICS_NAMESPACE) as metric:  # fmt: skip
                metric.add_dimension("service", metrics.service or "budget-guard")
                metric.add_dimension("budget", budget_id)
    # Usually zero, sent only when not: each metric sent is billed for the hour it is sent in.
    if outcome.errors:
        metrics.add_metric("BudgetErrors", MetricUnit.Count, len(outcome.errors))
    logger.info(
        "budgets guarded",
        extra={
            "budgets": len(outcome.statuses),
            "consumption_percent": consumption,
            "fired": [f"{f.status.budget.budget_id}:{f.kind}:{f.threshold}" for f in outcome.fired],
            "errors": len(outcome.errors),
            "cost_explorer_requests": outcome.cost_requests,
        },
    )
    _log_reports(reports)
    for status in outcome.errors:
        logger.error("budget not evaluated", extra={"budget_id": status.budget.budget_id, "reason": status.error})
    not_configured = [*outcome.delivery.not_configured, *(k for d in reports.deliveries for k in d.not_configured)]
    failed = [*outcome.delivery.failed, *(f for d in reports.deliveries for f in d.failed)]
    if not_configured:  # a setup step: counted, never alarmed
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(not_configured))
    if failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(failed))
        count_chat_delivery_failures(len(failed))  # the stage's alarm
        raise DeliveryFailed(failed, not_configured)
    if invalid:
        # Every valid budget was guarded; fail so the Errors alarm names the broken ones.
        metrics.add_metric("InvalidStoredBudgets", MetricUnit.Count, len(invalid))
        raise InvalidStoredBudgets(invalid)
    return {
        "budgets": len(outcome.statuses),
        "fired": [f"{f.status.budget.budget_id}:{f.kind}:{f.threshold}" for f in outcome.fired],
        "rearmed": [f"{r.budget_id}:{r.key}" for r in outcome.rearmed],
        "events": outcome.events,
        "errors": {s.budget.budget_id: s.error for s in outcome.errors},
        "delivered": outcome.delivery.delivered,
        "not_configured": [message_id for message_id, _ in outcome.delivery.not_configured],
        "dropped": outcome.dropped,
        "cost_explorer_requests": outcome.cost_requests,
        **_answer(reports),
    }


def _log_reports(reports: cadence_runtime.CadenceOutcome) -> None:
    if reports.month_close is not None:
        close = reports.month_close
        logger.info(
            "month-close checked",
            extra={"month": close.month, "action": close.action, "cost_explorer_requests": close.cost_requests},
        )


def _answer(reports: cadence_runtime.CadenceOutcome) -> dict[str, Any]:
    """What the digest and the month-close did, when they are on."""
    answer: dict[str, Any] = {}
    if reports.digest is not None:
        answer["digest"] = {
            "posted": [d.scope or "default" for d in reports.digest.digests if not d.quiet],
            "quiet": [d.scope or "default" for d in reports.digest.quiet],
            "delivered": reports.digest.delivery.delivered,
        }
    if reports.month_close is not None:
        close = reports.month_close
        answer["month_close"] = {
            "month": close.month,
            "action": close.action,
            "delivered": close.delivery.delivered,
            "cost_explorer_requests": close.cost_requests,
        }
    return answer
