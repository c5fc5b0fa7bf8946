"""How a failure reaches a person, for cents: one failure queue and two alarms for the whole stage.

Every failure path of every function ends in one of two places that page the ops topic:
- the stage's failure queue ``finops-guard-<stage>-failures``, watched by one alarm. Lambda puts the
  invocation record of an asynchronous event that failed every retry there (an error, a timeout, an
  event that waited too long); so do EventBridge Scheduler for an event it could not deliver, the
  anomaly inbox for a poison message and the billing notifier's stream mapping for a poison batch;
- the chat delivery alarm, over the one ``ChatDeliveryFailures`` metric every posting function emits
  with only the ``stage`` dimension.
Each product stack adds its service-level alarms (a report not posted, a slow anomaly or invoice, a
reconciliation mismatch, stuck dunning) and the billing API's 5xx alarms on the same topic.

Why not one alarm set per function: an alarm costs $0.10 a month per metric, so four per function
cost more than everything the functions do in a month. A failure record names its function
(``finops-guard dlq list``), which is what the per-function alarm names used to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ALARM_PERIOD = Duration.minutes(5)
METRICS_NAMESPACE = "FinOpsGuard"
CHAT_DELIVERY_METRIC = "ChatDeliveryFailures"
# Longer than Lambda keeps an async event (6 h) and than anyone's weekend: nothing ages out unseen.
FAILURE_RETENTION = Duration.days(14)


def failure_queue_name(stage: str) -> str:
    return f"finops-guard-{stage}-failures"


def core_alarm_names(stage: str) -> tuple[str, str]:
    """The core's two alarms, which page for every function of every product."""
    return (f"FinOpsGuard-{stage}-Failures", f"FinOpsGuard-{stage}-ChatDeliveryFailures")


@dataclass(frozen=True)
class Paging:
    """What a function needs to page: the stage's failure queue and the ops topic."""

    topic: sns.ITopic
    failures: sqs.IQueue

    def send_failures_statement(self, sid: str = "ReportFailedEvents") -> iam.PolicyStatement:
        """Send a failure record to the failure queue (Lambda's destination uses the function's role)."""
        return iam.PolicyStatement(sid=sid, actions=["sqs:SendMessage"], resources=[self.failures.queue_arn])

    def alarm_action(self) -> cloudwatch_actions.SnsAction:
        return cloudwatch_actions.SnsAction(self.topic)

    def page(self, alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
        """Page the ops topic when ``alarm`` fires and when it clears."""
        action = self.alarm_action()
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm


class FailurePaging(Construct):
    """The failure queue, its alarm and the stage-wide chat delivery alarm. Exposes ``queue`` and ``alarms``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.queue = sqs.Queue(
            self,
            "FailureQueue",
            queue_name=failure_queue_name(stage),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=FAILURE_RETENTION,
        )
        Validations.of(self.queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason=(
                    "This is the stage's dead-letter queue: Lambda's on-failure destinations, EventBridge "
                    "Scheduler, the anomaly inbox's redrive (in the costs stack) and the billing stream mapping "
                    "send to it. Nothing consumes it automatically, so no message can fail here; an operator "
                    "lists and redrives it by hand."
                ),
            )
        )
        self.paging = Paging(topic=topic, failures=self.queue)
        self.alarms = [self._add_failures_alarm(), self._add_chat_delivery_alarm()]

    def _add_failures_alarm(self) -> cloudwatch.Alarm:
        name = failure_queue_name(self.stage)
        return self.paging.page(
            cloudwatch.Alarm(
                self,
                "FailuresAlarm",
                alarm_name=core_alarm_names(self.stage)[0],
                alarm_description=(
                    f"A FinOps Guard function failed and its event is parked in the SQS queue {name}: a run "
                    "that raised or timed out three times, a schedule that could not start it, a poison "
                    "anomaly message or billing stream batch. First: run finops-guard dlq list --stage "
                    f"{self.stage}; each line names the function and the error. Read that function's log "
                    "group (/aws/lambda/finops-guard-<stage>-<function>) for the ERROR lines, fix the cause, "
                    f"then finops-guard dlq redrive --stage {self.stage}. The alarm clears when the queue is "
                    "empty; while it is in ALARM a new failure does not page again, so empty the queue."
                ),
                metric=self.queue.metric_approximate_number_of_messages_visible(
                    period=ALARM_PERIOD, statistic="Maximum"
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )

    def _add_chat_delivery_alarm(self) -> cloudwatch.Alarm:
        stage = self.stage
        return self.paging.page(
            cloudwatch.Alarm(
                self,
                "ChatDeliveryAlarm",
                alarm_name=core_alarm_names(stage)[1],
                alarm_description=(
                    f"A FinOps Guard message could not be delivered to a chat channel in the last hour; it is "
                    f"kept in the outbox finops-guard-{stage}-outbox. First: run finops-guard report pending "
                    f"--stage {stage} and read its last error. Secret missing, 401, 403 or 404: put the "
                    "channel's incoming webhook URL into its secret (aws secretsmanager put-secret-value; the "
                    "function's WARNING line names it). 429, 5xx or timeouts: the chat service is failing; "
                    f"once it is back, run finops-guard report resend --stage {stage}."
                ),
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=CHAT_DELIVERY_METRIC,
                    dimensions_map={"stage": stage},
                    statistic="Sum",
                    period=Duration.hours(1),
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
