"""cdk-nag AwsSolutions and cfn-lint both pass on the synthesized templates."""

from __future__ import annotations

import json

import pytest
from aws_cdk import CfnResource, Validations
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from conftest import Synth, topic_id_of

pytestmark = pytest.mark.infra

VARIANTS = ["default_synth", "full_synth"]

# Each acknowledgment: (construct path below the stack, rule id). Reviewed one by one.
TEAM_SECRETS = "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:finops-guard/{stage}/teams/*"
EXPECTED_ACKNOWLEDGMENTS = {
    ("CostReports/TeamsWebhookSecret", "AwsSolutions-SMG4"),
    ("CostReports/SlackWebhookSecret", "AwsSolutions-SMG4"),
    ("CostReports/WeeklyReport/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Budgets/BudgetGuard/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Budgets/BudgetGuard/Role/DefaultPolicy", "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]"),
    ("BillingApi/StripeWebhookSecret", "AwsSolutions-SMG4"),
    ("BillingApi/FinanceTeamsWebhookSecret", "AwsSolutions-SMG4"),
    ("BillingApi/FinanceSlackWebhookSecret", "AwsSolutions-SMG4"),
    ("BillingApi/BillingNotifier/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("BillingApi/Api", "AwsSolutions-APIG2"),
    ("BillingApi/Api/DeploymentStage.v1", "AwsSolutions-APIG3"),
    ("BillingApi/Api/Default/stripe/webhook/POST", "AwsSolutions-APIG4"),
    ("BillingApi/Api/Default/stripe/webhook/POST", "AwsSolutions-COG4"),
    ("BillingApi/Api/Default/stripe/webhook/ANY", "AwsSolutions-APIG4"),
    ("BillingApi/Api/Default/stripe/webhook/ANY", "AwsSolutions-COG4"),
    *(
        (f"BillingApi/Api/Default/{path}/{method}", "AwsSolutions-COG4")
        for path, method in (
            ("invoices", "POST"),
            ("billing/summary", "GET"),
            ("billing/alerts/{id}/retry", "POST"),
            ("billing/alerts/{id}/resend", "POST"),
            ("billing/portal-session", "POST"),
            ("billing/export.csv", "GET"),
        )
    ),
    ("BillingJobs/StripeApiKeySecret", "AwsSolutions-SMG4"),
    ("BillingJobs/DunningSender/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "BillingJobs/BillingAdmin/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<BillingJobsExportBucket410ADD4A.Arn>/ledger/*]",
    ),
    ("Attribution/Chargeback/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "Attribution/Chargeback/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<AttributionChargebackBucket30FDDA4A.Arn>/chargeback/*]",
    ),
    (
        "BillingApi/LogsRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
    ),
    # The deploy-time custom resources: monitor ids chosen by AWS, any role the account setting may
    # name (GetRole only), PutMetricData limited by namespace.
    *(
        ("DeploySetup/Role/DefaultPolicy", f"AwsSolutions-IAM5[Resource::{resource}]")
        for resource in (
            "arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalymonitor/*",
            "arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalysubscription/*",
            "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
            "*",
        )
    ),
}
# Team routing: the webhook secrets of team channels, named by the stage.
TEAM_ROUTING = {
    "CostReports/WeeklyReport/Role/DefaultPolicy",
    "Budgets/BudgetGuard/Role/DefaultPolicy",
    "Anomalies/AnomalyAlerts/Role/DefaultPolicy",
}
SLACK_ONLY = {
    ("CostReports/SlackWebhookSecret", "AwsSolutions-SMG4"),
    ("BillingApi/FinanceSlackWebhookSecret", "AwsSolutions-SMG4"),
}
# savingsRecommendations: the refresh's Cost Optimization Hub actions have no resource-level permissions.
# The recommendations table, there in every variant, needs no acknowledgment.
SAVINGS_ONLY = {("Savings/SavingsRefresh/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]")}


def acknowledgments(synth: Synth) -> dict[tuple[str, str], str]:
    found = {}
    stack_prefix = synth.stack.node.path + "/"
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule_id, reason in entry.data.items():
                    path = construct.node.path.removeprefix(stack_prefix)
                    found[(path, rule_id.split("::", 1)[-1])] = reason
    return found


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_cdk_nag_aws_solutions_reports_no_unacknowledged_findings(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    # app.synth() in the fixture already fails on any violation; re-run the pack to show details.
    report = AwsSolutionsChecks().validate_scope(synth.app)

    findings = [
        f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert findings == []
    assert report.success


def test_synth_reports_no_validation_failures(full_synth: Synth) -> None:
    report = json.loads((full_synth.outdir / "validation-report.json").read_text())

    assert report["pluginReports"] == []


def team_routing_acknowledgments(stage: str) -> set[tuple[str, str]]:
    rule_id = f"AwsSolutions-IAM5[Resource::{TEAM_SECRETS.format(stage=stage)}]"
    return {(path, rule_id) for path in TEAM_ROUTING}


def test_acknowledgments_are_exactly_the_reviewed_ones(full_synth: Synth, default_synth: Synth) -> None:
    assert set(acknowledgments(full_synth)) == (
        EXPECTED_ACKNOWLEDGMENTS | SAVINGS_ONLY | team_routing_acknowledgments("qa")
    )
    assert set(acknowledgments(default_synth)) == (EXPECTED_ACKNOWLEDGMENTS - SLACK_ONLY) | (
        team_routing_acknowledgments("dev")
    )


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_each_unscoped_resource_acknowledgment_names_every_action_it_covers(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    """One IAM5[Resource::*] acknowledgment covers all of a policy's '*' statements: a statement added
    later (Savings Plans KPI, Cost Optimization Hub) must not hide behind a reason written for another."""
    synth: Synth = request.getfixturevalue(synth_name)
    stack = synth.stack
    checked = 0

    for (path, rule_id), reason in acknowledgments(synth).items():
        if rule_id != "AwsSolutions-IAM5[Resource::*]":
            continue
        [policy] = [c for c in stack.node.find_all() if c.node.path == f"{stack.node.path}/{path}"]
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, CfnResource)
        document = synth.template_json["Resources"][stack.get_logical_id(cfn_policy)]["Properties"]["PolicyDocument"]
        unscoped = [
            action
            for statement in document["Statement"]
            if statement["Resource"] == "*"
            for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        ]
        assert unscoped, path
        assert [action for action in unscoped if action not in reason] == [], path
        checked += 1

    assert checked >= 4


def test_every_acknowledgment_explains_itself(full_synth: Synth) -> None:
    for (path, rule_id), reason in acknowledgments(full_synth).items():
        words = reason.split()
        assert len(words) >= 20, f"{rule_id} on {path}: reason too short: {reason!r}"
        assert not {"todo", "tbd", "n/a", "ignore"} & {w.lower().strip(".,") for w in words}


def test_wildcards_are_only_cost_explorer_cost_optimization_hub_list_streams_sms_and_the_finance_topic_key(
    full_synth: Synth,
) -> None:
    wildcard_statements = [
        statement
        for policy in full_synth.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Resource"] == "*" or "*" in json.dumps(statement["Action"])
    ]
    finance_topic = full_synth.template_json["Resources"][topic_id_of(full_synth, "finance-alerts")]
    finance_key_arn = finance_topic["Properties"]["KmsMasterKeyId"]

    cost_explorer = {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"}
    assert wildcard_statements == [
        {
            "Sid": "CreateTaggedServicesMonitor",  # deploy setup: CreateAnomalyMonitor has no resource type
            "Effect": "Allow",
            "Action": ["ce:CreateAnomalyMonitor", "ce:TagResource"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestTag/Project": "FinOpsGuard"}},
        },
        {
            "Sid": "OpenReportDeadline",  # deploy setup: the weekly deadline's first data point
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "FinOpsGuard"}},
        },
        cost_explorer,  # weekly report
        {
            "Sid": "ReadSavingsPlansKpi",  # weekly report, savingsPlansKpi
            "Effect": "Allow",
            "Action": ["ce:GetSavingsPlansCoverage", "ce:GetSavingsPlansUtilization"],
            "Resource": "*",
        },
        {  # weekly report, attribution by tag: is a tag that attributes nothing active?
            "Sid": "ReadCostAllocationTagStatus",
            "Effect": "Allow",
            "Action": "ce:ListCostAllocationTags",
            "Resource": "*",
        },
        cost_explorer,  # budget guard
        {
            "Sid": "FinanceAlertsEncrypt",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": finance_key_arn,
        },
        cost_explorer,  # chargeback
        cost_explorer,  # savings refresh (ROI), savingsRecommendations
        {
            "Sid": "ListCostOptimizationHubRecommendations",
            "Effect": "Allow",
            "Action": ["cost-optimization-hub:GetRecommendation", "cost-optimization-hub:ListRecommendations"],
            "Resource": "*",
        },
        {"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},  # billing notifier stream trigger
        {"Sid": "SendDunningSms", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},  # SMS to phones
    ]
    assert full_synth.template_json["Resources"][finance_key_arn["Fn::GetAtt"][0]]["Type"] == "AWS::KMS::Key"


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_cfn_lint_finds_no_errors_or_warnings(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    matches = lint(
        json.dumps(synth.template_json),
        config=ManualArgs(regions=["us-east-1", "eu-west-1", "eu-central-1"]),
    )

    problems = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []
