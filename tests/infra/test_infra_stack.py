"""Exact properties of the synthesized FinOps Guard stacks (bundling skipped): the three stacks of a stage,
what each holds, and the weekly report as the example of every function."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from conftest import (
    FULL_CONTEXT,
    REPO_ROOT,
    StackSynth,
    Synth,
    arn_of,
    chargeback_bucket_id,
    core_import,
    export_bucket_id,
    failure_queue_ref,
    function_of,
    layer_id,
    layer_parameter_id,
    log_group_id_of,
    logical_id,
    outbox_arn,
    policy_statements_of_role,
    queue_id_of,
    read_team_routes,
    ref,
    role_id_of,
    schedule_of,
    secret_id,
    synthesize,
    table_id_of,
    topic_id_of,
)

pytestmark = pytest.mark.infra

EXPECTED_TAGS = {
    "Project": "FinOpsGuard",
    "Environment": "qa",
    "Owner": "cloud-platform",
    "CostCenter": "cc-4711",
}


def report_function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return function_of(synth, "weekly-report")


def report_role_id(synth: Synth) -> str:
    return role_id_of(synth, "weekly-report")


def failure_queue_id(synth: Synth) -> str:
    return queue_id_of(synth, "failures")


def log_group_id(synth: Synth) -> str:
    return log_group_id_of(synth, "weekly-report")


def ops_topic_id(synth: Synth) -> str:
    return topic_id_of(synth, "ops-alarms")


def outbox_table_id(synth: Synth) -> str:
    return table_id_of(synth, "outbox")


# --- stack ------------------------------------------------------------------------------------


def test_each_stage_deploys_a_core_a_costs_and_a_billing_stack(full_synth: Synth, default_synth: Synth) -> None:
    assert [stack.stack_name for stack in full_synth.stacks.all] == [
        "FinOpsGuard-qa-Core",
        "FinOpsGuard-qa-Costs",
        "FinOpsGuard-qa-Billing",
    ]
    assert [stack.stack_name for stack in default_synth.stacks.all] == [
        "FinOpsGuard-dev-Core",
        "FinOpsGuard-dev-Costs",
        "FinOpsGuard-dev-Billing",
    ]


def test_costs_and_billing_each_depend_on_the_core_only(full_synth: Synth) -> None:
    def dependencies(synth: StackSynth) -> list[str]:
        return sorted(stack.stack_name for stack in synth.stack.dependencies)

    assert dependencies(full_synth.core) == []
    assert dependencies(full_synth.costs) == ["FinOpsGuard-qa-Core"]
    assert dependencies(full_synth.billing) == ["FinOpsGuard-qa-Core"]
    artifacts = json.loads((full_synth.outdir / "manifest.json").read_text())["artifacts"]
    for product in ("Costs", "Billing"):
        assert "FinOpsGuard-qa-Core" in artifacts[f"FinOpsGuard-qa-{product}"]["dependencies"]
    core_dependencies = artifacts["FinOpsGuard-qa-Core"].get("dependencies", [])
    assert [d for d in core_dependencies if not d.endswith(".assets")] == []


NAME_PROPERTIES = (
    "FunctionName",
    "TableName",
    "Name",
    "QueueName",
    "TopicName",
    "AlarmName",
    "LayerName",
    "DashboardName",
    "BucketName",
)
BILLING_WORDS = ("stripe", "billing", "ledger", "dunning", "invoice", "reconciliation")
COST_WORDS = ("weekly-report", "budget", "anomal", "chargeback", "savings")
NAMED_TYPES = (
    "AWS::Lambda::Function",
    "AWS::DynamoDB::Table",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGateway::RestApi",
    "AWS::Lambda::LayerVersion",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::Schedule",
)


def resource_names(synth: StackSynth) -> list[str]:
    """The names a stack gives its functions, tables, secrets, APIs, layers, queues, topics, alarms, schedules."""
    return [
        value.lower()
        for resource in synth.template_json["Resources"].values()
        if resource["Type"] in NAMED_TYPES
        for key, value in resource.get("Properties", {}).items()
        if key in NAME_PROPERTIES and isinstance(value, str)
    ]


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_the_costs_stack_holds_no_billing_resource(synth_name: str, request: pytest.FixtureRequest) -> None:
    costs: StackSynth = request.getfixturevalue(synth_name).costs
    names = resource_names(costs)

    assert len(names) >= 10  # not vacuous
    assert [n for n in names if any(word in n for word in BILLING_WORDS)] == []
    assert [t for t in {r["Type"] for r in costs.template_json["Resources"].values()} if "ApiGateway" in t] == []


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_the_billing_stack_holds_no_cost_resource(synth_name: str, request: pytest.FixtureRequest) -> None:
    billing: StackSynth = request.getfixturevalue(synth_name).billing
    names = resource_names(billing)

    assert len(names) >= 10
    assert [n for n in names if any(word in n for word in COST_WORDS)] == []
    assert billing.resources("AWS::CE::AnomalyMonitor") == {}
    assert billing.resources("AWS::Scheduler::Schedule")  # its own jobs only (names checked above)


def test_the_core_holds_only_what_both_products_share(full_synth: Synth) -> None:
    names = resource_names(full_synth.core)

    assert sorted(names) == [
        "finops-guard-qa-common",
        "finops-guard-qa-failures",
        "finops-guard-qa-ops-alarms",
        "finops-guard-qa-outbox",
        "finops-guard-qa-report-deps",
        "finops-guard/qa/slack-webhook-url",
        "finops-guard/qa/teams-webhook-url",
        "finopsguard-qa-chatdeliveryfailures",
        "finopsguard-qa-failures",
    ]
    assert full_synth.core.resources("AWS::Lambda::Function") == {}


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_no_stack_creates_a_kms_key(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    for part in synth.parts:
        assert part.resources("AWS::KMS::Key") == {}, part.stack.stack_name
        assert part.resources("AWS::KMS::Alias") == {}, part.stack.stack_name


@pytest.fixture(scope="module")
def dashboard_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-dashboard"), {**FULL_CONTEXT, "dashboard": True})


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_no_dashboard_by_default(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    for part in synth.parts:
        assert part.resources("AWS::CloudWatch::Dashboard") == {}, part.stack.stack_name


def test_dashboard_context_adds_one_dashboard_per_product_stack(dashboard_synth: Synth) -> None:
    def dashboard_name(part: StackSynth) -> list[Any]:
        return [d["Properties"]["DashboardName"] for d in part.resources("AWS::CloudWatch::Dashboard").values()]

    assert dashboard_name(dashboard_synth.core) == []
    assert dashboard_name(dashboard_synth.costs) == [
        {"Fn::Join": ["", ["FinOpsGuard-qa-Costs-", {"Ref": "AWS::Region"}]]}
    ]
    assert dashboard_name(dashboard_synth.billing) == [
        {"Fn::Join": ["", ["FinOpsGuard-qa-Billing-", {"Ref": "AWS::Region"}]]}
    ]


def test_default_cdk_json_context_synthesizes_a_utc_weekly_schedule(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {"ScheduleExpression": "cron(0 8 ? * MON *)", "ScheduleExpressionTimezone": "UTC"},
    )


# --- schedule ---------------------------------------------------------------------------------


def test_schedule_runs_the_report_in_the_configured_time_zone(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    schedule_input = Capture()

    full_synth.costs.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 8 ? * MON *)",
            "ScheduleExpressionTimezone": "Europe/Madrid",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": arn_of(function_id),
                "RoleArn": Match.any_value(),
                "Input": schedule_input,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": failure_queue_ref("qa")},
            },
        },
    )
    assert json.loads(schedule_input.as_string()) == {
        "report": "weekly",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


def test_scheduler_role_may_only_invoke_the_report_and_park_failed_events(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    _, schedule = schedule_of(full_synth, "weekly-report")
    role_id = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = full_synth.template_json["Resources"][role_id]["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert policy_statements_of_role(full_synth, role_id) == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": arn_of(function_id),
            "Sid": "InvokeWeeklyReport",
        },
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": failure_queue_ref("qa"),
            "Sid": "ParkUndeliveredEvents",
        },
    ]
    assert "ManagedPolicyArns" not in role


# --- function ---------------------------------------------------------------------------------


def test_report_function_runs_arm64_python_3_13_with_explicit_limits(full_synth: Synth) -> None:
    full_synth.costs.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-weekly-report",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": 120,
            "MemorySize": 256,
            "DeadLetterConfig": Match.absent(),  # its failed events go to the stage's failure queue
            "LoggingConfig": {"LogGroup": ref(log_group_id(full_synth))},
        },
    )


def test_a_failed_report_run_goes_to_the_failure_queue_after_two_retries(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    policy_id = full_synth.template_json["Resources"][function_id]["DependsOn"][0]

    full_synth.costs.template.has_resource(
        "AWS::Lambda::EventInvokeConfig",
        {
            "Properties": {
                "FunctionName": ref(function_id),
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Destination": failure_queue_ref("qa")}},
            },
            # Lambda checks the role may send to the destination when it saves the config.
            "DependsOn": [policy_id],
        },
    )


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_every_function_sends_its_failed_events_to_the_failure_queue_of_its_stage(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = synth.stack.config.stage

    for part in (synth.costs, synth.billing):
        functions = part.resources("AWS::Lambda::Function")
        configs = {
            c["Properties"]["FunctionName"]["Ref"]: c for c in part.resources("AWS::Lambda::EventInvokeConfig").values()
        }
        assert set(configs) == set(functions), part.stack.stack_name
        for function_id, config in configs.items():
            assert config["Properties"]["DestinationConfig"] == {"OnFailure": {"Destination": failure_queue_ref(stage)}}
            assert config["Properties"]["MaximumRetryAttempts"] == 2
            assert "DeadLetterConfig" not in functions[function_id]["Properties"]
            role_id = functions[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
            assert {
                "Sid": "ReportFailedEvents",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": failure_queue_ref(stage),
            } in policy_statements_of_role(synth, role_id)


def test_report_function_logs_to_a_log_group_kept_one_month(full_synth: Synth) -> None:
    log_group = full_synth.template_json["Resources"][log_group_id(full_synth)]

    assert log_group["Properties"]["RetentionInDays"] == 30


def test_report_function_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = report_function(full_synth)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TOP_N": "7",
        "FINOPSGUARD_MONTHLY_BUDGET": "1500.50",
        "FINOPSGUARD_SAVINGS_PLANS_KPI": "true",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",  # the core's table, by its fixed name
        "FINOPSGUARD_COST_METRIC": "NetAmortizedCost",
        "FINOPSGUARD_BREAKDOWN": "USAGE_TYPE",  # the weekly report only: only its card has a breakdown
        "FINOPSGUARD_BUDGETS_TABLE": ref(table_id_of(full_synth, "budgets")),
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": ref(table_id_of(full_synth, "budget-alerts")),
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/qa/team-webhooks",
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": ref(table_id_of(full_synth, "recommendations")),
        "FINOPSGUARD_ANOMALY_MONITOR_SINCE": {
            "Fn::GetAtt": [full_synth.only("Custom::AnomalyServicesMonitor")[0], "Since"]
        },
        "POWERTOOLS_SERVICE_NAME": "weekly-report",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_optional_settings_are_absent_from_the_environment_by_default(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/dev/teams-webhook-url",
                        "FINOPSGUARD_MONTHLY_BUDGET": Match.absent(),
                        "FINOPSGUARD_SLACK_SECRET_NAME": Match.absent(),
                        "FINOPSGUARD_SAVINGS_PLANS_KPI": Match.absent(),
                        "FINOPSGUARD_RECOMMENDATIONS_TABLE": Match.absent(),
                    }
                )
            }
        },
    )


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_no_environment_value_looks_like_a_url_or_secret(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    secret_like = re.compile(
        r"://|hooks\.|webhook\.office|xox[abp]-|[sr]k_(live|test)_|whsec_|resolve:secretsmanager", re.I
    )
    # Public URLs from the context, not secrets: the Stripe test server and the portal's return page.
    public_urls = {"FINOPSGUARD_STRIPE_API_BASE", "FINOPSGUARD_PORTAL_RETURN_URL"}

    for function in synth.resources("AWS::Lambda::Function").values():
        for name, value in function["Properties"]["Environment"]["Variables"].items():
            if name not in public_urls:
                assert not secret_like.search(json.dumps(value)), f"{name} looks like a secret: {value}"


def test_teams_secret_name_variable_is_the_name_of_the_teams_secret(full_synth: Synth) -> None:
    _, function = report_function(full_synth)
    secret = full_synth.template_json["Resources"][secret_id(full_synth, "teams")]

    assert function["Environment"]["Variables"]["FINOPSGUARD_TEAMS_SECRET_NAME"] == secret["Properties"]["Name"]


def test_report_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    role_id = report_role_id(full_synth)
    statements = policy_statements_of_role(full_synth, role_id)

    expected = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id(full_synth)),
        },
        {
            "Sid": "ReportFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": failure_queue_ref("qa"),
        },
        {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"},
        {
            "Sid": "ReadSavingsPlansKpi",
            "Effect": "Allow",
            "Action": ["ce:GetSavingsPlansCoverage", "ce:GetSavingsPlansUtilization"],
            "Resource": "*",
        },
        {
            "Sid": "ReadCostAllocationTagStatus",
            "Effect": "Allow",
            "Action": "ce:ListCostAllocationTags",
            "Resource": "*",
        },
        {
            "Sid": "ReadWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": Match.array_equals(
                [core_import("qa", "slack-secret-arn"), core_import("qa", "teams-secret-arn")]
            ),
        },
        {"Sid": "UseOutbox", "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": outbox_arn("qa")},
        {
            "Sid": "ReadBudgets",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": arn_of(table_id_of(full_synth, "budgets")),
        },
        {
            "Sid": "ReadBudgetAlerts",
            "Effect": "Allow",
            "Action": "dynamodb:BatchGetItem",
            "Resource": arn_of(table_id_of(full_synth, "budget-alerts")),
        },
        read_team_routes(full_synth),
        {
            "Sid": "ReadTeamWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": ref(
                logical_id(full_synth, "AWS::SecretsManager::Secret", "Name", "finops-guard/qa/team-webhooks")
            ),
        },
        {
            "Sid": "ReadRecommendations",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": arn_of(table_id_of(full_synth, "recommendations")),
        },
    ]
    full_synth.costs.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [ref(role_id)],
            "PolicyDocument": {"Statement": Match.array_equals(expected), "Version": "2012-10-17"},
        },
    )
    assert len(statements) == len(expected)


def test_report_role_is_assumed_by_lambda_and_has_no_managed_policies(full_synth: Synth) -> None:
    role = full_synth.template_json["Resources"][report_role_id(full_synth)]["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_report_function_waits_for_its_policy_not_redundantly_for_its_role(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    role_id = report_role_id(full_synth)
    [policy_id] = [
        lid for lid, p in full_synth.resources("AWS::IAM::Policy").items() if ref(role_id) in p["Properties"]["Roles"]
    ]

    assert full_synth.template_json["Resources"][function_id]["DependsOn"] == [policy_id]


# --- layers -----------------------------------------------------------------------------------


def test_report_function_uses_exactly_the_common_and_report_deps_layers(full_synth: Synth) -> None:
    _, function = report_function(full_synth)

    # The core's current layer versions, read from its SSM parameters at deploy time.
    assert function["Layers"] == [
        ref(layer_parameter_id(full_synth.costs, "common")),
        ref(layer_parameter_id(full_synth.costs, "report-deps")),
    ]


def test_the_core_publishes_its_layers_and_the_billing_stack_owns_the_stripe_layer(full_synth: Synth) -> None:
    def layers(part: StackSynth) -> list[str]:
        return sorted(r["Properties"]["LayerName"] for r in part.resources("AWS::Lambda::LayerVersion").values())

    assert layers(full_synth.core) == ["finops-guard-qa-common", "finops-guard-qa-report-deps"]
    assert layers(full_synth.costs) == []
    assert layers(full_synth.billing) == ["finops-guard-qa-billing-deps"]
    for name in ("common", "report-deps"):
        full_synth.core.template.has_resource_properties(
            "AWS::SSM::Parameter",
            {"Name": f"/finops-guard/qa/layers/{name}", "Type": "String", "Value": ref(layer_id(full_synth, name))},
        )


def test_layers_target_python_3_13_on_arm64(full_synth: Synth) -> None:
    for layer in full_synth.resources("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("product", "expected"),
    [
        ("Core", ["Layers/Common/Code", "Layers/ReportDeps/Code"]),
        (
            "Costs",
            [
                "Anomalies/AnomalyAlerts/Function/Code",
                "Attribution/Chargeback/Function/Code",
                "Budgets/BudgetGuard/Function/Code",
                "CostReports/WeeklyReport/Function/Code",
                "CostsSetup/Function/Code",
                "Savings/SavingsRefresh/Function/Code",
            ],
        ),
        (
            "Billing",
            [
                "BillingApi/BillingNotifier/Function/Code",
                "BillingApi/StripeWebhook/Function/Code",
                "BillingDeps/Code",
                "BillingJobs/BillingAdmin/Function/Code",
                "BillingJobs/DunningSender/Function/Code",
                "BillingJobs/Reconciliation/Function/Code",
                "BillingSetup/Function/Code",
            ],
        ),
    ],
)
def test_each_stack_ships_only_its_own_handlers_and_layers(
    full_synth: Synth, product: str, expected: list[str]
) -> None:
    [assets_file] = full_synth.outdir.glob(f"FinOpsGuard-qa-{product}.assets.json")
    sources = sorted(
        asset["displayName"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if "displayName" in asset
    )

    assert [s for s in sources if "Code" in s] == expected


# --- alarms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alarm_name", "namespace", "metric", "dimensions", "period", "statistic"),
    [
        (
            "FinOpsGuard-qa-Failures",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "failure-queue",
            300,
            "Maximum",
        ),
        (
            "FinOpsGuard-qa-ChatDeliveryFailures",
            "FinOpsGuard",
            "ChatDeliveryFailures",
            [{"Name": "stage", "Value": "qa"}],
            3600,
            "Sum",
        ),
    ],
)
def test_the_core_pages_the_ops_topic_for_every_function(
    full_synth: Synth, alarm_name: str, namespace: str, metric: str, dimensions: Any, period: int, statistic: str
) -> None:
    topic = ref(ops_topic_id(full_synth))
    if dimensions == "failure-queue":
        dimensions = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [failure_queue_id(full_synth), "QueueName"]}}]

    full_synth.core.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": alarm_name,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": period,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
            "OKActions": [topic],
            "AlarmDescription": Match.string_like_regexp("First:"),
        },
    )
    assert len(full_synth.core.resources("AWS::CloudWatch::Alarm")) == 2


def test_report_function_has_only_its_deadline_alarm(full_synth: Synth) -> None:
    alarms = [
        alarm
        for alarm in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].startswith("FinOpsGuard-qa-weekly-report-")
    ]

    # No per-function Errors/Throttles/Duration/DeadLetters/ChatDeliveryFailures: the core's two alarms
    # cover every function; the weekly deadline is in test_infra_monitoring.py.
    assert [a["Properties"]["AlarmName"] for a in alarms] == ["FinOpsGuard-qa-weekly-report-NotPosted"]
    for alarm in full_synth.resources("AWS::CloudWatch::Alarm").values():
        assert "First:" in json.dumps(alarm["Properties"]["AlarmDescription"]), alarm["Properties"]["AlarmName"]


# --- ops topic and DLQ ------------------------------------------------------------------------


def test_ops_topic_has_no_key_so_that_alarms_can_publish(full_synth: Synth) -> None:
    topic = full_synth.template_json["Resources"][ops_topic_id(full_synth)]["Properties"]

    # Unencrypted: CloudWatch alarms could publish to an encrypted topic only with a customer-managed key.
    # Who may publish (this stage's alarms of this account, over TLS only): test_infra_policies.py.
    assert "KmsMasterKeyId" not in topic


@pytest.mark.parametrize(
    ("resource_type", "policy_type", "target_key"),
    [
        ("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "Topics"),
        ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues"),
    ],
)
def test_topics_and_queues_refuse_requests_without_tls(
    full_synth: Synth, resource_type: str, policy_type: str, target_key: str
) -> None:
    resource_ids = full_synth.resources(resource_type)
    # Topics: ops, finance, cost anomalies. Queues: the stage's failure queue and the anomaly inbox.
    assert len(resource_ids) == (3 if resource_type == "AWS::SNS::Topic" else 2)

    for resource_id in resource_ids:
        full_synth.template.has_resource_properties(
            policy_type,
            {
                target_key: [ref(resource_id)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                },
            },
        )


def test_ops_email_subscription_only_when_configured(full_synth: Synth, default_synth: Synth) -> None:
    full_synth.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": ref(ops_topic_id(full_synth))},
    )

    def email_subscriptions(synth: Synth) -> list[dict[str, Any]]:
        subscriptions = synth.resources("AWS::SNS::Subscription").values()
        return [s for s in subscriptions if s["Properties"]["Protocol"] == "email"]

    assert len(email_subscriptions(full_synth)) == 2  # the other is financeAlertEmail
    assert email_subscriptions(default_synth) == []


def test_failure_queue_is_encrypted_keeps_messages_14_days_and_is_exported(full_synth: Synth) -> None:
    full_synth.core.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "finops-guard-qa-failures",
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 14 * 24 * 3600,
        },
    )
    assert full_synth.core.template_json["Outputs"]["FailureQueueArn"] == {
        "Value": arn_of(failure_queue_id(full_synth)),
        "Export": {"Name": "finops-guard-qa-failure-queue-arn"},
    }
    # No per-function dead-letter queues any more.
    assert [
        q for q in full_synth.resources("AWS::SQS::Queue").values() if q["Properties"]["QueueName"].endswith("-dlq")
    ] == []


# --- secrets and outbox -----------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_secrets_carry_no_value_in_the_template(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    team_webhooks = f"finops-guard/{synth.stack.config.stage}/team-webhooks"

    for secret in synth.resources("AWS::SecretsManager::Secret").values():
        properties = secret["Properties"]
        assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
        if properties["Name"] == team_webhooks:
            # Created holding an empty map of teams: no URL, and `finops-guard teams add` fills it.
            assert properties["SecretString"] == "{}"
            assert "finops-guard teams add" in properties["Description"]
            continue
        assert "SecretString" not in properties
        assert "put-secret-value --secret-id " + properties["Name"] in properties["Description"]


def test_slack_secret_exists_only_when_slack_is_enabled(full_synth: Synth, default_synth: Synth) -> None:
    def names(part: StackSynth) -> list[str]:
        return sorted(s["Properties"]["Name"] for s in part.resources("AWS::SecretsManager::Secret").values())

    assert names(full_synth.core) == ["finops-guard/qa/slack-webhook-url", "finops-guard/qa/teams-webhook-url"]
    assert names(full_synth.costs) == ["finops-guard/qa/team-webhooks"]
    assert names(full_synth.billing) == [
        "finops-guard/qa/finance-slack-webhook-url",
        "finops-guard/qa/finance-teams-webhook-url",
        "finops-guard/qa/stripe-api-key",
        "finops-guard/qa/stripe-webhook-secret",
    ]
    assert names(default_synth.core) == ["finops-guard/dev/teams-webhook-url"]
    assert names(default_synth.costs) == ["finops-guard/dev/team-webhooks"]
    assert names(default_synth.billing) == [
        "finops-guard/dev/finance-teams-webhook-url",
        "finops-guard/dev/stripe-api-key",
        "finops-guard/dev/stripe-webhook-secret",
    ]


def test_outbox_table_keeps_resendable_messages_safely(full_synth: Synth) -> None:
    # A delivery queue, not a record: no deletion protection (what it carries lives in its source tables).
    full_synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "TableName": "finops-guard-qa-outbox",
                    "KeySchema": [{"AttributeName": "message_id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "message_id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "DeletionProtectionEnabled": False,
                }
            ),
        },
    )


# --- tags and outputs -------------------------------------------------------------------------


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    tags = resource["Properties"].get("Tags", [])
    return dict(tags) if isinstance(tags, dict) else {tag["Key"]: tag["Value"] for tag in tags}


def supports_tags(resource_type: str) -> bool:
    if resource_type.startswith("Custom::"):
        return False  # not CloudFormation's to tag; what a custom resource creates is tagged by its function
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    return "Tags" in schema["properties"]


@pytest.mark.parametrize("stack", ["core", "costs", "billing"])
def test_every_resource_that_takes_tags_carries_the_cost_allocation_tags(full_synth: Synth, stack: str) -> None:
    part: StackSynth = getattr(full_synth, stack)
    taggable = {
        lid: resource for lid, resource in part.template_json["Resources"].items() if supports_tags(resource["Type"])
    }
    assert len(taggable) >= 8  # not vacuous (the core has 9)

    untagged = {lid: tags_of(resource) for lid, resource in taggable.items() if tags_of(resource) != EXPECTED_TAGS}
    assert untagged == {}


def test_the_tag_check_covers_every_kind_of_billed_resource(full_synth: Synth) -> None:
    tagged_types = {
        resource["Type"]
        for part in full_synth.parts
        for resource in part.template_json["Resources"].values()
        if tags_of(resource) == EXPECTED_TAGS
    }

    assert {
        "AWS::Lambda::Function",
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SecretsManager::Secret",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::S3::Bucket",
        "AWS::SSM::Parameter",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Stage",
    } <= tagged_types


def test_stack_outputs_name_what_operators_need(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    guard_id, _ = function_of(full_synth, "budget-guard")

    assert full_synth.core.template_json["Outputs"] == {
        "OpsTopicArn": {"Value": ref(ops_topic_id(full_synth)), "Export": {"Name": "finops-guard-qa-ops-topic-arn"}},
        "FailureQueueArn": {
            "Value": arn_of(failure_queue_id(full_synth)),
            "Export": {"Name": "finops-guard-qa-failure-queue-arn"},
        },
        "FailureQueueName": {"Value": {"Fn::GetAtt": [failure_queue_id(full_synth), "QueueName"]}},
        "OutboxTableName": {"Value": ref(outbox_table_id(full_synth))},
        "TeamsSecretArn": {
            "Value": ref(secret_id(full_synth, "teams")),
            "Export": {"Name": "finops-guard-qa-teams-secret-arn"},
        },
        "TeamsSecretName": {"Value": "finops-guard/qa/teams-webhook-url"},
        "SlackSecretArn": {
            "Value": ref(secret_id(full_synth, "slack")),
            "Export": {"Name": "finops-guard-qa-slack-secret-arn"},
        },
        "SlackSecretName": {"Value": "finops-guard/qa/slack-webhook-url"},
    }
    costs = dict(full_synth.costs.template_json["Outputs"])
    assert re.fullmatch(r"[0-9a-f]{16}", costs.pop("CoreLayersFingerprint")["Value"])
    assert costs == {
        "WeeklyReportFunctionName": {"Value": ref(function_id)},
        "BudgetsTableName": {"Value": ref(table_id_of(full_synth, "budgets"))},
        "BudgetAlertsTableName": {"Value": ref(table_id_of(full_synth, "budget-alerts"))},
        "BudgetGuardFunctionName": {"Value": ref(guard_id)},
        "FinanceTopicArn": {"Value": ref(topic_id_of(full_synth, "finance-alerts"))},
        "AnomalyTopicArn": {"Value": ref(topic_id_of(full_synth, "cost-anomalies"))},
        "AnomaliesTableName": {"Value": ref(table_id_of(full_synth, "anomalies"))},
        "AnomalyInboxQueueUrl": {"Value": ref(queue_id_of(full_synth, "anomaly-inbox"))},
        "AnomalyFunctionName": {"Value": ref(function_of(full_synth, "anomaly-alerts")[0])},
        "TeamRoutesTableName": {"Value": ref(table_id_of(full_synth, "team-routes"))},
        "TeamWebhooksSecretName": {"Value": "finops-guard/qa/team-webhooks"},
        "ChargebackBucketName": {"Value": ref(chargeback_bucket_id(full_synth))},
        "ChargebackFunctionName": {"Value": ref(function_of(full_synth, "chargeback")[0])},
        "RecommendationsTableName": {"Value": ref(table_id_of(full_synth, "recommendations"))},
        "SavingsRefreshFunctionName": {"Value": ref(function_of(full_synth, "savings-refresh")[0])},
    }
    billing = dict(full_synth.billing.template_json["Outputs"])
    assert billing.pop("CoreLayersFingerprint") == full_synth.costs.template_json["Outputs"]["CoreLayersFingerprint"]
    assert "Fn::Join" in billing.pop("StripeWebhookUrl")["Value"]  # exact value: test_infra_billing.py
    assert "Fn::Join" in billing.pop("BillingAdminApiUrl")["Value"]  # exact value: test_infra_billing_jobs.py
    assert billing == {
        "StripeSecretName": {"Value": "finops-guard/qa/stripe-webhook-secret"},
        "FinanceTeamsSecretName": {"Value": "finops-guard/qa/finance-teams-webhook-url"},
        "LedgerTableName": {"Value": ref(table_id_of(full_synth, "billing-ledger"))},
        "BillingAlertsTableName": {"Value": ref(table_id_of(full_synth, "billing-alerts"))},
        "DunningTableName": {"Value": ref(table_id_of(full_synth, "dunning"))},
        "StripeApiKeySecretName": {"Value": "finops-guard/qa/stripe-api-key"},
        "BillingExportBucketName": {"Value": ref(export_bucket_id(full_synth))},
    }


def test_default_stacks_have_no_slack_output(default_synth: Synth) -> None:
    assert set(default_synth.core.template_json["Outputs"]) == {
        "OpsTopicArn",
        "FailureQueueArn",
        "FailureQueueName",
        "OutboxTableName",
        "TeamsSecretArn",
        "TeamsSecretName",
    }
    assert set(default_synth.costs.template_json["Outputs"]) == {
        "CoreLayersFingerprint",
        "WeeklyReportFunctionName",
        "BudgetsTableName",
        "BudgetAlertsTableName",
        "BudgetGuardFunctionName",
        "FinanceTopicArn",
        "AnomalyTopicArn",
        "AnomaliesTableName",
        "AnomalyInboxQueueUrl",
        "AnomalyFunctionName",
        "TeamRoutesTableName",
        "TeamWebhooksSecretName",  # team routing is on by default (the first attribution dimension)
        "ChargebackBucketName",
        "ChargebackFunctionName",
        "RecommendationsTableName",  # the table is always there; its refresh (and output) are opt-in
    }
    assert set(default_synth.billing.template_json["Outputs"]) == {
        "CoreLayersFingerprint",
        "StripeWebhookUrl",
        "StripeSecretName",
        "FinanceTeamsSecretName",
        "LedgerTableName",
        "BillingAlertsTableName",
        "DunningTableName",
        "StripeApiKeySecretName",
        "BillingExportBucketName",
        "BillingAdminApiUrl",
    }


def test_common_layer_is_built_from_the_library_folder(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa-Core.assets.json")
    [common] = [
        asset["source"]["path"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if asset.get("displayName") == "Layers/Common/Code"
    ]
    staged = full_synth.outdir / common

    # Unbundled here; what the bundled layer holds (every module with its bytecode, no caches or
    # install metadata) is tests/infra/test_infra_bundling.py's.
    assert staged.resolve() == REPO_ROOT / "layers" / "common"
    assert (staged / "python" / "finops_guard").is_dir()
