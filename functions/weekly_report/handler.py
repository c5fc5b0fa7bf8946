"""Weekly cost report: EventBridge Scheduler -> Cost Explorer -> Teams (and Slack) card.

Failure to deliver raises, so the Errors alarm pages and Lambda retries; the rendered messages are
kept in the outbox either way (`finops-guard report resend`). A channel whose webhook secret still
holds its placeholder is not set up yet: its card is kept the same way, the run succeeds, and the
card that does get through says so in its Setup section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.core.delivery import DeliveryFailed
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on
from finops_guard.costs import runtime
from finops_guard.costs.weekly_report import run_weekly_report

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.settings_for(event)
    costs = runtime.cost_source(settings)
    routing = runtime.routing(settings)
    now = runtime.scheduled_time(event)
    savings = runtime.savings_overview(settings, now)
    tags = runtime.tag_activation(settings)
    chat = runtime.chat_setup(settings)
    kpis = kpi_metrics_on()
    try:
        outcome = run_weekly_report(
            settings,
            now=now,
            costs=costs,
            outbox=runtime.outbox(settings.require("outbox_table")),
            poster=runtime.webhook_poster(settings, context.get_remaining_time_in_millis(), chat),
            budgets=runtime.budget_overview(settings, routing),
            routing=routing,
            savings=savings.recommendations,
            commitment=savings.commitment,
            tags=tags,
            unready_channels=chat.unready,
            breakdown=runtime.report_breakdown(settings),
        )
    except DeliveryFailed as failure:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(failure.failures))
        count_chat_delivery_failures(len(failure.failures))  # the stage's alarm
        _count_not_configured(failure.not_configured)
        raise
    finally:
        tag_requests = tags.requests if tags is not None else 0
        cost_requests = costs.requests + savings.cost_requests + tag_requests
        if kpis:
            metrics.add_metric("CostExplorerRequests", MetricUnit.Count, cost_requests)
    _count_not_configured(outcome.delivery.not_configured)
    report = outcome.report
    if not settings.use_mock_data:  # a smoke test's synthetic card neither meets the SLO nor feeds the dashboard
        if outcome.posted:  # a card only kept (its channel not set up yet) was not posted
            metrics.add_metric("WeeklyReportPosted", MetricUnit.Count, 1)  # the NotPosted alarm's
        if kpis:  # dashboard KPIs, in the report currency. CloudWatch takes floats: converted here, at the edge
            metrics.add_metric("MonthToDateSpend", MetricUnit.NoUnit, float(round(report.month_to_date, 2)))
            metrics.add_metric("ForecastMonthEnd", MetricUnit.NoUnit, float(round(report.forecast_month_end.likely, 2)))
    logger.info(
        "weekly report delivered",
        extra={
            "report_id": report.report_id,
            "month_to_date": str(report.month_to_date),
            "forecast_month_end": str(round(report.forecast_month_end.likely, 2)),
            "currency": report.currency,
            "cost_explorer_requests": cost_requests,
            "delivered": outcome.delivery.delivered,
            "skipped": outcome.delivery.skipped,
            "kept_until_set_up": [message_id for message_id, _ in outcome.delivery.not_configured],
            "setup": [item.text for item in report.setup],
        },
    )
    return {
        "report_id": report.report_id,
        "as_of": report.window.as_of.isoformat(),
        "month_to_date": str(report.month_to_date),
        "currency": report.currency,
        "delivered": outcome.delivery.delivered,
        "skipped": outcome.delivery.skipped,
        "not_configured": [message_id for message_id, _ in outcome.delivery.not_configured],
        "cost_explorer_requests": outcome.cost_requests + savings.cost_requests,
    }


def _count_not_configured(kept: list[tuple[str, str]]) -> None:
    # Sent only when non-zero, and no alarm reads it: a channel not set up yet is a setup step, not a page.
    if kept:
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(kept))
