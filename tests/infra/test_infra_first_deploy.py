"""A first deploy that fails can be retried, a destroyed stage can be redeployed, and the deploy-time
custom resources hold exactly the permissions their code uses."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import Synth, arn_of, function_of, policy_statements_of_role, ref, role_id_of, synthesize
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


def test_topic_keys_are_scheduled_for_deletion_with_the_stack(full_synth: Synth) -> None:
    # A topic key encrypts messages in flight only: kept after the topic is gone it would bill $1 a month.
    keys = full_synth.resources("AWS::KMS::Key")

    assert len(keys) == 3
    for key in keys.values():
        assert (key.get("DeletionPolicy"), key["Properties"]["PendingWindowInDays"]) == ("Delete", 30)


# --- the deploy-setup function ----------------------------------------------------------------------


def setup_role_statements(synth: Synth) -> list[dict[str, Any]]:
    return policy_statements_of_role(synth, role_id_of(synth, "deploy-setup"))


def test_deploy_setup_role_holds_exactly_what_its_three_custom_resources_use(full_synth: Synth) -> None:
    statements = {s["Sid"]: s for s in setup_role_statements(full_synth)}
    [logs_role_id] = [
        lid
        for lid, role in full_synth.resources("AWS::IAM::Role").items()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "apigateway.amazonaws.com"}
    ]

    def account_arn(service_path: str) -> dict[str, Any]:
        return {"Fn::Join": ["", ["arn:", ref("AWS::Partition"), *service_path]]}

    assert statements == {
        "WriteOwnLogs": {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": statements["WriteOwnLogs"]["Resource"],
        },
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
            "Resource": arn_of(logs_role_id),
            "Condition": {"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}},
        },
        "OpenReportDeadline": {
            "Sid": "OpenReportDeadline",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "FinOpsGuard"}},
        },
    }
    assert statements["WriteOwnLogs"]["Resource"] == arn_of(
        function_of(full_synth, "deploy-setup")[1]["LoggingConfig"]["LogGroup"]["Ref"]
    )


def test_without_a_services_monitor_the_setup_role_gets_no_cost_explorer_action(
    existing_monitor_synth: Synth,
) -> None:
    actions = {
        action
        for s in setup_role_statements(existing_monitor_synth)
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }

    assert not {a for a in actions if a.startswith("ce:")}


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
    evaluator = PolicyEvaluator(full_synth.template_json)
    account, region = evaluator.template.account, evaluator.template.region
    monitor = f"arn:aws:ce::{account}:anomalymonitor/0a1b2c3d"
    tagged = {"aws:RequestTag/Project": "FinOpsGuard", "aws:TagKeys": ["CostCenter", "Environment", "Owner", "Project"]}
    logs_role = evaluator.arn(setting_role_id(full_synth))
    as_iam: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "ce:CreateAnomalyMonitor": [("ce:CreateAnomalyMonitor", "*", tagged), ("ce:TagResource", monitor, tagged)],
        "ce:GetAnomalyMonitors": [("ce:GetAnomalyMonitors", monitor, {})],
        "ce:DeleteAnomalyMonitor": [("ce:DeleteAnomalyMonitor", monitor, {})],
        "ce:GetAnomalySubscriptions": [
            ("ce:GetAnomalySubscriptions", f"arn:aws:ce::{account}:anomalysubscription/0a1b", {})
        ],
        "apigateway:GetAccount": [("apigateway:GET", f"arn:aws:apigateway:{region}::/account", {})],
        "apigateway:UpdateAccount": [
            ("apigateway:PATCH", f"arn:aws:apigateway:{region}::/account", {}),
            ("iam:PassRole", logs_role, {"iam:PassedToService": "apigateway.amazonaws.com"}),
        ],
        "iam:GetRole": [("iam:GetRole", f"arn:aws:iam::{account}:role/central-apigw-logs", {})],
        "monitoring:PutMetricData": [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "FinOpsGuard"})],
    }
    assert set(calls) == set(as_iam), "a call this test does not know how IAM authorizes"
    setup_role = role_principal(evaluator.arn(role_id_of(full_synth, "deploy-setup")))
    refused = [
        (action, resource, outcome.reason)
        for call in calls
        for action, resource, context in as_iam[call]
        if not (outcome := evaluator.is_allowed(setup_role, action, resource, context))
    ]
    assert refused == []
    # And nothing beyond: an untagged create, another namespace, passing another role.
    assert not evaluator.is_allowed(setup_role, "ce:CreateAnomalyMonitor", "*", {})
    assert not evaluator.is_allowed(setup_role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/EC2"})
    other_role = f"arn:aws:iam::{account}:role/admin"
    assert not evaluator.is_allowed(
        setup_role, "iam:PassRole", other_role, {"iam:PassedToService": "apigateway.amazonaws.com"}
    )


def setting_role_id(synth: Synth) -> str:
    _, setting = synth.only("Custom::ApiGatewayCloudWatchRole")
    return setting["Properties"]["RoleArn"]["Fn::GetAtt"][0]


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 12, 2, tzinfo=UTC)


def test_the_setup_function_is_invoked_by_cloudformation_only(full_synth: Synth) -> None:
    _, function = function_of(full_synth, "deploy-setup")
    setup_ref = {"Fn::GetAtt": [function_of(full_synth, "deploy-setup")[0], "Arn"]}

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
        for r in full_synth.template_json["Resources"].values()
        if r["Type"].startswith("Custom::") and r["Properties"]["ServiceToken"] == setup_ref
    }
    assert tokens == {
        "Custom::AnomalyServicesMonitor",
        "Custom::ApiGatewayCloudWatchRole",
        "Custom::ReportDeadlineGrace",
    }
