"""Cost anomaly forwarding: Cost Anomaly Detection -> SNS or EventBridge -> one SQS inbox -> chat.

Both delivery paths land in the same inbox, so a burst of anomalies reaches the function as one
batch and goes out as one digest card. The function records each anomaly in its own table to alert
once per anomaly (and again only when its impact has grown), and posts through the shared outbox.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_ce as ce
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import CostFilter, FinOpsGuardConfig
from infra.core.alerts import AlertTopic
from infra.core.deploy_setup import DeploySetup
from infra.core.layers import Layers
from infra.core.monitored_function import (
    ALARM_PERIOD,
    METRICS_NAMESPACE,
    MonitoredFunction,
    MonitoredFunctionProps,
    function_code,
)
from infra.core.paging import Paging
from infra.core.secrets import WebhookSecrets
from infra.core.storage import state_table, use_outbox_statement

FUNCTION_NAME = "anomaly-alerts"
ALERTS_TIMEOUT = Duration.seconds(60)
ALERTS_MEMORY_MB = 256
# AWS recommends a queue visibility timeout of six times the function timeout for SQS event sources.
INBOX_VISIBILITY_TIMEOUT = Duration.seconds(6 * ALERTS_TIMEOUT.to_seconds())
INBOX_RETENTION = Duration.days(4)
INBOX_MAX_RECEIVES = 5
# One digest per burst: wait up to 20 s for up to 50 alerts; two batches at a time at most.
BATCH_SIZE = 50
BATCH_WINDOW = Duration.seconds(20)
MAX_CONCURRENCY = 2
# The seed SLO: an anomaly alert reaches chat within 5 minutes of Cost Anomaly Detection publishing it.
FORWARDING_SLO_SECONDS = 300
# Powertools Metrics adds the service name as the "service" dimension to every metric.
METRICS_DIMENSIONS = {"service": FUNCTION_NAME}
ANOMALY_EVENT_PATTERN = events.EventPattern(source=["aws.ce"], detail_type=["Anomaly Detected"])


def threshold_expression(absolute: str | None, percent: str | None, match: str) -> dict[str, Any]:
    """The subscription's ThresholdExpression: total impact >= ``absolute`` (currency) and/or >= ``percent`` %.

    Both set: ``match`` "any" alerts when either is met, "all" only when both are.
    """
    dimensions = [
        {"Dimensions": {"Key": key, "MatchOptions": ["GREATER_THAN_OR_EQUAL"], "Values": [value]}}
        for key, value in (
            ("ANOMALY_TOTAL_IMPACT_ABSOLUTE", absolute),
            ("ANOMALY_TOTAL_IMPACT_PERCENTAGE", percent),
        )
        if value is not None
    ]
    if not dimensions:
        raise ValueError("an anomaly subscription needs an absolute or a percentage threshold")
    if len(dimensions) == 1:
        return dimensions[0]
    return {"Or" if match == "any" else "And": dimensions}


class Anomalies(Construct):
    """Exposes ``anomalies_table``, ``alerts`` (topic and key), ``inbox``, ``anomaly_alerts`` (its ``function``),
    ``rule``, ``services_monitor`` (the adopted or created AWS-services monitor, a custom resource),
    ``monitors`` (the CUSTOM ones), ``monitor_arns``, ``monitor_since`` and ``subscription``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        webhook_secrets: WebhookSecrets,
        outbox_table: dynamodb.ITable,
        setup: DeploySetup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.webhook_secrets = webhook_secrets
        self.outbox_table = outbox_table
        self.anomalies_table = self._add_table()
        self.alerts = self._add_topic()
        self.topic = self.alerts.topic
        self.anomaly_alerts = self._add_function(layers, paging)
        self.function = self.anomaly_alerts.function
        self.inbox = self._add_inbox()
        self.topic.add_subscription(subscriptions.SqsSubscription(self.inbox, raw_message_delivery=False))
        self.rule = self._add_rule()
        self._add_event_source()
        self._grant_function()
        self._add_alarms()
        self.services_monitor = self._add_services_monitor(setup)
        self.monitors = self._add_custom_monitors()
        self.monitor_arns = [
            *([self.services_monitor.get_att_string("MonitorArn")] if self.services_monitor else []),
            *(m.attr_monitor_arn for m in self.monitors),
            *config.anomaly_monitor_arns,
        ]
        # The day the services monitor began learning (its creation date, also when adopted): the weekly
        # card says anomaly detection is still learning during its first days.
        self.monitor_since = self.services_monitor.get_att_string("Since") if self.services_monitor else None
        self.subscription = self._add_subscription()

    @property
    def _inbox_name(self) -> str:
        # Known before the queue exists: the latency alarm names it.
        return f"finops-guard-{self.config.stage}-anomaly-inbox"

    def _add_table(self) -> dynamodb.Table:
        return state_table(
            self,
            "AnomaliesTable",
            table_name=f"finops-guard-{self.config.stage}-anomalies",
            partition_key="anomaly_id",
            ttl_attribute="expires_at",
            deletion_protection=True,  # the alert history: which anomalies were already forwarded
        )

    def _add_topic(self) -> AlertTopic:
        alerts = AlertTopic(
            self,
            "CostAnomalies",
            stage=self.config.stage,
            name="cost-anomalies",
            display_name=f"FinOps Guard {self.config.stage} cost anomalies",
            purpose="cost anomaly",
            email=None,
            encryption="none",  # Cost Anomaly Detection publishes: it would need a customer-managed key
        )
        # The topic statement with aws:SourceAccount, as documented:
        # https://docs.aws.amazon.com/cost-management/latest/userguide/ad-SNS.html
        alerts.allow_service_to_publish("costalerts.amazonaws.com", sid="AllowCostAnomalyDetectionToPublish")
        return alerts

    def _environment(self) -> dict[str, str]:
        config = self.config
        return {
            **config.report_environment(),
            **self.webhook_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
            "FINOPSGUARD_ANOMALIES_TABLE": self.anomalies_table.table_name,
            "FINOPSGUARD_ANOMALY_MIN_IMPACT": config.anomaly_min_impact,
            "FINOPSGUARD_ANOMALY_REALERT_GROWTH": config.anomaly_realert_growth,
        }

    def _add_function(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "AnomalyAlerts",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name=FUNCTION_NAME,
                description="Forwards AWS Cost Anomaly Detection alerts to the team chat as one digest per burst",
                code=function_code("anomaly_alerts"),
                timeout=ALERTS_TIMEOUT,
                memory_size=ALERTS_MEMORY_MB,
                environment=self._environment(),
                layers=[layers.common, layers.report_deps],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _add_inbox(self) -> sqs.Queue:
        # A message that fails five receives (unreadable, or not recorded) joins the stage's failure queue
        # (14 days, longer than the inbox keeps it), whose alarm pages; `finops-guard dlq redrive` returns it.
        return sqs.Queue(
            self,
            "Inbox",
            queue_name=self._inbox_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=INBOX_VISIBILITY_TIMEOUT,
            retention_period=INBOX_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=INBOX_MAX_RECEIVES, queue=self.anomaly_alerts.failure_queue
            ),
        )

    def _add_rule(self) -> events.Rule:
        # Cost Anomaly Detection puts these events on the default bus of its home region (us-east-1 in
        # the aws partition); in other regions this rule stays idle and SNS carries every alert.
        return events.Rule(
            self,
            "AnomalyDetectedRule",
            rule_name=f"finops-guard-{self.config.stage}-anomaly-detected",
            description="Sends AWS Cost Anomaly Detection 'Anomaly Detected' events to the anomaly inbox",
            event_pattern=ANOMALY_EVENT_PATTERN,
            targets=[events_targets.SqsQueue(self.inbox)],
        )

    def _add_event_source(self) -> None:
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.inbox,
                batch_size=BATCH_SIZE,
                max_batching_window=BATCH_WINDOW,
                report_batch_item_failures=True,
                max_concurrency=MAX_CONCURRENCY,
            )
        )

    def _grant_function(self) -> None:
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        for statement in (
            self.webhook_secrets.read_statement(),
            # Recording a sighting is one conditional UpdateItem (first alert, growth, or silent update).
            iam.PolicyStatement(
                sid="TrackAnomalies",
                actions=["dynamodb:UpdateItem"],
                resources=[self.anomalies_table.table_arn],
            ),
            use_outbox_statement(self.outbox_table),
        ):
            self.anomaly_alerts.add_to_role_policy(statement)

    def _custom_metric(
        self, metric_name: str, statistic: str, unit: cloudwatch.Unit | None = None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map=METRICS_DIMENSIONS,
            statistic=statistic,
            period=ALARM_PERIOD,
            unit=unit,
        )

    def _add_alarms(self) -> None:
        alerts = self.anomaly_alerts
        logs_hint = f"open the log group {alerts.log_group.log_group_name} in CloudWatch Logs Insights"
        alerts.add_alarm(
            "ForwardingLatency",
            self._custom_metric("AnomalyForwardingLatency", "Maximum", cloudwatch.Unit.SECONDS),
            threshold=FORWARDING_SLO_SECONDS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=(
                f"A cost anomaly alert took more than {FORWARDING_SLO_SECONDS // 60} minutes from Cost Anomaly "
                f"Detection to chat (SLO). First: check the age of the oldest message in {self._inbox_name} and "
                f"finops-guard dlq list, then {logs_hint} and find the slow webhook post or outbox retry."
            ),
        )

    def _add_services_monitor(self, setup: DeploySetup) -> CustomResource | None:
        if not self.config.anomaly_service_monitor:
            return None
        # AWS allows one AWS-services (DIMENSIONAL SERVICE) monitor per account, and many accounts have
        # one: the custom resource adopts it, and creates finops-guard-<stage>-services only when none exists.
        return setup.services_monitor(
            self, "ServicesMonitor", monitor_name=f"finops-guard-{self.config.stage}-services"
        )

    def _add_custom_monitors(self) -> list[ce.CfnAnomalyMonitor]:
        # CUSTOM monitors (linked accounts, tags, cost categories): see README, next to their keys, for
        # where they can be created; `finops-guard preflight` checks it before a deploy.
        config, prefix = self.config, f"finops-guard-{self.config.stage}"
        monitors = []
        custom: list[tuple[str, str, dict[str, Any]]] = []
        if config.anomaly_linked_accounts:
            linked = CostFilter(key="LINKED_ACCOUNT", values=config.anomaly_linked_accounts)
            custom.append(("LinkedAccountsMonitor", "linked-accounts", _specification("Dimensions", linked)))
        if config.anomaly_tag is not None:
            custom.append(("TagMonitor", "tag", _specification("Tags", config.anomaly_tag)))
        if config.anomaly_cost_category is not None:
            custom.append(
                ("CostCategoryMonitor", "cost-category", _specification("CostCategories", config.anomaly_cost_category))
            )
        for construct_id, name, specification in custom:
            monitors.append(
                ce.CfnAnomalyMonitor(
                    self,
                    construct_id,
                    monitor_name=f"{prefix}-{name}",
                    monitor_type="CUSTOM",
                    monitor_specification=json.dumps(specification),
                )
            )
        return monitors

    def _add_subscription(self) -> ce.CfnAnomalySubscription:
        config = self.config
        subscription = ce.CfnAnomalySubscription(
            self,
            "ImmediateSubscription",
            subscription_name=f"finops-guard-{config.stage}-immediate",
            frequency="IMMEDIATE",
            monitor_arn_list=self.monitor_arns,
            subscribers=[ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=self.topic.topic_arn)],
            threshold_expression=json.dumps(
                threshold_expression(
                    config.anomaly_threshold_absolute,
                    config.anomaly_threshold_percent,
                    config.anomaly_threshold_match,
                )
            ),
        )
        # Cost Anomaly Detection must be allowed to publish from its first alert. The key policy is
        # part of the key, which the topic (referenced above) already waits for.
        subscription.node.add_dependency(self.alerts.topic_policy)
        return subscription


def _specification(kind: str, cost_filter: CostFilter) -> dict[str, Any]:
    """A CUSTOM monitor's MonitorSpecification: one Cost Explorer expression over one key."""
    return {kind: {"Key": cost_filter.key, "Values": list(cost_filter.values)}}
