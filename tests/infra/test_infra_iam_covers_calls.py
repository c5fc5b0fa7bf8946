"""The role CDK grants the Stripe webhook covers every DynamoDB call its code makes.

Runs every sample event in events/stripe/ (and a payment failure followed by payment, the path that
settles an invoice) through the real handler on in-process moto, records each (action, table) the
code issues, including the items inside TransactWriteItems, and checks the synthesized policy.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import botocore.client
import pytest
from conftest import Synth, arn_of, policy_statements_of_role, role_id_of, table_id_of
from moto import mock_aws

pytestmark = pytest.mark.infra
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def dynamodb_calls(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{TRANSACT_ACTIONS[kind]}", body["TableName"])
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if "TableName" in params:
        return [(f"dynamodb:{operation}", params["TableName"])]
    return []


@pytest.fixture
def recorded_calls(monkeypatch) -> tuple[set[tuple[str, str]], dict[str, str]]:
    from finops_guard import runtime
    from finops_guard.adapters import secrets

    from devtools import stripe_events as se
    from devtools.embedded_aws import EmbeddedAws
    from devtools.lambda_runner import FakeContext, load_handler

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    calls: set[tuple[str, str]] = set()
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.update(dynamodb_calls(operation, params))
        return original(self, operation, params)

    with mock_aws():

        class InProcess(EmbeddedAws):
            def __init__(self) -> None:
                self.endpoint = ""

            def client(self, service: str, region: str = "eu-west-1") -> Any:
                return boto3.client(service, region_name=region)

        aws = InProcess()
        tables = aws.create_billing_tables("iam")
        aws.client("secretsmanager").create_secret(Name="iam/stripe", SecretString=se.TEST_SECRET)
        env = {
            "FINOPSGUARD_STRIPE_SECRET_NAME": "iam/stripe",
            "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
            "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
            "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
            "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
            "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
            "FINOPSGUARD_BILLING_THRESHOLDS": json.dumps({"USD": "1"}),  # exercise the threshold path too
            "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
            "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        runtime.billing_settings.cache_clear()
        runtime.billing_store.cache_clear()
        secrets.clear_cache()
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
        handler = load_handler("stripe_webhook")
        samples = se.sample_events()
        order = ["invoice.payment_failed", *[t for t in samples if t != "invoice.payment_failed"]]
        for event_type in order:
            reply = handler.lambda_handler(se.signed_request(copy.deepcopy(samples[event_type])), FakeContext("iam"))
            assert reply["statusCode"] == 200, (event_type, reply)
        runtime.billing_settings.cache_clear()
        runtime.billing_store.cache_clear()
    prefix = "finops-guard-iam-"
    return calls, {name: name.removeprefix(prefix) for name in tables.values()}


def test_webhook_role_allows_every_dynamodb_call_its_code_makes(full_synth: Synth, recorded_calls) -> None:
    calls, short_names = recorded_calls
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, "stripe-webhook"))

    def allowed(action: str, table: str) -> bool:
        resource = arn_of(table_id_of(full_synth, short_names[table]))
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if statement["Effect"] == "Allow" and action in actions and resource in resources:
                return True
        return False

    assert {
        ("dynamodb:Query", "finops-guard-iam-dunning"),
        ("dynamodb:GetItem", "finops-guard-iam-billing-ledger"),
    } <= calls
    missing = sorted((action, short_names[table]) for action, table in calls if not allowed(action, table))
    assert missing == []
