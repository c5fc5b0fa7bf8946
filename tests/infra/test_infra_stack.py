"""Exact properties of the synthesized FinOps Guard stack (bundling skipped)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    chargeback_bucket_id,
    dlq_id_of,
    export_bucket_id,
    function_of,
    layer_id,
    log_group_id_of,
    only_invoke_and_park,
    policy_statements_of_role,
    queue_id_of,
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


def dlq_id(synth: Synth) -> str:
    return dlq_id_of(synth, "weekly-report")


def log_group_id(synth: Synth) -> str:
    return log_group_id_of(synth, "weekly-report")


def ops_topic_id(synth: Synth) -> str:
    return topic_id_of(synth, "ops-alarms")


def outbox_table_id(synth: Synth) -> str:
    return table_id_of(synth, "outbox")


# --- stack ------------------------------------------------------------------------------------


def test_stack_is_named_after_the_stage(full_synth: Synth, default_synth: Synth) -> None:
    assert full_synth.stack.stack_name == "FinOpsGuard-qa"
    assert default_synth.stack.stack_name == "FinOpsGuard-dev"


def test_default_cdk_json_context_synthesizes_a_utc_weekly_schedule(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {"ScheduleExpression": "cron(0 8 ? * MON *)", "ScheduleExpressionTimezone": "UTC"},
    )


# --- schedule ---------------------------------------------------------------------------------


def test_schedule_runs_the_report_in_the_configured_time_zone(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    schedule_input = Capture()

    full_synth.template.has_resource_properties(
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
                "DeadLetterConfig": {"Arn": arn_of(dlq_id(full_synth))},
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
    assert policy_statements_of_role(full_synth, role_id) == only_invoke_and_park(
        full_synth, "weekly-report", "InvokeWeeklyReport"
    )
    assert "ManagedPolicyArns" not in role


# --- function ---------------------------------------------------------------------------------


def test_report_function_runs_arm64_python_3_14_with_explicit_limits(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-weekly-report",
            "Architectures": ["arm64"],
            "Runtime": "python3.14",
            "Handler": "handler.lambda_handler",
            "Timeout": 120,
            "MemorySize": 256,
            "DeadLetterConfig": {"TargetArn": arn_of(dlq_id(full_synth))},
            "LoggingConfig": {"LogGroup": ref(log_group_id(full_synth))},
        },
    )
    full_synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": ref(function_id), "MaximumRetryAttempts": 2, "Qualifier": "$LATEST"},
    )


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
        "FINOPSGUARD_OUTBOX_TABLE": ref(outbox_table_id(full_synth)),
        "FINOPSGUARD_BUDGETS_TABLE": ref(table_id_of(full_synth, "budgets")),
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": ref(table_id_of(full_synth, "budget-alerts")),
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_SECRET_PREFIX": "finops-guard/qa/teams/",
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": ref(table_id_of(full_synth, "recommendations")),
        "FINOPSGUARD_ANOMALY_MONITOR_SINCE": {
            "Fn::GetAtt": [full_synth.only("Custom::AnomalyServicesMonitor")[0], "Since"]
        },
        "POWERTOOLS_SERVICE_NAME": "weekly-report",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
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
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn_of(dlq_id(full_synth))},
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
            "Resource": Match.array_equals([ref(secret_id(full_synth, "slack")), ref(secret_id(full_synth, "teams"))]),
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": arn_of(outbox_table_id(full_synth)),
        },
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
        read_team_webhook_secrets("qa"),
        {
            "Sid": "ReadRecommendations",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": arn_of(table_id_of(full_synth, "recommendations")),
        },
    ]
    full_synth.template.has_resource_properties(
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

    assert function["Layers"] == [
        ref(layer_id(full_synth, "common")),
        ref(layer_id(full_synth, "report-deps")),
    ]
    assert len(full_synth.resources("AWS::Lambda::LayerVersion")) == 3  # common, report-deps, billing-deps


def test_layers_target_python_3_14_on_arm64(full_synth: Synth) -> None:
    for layer in full_synth.resources("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_assets_are_the_eleven_handlers_and_the_three_layers(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa.assets.json")
    sources = sorted(
        asset["displayName"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if "displayName" in asset
    )

    assert [s for s in sources if "Code" in s] == [
        "Anomalies/AnomalyAlerts/Function/Code",
        "Attribution/Chargeback/Function/Code",
        "BillingApi/BillingNotifier/Function/Code",
        "BillingApi/StripeWebhook/Function/Code",
        "BillingJobs/BillingAdmin/Function/Code",
        "BillingJobs/DunningSender/Function/Code",
        "BillingJobs/Reconciliation/Function/Code",
        "Budgets/BudgetGuard/Function/Code",
        "CostReports/WeeklyReport/Function/Code",
        "DeploySetup/Function/Code",
        "Layers/BillingDeps/Code",
        "Layers/Common/Code",
        "Layers/ReportDeps/Code",
        "Savings/SavingsRefresh/Function/Code",
    ]


# --- alarms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "namespace", "metric", "statistic", "comparison", "threshold"),
    [
        ("Errors", "AWS/Lambda", "Errors", "Sum", "GreaterThanOrEqualToThreshold", 1),
        ("Throttles", "AWS/Lambda", "Throttles", "Sum", "GreaterThanOrEqualToThreshold", 1),
        ("Duration", "AWS/Lambda", "Duration", "Maximum", "GreaterThanThreshold", 96000),
        (
            "DeadLetters",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
        ),
    ],
)
def test_report_alarm_notifies_the_ops_topic(
    full_synth: Synth,
    suffix: str,
    namespace: str,
    metric: str,
    statistic: str,
    comparison: str,
    threshold: int,
) -> None:
    topic = ref(ops_topic_id(full_synth))
    function_id, _ = report_function(full_synth)
    dimension = (
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id(full_synth), "QueueName"]}}
        if namespace == "AWS/SQS"
        else {"Name": "FunctionName", "Value": ref(function_id)}
    )

    full_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"FinOpsGuard-qa-weekly-report-{suffix}",
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [dimension],
            "Statistic": statistic,
            "Period": 300,
            "EvaluationPeriods": 1,
            "ComparisonOperator": comparison,
            "Threshold": threshold,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
            "OKActions": [topic],
            "AlarmDescription": Match.any_value(),
        },
    )


def test_report_function_has_six_alarms_each_telling_on_call_what_to_do(full_synth: Synth) -> None:
    alarms = [
        alarm
        for alarm in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].startswith("FinOpsGuard-qa-weekly-report-")
    ]

    # The standard four, plus chat delivery failures and the weekly deadline (test_infra_monitoring.py).
    assert sorted(a["Properties"]["AlarmName"] for a in alarms) == [
        "FinOpsGuard-qa-weekly-report-ChatDeliveryFailures",
        "FinOpsGuard-qa-weekly-report-DeadLetters",
        "FinOpsGuard-qa-weekly-report-Duration",
        "FinOpsGuard-qa-weekly-report-Errors",
        "FinOpsGuard-qa-weekly-report-NotPosted",
        "FinOpsGuard-qa-weekly-report-Throttles",
    ]
    for alarm in alarms:
        assert "First:" in json.dumps(alarm["Properties"]["AlarmDescription"])


# --- ops topic and DLQ ------------------------------------------------------------------------


def test_ops_topic_is_encrypted_with_a_rotating_key_cloudwatch_can_use(full_synth: Synth) -> None:
    topic = full_synth.template_json["Resources"][ops_topic_id(full_synth)]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = full_synth.template_json["Resources"][key_id]

    assert topic["KmsMasterKeyId"] == arn_of(key_id)
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert {
        "Sid": "AllowCloudWatchAlarmsToPublish",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    } in key["Properties"]["KeyPolicy"]["Statement"]


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
    # Topics: ops, finance, cost anomalies. Queues: ten function DLQs and the anomaly inbox.
    assert len(resource_ids) == (3 if resource_type == "AWS::SNS::Topic" else 11)

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


@pytest.mark.parametrize(
    "function_name",
    [
        "weekly-report",
        "budget-guard",
        "anomaly-alerts",
        "chargeback",
        "savings-refresh",
        "stripe-webhook",
        "billing-notifier",
        "dunning-sender",
        "reconciliation",
        "billing-admin",
    ],
)
def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(full_synth: Synth, function_name: str) -> None:
    full_synth.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"finops-guard-qa-{function_name}-dlq",
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 14 * 24 * 3600,
        },
    )


# --- secrets and outbox -----------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_secrets_carry_no_value_in_the_template(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    for secret in synth.resources("AWS::SecretsManager::Secret").values():
        assert "SecretString" not in secret["Properties"]
        assert "put-secret-value --secret-id " + secret["Properties"]["Name"] in secret["Properties"]["Description"]
        assert secret["DeletionPolicy"] == "RetainExceptOnCreate"


def test_slack_secret_exists_only_when_slack_is_enabled(full_synth: Synth, default_synth: Synth) -> None:
    def names(synth: Synth) -> list[str]:
        return sorted(s["Properties"]["Name"] for s in synth.resources("AWS::SecretsManager::Secret").values())

    assert names(full_synth) == [
        "finops-guard/qa/finance-slack-webhook-url",
        "finops-guard/qa/finance-teams-webhook-url",
        "finops-guard/qa/slack-webhook-url",
        "finops-guard/qa/stripe-api-key",
        "finops-guard/qa/stripe-webhook-secret",
        "finops-guard/qa/teams-webhook-url",
    ]
    assert names(default_synth) == [
        "finops-guard/dev/finance-teams-webhook-url",
        "finops-guard/dev/stripe-api-key",
        "finops-guard/dev/stripe-webhook-secret",
        "finops-guard/dev/teams-webhook-url",
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


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::Lambda::Function",
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SecretsManager::Secret",
        "AWS::KMS::Key",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::S3::Bucket",
    ],
)
def test_every_taggable_resource_carries_the_cost_allocation_tags(full_synth: Synth, resource_type: str) -> None:
    resources = full_synth.resources(resource_type)
    assert resources

    for resource in resources.values():
        tags = {tag["Key"]: tag["Value"] for tag in resource["Properties"]["Tags"]}
        assert tags == EXPECTED_TAGS


def test_stack_outputs_name_what_operators_need(full_synth: Synth) -> None:
    function_id, _ = report_function(full_synth)
    guard_id, _ = function_of(full_synth, "budget-guard")

    outputs = dict(full_synth.template_json["Outputs"])
    assert "Fn::Join" in outputs.pop("StripeWebhookUrl")["Value"]  # exact value: test_infra_billing.py
    assert "Fn::Join" in outputs.pop("BillingAdminApiUrl")["Value"]  # exact value: test_infra_billing_jobs.py
    assert outputs == {
        "TeamsSecretName": {"Value": "finops-guard/qa/teams-webhook-url"},
        "SlackSecretName": {"Value": "finops-guard/qa/slack-webhook-url"},
        "OutboxTableName": {"Value": ref(outbox_table_id(full_synth))},
        "WeeklyReportFunctionName": {"Value": ref(function_id)},
        "OpsTopicArn": {"Value": ref(ops_topic_id(full_synth))},
        "BudgetsTableName": {"Value": ref(table_id_of(full_synth, "budgets"))},
        "BudgetAlertsTableName": {"Value": ref(table_id_of(full_synth, "budget-alerts"))},
        "BudgetGuardFunctionName": {"Value": ref(guard_id)},
        "FinanceTopicArn": {"Value": ref(topic_id_of(full_synth, "finance-alerts"))},
        "AnomalyTopicArn": {"Value": ref(topic_id_of(full_synth, "cost-anomalies"))},
        "AnomaliesTableName": {"Value": ref(table_id_of(full_synth, "anomalies"))},
        "AnomalyInboxQueueUrl": {"Value": ref(queue_id_of(full_synth, "anomaly-inbox"))},
        "AnomalyFunctionName": {"Value": ref(function_of(full_synth, "anomaly-alerts")[0])},
        "TeamRoutesTableName": {"Value": ref(table_id_of(full_synth, "team-routes"))},
        "ChargebackBucketName": {"Value": ref(chargeback_bucket_id(full_synth))},
        "ChargebackFunctionName": {"Value": ref(function_of(full_synth, "chargeback")[0])},
        "RecommendationsTableName": {"Value": ref(table_id_of(full_synth, "recommendations"))},
        "SavingsRefreshFunctionName": {"Value": ref(function_of(full_synth, "savings-refresh")[0])},
        "StripeSecretName": {"Value": "finops-guard/qa/stripe-webhook-secret"},
        "FinanceTeamsSecretName": {"Value": "finops-guard/qa/finance-teams-webhook-url"},
        "LedgerTableName": {"Value": ref(table_id_of(full_synth, "billing-ledger"))},
        "BillingAlertsTableName": {"Value": ref(table_id_of(full_synth, "billing-alerts"))},
        "DunningTableName": {"Value": ref(table_id_of(full_synth, "dunning"))},
        "StripeApiKeySecretName": {"Value": "finops-guard/qa/stripe-api-key"},
        "BillingExportBucketName": {"Value": ref(export_bucket_id(full_synth))},
    }


def test_default_stack_has_no_slack_output(default_synth: Synth) -> None:
    assert "SlackSecretName" not in default_synth.template_json["Outputs"]
    assert set(default_synth.template_json["Outputs"]) == {
        "TeamsSecretName",
        "OutboxTableName",
        "WeeklyReportFunctionName",
        "OpsTopicArn",
        "BudgetsTableName",
        "BudgetAlertsTableName",
        "BudgetGuardFunctionName",
        "FinanceTopicArn",
        "AnomalyTopicArn",
        "AnomaliesTableName",
        "AnomalyInboxQueueUrl",
        "AnomalyFunctionName",
        "TeamRoutesTableName",
        "ChargebackBucketName",
        "ChargebackFunctionName",
        "RecommendationsTableName",  # the table is always there; its refresh (and output) are opt-in
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


def test_common_layer_ships_the_library_without_build_leftovers(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa.assets.json")
    [common] = [
        asset["source"]["path"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if asset.get("displayName") == "Layers/Common/Code"
    ]
    staged = full_synth.outdir / common

    assert (staged / "python" / "finops_guard").is_dir()
    leftovers = [p for p in staged.rglob("*") if p.name == "__pycache__" or p.name.endswith((".pyc", ".egg-info"))]
    assert leftovers == []
