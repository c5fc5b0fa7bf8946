"""Shared synth fixtures for the infra tests: each cloud assembly is built once per session."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # app.py/infra live at the repository root, not in a package
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Stack  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from infra.stacks import FinOpsGuardStacks, create_stacks  # noqa: E402

# Every optional feature switched on, and values that differ from the cdk.json defaults.
FULL_CONTEXT = {
    "stage": "qa",
    "timezone": "Europe/Madrid",
    "currency": "EUR",
    "topN": "7",  # CLI -c values arrive as strings
    "monthlyBudget": "1500.50",
    "opsAlarmEmail": "oncall@example.com",
    "opsAlarmHttpsEndpoints": (
        '["https://events.pagerduty.com/integration/0123456789abcdef/enqueue", '
        '"https://api.opsgenie.com/v1/json/amazonsns?apiKey=0a1b2c3d"]'
    ),
    "slackEnabled": "true",
    "owner": "cloud-platform",
    "costCenter": "cc-4711",
    "budgetSchedule": "cron(30 7 ? * MON-FRI *)",
    "forecastInterval": "0.9",
    "financeAlertEmail": "finance@example.com",
    "anomalyMinImpact": "25",
    "anomalyRealertGrowth": "1.5",
    "anomalyThresholdAbsolute": "250",
    "anomalyThresholdPercent": "40",
    "anomalyThresholdMatch": "all",
    "anomalyServiceMonitor": "true",
    "anomalyMonitorArns": '["arn:aws:ce::123456789012:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef"]',
    "anomalyLinkedAccounts": "111111111111, 222222222222",
    "anomalyTag": "team=data,ml",
    "anomalyCostCategory": "Product=search, analytics",
    "billingMonthlyThresholds": '{"USD": "5000.50", "EUR": 4000}',
    "dunningSteps": "0:email,2:sms,7:email,14:sms",
    "webhookMaxBodyBytes": "65536",
    "billingApiRateLimit": "20",
    "billingApiBurstLimit": "40",
    "billingAdminRateLimit": "7",
    "billingAdminBurstLimit": "9",
    "dunningSenderEmail": "billing@example.com",
    "dunningTemplates": json.dumps(
        {
            "email": {"subject": "Invoice {invoice_number} is unpaid", "body": "Hi {customer_name}, pay {amount}."},
            "2:sms": {"body": "{amount} due {due_date}: {pay_link}"},
            "7:email": {"subject": "Day {day}: invoice {invoice_number}", "body": "Please pay at {pay_link}"},
        }
    ),
    "dunningSchedule": "rate(30 minutes)",
    "reconciliationSchedule": "cron(0 5 * * ? *)",
    "billingExportSchedule": "cron(0 7 ? * FRI *)",
    "reconciliationVariancePercent": "2.5",
    "billingPortalReturnUrl": "https://billing.example.com/account",
    "invoiceDaysUntilDue": "14",
    "stripeApiBase": "http://127.0.0.1:12111",
    "attributionDimensions": '["tag:CostCenter", "tag:Team", "costCategory:Project"]',
    "teamDimension": "tag:Team",  # not the first dimension
    "chargebackUnallocated": "separate",
    "chargebackSchedule": "cron(0 6 1 * ? *)",
    "chargebackLinkExpiryMinutes": "120",
    "savingsRecommendations": "true",
    "savingsPlansKpi": "true",
    "savingsSchedule": "cron(0 4 * * ? *)",
    "costMetric": "netamortizedcost",  # any case; the functions get Cost Explorer's spelling
    "breakdown": "usage_type",
}


# FULL_CONTEXT deployed in a tooling account that reads the payer's costs, with the payer's stack too.
# The accounts and region are policy_eval's: the tooling stacks evaluate as ACCOUNT in REGION, the payer
# stack as OTHER_ACCOUNT in us-east-1.
PAYER_ACCOUNT, TOOLING_ACCOUNT, TOOLING_REGION = "444455556666", "111122223333", "eu-west-1"
PAYER_EXTERNAL_ID = "9f2c4e1a7b3d5f6081a2c3e4d5f60718"
PAYER_MONITOR = f"arn:aws:ce::{PAYER_ACCOUNT}:anomalymonitor/0c4e7a52-9d1f-4b8e-a6c3-2f5d8e1b9a07"
PAYER_CONTEXT = {
    **FULL_CONTEXT,
    "payerAccountId": PAYER_ACCOUNT,
    "payerRoleExternalId": PAYER_EXTERNAL_ID,
    "payerAccess": "true",
    "toolingAccountId": TOOLING_ACCOUNT,
    "toolingRegion": TOOLING_REGION,
    "payerAnomalyMonitorArns": PAYER_MONITOR,
}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


class Resources:
    """Lookups over one template's resources."""

    template_json: dict[str, Any]

    @property
    def template(self) -> Template:
        return Template.from_json(self.template_json)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))


@dataclass
class StackSynth(Resources):
    """One stack of the app and its template."""

    stack: Stack
    template_json: dict[str, Any]


@dataclass
class Synth(Resources):
    """The app's three stacks; ``template_json`` is their merged view (logical ids are unique across
    the stacks, which ``merge_templates`` checks), for tests about a resource wherever it lives.
    Tests about what a stack holds use ``core``, ``costs`` and ``billing``."""

    app: App
    stacks: FinOpsGuardStacks
    outdir: Path
    core: StackSynth
    costs: StackSynth
    billing: StackSynth
    template_json: dict[str, Any]
    # FinOpsGuard-<stage>-PayerAccess (payerAccess=true), another account's stack: not in the merged view.
    payer: StackSynth | None = None

    @property
    def stack(self) -> Stack:
        """A stack of the app, for its config (the same in all three)."""
        return self.stacks.costs

    @property
    def parts(self) -> tuple[StackSynth, ...]:
        return (self.core, self.costs, self.billing)


# Every template has these; identical copies merge into one.
_SHARED_KEYS = ("CDKMetadata",)


def merge_templates(templates: list[dict[str, Any]]) -> dict[str, Any]:
    """One template with every stack's resources, outputs, parameters, conditions and rules."""
    merged: dict[str, Any] = {}
    for template in templates:
        for section, values in template.items():
            if not isinstance(values, dict):
                merged.setdefault(section, values)
                continue
            target = merged.setdefault(section, {})
            for key, value in values.items():
                if key in target and target[key] != value and key not in _SHARED_KEYS:
                    raise AssertionError(f"{section}.{key} differs between stacks: logical ids must be unique")
                target.setdefault(key, value)
    return merged


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None, *, bundle: bool = False) -> Synth:
    """Synthesize the real app (cdk.json context + overrides) the way app.py does."""
    context = {**cdk_json_context(), **(overrides or {})}
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    app = App(context=context, outdir=str(outdir))
    stacks = create_stacks(app)
    assembly = app.synth()

    def part(stack: Stack) -> StackSynth:
        path = Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)
        return StackSynth(stack=stack, template_json=json.loads(path.read_text()))

    core, costs, billing = part(stacks.core), part(stacks.costs), part(stacks.billing)
    merged = merge_templates([core.template_json, costs.template_json, billing.template_json])
    payer = part(stacks.payer_access) if stacks.payer_access is not None else None
    return Synth(app, stacks, outdir, core, costs, billing, merged, payer)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def full_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-full"), FULL_CONTEXT)


@pytest.fixture(scope="session")
def payer_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every feature on, in a tooling account reading the payer's costs; ``payer`` is the payer's stack."""
    return synthesize(tmp_path_factory.mktemp("cdk-payer"), PAYER_CONTEXT)


# --- what a product stack takes from the core stack --------------------------------------------


def stage_of(synth_or_stage: Synth | StackSynth | str) -> str:
    return synth_or_stage if isinstance(synth_or_stage, str) else synth_or_stage.stack.config.stage


def core_import(synth_or_stage: Synth | StackSynth | str, export: str) -> dict[str, str]:
    """A core export as a product stack reads it, e.g. ``failure-queue-arn``."""
    return {"Fn::ImportValue": f"finops-guard-{stage_of(synth_or_stage)}-{export}"}


def failure_queue_ref(synth_or_stage: Synth | StackSynth | str) -> dict[str, str]:
    """The core's failure queue ARN as a product stack names it."""
    return core_import(synth_or_stage, "failure-queue-arn")


def ops_topic_ref(synth_or_stage: Synth | StackSynth | str) -> dict[str, str]:
    """The core's ops topic ARN as a product stack names it."""
    return core_import(synth_or_stage, "ops-topic-arn")


def exported_by_core(synth: Synth, import_value: dict[str, str]) -> Any:
    """The value the core stack exports under the name a product stack imports."""
    [value] = [
        output["Value"]
        for output in synth.core.template_json["Outputs"].values()
        if output.get("Export", {}).get("Name") == import_value["Fn::ImportValue"]
    ]
    return value


def outbox_arn(synth_or_stage: Synth | StackSynth | str) -> dict[str, Any]:
    """The core's outbox as a product stack addresses it: by its fixed name, no export to import."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":dynamodb:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":table/finops-guard-{stage_of(synth_or_stage)}-outbox",
            ],
        ]
    }


# --- lookups by the names the stack gives its resources ----------------------------------------


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def tls_only_publish_deny(topic: dict[str, str]) -> dict[str, Any]:
    """The statement `enforce_ssl` puts first in every topic policy: no publishing without TLS."""
    return {
        "Sid": "AllowPublishThroughSSLOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": topic,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def logical_id(synth: Synth, resource_type: str, name_property: str, name: str) -> str:
    matches = [
        lid
        for lid, resource in synth.resources(resource_type).items()
        if resource["Properties"].get(name_property) == name
    ]
    assert len(matches) == 1, f"{resource_type} {name_property}={name}: {matches}"
    return matches[0]


def stage_name(synth: Synth, short_name: str) -> str:
    """``weekly-report`` -> ``finops-guard-<stage>-weekly-report``."""
    return f"finops-guard-{synth.stack.config.stage}-{short_name}"


def function_of(synth: Synth, short_name: str) -> tuple[str, dict[str, Any]]:
    lid = logical_id(synth, "AWS::Lambda::Function", "FunctionName", stage_name(synth, short_name))
    return lid, synth.template_json["Resources"][lid]["Properties"]


def role_id_of(synth: Synth, short_name: str) -> str:
    return function_of(synth, short_name)[1]["Role"]["Fn::GetAtt"][0]


def log_group_id_of(synth: Synth, short_name: str) -> str:
    return function_of(synth, short_name)[1]["LoggingConfig"]["LogGroup"]["Ref"]


def queue_id_of(synth: Synth, short_name: str) -> str:
    return logical_id(synth, "AWS::SQS::Queue", "QueueName", stage_name(synth, short_name))


def table_id_of(synth: Synth, short_name: str) -> str:
    return logical_id(synth, "AWS::DynamoDB::Table", "TableName", stage_name(synth, short_name))


def topic_id_of(synth: Synth, short_name: str) -> str:
    return logical_id(synth, "AWS::SNS::Topic", "TopicName", stage_name(synth, short_name))


def schedule_of(synth: Synth, short_name: str) -> tuple[str, dict[str, Any]]:
    lid = logical_id(synth, "AWS::Scheduler::Schedule", "Name", stage_name(synth, short_name))
    return lid, synth.template_json["Resources"][lid]["Properties"]


def scheduler_role_id(synth: Synth, short_name: str) -> str:
    """The role the function's EventBridge Scheduler schedule assumes."""
    return schedule_of(synth, short_name)[1]["Target"]["RoleArn"]["Fn::GetAtt"][0]


def only_invoke_and_park(synth: Synth, short_name: str, invoke_sid: str) -> list[dict[str, Any]]:
    """A scheduler role's whole policy: invoke its one function, park undeliverable events in the
    core's failure queue."""
    return [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": arn_of(function_of(synth, short_name)[0]),
            "Sid": invoke_sid,
        },
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": failure_queue_ref(synth),
            "Sid": "ParkUndeliveredEvents",
        },
    ]


def secret_id(synth: Synth, channel: str) -> str:
    return logical_id(
        synth,
        "AWS::SecretsManager::Secret",
        "Name",
        f"finops-guard/{synth.stack.config.stage}/{channel}-webhook-url",
    )


def layer_id(synth: Synth, name: str) -> str:
    return logical_id(
        synth, "AWS::Lambda::LayerVersion", "LayerName", f"finops-guard-{synth.stack.config.stage}-{name}"
    )


def layer_parameter_id(synth_or_part: Synth | StackSynth, name: str) -> str:
    """The template parameter through which a product stack reads a core layer's version ARN from
    SSM (``/finops-guard/<stage>/layers/<name>``); a ``Synth`` means its costs stack."""
    part = synth_or_part.costs if isinstance(synth_or_part, Synth) else synth_or_part
    parameters = part.template_json["Parameters"]
    parameter_name = f"/finops-guard/{stage_of(part)}/layers/{name}"
    [lid] = [lid for lid, parameter in parameters.items() if parameter.get("Default") == parameter_name]
    assert parameters[lid]["Type"] == "AWS::SSM::Parameter::Value<String>"
    return lid


def logged_bucket_id(synth: Synth, log_prefix: str) -> str:
    """The bucket that writes its server access logs under ``log_prefix``."""
    [lid] = [
        lid
        for lid, bucket in synth.resources("AWS::S3::Bucket").items()
        if bucket["Properties"].get("LoggingConfiguration", {}).get("LogFilePrefix") == log_prefix
    ]
    return lid


def export_bucket_id(synth: Synth) -> str:
    """The ledger export bucket."""
    return logged_bucket_id(synth, "export-bucket/")


def chargeback_bucket_id(synth: Synth) -> str:
    """The monthly chargeback bucket."""
    return logged_bucket_id(synth, "chargeback-bucket/")


def _token_text(token: dict[str, Any]) -> str:
    [(function, argument)] = token.items()
    if function == "Ref":
        return f"<Ref:{argument}>"
    if function == "Fn::GetAtt":
        return f"<GetAtt:{argument[0]}.{argument[1]}>"
    raise AssertionError(f"unexpected token in a joined string: {token}")


def joined_text(value: str | dict[str, Any]) -> str:
    """A string property, or a Fn::Join of strings, Refs and GetAtts, as one text with placeholders
    (``<Ref:Id>``, ``<GetAtt:Id.Attr>``) for the tokens."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else _token_text(part) for part in parts)


def read_team_routes(synth: Synth) -> dict[str, Any]:
    """The statement that lets a posting function read the team routes."""
    return {
        "Sid": "ReadTeamRoutes",
        "Effect": "Allow",
        "Action": "dynamodb:Query",
        "Resource": arn_of(table_id_of(synth, "team-routes")),
    }


def role_policy_id(synth: Synth, short_name: str) -> str:
    """The policy CDK attaches to the function's role (what its EventInvokeConfig waits for)."""
    role = ref(role_id_of(synth, short_name))
    [lid] = [lid for lid, p in synth.resources("AWS::IAM::Policy").items() if role in p["Properties"]["Roles"]]
    return lid


def assert_parks_failed_async_events(synth: Synth, part: StackSynth, short_name: str) -> None:
    """Lambda retries the function's failed async event twice, then sends it to the stage's failure queue;
    the config waits for the role's policy (Lambda checks the role may send there when it saves it)."""
    function_id, _ = function_of(synth, short_name)
    part.template.has_resource(
        "AWS::Lambda::EventInvokeConfig",
        {
            "Properties": Match.object_equals(
                {
                    "FunctionName": ref(function_id),
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 2,
                    "DestinationConfig": {"OnFailure": {"Destination": failure_queue_ref(synth)}},
                }
            ),
            "DependsOn": [role_policy_id(synth, short_name)],
        },
    )


def assert_pages_only_through_the_stage_alarms(synth: Synth, alarm_prefix: str) -> None:
    """No alarm of its own (its failed async events reach the failure queue alarm); a failed chat post
    counts in the stage's one ChatDeliveryFailures metric, which the core's one alarm watches."""
    names = [a["Properties"]["AlarmName"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]

    assert [name for name in names if name.startswith(alarm_prefix)] == []
    ops = ref(topic_id_of(synth, "ops-alarms"))
    synth.core.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"FinOpsGuard-{stage_of(synth)}-ChatDeliveryFailures",
            "Namespace": "FinOpsGuard",
            "MetricName": "ChatDeliveryFailures",
            "Dimensions": [{"Name": "stage", "Value": stage_of(synth)}],
            "Statistic": "Sum",
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "AlarmActions": [ops],
            "OKActions": [ops],
        },
    )


def policy_statements_of_role(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    policies = [p for p in synth.resources("AWS::IAM::Policy").values() if ref(role_id) in p["Properties"]["Roles"]]
    assert len(policies) == 1
    return policies[0]["Properties"]["PolicyDocument"]["Statement"]
