"""Where alerts go: an SNS topic, optionally mailed to people and posted to paging services.

No customer-managed KMS key ($1 a month each, more than the rest of a small deployment's fixed cost):
- a topic that only roles of this account publish to (the finance alerts) is encrypted with the
  AWS-managed key ``alias/aws/sns``, free, whose key policy lets the account's principals use it
  through SNS;
- a topic an AWS service publishes to cannot use that key: the service is no principal of the
  account, and an AWS-managed key policy cannot be changed. CloudWatch alarms (the ops topic) and
  Cost Anomaly Detection (the anomaly topic) would each need a customer-managed key. Those two
  topics are left without server-side encryption at rest: they carry alarm states and anomaly
  summaries that go to chat and mail anyway, never a secret; SNS stores a message only until it is
  delivered, and the topic policy refuses every request that is not TLS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


def alarm_name_pattern(stage: str) -> str:
    """Every alarm of the stack is named ``FinOpsGuard-<stage>-...``: the only alarms that may page."""
    return f"FinOpsGuard-{stage}-*"


class AlertTopic(Construct):
    """Topic ``finops-guard-<stage>-<name>``. Exposes ``topic``; ``email`` and each of ``https_endpoints``
    become subscriptions.

    ``encryption``: "aws-managed" (``alias/aws/sns``) when only this account's roles publish, "none"
    when an AWS service publishes (see the module docstring). The topic policy (``enforce_ssl``
    creates it) replaces SNS's default one: roles publish with ``publish_statements`` in their own
    policy; ``allow_cloudwatch_alarms`` lets this stage's alarms publish and
    ``allow_service_to_publish`` another service, each with a topic statement.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        name: str,
        display_name: str,
        purpose: str,
        email: str | None,
        https_endpoints: Sequence[str] = (),
        encryption: Literal["aws-managed", "none"],
        allow_cloudwatch_alarms: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"finops-guard-{stage}-{name}",
            display_name=display_name,
            master_key=kms.Alias.from_alias_name(self, "AwsManagedKey", "alias/aws/sns")
            if encryption == "aws-managed"
            else None,
            enforce_ssl=True,
        )
        if encryption == "none":
            Validations.of(self.topic).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SNS2",
                    reason=(
                        f"An AWS service publishes to the {purpose} topic, so the free AWS-managed key cannot "
                        "encrypt it and a customer-managed key would cost $1 a month; the messages are alarm "
                        "states or anomaly summaries, never secrets, and the topic policy requires TLS."
                    ),
                )
            )
        if allow_cloudwatch_alarms:
            self._allow_cloudwatch_alarms(stage)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # The endpoint (a paging service) confirms the subscription itself.
        for url in https_endpoints:
            self.topic.add_subscription(subscriptions.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))

    def _allow_cloudwatch_alarms(self, stage: str) -> None:
        # Alarms publish as cloudwatch.amazonaws.com, which a topic policy must name (ArnLike on the alarm
        # ARN); the AWS managed alias/aws/sns key cannot grant it the key, hence no encryption at rest.
        # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        # https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns
        stack = Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=alarm_name_pattern(stage),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self._allow_service(
            "cloudwatch.amazonaws.com",
            "AllowCloudWatchAlarmsToPublish",
            this_account | {"ArnLike": {"aws:SourceArn": alarms}},
        )

    def allow_service_to_publish(self, service: str, sid: str) -> None:
        """Let an AWS service publish on behalf of this account only: ``sns:Publish`` in the topic policy
        limited by ``aws:SourceAccount`` (the confused-deputy guard the services document for the topic)."""
        self._allow_service(service, sid, {"StringEquals": {"aws:SourceAccount": Stack.of(self).account}})

    def _allow_service(
        self,
        service: str,
        sid: str,
        topic_conditions: dict[str, dict[str, str]],
    ) -> None:
        principal = iam.ServicePrincipal(service)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=topic_conditions,
            )
        )

    @property
    def topic_policy(self) -> sns.TopicPolicy:
        """The topic's access policy resource (created by ``enforce_ssl``), for DependsOn."""
        policy = self.topic.node.find_child("Policy")
        assert isinstance(policy, sns.TopicPolicy)
        return policy

    def publish_statements(self, sid_prefix: str) -> list[iam.PolicyStatement]:
        """What a function's role needs to publish here (the AWS-managed key needs no grant)."""
        return [
            iam.PolicyStatement(sid=f"{sid_prefix}Publish", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        ]
