"""``FinOpsGuard-<stage>-PayerAccess``: what the payer (management) account gives a tooling account's
FinOps Guard, and nothing else. Deployed with ``-c payerAccess=true`` into the payer account, us-east-1
(Cost Anomaly Detection's home region), after the tooling account's stacks (README, Deploy).

- The role ``finops-guard-<stage>-payer-read``: the read actions the cost functions make against Cost
  Explorer, Cost Optimization Hub and Savings Plans, nothing more. It trusts only roles of the tooling
  account on the cost functions' path ``/finops-guard/<stage>/payer-reader/`` (infra/costs/payer_reads.py),
  presenting the external id, with a session named ``finops-guard-<stage>-*``; sessions last an hour.
- The rule ``finops-guard-<stage>-payer-anomalies``: Cost Anomaly Detection's "Anomaly Detected" events
  on the payer's default bus go to the tooling account's default bus (a cross-account target, sent with a
  role that may put events on that one bus), where the tooling's anomaly rule sends them to its inbox.
- With ``payerAnomalyMonitorArns``: an IMMEDIATE alert subscription on those monitors of the payer.
  Cost Anomaly Detection sends an "Anomaly Detected" event for the anomalies an IMMEDIATE subscription
  alerts on, and such a subscription needs an SNS topic (created here; nothing reads it, the events do
  the carrying). Without it, the payer's own IMMEDIATE subscriptions produce the events.

Everything here is free when idle (a role, a rule, a topic); each forwarded event is a cross-account
event, $1.00 per million.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnOutput, Duration, Environment, Stack, Validations
from aws_cdk import aws_ce as ce
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from constructs import Construct
from finops_guard.costs.adapters.payer_account import SESSION_SECONDS

from infra.config import FinOpsGuardConfig
from infra.core.alerts import AlertTopic
from infra.costs.anomalies import ANOMALY_EVENT_PATTERN, threshold_expression
from infra.costs.cost_reports import SAVINGS_PLANS_KPI_ACTIONS, TAG_STATUS_ACTION
from infra.costs.payer_reads import ANOMALY_EVENTS_REGION, DEFAULT_BUS, forwarding_rule_name
from infra.costs.savings import COST_OPTIMIZATION_HUB_ACTIONS

# Every read a cost function makes on the payer's cost data (the adapters' calls), whichever features
# are on: GetCostAndUsage (every report, budget guard, chargeback, savings ROI), the Savings Plans KPI,
# the tag activation check, the savings refresh's Cost Optimization Hub listing. Kept whole rather than
# following the tooling stack's feature switches: switching savingsPlansKpi on must not need a second
# deploy in another account, and each of them reads cost data GetCostAndUsage already shows.
PAYER_READ_ACTIONS = (
    "ce:GetCostAndUsage",
    *SAVINGS_PLANS_KPI_ACTIONS,
    TAG_STATUS_ACTION,
    *COST_OPTIMIZATION_HUB_ACTIONS,
)
# What the functions ask for (finops_guard.costs.adapters.payer_account): an hour, renewed before it ends.
SESSION_DURATION = Duration.seconds(SESSION_SECONDS)


class PayerAccessStack(Stack):
    """Exposes ``read_role``, ``forward_role``, ``forward_rule`` and, with payerAnomalyMonitorArns,
    ``anomaly_topic`` and ``subscription`` (else None)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig) -> None:
        assert config.payer_account_id and config.tooling_account_id and config.tooling_region
        super().__init__(
            scope,
            construct_id,
            # Pinned: a deploy with another account's credentials fails instead of creating the role there.
            env=Environment(account=config.payer_account_id, region=ANOMALY_EVENTS_REGION),
            description=(
                f"FinOps Guard ({config.stage}) payer access: lets the cost functions of account "
                f"{config.tooling_account_id} read this account's costs, and forwards its cost anomaly events there"
            ),
        )
        self.config = config
        self.read_role = self._add_read_role()
        self.forward_role, self.forward_rule = self._add_anomaly_forwarding()
        self.anomaly_topic: AlertTopic | None = None
        self.subscription: ce.CfnAnomalySubscription | None = None
        if config.payer_anomaly_monitor_arns:
            self.anomaly_topic, self.subscription = self._add_subscription()
        CfnOutput(self, "PayerReadRoleArn", value=self.read_role.role_arn)
        CfnOutput(self, "AnomalyForwardingRuleArn", value=self.forward_rule.rule_arn)

    @property
    def tooling_readers(self) -> str:
        """The ARN pattern of the roles the read role trusts: the tooling account's payer-reader path."""
        config = self.config
        return f"arn:{self.partition}:iam::{config.tooling_account_id}:role{config.payer_reader_path}*"

    @property
    def tooling_bus_arn(self) -> str:
        config = self.config
        return (
            f"arn:{self.partition}:events:{config.tooling_region}:{config.tooling_account_id}:event-bus/{DEFAULT_BUS}"
        )

    def _add_read_role(self) -> iam.Role:
        config = self.config
        assert config.tooling_account_id and config.payer_role_external_id
        trusted = iam.AccountPrincipal(config.tooling_account_id).with_conditions(
            {
                "StringEquals": {"sts:ExternalId": config.payer_role_external_id},
                "ArnLike": {"aws:PrincipalArn": self.tooling_readers},
                "StringLike": {"sts:RoleSessionName": f"finops-guard-{config.stage}-*"},
            }
        )
        role = iam.Role(
            self,
            "PayerReadRole",
            role_name=config.payer_role_name,
            description=(
                f"FinOps Guard {config.stage}: the cost functions of account {config.tooling_account_id} read "
                "this account's costs (Cost Explorer, Savings Plans, Cost Optimization Hub), read-only"
            ),
            assumed_by=trusted,
            max_session_duration=SESSION_DURATION,
            inline_policies={
                "ReadCosts": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadCostData",
                            actions=list(PAYER_READ_ACTIONS),
                            resources=["*"],  # none of these actions accepts a resource ARN
                        )
                    ]
                )
            },
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    f"Resource '*' is used only by {', '.join(PAYER_READ_ACTIONS)}: read-only Cost Explorer and "
                    "Cost Optimization Hub actions that define no resource types, so they accept no ARNs. They are "
                    "exactly the reads FinOps Guard's cost functions make, and only the tooling account's cost "
                    "function roles may assume this role, with the external id."
                ),
            )
        )
        return role

    def _add_anomaly_forwarding(self) -> tuple[iam.Role, events.Rule]:
        config = self.config
        role = iam.Role(
            self,
            "ForwardAnomaliesRole",
            description=(
                f"FinOps Guard {config.stage}: EventBridge puts this account's cost anomaly events on the default "
                f"bus of account {config.tooling_account_id}"
            ),
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
        )
        # The target grants the role events:PutEvents on exactly that bus, and nothing else.
        tooling_bus = events.EventBus.from_event_bus_arn(self, "ToolingDefaultBus", self.tooling_bus_arn)
        rule = events.Rule(
            self,
            "ForwardAnomaliesRule",
            rule_name=forwarding_rule_name(config.stage),
            description=(
                "Sends AWS Cost Anomaly Detection 'Anomaly Detected' events to the FinOps Guard tooling account's "
                "default bus, whose rule puts them in the anomaly inbox"
            ),
            event_pattern=ANOMALY_EVENT_PATTERN,
            targets=[events_targets.EventBus(tooling_bus, role=role)],
        )
        return role, rule

    def _add_subscription(self) -> tuple[AlertTopic, ce.CfnAnomalySubscription]:
        config = self.config
        topic = AlertTopic(
            self,
            "PayerAnomalies",
            stage=config.stage,
            name="payer-anomalies",
            display_name=f"FinOps Guard {config.stage} payer cost anomalies",
            purpose="payer's cost anomaly",
            email=None,
            encryption="none",  # Cost Anomaly Detection publishes: it would need a customer-managed key
        )
        topic.allow_service_to_publish("costalerts.amazonaws.com", sid="AllowCostAnomalyDetectionToPublish")
        subscription = ce.CfnAnomalySubscription(
            self,
            "PayerImmediateSubscription",
            subscription_name=f"finops-guard-{config.stage}-payer-immediate",
            frequency="IMMEDIATE",
            monitor_arn_list=list(config.payer_anomaly_monitor_arns),
            subscribers=[ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=topic.topic.topic_arn)],
            threshold_expression=json.dumps(
                threshold_expression(
                    config.anomaly_threshold_absolute,
                    config.anomaly_threshold_percent,
                    config.anomaly_threshold_match,
                )
            ),
        )
        subscription.node.add_dependency(topic.topic_policy)
        return topic, subscription
