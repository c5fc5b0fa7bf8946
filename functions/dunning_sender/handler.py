"""Hourly: send the dunning steps that are due (e-mail via SES, SMS via SNS), each at most once.

Each step's invoice is re-read from Stripe first: one paid meanwhile is skipped, not reminded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.billing import runtime
from finops_guard.billing.adapters.dunning_store import DunningChannels, DunningTable
from finops_guard.billing.adapters.stripe_api import StripeRequestError
from finops_guard.billing.dunning import parse_templates, send_due_steps
from finops_guard.core.service_levels import kpi_metrics_on

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

STUCK_AFTER = timedelta(minutes=15)  # far beyond one send: the claiming run died
logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


def _invoice(invoice_id: str) -> dict[str, Any] | None:
    try:
        return runtime.stripe_api().retrieve_invoice(invoice_id)
    except StripeRequestError as error:
        if error.status == 404:
            return None
        raise


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.billing_ops_settings()
    store = DunningTable(settings.dunning_table)
    now = runtime.scheduled_time(event)
    run = send_due_steps(
        store=store,
        invoice=_invoice,
        channels=DunningChannels(settings.dunning_sender_email),
        templates=parse_templates(settings.dunning_templates),
        sender_configured=bool(settings.dunning_sender_email),
        now=now,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    # Only what happened: an hourly zero would make four custom metrics cost $1.20 a month for nothing
    # (make bench, self-cost). The StepsFailed alarm reads a missing data point as fine. Sent and
    # skipped are the normal course: dashboard-only, in the log line either way.
    counted = [("DunningStepsFailed", run.failed), ("DunningStepsDeferred", run.errors)]
    if kpi_metrics_on():
        counted += [("DunningStepsSent", run.sent), ("DunningStepsSkipped", run.skipped)]
    for name, steps in counted:
        if steps:
            metrics.add_metric(name, MetricUnit.Count, len(steps))
    logger.info("dunning run", extra={"sent": run.sent, "skipped": run.skipped, "failed": run.failed,
                                      "deferred": run.errors, "lost_races": run.lost_races})  # fmt: skip
    stuck = store.stuck_steps(claimed_before=now - STUCK_AFTER)
    if stuck:  # at most once means never re-sent by us: a human decides (the alarm's runbook)
        logger.error("dunning steps claimed but never confirmed sent", extra={"steps": stuck})
        metrics.add_metric("DunningStepsStuck", MetricUnit.Count, len(stuck))
    return {"sent": len(run.sent), "skipped": len(run.skipped), "failed": len(run.failed), "deferred": len(run.errors),
            "stuck": stuck}  # fmt: skip
