"""What the synthesized templates say: the functions, schedules, topics and tables the simulation
runs (all three stacks merged: logical ids are unique across them), and each stack's fixed monthly
charges, counted from its own template."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from devtools.lambda_runner import ROOT
from devtools.selfcost.prices import HOURS_PER_BILLING_MONTH, Bill, bill_json

STAGE = "dev"
FUNCTION_PREFIX = f"finops-guard-{STAGE}-"
PRODUCTS = ("Core", "Costs", "Billing")  # FinOpsGuard-<stage>-<product>, infra/stacks.py
SQS_POLLERS = 5  # Lambda's documented starting number of SQS pollers per event source mapping
SQS_LONG_POLL_S = 20  # each poller long-polls; an empty queue answers after 20 s
# The resource types with a monthly charge of their own (price key); every other type is billed by
# use (requests, GB-seconds, storage) or not at all.
FIXED_TYPES = {
    "AWS::CloudWatch::Alarm": "cloudwatch.alarm",
    "AWS::CloudWatch::CompositeAlarm": "cloudwatch.composite_alarm",
    "AWS::CloudWatch::Dashboard": "cloudwatch.dashboard",
    "AWS::KMS::Key": "kms.key",
    "AWS::SecretsManager::Secret": "secretsmanager.secret",
}


@dataclass(frozen=True)
class FunctionFacts:
    name: str  # short name, e.g. "weekly-report"
    logical_id: str
    memory_mb: int
    timeout_s: int
    environment: Mapping[str, Any]
    retry_attempts: int  # asynchronous invocations: Lambda retries a failed event this many times
    code: str = ""  # its folder under functions/ (several functions may run the same code)

    @property
    def handler_dir(self) -> str:
        return self.code or self.name.replace("-", "_")


@dataclass(frozen=True)
class ScheduleFacts:
    name: str
    function: str
    expression: str
    timezone: str
    payload: str  # the target's Input, with <aws.scheduler.scheduled-time> still in it


@dataclass(frozen=True)
class TopicFacts:
    name: str
    encrypted: bool  # a customer managed KMS key (each publish costs KMS requests); not aws/sns
    subscriptions: Mapping[str, int]  # protocol -> count


def _customer_managed(key: Any) -> bool:
    """A topic's KmsMasterKeyId names a customer managed key, not an AWS managed alias/aws/... one."""
    return key is not None and "alias/aws/" not in json.dumps(key)


def _serves_custom_resources(resources: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Functions that are a custom resource's ServiceToken: they run at deploy time, not in a month."""
    found = set()
    for resource in resources.values():
        token = resource.get("Properties", {}).get("ServiceToken") if resource["Type"].startswith("Custom::") else None
        if isinstance(token, dict) and "Fn::GetAtt" in token:
            found.add(str(token["Fn::GetAtt"][0]))
    return found


@dataclass(frozen=True)
class TemplateFacts:
    functions: Mapping[str, FunctionFacts]  # the functions that run during a month
    schedules: tuple[ScheduleFacts, ...]
    topics: Mapping[str, TopicFacts]
    resources: Mapping[str, Mapping[str, Any]]
    counts: Mapping[str, int]  # resource type -> count
    pitr_tables: tuple[str, ...]
    deploy_time: tuple[str, ...] = ()  # functions that only answer custom resources at deploy time

    @classmethod
    def from_template(cls, template: Mapping[str, Any], prefix: str = FUNCTION_PREFIX) -> TemplateFacts:
        resources: dict[str, Mapping[str, Any]] = template["Resources"]
        by_type: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
        for logical_id, resource in resources.items():
            by_type[resource["Type"]][logical_id] = resource.get("Properties", {})
        retries = {
            props["FunctionName"]["Ref"]: int(props.get("MaximumRetryAttempts", 2))
            for props in by_type["AWS::Lambda::EventInvokeConfig"].values()
        }
        deploy_time = _serves_custom_resources(resources)
        functions, setup = {}, []
        for logical_id, props in by_type["AWS::Lambda::Function"].items():
            name = str(props["FunctionName"]).removeprefix(prefix)
            if logical_id in deploy_time:
                setup.append(name)
                continue
            environment = props.get("Environment", {}).get("Variables", {})
            service = environment.get("POWERTOOLS_SERVICE_NAME")
            functions[name] = FunctionFacts(
                name=name,
                logical_id=logical_id,
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
                environment=environment,
                retry_attempts=retries.get(logical_id, 2),
                code=service.replace("-", "_") if isinstance(service, str) else "",
            )
        by_logical = {f.logical_id: f.name for f in functions.values()}
        schedules = tuple(
            ScheduleFacts(
                name=str(props["Name"]),
                function=by_logical[props["Target"]["Arn"]["Fn::GetAtt"][0]],
                expression=str(props["ScheduleExpression"]),
                timezone=str(props.get("ScheduleExpressionTimezone", "UTC")),
                payload=str(props["Target"].get("Input", "{}")),
            )
            for props in by_type["AWS::Scheduler::Schedule"].values()
        )
        subscriptions: dict[str, Counter[str]] = defaultdict(Counter)
        for props in by_type["AWS::SNS::Subscription"].values():
            topic_ref = props.get("TopicArn", {})
            subscriptions[topic_ref.get("Ref", str(topic_ref)) if isinstance(topic_ref, dict) else topic_ref][
                str(props.get("Protocol"))
            ] += 1
        for logical_id, props in by_type["AWS::SNS::Topic"].items():
            for sub in props.get("Subscription", []) or []:
                subscriptions[logical_id][str(sub.get("Protocol"))] += 1
        topics = {
            str(props.get("TopicName", logical_id)): TopicFacts(
                name=str(props.get("TopicName", logical_id)),
                encrypted=_customer_managed(props.get("KmsMasterKeyId")),
                subscriptions=dict(subscriptions.get(logical_id, {})),
            )
            for logical_id, props in by_type["AWS::SNS::Topic"].items()
        }
        pitr = tuple(
            str(props.get("TableName", lid))
            for lid, props in by_type["AWS::DynamoDB::Table"].items()
            if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        )
        return cls(
            functions=functions,
            schedules=schedules,
            topics=topics,
            resources=resources,
            counts={kind: len(items) for kind, items in by_type.items()},
            pitr_tables=pitr,
            deploy_time=tuple(sorted(setup)),
        )


# --- fixed monthly charges, per stack --------------------------------------------------------------


def _refers_to_type(value: Any, resources: Mapping[str, Mapping[str, Any]], kind: str) -> bool:
    """`value` (an ARN or a reference) names a resource of `kind`: in this template, or by an ARN
    string or an imported export whose name says so (`...-queue-arn`)."""
    if isinstance(value, dict):
        if "Fn::ImportValue" in value:
            return kind.split("::")[2].lower() in json.dumps(value["Fn::ImportValue"]).lower()
        target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        return bool(target) and resources.get(str(target), {}).get("Type") == kind
    return isinstance(value, str) and f":{kind.split('::')[1].lower()}:" in value


def alarm_metrics(props: Mapping[str, Any]) -> int:
    """Metrics an alarm evaluates: one, or each MetricStat of a metric-math alarm's Metrics."""
    if "Metrics" in props:
        return sum(1 for m in props["Metrics"] if "MetricStat" in m)
    return 1


def sqs_pollers(template: Mapping[str, Any]) -> int:
    """Event source mappings reading an SQS queue: Lambda long-polls each all month, busy or not."""
    resources = template["Resources"]
    return sum(
        1
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and _refers_to_type(resource.get("Properties", {}).get("EventSourceArn"), resources, "AWS::SQS::Queue")
    )


def idle_polls_per_month(mappings: int) -> Decimal:
    """ReceiveMessage requests of `mappings` SQS event sources over a 730-hour month: SQS_POLLERS
    pollers each, one SQS_LONG_POLL_S long poll at a time (an empty queue answers after it)."""
    return Decimal(SQS_POLLERS * mappings) * HOURS_PER_BILLING_MONTH * 3600 / SQS_LONG_POLL_S


@dataclass(frozen=True)
class StackFixed:
    """One stack's fixed monthly charges, counted from its template."""

    stack: str
    counts: Mapping[str, Decimal]  # price key -> quantity
    alarms: tuple[tuple[str, int], ...]  # (alarm name, metrics it evaluates)
    not_counted: Mapping[str, int]  # the other resource types: no monthly charge of their own

    @classmethod
    def from_template(cls, stack: str, template: Mapping[str, Any]) -> StackFixed:
        counts: defaultdict[str, Decimal] = defaultdict(Decimal)
        alarms, other = [], Counter[str]()
        for logical_id, resource in template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::CloudWatch::Alarm":
                metrics = alarm_metrics(props)
                counts["cloudwatch.alarm"] += metrics
                alarms.append((str(props.get("AlarmName", logical_id)), metrics))
            elif kind in FIXED_TYPES:
                counts[FIXED_TYPES[kind]] += 1
            else:
                other[kind] += 1
        mappings = sqs_pollers(template)
        if mappings:
            counts["sqs.request"] += idle_polls_per_month(mappings)
        return cls(stack, dict(counts), tuple(sorted(alarms)), dict(sorted(other.items())))

    @property
    def bill(self) -> Bill:
        return Bill.from_counts(self.counts, self.notes)

    @property
    def notes(self) -> dict[str, str]:
        notes = {}
        if self.alarms:
            notes["cloudwatch.alarm"] = ", ".join(f"{name}" + (f" ({n} metrics)" if n != 1 else "")
                                                  for name, n in self.alarms)  # fmt: skip
        polls = self.counts.get("sqs.request")
        if polls:
            mappings = polls / idle_polls_per_month(1)
            notes["sqs.request"] = (f"idle polling of {mappings:.0f} SQS event source(s): {SQS_POLLERS} pollers x one"
                                    f" {SQS_LONG_POLL_S} s long poll each x 730 h")  # fmt: skip
        if self.counts.get("cloudwatch.dashboard"):
            notes["cloudwatch.dashboard"] = "an account's first three dashboards are free; counted at list price"
        return notes

    def items(self) -> str:
        """'2 alarms (3 metrics), 1 secret, SQS idle polling' -- what the stack pays for each month."""
        words = {"cloudwatch.composite_alarm": "composite alarm", "cloudwatch.dashboard": "dashboard",
                 "kms.key": "KMS key", "secretsmanager.secret": "secret"}  # fmt: skip
        out = []
        if self.alarms:
            metrics = sum(n for _, n in self.alarms)
            out.append(f"{len(self.alarms)} alarm{'s' * (len(self.alarms) != 1)}"
                       + (f" ({metrics} metrics)" if metrics != len(self.alarms) else ""))  # fmt: skip
        for key, word in words.items():
            n = int(self.counts.get(key, 0))
            if n:
                out.append(f"{n} {word}{'s' * (n != 1)}")
        if self.counts.get("sqs.request"):
            out.append("SQS idle polling")
        return ", ".join(out) or "none"

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "items": self.items(), **bill_json(self.bill), "not_counted": self.not_counted}


# --- synthesis ----------------------------------------------------------------------------------------


def merge_templates(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The stacks' resources in one template (what the simulation runs); a logical id in two stacks is
    an error (CDK makes them unique across the app's stacks)."""
    resources: dict[str, Any] = {}
    for stack, template in templates.items():
        clash = sorted(set(resources) & set(template["Resources"]))
        if clash:
            raise ValueError(f"{stack}: logical ids also in another stack: {clash[:5]}")
        resources.update(template["Resources"])
    return {"Resources": resources}


def synthesize_templates(changes: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each stack's template (product -> template: Core, Costs, Billing) with cdk.json's default
    context (with `changes`), synthesized in-process as tests/infra does."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from aws_cdk import App

    from infra.stacks import create_stacks

    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **(changes or {})}
    context["aws:cdk:bundling-stacks"] = []  # no layer bundling: the template's resources are the same
    with tempfile.TemporaryDirectory() as outdir, redirect_stdout(io.StringIO()):
        app = App(context=context, outdir=outdir)
        stacks = create_stacks(app)
        assembly = app.synth()
        templates = {}
        for stack in stacks.all:
            path = Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)
            templates[stack.stack_name.rsplit("-", 1)[-1]] = dict(json.loads(path.read_text()))
    missing = set(PRODUCTS) - set(templates)
    if missing:
        raise ValueError(f"the app has no {sorted(missing)} stack")
    return templates
