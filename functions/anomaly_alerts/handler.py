"""Cost anomaly alerts: SQS inbox (fed by the anomaly SNS topic and the `Anomaly Detected`
EventBridge rule) -> dedup per anomaly -> one card or one digest per channel, and per channel of
each team routed to the anomalies' accounts.

Returns SQS partial batch failures: malformed records and records whose alert could not be
delivered are retried, then land in the stage's failure queue; the function never crash-loops. A card
for a channel not set up yet (placeholder webhook secret) is kept in the outbox and its records are
acknowledged: `finops-guard outbox redrive` sends it once the URL is put.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from finops_guard.core.service_levels import count_chat_delivery_failures, kpi_metrics_on
from finops_guard.costs import runtime
from finops_guard.costs.anomalies import AlertPolicy, Sighting
from finops_guard.costs.anomaly_alerts import Render, forward_batch, inbox_records

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})


def _renderer(currency: str) -> Render:
    def render(sightings: list[Sighting], channel: str) -> dict[str, Any]:
        # The card modules load with the first alert: a batch of repeats renders nothing.
        from finops_guard.costs.cards.anomaly import render_anomalies

        return render_anomalies(sightings, channel, currency)

    return render


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.settings()
    records = inbox_records(event)
    outcome = forward_batch(
        records,
        store=runtime.anomaly_table(settings.require("anomalies_table")),
        outbox=runtime.outbox(settings.require("outbox_table")),
        poster=runtime.webhook_poster(settings, context.get_remaining_time_in_millis()),
        policy=AlertPolicy(settings.anomaly_min_impact, settings.anomaly_realert_growth),
        render=_renderer(settings.currency),
        channels=settings.chat_channels,
        clock=lambda: datetime.now(UTC),
        routing=runtime.routing(settings),
    )
    if kpi_metrics_on():  # dashboard-only counts; the log line below has them either way
        metrics.add_metric("AnomalyMessages", MetricUnit.Count, len(records))
        metrics.add_metric("AnomaliesAlerted", MetricUnit.Count, len(outcome.alerted))
    if outcome.malformed:  # the alarm treats no data as fine: a zero would be billed for nothing
        metrics.add_metric("MalformedAnomalyMessages", MetricUnit.Count, len(outcome.malformed))
    if outcome.delivery.failed:
        metrics.add_metric("ChatDeliveryFailures", MetricUnit.Count, len(outcome.delivery.failed))
        count_chat_delivery_failures(len(outcome.delivery.failed))  # the stage's alarm
    if outcome.delivery.not_configured:  # a setup step: counted, never alarmed
        metrics.add_metric("ChatNotConfigured", MetricUnit.Count, len(outcome.delivery.not_configured))
    for seconds in outcome.latencies:  # the ForwardingLatency alarm's
        metrics.add_metric("AnomalyForwardingLatency", MetricUnit.Seconds, float(seconds))
    logger.info(
        "anomaly batch forwarded",
        extra={
            "records": len(records),
            "alerted": [f"{s.anomaly.anomaly_id}:{s.outcome}" for s in outcome.alerted],
            "silent": sum(1 for s in outcome.sightings if not s.alerts),
            "retry": outcome.retry,
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in dict.fromkeys(outcome.retry)]}
