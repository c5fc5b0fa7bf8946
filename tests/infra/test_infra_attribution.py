"""Exact properties of cost attribution: team routes table, team routing grants of the posting
functions, and the monthly chargeback (bucket, function, role, schedule, failure paging)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    assert_parks_failed_async_events,
    chargeback_bucket_id,
    core_import,
    exported_by_core,
    failure_queue_ref,
    function_of,
    layer_parameter_id,
    log_group_id_of,
    only_invoke_and_park,
    outbox_arn,
    policy_statements_of_role,
    read_team_routes,
    ref,
    role_id_of,
    scheduler_role_id,
    synthesize,
    table_id_of,
    topic_id_of,
)

pytestmark = pytest.mark.infra

CHARGEBACK = "chargeback"
POSTERS = ["weekly-report", "budget-guard", "anomaly-alerts"]
TEAM_VARIABLES = (
    "FINOPSGUARD_TEAM_DIMENSION",
    "FINOPSGUARD_TEAM_ROUTES_TABLE",
    "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME",
)


@pytest.fixture(scope="module")
def no_routing_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Team routing switched off: attribution KPIs and chargeback only."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-no-routing"),
        {"attributionDimensions": "costCategory:Project", "teamDimension": ""},
    )


def resource(synth: Synth, lid: str) -> dict[str, Any]:
    return synth.template_json["Resources"][lid]


def variables_of(synth: Synth, short_name: str) -> dict[str, Any]:
    return function_of(synth, short_name)[1]["Environment"]["Variables"]


def access_log_bucket_id(synth: Synth) -> str:
    logging = resource(synth, chargeback_bucket_id(synth))["Properties"]["LoggingConfiguration"]
    return logging["DestinationBucketName"]["Ref"]


def bucket_policy(synth: Synth, bucket_id: str) -> list[dict[str, Any]]:
    [statements] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(bucket_id)
    ]
    return statements


def deny_without_tls(bucket_id: str) -> dict[str, Any]:
    return {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [arn_of(bucket_id), {"Fn::Join": ["", [arn_of(bucket_id), "/*"]]}],
    }


def alarm_names(synth: Synth, prefix: str) -> list[str]:
    names = [a["Properties"]["AlarmName"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]
    return sorted(name for name in names if name.startswith(prefix))


# --- team routes table ------------------------------------------------------------------------


def test_team_routes_table_is_keyed_by_route_and_team_on_demand_recoverable_encrypted_and_retained(
    full_synth: Synth,
) -> None:
    table = resource(full_synth, table_id_of(full_synth, "team-routes"))

    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert {key: value for key, value in table["Properties"].items() if key != "Tags"} == {
        "TableName": "finops-guard-qa-team-routes",
        "DeletionProtectionEnabled": False,  # configuration: `finops-guard teams add` writes it again
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


def test_team_routes_table_exists_with_routing_off_so_routes_can_be_prepared(no_routing_synth: Synth) -> None:
    assert table_id_of(no_routing_synth, "team-routes")


# --- team routing of the posting functions ----------------------------------------------------


@pytest.mark.parametrize("short_name", POSTERS)
def test_posting_function_gets_the_attribution_and_team_routing_settings(full_synth: Synth, short_name: str) -> None:
    variables = variables_of(full_synth, short_name)

    assert {name: variables[name] for name in variables if "ATTRIBUTION" in name or "TEAM_" in name} == {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": ref(table_id_of(full_synth, "team-routes")),
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": "finops-guard/qa/team-webhooks",
    }


@pytest.mark.parametrize("short_name", POSTERS)
def test_default_team_dimension_is_the_first_attribution_dimension(default_synth: Synth, short_name: str) -> None:
    variables = variables_of(default_synth, short_name)

    assert variables["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"] == "tag:Team,tag:CostCenter"
    assert variables["FINOPSGUARD_TEAM_DIMENSION"] == "tag:Team"
    assert variables["FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME"] == "finops-guard/dev/team-webhooks"


def team_webhooks_secret_id(synth: Synth) -> str:
    [found] = [
        lid
        for lid, secret in synth.resources("AWS::SecretsManager::Secret").items()
        if secret["Properties"]["Name"] == f"finops-guard/{synth.stack.config.stage}/team-webhooks"
    ]
    return found


@pytest.mark.parametrize("short_name", POSTERS)
def test_posting_function_may_query_the_routes_and_read_only_the_team_webhooks_secret(
    default_synth: Synth, short_name: str
) -> None:
    statements = policy_statements_of_role(default_synth, role_id_of(default_synth, short_name))

    assert statements[-2:] == [
        read_team_routes(default_synth),
        {
            "Sid": "ReadTeamWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": ref(team_webhooks_secret_id(default_synth)),  # its exact ARN: no wildcard
        },
    ]


def test_the_team_webhooks_secret_starts_as_an_empty_map_and_is_retained(full_synth: Synth) -> None:
    secret = resource(full_synth, team_webhooks_secret_id(full_synth))

    assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    properties = {key: value for key, value in secret["Properties"].items() if key not in ("Tags", "Description")}
    assert properties == {
        "Name": "finops-guard/qa/team-webhooks",
        "SecretString": "{}",  # no URL ever in the template; `finops-guard teams add` fills it
    }
    assert "finops-guard teams add <team> --stage qa --teams-url" in secret["Properties"]["Description"]


def test_no_team_webhooks_secret_with_routing_off(no_routing_synth: Synth) -> None:
    names = [s["Properties"]["Name"] for s in no_routing_synth.resources("AWS::SecretsManager::Secret").values()]

    assert "finops-guard/dev/team-webhooks" not in names
    assert not any(name.endswith("team-webhooks") for name in names)


def test_weekly_report_keeps_its_attribution_dimensions_with_routing_off(no_routing_synth: Synth) -> None:
    variables = variables_of(no_routing_synth, "weekly-report")

    assert variables["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"] == "costCategory:Project"
    assert not set(TEAM_VARIABLES) & set(variables)


@pytest.mark.parametrize("short_name", POSTERS)
def test_routing_off_sets_no_team_variables_and_grants_no_team_reads(no_routing_synth: Synth, short_name: str) -> None:
    statements = policy_statements_of_role(no_routing_synth, role_id_of(no_routing_synth, short_name))

    assert not set(TEAM_VARIABLES) & set(variables_of(no_routing_synth, short_name))
    assert [s["Sid"] for s in statements if s.get("Sid") in ("ReadTeamRoutes", "ReadTeamWebhookSecrets")] == []


def readers_of(synth: Synth, sid: str) -> list[str]:
    """The roles with a statement ``sid``."""
    return sorted(
        role_id
        for role_id in synth.resources("AWS::IAM::Role")
        for policy in synth.resources("AWS::IAM::Policy").values()
        if ref(role_id) in policy["Properties"]["Roles"]
        and sid in {s.get("Sid") for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    )


def test_only_the_posting_functions_may_read_the_team_webhooks_secret(full_synth: Synth) -> None:
    assert readers_of(full_synth, "ReadTeamWebhookSecrets") == sorted(role_id_of(full_synth, n) for n in POSTERS)


def test_only_the_posting_functions_and_the_savings_refresh_may_read_team_routes(full_synth: Synth) -> None:
    readers = [*POSTERS, "savings-refresh"]  # the refresh assigns recommendations to teams; it posts nothing

    assert readers_of(full_synth, "ReadTeamRoutes") == sorted(role_id_of(full_synth, n) for n in readers)


# --- chargeback bucket ------------------------------------------------------------------------


def test_chargeback_bucket_is_versioned_encrypted_private_logged_and_retained(full_synth: Synth) -> None:
    bucket = resource(full_synth, chargeback_bucket_id(full_synth))

    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert {key: value for key, value in bucket["Properties"].items() if key != "Tags"} == {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LoggingConfiguration": {
            "DestinationBucketName": ref(access_log_bucket_id(full_synth)),
            "LogFilePrefix": "chargeback-bucket/",
        },
        "LifecycleConfiguration": {
            "Rules": [
                {
                    "Id": "expire-superseded-chargebacks",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 400},
                    "Status": "Enabled",
                }
            ]
        },
    }


def test_chargeback_bucket_refuses_requests_without_tls_and_has_no_other_policy(full_synth: Synth) -> None:
    bucket_id = chargeback_bucket_id(full_synth)

    assert bucket_policy(full_synth, bucket_id) == [deny_without_tls(bucket_id)]


def test_chargeback_access_log_bucket_takes_only_the_chargeback_bucket_logs_and_expires_them(
    full_synth: Synth,
) -> None:
    log_bucket_id = access_log_bucket_id(full_synth)
    bucket = resource(full_synth, log_bucket_id)

    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert {key: value for key, value in bucket["Properties"].items() if key != "Tags"} == {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {
            "Rules": [{"ExpirationInDays": 400, "Id": "expire-access-logs", "Status": "Enabled"}]
        },
    }
    assert bucket_policy(full_synth, log_bucket_id) == [
        deny_without_tls(log_bucket_id),
        {
            "Action": "s3:PutObject",
            "Condition": {
                "ArnLike": {"aws:SourceArn": arn_of(chargeback_bucket_id(full_synth))},
                "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
            },
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Resource": {"Fn::Join": ["", [arn_of(log_bucket_id), "/chargeback-bucket/*"]]},
        },
    ]


def test_stack_has_four_buckets_each_report_bucket_with_its_own_access_logs(full_synth: Synth) -> None:
    buckets = full_synth.resources("AWS::S3::Bucket")
    logged = {
        bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"]
        for bucket in buckets.values()
        if "LoggingConfiguration" in bucket["Properties"]
    }

    assert len(buckets) == 4
    assert logged == {"export-bucket/", "chargeback-bucket/"}


# --- chargeback function ----------------------------------------------------------------------


def test_chargeback_runs_arm64_python_3_13_for_up_to_five_minutes_with_the_report_layers(full_synth: Synth) -> None:
    function_id, function = function_of(full_synth, CHARGEBACK)

    assert {
        key: function[key] for key in ("Architectures", "Runtime", "Handler", "Timeout", "MemorySize", "Layers")
    } == {
        "Architectures": ["arm64"],
        "Runtime": "python3.13",
        "Handler": "handler.lambda_handler",
        "Timeout": 300,
        "MemorySize": 256,
        # the core's layers, read from the SSM parameters the core writes
        "Layers": [ref(layer_parameter_id(full_synth, "common")), ref(layer_parameter_id(full_synth, "report-deps"))],
    }
    assert "DeadLetterConfig" not in function  # failed async events go to the core's failure queue instead
    assert function["LoggingConfig"] == {"LogGroup": ref(log_group_id_of(full_synth, CHARGEBACK))}
    assert resource(full_synth, log_group_id_of(full_synth, CHARGEBACK))["Properties"]["RetentionInDays"] == 30
    assert function_id in full_synth.costs.template_json["Resources"]


def test_chargeback_retries_a_failed_run_twice_then_parks_its_event_in_the_core_failure_queue(
    full_synth: Synth,
) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.costs, CHARGEBACK)
    function_id, _ = function_of(full_synth, CHARGEBACK)
    configs = full_synth.resources("AWS::Lambda::EventInvokeConfig").values()
    assert [c["Properties"]["FunctionName"] for c in configs].count(ref(function_id)) == 1


def test_chargeback_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    assert variables_of(full_synth, CHARGEBACK) == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",  # the core's table, by its fixed name
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:CostCenter,tag:Team,costCategory:Project",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_CHARGEBACK_BUCKET": ref(chargeback_bucket_id(full_synth)),
        "FINOPSGUARD_CHARGEBACK_UNALLOCATED": "separate",
        "FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES": "120",
        "FINOPSGUARD_COST_METRIC": "NetAmortizedCost",
        "POWERTOOLS_SERVICE_NAME": "chargeback",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "FINOPSGUARD_KPI_METRICS": "off",  # only the opt-in dashboard reads those metrics
    }


def test_chargeback_defaults_share_untagged_spend_proportionally_with_hour_long_links(default_synth: Synth) -> None:
    variables = variables_of(default_synth, CHARGEBACK)

    assert variables["FINOPSGUARD_CHARGEBACK_UNALLOCATED"] == "proportional"
    assert variables["FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES"] == "60"
    assert variables["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"] == "tag:Team,tag:CostCenter"
    assert "FINOPSGUARD_SLACK_SECRET_NAME" not in variables


def test_chargeback_has_no_team_dimension_with_routing_off(no_routing_synth: Synth) -> None:
    variables = variables_of(no_routing_synth, CHARGEBACK)

    assert variables["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"] == "costCategory:Project"
    assert "FINOPSGUARD_TEAM_DIMENSION" not in variables


def test_chargeback_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    assert policy_statements_of_role(full_synth, role_id_of(full_synth, CHARGEBACK)) == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, CHARGEBACK)),
        },
        {
            "Sid": "ReportFailedEvents",  # the EventInvokeConfig's on-failure destination
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": failure_queue_ref(full_synth),
        },
        {"Sid": "ReadCostAndUsage", "Effect": "Allow", "Action": "ce:GetCostAndUsage", "Resource": "*"},
        {
            "Sid": "ReadWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [core_import(full_synth, "slack-secret-arn"), core_import(full_synth, "teams-secret-arn")],
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": outbox_arn(full_synth),
        },
        {
            "Sid": "PublishChargebacks",
            "Effect": "Allow",
            "Action": ["s3:GetObjectVersion", "s3:PutObject"],
            "Resource": {"Fn::Join": ["", [arn_of(chargeback_bucket_id(full_synth)), "/chargeback/*"]]},
        },
    ]


def test_chargeback_role_is_assumed_by_lambda_and_has_no_managed_policies(full_synth: Synth) -> None:
    role = resource(full_synth, role_id_of(full_synth, CHARGEBACK))["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_chargeback_code_is_the_chargeback_folder(full_synth: Synth) -> None:
    [assets_file] = full_synth.outdir.glob("FinOpsGuard-qa-Costs.assets.json")
    [source] = [
        asset["source"]["path"]
        for asset in json.loads(assets_file.read_text())["files"].values()
        if asset.get("displayName") == "Attribution/Chargeback/Function/Code"
    ]
    staged = full_synth.outdir / source

    assert (staged / "handler.py").is_file()
    assert list(staged.rglob("__pycache__")) == []


# --- schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synth_name", "expression", "timezone"),
    [("default_synth", "cron(0 9 1 * ? *)", "UTC"), ("full_synth", "cron(0 6 1 * ? *)", "Europe/Madrid")],
)
def test_chargeback_runs_on_the_first_of_the_month_in_the_report_time_zone(
    synth_name: str, expression: str, timezone: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    schedule_input = Capture()

    synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": f"finops-guard-{synth.stack.config.stage}-chargeback",
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": arn_of(function_of(synth, CHARGEBACK)[0]),
                "RoleArn": Match.any_value(),
                "Input": schedule_input,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": failure_queue_ref(synth)},  # events the scheduler could not deliver
            },
        },
    )
    assert json.loads(schedule_input.as_string()) == {
        "job": "chargeback",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


def test_chargeback_scheduler_role_may_only_invoke_it_and_park_failed_events(full_synth: Synth) -> None:
    role_id = scheduler_role_id(full_synth, CHARGEBACK)
    assert policy_statements_of_role(full_synth, role_id) == only_invoke_and_park(
        full_synth, CHARGEBACK, "InvokeChargeback"
    )


# --- failure paging --------------------------------------------------------------------------


def alarm_of(synth: Synth, name: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == name
    ]
    return alarm


def test_chargeback_has_no_alarms_of_its_own(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, CHARGEBACK)
    on_chargeback = [
        a["Properties"]["AlarmName"]
        for a in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if "chargeback" in a["Properties"]["AlarmName"].lower()
        or {"Name": "FunctionName", "Value": ref(function_id)} in a["Properties"].get("Dimensions", [])
        or {"Name": "service", "Value": "chargeback"} in a["Properties"].get("Dimensions", [])
    ]

    assert on_chargeback == []


def test_chargeback_failures_page_through_the_core_failures_alarm(full_synth: Synth) -> None:
    """The queue that the chargeback's failed runs and undeliverable schedule events go to is the one
    the core's Failures alarm watches, and that alarm pages the ops topic."""
    queue_arn = exported_by_core(full_synth, failure_queue_ref(full_synth))
    [queue_id, attribute] = queue_arn["Fn::GetAtt"]
    alarm = alarm_of(full_synth, "FinOpsGuard-qa-Failures")
    ops_topic = ref(topic_id_of(full_synth, "ops-alarms"))

    assert attribute == "Arn"
    assert full_synth.core.template_json["Resources"][queue_id]["Properties"]["QueueName"] == "finops-guard-qa-failures"
    assert {
        key: alarm[key]
        for key in (
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "ComparisonOperator",
            "Threshold",
            "EvaluationPeriods",
        )
    } == {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
        "Statistic": "Maximum",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "EvaluationPeriods": 1,
    }
    assert (alarm["AlarmActions"], alarm["OKActions"]) == ([ops_topic], [ops_topic])
    assert alarm in [a["Properties"] for a in full_synth.core.resources("AWS::CloudWatch::Alarm").values()]


def test_chargeback_chat_failures_page_through_the_core_chat_delivery_alarm_of_its_stage(full_synth: Synth) -> None:
    """The chargeback writes the stage-level ChatDeliveryFailures metric for the stage in its
    FINOPSGUARD_STAGE; the core's one chat alarm watches exactly that metric."""
    alarm = alarm_of(full_synth, "FinOpsGuard-qa-ChatDeliveryFailures")
    ops_topic = ref(topic_id_of(full_synth, "ops-alarms"))

    assert variables_of(full_synth, CHARGEBACK)["FINOPSGUARD_STAGE"] == "qa"
    assert {key: alarm[key] for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Threshold")} == {
        "Namespace": "FinOpsGuard",
        "MetricName": "ChatDeliveryFailures",
        "Dimensions": [{"Name": "stage", "Value": "qa"}],
        "Statistic": "Sum",
        "Threshold": 1,
    }
    assert (alarm["AlarmActions"], alarm["OKActions"]) == ([ops_topic], [ops_topic])
    assert alarm in [a["Properties"] for a in full_synth.core.resources("AWS::CloudWatch::Alarm").values()]


def test_failures_alarm_tells_on_call_to_list_the_parked_events_and_redrive_them(full_synth: Synth) -> None:
    """A parked chargeback event is re-invoked with its original event (its month) by the redrive;
    re-running any other month by hand is in the README's operations baseline."""
    description = alarm_of(full_synth, "FinOpsGuard-qa-Failures")["AlarmDescription"]

    assert "finops-guard-qa-failures" in description
    assert "finops-guard dlq list --stage qa" in description
    assert "finops-guard dlq redrive --stage qa" in description
    assert description.index("dlq list") < description.index("dlq redrive")
