"""The core stack ``FinOpsGuard-<stage>-Core``: what both products stand on, and nothing else.

It holds the chat webhook secrets, the message outbox, the ops alarm topic with the failure queue and
the two alarms every function pages through, and the shared layers. It costs $0.60 a month when idle
(the Teams secret, $0.40, and two alarms), plus $0.40 with Slack.

A product stack reaches it through the few exports ``CoreExports`` names (ARNs that never change after
the first deploy), and through SSM parameters for the layers (a new layer version has a new ARN,
and a CloudFormation export another stack imports cannot change).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.alerts import AlertTopic
from infra.core.layers import Layers, SharedLayers, imported_layers
from infra.core.paging import FailurePaging, Paging, failure_queue_name
from infra.core.secrets import WebhookSecrets, add_webhook_secrets
from infra.core.storage import state_table


def outbox_table_name(stage: str) -> str:
    return f"finops-guard-{stage}-outbox"


@dataclass(frozen=True)
class CoreExports:
    """The names of the core's exports: the only values a product stack imports from it."""

    stage: str

    def name(self, what: str) -> str:
        return f"finops-guard-{self.stage}-{what}"

    @property
    def ops_topic_arn(self) -> str:
        return self.name("ops-topic-arn")

    @property
    def failure_queue_arn(self) -> str:
        return self.name("failure-queue-arn")

    @property
    def teams_secret_arn(self) -> str:
        return self.name("teams-secret-arn")

    @property
    def slack_secret_arn(self) -> str:
        return self.name("slack-secret-arn")


@dataclass(frozen=True)
class Core:
    """The core as a product stack uses it (imported into that stack)."""

    paging: Paging
    webhook_secrets: WebhookSecrets
    outbox_table: dynamodb.ITable
    layers: Layers


class CoreStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                f"FinOps Guard ({config.stage}) core: chat webhook secrets, message outbox, ops alarm topic "
                "and failure paging, shared layers"
            ),
        )
        self.config = config
        self.exports = CoreExports(config.stage)
        self.ops = AlertTopic(
            self,
            "Ops",
            stage=config.stage,
            name="ops-alarms",
            display_name=f"FinOps Guard {config.stage} alarms",
            purpose="ops alarm",
            email=config.ops_alarm_email,
            https_endpoints=config.ops_alarm_https_endpoints,
            encryption="none",  # CloudWatch alarms publish: they would need a customer-managed key
            allow_cloudwatch_alarms=True,
        )
        self.failure_paging = FailurePaging(self, "Paging", stage=config.stage, topic=self.ops.topic)
        self.paging = self.failure_paging.paging
        self.webhook_secrets = add_webhook_secrets(
            self, stage=config.stage, slack_enabled=config.slack_enabled, purpose="FinOps Guard reports"
        )
        self.outbox_table = state_table(
            self,
            "OutboxTable",
            table_name=outbox_table_name(config.stage),
            partition_key="message_id",
            ttl_attribute="expires_at",
            deletion_protection=False,
        )
        self.layers = SharedLayers(self, "Layers", stage=config.stage)
        self._add_outputs()

    def _add_outputs(self) -> None:
        exports, secrets = self.exports, self.webhook_secrets
        CfnOutput(self, "OpsTopicArn", value=self.ops.topic.topic_arn, export_name=exports.ops_topic_arn)
        CfnOutput(
            self, "FailureQueueArn", value=self.failure_paging.queue.queue_arn, export_name=exports.failure_queue_arn
        )
        CfnOutput(self, "FailureQueueName", value=self.failure_paging.queue.queue_name)
        CfnOutput(self, "OutboxTableName", value=self.outbox_table.table_name)
        CfnOutput(self, "TeamsSecretArn", value=secrets.teams.secret_arn, export_name=exports.teams_secret_arn)
        CfnOutput(self, "TeamsSecretName", value=secrets.teams_name)
        if secrets.slack is not None:
            CfnOutput(self, "SlackSecretArn", value=secrets.slack.secret_arn, export_name=exports.slack_secret_arn)
            CfnOutput(self, "SlackSecretName", value=secrets.slack_name or "")


def import_core(scope: Construct, config: FinOpsGuardConfig) -> Core:
    """The core's shared resources as seen from a product stack: imported by export name and SSM."""
    exports, stage = CoreExports(config.stage), config.stage
    topic = sns.Topic.from_topic_arn(scope, "OpsTopic", Fn.import_value(exports.ops_topic_arn))
    failures = sqs.Queue.from_queue_attributes(
        scope,
        "FailureQueue",
        queue_arn=Fn.import_value(exports.failure_queue_arn),
        queue_name=failure_queue_name(stage),
    )
    outbox = dynamodb.Table.from_table_attributes(
        scope,
        "OutboxTable",
        table_name=outbox_table_name(stage),  # a fixed name: its ARN needs no export
    )
    teams_name = f"finops-guard/{stage}/teams-webhook-url"
    teams = secretsmanager.Secret.from_secret_complete_arn(
        scope, "TeamsWebhookSecret", Fn.import_value(exports.teams_secret_arn)
    )
    slack = slack_name = None
    if config.slack_enabled:
        slack_name = f"finops-guard/{stage}/slack-webhook-url"
        slack = secretsmanager.Secret.from_secret_complete_arn(
            scope, "SlackWebhookSecret", Fn.import_value(exports.slack_secret_arn)
        )
    return Core(
        paging=Paging(topic=topic, failures=failures),
        webhook_secrets=WebhookSecrets(teams=teams, teams_name=teams_name, slack=slack, slack_name=slack_name),
        outbox_table=outbox,
        layers=imported_layers(scope, stage),
    )
