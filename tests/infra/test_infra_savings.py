"""Exact properties of savings opportunities: the recommendations table (always there, the same resource
with savingsRecommendations on or off), the daily savings refresh (function, role, schedule, alarms), the
weekly report's savings reads and the Savings Plans KPI, and that nothing but the table exists while
switched off (the default)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    assert_parks_failed_async_events,
    failure_queue_ref,
    function_of,
    layer_parameter_id,
    log_group_id_of,
    policy_statements_of_role,
    queue_id_of,
    read_team_routes,
    ref,
    role_id_of,
    scheduler_role_id,
    stage_name,
    synthesize,
    table_id_of,
    topic_id_of,
)

pytestmark = pytest.mark.infra

REFRESH = "savings-refresh"
SAVINGS_SIDS = {"ReadRecommendations", "ReadSavingsPlansKpi", "ListCostOptimizationHubRecommendations"}
# The core stack's failure queue, as the costs stack imports it (qa: the full context's stage).
FAILURE_QUEUE = failure_queue_ref("qa")


@pytest.fixture(scope="module")
def recommendations_only_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Recommendations on with the default schedule; Savings Plans KPI and team routing off."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-recommendations-only"), {"savingsRecommendations": "true", "teamDimension": ""}
    )


def resource(synth: Synth, lid: str) -> dict[str, Any]:
    return synth.template_json["Resources"][lid]


def variables_of(synth: Synth, short_name: str) -> dict[str, Any]:
    return function_of(synth, short_name)[1]["Environment"]["Variables"]


def alarms_of(synth: Synth, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].startswith(prefix)
    }


def description_text(alarm: dict[str, Any]) -> str:
    description = alarm["AlarmDescription"]
    if isinstance(description, str):
        return description
    return "".join(part if isinstance(part, str) else "<token>" for part in description["Fn::Join"][1])


def names_of(synth: Synth, resource_type: str, name_property: str) -> list[str]:
    return [r["Properties"].get(name_property, "") for r in synth.resources(resource_type).values()]


def read_recommendations(synth: Synth) -> dict[str, Any]:
    return {
        "Sid": "ReadRecommendations",
        "Effect": "Allow",
        "Action": "dynamodb:Query",
        "Resource": arn_of(table_id_of(synth, "recommendations")),
    }


# --- switched off (the default) ---------------------------------------------------------------


def test_default_context_creates_the_recommendations_table_but_no_refresh_schedule_or_alarms(
    default_synth: Synth,
) -> None:
    assert table_id_of(default_synth, "recommendations")
    assert stage_name(default_synth, REFRESH) not in names_of(default_synth, "AWS::Lambda::Function", "FunctionName")
    assert stage_name(default_synth, REFRESH) not in names_of(default_synth, "AWS::Scheduler::Schedule", "Name")
    assert [
        config
        for config in default_synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if "SavingsRefresh" in config["Properties"]["FunctionName"]["Ref"]
    ] == []
    assert alarms_of(default_synth, "FinOpsGuard-dev-savings-refresh-") == {}


def test_default_outputs_name_the_recommendations_table_but_no_refresh(default_synth: Synth) -> None:
    outputs = default_synth.template_json["Outputs"]

    assert outputs["RecommendationsTableName"] == {"Value": ref(table_id_of(default_synth, "recommendations"))}
    assert "SavingsRefreshFunctionName" not in outputs


def test_default_weekly_report_gets_no_savings_settings_or_grants(default_synth: Synth) -> None:
    variables = variables_of(default_synth, "weekly-report")
    statements = policy_statements_of_role(default_synth, role_id_of(default_synth, "weekly-report"))

    assert not {"FINOPSGUARD_RECOMMENDATIONS_TABLE", "FINOPSGUARD_SAVINGS_PLANS_KPI"} & set(variables)
    assert not SAVINGS_SIDS & {s.get("Sid") for s in statements}
    assert not [s for s in statements if "Savings" in json.dumps(s["Action"])]


def test_no_role_may_touch_the_recommendations_table_by_default(default_synth: Synth) -> None:
    """Only the operator CLI (its own credentials) uses the table while the refresh is off."""
    table_id = table_id_of(default_synth, "recommendations")
    policies = json.dumps([p["Properties"] for p in default_synth.resources("AWS::IAM::Policy").values()])

    assert table_id not in policies


def test_no_role_may_call_cost_optimization_hub_by_default(default_synth: Synth) -> None:
    policies = json.dumps([p["Properties"] for p in default_synth.resources("AWS::IAM::Policy").values()])

    assert "cost-optimization-hub:" not in policies


# --- recommendations table --------------------------------------------------------------------


@pytest.mark.parametrize(("synth_name", "stage"), [("default_synth", "dev"), ("full_synth", "qa")])
def test_recommendations_table_is_keyed_by_partition_and_id_on_demand_recoverable_encrypted_and_retained(
    synth_name: str, stage: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    table = resource(synth, table_id_of(synth, "recommendations"))

    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert {key: value for key, value in table["Properties"].items() if key != "Tags"} == {
        "TableName": f"finops-guard-{stage}-recommendations",
        "DeletionProtectionEnabled": False,  # a copy of Cost Optimization Hub's, rebuilt daily
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }


def test_switching_recommendations_on_and_off_keeps_the_same_table_resource(
    default_synth: Synth, recommendations_only_synth: Synth
) -> None:
    """Same logical id and properties either way: toggling the switch never replaces, deletes or re-creates
    the retained, fixed-name table (re-creating it would fail: the retained table already exists)."""
    off_id = table_id_of(default_synth, "recommendations")
    on_id = table_id_of(recommendations_only_synth, "recommendations")

    assert off_id == on_id
    assert resource(default_synth, off_id) == resource(recommendations_only_synth, on_id)


def test_stack_outputs_name_the_recommendations_table_and_the_refresh(full_synth: Synth) -> None:
    outputs = full_synth.template_json["Outputs"]

    assert outputs["RecommendationsTableName"] == {"Value": ref(table_id_of(full_synth, "recommendations"))}
    assert outputs["SavingsRefreshFunctionName"] == {"Value": ref(function_of(full_synth, REFRESH)[0])}


# --- savings refresh function -----------------------------------------------------------------


def test_refresh_runs_arm64_python_3_13_for_up_to_five_minutes_with_the_report_layers(full_synth: Synth) -> None:
    function_id, function = function_of(full_synth, REFRESH)

    assert function_id in full_synth.costs.template_json["Resources"]
    assert {
        key: function.get(key) for key in ("Architectures", "Runtime", "Handler", "Timeout", "MemorySize", "Layers")
    } == {
        "Architectures": ["arm64"],
        "Runtime": "python3.13",
        "Handler": "handler.lambda_handler",
        "Timeout": 300,
        "MemorySize": 256,
        # The core's layers, whose current versions the costs stack reads from SSM.
        "Layers": [ref(layer_parameter_id(full_synth, "common")), ref(layer_parameter_id(full_synth, "report-deps"))],
    }
    assert "DeadLetterConfig" not in function  # failed runs go to the stage's failure queue
    assert function["LoggingConfig"] == {"LogGroup": ref(log_group_id_of(full_synth, REFRESH))}
    assert resource(full_synth, log_group_id_of(full_synth, REFRESH))["Properties"]["RetentionInDays"] == 30


def test_refresh_sends_failed_runs_to_the_stage_failure_queue_after_two_retries(full_synth: Synth) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.costs, REFRESH)


def test_refresh_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    assert variables_of(full_synth, REFRESH) == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": ref(table_id_of(full_synth, "recommendations")),
        "FINOPSGUARD_COST_METRIC": "NetAmortizedCost",
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/qa/team-webhooks",
        "POWERTOOLS_SERVICE_NAME": "savings-refresh",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_refresh_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    assert policy_statements_of_role(full_synth, role_id_of(full_synth, REFRESH)) == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, REFRESH)),
        },
        {"Sid": "ReportFailedEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": FAILURE_QUEUE},
        {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"},
        {
            "Sid": "ListCostOptimizationHubRecommendations",
            "Effect": "Allow",
            "Action": ["cost-optimization-hub:GetRecommendation", "cost-optimization-hub:ListRecommendations"],
            "Resource": "*",
        },
        {
            "Sid": "TrackRecommendations",
            "Effect": "Allow",
            "Action": ["dynamodb:Query", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "recommendations")),
        },
        read_team_routes(full_synth),
    ]


def test_refresh_with_team_routing_off_gets_the_dimensions_but_no_routes(recommendations_only_synth: Synth) -> None:
    synth = recommendations_only_synth
    variables = variables_of(synth, REFRESH)
    statements = policy_statements_of_role(synth, role_id_of(synth, REFRESH))

    assert variables["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"] == "tag:Team,tag:CostCenter"
    assert not [name for name in variables if name.startswith("FINOPSGUARD_TEAM_")]
    assert [s["Sid"] for s in statements if "Sid" in s] == [
        "WriteOwnLogs",
        "ReportFailedEvents",
        "ReadCostAndUsage",
        "ListCostOptimizationHubRecommendations",
        "TrackRecommendations",
    ]


def test_refresh_role_is_assumed_by_lambda_and_has_no_managed_policies(full_synth: Synth) -> None:
    role = resource(full_synth, role_id_of(full_synth, REFRESH))["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_refresh_code_is_the_savings_refresh_folder(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa-Costs.assets.json")
    [source] = [
        asset["source"]["path"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if asset.get("displayName") == "Savings/SavingsRefresh/Function/Code"
    ]
    staged = full_synth.outdir / source

    assert (staged / "handler.py").is_file()
    assert list(staged.rglob("__pycache__")) == []


# --- schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synth_name", "expression", "timezone"),
    [
        ("recommendations_only_synth", "cron(30 5 * * ? *)", "UTC"),
        ("full_synth", "cron(0 4 * * ? *)", "Europe/Madrid"),
    ],
)
def test_refresh_runs_daily_in_the_report_time_zone(
    synth_name: str, expression: str, timezone: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    schedule_input = Capture()

    synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": f"finops-guard-{synth.stack.config.stage}-savings-refresh",
            "Description": "Runs the daily savings refresh",
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": arn_of(function_of(synth, REFRESH)[0]),
                "RoleArn": Match.any_value(),
                "Input": schedule_input,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": failure_queue_ref(synth)},
            },
        },
    )
    assert json.loads(schedule_input.as_string()) == {
        "job": "savings-refresh",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


def test_refresh_scheduler_role_may_only_invoke_it_and_park_failed_events(full_synth: Synth) -> None:
    role_id = scheduler_role_id(full_synth, REFRESH)

    assert policy_statements_of_role(full_synth, role_id) == [
        {
            "Sid": "InvokeSavingsRefresh",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": arn_of(function_of(full_synth, REFRESH)[0]),
        },
        # Only the stage's failure queue, where the schedule parks an event it could not deliver.
        {"Sid": "ParkUndeliveredEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": FAILURE_QUEUE},
    ]


# --- alarms -----------------------------------------------------------------------------------


def test_refresh_has_no_alarms_of_its_own_as_its_failures_page_through_the_failure_queue(full_synth: Synth) -> None:
    # It posts nothing (no chat delivery to watch); a failed run is an invocation record in the
    # failure queue, which the core's one Failures alarm watches.
    assert alarms_of(full_synth, "FinOpsGuard-qa-savings-refresh") == {}
    full_synth.core.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "FinOpsGuard-qa-Failures",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id_of(full_synth, "failures"), "QueueName"]}}
            ],
            "AlarmActions": [ref(topic_id_of(full_synth, "ops-alarms"))],
        },
    )


# --- the weekly report's savings section and Savings Plans KPI --------------------------------


def test_weekly_report_may_query_the_recommendations_and_read_the_savings_plans_kpi(full_synth: Synth) -> None:
    variables = variables_of(full_synth, "weekly-report")
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, "weekly-report"))

    assert variables["FINOPSGUARD_RECOMMENDATIONS_TABLE"] == ref(table_id_of(full_synth, "recommendations"))
    assert variables["FINOPSGUARD_SAVINGS_PLANS_KPI"] == "true"
    assert read_recommendations(full_synth) in statements
    assert {
        "Sid": "ReadSavingsPlansKpi",
        "Effect": "Allow",
        "Action": ["ce:GetSavingsPlansCoverage", "ce:GetSavingsPlansUtilization"],
        "Resource": "*",
    } in statements


def test_recommendations_without_the_kpi_give_the_weekly_report_only_the_table_query(
    recommendations_only_synth: Synth,
) -> None:
    synth = recommendations_only_synth
    variables = variables_of(synth, "weekly-report")
    statements = policy_statements_of_role(synth, role_id_of(synth, "weekly-report"))

    assert variables["FINOPSGUARD_RECOMMENDATIONS_TABLE"] == ref(table_id_of(synth, "recommendations"))
    assert "FINOPSGUARD_SAVINGS_PLANS_KPI" not in variables
    assert statements[-1] == read_recommendations(synth)
    assert [s for s in statements if "Savings" in json.dumps(s["Action"])] == []


def test_only_the_weekly_report_and_the_refresh_may_touch_the_recommendations(full_synth: Synth) -> None:
    table_arn = arn_of(table_id_of(full_synth, "recommendations"))
    readers = sorted(
        role_id
        for role_id in full_synth.resources("AWS::IAM::Role")
        for policy in full_synth.resources("AWS::IAM::Policy").values()
        if ref(role_id) in policy["Properties"]["Roles"]
        and any(s["Resource"] == table_arn for s in policy["Properties"]["PolicyDocument"]["Statement"])
    )

    assert readers == sorted(role_id_of(full_synth, name) for name in ("weekly-report", REFRESH))
