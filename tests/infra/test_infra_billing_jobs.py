"""Exact properties of the billing operations: the Stripe API key secret, the ledger export bucket, the
dunning-sender, reconciliation and billing-admin functions, their schedules, the finance admin routes
on the billing REST API and the invoice-latency and dunning alarms, all in the billing stack and paging
through the core's ops topic and failure queue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from conftest import (
    Synth,
    arn_of,
    assert_parks_failed_async_events,
    export_bucket_id,
    failure_queue_ref,
    function_of,
    layer_id,
    layer_parameter_id,
    log_group_id_of,
    logical_id,
    only_invoke_and_park,
    ops_topic_ref,
    outbox_arn,
    policy_statements_of_role,
    ref,
    role_id_of,
    scheduler_role_id,
    table_id_of,
)

pytestmark = pytest.mark.infra

DUNNING = "dunning-sender"
RECONCILIATION = "reconciliation"
ADMIN = "billing-admin"
ADMIN_ROUTES = [
    ("/invoices", "POST"),
    ("/billing/summary", "GET"),
    ("/billing/alerts/{id}/retry", "POST"),
    ("/billing/alerts/{id}/resend", "POST"),
    ("/billing/portal-session", "POST"),
    ("/billing/export.csv", "GET"),
]
POWERTOOLS = {"POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard", "POWERTOOLS_LOG_LEVEL": "INFO"}


def resource(synth: Synth, lid: str) -> dict[str, Any]:
    return synth.template_json["Resources"][lid]


def api_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::ApiGateway::RestApi", "Name", f"finops-guard-{synth.stack.config.stage}-billing")


def stage_id(synth: Synth) -> str:
    return synth.only("AWS::ApiGateway::Stage")[0]


def stripe_key_secret_id(synth: Synth) -> str:
    return logical_id(
        synth, "AWS::SecretsManager::Secret", "Name", f"finops-guard/{synth.stack.config.stage}/stripe-api-key"
    )


def access_log_bucket_id(synth: Synth) -> str:
    target = resource(synth, export_bucket_id(synth))["Properties"]["LoggingConfiguration"]["DestinationBucketName"]
    return target["Ref"]


def api_resource_path(synth: Synth, lid: str) -> str:
    """``/billing/alerts/{id}/retry`` for an AWS::ApiGateway::Resource, by walking its parents."""
    parts = []
    while lid != api_id(synth):
        properties = resource(synth, lid)["Properties"]
        parts.append(properties["PathPart"])
        parent = properties["ParentId"]
        if parent == {"Fn::GetAtt": [api_id(synth), "RootResourceId"]}:
            break
        lid = parent["Ref"]
    return "/" + "/".join(reversed(parts))


def methods_by_route(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (api_resource_path(synth, m["Properties"]["ResourceId"]["Ref"]), m["Properties"]["HttpMethod"]): m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
    }


def index_arn(synth: Synth, table: str, index: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [arn_of(table_id_of(synth, table)), f"/index/{index}"]]}


def own_statements(synth: Synth, short_name: str) -> list[dict[str, Any]]:
    """Log writing and reporting failed async events, which every MonitoredFunction role starts with."""
    return [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": arn_of(log_group_id_of(synth, short_name)),
        },
        {
            "Sid": "ReportFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": failure_queue_ref(synth),
        },
    ]


def read_stripe_api_key(synth: Synth) -> dict[str, Any]:
    return {
        "Sid": "ReadStripeApiKey",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": ref(stripe_key_secret_id(synth)),
    }


def ses_identity(identity: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                ref("AWS::Partition"),
                ":ses:",
                ref("AWS::Region"),
                ":",
                ref("AWS::AccountId"),
                f":identity/{identity}",
            ],
        ]
    }


def alarm_named(synth: Synth, name: str) -> dict[str, Any]:
    [alarm] = [a for a in synth.resources("AWS::CloudWatch::Alarm").values() if a["Properties"]["AlarmName"] == name]
    return alarm["Properties"]


def stripe_environment(synth: Synth) -> dict[str, Any]:
    return {
        "FINOPSGUARD_STAGE": synth.stack.config.stage,
        "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": f"finops-guard/{synth.stack.config.stage}/stripe-api-key",
        "FINOPSGUARD_LEDGER_TABLE": ref(table_id_of(synth, "billing-ledger")),
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": ref(table_id_of(synth, "billing-objects")),
        "FINOPSGUARD_BILLING_ALERTS_TABLE": ref(table_id_of(synth, "billing-alerts")),
        "FINOPSGUARD_DUNNING_TABLE": ref(table_id_of(synth, "dunning")),
    }


# --- Stripe API key ---------------------------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_stripe_api_key_is_a_retained_placeholder_that_says_which_key_and_how_to_roll_it(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    name = f"finops-guard/{synth.stack.config.stage}/stripe-api-key"
    secret = resource(synth, stripe_key_secret_id(synth))

    assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
    assert secret["Properties"]["GenerateSecretString"] == {}
    description = secret["Properties"]["Description"]
    assert "restricted API key (rk_...)" in description
    assert "write access to Invoices, Invoice Items and Customer portal" in description
    assert "read access to Customers" in description
    assert description.endswith(f"put-secret-value --secret-id {name} --secret-string 'rk_...'")


# --- export bucket ----------------------------------------------------------------------------


def test_export_bucket_is_versioned_encrypted_private_logged_and_retained(full_synth: Synth) -> None:
    full_synth.template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_equals(
                {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
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
                        "LogFilePrefix": "export-bucket/",
                    },
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "expire-overwritten-exports",
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 400},
                                "Status": "Enabled",
                            }
                        ]
                    },
                    "Tags": Match.any_value(),
                }
            ),
        },
    )
    assert "BucketName" not in resource(full_synth, export_bucket_id(full_synth))["Properties"]


@pytest.mark.parametrize("bucket", ["export", "access-logs"])
def test_buckets_refuse_requests_without_tls(full_synth: Synth, bucket: str) -> None:
    bucket_id = export_bucket_id(full_synth) if bucket == "export" else access_log_bucket_id(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": ref(bucket_id),
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": [
                                arn_of(bucket_id),
                                {"Fn::Join": ["", [arn_of(bucket_id), "/*"]]},
                            ],
                        }
                    ]
                ),
                "Version": "2012-10-17",
            },
        },
    )


def test_access_log_bucket_takes_only_the_export_bucket_logs_and_expires_them(full_synth: Synth) -> None:
    log_bucket_id = access_log_bucket_id(full_synth)
    bucket = resource(full_synth, log_bucket_id)
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in full_synth.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(log_bucket_id)
    ]

    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert bucket["Properties"]["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["Properties"]["LifecycleConfiguration"] == {
        "Rules": [{"ExpirationInDays": 400, "Id": "expire-access-logs", "Status": "Enabled"}]
    }
    assert "AccessControl" not in bucket["Properties"]  # a bucket policy, not the LogDeliveryWrite ACL
    assert policy[1] == {
        "Action": "s3:PutObject",
        "Condition": {
            "ArnLike": {"aws:SourceArn": arn_of(export_bucket_id(full_synth))},
            "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
        },
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Resource": {"Fn::Join": ["", [arn_of(log_bucket_id), "/export-bucket/*"]]},
    }
    assert len(policy) == 2  # TLS only, and log delivery from the export bucket: nothing else writes here


# --- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short_name", "timeout", "memory"),
    [(DUNNING, 120, 256), (RECONCILIATION, 300, 512), (ADMIN, 29, 512)],
)
def test_billing_jobs_run_arm64_python_3_13_with_explicit_limits_and_the_billing_layers(
    full_synth: Synth, short_name: str, timeout: int, memory: int
) -> None:
    full_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"finops-guard-qa-{short_name}",
            "Architectures": ["arm64"],
            "Runtime": "python3.13",
            "Handler": "handler.lambda_handler",
            "Timeout": timeout,
            "MemorySize": memory,
            "DeadLetterConfig": Match.absent(),
            "LoggingConfig": {"LogGroup": ref(log_group_id_of(full_synth, short_name))},
        },
    )
    billing = full_synth.billing
    layers = function_of(full_synth, short_name)[1]["Layers"]
    # stripe from the billing stack's own layer; the core layers resolved from their SSM parameters.
    assert sorted(layer["Ref"] for layer in layers) == sorted(
        [
            layer_id(billing, "billing-deps"),
            layer_parameter_id(billing, "common"),
            layer_parameter_id(billing, "report-deps"),
        ]
    )
    assert len(layers) == 3


@pytest.mark.parametrize("short_name", [DUNNING, RECONCILIATION, ADMIN])
def test_billing_job_retries_a_failed_async_event_twice_then_parks_it_in_the_failure_queue(
    full_synth: Synth, short_name: str
) -> None:
    assert_parks_failed_async_events(full_synth, full_synth.billing, short_name)


@pytest.mark.parametrize(
    ("short_name", "service_alarms"),
    [(DUNNING, ["StepsFailed", "StepsStuck"]), (RECONCILIATION, ["Mismatches"]), (ADMIN, [])],
)
def test_billing_jobs_have_only_their_service_level_alarms_and_a_one_month_log_group(
    full_synth: Synth, short_name: str, service_alarms: list[str]
) -> None:
    # Errors, timeouts and throttles page through the failure queue's alarm, a failed chat post (billing-admin's
    # alert resend) through the stage's ChatDeliveryFailures alarm: both in the core stack.
    prefix = f"FinOpsGuard-qa-{short_name}-"
    names = sorted(
        a["Properties"]["AlarmName"]
        for a in full_synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].startswith(prefix)
    )

    assert names == [f"{prefix}{s}" for s in service_alarms]
    assert resource(full_synth, log_group_id_of(full_synth, short_name))["Properties"]["RetentionInDays"] == 30


def test_dunning_sender_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    variables = dict(function_of(full_synth, DUNNING)[1]["Environment"]["Variables"])

    templates = variables.pop("FINOPSGUARD_DUNNING_TEMPLATES")

    assert variables == {
        **stripe_environment(full_synth),
        "FINOPSGUARD_STRIPE_API_BASE": "http://127.0.0.1:12111",
        "FINOPSGUARD_DUNNING_SENDER_EMAIL": "billing@example.com",
        "POWERTOOLS_SERVICE_NAME": DUNNING,
        "FINOPSGUARD_KPI_METRICS": "off",  # no dashboard
        **POWERTOOLS,
    }
    assert json.loads(templates) == {
        "2:sms": {"body": "{amount} due {due_date}: {pay_link}"},
        "7:email": {"subject": "Day {day}: invoice {invoice_number}", "body": "Please pay at {pay_link}"},
        "email": {"subject": "Invoice {invoice_number} is unpaid", "body": "Hi {customer_name}, pay {amount}."},
    }


def test_dunning_templates_travel_as_compact_json_sorted_by_key(full_synth: Synth) -> None:
    variables = function_of(full_synth, DUNNING)[1]["Environment"]["Variables"]

    assert variables["FINOPSGUARD_DUNNING_TEMPLATES"] == (
        '{"2:sms":{"body":"{amount} due {due_date}: {pay_link}"},'
        '"7:email":{"subject":"Day {day}: invoice {invoice_number}","body":"Please pay at {pay_link}"},'
        '"email":{"subject":"Invoice {invoice_number} is unpaid","body":"Hi {customer_name}, pay {amount}."}}'
    )


def test_reconciliation_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    variables = function_of(full_synth, RECONCILIATION)[1]["Environment"]["Variables"]

    assert variables == {
        **stripe_environment(full_synth),
        "FINOPSGUARD_STRIPE_API_BASE": "http://127.0.0.1:12111",
        "FINOPSGUARD_VARIANCE_PERCENT": "2.5",
        "FINOPSGUARD_RECONCILIATION_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": RECONCILIATION,
        "FINOPSGUARD_KPI_METRICS": "off",  # no dashboard
        **POWERTOOLS,
    }


def test_billing_admin_environment_is_exactly_the_documented_settings(full_synth: Synth) -> None:
    variables = function_of(full_synth, ADMIN)[1]["Environment"]["Variables"]

    assert variables == {
        **stripe_environment(full_synth),
        "FINOPSGUARD_STRIPE_API_BASE": "http://127.0.0.1:12111",
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": ref(table_id_of(full_synth, "invoice-requests")),
        "FINOPSGUARD_EXPORT_BUCKET": ref(export_bucket_id(full_synth)),
        "FINOPSGUARD_PORTAL_RETURN_URL": "https://billing.example.com/account",
        "FINOPSGUARD_INVOICE_DAYS_UNTIL_DUE": "14",
        # The finance chat settings, exactly as billing-notifier has them.
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "EUR",
        "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/qa/finance-teams-webhook-url",
        "FINOPSGUARD_SLACK_SECRET_NAME": "finops-guard/qa/finance-slack-webhook-url",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-qa-outbox",  # the core's, by its fixed name
        "POWERTOOLS_SERVICE_NAME": ADMIN,
        "FINOPSGUARD_KPI_METRICS": "off",  # no dashboard
        **POWERTOOLS,
    }


def test_billing_admin_posts_to_finance_with_the_notifier_settings(full_synth: Synth) -> None:
    admin = function_of(full_synth, ADMIN)[1]["Environment"]["Variables"]
    notifier = function_of(full_synth, "billing-notifier")[1]["Environment"]["Variables"]

    shared = {k: v for k, v in notifier.items() if not k.startswith("POWERTOOLS_")}
    assert {k: admin[k] for k in shared} == shared


@pytest.mark.parametrize(
    ("short_name", "expected"),
    [
        (DUNNING, {}),
        (RECONCILIATION, {"FINOPSGUARD_VARIANCE_PERCENT": "1", "FINOPSGUARD_RECONCILIATION_DAYS": "30"}),
        (
            ADMIN,
            {
                "FINOPSGUARD_INVOICE_DAYS_UNTIL_DUE": "30",
                "FINOPSGUARD_TIMEZONE": "UTC",
                "FINOPSGUARD_CURRENCY": "USD",
                "FINOPSGUARD_TEAMS_SECRET_NAME": "finops-guard/dev/finance-teams-webhook-url",
            },
        ),
    ],
)
def test_optional_billing_settings_are_absent_by_default(
    default_synth: Synth, short_name: str, expected: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"finops-guard-dev-{short_name}",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        **stripe_environment(default_synth),
                        **expected,
                        "FINOPSGUARD_STRIPE_API_BASE": Match.absent(),
                        "FINOPSGUARD_DUNNING_SENDER_EMAIL": Match.absent(),
                        "FINOPSGUARD_DUNNING_TEMPLATES": Match.absent(),
                        "FINOPSGUARD_PORTAL_RETURN_URL": Match.absent(),
                        "FINOPSGUARD_SLACK_SECRET_NAME": Match.absent(),
                    }
                )
            },
        },
    )


# --- permissions ------------------------------------------------------------------------------


def test_dunning_sender_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, DUNNING))

    assert statements == [
        *own_statements(full_synth, DUNNING),
        read_stripe_api_key(full_synth),
        {
            "Sid": "FindDueSteps",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "dunning", "by-due"),
        },
        {
            "Sid": "UpdateDunningSteps",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": arn_of(table_id_of(full_synth, "dunning")),
        },
        {
            "Sid": "SendDunningEmails",
            "Effect": "Allow",
            "Action": "ses:SendEmail",
            "Resource": [ses_identity("billing@example.com"), ses_identity("example.com")],
        },
        {"Sid": "SendDunningSms", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},
        {
            # Every SNS ARN, in any region and account: topics and platform endpoints. A phone number is no ARN.
            "Sid": "PublishNowhereButPhoneNumbers",
            "Effect": "Deny",
            "Action": "sns:Publish",
            "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sns:*:*:*"]]},
        },
    ]


def test_dunning_sender_may_send_no_email_without_a_sender_address(default_synth: Synth) -> None:
    statements = policy_statements_of_role(default_synth, role_id_of(default_synth, DUNNING))

    assert [s.get("Sid") for s in statements] == [
        "WriteOwnLogs",
        "ReportFailedEvents",
        "ReadStripeApiKey",
        "FindDueSteps",
        "UpdateDunningSteps",
        "SendDunningSms",
        "PublishNowhereButPhoneNumbers",
    ]
    assert not [s for s in statements if "ses:" in json.dumps(s["Action"])]


def test_reconciliation_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, RECONCILIATION))

    assert statements == [
        *own_statements(full_synth, RECONCILIATION),
        read_stripe_api_key(full_synth),
        {
            "Sid": "ReadLedgerMonths",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-ledger", "by-month"),
        },
        {
            "Sid": "RecordReconciliationRuns",
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": arn_of(table_id_of(full_synth, "billing-objects")),
        },
        {
            "Sid": "RaiseLedgerMismatches",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": arn_of(table_id_of(full_synth, "billing-alerts")),
        },
        {
            "Sid": "ListOpenAlerts",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-alerts", "by-status"),
        },
        {
            "Sid": "ListSubscriptions",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-objects", "by-type"),
        },
    ]


def test_billing_admin_role_has_exactly_the_least_privilege_statements(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, ADMIN))
    finance_secret = {
        channel: ref(
            logical_id(
                full_synth, "AWS::SecretsManager::Secret", "Name", f"finops-guard/qa/finance-{channel}-webhook-url"
            )
        )
        for channel in ("teams", "slack")
    }

    assert statements == [
        *own_statements(full_synth, ADMIN),
        read_stripe_api_key(full_synth),
        {
            "Sid": "ReadFinanceWebhookSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [finance_secret["slack"], finance_secret["teams"]],
        },
        {
            "Sid": "UseOutbox",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": outbox_arn("qa"),
        },
        {
            "Sid": "ReadLedgerMonths",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-ledger", "by-month"),
        },
        {
            "Sid": "ReadBillingObjects",
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": arn_of(table_id_of(full_synth, "billing-objects")),
        },
        {
            "Sid": "ListBillingObjectsByType",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-objects", "by-type"),
        },
        {
            "Sid": "RetryAndResendAlerts",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "billing-alerts")),
        },
        {
            "Sid": "ListOpenAlerts",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": index_arn(full_synth, "billing-alerts", "by-status"),
        },
        {
            "Sid": "TrackInvoiceRequests",
            "Effect": "Allow",
            "Action": ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": arn_of(table_id_of(full_synth, "invoice-requests")),
        },
        {
            "Sid": "WriteLedgerExports",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Join": ["", [arn_of(export_bucket_id(full_synth)), "/ledger/*"]]},
        },
    ]


@pytest.mark.parametrize("short_name", [DUNNING, RECONCILIATION, ADMIN])
def test_billing_job_roles_are_assumed_by_lambda_and_have_no_managed_policies(
    full_synth: Synth, short_name: str
) -> None:
    role = resource(full_synth, role_id_of(full_synth, short_name))["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role


# --- schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synth_name", "short_name", "target", "expression", "timezone", "action"),
    [
        ("default_synth", "dunning-sender", DUNNING, "rate(1 hour)", "UTC", "send_due_steps"),
        ("default_synth", "reconciliation", RECONCILIATION, "cron(30 6 * * ? *)", "UTC", "reconcile"),
        ("default_synth", "billing-export", ADMIN, "cron(0 6 ? * MON *)", "UTC", "weekly_export"),
        ("full_synth", "dunning-sender", DUNNING, "rate(30 minutes)", "UTC", "send_due_steps"),
        ("full_synth", "reconciliation", RECONCILIATION, "cron(0 5 * * ? *)", "UTC", "reconcile"),
        ("full_synth", "billing-export", ADMIN, "cron(0 7 ? * FRI *)", "Europe/Madrid", "weekly_export"),
    ],
)
def test_schedule_starts_its_function_with_retries_and_the_failure_queue(
    synth_name: str,
    short_name: str,
    target: str,
    expression: str,
    timezone: str,
    action: str,
    request: pytest.FixtureRequest,
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    schedule_input = Capture()

    synth.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": f"finops-guard-{synth.stack.config.stage}-{short_name}",
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": arn_of(function_of(synth, target)[0]),
                "RoleArn": Match.any_value(),
                "Input": schedule_input,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": failure_queue_ref(synth)},
            },
        },
    )
    assert json.loads(schedule_input.as_string()) == {
        "action": action,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


@pytest.mark.parametrize(
    ("short_name", "target", "sid"),
    [
        ("dunning-sender", DUNNING, "InvokeDunningSender"),
        ("reconciliation", RECONCILIATION, "InvokeReconciliation"),
        ("billing-export", ADMIN, "InvokeBillingExport"),
    ],
)
def test_scheduler_role_may_only_invoke_its_function_and_park_failed_events(
    full_synth: Synth, short_name: str, target: str, sid: str
) -> None:
    role_id = scheduler_role_id(full_synth, short_name)
    assert policy_statements_of_role(full_synth, role_id) == only_invoke_and_park(full_synth, target, sid)


# --- finance admin routes ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "http_method"), ADMIN_ROUTES)
def test_admin_route_is_an_iam_authorised_lambda_proxy_to_billing_admin(
    full_synth: Synth, path: str, http_method: str
) -> None:
    function_id, _ = function_of(full_synth, ADMIN)
    method = methods_by_route(full_synth)[(path, http_method)]

    assert {k: v for k, v in method.items() if k != "ResourceId"} == {
        "HttpMethod": http_method,
        "AuthorizationType": "AWS_IAM",
        "RestApiId": ref(api_id(full_synth)),
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


def test_api_has_exactly_the_webhook_and_the_admin_routes_and_only_the_webhook_is_unsigned(
    full_synth: Synth,
) -> None:
    authorization = {route: m["AuthorizationType"] for route, m in methods_by_route(full_synth).items()}

    assert authorization == {
        ("/stripe/webhook", "POST"): "NONE",
        ("/stripe/webhook", "ANY"): "NONE",
        **{route: "AWS_IAM" for route in ADMIN_ROUTES},
    }


def test_api_gateway_may_invoke_billing_admin_only_for_the_admin_routes_on_the_stage(full_synth: Synth) -> None:
    function_id, _ = function_of(full_synth, ADMIN)
    permissions = [
        p["Properties"]
        for p in full_synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == arn_of(function_id)
    ]

    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    routes = sorted((p["SourceArn"]["Fn::Join"][1][-2], p["SourceArn"]["Fn::Join"][1][-1]) for p in permissions)
    # API Gateway source ARNs name a path parameter as "*".
    expected = [(ref(stage_id(full_synth)), f"/{method}{path.replace('{id}', '*')}") for path, method in ADMIN_ROUTES]
    assert routes == sorted(expected)


def test_rest_api_description_covers_the_webhook_and_the_admin_api(full_synth: Synth) -> None:
    description = resource(full_synth, api_id(full_synth))["Properties"]["Description"]

    assert "Stripe webhook events" in description
    assert "IAM-authorised finance admin API" in description


def test_billing_admin_api_url_output_is_the_stage_url(full_synth: Synth) -> None:
    assert full_synth.template_json["Outputs"]["BillingAdminApiUrl"] == {
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
                    ref(stage_id(full_synth)),
                    "/",
                ],
            ]
        }
    }
    assert full_synth.template_json["Outputs"]["BillingExportBucketName"] == {
        "Value": ref(export_bucket_id(full_synth))
    }


# --- alarms -----------------------------------------------------------------------------------


def test_invoice_latency_slo_alarm_pages_ops_below_99_percent_within_5_minutes(full_synth: Synth) -> None:
    topic = ops_topic_ref(full_synth)

    def hourly_sum(metric_name: str) -> dict[str, Any]:
        return {
            "Metric": {
                "Dimensions": [{"Name": "service", "Value": "stripe-webhook"}],
                "MetricName": metric_name,
                "Namespace": "FinOpsGuard",
            },
            "Period": 3600,
            "Stat": "Sum",
        }

    alarm = alarm_named(full_synth, "FinOpsGuard-qa-invoice-latency-slo")

    assert {k: v for k, v in alarm.items() if k not in ("AlarmDescription", "Tags")} == {
        "AlarmName": "FinOpsGuard-qa-invoice-latency-slo",
        "ComparisonOperator": "LessThanThreshold",
        "Threshold": 99,
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [topic],
        "OKActions": [topic],
        "Metrics": [
            {
                "Expression": "100 * FILL(within, 0) / confirmed",
                "Id": "expr_1",
                "Label": "Bot invoices confirmed within 5 minutes (%)",
                "ReturnData": True,
            },
            {"Id": "confirmed", "MetricStat": hourly_sum("InvoicesConfirmed"), "ReturnData": False},
            {"Id": "within", "MetricStat": hourly_sum("InvoicesConfirmedWithin5Min"), "ReturnData": False},
        ],
    }
    assert "First:" in alarm["AlarmDescription"]


def test_dunning_failure_alarm_pages_ops_on_the_first_failed_step_in_an_hour(full_synth: Synth) -> None:
    topic = ops_topic_ref(full_synth)

    full_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "FinOpsGuard-qa-dunning-sender-StepsFailed",
            "Namespace": "FinOpsGuard",
            "MetricName": "DunningStepsFailed",
            "Dimensions": [{"Name": "service", "Value": "dunning-sender"}],
            "Statistic": "Sum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
            "OKActions": [topic],
        },
    )
    description = json.dumps(alarm_named(full_synth, "FinOpsGuard-qa-dunning-sender-StepsFailed")["AlarmDescription"])
    assert "First:" in description


def test_a_dunning_step_stuck_in_sending_pages_ops(full_synth: Synth) -> None:
    topic = ops_topic_ref(full_synth)
    full_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "FinOpsGuard-qa-dunning-sender-StepsStuck",
            "Namespace": "FinOpsGuard",
            "MetricName": "DunningStepsStuck",
            "Dimensions": [{"Name": "service", "Value": "dunning-sender"}],
            "Statistic": "Sum",
            "Period": 3600,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
        },
    )


def test_every_billing_stack_alarm_is_service_level_and_pages_the_core_ops_topic(full_synth: Synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in full_synth.billing.resources("AWS::CloudWatch::Alarm").values()
    }

    assert sorted(alarms) == [
        "FinOpsGuard-qa-billing-api-5xx",
        "FinOpsGuard-qa-billing-api-signature-failures",
        "FinOpsGuard-qa-dunning-sender-StepsFailed",
        "FinOpsGuard-qa-dunning-sender-StepsStuck",
        "FinOpsGuard-qa-invoice-latency-slo",
        "FinOpsGuard-qa-reconciliation-Mismatches",
    ]
    for name, alarm in alarms.items():
        assert (alarm["AlarmActions"], alarm["OKActions"]) == (
            [ops_topic_ref(full_synth)],
            [ops_topic_ref(full_synth)],
        ), name


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_alarm_descriptions_fit_cloudwatch_limit(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        description = alarm["Properties"]["AlarmDescription"]
        text = (
            description
            if isinstance(description, str)
            else "".join(part if isinstance(part, str) else "x" * 64 for part in description["Fn::Join"][1])
        )
        assert len(text) <= 1024, alarm["Properties"]["AlarmName"]
