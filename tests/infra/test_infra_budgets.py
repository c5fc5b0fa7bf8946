"""Exact properties of the budgets part of the stack: tables, budget guard, its schedule, finance topic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    dlq_id_of,
    function_of,
    layer_id,
    log_group_id_of,
    only_invoke_and_park,
    policy_statements_of_role,
    read_team_routes,
    read_team_webhook_secrets,
    ref,
    role_id_of,
    schedule_of,
    secret_id,
    table_id_of,
    topic_id_of,
)

pytestmark = pytest.mark.infra

GUARD = "budget-guard"


def guard_function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return function_of(synth, GUARD)


def finance_topic(synth: Synth) -> tuple[str, dict[str, Any]]:
    lid = topic_id_of(synth, "finance-alerts")
    return lid, synth.template_json["Resources"][lid]["Properties"]


def finance_key_id(synth: Synth) -> str:
    return finance_topic(synth)[1]["KmsMasterKeyId"]["Fn::GetAtt"][0]


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


def test_budget_guard_runs_arm64_python_3_14_for_up_to_five_minutes(full_synth: Synth) -> None:
    function_id, _ = guard_function(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-budget-guard",
            "Architectures": ["arm64"],
            "Runtime": "python3.14",
            "Handler": "handler.lambda_handler",
            "Timeout": 300,
            "MemorySize": 512,
            "DeadLetterConfig": {"TargetArn": arn_of(dlq_id_of(full_synth, GUARD))},
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, GUARD))},
        },
    )
    full_synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": ref(function_id), "MaximumRetryAttempts": 2, "Qualifier": "$LATEST"},
    )
    log_group = full_synth.template_json["Resources"][log_group_id_of(full_synth, GUARD)]
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_budget_guard_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = guard_function(full_synth)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": ref(table_id_of(full_synth, "outbox")),
        "FINOPSGUARD_BUDGETS_TABLE": ref(table_id_of(full_synth, "budgets")),
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": ref(table_id_of(full_synth, "budget-alerts")),
        "FINOPSGUARD_ALERT_TOPIC_ARN": ref(topic_id_of(full_synth, "finance-alerts")),
        "FINOPSGUARD_EVENT_BUS_NAME": "default",
        "FINOPSGUARD_FORECAST_INTERVAL": "0.9",
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_SECRET_PREFIX": "finops-guard/qa/teams/",
        "POWERTOOLS_SERVICE_NAME": "budget-guard",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_budget_guard_defaults_forecast_interval_and_has_no_slack_secret(default_synth: Synth) -> None:
    _, function = guard_function(default_synth)
    variables = function["Environment"]["Variables"]

    assert variables["FINOPSGUARD_FORECAST_INTERVAL"] == "0.8"
    assert variables["FINOPSGUARD_TIMEZONE"] == "UTC"
    assert "FINOPSGUARD_SLACK_SECRET_NAME" not in variables


def test_budget_guard_uses_exactly_the_common_and_report_deps_layers(full_synth: Synth) -> None:
    _, function = guard_function(full_synth)

    assert function["Layers"] == [
        ref(layer_id(full_synth, "common")),
        ref(layer_id(full_synth, "report-deps")),
    ]


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
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn_of(dlq_id_of(full_synth, GUARD))},
        {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"},
        {
            "Sid": "ReadWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [ref(secret_id(full_synth, "slack")), ref(secret_id(full_synth, "teams"))],
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
            "Resource": arn_of(table_id_of(full_synth, "outbox")),
        },
        {"Sid": "FinanceAlertsPublish", "Effect": "Allow", "Action": "sns:Publish", "Resource": ref(finance_topic_id)},
        {
            "Sid": "FinanceAlertsEncrypt",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": arn_of(finance_key_id(full_synth)),
        },
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
        read_team_webhook_secrets("qa"),
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
                "DeadLetterConfig": {"Arn": arn_of(dlq_id_of(full_synth, GUARD))},
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
    assert policy_statements_of_role(full_synth, role_id) == only_invoke_and_park(
        full_synth, GUARD, "InvokeBudgetGuard"
    )
    assert "ManagedPolicyArns" not in role


# --- finance topic ----------------------------------------------------------------------------


def test_finance_topic_is_encrypted_with_its_own_rotating_key(full_synth: Synth) -> None:
    topic_id, topic = finance_topic(full_synth)
    key = full_synth.template_json["Resources"][finance_key_id(full_synth)]

    assert topic["TopicName"] == "finops-guard-qa-finance-alerts"
    assert topic["KmsMasterKeyId"] == arn_of(finance_key_id(full_synth))
    assert topic_id != topic_id_of(full_synth, "ops-alarms")
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    full_synth.template.has_resource_properties(
        "AWS::KMS::Alias",
        {"AliasName": "alias/finops-guard-qa-finance-alerts", "TargetKeyId": arn_of(finance_key_id(full_synth))},
    )


def test_finance_key_lets_account_iam_policies_grant_use_and_no_service_principal(full_synth: Synth) -> None:
    # The guard's role publishes through its own IAM statement; the key policy must delegate to IAM.
    statements = full_synth.template_json["Resources"][finance_key_id(full_synth)]["Properties"]["KeyPolicy"][
        "Statement"
    ]

    assert statements == [
        {
            "Action": "kms:*",
            "Effect": "Allow",
            "Principal": {
                "AWS": {
                    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]
                }
            },
            "Resource": "*",
        }
    ]


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


def test_budget_guard_has_the_four_standard_alarms_and_chat_failures_paging_the_ops_topic(full_synth: Synth) -> None:
    ops_topic = ref(topic_id_of(full_synth, "ops-alarms"))
    alarms = {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].startswith("FinOpsGuard-qa-budget-guard-")
    }

    assert sorted(alarms) == [
        "FinOpsGuard-qa-budget-guard-ChatDeliveryFailures",
        "FinOpsGuard-qa-budget-guard-DeadLetters",
        "FinOpsGuard-qa-budget-guard-Duration",
        "FinOpsGuard-qa-budget-guard-Errors",
        "FinOpsGuard-qa-budget-guard-Throttles",
    ]
    assert alarms["FinOpsGuard-qa-budget-guard-Duration"]["Threshold"] == 240000  # 80 % of 300 s
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [ops_topic]
        assert alarm["OKActions"] == [ops_topic]
        assert "First:" in json.dumps(alarm["AlarmDescription"])


def test_new_budget_resources_carry_the_cost_allocation_tags(full_synth: Synth) -> None:
    expected = {"Project": "FinOpsGuard", "Environment": "qa", "Owner": "cloud-platform", "CostCenter": "cc-4711"}
    finance_topic_id, _ = finance_topic(full_synth)
    resources = [
        table_id_of(full_synth, "budgets"),
        table_id_of(full_synth, "budget-alerts"),
        guard_function(full_synth)[0],
        role_id_of(full_synth, GUARD),
        log_group_id_of(full_synth, GUARD),
        dlq_id_of(full_synth, GUARD),
        finance_topic_id,
        finance_key_id(full_synth),
    ]

    for logical_id in resources:
        assert tags_of(full_synth, logical_id) == expected, logical_id
