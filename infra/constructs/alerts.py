"""Where alerts go: an SNS topic encrypted with its own rotating key, optionally mailed to people and
posted to paging services."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class AlertTopic(Construct):
    """Topic ``finops-guard-<stage>-<name>`` and its key ``alias/finops-guard-<stage>-<name>``.

    Exposes ``topic`` and ``key``; ``email`` and each of ``https_endpoints`` become subscriptions.
    Publishers in this account need ``sns:Publish`` on the topic plus
    ``kms:GenerateDataKey*``/``kms:Decrypt`` on the key in their own policy: the key policy's default
    account statement delegates key access to IAM. Services are not IAM principals of the account,
    so ``allow_cloudwatch_alarms`` adds a key policy statement for CloudWatch alarm actions, and
    ``allow_service_to_publish`` topic and key policy statements for another AWS service.
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
        allow_cloudwatch_alarms: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = self._add_key(f"finops-guard-{stage}-{name}", purpose, allow_cloudwatch_alarms)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"finops-guard-{stage}-{name}",
            display_name=display_name,
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # SNS decrypts before it posts; the endpoint (a paging service) confirms the subscription itself.
        for url in https_endpoints:
            self.topic.add_subscription(subscriptions.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))

    def _add_key(self, name: str, purpose: str, allow_cloudwatch_alarms: bool) -> kms.Key:
        key = kms.Key(
            self,
            "TopicKey",
            alias=f"alias/{name}",
            description=f"Encrypts the FinOps Guard {purpose} topic",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
        )
        if allow_cloudwatch_alarms:
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

    def allow_service_to_publish(self, service: str, sid: str) -> None:
        """Let an AWS service publish on behalf of this account only: ``sns:Publish`` in the topic
        policy and the data key actions SNS needs from a publisher in the key policy, both limited
        by ``aws:SourceAccount`` (the confused-deputy guard the services document)."""
        principal = iam.ServicePrincipal(service)
        this_account = {"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=this_account,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=this_account,
            )
        )

    @property
    def topic_policy(self) -> sns.TopicPolicy:
        """The topic's access policy resource (created by ``enforce_ssl``), for DependsOn."""
        policy = self.topic.node.find_child("Policy")
        assert isinstance(policy, sns.TopicPolicy)
        return policy

    def publish_statements(self, sid_prefix: str) -> list[iam.PolicyStatement]:
        """What a function's role needs to publish here: the topic, and the key that encrypts it."""
        return [
            iam.PolicyStatement(
                sid=f"{sid_prefix}Publish",
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            ),
            # SNS encrypts each message with a data key from this CMK on the publisher's behalf.
            iam.PolicyStatement(
                sid=f"{sid_prefix}Encrypt",
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=[self.key.key_arn],
            ),
        ]
