"""cdk-nag AwsSolutions and cfn-lint both pass on the synthesized templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from conftest import StackSynth, Synth

pytestmark = pytest.mark.infra

VARIANTS = ["default_synth", "full_synth"]

# Each acknowledgment: (stack, construct path below the stack, rule id). Reviewed one by one.
EXPECTED_ACKNOWLEDGMENTS = {
    # Core: the chat webhook secrets, the ops topic CloudWatch alarms publish to, the failure queue.
    ("Core", "TeamsWebhookSecret", "AwsSolutions-SMG4"),
    ("Core", "SlackWebhookSecret", "AwsSolutions-SMG4"),
    ("Core", "Ops/Topic", "AwsSolutions-SNS2"),
    ("Core", "Paging/FailureQueue", "AwsSolutions-SQS3"),
    # Costs
    ("Costs", "CostReports/WeeklyReport/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Costs", "Budgets/BudgetGuard/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Costs", "Anomalies/CostAnomalies/Topic", "AwsSolutions-SNS2"),
    ("Costs", "Attribution/TeamWebhooksSecret", "AwsSolutions-SMG4"),
    ("Costs", "Attribution/Chargeback/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "Costs",
        "Attribution/Chargeback/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<AttributionChargebackBucket30FDDA4A.Arn>/chargeback/*]",
    ),
    # The deploy-time custom resources: monitor ids chosen by AWS, PutMetricData limited by namespace.
    *(
        ("Costs", "CostsSetup/Role/DefaultPolicy", f"AwsSolutions-IAM5[Resource::{resource}]")
        for resource in (
            "arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalymonitor/*",
            "arn:<AWS::Partition>:ce::<AWS::AccountId>:anomalysubscription/*",
            "*",
        )
    ),
    # Billing
    ("Billing", "BillingApi/StripeWebhookSecret", "AwsSolutions-SMG4"),
    ("Billing", "BillingApi/FinanceTeamsWebhookSecret", "AwsSolutions-SMG4"),
    ("Billing", "BillingApi/FinanceSlackWebhookSecret", "AwsSolutions-SMG4"),
    ("Billing", "BillingApi/BillingNotifier/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Billing", "BillingApi/Api", "AwsSolutions-APIG2"),
    ("Billing", "BillingApi/Api/DeploymentStage.v1", "AwsSolutions-APIG3"),
    ("Billing", "BillingApi/Api/Default/stripe/webhook/POST", "AwsSolutions-APIG4"),
    ("Billing", "BillingApi/Api/Default/stripe/webhook/POST", "AwsSolutions-COG4"),
    ("Billing", "BillingApi/Api/Default/stripe/webhook/ANY", "AwsSolutions-APIG4"),
    ("Billing", "BillingApi/Api/Default/stripe/webhook/ANY", "AwsSolutions-COG4"),
    *(
        ("Billing", f"BillingApi/Api/Default/{path}/{method}", "AwsSolutions-COG4")
        for path, method in (
            ("invoices", "POST"),
            ("billing/summary", "GET"),
            ("billing/alerts/{id}/retry", "POST"),
            ("billing/alerts/{id}/resend", "POST"),
            ("billing/portal-session", "POST"),
            ("billing/export.csv", "GET"),
        )
    ),
    ("Billing", "BillingJobs/StripeApiKeySecret", "AwsSolutions-SMG4"),
    ("Billing", "BillingJobs/DunningSender/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "Billing",
        "BillingJobs/BillingAdmin/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::<BillingJobsExportBucket410ADD4A.Arn>/ledger/*]",
    ),
    (
        "Billing",
        "BillingApi/LogsRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
    ),
    # Any role the account's API Gateway setting may name (GetRole only).
    (
        "Billing",
        "BillingSetup/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]",
    ),
    # Python 3.13, not the newest runtime: the bytecode the assets ship is compiled by 3.13 (infra/core/bytecode.py).
    *(
        (product, f"{function}/Function", "AwsSolutions-L1")
        for product, function in (
            ("Costs", "CostsSetup"),
            ("Costs", "CostReports/WeeklyReport"),
            ("Costs", "Budgets/BudgetGuard"),
            ("Costs", "Anomalies/AnomalyAlerts"),
            ("Costs", "Attribution/Chargeback"),
            ("Billing", "BillingSetup"),
            ("Billing", "BillingApi/StripeWebhook"),
            ("Billing", "BillingApi/BillingNotifier"),
            ("Billing", "BillingJobs/DunningSender"),
            ("Billing", "BillingJobs/Reconciliation"),
            ("Billing", "BillingJobs/BillingAdmin"),
        )
    ),
}
SLACK_ONLY = {
    ("Core", "SlackWebhookSecret", "AwsSolutions-SMG4"),
    ("Billing", "BillingApi/FinanceSlackWebhookSecret", "AwsSolutions-SMG4"),
}
# savingsRecommendations: the refresh's Cost Optimization Hub actions have no resource-level permissions.
# The recommendations table, there in every variant, needs no acknowledgment.
SAVINGS_ONLY = {
    ("Costs", "Savings/SavingsRefresh/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Costs", "Savings/SavingsRefresh/Function", "AwsSolutions-L1"),
}


def product_of(stack: Stack) -> str:
    """``FinOpsGuard-qa-Costs`` -> ``Costs``."""
    return stack.stack_name.rsplit("-", 1)[1]


def acknowledgments(synth: Synth) -> dict[tuple[str, str, str], str]:
    found = {}
    for stack in synth.stacks.all:
        stack_prefix = stack.node.path + "/"
        for construct in stack.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule_id, reason in entry.data.items():
                        path = construct.node.path.removeprefix(stack_prefix)
                        found[(product_of(stack), path, rule_id.split("::", 1)[-1])] = reason
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


def test_acknowledgments_are_exactly_the_reviewed_ones(full_synth: Synth, default_synth: Synth) -> None:
    # Team routing needs no wildcard: the functions read one team webhooks secret by its ARN.
    assert set(acknowledgments(full_synth)) == EXPECTED_ACKNOWLEDGMENTS | SAVINGS_ONLY
    assert set(acknowledgments(default_synth)) == EXPECTED_ACKNOWLEDGMENTS - SLACK_ONLY


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_each_unscoped_resource_acknowledgment_names_every_action_it_covers(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    """One IAM5[Resource::*] acknowledgment covers all of a policy's '*' statements: a statement added
    later (Savings Plans KPI, Cost Optimization Hub) must not hide behind a reason written for another."""
    synth: Synth = request.getfixturevalue(synth_name)
    parts = {product_of(part.stack): part for part in synth.parts}
    checked = 0

    for (product, path, rule_id), reason in acknowledgments(synth).items():
        if rule_id != "AwsSolutions-IAM5[Resource::*]":
            continue
        part = parts[product]
        stack = part.stack
        [policy] = [c for c in stack.node.find_all() if c.node.path == f"{stack.node.path}/{path}"]
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, CfnResource)
        document = part.template_json["Resources"][stack.get_logical_id(cfn_policy)]["Properties"]["PolicyDocument"]
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
    for (product, path, rule_id), reason in acknowledgments(full_synth).items():
        words = reason.split()
        assert len(words) >= 20, f"{rule_id} on {product}/{path}: reason too short: {reason!r}"
        assert not {"todo", "tbd", "n/a", "ignore"} & {w.lower().strip(".,") for w in words}


def wildcard_statements(part: StackSynth) -> list[dict[str, Any]]:
    return [
        statement
        for policy in part.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Resource"] == "*" or "*" in json.dumps(statement["Action"])
    ]


COST_EXPLORER = {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"}


def test_wildcards_are_only_cost_explorer_cost_optimization_hub_list_streams_and_sms(full_synth: Synth) -> None:
    assert wildcard_statements(full_synth.core) == []  # the core runs no function
    assert wildcard_statements(full_synth.costs) == [
        {
            "Sid": "CreateTaggedServicesMonitor",  # costs setup: CreateAnomalyMonitor has no resource type
            "Effect": "Allow",
            "Action": ["ce:CreateAnomalyMonitor", "ce:TagResource"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestTag/Project": "FinOpsGuard"}},
        },
        {
            "Sid": "OpenReportDeadline",  # costs setup: the weekly deadline's first data point
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "FinOpsGuard"}},
        },
        COST_EXPLORER,  # weekly report
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
        COST_EXPLORER,  # budget guard
        COST_EXPLORER,  # chargeback
        COST_EXPLORER,  # savings refresh (ROI), savingsRecommendations
        {
            "Sid": "ListCostOptimizationHubRecommendations",
            "Effect": "Allow",
            "Action": ["cost-optimization-hub:GetRecommendation", "cost-optimization-hub:ListRecommendations"],
            "Resource": "*",
        },
    ]
    assert wildcard_statements(full_synth.billing) == [
        {"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},  # billing notifier stream trigger
        {"Sid": "SendDunningSms", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},  # SMS to phones
    ]


@pytest.mark.parametrize("synth_name", VARIANTS)
def test_no_role_uses_kms(synth_name: str, request: pytest.FixtureRequest) -> None:
    """No customer-managed key anywhere: the finance topic uses alias/aws/sns, which needs no grant."""
    synth: Synth = request.getfixturevalue(synth_name)

    kms_statements = [
        statement
        for part in synth.parts
        for policy in part.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "kms:" in json.dumps(statement["Action"])
    ]
    assert kms_statements == []


@pytest.mark.parametrize("synth_name", VARIANTS)
@pytest.mark.parametrize("stack", ["core", "costs", "billing"])
def test_cfn_lint_finds_no_errors_or_warnings(synth_name: str, stack: str, request: pytest.FixtureRequest) -> None:
    """Each stack's own template, as CloudFormation receives it (the merged view is no deployable template)."""
    part: StackSynth = getattr(request.getfixturevalue(synth_name), stack)

    matches = lint(
        json.dumps(part.template_json),
        config=ManualArgs(regions=["us-east-1", "eu-west-1", "eu-central-1"]),
    )

    problems = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []
