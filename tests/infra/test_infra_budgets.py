"""Exact properties of the budgets part of the stack: tables, budget guard, its schedule, finance topic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    assert_pages_only_through_the_stage_alarms,
    assert_parks_failed_async_events,
    failure_queue_ref,
    function_of,
    layer_id,
    layer_parameter_id,
    log_group_id_of,
    logical_id,
    outbox_arn,
    policy_statements_of_role,
    read_team_routes,
    ref,
    role_id_of,
    schedule_of,
    table_id_of,
    topic_id_of,
)
from policy_eval import PolicyEvaluator, role

pytestmark = pytest.mark.infra

GUARD = "budget-guard"
# What the costs stack imports from the core stack (qa: the full context's stage).
FAILURE_QUEUE = failure_queue_ref("qa")
AWS_MANAGED_SNS_KEY = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":kms:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":alias/aws/sns",
        ],
    ]
}


def guard_function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return function_of(synth, GUARD)


def finance_topic(synth: Synth) -> tuple[str, dict[str, Any]]:
    lid = topic_id_of(synth, "finance-alerts")
    return lid, synth.template_json["Resources"][lid]["Properties"]


def tags_of(synth: Synth, logical_id: str) -> dict[str, str]:
    resource = synth.template_json["Resources"][logical_id]
    return {tag["Key"]: tag["Value"] for tag in resource["Properties"]["Tags"]}


# --- tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "partition_key", "sort_key", "ttl", "protected"),
    [
        # The budgets are configuration (budgets.yaml applies them again); the alert history is not.
        ("budgets", "pk", "budget_id", Match.absent(), False),
        ("budget-alerts", "budget_id", "alert_key", {"AttributeName": "expires_at", "Enabled": True}, True),
    ],
)
def test_budget_tables_are_on_demand_recoverable_encrypted_and_retained_and_the_history_protected(
    full_synth: Synth, name: str, partition_key: str, sort_key: str, ttl: Any, protected: bool
) -> None:
    full_synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_equals(
                {
                    "TableName": f"finops-guard-qa-{name}",
                    "KeySchema": [
                        {"AttributeName": partition_key, "KeyType": "HASH"},
                        {"AttributeName": sort_key, "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": partition_key, "AttributeType": "S"},
                        {"AttributeName": sort_key, "AttributeType": "S"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "TimeToLiveSpecification": ttl,
                    "DeletionProtectionEnabled": protected,
                    "Tags": Match.any_value(),
                }
            ),
        },
    )


# --- budget guard function --------------------------------------------------------------------


def test_budget_guard_runs_arm64_python_3_13_for_up_to_five_minutes(full_synth: Synth) -> None:
    full_synth.costs.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-budget-guard",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": 300,
            "MemorySize": 512,
            "DeadLetterConfig": Match.absent(),  # failed async events go to the stage's failure queue
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, GUARD))},
        },
    )
    log_group = full_synth.template_json["Resources"][log_group_id_of(full_synth, GUARD)]
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_budget_guard_sends_failed_runs_to_the_stage_failure_queue_after_two_retries(full_synth: Synth) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.costs, GUARD)


def test_budget_guard_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = guard_function(full_synth)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",  # the core's table, by its fixed name
        "FINOPSGUARD_BUDGETS_TABLE": ref(table_id_of(full_synth, "budgets")),
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": ref(table_id_of(full_synth, "budget-alerts")),
        "FINOPSGUARD_ALERT_TOPIC_ARN": ref(topic_id_of(full_synth, "finance-alerts")),
        "FINOPSGUARD_EVENT_BUS_NAME": "default",
        "FINOPSGUARD_FORECAST_INTERVAL": "0.9",
        "FINOPSGUARD_COST_METRIC": "NetAmortizedCost",
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/qa/team-webhooks",
        "POWERTOOLS_SERVICE_NAME": "budget-guard",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_budget_guard_defaults_forecast_interval_and_has_no_slack_secret(default_synth: Synth) -> None:
    _, function = guard_function(default_synth)
    variables = function["Environment"]["Variables"]

    assert variables["FINOPSGUARD_FORECAST_INTERVAL"] == "0.8"
    assert variables["FINOPSGUARD_TIMEZONE"] == "UTC"
    assert "FINOPSGUARD_SLACK_SECRET_NAME" not in variables


def test_budget_guard_uses_exactly_the_core_common_and_report_deps_layers_through_ssm(full_synth: Synth) -> None:
    _, function = guard_function(full_synth)

    assert function["Layers"] == [
        ref(layer_parameter_id(full_synth, "common")),
        ref(layer_parameter_id(full_synth, "report-deps")),
    ]
    for name in ("common", "report-deps"):
        full_synth.core.template.has_resource_properties(
            "AWS::SSM::Parameter",
            {"Name": f"/finops-guard/qa/layers/{name}", "Type": "String", "Value": ref(layer_id(full_synth, name))},
        )


def test_budget_guard_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    role_id = role_id_of(full_synth, GUARD)
    finance_topic_id, _ = finance_topic(full_synth)

    assert policy_statements_of_role(full_synth, role_id) == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, GUARD)),
        },
        {"Sid": "ReportFailedEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": FAILURE_QUEUE},
        {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"},
        {
            "Sid": "ReadWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [
                {"Fn::ImportValue": "finops-guard-qa-slack-secret-arn"},
                {"Fn::ImportValue": "finops-guard-qa-teams-secret-arn"},
            ],
        },
        {
            "Sid": "ReadBudgets",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": arn_of(table_id_of(full_synth, "budgets")),
        },
        {
            "Sid": "TrackBudgetAlerts",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            "Resource": arn_of(table_id_of(full_synth, "budget-alerts")),
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": outbox_arn(full_synth),
        },
        # No kms statement: the AWS-managed key lets the account's principals use it through SNS.
        {"Sid": "FinanceAlertsPublish", "Effect": "Allow", "Action": "sns:Publish", "Resource": ref(finance_topic_id)},
        {
            "Sid": "PutBudgetEvents",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":events:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":event-bus/default",
                    ],
                ]
            },
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
    ]


def test_budget_guard_role_is_assumed_by_lambda_and_has_no_managed_policies(full_synth: Synth) -> None:
    role = full_synth.template_json["Resources"][role_id_of(full_synth, GUARD)]["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_budget_guard_waits_for_its_policy_not_redundantly_for_its_role(full_synth: Synth) -> None:
    function_id, _ = guard_function(full_synth)
    role_id = role_id_of(full_synth, GUARD)
    [policy_id] = [
        lid for lid, p in full_synth.resources("AWS::IAM::Policy").items() if ref(role_id) in p["Properties"]["Roles"]
    ]

    assert full_synth.template_json["Resources"][function_id]["DependsOn"] == [policy_id]


# --- schedule ---------------------------------------------------------------------------------


def test_budget_schedule_starts_the_guard_in_the_configured_time_zone(full_synth: Synth) -> None:
    function_id, _ = guard_function(full_synth)
    schedule_input = Capture()

    full_synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": "finops-guard-qa-budget-guard",
            "ScheduleExpression": "cron(30 7 ? * MON-FRI *)",
            "ScheduleExpressionTimezone": "Europe/Madrid",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": arn_of(function_id),
                "RoleArn": Match.any_value(),
                "Input": schedule_input,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": FAILURE_QUEUE},
            },
        },
    )
    assert json.loads(schedule_input.as_string()) == {
        "job": "budget-guard",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


def test_default_budget_schedule_is_daily_at_nine_utc(default_synth: Synth) -> None:
    _, schedule = schedule_of(default_synth, GUARD)

    assert schedule["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"


def test_budget_scheduler_role_may_only_invoke_the_guard_and_park_failed_events(full_synth: Synth) -> None:
    function_id, _ = guard_function(full_synth)
    _, schedule = schedule_of(full_synth, GUARD)
    role_id = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = full_synth.template_json["Resources"][role_id]["Properties"]
    _, report_schedule = schedule_of(full_synth, "weekly-report")

    assert role_id != report_schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
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
            "Sid": "InvokeBudgetGuard",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": arn_of(function_id),
        },
        # Only the stage's failure queue, where the schedule parks an event it could not deliver.
        {"Sid": "ParkUndeliveredEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": FAILURE_QUEUE},
    ]
    assert "ManagedPolicyArns" not in role


# --- finance topic ----------------------------------------------------------------------------


def test_finance_topic_is_encrypted_with_the_aws_managed_sns_key(full_synth: Synth) -> None:
    # Only this account's roles publish: the free alias/aws/sns key serves, no customer-managed key.
    topic_id, topic = finance_topic(full_synth)

    assert topic_id in full_synth.costs.template_json["Resources"]
    assert topic_id != topic_id_of(full_synth, "ops-alarms")
    assert {key: value for key, value in topic.items() if key != "Tags"} == {
        "TopicName": "finops-guard-qa-finance-alerts",
        "DisplayName": "FinOps Guard qa budget alerts",
        "KmsMasterKeyId": AWS_MANAGED_SNS_KEY,
    }
    for part in full_synth.parts:
        assert part.resources("AWS::KMS::Key") == {}
        assert part.resources("AWS::KMS::Alias") == {}


def test_only_the_budget_guard_role_may_publish_to_the_finance_topic(full_synth: Synth) -> None:
    policies = PolicyEvaluator(full_synth.template_json)
    topic = policies.topic_arn(finance_topic(full_synth)[0])
    tls = {"aws:SecureTransport": True}

    def may_publish(short_name: str) -> bool:
        principal = role(policies.arn(role_id_of(full_synth, short_name)))
        return bool(policies.is_allowed(principal, "sns:Publish", topic, tls))

    assert may_publish(GUARD)
    assert not may_publish("weekly-report")
    assert not may_publish("anomaly-alerts")


def test_finance_topic_refuses_requests_without_tls(full_synth: Synth) -> None:
    topic_id, _ = finance_topic(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [ref(topic_id)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_finance_email_subscription_only_when_configured(full_synth: Synth, default_synth: Synth) -> None:
    topic_id, _ = finance_topic(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "finance@example.com", "TopicArn": ref(topic_id)},
    )
    assert [
        s for s in default_synth.resources("AWS::SNS::Subscription").values() if s["Properties"]["Protocol"] == "email"
    ] == []


# --- alarms, tags -----------------------------------------------------------------------------


def test_budget_guard_has_no_alarms_of_its_own_and_its_chat_failures_page_through_the_stage_alarm(
    full_synth: Synth,
) -> None:
    assert_pages_only_through_the_stage_alarms(full_synth, "FinOpsGuard-qa-budget-guard")


def test_new_budget_resources_carry_the_cost_allocation_tags(full_synth: Synth) -> None:
    expected = {"Project": "FinOpsGuard", "Environment": "qa", "Owner": "cloud-platform", "CostCenter": "cc-4711"}
    finance_topic_id, _ = finance_topic(full_synth)
    resources = [
        table_id_of(full_synth, "budgets"),
        table_id_of(full_synth, "budget-alerts"),
        guard_function(full_synth)[0],
        role_id_of(full_synth, GUARD),
        log_group_id_of(full_synth, GUARD),
        finance_topic_id,
    ]

    for lid in resources:
        assert tags_of(full_synth, lid) == expected, lid
