"""The tooling account's half of reading the payer's costs (``payerAccountId``): the cost functions
assume the payer's read role instead of calling Cost Explorer themselves, and the default event bus
takes the payer's anomaly events.

Trust is exact without naming roles CloudFormation names: each function that reads cost data gets the
IAM path ``/finops-guard/<stage>/payer-reader/`` (its role ARN is ``...:role/finops-guard/<stage>/
payer-reader/<generated name>``), and the payer role trusts only roles of the tooling account on that
path (``aws:PrincipalArn``), with the external id. Generated names keep a stage deployable in two
regions (IAM names are global); the path changes only the roles of these functions, and only when
``payerAccountId`` is set.

With the payer role, a function's own role holds no Cost Explorer or Cost Optimization Hub action:
every such call is signed by the payer role (finops_guard.costs.adapters.payer_account), so the only
cost-data permission left in the tooling account is sts:AssumeRole on that one role.

The payer's ``FinOpsGuard-<stage>-PayerAccess`` stack (infra/payer/stack.py) forwards Cost Anomaly
Detection's "Anomaly Detected" events from the payer's us-east-1 default bus to this account's default
bus in the stack's region, where the anomaly rule (infra/costs/anomalies.py) already sends every
``aws.ce`` "Anomaly Detected" event to the inbox. The bus policy admits exactly that one forwarding
rule of the payer account.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct
from finops_guard.costs.adapters.payer_account import EXTERNAL_ID_VARIABLE, ROLE_ARN_VARIABLE

from infra.config import FinOpsGuardConfig
from infra.core.monitored_function import MonitoredFunction

# Cost Anomaly Detection's events arrive on the default bus of its home region only.
ANOMALY_EVENTS_REGION = "us-east-1"
DEFAULT_BUS = "default"


def reads_payer_costs(config: FinOpsGuardConfig) -> bool:
    return config.payer_account_id is not None


def payer_role_arn(config: FinOpsGuardConfig, partition: str) -> str:
    assert config.payer_account_id is not None
    return f"arn:{partition}:iam::{config.payer_account_id}:role/{config.payer_role_name}"


def forwarding_rule_name(stage: str) -> str:
    """The payer's rule that forwards anomaly events: the one sender the tooling bus admits."""
    return f"finops-guard-{stage}-payer-anomalies"


def forwarding_rule_arn(config: FinOpsGuardConfig, partition: str) -> str:
    assert config.payer_account_id is not None
    return (
        f"arn:{partition}:events:{ANOMALY_EVENTS_REGION}:{config.payer_account_id}:rule/"
        f"{forwarding_rule_name(config.stage)}"
    )


def assume_payer_role(reader: MonitoredFunction, config: FinOpsGuardConfig) -> None:
    """Let ``reader`` read cost data through the payer role, and only through it: its role moves to the
    payer-reader path the payer role trusts, may assume exactly that role, and the function learns the
    role and external id from its environment."""
    stack = Stack.of(reader)
    role_arn = payer_role_arn(config, stack.partition)
    cfn_role = reader.role.node.default_child
    assert isinstance(cfn_role, iam.CfnRole)
    cfn_role.path = config.payer_reader_path
    reader.add_to_role_policy(
        iam.PolicyStatement(sid="AssumePayerReadRole", actions=["sts:AssumeRole"], resources=[role_arn])
    )
    assert config.payer_role_external_id is not None
    reader.function.add_environment(ROLE_ARN_VARIABLE, role_arn)
    reader.function.add_environment(EXTERNAL_ID_VARIABLE, config.payer_role_external_id)


def allow_payer_anomaly_events(scope: Construct, config: FinOpsGuardConfig) -> events.CfnEventBusPolicy:
    """The default bus's statement that admits the payer's forwarded anomaly events: events:PutEvents by
    the payer account, only for events its forwarding rule sends (``aws:SourceArn``)."""
    stack = Stack.of(scope)
    assert config.payer_account_id is not None
    statement = iam.PolicyStatement(
        principals=[iam.AccountPrincipal(config.payer_account_id)],
        actions=["events:PutEvents"],
        resources=[stack.format_arn(service="events", resource="event-bus", resource_name=DEFAULT_BUS)],
        conditions={"ArnEquals": {"aws:SourceArn": forwarding_rule_arn(config, stack.partition)}},
    )
    return events.CfnEventBusPolicy(
        scope,
        "PayerAnomalyEventsPolicy",
        event_bus_name=DEFAULT_BUS,
        statement_id=f"finops-guard-{config.stage}-payer-anomalies",
        statement=statement.to_statement_json(),
    )
