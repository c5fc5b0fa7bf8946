"""Billing alerts table stream -> finance channel (Teams, Slack optional), through the outbox.

Partial batch failures: a record whose card could not be delivered is retried by the stream, then
sent to the stage's failure queue; the card itself stays in the outbox for `finops-guard report resend`.
A card for a finance channel not set up yet (placeholder webhook secret) is kept the same way but
its record is not retried: retrying cannot help before the URL is put, and would end in the failure queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.billing import runtime
from finops_guard.billing.billing_notifier import notify
from finops_guard.billing.cards.billing import render_billing_alert
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.chat_settings()
    outcome = notify(
        event.get("Records", []),
        outbox=runtime.outbox(settings.require("outbox_table")),
        poster=runtime.webhook_poster(settings, context.get_remaining_time_in_millis()),
        channels=settings.chat_channels,
        render=partial(render_billing_alert, timezone=settings.timezone),
        now=datetime.now(UTC),
    )
    if kpi_metrics_on():
        metrics.add_metric("BillingAlertsPosted", MetricUnit.Count, len(outcome.posted))
    if outcome.delivery.failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(outcome.delivery.failed))
        count_chat_delivery_failures(len(outcome.delivery.failed))  # the stage's alarm
    if outcome.delivery.not_configured:  # a setup step: counted, never alarmed
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(outcome.delivery.not_configured))
    logger.info("billing alerts notified", extra={"posted": outcome.posted, "retry": outcome.retry})
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in outcome.retry]}
