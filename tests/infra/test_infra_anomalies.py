"""Exact properties of cost anomaly forwarding: monitors, subscription, topic, inbox, function, alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from conftest import (
    REPO_ROOT,
    Synth,
    arn_of,
    assert_parks_failed_async_events,
    exported_by_core,
    failure_queue_ref,
    function_of,
    layer_parameter_id,
    log_group_id_of,
    logical_id,
    ops_topic_ref,
    outbox_arn,
    policy_statements_of_role,
    queue_id_of,
    read_team_routes,
    ref,
    role_id_of,
    role_policy_id,
    synthesize,
    table_id_of,
    tls_only_publish_deny,
    topic_id_of,
)
from policy_eval import ACCOUNT, OTHER_ACCOUNT, Decision, PolicyEvaluator, service

from infra.costs.anomalies import threshold_expression

pytestmark = pytest.mark.infra

ALERTS = "anomaly-alerts"
EXISTING_MONITOR = "arn:aws:ce::123456789012:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef"
OTHER_MONITOR = "arn:aws:ce::123456789012:anomalymonitor/0f0e0d0c-aaaa-4bbb-8ccc-123456789abc"
THIS_ACCOUNT = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
EXPECTED_TAGS = {"Project": "FinOpsGuard", "Environment": "qa", "Owner": "cloud-platform", "CostCenter": "cc-4711"}
# What the costs stack imports from the core stack (qa: the full context's stage).
OPS_TOPIC = ops_topic_ref("qa")
FAILURE_QUEUE = failure_queue_ref("qa")
COST_ANOMALY_DETECTION = service("costalerts.amazonaws.com")
TLS = {"aws:SecureTransport": True}


@pytest.fixture(scope="module")
def existing_monitors_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The account already has a services monitor: subscribe existing ones, alert on percentage only."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-existing-monitors"),
        {
            "anomalyServiceMonitor": "false",
            "anomalyMonitorArns": f"{EXISTING_MONITOR},{OTHER_MONITOR}",
            "anomalyThresholdAbsolute": "null",
            "anomalyThresholdPercent": "15",
        },
    )


def resource(synth: Synth, lid: str) -> dict[str, Any]:
    return synth.template_json["Resources"][lid]


def anomaly_topic_id(synth: Synth) -> str:
    return topic_id_of(synth, "cost-anomalies")


def inbox_id(synth: Synth) -> str:
    return queue_id_of(synth, "anomaly-inbox")


def rule_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::Events::Rule", "Name", f"finops-guard-{synth.stack.config.stage}-anomaly-detected")


def subscription(synth: Synth) -> dict[str, Any]:
    _, found = synth.only("AWS::CE::AnomalySubscription")
    return found


def monitors_by_name(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        found["Properties"]["MonitorName"]: (lid, found["Properties"])
        for lid, found in synth.resources("AWS::CE::AnomalyMonitor").items()
    }


def absolute_at_least(value: str) -> dict[str, Any]:
    return {
        "Dimensions": {
            "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
            "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
            "Values": [value],
        }
    }


def percent_at_least(value: str) -> dict[str, Any]:
    return {
        "Dimensions": {
            "Key": "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
            "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
            "Values": [value],
        }
    }


def tags_of(synth: Synth, lid: str, property_name: str = "Tags") -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource(synth, lid)["Properties"][property_name]}


# --- anomalies table --------------------------------------------------------------------------


def test_anomalies_table_is_on_demand_recoverable_encrypted_expiring_retained_and_protected(
    full_synth: Synth,
) -> None:
    # The alert history (which anomalies were forwarded, and how large): deletion protection on.
    full_synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_equals(
                {
                    "TableName": "finops-guard-qa-anomalies",
                    "KeySchema": [{"AttributeName": "anomaly_id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "anomaly_id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "DeletionProtectionEnabled": True,
                    "Tags": Match.any_value(),
                }
            ),
        },
    )


# --- topic and key ----------------------------------------------------------------------------


def test_anomaly_topic_is_unencrypted_as_cost_anomaly_detection_publishes_to_it(full_synth: Synth) -> None:
    # The free AWS-managed key cannot admit a service principal and a customer-managed key costs $1 a
    # month: no key at all, in any stack.
    topic = resource(full_synth, anomaly_topic_id(full_synth))

    assert anomaly_topic_id(full_synth) in full_synth.costs.template_json["Resources"]
    assert {key: value for key, value in topic["Properties"].items() if key != "Tags"} == {
        "TopicName": "finops-guard-qa-cost-anomalies",
        "DisplayName": "FinOps Guard qa cost anomalies",
    }
    for part in full_synth.parts:
        assert part.resources("AWS::KMS::Key") == {}
        assert part.resources("AWS::KMS::Alias") == {}


def test_topic_policy_lets_only_cost_anomaly_detection_of_this_account_publish_over_tls(full_synth: Synth) -> None:
    topic = ref(anomaly_topic_id(full_synth))

    full_synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [topic],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    tls_only_publish_deny(topic),
                    {
                        "Sid": "AllowCostAnomalyDetectionToPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "costalerts.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic,
                        "Condition": THIS_ACCOUNT,
                    },
                ],
            },
        },
    )


def test_cost_anomaly_detection_may_publish_to_the_topic_for_this_account_over_tls_only(full_synth: Synth) -> None:
    # Evaluated as AWS does: the topic statement alone admits the service (no key is in the path).
    policies = PolicyEvaluator(full_synth.template_json)
    topic = policies.topic_arn(anomaly_topic_id(full_synth))

    def publish(context: dict[str, Any]) -> Any:
        return policies.is_allowed(COST_ANOMALY_DETECTION, "sns:Publish", topic, context)

    assert publish({"aws:SourceAccount": ACCOUNT} | TLS)
    assert not publish({"aws:SourceAccount": OTHER_ACCOUNT} | TLS)
    assert not publish(TLS)
    assert publish({"aws:SourceAccount": ACCOUNT, "aws:SecureTransport": False}).decision is Decision.EXPLICIT_DENY


# --- Cost Anomaly Detection -------------------------------------------------------------------


def services_monitor(synth: Synth) -> tuple[str, dict]:
    return synth.only("Custom::AnomalyServicesMonitor")


def test_default_context_adopts_or_creates_the_services_monitor_through_a_custom_resource(
    default_synth: Synth,
) -> None:
    # One AWS-services monitor per account: a CfnAnomalyMonitor would fail where one exists already.
    assert default_synth.resources("AWS::CE::AnomalyMonitor") == {}
    _, monitor = services_monitor(default_synth)

    # The costs stack's own setup function (not the billing stack's): deploying costs alone works.
    assert monitor["Properties"]["ServiceToken"] == arn_of(function_of(default_synth, "costs-setup")[0])
    assert monitor["Properties"]["MonitorName"] == "finops-guard-dev-services"
    assert monitor["Properties"]["Tags"] == {
        "Project": "FinOpsGuard",
        "Environment": "dev",
        "Owner": "platform-team",
        "CostCenter": "finops",
    }


def test_default_subscription_sends_immediate_alerts_of_100_or_more_to_the_topic(default_synth: Synth) -> None:
    service_monitor_id, _ = services_monitor(default_synth)
    found = subscription(default_synth)
    properties = found["Properties"]

    assert properties["SubscriptionName"] == "finops-guard-dev-immediate"
    assert properties["Frequency"] == "IMMEDIATE"
    assert properties["Subscribers"] == [{"Type": "SNS", "Address": ref(anomaly_topic_id(default_synth))}]
    assert properties["MonitorArnList"] == [{"Fn::GetAtt": [service_monitor_id, "MonitorArn"]}]
    assert json.loads(properties["ThresholdExpression"]) == absolute_at_least("100")
    assert "Threshold" not in properties  # the deprecated numeric threshold


def test_weekly_report_learns_when_the_services_monitor_began(default_synth: Synth) -> None:
    service_monitor_id, _ = services_monitor(default_synth)
    [report] = [
        f
        for f in default_synth.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == "finops-guard-dev-weekly-report"
    ]

    assert report["Properties"]["Environment"]["Variables"]["FINOPSGUARD_ANOMALY_MONITOR_SINCE"] == {
        "Fn::GetAtt": [service_monitor_id, "Since"]
    }


def test_subscription_waits_for_the_topic_policy(default_synth: Synth) -> None:
    [policy_id] = [
        lid
        for lid, policy in default_synth.resources("AWS::SNS::TopicPolicy").items()
        if policy["Properties"]["Topics"] == [ref(anomaly_topic_id(default_synth))]
    ]

    assert subscription(default_synth)["DependsOn"] == [policy_id]


def test_full_options_create_custom_monitors_with_exact_specifications(full_synth: Synth) -> None:
    monitors = {name: properties for name, (_, properties) in monitors_by_name(full_synth).items()}

    assert sorted(monitors) == [
        "finops-guard-qa-cost-category",
        "finops-guard-qa-linked-accounts",
        "finops-guard-qa-tag",
    ]
    specifications = {
        name: json.loads(properties["MonitorSpecification"])
        for name, properties in monitors.items()
        if properties["MonitorType"] == "CUSTOM"
    }
    assert specifications == {
        "finops-guard-qa-linked-accounts": {
            "Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111111111111", "222222222222"]}
        },
        "finops-guard-qa-tag": {"Tags": {"Key": "team", "Values": ["data", "ml"]}},
        "finops-guard-qa-cost-category": {"CostCategories": {"Key": "Product", "Values": ["search", "analytics"]}},
    }
    for name in specifications:
        assert "MonitorDimension" not in monitors[name]


def test_full_options_subscription_covers_created_and_existing_monitors(full_synth: Synth) -> None:
    monitor_ids = {name: lid for name, (lid, _) in monitors_by_name(full_synth).items()}
    monitor_ids["finops-guard-qa-services"] = services_monitor(full_synth)[0]

    assert subscription(full_synth)["Properties"]["MonitorArnList"] == [
        {"Fn::GetAtt": [monitor_ids[f"finops-guard-qa-{name}"], "MonitorArn"]}
        for name in ("services", "linked-accounts", "tag", "cost-category")
    ] + [EXISTING_MONITOR]


def test_full_options_threshold_requires_both_absolute_and_percentage(full_synth: Synth) -> None:
    expression = json.loads(subscription(full_synth)["Properties"]["ThresholdExpression"])

    assert expression == {"And": [absolute_at_least("250"), percent_at_least("40")]}


def test_existing_monitors_replace_the_service_monitor(existing_monitors_synth: Synth) -> None:
    properties = subscription(existing_monitors_synth)["Properties"]

    assert existing_monitors_synth.resources("AWS::CE::AnomalyMonitor") == {}
    assert existing_monitors_synth.resources("Custom::AnomalyServicesMonitor") == {}
    assert properties["MonitorArnList"] == [EXISTING_MONITOR, OTHER_MONITOR]
    assert json.loads(properties["ThresholdExpression"]) == percent_at_least("15")


@pytest.mark.parametrize(
    ("absolute", "percent", "match", "expected"),
    [
        ("100", None, "any", absolute_at_least("100")),
        (None, "12.5", "all", percent_at_least("12.5")),
        ("100", "20", "any", {"Or": [absolute_at_least("100"), percent_at_least("20")]}),
        ("100", "20", "all", {"And": [absolute_at_least("100"), percent_at_least("20")]}),
    ],
)
def test_threshold_expression_combines_thresholds_as_configured(
    absolute: str | None, percent: str | None, match: str, expected: dict[str, Any]
) -> None:
    assert threshold_expression(absolute, percent, match) == expected


def test_threshold_expression_without_any_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        threshold_expression(None, None, "any")


# --- delivery into the inbox ------------------------------------------------------------------


def test_anomaly_detected_events_on_the_default_bus_go_to_the_inbox(full_synth: Synth) -> None:
    rule = resource(full_synth, rule_id(full_synth))["Properties"]

    assert "EventBusName" not in rule  # the default bus
    assert rule["EventPattern"] == {"source": ["aws.ce"], "detail-type": ["Anomaly Detected"]}
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Arn": arn_of(inbox_id(full_synth)), "Id": "Target0"}]


def test_topic_delivers_sns_envelopes_to_the_inbox(full_synth: Synth) -> None:
    subscriptions = [
        found
        for found in full_synth.resources("AWS::SNS::Subscription").values()
        if found["Properties"]["TopicArn"] == ref(anomaly_topic_id(full_synth))
    ]

    assert [found["Properties"] for found in subscriptions] == [
        {
            "Protocol": "sqs",
            "TopicArn": ref(anomaly_topic_id(full_synth)),
            "Endpoint": arn_of(inbox_id(full_synth)),
            "RawMessageDelivery": False,
        }
    ]


def test_inbox_policy_admits_only_the_topic_and_the_rule_over_tls(full_synth: Synth) -> None:
    inbox = arn_of(inbox_id(full_synth))

    full_synth.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(inbox_id(full_synth))],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "sqs:*",
                        "Resource": inbox,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": inbox,
                        "Condition": {"ArnEquals": {"aws:SourceArn": ref(anomaly_topic_id(full_synth))}},
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
                        "Resource": inbox,
                        "Condition": {"ArnEquals": {"aws:SourceArn": arn_of(rule_id(full_synth))}},
                    },
                ],
            },
        },
    )


def test_inbox_is_encrypted_and_redrives_to_the_stage_failure_queue_after_five_receives(full_synth: Synth) -> None:
    inbox = resource(full_synth, inbox_id(full_synth))["Properties"]
    failure_queue_id = queue_id_of(full_synth, "failures")
    failures = resource(full_synth, failure_queue_id)["Properties"]

    assert {k: v for k, v in inbox.items() if k != "Tags"} == {
        "QueueName": "finops-guard-qa-anomaly-inbox",
        "SqsManagedSseEnabled": True,
        "VisibilityTimeout": 360,  # 6 x the 60 s function timeout
        "MessageRetentionPeriod": 4 * 24 * 3600,
        "RedrivePolicy": {"deadLetterTargetArn": FAILURE_QUEUE, "maxReceiveCount": 5},
    }
    # The import is the core's failure queue, which keeps a message longer than the inbox did (a
    # dead-lettered message keeps its original enqueue time).
    assert exported_by_core(full_synth, FAILURE_QUEUE) == arn_of(failure_queue_id)
    assert failure_queue_id in full_synth.core.template_json["Resources"]
    assert failures["MessageRetentionPeriod"] > inbox["MessageRetentionPeriod"]


def test_inbox_triggers_the_function_in_batches_of_up_to_50(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, ALERTS)
    [mapping] = [
        m
        for m in full_synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == ref(function_id)
    ]

    assert {k: v for k, v in mapping["Properties"].items() if k != "Tags"} == {
        "EventSourceArn": arn_of(inbox_id(full_synth)),
        "FunctionName": ref(function_id),
        "BatchSize": 50,
        "MaximumBatchingWindowInSeconds": 20,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }


# --- anomaly alerts function ------------------------------------------------------------------


def test_anomaly_function_runs_arm64_python_3_13_for_up_to_a_minute(full_synth: Synth) -> None:
    function_id, function = function_of(full_synth, ALERTS)

    full_synth.costs.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-anomaly-alerts",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": 60,
            "MemorySize": 256,
            "DeadLetterConfig": Match.absent(),  # failed async events go to the stage's failure queue
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, ALERTS))},
        },
    )
    # The core's layers, whose current versions the costs stack reads from SSM.
    assert function["Layers"] == [
        ref(layer_parameter_id(full_synth, "common")),
        ref(layer_parameter_id(full_synth, "report-deps")),
    ]
    assert resource(full_synth, log_group_id_of(full_synth, ALERTS))["Properties"]["RetentionInDays"] == 30
    assert resource(full_synth, function_id)["DependsOn"] == [role_policy_id(full_synth, ALERTS)]


def test_anomaly_function_sends_failed_async_events_to_the_stage_failure_queue_after_two_retries(
    full_synth: Synth,
) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.costs, ALERTS)


def test_anomaly_function_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = function_of(full_synth, ALERTS)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",  # the core's table, by its fixed name
        "FINOPSGUARD_ANOMALIES_TABLE": ref(table_id_of(full_synth, "anomalies")),
        "FINOPSGUARD_ANOMALY_MIN_IMPACT": "25",
        "FINOPSGUARD_ANOMALY_REALERT_GROWTH": "1.5",
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/qa/team-webhooks",
        "POWERTOOLS_SERVICE_NAME": "anomaly-alerts",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_anomaly_function_defaults_and_has_no_slack_secret(default_synth: Synth) -> None:
    _, function = function_of(default_synth, ALERTS)
    variables = function["Environment"]["Variables"]

    assert variables["FINOPSGUARD_ANOMALY_MIN_IMPACT"] == "0"
    assert variables["FINOPSGUARD_ANOMALY_REALERT_GROWTH"] == "0.5"
    assert "FINOPSGUARD_SLACK_SECRET_NAME" not in variables


def test_anomaly_function_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    assert policy_statements_of_role(full_synth, role_id_of(full_synth, ALERTS)) == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, ALERTS)),
        },
        {"Sid": "ReportFailedEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": FAILURE_QUEUE},
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            ],
            "Resource": arn_of(inbox_id(full_synth)),
        },
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
            "Sid": "TrackAnomalies",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": arn_of(table_id_of(full_synth, "anomalies")),
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": outbox_arn(full_synth),
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


def test_anomaly_function_role_is_assumed_by_lambda_and_has_no_managed_policies(full_synth: Synth) -> None:
    role = resource(full_synth, role_id_of(full_synth, ALERTS))["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


# --- alarms -----------------------------------------------------------------------------------


def alarms_of_anomaly_function(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"].startswith("FinOpsGuard-qa-anomaly-alerts-")
    }


def test_anomaly_function_has_only_the_forwarding_slo_alarm_paging_the_imported_ops_topic(full_synth: Synth) -> None:
    # Errors, throttles, slow runs, dead letters, malformed or stale messages: a failed message is
    # retried and joins the failure queue, whose one stage alarm pages. Only the SLO is the function's own.
    alarms = alarms_of_anomaly_function(full_synth)

    assert sorted(alarms) == ["FinOpsGuard-qa-anomaly-alerts-ForwardingLatency"]
    ops_topic_id = topic_id_of(full_synth, "ops-alarms")
    assert exported_by_core(full_synth, OPS_TOPIC) == ref(ops_topic_id)
    # The core's topic policy admits this costs-stack alarm (evaluated as AWS does).
    policies = PolicyEvaluator(full_synth.template_json)
    alarm_source = {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": policies.alarm_arn("FinOpsGuard-qa-anomaly-alerts-ForwardingLatency"),
    }
    assert policies.is_allowed(
        service("cloudwatch.amazonaws.com"), "sns:Publish", policies.topic_arn(ops_topic_id), alarm_source | TLS
    )
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [OPS_TOPIC]
        assert alarm["OKActions"] == [OPS_TOPIC]
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "First:" in json.dumps(alarm["AlarmDescription"])


def test_forwarding_latency_alarm_watches_the_five_minute_slo(full_synth: Synth) -> None:
    alarm = alarms_of_anomaly_function(full_synth)["FinOpsGuard-qa-anomaly-alerts-ForwardingLatency"]

    assert {key: alarm.get(key) for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Unit")} == {
        "Namespace": "FinOpsGuard",
        "MetricName": "AnomalyForwardingLatency",
        "Dimensions": [{"Name": "service", "Value": "anomaly-alerts"}],
        "Statistic": "Maximum",
        "Unit": "Seconds",
    }
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Period"]) == ("GreaterThanThreshold", 300, 300)
    description = json.dumps(alarm["AlarmDescription"])
    assert "finops-guard-qa-anomaly-inbox" in description
    assert "finops-guard dlq list" in description


def test_a_message_failing_five_receives_pages_through_the_stage_failures_alarm(full_synth: Synth) -> None:
    # The inbox's dead-letter target is the queue the core's Failures alarm watches.
    failure_queue_id = queue_id_of(full_synth, "failures")
    [failures_alarm] = [
        alarm["Properties"]
        for alarm in full_synth.core.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"] == "FinOpsGuard-qa-Failures"
    ]
    redrive = resource(full_synth, inbox_id(full_synth))["Properties"]["RedrivePolicy"]

    assert exported_by_core(full_synth, redrive["deadLetterTargetArn"]) == arn_of(failure_queue_id)
    assert failures_alarm["Namespace"] == "AWS/SQS"
    assert failures_alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert failures_alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [failure_queue_id, "QueueName"]}}
    ]
    assert (failures_alarm["ComparisonOperator"], failures_alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert failures_alarm["AlarmActions"] == [ref(topic_id_of(full_synth, "ops-alarms"))]
    assert "a poison anomaly message" in failures_alarm["AlarmDescription"]
    assert "finops-guard dlq redrive --stage qa" in failures_alarm["AlarmDescription"]


# --- tags and outputs -------------------------------------------------------------------------


def test_anomaly_resources_carry_the_cost_allocation_tags(full_synth: Synth) -> None:
    tagged = [
        table_id_of(full_synth, "anomalies"),
        anomaly_topic_id(full_synth),
        inbox_id(full_synth),
        rule_id(full_synth),
        function_of(full_synth, ALERTS)[0],
        role_id_of(full_synth, ALERTS),
        log_group_id_of(full_synth, ALERTS),
        *full_synth.resources("AWS::Lambda::EventSourceMapping"),
    ]
    resource_tagged = [
        *full_synth.resources("AWS::CE::AnomalyMonitor"),
        *full_synth.resources("AWS::CE::AnomalySubscription"),
    ]

    for lid in tagged:
        assert tags_of(full_synth, lid) == EXPECTED_TAGS, lid
    # The custom resource tags the services monitor it creates (an adopted one keeps its own tags).
    assert services_monitor(full_synth)[1]["Properties"]["Tags"] == EXPECTED_TAGS
    assert len(resource_tagged) == 4
    for lid in resource_tagged:
        assert tags_of(full_synth, lid, "ResourceTags") == EXPECTED_TAGS, lid


def test_anomaly_function_code_is_the_anomaly_alerts_folder(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa-Costs.assets.json")
    [source] = [
        asset["source"]["path"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if asset.get("displayName") == "Anomalies/AnomalyAlerts/Function/Code"
    ]
    staged = full_synth.outdir / source

    # Without bundling (these tests) the asset is the folder itself; what a bundled one holds
    # (handler.py and its bytecode, no caches) is tests/infra/test_infra_bundling.py's.
    assert staged.resolve() == REPO_ROOT / "functions" / "anomaly_alerts"
    assert (staged / "handler.py").is_file()
