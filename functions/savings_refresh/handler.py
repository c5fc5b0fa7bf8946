"""Daily: Cost Optimization Hub's recommendations into the recommendations table, and the ROI of
implemented items (one Cost Explorer request per item, once). Posts nothing: the weekly card shows it.

A failing listing raises (the Errors alarm pages, Lambda retries) and has closed nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.core.service_levels import kpi_metrics_on
from finops_guard.costs import runtime
from finops_guard.costs.adapters.cost_explorer import CostExplorerSource
from finops_guard.costs.adapters.cost_optimization_hub import CostOptimizationHub
from finops_guard.costs.savings_refresh import RefreshOutcome, refresh

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = runtime.settings()
    hub = CostOptimizationHub(runtime.cost_optimization_hub_client())
    costs = runtime.cost_source(config)
    outcome = RefreshOutcome()
    try:
        outcome = refresh(
            now=runtime.scheduled_time(event),
            hub=hub,
            store=runtime.recommendations_table(config.require("recommendations_table")),
            routing=runtime.routing(config),
            costs=costs if isinstance(costs, CostExplorerSource) else None,  # no ROI on synthetic data
            metric=config.cost_metric,
        )
    finally:
        # Dashboard-only, and usually zero: sent only when KPI metrics are on and the value is not (a
        # daily zero is a custom metric billed for nothing). Every count is in the log line below.
        if kpi_metrics_on():
            for name, value in (("CostExplorerRequests", costs.requests), ("RecommendationsNew", len(outcome.new)),
                                ("RecommendationsResolvedUpstream", len(outcome.resolved_upstream))):  # fmt: skip
                if value:
                    metrics.add_metric(name, MetricUnit.Count, value)
    logger.info("savings refresh", extra={"listed": outcome.listed, "new": outcome.new,
                                          "reopened": outcome.reopened, "resolved_upstream": outcome.resolved_upstream,
                                          "roi_measured": outcome.roi_measured, "lost_races": outcome.lost_races,
                                          "unreadable": hub.unreadable, "hub_requests": hub.requests,
                                          "cost_explorer_requests": costs.requests})  # fmt: skip
    return {
        "listed": outcome.listed,
        "new": len(outcome.new),
        "reopened": len(outcome.reopened),
        "resolved_upstream": len(outcome.resolved_upstream),
        "roi_measured": len(outcome.roi_measured),
        "lost_races": len(outcome.lost_races),
        "cost_optimization_hub_requests": outcome.hub_requests,
        "cost_explorer_requests": outcome.cost_requests,
    }
