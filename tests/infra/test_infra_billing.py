"""Exact properties of the billing stack FinOpsGuard-<stage>-Billing: Stripe secret, billing tables, the
webhook API and function, and the billing notifier on the billing-alerts stream; and how it stands on the
core stack (ops topic and failure queue by export, outbox by name, shared layers by SSM parameter)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from conftest import (
    StackSynth,
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
    ops_topic_ref,
    outbox_arn,
    policy_statements_of_role,
    ref,
    role_id_of,
    table_id_of,
)

pytestmark = pytest.mark.infra

WEBHOOK = "stripe-webhook"
NOTIFIER = "billing-notifier"
EXPECTED_TAGS = {"Project": "FinOpsGuard", "Environment": "qa", "Owner": "cloud-platform", "CostCenter": "cc-4711"}


def resource(synth: Synth, lid: str) -> dict[str, Any]:
    return synth.template_json["Resources"][lid]


# --- what the billing stack takes from the core stack -----------------------------------------


def report_failed_events(synth: Synth) -> dict[str, Any]:
    """The statement every function role starts with after log writing: failed async events to the failure queue."""
    return {
        "Sid": "ReportFailedEvents",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": failure_queue_ref(synth),
    }


def secret_id_named(synth: Synth, name: str) -> str:
    return logical_id(synth, "AWS::SecretsManager::Secret", "Name", f"finops-guard/{synth.stack.config.stage}/{name}")


def api_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::ApiGateway::RestApi", "Name", f"finops-guard-{synth.stack.config.stage}-billing")


def stage_of(synth: Synth) -> tuple[str, dict[str, Any]]:
    lid, stage = synth.only("AWS::ApiGateway::Stage")
    return lid, stage["Properties"]


def method_of(synth: Synth, http_method: str, resource_id: str | None = None) -> dict[str, Any]:
    """The ``http_method`` method of the webhook resource (or of ``resource_id``)."""
    on = ref(resource_id or webhook_resource_id(synth))
    [method] = [
        m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == http_method and m["Properties"]["ResourceId"] == on
    ]
    return method


def webhook_resource_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::ApiGateway::Resource", "PathPart", "webhook")


def tags_of(synth: Synth, lid: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource(synth, lid)["Properties"]["Tags"]}


# --- tables -----------------------------------------------------------------------------------


def _keys(partition_key: str, sort_key: str | None = None) -> list[dict[str, str]]:
    keys = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        keys.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return keys


def _index(name: str, partition_key: str, sort_key: str) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": _keys(partition_key, sort_key), "Projection": {"ProjectionType": "ALL"}}


@pytest.mark.parametrize(
    ("name", "key_schema", "attributes", "extra"),
    [
        ("stripe-events", _keys("event_id"), ["event_id"], {}),
        (
            "billing-ledger",
            _keys("customer_id", "entry_key"),
            ["customer_id", "entry_key", "month"],
            {"GlobalSecondaryIndexes": [_index("by-month", "month", "entry_key")]},
        ),
        (
            "billing-objects",
            _keys("object_id"),
            ["object_id", "object_type"],
            {"GlobalSecondaryIndexes": [_index("by-type", "object_type", "object_id")]},
        ),
        (
            "billing-alerts",
            _keys("alert_id"),
            ["alert_id", "status", "opened_at"],
            {
                "GlobalSecondaryIndexes": [_index("by-status", "status", "opened_at")],
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            },
        ),
        (
            "dunning",
            _keys("invoice_id", "step"),
            ["invoice_id", "step", "status", "due_at"],
            {"GlobalSecondaryIndexes": [_index("by-due", "status", "due_at")]},
        ),
        ("invoice-requests", _keys("request_id"), ["request_id"], {}),
    ],
)
def test_billing_tables_are_on_demand_recoverable_encrypted_retained_protected_and_never_expire(
    full_synth: Synth, name: str, key_schema: list[dict[str, str]], attributes: list[str], extra: dict[str, Any]
) -> None:
    full_synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_equals(
                {
                    "TableName": f"finops-guard-qa-{name}",
                    "KeySchema": key_schema,
                    "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    # Money, and the records that keep booking, dunning and invoicing at most once.
                    "DeletionProtectionEnabled": True,
                    "Tags": Match.any_value(),
                    **extra,
                }
            ),
        },
    )


def test_stripe_events_are_kept_forever(full_synth: Synth) -> None:
    table = resource(full_synth, table_id_of(full_synth, "stripe-events"))["Properties"]

    assert "TimeToLiveSpecification" not in table


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_stripe_signing_secret_is_a_retained_placeholder_with_rotation_steps(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = synth.stack.config.stage
    secret = resource(synth, secret_id_named(synth, "stripe-webhook-secret"))

    assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
    assert secret["Properties"]["GenerateSecretString"] == {}
    assert "SecretString" not in secret["Properties"]
    description = secret["Properties"]["Description"]
    assert f"put-secret-value --secret-id finops-guard/{stage}/stripe-webhook-secret " in description
    assert f"finops-guard/{stage}/stripe-webhook-secret-previous" in description


def test_previous_stripe_secret_is_left_to_operators(full_synth: Synth) -> None:
    names = [s["Properties"]["Name"] for s in full_synth.resources("AWS::SecretsManager::Secret").values()]

    assert "finops-guard/qa/stripe-webhook-secret-previous" not in names


def test_finance_chat_secrets_follow_slack_enabled(full_synth: Synth, default_synth: Synth) -> None:
    for channel, product in (("teams", "Microsoft Teams"), ("slack", "Slack")):
        secret = resource(full_synth, secret_id_named(full_synth, f"finance-{channel}-webhook-url"))
        assert secret["Properties"]["Description"].startswith(
            f"{product} incoming webhook URL for FinOps Guard billing alerts to finance. "
        )
    secret_id_named(default_synth, "finance-teams-webhook-url")
    with pytest.raises(AssertionError):
        secret_id_named(default_synth, "finance-slack-webhook-url")


# --- Stripe webhook function ------------------------------------------------------------------


def test_webhook_function_runs_arm64_python_3_13_for_up_to_15_seconds(full_synth: Synth) -> None:
    full_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-stripe-webhook",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": 15,
            "MemorySize": 512,
            # Failed async events go to the stage's failure queue (EventInvokeConfig), not a function DLQ.
            "DeadLetterConfig": Match.absent(),
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, WEBHOOK))},
        },
    )
    assert resource(full_synth, log_group_id_of(full_synth, WEBHOOK))["Properties"]["RetentionInDays"] == 30


def test_webhook_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = function_of(full_synth, WEBHOOK)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_STRIPE_SECRET_NAME": "finops-guard/qa/stripe-webhook-secret",
        "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": "finops-guard/qa/stripe-webhook-secret-previous",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": ref(table_id_of(full_synth, "stripe-events")),
        "FINOPSGUARD_LEDGER_TABLE": ref(table_id_of(full_synth, "billing-ledger")),
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": ref(table_id_of(full_synth, "billing-objects")),
        "FINOPSGUARD_BILLING_ALERTS_TABLE": ref(table_id_of(full_synth, "billing-alerts")),
        "FINOPSGUARD_DUNNING_TABLE": ref(table_id_of(full_synth, "dunning")),
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": ref(table_id_of(full_synth, "invoice-requests")),
        "FINOPSGUARD_BILLING_THRESHOLDS": '{"EUR":"4000","USD":"5000.50"}',
        "FINOPSGUARD_DUNNING_STEPS": "0:email,2:sms,7:email,14:sms",
        "FINOPSGUARD_MAX_BODY_BYTES": "65536",
        "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_webhook_environment_defaults(default_synth: Synth) -> None:
    variables = function_of(default_synth, WEBHOOK)[1]["Environment"]["Variables"]

    assert variables["FINOPSGUARD_BILLING_THRESHOLDS"] == "{}"
    assert variables["FINOPSGUARD_DUNNING_STEPS"] == "0:email,1:sms,3:email"
    assert variables["FINOPSGUARD_MAX_BODY_BYTES"] == "262144"


def test_webhook_function_uses_the_billing_stacks_stripe_layer_and_the_core_layers_from_ssm(full_synth: Synth) -> None:
    billing = full_synth.billing
    _, function = function_of(full_synth, WEBHOOK)

    # With @aws-cdk/aws-lambda:recognizeLayerVersion, CDK renders layers sorted, not in the given order.
    assert sorted(layer["Ref"] for layer in function["Layers"]) == sorted(
        [
            layer_id(billing, "billing-deps"),
            layer_parameter_id(billing, "common"),
            layer_parameter_id(billing, "report-deps"),
        ]
    )
    assert len(function["Layers"]) == 3


@pytest.mark.parametrize("layer", ["common", "report-deps"])
def test_billing_stack_reads_each_core_layer_from_the_parameter_the_core_writes(full_synth: Synth, layer: str) -> None:
    # A new core layer version has a new ARN: an SSM parameter can change, a CloudFormation export cannot.
    full_synth.core.template.has_resource_properties(
        "AWS::SSM::Parameter",
        {
            "Name": f"/finops-guard/qa/layers/{layer}",
            "Type": "String",
            "Value": ref(layer_id(full_synth.core, layer)),
        },
    )
    assert full_synth.billing.template_json["Parameters"][layer_parameter_id(full_synth.billing, layer)] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": f"/finops-guard/qa/layers/{layer}",
    }


def test_only_the_stripe_facing_functions_ship_the_billing_layer(full_synth: Synth) -> None:
    billing_layer = ref(layer_id(full_synth, "billing-deps"))

    with_billing_layer = [
        f["Properties"]["FunctionName"]
        for f in full_synth.resources("AWS::Lambda::Function").values()
        if billing_layer in f["Properties"].get("Layers", [])
    ]

    assert sorted(with_billing_layer) == [
        "finops-guard-qa-billing-admin",
        "finops-guard-qa-dunning-sender",
        "finops-guard-qa-reconciliation",
        "finops-guard-qa-stripe-webhook",
    ]


def test_billing_layer_is_built_from_layers_billing_deps(full_synth: Synth) -> None:
    layer = resource(full_synth, layer_id(full_synth, "billing-deps"))["Properties"]

    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert "layers/billing_deps" in layer["Description"]


def test_stripe_ships_in_the_billing_stack_only(full_synth: Synth) -> None:
    # Someone who deploys only the core and the costs stack never uploads or publishes stripe.
    def layer_names(part: StackSynth) -> list[str]:
        return sorted(lv["Properties"]["LayerName"] for lv in part.resources("AWS::Lambda::LayerVersion").values())

    def asset_keys(stack_name: str) -> set[str]:
        manifest = json.loads((full_synth.outdir / f"{stack_name}.assets.json").read_text())
        return {
            destination["objectKey"]
            for asset in manifest["files"].values()
            for destination in asset["destinations"].values()
        }

    billing_layer = resource(full_synth, layer_id(full_synth, "billing-deps"))["Properties"]["Content"]["S3Key"]

    assert layer_names(full_synth.core) == ["finops-guard-qa-common", "finops-guard-qa-report-deps"]
    assert layer_names(full_synth.costs) == []
    assert layer_names(full_synth.billing) == ["finops-guard-qa-billing-deps"]
    assert billing_layer in asset_keys("FinOpsGuard-qa-Billing")
    assert billing_layer not in asset_keys("FinOpsGuard-qa-Core") | asset_keys("FinOpsGuard-qa-Costs")


def test_webhook_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, WEBHOOK))

    assert statements == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, WEBHOOK)),
        },
        report_failed_events(full_synth),
        {
            "Sid": "ReadStripeSigningSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            ref("AWS::Partition"),
                            ":secretsmanager:",
                            ref("AWS::Region"),
                            ":",
                            ref("AWS::AccountId"),
                            ":secret:finops-guard/qa/stripe-webhook-secret-previous-??????",
                        ],
                    ]
                },
                ref(secret_id_named(full_synth, "stripe-webhook-secret")),
            ],
        },
        {
            "Sid": "RecordStripeEvents",
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": arn_of(table_id_of(full_synth, "stripe-events")),
        },
        {
            "Sid": "WriteLedger",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "billing-ledger")),
        },
        {
            "Sid": "TrackBillingObjects",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "billing-objects")),
        },
        {
            "Sid": "RaiseBillingAlerts",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "billing-alerts")),
        },
        {
            "Sid": "ScheduleDunning",
            "Effect": "Allow",
            "Action": ["dynamodb:Query", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "dunning")),
        },
        {
            "Sid": "ConfirmBotInvoices",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": arn_of(table_id_of(full_synth, "invoice-requests")),
        },
    ]


@pytest.mark.parametrize("short_name", [WEBHOOK, NOTIFIER])
def test_billing_roles_are_assumed_by_lambda_and_have_no_managed_policies(full_synth: Synth, short_name: str) -> None:
    role = resource(full_synth, role_id_of(full_synth, short_name))["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role


# --- REST API ---------------------------------------------------------------------------------


def test_api_is_a_regional_rest_api_named_after_the_stage(full_synth: Synth) -> None:
    api = resource(full_synth, api_id(full_synth))["Properties"]

    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert resource(full_synth, webhook_resource_id(full_synth))["Properties"]["ParentId"] == ref(
        logical_id(full_synth, "AWS::ApiGateway::Resource", "PathPart", "stripe")
    )


def test_post_webhook_is_a_lambda_proxy_that_requires_the_stripe_signature_header(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, WEBHOOK)
    validator_id, validator = full_synth.only("AWS::ApiGateway::RequestValidator")

    assert method_of(full_synth, "POST") == {
        "HttpMethod": "POST",
        "AuthorizationType": "NONE",
        "RestApiId": ref(api_id(full_synth)),
        "ResourceId": ref(webhook_resource_id(full_synth)),
        "RequestParameters": {"method.request.header.Stripe-Signature": True},
        "RequestValidatorId": ref(validator_id),
        "Integration": {
            "Type": "AWS_PROXY",
            "IntegrationHttpMethod": "POST",
            "Uri": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        ref("AWS::Partition"),
                        ":apigateway:",
                        ref("AWS::Region"),
                        ":lambda:path/2015-03-31/functions/",
                        arn_of(function_id),
                        "/invocations",
                    ],
                ]
            },
        },
    }
    assert validator["Properties"] == {
        "Name": "stripe-signature-header",
        "RestApiId": ref(api_id(full_synth)),
        "ValidateRequestParameters": True,
        "ValidateRequestBody": False,
    }


def test_api_gateway_may_invoke_the_webhook_only_for_post_on_the_stage(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, WEBHOOK)
    stage_id, _ = stage_of(full_synth)

    [permission] = [
        p["Properties"]
        for p in full_synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == arn_of(function_id)
    ]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Join"][1][-4:] == [
        ref(api_id(full_synth)),
        "/",
        ref(stage_id),
        "/POST/stripe/webhook",
    ]


def test_any_other_method_gets_405_from_a_mock_integration(full_synth: Synth) -> None:
    assert method_of(full_synth, "ANY") == {
        "HttpMethod": "ANY",
        "AuthorizationType": "NONE",
        "RestApiId": ref(api_id(full_synth)),
        "ResourceId": ref(webhook_resource_id(full_synth)),
        "Integration": {
            "Type": "MOCK",
            "RequestTemplates": {"application/json": '{"statusCode": 405}'},
            "IntegrationResponses": [
                {
                    "StatusCode": "405",
                    "ResponseParameters": {"method.response.header.Allow": "'POST'"},
                    "ResponseTemplates": {"application/json": '{"message": "method not allowed"}'},
                }
            ],
        },
        "MethodResponses": [{"StatusCode": "405", "ResponseParameters": {"method.response.header.Allow": True}}],
    }
    # POST and ANY on the webhook, plus the six finance admin routes (test_infra_billing_jobs.py).
    assert len(full_synth.resources("AWS::ApiGateway::Method")) == 8


@pytest.mark.parametrize(
    ("synth_name", "admin", "webhook"),
    [("default_synth", (10, 20), (50, 100)), ("full_synth", (7, 9), (20, 40))],
)
def test_stage_v1_throttles_the_webhook_and_every_other_method_each_on_its_own_logs_errors_and_collects_metrics(
    synth_name: str, admin: tuple[int, int], webhook: tuple[int, int], request: pytest.FixtureRequest
) -> None:
    # API Gateway applies a stage's (and a method's) limits to each method separately: the webhook's
    # flood of unsigned requests is throttled at its own limit, the finance routes at theirs.
    synth: Synth = request.getfixturevalue(synth_name)
    _, stage = stage_of(synth)
    logs_and_metrics = {"DataTraceEnabled": False, "LoggingLevel": "ERROR", "MetricsEnabled": True}

    assert stage["StageName"] == "v1"
    assert stage["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            **logs_and_metrics,
            "ThrottlingRateLimit": admin[0],
            "ThrottlingBurstLimit": admin[1],
        },
        {
            # CloudFormation's path encoding: "/" is "~1" (/stripe/webhook).
            "HttpMethod": "POST",
            "ResourcePath": "/~1stripe~1webhook",
            **logs_and_metrics,  # a method's override does not inherit the stage's logging and metrics
            "ThrottlingRateLimit": webhook[0],
            "ThrottlingBurstLimit": webhook[1],
        },
    ]


def test_the_webhook_throttle_names_the_webhook_post_method(full_synth: Synth) -> None:
    # The override's path and verb are those of the method Stripe calls, not of the 405 answer (ANY).
    _, stage = stage_of(full_synth)
    [override] = [s for s in stage["MethodSettings"] if s["ResourcePath"] != "/*"]
    [post] = [
        m["Properties"]
        for m in full_synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["ResourceId"] == ref(webhook_resource_id(full_synth))
        and m["Properties"]["HttpMethod"] == override["HttpMethod"]
    ]

    assert override["ResourcePath"].removeprefix("/").replace("~1", "/") == "/stripe/webhook"
    assert post["Integration"]["Type"] == "AWS_PROXY"


def test_access_log_is_one_json_object_per_request_in_its_own_log_group(full_synth: Synth) -> None:
    _, stage = stage_of(full_synth)
    log_group_id = stage["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]

    assert stage["AccessLogSetting"]["DestinationArn"] == arn_of(log_group_id)
    assert json.loads(stage["AccessLogSetting"]["Format"]) == {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "requestTime": "$context.requestTime",
        "integrationLatency": "$context.integrationLatency",
    }
    log_group = resource(full_synth, log_group_id)
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["DeletionPolicy"] == "RetainExceptOnCreate"
    assert log_group_id not in {log_group_id_of(full_synth, name) for name in (WEBHOOK, NOTIFIER)}


def test_logging_role_is_adopted_or_set_by_a_custom_resource_never_overwritten(full_synth: Synth) -> None:
    # AWS::ApiGateway::Account would overwrite a central team's setting, and two stages would fight over it.
    assert full_synth.resources("AWS::ApiGateway::Account") == {}
    setting_id, setting = full_synth.only("Custom::ApiGatewayCloudWatchRole")
    role_id = setting["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    role = resource(full_synth, role_id)
    stage_id, _ = stage_of(full_synth)

    # The billing stack's own setup function: the billing stack deploys without the costs stack.
    assert setting["Properties"]["ServiceToken"] == arn_of(function_of(full_synth, "billing-setup")[0])
    assert setting_id in full_synth.billing.template_json["Resources"]
    # The role may serve every API of the account once set: kept when the stack goes, not after a failed create.
    assert role["DeletionPolicy"] == "RetainExceptOnCreate"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}}
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {
            "Fn::Join": [
                "",
                ["arn:", ref("AWS::Partition"), ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
            ]
        }
    ]
    # Logging is switched on by the stage: the account must name a logs role before it exists.
    assert resource(full_synth, stage_id)["DependsOn"] == [setting_id]


def test_api_pages_on_5xx_and_signature_failures_only(full_synth: Synth) -> None:
    # A 4xx spike is mostly unsigned probes, already throttled and counted as signature failures.
    # Each alarm's exact properties and first step: slo_alarms in test_infra_monitoring.py.
    names = sorted(
        a["Properties"]["AlarmName"]
        for a in full_synth.billing.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].startswith("FinOpsGuard-qa-billing-api-")
    )

    assert names == ["FinOpsGuard-qa-billing-api-5xx", "FinOpsGuard-qa-billing-api-signature-failures"]


def test_signature_failure_spike_pages_ops_at_ten_in_five_minutes(full_synth: Synth) -> None:
    topic = ops_topic_ref(full_synth)
    [alarm] = [
        a["Properties"]
        for a in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "FinOpsGuard-qa-billing-api-signature-failures"
    ]

    assert {k: v for k, v in alarm.items() if k not in ("AlarmDescription", "Tags")} == {
        "AlarmName": "FinOpsGuard-qa-billing-api-signature-failures",
        "Namespace": "FinOpsGuard",
        "MetricName": "StripeSignatureFailures",
        "Dimensions": [{"Name": "service", "Value": "stripe-webhook"}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 10,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [topic],
        "OKActions": [topic],
    }
    description = json.dumps(alarm["AlarmDescription"])
    assert "First:" in description
    assert "finops-guard/qa/stripe-webhook-secret" in description
    assert "finops-guard/qa/stripe-webhook-secret-previous" in description


@pytest.mark.parametrize("short_name", [WEBHOOK, NOTIFIER])
def test_billing_function_retries_a_failed_async_event_twice_then_parks_it_in_the_failure_queue(
    full_synth: Synth, short_name: str
) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.billing, short_name)


@pytest.mark.parametrize("short_name", [WEBHOOK, NOTIFIER])
def test_billing_functions_page_through_the_stage_wide_alarms_not_their_own(full_synth: Synth, short_name: str) -> None:
    assert_pages_only_through_the_stage_alarms(full_synth, f"FinOpsGuard-qa-{short_name}-")


# --- billing notifier -------------------------------------------------------------------------


def test_notifier_runs_arm64_python_3_13_for_up_to_a_minute_with_report_layers(full_synth: Synth) -> None:
    full_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "finops-guard-qa-billing-notifier",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": 60,
            "MemorySize": 256,
            "DeadLetterConfig": Match.absent(),
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, NOTIFIER))},
            # No stripe: only the core layers, resolved from their SSM parameters.
            "Layers": [
                ref(layer_parameter_id(full_synth.billing, "common")),
                ref(layer_parameter_id(full_synth.billing, "report-deps")),
            ],
        },
    )


def test_notifier_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    _, function = function_of(full_synth, NOTIFIER)

    assert function["Environment"]["Variables"] == {
        "FINOPSGUARD_STAGE": "qa",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/finance-teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/finance-slack-webhook-url",
        # The core's outbox, by its fixed name.
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",
        "POWERTOOLS_SERVICE_NAME": "billing-notifier",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        "FINOPSGUARD_KPI_METRICS": "off",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_notifier_has_no_slack_secret_by_default(default_synth: Synth) -> None:
    variables = function_of(default_synth, NOTIFIER)[1]["Environment"]["Variables"]

    assert variables["FINOPSGUARD_TEAMS_SECRET_NAME"] == "finops-guard/dev/finance-teams-webhook-url"
    assert "FINOPSGUARD_SLACK_SECRET_NAME" not in variables


def test_notifier_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, NOTIFIER))
    alerts_table_id = table_id_of(full_synth, "billing-alerts")

    assert statements == [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(full_synth, NOTIFIER)),
        },
        # Also what the stream trigger's on-failure destination needs: no second statement, no queue reads.
        report_failed_events(full_synth),
        {"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            "Resource": {"Fn::GetAtt": [alerts_table_id, "StreamArn"]},
        },
        {
            "Sid": "ReadFinanceWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [
                ref(secret_id_named(full_synth, "finance-slack-webhook-url")),
                ref(secret_id_named(full_synth, "finance-teams-webhook-url")),
            ],
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": outbox_arn("qa"),
        },
    ]


def test_billing_stack_stands_on_the_core_alone_through_two_exports_and_the_outbox_name(full_synth: Synth) -> None:
    billing = full_synth.billing
    imports = {
        value for resource_ in billing.template_json["Resources"].values() for value in _import_values(resource_)
    }

    assert imports == {"finops-guard-qa-ops-topic-arn", "finops-guard-qa-failure-queue-arn"}
    # Deployed after the core, never with the costs stack.
    assert [stack.stack_name for stack in billing.stack.dependencies] == ["FinOpsGuard-qa-Core"]
    # The ops topic, failure queue and outbox are the core's: none of its own.
    assert billing.resources("AWS::SNS::Topic") == {}
    assert billing.resources("AWS::SQS::Queue") == {}
    assert "finops-guard-qa-outbox" not in [
        table["Properties"]["TableName"] for table in billing.resources("AWS::DynamoDB::Table").values()
    ]


def _import_values(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"Fn::ImportValue"}:
            return [value["Fn::ImportValue"]]
        return [found for v in value.values() for found in _import_values(v)]
    if isinstance(value, list):
        return [found for v in value for found in _import_values(v)]
    return []


def test_billing_alerts_stream_triggers_the_notifier_in_small_bisected_batches(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, NOTIFIER)
    [mapping] = [
        m
        for m in full_synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == ref(function_id)
    ]

    assert {k: v for k, v in mapping["Properties"].items() if k != "Tags"} == {
        "EventSourceArn": {"Fn::GetAtt": [table_id_of(full_synth, "billing-alerts"), "StreamArn"]},
        "FunctionName": ref(function_id),
        "StartingPosition": "LATEST",
        "BatchSize": 10,
        "MaximumRetryAttempts": 3,
        "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        # A batch that fails every retry is recorded in the stage's failure queue, whose alarm pages.
        "DestinationConfig": {"OnFailure": {"Destination": failure_queue_ref(full_synth)}},
    }


# --- outputs and tags -------------------------------------------------------------------------


def test_stripe_webhook_url_output_is_the_full_post_url(full_synth: Synth) -> None:
    stage_id, _ = stage_of(full_synth)

    assert full_synth.billing.template_json["Outputs"]["StripeWebhookUrl"] == {
        "Value": {
            "Fn::Join": [
                "",
                [
                    "https://",
                    ref(api_id(full_synth)),
                    ".execute-api.",
                    ref("AWS::Region"),
                    ".",
                    ref("AWS::URLSuffix"),
                    "/",
                    ref(stage_id),
                    "/stripe/webhook",
                ],
            ]
        }
    }


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Stage",
        "AWS::Lambda::EventSourceMapping",
    ],
)
def test_billing_api_resources_carry_the_cost_allocation_tags(full_synth: Synth, resource_type: str) -> None:
    for lid in full_synth.resources(resource_type):
        assert tags_of(full_synth, lid) == EXPECTED_TAGS


def test_billing_tables_functions_and_secrets_carry_the_cost_allocation_tags(full_synth: Synth) -> None:
    lids = [
        *(table_id_of(full_synth, t) for t in ("stripe-events", "billing-ledger", "billing-objects", "dunning")),
        table_id_of(full_synth, "invoice-requests"),
        table_id_of(full_synth, "billing-alerts"),
        function_of(full_synth, WEBHOOK)[0],
        function_of(full_synth, NOTIFIER)[0],
        secret_id_named(full_synth, "stripe-webhook-secret"),
    ]

    for lid in lids:
        assert tags_of(full_synth, lid) == EXPECTED_TAGS
