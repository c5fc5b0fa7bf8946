"""A first deploy that fails can be retried, a destroyed stage can be redeployed, and the deploy-time
custom resources hold exactly the permissions their code uses."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import StackSynth, Synth, arn_of, function_of, policy_statements_of_role, ref, role_id_of, synthesize
from finops_guard.core.adapters.deploy_setup import ApiGatewayAccountSettings, CloudWatchMetricSink, CostAnomalyMonitors
from moto import mock_aws
from policy_eval import PolicyEvaluator
from policy_eval import role as role_principal

from devtools.hub_stub import fake_client

pytestmark = pytest.mark.infra

VARIANTS = ["default_synth", "full_synth"]
# Resource types whose fixed names would collide with a leftover of the same stage.
NAMED = {"AWS::DynamoDB::Table": "TableName", "AWS::SecretsManager::Secret": "Name"}


# Tables that hold money or history: DynamoDB deletion protection on. Nobody deletes them, CloudFormation
# neither: the rollback of a failed first create cannot remove them (the stack ends ROLLBACK_FAILED with
# them, empty, kept; the retry deletes the stack and adopts them, like a destroyed stage's: README, Deploy).
PROTECTED_TABLES = {
    "stripe-events", "billing-ledger", "billing-objects", "billing-alerts", "dunning", "invoice-requests",
    "budget-alerts", "anomalies",
}  # fmt: skip
# Configuration written again from its source, a delivery queue, a copy of another service's data.
UNPROTECTED_TABLES = {"budgets", "team-routes", "outbox", "recommendations"}


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_a_failed_first_create_leaves_only_the_protected_tables_behind(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = synth.stack.config.stage

    # Plain Retain keeps resources even when the creating deploy rolls back: every retry then stops on
    # "already exists". RetainExceptOnCreate removes them on a failed create and keeps them otherwise;
    # deletion protection overrides it for the tables it guards.
    kept_on_rollback = {
        lid: r["Type"] for lid, r in synth.template_json["Resources"].items() if r.get("DeletionPolicy") == "Retain"
    }
    protected = {
        r["Properties"]["TableName"].removeprefix(f"finops-guard-{stage}-")
        for r in synth.resources("AWS::DynamoDB::Table").values()
        if r["Properties"]["DeletionProtectionEnabled"] is True
    }
    assert kept_on_rollback == {}
    assert protected == PROTECTED_TABLES


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_every_table_states_whether_it_is_protected(synth_name: str, request: pytest.FixtureRequest) -> None:
    # state_table() takes deletion_protection without a default: a new table is a decision, not an accident.
    synth: Synth = request.getfixturevalue(synth_name)
    stage = synth.stack.config.stage
    tables = [r["Properties"] for r in synth.resources("AWS::DynamoDB::Table").values()]
    stated = {t["TableName"].removeprefix(f"finops-guard-{stage}-"): t["DeletionProtectionEnabled"] for t in tables}

    assert stated == {name: True for name in PROTECTED_TABLES} | {name: False for name in UNPROTECTED_TABLES}


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_named_tables_and_secrets_outlive_the_stack_and_only_protected_tables_outlive_a_failed_create(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    # RetainExceptOnCreate on all of them; which tables a failed create cannot remove: PROTECTED_TABLES.
    synth: Synth = request.getfixturevalue(synth_name)
    named = [
        (r["Properties"][name], r.get("DeletionPolicy"), r.get("UpdateReplacePolicy"))
        for resource_type, name in NAMED.items()
        for r in synth.resources(resource_type).values()
    ]

    assert len(named) >= 16
    assert {(policy, replace) for _, policy, replace in named} == {("RetainExceptOnCreate", "Retain")}


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_no_topic_key_outlives_or_bills_the_stacks(synth_name: str, request: pytest.FixtureRequest) -> None:
    # A customer-managed key bills $1 a month and outlives its topic by 30 days: none in any stack. The
    # finance topic uses the AWS-managed key; the ops and anomaly topics (CloudWatch alarms and Cost
    # Anomaly Detection publish to them) are not encrypted.
    synth: Synth = request.getfixturevalue(synth_name)
    stage = synth.stack.config.stage

    assert [part.resources("AWS::KMS::Key") for part in synth.parts] == [{}, {}, {}]
    topics = {
        t["Properties"]["TopicName"]: t["Properties"].get("KmsMasterKeyId")
        for t in synth.resources("AWS::SNS::Topic").values()
    }
    assert topics == {
        f"finops-guard-{stage}-ops-alarms": None,
        f"finops-guard-{stage}-cost-anomalies": None,
        f"finops-guard-{stage}-finance-alerts": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    ref("AWS::Partition"),
                    ":kms:",
                    ref("AWS::Region"),
                    ":",
                    ref("AWS::AccountId"),
                    ":alias/aws/sns",
                ],
            ]
        },
    }


# --- the deploy-setup function ----------------------------------------------------------------------


def setup_role_statements(synth: Synth, product: str) -> list[dict[str, Any]]:
    return policy_statements_of_role(synth, role_id_of(synth, f"{product}-setup"))


def account_arn(service_path: list[Any]) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", ref("AWS::Partition"), *service_path]]}


def own_logs_and_failures(synth: Synth, product: str) -> dict[str, dict[str, Any]]:
    """What every setup function's role starts with: its own log group, and the failure queue."""
    log_group = function_of(synth, f"{product}-setup")[1]["LoggingConfig"]["LogGroup"]["Ref"]
    return {
        "WriteOwnLogs": {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group),
        },
        "ReportFailedEvents": {
            "Sid": "ReportFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::ImportValue": f"finops-guard-{synth.stack.config.stage}-failure-queue-arn"},
        },
    }


def test_costs_setup_role_holds_exactly_what_its_two_custom_resources_use(full_synth: Synth) -> None:
    statements = {s["Sid"]: s for s in setup_role_statements(full_synth, "costs")}

    assert statements == own_logs_and_failures(full_synth, "costs") | {
        "CreateTaggedServicesMonitor": {
            "Sid": "CreateTaggedServicesMonitor",
            "Effect": "Allow",
            "Action": ["ce:CreateAnomalyMonitor", "ce:TagResource"],
            "Resource": "*",  # CreateAnomalyMonitor has no resource type
            "Condition": {"StringEquals": {"aws:RequestTag/Project": "FinOpsGuard"}},
        },
        "FindOrDeleteServicesMonitor": {
            "Sid": "FindOrDeleteServicesMonitor",
            "Effect": "Allow",
            "Action": ["ce:DeleteAnomalyMonitor", "ce:GetAnomalyMonitors"],
            "Resource": account_arn([":ce::", ref("AWS::AccountId"), ":anomalymonitor/*"]),
        },
        "FindMonitorSubscriptions": {
            "Sid": "FindMonitorSubscriptions",
            "Effect": "Allow",
            "Action": "ce:GetAnomalySubscriptions",
            "Resource": account_arn([":ce::", ref("AWS::AccountId"), ":anomalysubscription/*"]),
        },
        "OpenReportDeadline": {
            "Sid": "OpenReportDeadline",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "FinOpsGuard"}},
        },
    }


def test_billing_setup_role_holds_exactly_what_its_custom_resource_uses(full_synth: Synth) -> None:
    statements = {s["Sid"]: s for s in setup_role_statements(full_synth, "billing")}

    assert statements == own_logs_and_failures(full_synth, "billing") | {
        "ReadAndSetApiGatewayAccount": {
            "Sid": "ReadAndSetApiGatewayAccount",
            "Effect": "Allow",
            "Action": ["apigateway:GET", "apigateway:PATCH"],
            "Resource": account_arn([":apigateway:", ref("AWS::Region"), "::/account"]),
        },
        "CheckCurrentLogsRole": {
            "Sid": "CheckCurrentLogsRole",
            "Effect": "Allow",
            "Action": "iam:GetRole",
            "Resource": account_arn([":iam::", ref("AWS::AccountId"), ":role/*"]),
        },
        "PassOwnLogsRole": {
            "Sid": "PassOwnLogsRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": arn_of(setting_role_id(full_synth)),
            "Condition": {"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}},
        },
    }
    [logs_role] = [
        role
        for role in full_synth.billing.resources("AWS::IAM::Role").values()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "apigateway.amazonaws.com"}
    ]
    assert logs_role is full_synth.billing.template_json["Resources"][setting_role_id(full_synth)]


def test_without_a_services_monitor_the_setup_role_gets_no_cost_explorer_action(
    existing_monitor_synth: Synth,
) -> None:
    actions = {
        action
        for s in setup_role_statements(existing_monitor_synth, "costs")
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }

    assert not {a for a in actions if a.startswith("ce:")}
    assert "cloudwatch:PutMetricData" in actions  # the report deadline's grace stays


@pytest.fixture(scope="module")
def existing_monitor_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("cdk-no-services-monitor"),
        {
            "anomalyServiceMonitor": "false",
            "anomalyMonitorArns": '["arn:aws:ce::123456789012:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef"]',
        },
    )


def _allowed(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


def test_every_call_the_setup_code_makes_is_an_action_its_role_allows(full_synth: Synth) -> None:
    """Moto enforces no IAM: record each operation the adapters issue and map it to its IAM action."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.endpoint_prefix}:{model.name}")

    ce = fake_client("ce")
    ce.meta.events.register("provide-client-params.*.*", lambda params, model, **kw: record(model))
    with Stubber(ce) as stubber, mock_aws():
        stubber.add_response("create_anomaly_monitor", {"MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/x"})
        stubber.add_response("get_anomaly_monitors", {"AnomalyMonitors": []}, {})
        stubber.add_response("get_anomaly_subscriptions", {"AnomalySubscriptions": []})
        stubber.add_response("delete_anomaly_monitor", {})
        monitors = CostAnomalyMonitors(ce)
        arn = monitors.create_services_monitor("finops-guard-qa-services", {"Project": "FinOpsGuard"})
        monitors.services_monitors()
        monitors.subscriptions_using(arn)
        monitors.delete(arn)

        clients = {name: boto3.client(name, region_name="us-east-1") for name in ("apigateway", "iam", "cloudwatch")}
        for client in clients.values():
            client.meta.events.register("provide-client-params.*.*", lambda params, model, **kw: record(model))
        role = clients["iam"].create_role(RoleName="logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        del calls[-1]  # the test's own set-up call is not the code's
        settings = ApiGatewayAccountSettings(clients["apigateway"], clients["iam"], sleep=lambda _: None)
        settings.cloudwatch_role_arn()
        settings.role_exists("logs")
        settings.set_cloudwatch_role(role)
        CloudWatchMetricSink(clients["cloudwatch"]).put_count("FinOpsGuard", "WeeklyReportPosted", {}, 1, _now())
        stubber.assert_no_pending_responses()

    # Each call as IAM authorizes it: API Gateway's actions are HTTP verbs, UpdateAccount also passes the
    # logs role, CreateAnomalyMonitor with ResourceTags also tags, and actions without a resource type
    # are evaluated against "*" (Service Authorization Reference).
    # The costs setup makes the Cost Explorer and CloudWatch calls, the billing setup the API Gateway
    # and IAM ones; each is evaluated against its own stack's template.
    costs = PolicyEvaluator(full_synth.costs.template_json)
    billing = PolicyEvaluator(full_synth.billing.template_json)
    account, region = costs.template.account, costs.template.region
    monitor = f"arn:aws:ce::{account}:anomalymonitor/0a1b2c3d"
    tagged = {"aws:RequestTag/Project": "FinOpsGuard", "aws:TagKeys": ["CostCenter", "Environment", "Owner", "Project"]}
    logs_role = billing.arn(setting_role_id(full_synth))
    as_iam: dict[str, tuple[str, list[tuple[str, str, dict[str, Any]]]]] = {
        "ce:CreateAnomalyMonitor": (
            "costs",
            [("ce:CreateAnomalyMonitor", "*", tagged), ("ce:TagResource", monitor, tagged)],
        ),
        "ce:GetAnomalyMonitors": ("costs", [("ce:GetAnomalyMonitors", monitor, {})]),
        "ce:DeleteAnomalyMonitor": ("costs", [("ce:DeleteAnomalyMonitor", monitor, {})]),
        "ce:GetAnomalySubscriptions": (
            "costs",
            [("ce:GetAnomalySubscriptions", f"arn:aws:ce::{account}:anomalysubscription/0a1b", {})],
        ),
        "apigateway:GetAccount": ("billing", [("apigateway:GET", f"arn:aws:apigateway:{region}::/account", {})]),
        "apigateway:UpdateAccount": (
            "billing",
            [
                ("apigateway:PATCH", f"arn:aws:apigateway:{region}::/account", {}),
                ("iam:PassRole", logs_role, {"iam:PassedToService": "apigateway.amazonaws.com"}),
            ],
        ),
        "iam:GetRole": ("billing", [("iam:GetRole", f"arn:aws:iam::{account}:role/central-apigw-logs", {})]),
        "monitoring:PutMetricData": (
            "costs",
            [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "FinOpsGuard"})],
        ),
    }
    assert set(calls) == set(as_iam), "a call this test does not know how IAM authorizes"
    evaluators = {"costs": costs, "billing": billing}
    roles = {
        product: role_principal(evaluators[product].arn(role_id_of(full_synth, f"{product}-setup")))
        for product in evaluators
    }
    refused = [
        (product, action, resource, outcome.reason)
        for call in calls
        for product, checks in [as_iam[call]]
        for action, resource, context in checks
        if not (outcome := evaluators[product].is_allowed(roles[product], action, resource, context))
    ]
    assert refused == []
    # And nothing beyond: an untagged create, another namespace, passing another role, the other product's calls.
    assert not costs.is_allowed(roles["costs"], "ce:CreateAnomalyMonitor", "*", {})
    assert not costs.is_allowed(roles["costs"], "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/EC2"})
    other_role = f"arn:aws:iam::{account}:role/admin"
    assert not billing.is_allowed(
        roles["billing"], "iam:PassRole", other_role, {"iam:PassedToService": "apigateway.amazonaws.com"}
    )
    assert not costs.is_allowed(roles["costs"], "apigateway:PATCH", f"arn:aws:apigateway:{region}::/account", {})
    assert not billing.is_allowed(roles["billing"], "ce:CreateAnomalyMonitor", "*", tagged)


def setting_role_id(synth: Synth) -> str:
    _, setting = synth.only("Custom::ApiGatewayCloudWatchRole")
    return setting["Properties"]["RoleArn"]["Fn::GetAtt"][0]


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("product", "custom_resources"),
    [
        ("costs", {"Custom::AnomalyServicesMonitor", "Custom::ReportDeadlineGrace"}),
        ("billing", {"Custom::ApiGatewayCloudWatchRole"}),
    ],
)
def test_each_setup_function_is_invoked_by_its_own_stacks_cloudformation_only(
    full_synth: Synth, product: str, custom_resources: set[str]
) -> None:
    part: StackSynth = getattr(full_synth, product)
    function_id, function = function_of(full_synth, f"{product}-setup")
    setup_ref = {"Fn::GetAtt": [function_id, "Arn"]}

    assert function_id in part.template_json["Resources"]
    assert function["Architectures"] == ["arm64"]
    assert (function["Timeout"], function["MemorySize"]) == (120, 128)
    # No schedule, no trigger, no resource policy: only the stack's own custom resources call it.
    assert [
        lid
        for lid, p in full_synth.resources("AWS::Lambda::Permission").items()
        if p["Properties"]["FunctionName"] == setup_ref
    ] == []
    tokens = {
        r["Type"]
        for r in part.template_json["Resources"].values()
        if r["Type"].startswith("Custom::") and r["Properties"]["ServiceToken"] == setup_ref
    }
    assert tokens == custom_resources


def test_the_core_has_no_setup_function(full_synth: Synth) -> None:
    assert full_synth.core.resources("AWS::Lambda::Function") == {}
    assert [r for r in full_synth.core.template_json["Resources"].values() if r["Type"].startswith("Custom::")] == []
