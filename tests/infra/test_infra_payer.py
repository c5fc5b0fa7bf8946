"""Reading the payer's costs from a tooling account: the payer's FinOpsGuard-<stage>-PayerAccess stack
(the read role, its trust, the anomaly forwarding) and the tooling side (the cost functions' grants, the
default bus policy), each policy exact, and the cross-account paths evaluated as AWS does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from conftest import (
    PAYER_ACCOUNT,
    PAYER_EXTERNAL_ID,
    PAYER_MONITOR,
    TOOLING_ACCOUNT,
    TOOLING_REGION,
    StackSynth,
    Synth,
    arn_of,
    cdk_json_context,
    function_of,
    policy_statements_of_role,
    ref,
    role_id_of,
)
from policy_eval import ACCOUNT, OTHER_ACCOUNT, REGION, Decision, PolicyEvaluator, Request, Template, role, service
from test_infra_compliance import acknowledgments

from infra.costs.anomalies import ANOMALY_EVENT_PATTERN
from infra.payer.stack import PAYER_READ_ACTIONS
from infra.stacks import create_stacks

pytestmark = pytest.mark.infra

# The cost functions that read cost data, each of which assumes the payer role; anomaly alerts reads none.
COST_READERS = ("weekly-report", "budget-guard", "chargeback", "savings-refresh")
READ_ROLE_NAME = "finops-guard-qa-payer-read"
READ_ROLE_ARN = f"arn:aws:iam::{PAYER_ACCOUNT}:role/{READ_ROLE_NAME}"
READER_PATH = "/finops-guard/qa/payer-reader/"
FORWARDING_RULE_ARN = f"arn:aws:events:us-east-1:{PAYER_ACCOUNT}:rule/finops-guard-qa-payer-anomalies"
TOOLING_BUS_ARN = f"arn:aws:events:{TOOLING_REGION}:{TOOLING_ACCOUNT}:event-bus/default"
PARTITION_JOIN = {"Ref": "AWS::Partition"}


def test_policy_eval_accounts_are_the_payer_and_the_tooling_account() -> None:
    assert (ACCOUNT, OTHER_ACCOUNT, REGION) == (TOOLING_ACCOUNT, PAYER_ACCOUNT, TOOLING_REGION)


def payer(synth: Synth) -> StackSynth:
    assert synth.payer is not None
    return synth.payer


def only(part: StackSynth, resource_type: str, **properties: Any) -> tuple[str, dict[str, Any]]:
    found = [
        (lid, resource)
        for lid, resource in part.resources(resource_type).items()
        if all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(found) == 1, (resource_type, properties, [lid for lid, _ in found])
    return found[0]


def read_role(synth: Synth) -> tuple[str, dict[str, Any]]:
    return only(payer(synth), "AWS::IAM::Role", RoleName=READ_ROLE_NAME)


def forward_rule(synth: Synth) -> tuple[str, dict[str, Any]]:
    return payer(synth).only("AWS::Events::Rule")


def forward_role_id(synth: Synth) -> str:
    [target] = forward_rule(synth)[1]["Properties"]["Targets"]
    return str(target["RoleArn"]["Fn::GetAtt"][0])


def tooling_policies(synth: Synth) -> PolicyEvaluator:
    return PolicyEvaluator(Template(synth.template_json, account=TOOLING_ACCOUNT, region=TOOLING_REGION))


def payer_policies(synth: Synth) -> PolicyEvaluator:
    return PolicyEvaluator(Template(payer(synth).template_json, account=PAYER_ACCOUNT, region="us-east-1"))


# --- which stacks, where ------------------------------------------------------------------------


def test_the_payer_stack_is_made_only_when_asked(default_synth: Synth, full_synth: Synth, payer_synth: Synth) -> None:
    assert default_synth.stacks.payer_access is None and full_synth.stacks.payer_access is None
    assert [stack.stack_name for stack in payer_synth.stacks.all] == [
        "FinOpsGuard-qa-Core",
        "FinOpsGuard-qa-Costs",
        "FinOpsGuard-qa-Billing",
        "FinOpsGuard-qa-PayerAccess",
    ]


def test_reading_the_payer_without_payer_access_makes_no_payer_stack() -> None:
    context = {**cdk_json_context(), "payerAccountId": PAYER_ACCOUNT, "payerRoleExternalId": PAYER_EXTERNAL_ID}

    stacks = create_stacks(App(context={**context, "aws:cdk:bundling-stacks": []}))

    assert stacks.payer_access is None and len(stacks.all) == 3


def test_the_payer_stack_is_pinned_to_the_payer_account_in_us_east_1(payer_synth: Synth) -> None:
    stack = payer(payer_synth).stack

    assert (stack.account, stack.region) == (PAYER_ACCOUNT, "us-east-1")
    assert stack.dependencies == [] and payer_synth.stacks.costs.dependencies == [payer_synth.stacks.core]


# --- the read role --------------------------------------------------------------------------------


def test_the_read_role_trusts_only_the_tooling_cost_functions_with_the_external_id(payer_synth: Synth) -> None:
    _, resource = read_role(payer_synth)

    assert resource["Properties"]["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{TOOLING_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"sts:ExternalId": PAYER_EXTERNAL_ID},
                    "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{TOOLING_ACCOUNT}:role{READER_PATH}*"},
                    "StringLike": {"sts:RoleSessionName": "finops-guard-qa-*"},
                },
            }
        ],
    }


def test_the_read_role_allows_exactly_the_cost_reads_for_an_hour_at_most(payer_synth: Synth) -> None:
    _, resource = read_role(payer_synth)
    properties = resource["Properties"]

    assert properties["Policies"] == [
        {
            "PolicyName": "ReadCosts",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadCostData",
                        "Effect": "Allow",
                        "Action": [
                            "ce:GetCostAndUsage",
                            "ce:GetSavingsPlansCoverage",
                            "ce:GetSavingsPlansUtilization",
                            "ce:ListCostAllocationTags",
                            "cost-optimization-hub:GetRecommendation",
                            "cost-optimization-hub:ListRecommendations",
                        ],
                        "Resource": "*",
                    }
                ],
            },
        }
    ]
    assert properties["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in properties and "PermissionsBoundary" not in properties
    # The role's only policy is inline: no AWS::IAM::Policy names it.
    role_id = read_role(payer_synth)[0]
    attached = [p for p in payer(payer_synth).resources("AWS::IAM::Policy").values()]
    assert [p for p in attached if ref(role_id) in p["Properties"]["Roles"]] == []


def cost_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {
        action
        for statement in statements
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if action.startswith(("ce:", "cost-optimization-hub:"))
    }


def test_the_read_role_holds_what_the_functions_hold_when_they_read_their_own_account(full_synth: Synth) -> None:
    """Every cost read granted to a function in a deployment without a payer (every feature on), and
    nothing else: a new Cost Explorer call granted to a function must be granted to the payer role too."""
    granted = set().union(
        *(cost_actions(policy_statements_of_role(full_synth, role_id_of(full_synth, fn))) for fn in COST_READERS)
    )

    assert granted == set(PAYER_READ_ACTIONS)
    # No other function reads cost data (the costs setup's anomaly monitor actions, at deploy time, act on the
    # tooling account's own monitor).
    others = [
        role_id
        for lid, function in full_synth.resources("AWS::Lambda::Function").items()
        if (role_id := function["Properties"]["Role"]["Fn::GetAtt"][0])
        not in {role_id_of(full_synth, fn) for fn in COST_READERS}
        and any(ref(role_id) in p["Properties"]["Roles"] for p in full_synth.resources("AWS::IAM::Policy").values())
    ]
    held = {role_id: cost_actions(policy_statements_of_role(full_synth, role_id)) for role_id in others}
    assert {role_id: actions & set(PAYER_READ_ACTIONS) for role_id, actions in held.items() if actions} == {
        role_id_of(full_synth, "costs-setup"): set()
    }


# --- the tooling side -----------------------------------------------------------------------------


@pytest.mark.parametrize("function", COST_READERS)
def test_each_cost_function_assumes_the_payer_role_and_calls_no_cost_service_itself(
    payer_synth: Synth, function: str
) -> None:
    role_id = role_id_of(payer_synth, function)
    statements = policy_statements_of_role(payer_synth, role_id)
    _, properties = function_of(payer_synth, function)

    assert payer_synth.template_json["Resources"][role_id]["Properties"]["Path"] == READER_PATH
    assert [s for s in statements if "sts:AssumeRole" in json.dumps(s["Action"])] == [
        {
            "Sid": "AssumePayerReadRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": {"Fn::Join": ["", ["arn:", PARTITION_JOIN, f":iam::{PAYER_ACCOUNT}:role/{READ_ROLE_NAME}"]]},
        }
    ]
    assert cost_actions(statements) == set()
    assert [s for s in statements if s["Resource"] == "*"] == []
    variables = properties["Environment"]["Variables"]
    assert variables["FINOPSGUARD_PAYER_ROLE_ARN"] == {
        "Fn::Join": ["", ["arn:", PARTITION_JOIN, f":iam::{PAYER_ACCOUNT}:role/{READ_ROLE_NAME}"]]
    }
    assert variables["FINOPSGUARD_PAYER_EXTERNAL_ID"] == PAYER_EXTERNAL_ID


def test_no_other_role_is_on_the_reader_path_or_may_assume_a_role(payer_synth: Synth, full_synth: Synth) -> None:
    readers = {role_id_of(payer_synth, fn) for fn in COST_READERS}
    for lid, resource in payer_synth.resources("AWS::IAM::Role").items():
        if lid not in readers:
            assert "Path" not in resource["Properties"], lid
    assume = [
        lid
        for lid, policy in payer_synth.resources("AWS::IAM::Policy").items()
        if "sts:AssumeRole" in json.dumps(policy["Properties"]["PolicyDocument"])
    ]
    assert len(assume) == len(COST_READERS)
    # Without a payer nothing changes: no path, no AssumeRole, no payer variables.
    assert all("Path" not in r["Properties"] for r in full_synth.resources("AWS::IAM::Role").values())
    assert "FINOPSGUARD_PAYER" not in json.dumps(full_synth.template_json)


def test_the_default_bus_admits_only_the_payers_forwarding_rule(payer_synth: Synth) -> None:
    _, policy = payer_synth.costs.only("AWS::Events::EventBusPolicy")

    assert policy["Properties"] == {
        "EventBusName": "default",
        "StatementId": "finops-guard-qa-payer-anomalies",
        "Statement": {
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Join": ["", ["arn:", PARTITION_JOIN, f":iam::{PAYER_ACCOUNT}:root"]]}},
            "Action": "events:PutEvents",
            "Resource": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        PARTITION_JOIN,
                        ":events:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":event-bus/default",
                    ],
                ]
            },
            "Condition": {
                "ArnEquals": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                PARTITION_JOIN,
                                FORWARDING_RULE_ARN.removeprefix("arn:aws"),
                            ],
                        ]
                    }
                }
            },
        },
    }


def test_no_bus_policy_without_a_payer(default_synth: Synth, full_synth: Synth) -> None:
    assert default_synth.resources("AWS::Events::EventBusPolicy") == {}
    assert full_synth.resources("AWS::Events::EventBusPolicy") == {}


# --- anomaly forwarding in the payer ----------------------------------------------------------------


def test_the_payer_forwards_the_anomaly_events_the_tooling_rule_takes(payer_synth: Synth) -> None:
    _, rule = forward_rule(payer_synth)
    [(_, tooling_rule)] = [
        (lid, r)
        for lid, r in payer_synth.costs.resources("AWS::Events::Rule").items()
        if r["Properties"]["Name"] == "finops-guard-qa-anomaly-detected"
    ]

    assert rule["Properties"]["Name"] == "finops-guard-qa-payer-anomalies"
    assert "EventBusName" not in rule["Properties"]  # the payer's default bus, where the service puts them
    assert rule["Properties"]["EventPattern"] == {"source": ["aws.ce"], "detail-type": ["Anomaly Detected"]}
    assert rule["Properties"]["EventPattern"] == tooling_rule["Properties"]["EventPattern"]
    assert ANOMALY_EVENT_PATTERN.account is None  # the tooling rule takes every account's events on its bus
    assert rule["Properties"]["Targets"] == [
        {"Arn": TOOLING_BUS_ARN, "Id": "Target0", "RoleArn": arn_of(forward_role_id(payer_synth))}
    ]


def test_the_forwarding_role_may_only_put_events_on_the_tooling_bus(payer_synth: Synth) -> None:
    role_id = forward_role_id(payer_synth)
    properties = payer(payer_synth).template_json["Resources"][role_id]["Properties"]
    [policy] = [
        p for p in payer(payer_synth).resources("AWS::IAM::Policy").values() if ref(role_id) in p["Properties"]["Roles"]
    ]

    assert properties["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": PAYER_ACCOUNT}},
        }
    ]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": TOOLING_BUS_ARN}
    ]


def test_the_payer_subscribes_its_monitors_immediately_with_the_stage_thresholds(payer_synth: Synth) -> None:
    _, subscription = payer(payer_synth).only("AWS::CE::AnomalySubscription")
    topic_id, _ = payer(payer_synth).only("AWS::SNS::Topic")
    properties = subscription["Properties"]

    assert properties["SubscriptionName"] == "finops-guard-qa-payer-immediate"
    assert (properties["Frequency"], properties["MonitorArnList"]) == ("IMMEDIATE", [PAYER_MONITOR])
    assert properties["Subscribers"] == [{"Type": "SNS", "Address": ref(topic_id)}]
    # FULL_CONTEXT: both thresholds, "all" of them.
    assert json.loads(properties["ThresholdExpression"])["And"][0]["Dimensions"]["Values"] == ["250"]
    assert subscription["DependsOn"] == [payer(payer_synth).only("AWS::SNS::TopicPolicy")[0]]


def test_without_payer_monitors_the_payer_stack_has_no_subscription_or_topic() -> None:
    from conftest import PAYER_CONTEXT

    context = {**cdk_json_context(), **PAYER_CONTEXT, "payerAnomalyMonitorArns": "[]"}
    stacks = create_stacks(App(context={**context, "aws:cdk:bundling-stacks": []}))

    assert stacks.payer_access is not None
    assert stacks.payer_access.subscription is None and stacks.payer_access.anomaly_topic is None


# --- the cross-account paths, evaluated -----------------------------------------------------------


def assume(synth: Synth, principal_arn: str, context: dict[str, Any], caller: PolicyEvaluator | None = None) -> Any:
    payer_side = payer_policies(synth)
    request = Request(role(principal_arn), "sts:AssumeRole", payer_side.arn(read_role(synth)[0]), context)
    return payer_side.evaluate_cross_account(request, caller or tooling_policies(synth))


def session(function: str, external_id: str = PAYER_EXTERNAL_ID) -> dict[str, Any]:
    return {"sts:ExternalId": external_id, "sts:RoleSessionName": f"finops-guard-qa-{function}"}


@pytest.mark.parametrize("function", COST_READERS)
def test_each_cost_function_may_assume_the_read_role_with_the_external_id_only(
    payer_synth: Synth, function: str
) -> None:
    tooling = tooling_policies(payer_synth)
    reader = tooling.arn(role_id_of(payer_synth, function))

    assert reader.startswith(f"arn:aws:iam::{TOOLING_ACCOUNT}:role{READER_PATH}")
    assert payer_policies(payer_synth).arn(read_role(payer_synth)[0]) == READ_ROLE_ARN
    assert assume(payer_synth, reader, session(function))
    assert not assume(payer_synth, reader, session(function, external_id="0" * 32))
    assert not assume(payer_synth, reader, {"sts:RoleSessionName": f"finops-guard-qa-{function}"})
    assert not assume(payer_synth, reader, session(function) | {"sts:RoleSessionName": "operator"})


def test_a_tooling_role_off_the_reader_path_may_not_assume_the_read_role(payer_synth: Synth) -> None:
    tooling = tooling_policies(payer_synth)
    anomaly_alerts = tooling.arn(role_id_of(payer_synth, "anomaly-alerts"))

    outcome = assume(payer_synth, anomaly_alerts, session("anomaly-alerts"))

    assert outcome.decision is Decision.IMPLICIT_DENY and "identity: none; resource: none" in outcome.reason


def test_the_trust_alone_is_not_enough_the_function_needs_its_own_grant(payer_synth: Synth) -> None:
    """Across accounts both sides must allow: without its AssumePayerReadRole statement a reader is refused."""
    template = json.loads(json.dumps(payer_synth.template_json))
    role_id = role_id_of(payer_synth, "weekly-report")
    for policy in template["Resources"].values():
        if policy["Type"] == "AWS::IAM::Policy" and ref(role_id) in policy["Properties"]["Roles"]:
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            policy["Properties"]["PolicyDocument"]["Statement"] = [
                s for s in statements if s.get("Sid") != "AssumePayerReadRole"
            ]
    caller = PolicyEvaluator(Template(template, account=TOOLING_ACCOUNT, region=TOOLING_REGION))

    outcome = assume(payer_synth, caller.arn(role_id), session("weekly-report"), caller)

    assert outcome.decision is Decision.IMPLICIT_DENY and "identity: none" in outcome.reason


def test_the_payers_anomaly_events_reach_the_tooling_inbox(payer_synth: Synth) -> None:
    """EventBridge assumes the forwarding role in the payer, which puts the event on the tooling bus (the
    bus policy admits the forwarding rule only), where the anomaly rule sends it to the inbox."""
    payer_side, tooling = payer_policies(payer_synth), tooling_policies(payer_synth)
    forward_role = payer_side.arn(forward_role_id(payer_synth))
    forwarded = {"aws:SourceArn": FORWARDING_RULE_ARN, "aws:SourceAccount": PAYER_ACCOUNT}

    assert payer_side.arn(forward_rule(payer_synth)[0]) == FORWARDING_RULE_ARN
    assert payer_side.is_allowed(service("events.amazonaws.com"), "sts:AssumeRole", forward_role, forwarded)
    assert not payer_side.is_allowed(
        service("events.amazonaws.com"), "sts:AssumeRole", forward_role, {"aws:SourceAccount": TOOLING_ACCOUNT}
    )

    def put(bus: str, context: dict[str, Any]) -> Any:
        return tooling.evaluate_cross_account(Request(role(forward_role), "events:PutEvents", bus, context), payer_side)

    assert put(TOOLING_BUS_ARN, forwarded)
    other_rule = FORWARDING_RULE_ARN.replace("payer-anomalies", "anything-else")
    assert not put(TOOLING_BUS_ARN, forwarded | {"aws:SourceArn": other_rule})
    assert not put(TOOLING_BUS_ARN.replace(TOOLING_REGION, "us-west-2"), forwarded)  # no rule there

    inbox_id = only(payer_synth.costs, "AWS::SQS::Queue", QueueName="finops-guard-qa-anomaly-inbox")[0]
    tooling_rule = only(payer_synth.costs, "AWS::Events::Rule", Name="finops-guard-qa-anomaly-detected")[0]
    assert tooling.is_allowed(
        service("events.amazonaws.com"),
        "sqs:SendMessage",
        tooling.arn(inbox_id),
        {"aws:SourceArn": tooling.arn(tooling_rule), "aws:SecureTransport": True},
    )


def test_a_forwarded_event_matches_the_tooling_rule() -> None:
    """The forwarded event keeps its source, detail-type and the payer as its account."""
    from conftest import REPO_ROOT

    event = json.loads((REPO_ROOT / "events" / "anomaly_eventbridge.json").read_text()) | {"account": PAYER_ACCOUNT}
    pattern = {"source": ["aws.ce"], "detail-type": ["Anomaly Detected"]}

    assert all(event[key] in values for key, values in pattern.items())


# --- compliance --------------------------------------------------------------------------------------


def test_cdk_nag_reports_nothing_unacknowledged_with_a_payer(payer_synth: Synth) -> None:
    report = AwsSolutionsChecks().validate_scope(payer_synth.app)

    findings = [
        f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert findings == [] and report.success
    assert json.loads((payer_synth.outdir / "validation-report.json").read_text())["pluginReports"] == []


def test_the_payer_stack_acknowledges_only_the_read_roles_wildcard_and_the_unencrypted_topic(
    payer_synth: Synth,
) -> None:
    found = {key: reason for key, reason in acknowledgments(payer_synth).items() if key[0] == "PayerAccess"}

    assert set(found) == {
        ("PayerAccess", "PayerReadRole", "AwsSolutions-IAM5[Resource::*]"),
        ("PayerAccess", "PayerAnomalies/Topic", "AwsSolutions-SNS2"),
    }
    reason = found[("PayerAccess", "PayerReadRole", "AwsSolutions-IAM5[Resource::*]")]
    assert [action for action in PAYER_READ_ACTIONS if action not in reason] == []
    # No '*' is left on a cost function, so none of them acknowledges one (the deploy-time setup still does).
    tooling = {key[1] for key in acknowledgments(payer_synth) if key[0] == "Costs" and "IAM5[Resource::*]" in key[2]}
    assert tooling == {"CostsSetup/Role/DefaultPolicy"}


@pytest.mark.parametrize("stack", ["payer", "costs"])
def test_cfn_lint_finds_no_errors_or_warnings_with_a_payer(payer_synth: Synth, stack: str) -> None:
    part: StackSynth | None = getattr(payer_synth, stack)
    assert part is not None

    matches = lint(json.dumps(part.template_json), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))

    problems = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def test_the_payer_stack_costs_nothing_a_month_by_the_benchs_count(payer_synth: Synth) -> None:
    from devtools.selfcost.template import StackFixed

    fixed = StackFixed.from_template("PayerAccess", payer(payer_synth).template_json)

    assert fixed.items() == "none" and fixed.bill.usd == 0
