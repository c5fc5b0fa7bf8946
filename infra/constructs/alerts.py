"""Where alerts go: an SNS topic encrypted with its own rotating key, optionally mailed to people and
posted to paging services."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


def alarm_name_pattern(stage: str) -> str:
    """Every alarm of the stack is named ``FinOpsGuard-<stage>-...``: the only alarms that may page."""
    return f"FinOpsGuard-{stage}-*"


class AlertTopic(Construct):
    """Topic ``finops-guard-<stage>-<name>`` and its key ``alias/finops-guard-<stage>-<name>``.

    Exposes ``topic`` and ``key``; ``email`` and each of ``https_endpoints`` become subscriptions.
    The topic policy (``enforce_ssl`` creates it) replaces SNS's default one, so who may publish is:
    - publishers in this account (function roles) need ``sns:Publish`` on the topic and
      ``kms:GenerateDataKey*``/``kms:Decrypt`` on the key in their own policy (``publish_statements``):
      the key policy's default account statement delegates key access to IAM;
    - AWS services are not IAM principals of the account: ``allow_cloudwatch_alarms`` lets this stage's
      alarms publish, ``allow_service_to_publish`` another service, each with a topic and a key statement.
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
        self.key = self._add_key(f"finops-guard-{stage}-{name}", purpose)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"finops-guard-{stage}-{name}",
            display_name=display_name,
            master_key=self.key,
            enforce_ssl=True,
        )
        if allow_cloudwatch_alarms:
            self._allow_cloudwatch_alarms(stage)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # SNS decrypts before it posts; the endpoint (a paging service) confirms the subscription itself.
        for url in https_endpoints:
            self.topic.add_subscription(subscriptions.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))

    def _add_key(self, name: str, purpose: str) -> kms.Key:
        return kms.Key(
            self,
            "TopicKey",
            alias=f"alias/{name}",
            description=f"Encrypts the FinOps Guard {purpose} topic",
            enable_key_rotation=True,
            # The key only encrypts messages in flight (SNS keeps none), so it goes with the stack after a
            # 30-day pending window: a retained key of a deleted topic would bill $1 a month for nothing.
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _allow_cloudwatch_alarms(self, stage: str) -> None:
        # Alarms publish as cloudwatch.amazonaws.com, which a topic policy must name (ArnLike on the alarm
        # ARN); the AWS managed alias/aws/sns key cannot grant it the key, hence the customer managed one.
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
        # The key statement names the account only: the topic statement already limits publishing to this
        # stage's alarms, and no AWS page documents aws:SourceArn on CloudWatch's KMS calls for SNS; a
        # condition they fail would drop every page silently (`finops-guard paging-check` proves it holds).
        self._allow_service(
            "cloudwatch.amazonaws.com",
            "AllowCloudWatchAlarmsToPublish",
            this_account | {"ArnLike": {"aws:SourceArn": alarms}},
            key_conditions=this_account,
        )

    def allow_service_to_publish(self, service: str, sid: str) -> None:
        """Let an AWS service publish on behalf of this account only: ``sns:Publish`` in the topic policy
        limited by ``aws:SourceAccount`` (the confused-deputy guard the services document for the topic),
        and the data key actions in the key policy."""
        self._allow_service(service, sid, {"StringEquals": {"aws:SourceAccount": Stack.of(self).account}})

    def _allow_service(
        self,
        service: str,
        sid: str,
        topic_conditions: dict[str, dict[str, str]],
        *,
        key_conditions: dict[str, dict[str, str]] | None = None,
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
        # The key statement SNS documents for services publishing to encrypted topics has no condition:
        # a service's KMS calls are not documented to carry aws:SourceAccount/aws:SourceArn, and a
        # condition they fail would drop every message silently. The topic statement is the guard; only a
        # caller that proves its key conditions after deploy (CloudWatch: paging-check) passes any.
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=key_conditions,
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
