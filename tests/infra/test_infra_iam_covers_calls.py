"""The role CDK grants each function covers every AWS call its code makes.

Each scenario runs a real handler on in-process moto (and a loopback chat sink), records every
(action, table) the code issues, including the items inside TransactWriteItems and the tables of
BatchGetItem/BatchWriteItem, plus the other services' actions, and checks them against the
synthesized policy of that function's role.
Moto does not enforce IAM, so without this a missing grant only shows after a deploy.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import boto3
import botocore.client
import pytest
from conftest import (
    Synth,
    chargeback_bucket_id,
    export_bucket_id,
    joined_text,
    policy_statements_of_role,
    ref,
    role_id_of,
    table_id_of,
)
from moto import mock_aws

from devtools.lambda_runner import ROOT

pytestmark = pytest.mark.infra
TRANSACT_ACTIONS = {
    "Get": "GetItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def api_calls(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(IAM action, what it acts on) for one API call: a DynamoDB table name ("<table>/index/<index>" for
    index reads), "secret:<SecretId>", "object:<bucket>/<key>", or "" for the rest."""
    if service == "secretsmanager" and "SecretId" in params:
        return [(f"secretsmanager:{operation}", f"secret:{params['SecretId']}")]
    if service == "s3" and "Bucket" in params and "Key" in params:
        return [(f"s3:{operation}", f"object:{params['Bucket']}/{params['Key']}")]
    if service != "dynamodb":
        # sts:GetCallerIdentity is not listed: it needs no permission (and no policy can deny it).
        prefixes = {"secretsmanager": "secretsmanager", "sns": "sns", "events": "events", "ce": "ce", "s3": "s3",
                    "sesv2": "ses", "cost-optimization-hub": "cost-optimization-hub",
                    "organizations": "organizations"}  # fmt: skip
        prefix = prefixes.get(service)
        return [(f"{prefix}:{operation}", "")] if prefix else []
    if operation in ("BatchGetItem", "BatchWriteItem"):
        # No TableName: the tables are the keys of RequestItems, and IAM checks the action on each.
        return [(f"dynamodb:{operation}", table) for table in params["RequestItems"]]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            (f"dynamodb:{TRANSACT_ACTIONS[kind]}", body["TableName"])
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if "TableName" in params and params.get("IndexName"):
        return [(f"dynamodb:{operation}", f"{params['TableName']}/index/{params['IndexName']}")]
    if "TableName" in params:
        return [(f"dynamodb:{operation}", params["TableName"])]
    return [(f"dynamodb:{operation}", "")]  # names no table (ListTables): the action must still be granted


class InProcessAws:
    """moto in-process (mock_aws), with the embedded AWS's table builders."""

    def __init__(self) -> None:
        from devtools.embedded_aws import EmbeddedAws

        class InProcess(EmbeddedAws):
            def __init__(self) -> None:
                self.endpoint = ""

            def client(self, service: str, region: str = "eu-west-1") -> Any:
                return boto3.client(service, region_name=region)

        self.aws = InProcess()


@pytest.fixture
def recorder(monkeypatch):
    """Yields (calls, aws, setenv): every AWS call made inside the `with mock_aws()` is recorded, also
    those a botocore Stubber answers (it answers inside the call, after the recording)."""
    from finops_guard.billing import runtime as billing_runtime
    from finops_guard.core import runtime as core_runtime
    from finops_guard.core.adapters import secrets
    from finops_guard.costs import runtime
    from finops_guard.costs.adapters import payer_account

    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
    for key, value in {**fake, "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    calls: set[tuple[str, str]] = set()
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.update(api_calls(self.meta.service_model.service_name, operation, params))
        return original(self, operation, params)

    def clear_caches() -> None:
        for cached in (runtime.settings, core_runtime.chat_settings, core_runtime.outbox, runtime.budget_table,
                       runtime.budget_alert_table, runtime.anomaly_table, runtime.event_publisher,
                       billing_runtime.billing_settings, billing_runtime.billing_store, runtime._ce_client,
                       billing_runtime.billing_ops_settings, billing_runtime.stripe_api, runtime.team_routes_table,
                       runtime.export_bucket, runtime.recommendations_table,
                       runtime.cost_optimization_hub_client, payer_account.payer_session):  # fmt: skip
            cached.cache_clear()
        secrets.clear_cache()

    with mock_aws():
        aws = InProcessAws().aws
        clear_caches()
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
        yield calls, aws, monkeypatch.setenv
        monkeypatch.undo()
        clear_caches()


def short(name: str) -> str:
    return name.removeprefix("finops-guard-iam-")


def imported(synth: Synth, value: Any) -> Any:
    """``value`` with each Fn::ImportValue replaced by the value of the output that exports the name
    (the core's failure queue, ops topic and chat secrets, seen from a product stack)."""
    if isinstance(value, list):
        return [imported(synth, item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::ImportValue"}:
        [export] = [
            output["Value"]
            for output in synth.template_json.get("Outputs", {}).values()
            if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]
        ]
        return export
    return {key: imported(synth, item) for key, item in value.items()}


def resource_text(value: str | dict[str, Any]) -> str:
    """A statement's resource as one text with <Ref:..>/<GetAtt:..> placeholders, for wildcard matching."""
    return joined_text(value if isinstance(value, str) or "Fn::Join" in value else {"Fn::Join": ["", [value]]})


def missing_grants(
    synth: Synth, function: str, calls: set[tuple[str, str]], *, buckets: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The calls no Allow statement of ``function``'s role covers. Tables are matched by their synthesized
    table; objects by the bucket ``buckets`` maps (test bucket name -> logical id) and the key; secrets
    named like the stack's (``finops-guard/...``) by ARN, the test's own secrets by action only."""
    statements = policy_statements_of_role(synth, role_id_of(synth, function))

    def table_arns(table: str) -> set[str]:
        """The synthesized table's ARN as a resource text: its GetAtt in the stack that holds it, or (in
        a product stack, for the core's outbox) the ARN built from its fixed name."""
        name, _, index = table.partition("/index/")
        table_id = table_id_of(synth, short(name))
        table_name = synth.template_json["Resources"][table_id]["Properties"]["TableName"]
        suffix = f"/index/{index}" if index else ""
        return {
            f"<GetAtt:{table_id}.Arn>{suffix}",
            f"arn:<Ref:AWS::Partition>:dynamodb:<Ref:AWS::Region>:<Ref:AWS::AccountId>:table/{table_name}{suffix}",
        }

    def arn_text(target: str) -> str | None:
        """What a wildcard resource must match, or None when any resource will do."""
        kind, _, name = target.partition(":")
        if kind == "secret":
            # Secret ARNs end in '-' and six random characters after the name.
            account = "arn:<Ref:AWS::Partition>:secretsmanager:<Ref:AWS::Region>:<Ref:AWS::AccountId>"
            return f"{account}:secret:{name}-AbCdEf" if name.startswith("finops-guard/") else None
        bucket, _, key = name.partition("/")
        bucket_id = (buckets or {}).get(bucket)
        return f"<GetAtt:{bucket_id}.Arn>/{key}" if bucket_id else f"<unknown bucket {bucket}>/{key}"

    def covers(statement_resource: Any, target: str) -> bool:
        if target.startswith(("secret:", "object:")):
            text = arn_text(target)
            return text is None or fnmatchcase(text, resource_text(imported(synth, statement_resource)))
        return resource_text(imported(synth, statement_resource)) in table_arns(target)

    def allowed(action: str, target: str) -> bool:
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if statement["Effect"] == "Allow" and action in actions:
                if not target or any(covers(resource, target) for resource in resources):
                    return True
        return False

    return sorted((action, short(target)) for action, target in calls if not allowed(action, target))


def chat_secret(aws: Any, setenv: Any, chat: Any) -> None:
    aws.client("secretsmanager").create_secret(Name="iam/teams", SecretString=chat.url("/teams"))
    setenv("FINOPSGUARD_TEAMS_SECRET_NAME", "iam/teams")
    setenv("FINOPSGUARD_OUTBOX_TABLE", aws.create_outbox_table("finops-guard-iam-outbox"))


@pytest.fixture
def chat():
    from devtools.chat_recorder import ChatRecorder

    recorder = ChatRecorder().start()
    yield recorder
    recorder.stop()


def test_stripe_webhook_role_allows_every_call_its_code_makes(full_synth: Synth, recorder) -> None:
    from devtools import stripe_events as se
    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    tables = aws.create_billing_tables("iam")
    aws.client("secretsmanager").create_secret(Name="iam/stripe", SecretString=se.TEST_SECRET)
    for key, value in {
        "FINOPSGUARD_STRIPE_SECRET_NAME": "iam/stripe",
        "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": "iam/stripe-previous",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "FINOPSGUARD_BILLING_THRESHOLDS": json.dumps({"USD": "1"}),  # exercise the threshold path too
        "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
    }.items():
        setenv(key, value)
    handler = load_handler("stripe_webhook")
    samples = se.sample_events()
    calls.clear()  # only what the function does from here on
    for event_type in ["invoice.payment_failed", *[t for t in samples if t != "invoice.payment_failed"]]:
        reply = handler.lambda_handler(se.signed_request(copy.deepcopy(samples[event_type])), FakeContext("iam"))
        assert reply["statusCode"] == 200, (event_type, reply)
    assert {
        ("dynamodb:Query", "finops-guard-iam-dunning"),
        ("dynamodb:GetItem", "finops-guard-iam-billing-ledger"),
    } <= calls
    assert missing_grants(full_synth, "stripe-webhook", calls) == []


def budget_guard_and_weekly_report_calls(recorder: Any, chat: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Two budget guard runs (the second re-arms nothing but reads every alert key again), then the weekly
    report: the calls of each, as (guard, weekly report)."""
    from datetime import UTC, datetime

    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budgets import parse_budget

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    budgets_table, alerts_table = aws.create_budget_tables("iam")
    topic = aws.client("sns").create_topic(Name="finance")["TopicArn"]
    for key, value in {
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "FINOPSGUARD_ALERT_TOPIC_ARN": topic,
        "FINOPSGUARD_USE_MOCK_DATA": "true",
        "POWERTOOLS_SERVICE_NAME": "budget-guard",
    }.items():
        setenv(key, value)
    budgets = [
        parse_budget({"id": "tiny", "amount": "1", "currency": "USD", "notify": ["teams", "email"],
                      "enforce_hard_limit": True}),
        parse_budget({"id": "roomy", "amount": "1000000000", "currency": "USD", "scope": {"tag": {"Team": ["web"]}}}),
    ]  # fmt: skip
    BudgetTable(budgets_table, aws.client("dynamodb")).put_many(budgets, now=datetime.now(UTC))
    event = {"scheduled_time": "2026-11-16T09:00:00Z"}
    calls.clear()  # only what the functions do from here on
    load_handler("budget_guard").lambda_handler(event, FakeContext("iam-guard"))
    load_handler("budget_guard").lambda_handler(event, FakeContext("iam-guard"))
    guard_calls = set(calls)

    calls.clear()
    setenv("POWERTOOLS_SERVICE_NAME", "weekly-report")
    load_handler("weekly_report").lambda_handler({"scheduled_time": "2026-11-16T07:00:00Z"}, FakeContext("iam-weekly"))
    return guard_calls, set(calls)


def test_budget_guard_and_weekly_report_roles_allow_every_call_their_code_makes(full_synth: Synth, recorder, chat):
    guard_calls, weekly_calls = budget_guard_and_weekly_report_calls(recorder, chat)
    assert ("dynamodb:TransactWriteItems", "") not in guard_calls and ("events:PutEvents", "") in guard_calls
    assert missing_grants(full_synth, "budget-guard", guard_calls) == []
    assert ("dynamodb:Query", "finops-guard-iam-budgets") in weekly_calls
    assert missing_grants(full_synth, "weekly-report", weekly_calls) == []


def without_actions(synth: Synth, function: str, actions: set[str]) -> Synth:
    """A copy of the synthesized app whose role for ``function`` lacks ``actions``: a grant removed."""
    template = copy.deepcopy(synth.template_json)
    role = ref(role_id_of(synth, function))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and role in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [action for action in listed if action not in actions]
    return dataclasses.replace(synth, template_json=template)


def test_batch_reads_and_writes_are_checked_against_their_grants(full_synth: Synth, recorder, chat) -> None:
    """BatchGetItem and BatchWriteItem name their tables in RequestItems, not TableName: the recorder
    counts them, so a role without its batch grant fails the check."""
    guard_calls, weekly_calls = budget_guard_and_weekly_report_calls(recorder, chat)
    alerts = "finops-guard-iam-budget-alerts"
    assert {("dynamodb:BatchGetItem", alerts), ("dynamodb:BatchWriteItem", alerts)} <= guard_calls
    assert ("dynamodb:BatchGetItem", alerts) in weekly_calls
    for action in ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"):
        broken = without_actions(full_synth, "budget-guard", {action})
        assert missing_grants(broken, "budget-guard", guard_calls) == [(action, "budget-alerts")]
    broken = without_actions(full_synth, "weekly-report", {"dynamodb:BatchGetItem"})
    assert missing_grants(broken, "weekly-report", weekly_calls) == [("dynamodb:BatchGetItem", "budget-alerts")]


def test_weekly_report_role_allows_the_cost_allocation_tag_check(full_synth: Synth, recorder, chat) -> None:
    """A `tag:` dimension that attributes nothing (here: Cost Explorer answers no spend at all) makes the
    report ask ListCostAllocationTags (not in moto: answered on the handler's own client)."""
    from finops_guard.costs import runtime

    from devtools.lambda_runner import FakeContext, load_handler
    from devtools.operation_stub import OperationStub, cost_allocation_tags

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    setenv("FINOPSGUARD_BREAKDOWN", "USAGE_TYPE")  # as full_synth's context chooses it
    setenv("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "tag:Team")
    setenv("POWERTOOLS_SERVICE_NAME", "weekly-report")
    answer = cost_allocation_tags({"Team": "Inactive"})
    with OperationStub(runtime._ce_client(), "list_cost_allocation_tags", answer) as stub:
        calls.clear()  # only what the function does from here on
        load_handler("weekly_report").lambda_handler(
            {"scheduled_time": "2026-11-16T07:00:00Z"}, FakeContext("iam-weekly")
        )
    assert len(stub.requests) == 1 and ("ce:ListCostAllocationTags", "") in calls
    assert missing_grants(full_synth, "weekly-report", calls) == []


def test_weekly_report_role_allows_the_organisation_check_of_an_undecided_breakdown(
    default_synth: Synth, recorder, chat
) -> None:
    """Without `breakdown` in context the report asks Organizations whether Cost Explorer sees an
    organisation (moto: no organisation, so REGION), once per container; its role must allow it, and
    a role without that grant is caught."""
    from finops_guard.costs import runtime

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    setenv("POWERTOOLS_SERVICE_NAME", "weekly-report")
    runtime._reads_organisation.cache_clear()
    calls.clear()
    try:
        load_handler("weekly_report").lambda_handler({"scheduled_time": "2026-11-16T07:00:00Z"}, FakeContext("iam"))
        assert runtime._reads_organisation() is False
    finally:
        runtime._reads_organisation.cache_clear()
    assert ("organizations:DescribeOrganization", "") in calls
    assert missing_grants(default_synth, "weekly-report", calls) == []
    broken = without_actions(default_synth, "weekly-report", {"organizations:DescribeOrganization"})
    assert missing_grants(broken, "weekly-report", calls) == [("organizations:DescribeOrganization", "")]


def test_anomaly_and_notifier_roles_allow_every_call_their_code_makes(full_synth: Synth, recorder, chat):
    from devtools.lambda_runner import FakeContext, load_handler
    from devtools.sqs_events import sqs_event

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    setenv("FINOPSGUARD_ANOMALIES_TABLE", aws.create_anomalies_table("iam"))
    setenv("POWERTOOLS_SERVICE_NAME", "anomaly-alerts")
    sample = (ROOT / "events" / "anomaly_eventbridge.json").read_text()
    calls.clear()  # only what the functions do from here on
    result = load_handler("anomaly_alerts").lambda_handler(sqs_event([sample, sample]), FakeContext("iam-anomaly"))
    assert result == {"batchItemFailures": []}
    assert missing_grants(full_synth, "anomaly-alerts", calls) == []

    calls.clear()
    setenv("POWERTOOLS_SERVICE_NAME", "billing-notifier")
    record = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": {
        "alert_id": {"S": "invoice_failed#in_1"}, "kind": {"S": "invoice_failed"}, "status": {"S": "open"},
        "customer_id": {"S": "cus_1"}, "amount_minor": {"N": "1234"}, "currency": {"S": "USD"},
        "opened_at": {"S": "2026-11-17T00:00:00+00:00"}}}}  # fmt: skip
    assert load_handler("billing_notifier").lambda_handler({"Records": [record]}, FakeContext("iam-notifier")) == {
        "batchItemFailures": []
    }
    assert missing_grants(full_synth, "billing-notifier", calls) == []


@pytest.fixture
def stripe_fake():
    from devtools.stripe_fake import StripeFake

    with StripeFake() as fake:
        yield fake


def billing_ops_env(aws: Any, setenv: Any, fake: Any) -> dict[str, str]:
    from devtools import stripe_events as se

    tables = aws.create_billing_tables("iam")
    aws.client("secretsmanager").create_secret(Name="iam/stripe", SecretString=se.TEST_SECRET)
    aws.client("secretsmanager").create_secret(Name="iam/stripe-api-key", SecretString=fake.api_key)
    for key, value in {
        "FINOPSGUARD_STRIPE_SECRET_NAME": "iam/stripe",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "FINOPSGUARD_INVOICE_REQUESTS_TABLE": tables["invoice_requests"],
        "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": "iam/stripe-api-key",
        "FINOPSGUARD_STRIPE_API_BASE": fake.base_url,
        "FINOPSGUARD_DUNNING_SENDER_EMAIL": "billing@finops.example.com",
        "FINOPSGUARD_PORTAL_RETURN_URL": "https://finops.example.com/billing",
    }.items():
        setenv(key, value)
    aws.client("ses").verify_email_identity(EmailAddress="billing@finops.example.com")
    return tables


def webhook_all(fake: Any, calls: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The loopback Stripe posts its events to the webhook handler in this process: the calls the
    webhook makes meanwhile are moved out of `calls` into the returned set (its own role's)."""
    from devtools import stripe_events as se
    from devtools.lambda_runner import FakeContext, load_handler

    webhook: set[tuple[str, str]] = set()

    def post(event: dict[str, Any]) -> None:
        # The caller waits for Stripe's reply meanwhile, so everything recorded here is the webhook's.
        saved = set(calls)
        calls.clear()
        reply = load_handler("stripe_webhook").lambda_handler(se.signed_request(event), FakeContext("iam-webhook"))
        assert reply["statusCode"] == 200, reply
        webhook.update(calls)
        calls.clear()
        calls.update(saved)

    fake.on_event(post)
    return webhook


def admin_event(method: str, resource: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"httpMethod": method, "resource": resource, "headers": {}, "body": json.dumps(body) if body else None,
            "requestContext": {"identity": {"userArn": "arn:aws:iam::1:user/iam"}}, **extra}  # fmt: skip


def test_billing_operations_roles_allow_every_call_their_code_makes(full_synth: Synth, recorder, chat, stripe_fake):
    """Dunning sender, reconciliation, finance admin API (every route and the weekly export), and the
    webhook confirming a bot invoice, each on its own role."""
    from datetime import UTC, datetime

    from finops_guard.billing.adapters.stripe_api import StripeApi

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    tables = billing_ops_env(aws, setenv, stripe_fake)
    bucket = "finops-guard-iam-exports"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    setenv("FINOPSGUARD_EXPORT_BUCKET", bucket)
    webhook = webhook_all(stripe_fake, calls)
    stripe_fake.add_customer("cus_IamCustomer0001", email="ap@iam.example", name="Iam", phone="+15555550123")
    api = StripeApi(lambda: stripe_fake.api_key, api_base=stripe_fake.base_url)
    invoice = api.create_invoice(customer="cus_IamCustomer0001", currency="usd", description="x", days_until_due=1,
                                 metadata={}, idempotency_key="iam-1")  # fmt: skip
    api.add_invoice_item(invoice=invoice["id"], customer="cus_IamCustomer0001", amount_minor=1000, currency="usd",
                         description="x", idempotency_key="iam-2")  # fmt: skip
    api.finalize_invoice(invoice["id"], idempotency_key="iam-3")
    stripe_fake.decline_next_payment(invoice["id"])
    try:
        api.pay_invoice(invoice["id"], idempotency_key="iam-4")
    except Exception:  # noqa: S110 - the decline opens the alert and schedules dunning
        pass
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    calls.clear()
    setenv("POWERTOOLS_SERVICE_NAME", "dunning-sender")
    assert load_handler("dunning_sender").lambda_handler({"time": now}, FakeContext("iam-dunning"))["sent"] == 1
    assert ("ses:SendEmail", "") in calls
    assert missing_grants(full_synth, "dunning-sender", calls) == []

    calls.clear()
    setenv("POWERTOOLS_SERVICE_NAME", "reconciliation")
    yesterday = int(datetime.now(UTC).timestamp()) - 86400
    stripe_fake.add_invoice(customer="cus_IamCustomer0001", currency="usd", amount_minor=500, status="paid",
                            created=yesterday)  # fmt: skip
    assert load_handler("reconciliation").lambda_handler({}, FakeContext("iam-reconciliation"))["mismatches"] == 1
    assert missing_grants(full_synth, "reconciliation", calls) == []

    calls.clear()
    setenv("POWERTOOLS_SERVICE_NAME", "billing-admin")
    admin = load_handler("billing_admin")
    alert_id = f"invoice_failed#{invoice['id']}"
    replies = [
        admin.lambda_handler(
            admin_event(
                "POST",
                "/invoices",
                {
                    "request_id": "iam-request-0001",
                    "customer": "cus_IamCustomer0001",
                    "currency": "USD",
                    "amount": "10.00",
                    "description": "x",
                },
            ),
            FakeContext("iam-admin"),
        ),  # fmt: skip
        admin.lambda_handler(
            admin_event(
                "POST",
                "/invoices",
                {
                    "request_id": "iam-request-0002",
                    "customer": "cus_NotInStripe0001",
                    "currency": "USD",
                    "amount": "10.00",
                    "description": "x",
                },
            ),
            FakeContext("iam-admin"),
        ),  # fmt: skip
        admin.lambda_handler(admin_event("GET", "/billing/summary"), FakeContext("iam-admin")),
        admin.lambda_handler(
            admin_event("POST", "/billing/alerts/{id}/resend", pathParameters={"id": alert_id}),
            FakeContext("iam-admin"),
        ),  # fmt: skip
        admin.lambda_handler(
            admin_event("POST", "/billing/alerts/{id}/retry", pathParameters={"id": alert_id}), FakeContext("iam-admin")
        ),  # fmt: skip
        admin.lambda_handler(
            admin_event("POST", "/billing/portal-session", {"customer": "cus_IamCustomer0001"}),
            FakeContext("iam-admin"),
        ),  # fmt: skip
        admin.lambda_handler(admin_event("GET", "/billing/export.csv"), FakeContext("iam-admin")),
        admin.lambda_handler({"action": "weekly_export"}, FakeContext("iam-admin")),
    ]
    assert [r.get("statusCode", 200) for r in replies] == [201, 404, 200, 200, 200, 200, 200, 200], replies
    assert ("dynamodb:DeleteItem", tables["invoice_requests"]) in calls
    assert any(action == "s3:PutObject" and target.startswith(f"object:{bucket}/ledger/") for action, target in calls)
    assert missing_grants(full_synth, "billing-admin", calls, buckets={bucket: export_bucket_id(full_synth)}) == []
    assert ("dynamodb:UpdateItem", tables["invoice_requests"]) in webhook  # invoice.sent confirmed the bot invoice
    assert missing_grants(full_synth, "stripe-webhook", webhook) == []


# --- attribution: team routing and the monthly chargeback -------------------------------------


TEAM_SECRET = "iam/team-webhooks"  # the test's own name: matched by action (the ARN grant: test_infra_attribution)


def team_routing(aws: Any, setenv: Any, chat: Any) -> str:
    """Routing on (tag `Team`, as the synthetic org is tagged): team `data` with its own Teams channel,
    owning account 222222222222 (the sample anomaly's root cause). Returns the routes table name."""
    from datetime import UTC, datetime

    from finops_guard.costs.adapters.team_routes import TeamRoutesTable
    from finops_guard.costs.teams import TeamRoute

    routes_table = aws.create_team_routes_table("iam")
    urls = {"data": {"teams": chat.url("/team-data")}}
    aws.client("secretsmanager").create_secret(Name=TEAM_SECRET, SecretString=json.dumps(urls))
    route = TeamRoute("data", ("teams",), accounts=("222222222222",))
    TeamRoutesTable(routes_table, aws.client("dynamodb")).put(route, now=datetime.now(UTC))
    for key, value in {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
        "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
        "FINOPSGUARD_TEAM_ROUTES_TABLE": routes_table,
        "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": TEAM_SECRET,
        "FINOPSGUARD_USE_MOCK_DATA": "true",
    }.items():
        setenv(key, value)
    return routes_table


def test_posting_roles_allow_the_team_routing_calls_their_code_makes(full_synth: Synth, recorder, chat) -> None:
    """Weekly report, budget guard and anomaly alerts each read the routes and post to a team's channel."""
    from datetime import UTC, datetime

    from finops_guard.core.adapters import secrets
    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budgets import parse_budget

    from devtools.lambda_runner import FakeContext, load_handler
    from devtools.sqs_events import sqs_event

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    routes_table = team_routing(aws, setenv, chat)
    budgets_table, alerts_table = aws.create_budget_tables("iam")
    for key, value in {
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "FINOPSGUARD_ANOMALIES_TABLE": aws.create_anomalies_table("iam"),
    }.items():
        setenv(key, value)
    team_budget = parse_budget({"id": "data", "amount": "1", "currency": "USD", "scope": {"tag": {"Team": ["data"]}}})
    BudgetTable(budgets_table, aws.client("dynamodb")).put_many([team_budget], now=datetime.now(UTC))
    team_reads = {("dynamodb:Query", routes_table), ("secretsmanager:GetSecretValue", f"secret:{TEAM_SECRET}")}
    runs = {
        "weekly-report": lambda: load_handler("weekly_report").lambda_handler(
            {"scheduled_time": "2026-11-16T07:00:00Z"}, FakeContext("iam-weekly")
        ),
        "budget-guard": lambda: load_handler("budget_guard").lambda_handler(
            {"scheduled_time": "2026-11-16T09:00:00Z"}, FakeContext("iam-guard")
        ),
        "anomaly-alerts": lambda: load_handler("anomaly_alerts").lambda_handler(
            sqs_event([(ROOT / "events" / "anomaly_eventbridge.json").read_text()]), FakeContext("iam-anomaly")
        ),
    }

    for function, run in runs.items():
        secrets.clear_cache()  # each function reads the team webhooks secret with its own role
        calls.clear()
        chat.clear()
        setenv("POWERTOOLS_SERVICE_NAME", function)
        run()
        assert "/team-data" in {post.path for post in chat.received}, function
        assert team_reads <= calls, function
        assert missing_grants(full_synth, function, calls) == [], function


def test_chargeback_role_allows_every_call_its_code_makes(full_synth: Synth, recorder, chat) -> None:
    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    bucket = aws.create_export_bucket("finops-guard-iam-chargeback")
    for key, value in {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
        "FINOPSGUARD_CHARGEBACK_BUCKET": bucket,
        "FINOPSGUARD_USE_MOCK_DATA": "true",
        "POWERTOOLS_SERVICE_NAME": "chargeback",
    }.items():
        setenv(key, value)
    buckets = {bucket: chargeback_bucket_id(full_synth)}
    calls.clear()  # only what the function does from here on

    reply = load_handler("chargeback").lambda_handler({"scheduled_time": "2026-11-01T08:00:00Z"}, FakeContext("iam"))

    assert [o["key"] for o in reply["objects"]] == [
        "chargeback/2026-10/tag-team.csv",
        "chargeback/2026-10/tag-costcenter.csv",
    ]
    assert ("s3:PutObject", f"object:{bucket}/chargeback/2026-10/tag-team.csv") in calls
    assert missing_grants(full_synth, "chargeback", calls, buckets=buckets) == []
    # Each card links a pre-signed GET of the version just written: S3 checks s3:GetObjectVersion of this role.
    links = {("s3:GetObjectVersion", f"object:{bucket}/{o['key']}") for o in reply["objects"] if o["version_id"]}
    assert len(links) == 2
    assert missing_grants(full_synth, "chargeback", links, buckets=buckets) == []


# --- savings: the daily refresh and the weekly card's savings section ---------------------------

SAVINGS_AT = "2026-11-16T06:00:00Z"
EC2_WEB = "MTExMTExMTExMTExLWVjMi1pLTBhMWIyYzNkNGU1ZjYwNzE4"  # page 1: Rightsize, account 111111111111


def hub_page(name: str, **changes: Any) -> dict[str, Any]:
    """An events/ ListRecommendations page as boto3 returns it (botocore's parser turns the wire
    JSON's epoch timestamps into datetimes), for a Stubber to serve."""
    import botocore.session
    from botocore.parsers import create_parser

    body = {**json.loads((ROOT / "events" / f"cost_optimization_hub_list_recommendations_{name}.json").read_text())}
    body = {key: value for key, value in {**body, **changes}.items() if value is not None}
    shape = botocore.session.get_session().get_service_model("cost-optimization-hub")
    output = shape.operation_model("ListRecommendations").output_shape
    parsed = create_parser("json").parse({"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}, output)
    parsed.pop("ResponseMetadata")
    return dict(parsed)


@pytest.fixture
def hub(monkeypatch):
    """Cost Optimization Hub (not in moto) answered by a Stubber; the refresh gets this client."""
    from botocore.stub import Stubber
    from finops_guard.costs import runtime

    client = boto3.client("cost-optimization-hub", region_name="us-east-1")
    monkeypatch.setattr(runtime, "cost_optimization_hub_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_savings_refresh_role_allows_every_call_its_code_makes(full_synth: Synth, recorder, chat, hub) -> None:
    """Two daily runs: the first stores every listed item; after an operator accepts one and records it as
    implemented four weeks ago, the second resolves what is gone upstream and measures that item's ROI
    (one Cost Explorer request)."""
    from datetime import UTC, date, datetime

    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
    from finops_guard.costs.savings import ACCEPTED, IMPLEMENTED, change_status

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    routes_table = team_routing(aws, setenv, chat)
    table = aws.create_recommendations_table("iam")
    for key, value in {
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": table,
        "FINOPSGUARD_USE_MOCK_DATA": "false",  # ROI is measured on Cost Explorer only
        "POWERTOOLS_SERVICE_NAME": "savings-refresh",
    }.items():
        setenv(key, value)
    refresh = load_handler("savings_refresh")
    event = {"job": "savings-refresh", "scheduled_time": SAVINGS_AT}
    hub.add_response("list_recommendations", hub_page("page1"))
    hub.add_response("list_recommendations", hub_page("page2"))
    calls.clear()  # only what the function does from here on

    assert refresh.lambda_handler(event, FakeContext("iam-savings"))["new"] == 4
    operator = set(calls)
    store, at = RecommendationsTable(table, aws.client("dynamodb")), datetime(2026, 11, 16, 7, tzinfo=UTC)
    change_status(store, EC2_WEB, ACCEPTED, now=at, by="cli:iam")
    change_status(store, EC2_WEB, IMPLEMENTED, now=at, by="cli:iam", implemented_on=date(2026, 10, 19))
    calls.clear()
    calls.update(operator)  # the CLI's GetItem runs with the operator's credentials, not this role
    hub.add_response("list_recommendations", hub_page("page1", nextToken=None))  # page 2's items are gone
    reply = refresh.lambda_handler({**event, "scheduled_time": "2026-11-17T06:00:00Z"}, FakeContext("iam-savings"))

    assert (reply["resolved_upstream"], reply["cost_explorer_requests"]) == (2, 1)
    assert {
        ("cost-optimization-hub:ListRecommendations", ""),
        ("ce:GetCostAndUsage", ""),
        ("dynamodb:Query", table),
        ("dynamodb:UpdateItem", table),
        ("dynamodb:Query", routes_table),
    } <= calls
    assert not [action for action, _ in calls if action.startswith("secretsmanager:")]  # no team secret
    assert missing_grants(full_synth, "savings-refresh", calls) == []


def test_weekly_report_role_allows_the_savings_section_and_savings_plans_kpi_calls(
    full_synth: Synth, recorder, chat, monkeypatch
) -> None:
    """The card reads the stored recommendations and, with savingsPlansKpi, Savings Plans coverage and
    utilisation (not in moto: a Stubber answers them, shaped as the Cost Explorer model requires)."""
    from datetime import UTC, datetime

    from botocore.stub import Stubber
    from finops_guard.costs.adapters import savings_plans
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
    from finops_guard.costs.savings import from_hub

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    setenv("FINOPSGUARD_BREAKDOWN", "USAGE_TYPE")  # as full_synth's context chooses it
    table = aws.create_recommendations_table("iam")
    store = RecommendationsTable(table, aws.client("dynamodb"))
    for item in hub_page("page1")["items"]:
        store.upsert(from_hub(item, datetime(2026, 11, 10, tzinfo=UTC)), datetime(2026, 11, 10, tzinfo=UTC))
    for key, value in {
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": table,
        "FINOPSGUARD_SAVINGS_PLANS_KPI": "true",
        "FINOPSGUARD_USE_MOCK_DATA": "false",  # the KPI is never asked for on synthetic data
        "POWERTOOLS_SERVICE_NAME": "weekly-report",
    }.items():
        setenv(key, value)
    kpi_client, kpi_source = boto3.client("ce", region_name="us-east-1"), savings_plans.SavingsPlansSource
    monkeypatch.setattr(savings_plans, "SavingsPlansSource", lambda _: kpi_source(kpi_client))
    calls.clear()  # only what the function does from here on

    with Stubber(kpi_client) as stubber:
        stubber.add_response("get_savings_plans_coverage", {"SavingsPlansCoverages": []})
        stubber.add_response("get_savings_plans_utilization", {"SavingsPlansUtilizationsByTime": [], "Total": {
            "Utilization": {"TotalCommitment": "640", "UsedCommitment": "620.5", "UnusedCommitment": "19.5",
                            "UtilizationPercentage": "96.95"}}})  # fmt: skip
        reply = load_handler("weekly_report").lambda_handler({"scheduled_time": SAVINGS_AT}, FakeContext("iam-weekly"))
        stubber.assert_no_pending_responses()

    assert reply["cost_explorer_requests"] >= 3  # the report's own, then coverage and utilisation
    assert {
        ("dynamodb:Query", table),
        ("ce:GetSavingsPlansCoverage", ""),
        ("ce:GetSavingsPlansUtilization", ""),
    } <= calls
    assert missing_grants(full_synth, "weekly-report", calls) == []


# --- a tooling account reading the payer's costs ----------------------------------------------------

PAYER_ROLE_ARN = "arn:aws:iam::444455556666:role/finops-guard-qa-payer-read"
NO_SAVINGS_PLANS_UTILIZATION = {
    "SavingsPlansUtilizationsByTime": [],
    "Total": {
        "Utilization": {"TotalCommitment": "0", "UsedCommitment": "0", "UnusedCommitment": "0",
                        "UtilizationPercentage": "0"}},
}  # fmt: skip


def payer_read_actions(synth: Synth) -> set[str]:
    """What the payer stack's read role allows (its one inline policy, Resource '*')."""
    assert synth.payer is not None
    [(_, read_role)] = [
        (lid, r)
        for lid, r in synth.payer.resources("AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == "finops-guard-qa-payer-read"
    ]
    [policy] = read_role["Properties"]["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Resource"] == "*" and statement["Effect"] == "Allow"
    return set(statement["Action"])


def may_assume(synth: Synth, function: str, role_arn: str) -> bool:
    statements = policy_statements_of_role(synth, role_id_of(synth, function))
    return any(
        s["Effect"] == "Allow"
        and "sts:AssumeRole" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        and resource_text(s["Resource"]).replace("<Ref:AWS::Partition>", "aws") == role_arn
        for s in statements
    )


def test_with_a_payer_each_cost_function_signs_only_cost_reads_with_the_payer_role(
    payer_synth: Synth, recorder, chat, monkeypatch
) -> None:
    """Weekly report (with the Savings Plans KPI and the tag check), budget guard, chargeback and savings
    refresh, each as CDK configures it in a tooling account: every call signed with the assumed role's key is
    a cost read the payer role allows; every other call, the AssumeRole included, is one the function's own
    role allows (which holds no Cost Explorer action: a cost read made with its own key would fail here)."""
    from datetime import UTC, datetime

    from finops_guard.costs import runtime
    from finops_guard.costs.adapters import payer_account
    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budgets import parse_budget

    from devtools.lambda_runner import FakeContext, load_handler
    from devtools.operation_stub import OperationStub, cost_allocation_tags

    calls, aws, setenv = recorder
    chat_secret(aws, setenv, chat)
    signed: dict[str, set[tuple[str, str]]] = {}  # access key -> the calls signed with it
    original = botocore.client.BaseClient._make_api_call

    def by_signer(self: Any, operation: str, params: dict[str, Any]) -> Any:
        # The key this client signs with (the assumed role's once its refreshable credentials are used).
        key = self._request_signer._credentials.get_frozen_credentials().access_key
        signed.setdefault(key, set()).update(api_calls(self.meta.service_model.service_name, operation, params))
        if self.meta.service_model.service_name == "sts":
            signed[key].add((f"sts:{operation}", params.get("RoleArn", "")))
        return original(self, operation, params)

    budgets_table, alerts_table = aws.create_budget_tables("iam")
    BudgetTable(budgets_table, aws.client("dynamodb")).put_many(
        [parse_budget({"id": "all", "amount": "100", "currency": "USD"})], now=datetime.now(UTC)
    )
    recommendations = aws.create_recommendations_table("iam")
    for key, value in {
        "FINOPSGUARD_PAYER_ROLE_ARN": PAYER_ROLE_ARN,
        "FINOPSGUARD_PAYER_EXTERNAL_ID": "9f2c4e1a7b3d5f6081a2c3e4d5f60718",
        "FINOPSGUARD_USE_MOCK_DATA": "false",
        "FINOPSGUARD_SAVINGS_PLANS_KPI": "true",
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team",
        "FINOPSGUARD_CHARGEBACK_BUCKET": aws.create_export_bucket("finops-guard-iam-chargeback"),
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "FINOPSGUARD_ALERT_TOPIC_ARN": aws.client("sns").create_topic(Name="finance")["TopicArn"],
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": recommendations,
    }.items():
        setenv(key, value)
    runs = {
        "weekly-report": ("weekly_report", {"scheduled_time": "2026-11-16T07:00:00Z"}),
        "budget-guard": ("budget_guard", {"scheduled_time": "2026-11-16T09:00:00Z"}),
        "chargeback": ("chargeback", {"scheduled_time": "2026-11-01T08:00:00Z"}),
        "savings-refresh": ("savings_refresh", {"job": "savings-refresh", "scheduled_time": SAVINGS_AT}),
    }
    read_actions = payer_read_actions(payer_synth)
    stubbed: list[OperationStub] = []
    for function, (folder, event) in runs.items():
        signed.clear()
        setenv("POWERTOOLS_SERVICE_NAME", function)
        setenv("AWS_LAMBDA_FUNCTION_NAME", f"finops-guard-qa-{function}")
        # Each function is its own container: its own clients, its own session of the role.
        payer_account.payer_session.cache_clear()
        runtime._ce_client.cache_clear()
        ce = runtime._ce_client()
        # Cost Optimization Hub (not in moto) is answered on the client the runtime makes, as it makes it.
        hub_client = payer_account.cost_client("cost-optimization-hub", os.environ, region_name="us-east-1")
        monkeypatch.setattr(runtime, "cost_optimization_hub_client", lambda client=hub_client: client)
        stubs = [
            OperationStub(ce, "get_savings_plans_coverage", lambda _: {"SavingsPlansCoverages": []}),
            OperationStub(ce, "get_savings_plans_utilization", lambda _: NO_SAVINGS_PLANS_UTILIZATION),
            OperationStub(ce, "list_cost_allocation_tags", cost_allocation_tags({"Team": "Inactive"})),
            OperationStub(hub_client, "list_recommendations", lambda _: hub_page("page1", nextToken=None)),
        ]
        stubbed += stubs
        with contextlib.ExitStack() as answering, pytest.MonkeyPatch.context() as patch:
            for stub in stubs:
                answering.enter_context(stub)
            patch.setattr(botocore.client.BaseClient, "_make_api_call", by_signer)
            load_handler(folder).lambda_handler(event, FakeContext(f"iam-{function}"))
        # The function's own key is the one that asked STS for the role; the other is the role's.
        [own_key] = [key for key, made in signed.items() if ("sts:AssumeRole", PAYER_ROLE_ARN) in made]
        own = signed.pop(own_key)
        [(assumed_key, payer_calls)] = signed.items()
        assert assumed_key.startswith("ASIA") and may_assume(payer_synth, function, PAYER_ROLE_ARN), function
        assert {action for action, _ in payer_calls} <= read_actions, function
        assert ("ce:GetCostAndUsage", "") in payer_calls or function == "savings-refresh", function
        rest = {(action, target) for action, target in own if not action.startswith("sts:")}
        assert not [action for action, _ in rest if action.startswith(("ce:", "cost-optimization-hub:"))]
        assert missing_grants(payer_synth, function, rest, buckets={
            "finops-guard-iam-chargeback": chargeback_bucket_id(payer_synth)}) == [], function  # fmt: skip
    assert all(stub.requests for stub in stubbed[:3])  # the weekly report: the Savings Plans KPI, the tag check
    assert stubbed[-1].requests  # the savings refresh: the hub's listing
