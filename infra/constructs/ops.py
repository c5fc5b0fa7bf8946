"""Where operational alarms go: an encrypted SNS topic, optionally mailed to the on-call."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class OpsAlerts(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.key = self._add_key(stage)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"finops-guard-{stage}-ops-alarms",
            display_name=f"FinOps Guard {stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def _add_key(self, stage: str) -> kms.Key:
        key = kms.Key(
            self,
            "TopicKey",
            alias=f"alias/finops-guard-{stage}-ops-alarms",
            description="Encrypts the FinOps Guard ops alarm topic",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
        )
        # CloudWatch alarms publish to the topic as cloudwatch.amazonaws.com; the AWS managed
        # alias/aws/sns key cannot grant that service access, hence this customer managed key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        return key
