"""Evaluates the synthesized template's access policies the way AWS documents it, without AWS.

moto enforces no resource policy, so a path between principals (an alarm publishing to the ops topic,
Cost Anomaly Detection encrypting for its topic, SNS delivering to a queue) is only proven by reading
the policies. This module resolves the intrinsics the policies use and answers "is this request
allowed?" with the documented logic:

- an explicit Deny in any applicable policy wins; otherwise any Allow; otherwise the implicit deny
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html);
- a service principal is allowed only by a resource policy that names it;
- a role of this account is allowed by its identity policies or by a resource policy naming the role;
  naming the account (``:root``) in a resource policy only delegates to the identity policies;
- a KMS key is the exception: the key policy must allow the role itself, or name the account (the
  default statement delegating to IAM) *and* the role's identity policy must allow
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).

Anything the evaluator does not model (a condition operator, an intrinsic, a policy element, a
managed policy) raises ``Unsupported``: a test must fail rather than silently pass. Not modelled at
all: SCPs, permissions boundaries, session policies, KMS grants, VPC endpoint policies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
PARTITION = "aws"


class Unsupported(Exception):
    """The template or policy uses something this evaluator does not model."""


# --- principals and requests ------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """``Principal("Service", "cloudwatch.amazonaws.com")`` or ``Principal("AWS", "<role ARN>")``."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("Service", "AWS"):
            raise Unsupported(f"principal kind {self.kind!r}")

    @property
    def account(self) -> str | None:
        if self.kind != "AWS":
            return None
        return _arn_parts(self.id)[4]


def service(name: str) -> Principal:
    return Principal("Service", name)


def role(arn: str) -> Principal:
    return Principal("AWS", arn)


ContextValue = str | bool | list[str]


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def __bool__(self) -> bool:
        return self.allowed


# --- matching ---------------------------------------------------------------------------------


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcards: ``*`` any run of characters (also ``:`` and ``/``), ``?`` exactly one."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _arn_parts(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise Unsupported(f"not an ARN: {arn!r}")
    return parts


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-delimited parts matched on its own, case-sensitively."""
    if not value.startswith("arn:"):
        return False
    try:
        pattern_parts, value_parts = _arn_parts(pattern), _arn_parts(value)
    except Unsupported:
        return False
    return all(_glob(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _PrincipalMatch(Enum):
    NONE = 0
    EXACT = 1  # the statement names this principal (or everyone)
    ACCOUNT = 2  # the statement names the principal's account: delegation to its identity policies


def _account_of_principal_value(value: str) -> str | None:
    if re.fullmatch(r"\d{12}", value):
        return value
    match = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):root", value)
    return match.group(1) if match else None


def _match_principal(element: Any, principal: Principal) -> _PrincipalMatch:
    if element == "*":
        return _PrincipalMatch.EXACT
    if not isinstance(element, dict):
        raise Unsupported(f"Principal element {element!r}")
    best = _PrincipalMatch.NONE
    for kind, values in element.items():
        if kind not in ("Service", "AWS"):
            raise Unsupported(f"principal type {kind!r}")
        for value in _as_list(values):
            if not isinstance(value, str):
                raise Unsupported(f"unresolved principal {value!r}")
            if kind == "AWS" and value == "*":
                return _PrincipalMatch.EXACT
            if kind != principal.kind:
                continue
            if kind == "Service":
                if value == principal.id:
                    return _PrincipalMatch.EXACT
                continue
            account = _account_of_principal_value(value)
            if account is not None:
                if account == principal.account:
                    best = _PrincipalMatch.ACCOUNT
            elif value == principal.id:
                return _PrincipalMatch.EXACT
    return best


# --- conditions -------------------------------------------------------------------------------

_STRING_OPERATORS = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: _glob(p, v), False),
    "StringNotLike": (lambda p, v: _glob(p, v), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
}


def _context_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise Unsupported(f"context value {value!r}: only single strings and booleans are modelled")


def _condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, Any]) -> bool:
    """One operator/key pair, as documented in the IAM condition-operator reference: several policy
    values are ORed; a missing key fails a positive operator and satisfies a negated one; with
    ``...IfExists`` a missing key satisfies the condition."""
    if ":" in operator:  # ForAnyValue:/ForAllValues: set operators
        raise Unsupported(f"condition set operator {operator!r}")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        if if_exists:
            raise Unsupported("NullIfExists")
        present = any(k.lower() == key.lower() for k in context)
        return all((str(v).lower() == "true") == (not present) for v in _as_list(policy_values))
    if base not in _STRING_OPERATORS:
        raise Unsupported(f"condition operator {operator!r}")
    match, negated = _STRING_OPERATORS[base]
    found = [value for k, value in context.items() if k.lower() == key.lower()]
    if not found:
        return if_exists or negated
    request_value = _context_text(found[0])
    values = [_context_text(v) if isinstance(v, bool) else v for v in _as_list(policy_values)]
    if not all(isinstance(v, str) for v in values):
        raise Unsupported(f"unresolved condition value {policy_values!r}")
    matched = any(match(v, request_value) for v in values)
    return not matched if negated else matched


def _check_operators(condition: Any, where: str) -> None:
    """Every operator of a statement must be one this module models, whether or not the statement
    applies to the request at hand: an unknown one fails the test instead of being skipped."""
    if not isinstance(condition, dict):
        raise Unsupported(f"Condition element {condition!r} in {where}")
    for operator in condition:
        base = operator.removesuffix("IfExists")
        if ":" in operator or (base not in _STRING_OPERATORS and operator != "Null"):
            raise Unsupported(f"condition operator {operator!r} in {where}")


def _conditions_hold(condition: Any, context: Mapping[str, Any]) -> bool:
    if not isinstance(condition, dict):
        raise Unsupported(f"Condition element {condition!r}")
    results: list[bool] = []
    for operator, pairs in condition.items():
        if not isinstance(pairs, dict):
            raise Unsupported(f"condition block {operator}: {pairs!r}")
        results.extend(_condition_holds(operator, key, values, context) for key, values in pairs.items())
    return all(results)  # every operator and every key must hold (AND); evaluated in full so unknowns raise


# --- the template -----------------------------------------------------------------------------

# The name property CloudFormation uses as the physical name, by resource type.
_NAME_PROPERTIES = {
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::ApiGateway::Stage": "StageName",
    "AWS::Lambda::LayerVersion": "LayerName",
}


class Template:
    """The synthesized template with fixed pseudo parameters; resolves the intrinsics policies use."""

    def __init__(
        self, template: Mapping[str, Any], *, account: str = ACCOUNT, region: str = REGION, partition: str = PARTITION
    ) -> None:
        self.resources: Mapping[str, Mapping[str, Any]] = template["Resources"]
        # Outputs with an Export, by export name: a template that merges several stacks resolves one
        # stack's Fn::ImportValue to what another exports.
        self.exports: Mapping[str, Any] = {
            output["Export"]["Name"]: output["Value"]
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }
        self.account, self.region, self.partition = account, region, partition
        self._pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == resource_type}

    def _resource(self, logical_id: str) -> Mapping[str, Any]:
        if logical_id not in self.resources:
            raise Unsupported(f"no resource {logical_id!r} in the template")
        return self.resources[logical_id]

    def physical_name(self, logical_id: str) -> str:
        resource = self._resource(logical_id)
        prop = _NAME_PROPERTIES.get(resource["Type"])
        name = resource.get("Properties", {}).get(prop) if prop else None
        if name is None:
            return f"{logical_id.lower()}-generated"  # CloudFormation would generate one
        resolved = self.resolve(name)
        if not isinstance(resolved, str):
            raise Unsupported(f"name of {logical_id}: {name!r}")
        return resolved

    def arn(self, service_name: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service_name}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    def ref(self, logical_id: str) -> str:
        if logical_id in self._pseudo:
            return self._pseudo[logical_id]
        resource_type = self._resource(logical_id)["Type"]
        name = self.physical_name(logical_id)
        if resource_type == "AWS::SNS::Topic":
            return self.arn("sns", name)
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        if resource_type == "AWS::KMS::Key":
            return f"key-{logical_id.lower()}"
        if resource_type == "AWS::ApiGateway::RestApi":
            return f"api-{logical_id.lower()}"  # an API's id, not its name
        if resource_type == "AWS::SecretsManager::Secret":
            return self.arn("secretsmanager", f"secret:{name}-AbCdEf")
        if resource_type == "AWS::Lambda::LayerVersion":
            return self.arn("lambda", f"layer:{name}:1")
        if resource_type in _NAME_PROPERTIES:
            return name
        raise Unsupported(f"Ref of a {resource_type}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self._resource(logical_id)["Type"]
        name = self.physical_name(logical_id)
        arns = {
            ("AWS::SNS::Topic", "TopicArn"): lambda: self.arn("sns", name),
            ("AWS::SNS::Topic", "TopicName"): lambda: name,
            ("AWS::SQS::Queue", "Arn"): lambda: self.arn("sqs", name),
            ("AWS::SQS::Queue", "QueueName"): lambda: name,
            ("AWS::SQS::Queue", "QueueUrl"): lambda: self.ref(logical_id),
            ("AWS::KMS::Key", "Arn"): lambda: self.arn("kms", f"key/{self.ref(logical_id)}"),
            ("AWS::KMS::Key", "KeyId"): lambda: self.ref(logical_id),
            ("AWS::IAM::Role", "Arn"): lambda: self.arn(
                "iam", f"role{self._role_path(logical_id)}{name}", region=False
            ),
            ("AWS::Lambda::Function", "Arn"): lambda: self.arn("lambda", f"function:{name}"),
            ("AWS::S3::Bucket", "Arn"): lambda: self.arn("s3", name, region=False, account=False),
            ("AWS::DynamoDB::Table", "Arn"): lambda: self.arn("dynamodb", f"table/{name}"),
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: self.arn(
                "dynamodb", f"table/{name}/stream/2026-01-01T00:00:00.000"
            ),
            ("AWS::Events::Rule", "Arn"): lambda: self.arn("events", f"rule/{name}"),
            ("AWS::Scheduler::Schedule", "Arn"): lambda: self.arn("scheduler", f"schedule/default/{name}"),
            ("AWS::Logs::LogGroup", "Arn"): lambda: self.arn("logs", f"log-group:{name}:*"),
            ("AWS::CloudWatch::Alarm", "Arn"): lambda: self.arn("cloudwatch", f"alarm:{name}"),
        }
        if (resource_type, attribute) not in arns:
            raise Unsupported(f"Fn::GetAtt {attribute} of a {resource_type}")
        return arns[resource_type, attribute]()

    def _role_path(self, logical_id: str) -> str:
        """A role's IAM path ('/' unless it has one): part of its ARN, ``role/<path>/<name>``."""
        path = self.resolve(self._resource(logical_id).get("Properties", {}).get("Path", "/"))
        if not isinstance(path, str) or not (path.startswith("/") and path.endswith("/")):
            raise Unsupported(f"role path {path!r} of {logical_id}")
        return path

    def resolve(self, value: Any) -> Any:
        """Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::ImportValue (of an export in the template's
        Outputs) anywhere in ``value``; other intrinsics raise."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = argument
                resolved = [self.resolve(p) for p in self.resolve(parts)]
                if not all(isinstance(p, str) for p in resolved):
                    raise Unsupported(f"Fn::Join of non-strings: {resolved!r}")
                return separator.join(resolved)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::ImportValue":
                return self._import(argument)
            if key.startswith("Fn::") or key == "Condition":
                raise Unsupported(f"intrinsic {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _import(self, argument: Any) -> Any:
        name = self.resolve(argument)
        if not isinstance(name, str) or name not in self.exports:
            raise Unsupported(f"Fn::ImportValue {name!r}: no output of the template exports it")
        return self.resolve(self.exports[name])

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# --- statements -------------------------------------------------------------------------------

_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource"}


@dataclass(frozen=True)
class _Statement:
    where: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class _Applies:
    effect: str
    principal: _PrincipalMatch
    where: str


def _statements(document: Mapping[str, Any], where: str) -> Iterator[_Statement]:
    if document.get("Version") not in (None, "2012-10-17", "2008-10-17"):
        raise Unsupported(f"policy version {document.get('Version')!r} in {where}")
    for statement in _as_list(document["Statement"]):
        yield _Statement(f"{where} {statement.get('Sid', '(no Sid)')}", statement)


class _PolicyKind(Enum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"  # a role's AssumeRolePolicyDocument: a resource policy without Resource


def _applies(
    template: Template, statement: _Statement, kind: _PolicyKind, request: Request, context: Mapping[str, Any]
) -> _Applies | None:
    body = statement.body
    unknown = set(body) - _STATEMENT_KEYS - {"Condition"}
    if unknown:
        raise Unsupported(f"statement elements {sorted(unknown)} in {statement.where}")
    effect = body.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise Unsupported(f"Effect {effect!r} in {statement.where}")
    if "Condition" in body:
        _check_operators(body["Condition"], statement.where)

    if ("Action" in body) == ("NotAction" in body):
        raise Unsupported(f"exactly one of Action/NotAction expected in {statement.where}")
    actions = [template.resolve(a) for a in _as_list(body.get("Action", body.get("NotAction")))]
    action_hit = any(_glob(a, request.action, case_sensitive=False) for a in actions)
    if action_hit != ("Action" in body):
        return None

    if kind is _PolicyKind.TRUST:
        if "Resource" in body or "NotResource" in body:
            raise Unsupported(f"Resource in a trust policy: {statement.where}")
    else:
        if ("Resource" in body) == ("NotResource" in body):
            raise Unsupported(f"exactly one of Resource/NotResource expected in {statement.where}")
        resources = _as_list(template.resolve(body.get("Resource", body.get("NotResource"))))
        if not all(isinstance(r, str) for r in resources):
            raise Unsupported(f"unresolved Resource in {statement.where}: {resources!r}")
        resource_hit = any(_glob(r, request.resource) for r in resources)
        if resource_hit != ("Resource" in body):
            return None

    if kind is _PolicyKind.IDENTITY:
        if "Principal" in body or "NotPrincipal" in body:
            raise Unsupported(f"Principal in an identity policy: {statement.where}")
        principal = _PrincipalMatch.EXACT
    else:
        if ("Principal" in body) == ("NotPrincipal" in body):
            raise Unsupported(f"exactly one of Principal/NotPrincipal expected in {statement.where}")
        if "Principal" in body:
            principal = _match_principal(template.resolve(body["Principal"]), request.principal)
            if principal is _PrincipalMatch.NONE:
                return None
        else:
            if effect == "Allow":
                raise Unsupported(f"Allow with NotPrincipal in {statement.where}")
            if _match_principal(template.resolve(body["NotPrincipal"]), request.principal) is not _PrincipalMatch.NONE:
                return None
            principal = _PrincipalMatch.EXACT

    if "Condition" in body and not _conditions_hold(template.resolve(body["Condition"]), context):
        return None
    return _Applies(effect, principal, statement.where)


# --- the evaluator ----------------------------------------------------------------------------


# Services whose resources carry no resource-based policy: identity policies alone decide (IAM roles do
# have one, their trust policy, but it governs only sts:AssumeRole, handled above).
_NO_RESOURCE_POLICIES = frozenset({"ce", "apigateway", "cloudwatch", "iam"})
# An SMS published straight to a phone number (Publish with PhoneNumber) is authorised against the number
# itself, e.g. "+15555550100": IAM refuses it "on resource: +1..." unless an identity statement's Resource
# is "*" (https://docs.aws.amazon.com/step-functions/latest/dg/sns-iam.html; an "arn:aws:sns:*:*:*" grant
# is refused: https://github.com/Miserlou/Zappa/issues/1941). No ARN pattern matches it, no resource
# policy applies to it.
_PHONE_NUMBER = re.compile(r"\+[1-9]\d{1,14}")  # E.164


class PolicyEvaluator:
    """``evaluate(Request(...))`` against the template's resource and identity policies."""

    def __init__(self, template: Mapping[str, Any] | Template) -> None:
        self.template = template if isinstance(template, Template) else Template(template)

    # Resource ARNs of the resources tests ask about.
    def topic_arn(self, logical_id: str) -> str:
        return self.template.ref(logical_id)

    def arn(self, logical_id: str) -> str:
        return self.template.get_att(logical_id, "Arn")

    def alarm_arn(self, alarm_name: str, *, account: str | None = None, region: str | None = None) -> str:
        t = self.template
        return f"arn:{t.partition}:cloudwatch:{region or t.region}:{account or t.account}:alarm:{alarm_name}"

    # Policies.
    def _resource_policies(self, request: Request) -> tuple[_PolicyKind, list[_Statement]]:
        t, resource = self.template, request.resource
        if resource == "*":  # an action without a resource type: identity policies alone decide
            return _PolicyKind.RESOURCE, []
        if request.action.lower() == "sns:publish" and _PHONE_NUMBER.fullmatch(resource):
            return _PolicyKind.RESOURCE, []  # an SMS to a phone number: identity policies alone decide
        service_name = _arn_parts(resource)[2]
        found: list[_Statement] = []
        if service_name == "sns":
            for lid, policy in t.of_type("AWS::SNS::TopicPolicy").items():
                if resource in t.resolve(policy["Properties"]["Topics"]):
                    found += _statements(policy["Properties"]["PolicyDocument"], lid)
            return _PolicyKind.RESOURCE, found
        if service_name == "sqs":
            for lid, policy in t.of_type("AWS::SQS::QueuePolicy").items():
                queues = [self._queue_arn(q) for q in policy["Properties"]["Queues"]]
                if resource in queues:
                    found += _statements(policy["Properties"]["PolicyDocument"], lid)
            return _PolicyKind.RESOURCE, found
        if service_name == "kms":
            keys = [lid for lid in t.of_type("AWS::KMS::Key") if self.arn(lid) == resource]
            if len(keys) != 1:
                raise Unsupported(f"no key {resource} in the template")
            return _PolicyKind.RESOURCE, list(_statements(t.resources[keys[0]]["Properties"]["KeyPolicy"], keys[0]))
        if service_name == "s3":
            for lid, policy in t.of_type("AWS::S3::BucketPolicy").items():
                bucket = t.resolve(policy["Properties"]["Bucket"])
                if resource.split(":::", 1)[1].split("/", 1)[0] == bucket:
                    found += _statements(policy["Properties"]["PolicyDocument"], lid)
            return _PolicyKind.RESOURCE, found
        if service_name == "iam" and request.action.lower() == "sts:assumerole":
            roles = [lid for lid in t.of_type("AWS::IAM::Role") if self.arn(lid) == resource]
            if len(roles) != 1:
                raise Unsupported(f"no role {resource} in the template")
            trust = t.resources[roles[0]]["Properties"]["AssumeRolePolicyDocument"]
            return _PolicyKind.TRUST, list(_statements(trust, f"{roles[0]} trust policy"))
        if service_name == "lambda":
            return _PolicyKind.RESOURCE, list(self._lambda_permissions(resource))
        if service_name == "events":
            return _PolicyKind.RESOURCE, list(self._event_bus_statements(resource))
        if service_name in _NO_RESOURCE_POLICIES:
            return _PolicyKind.RESOURCE, []
        raise Unsupported(f"resource policies of {service_name} resources")

    def _event_bus_statements(self, bus_arn: str) -> Iterator[_Statement]:
        """AWS::Events::EventBusPolicy statements of the bus ``bus_arn`` names: the template's own buses
        only (a bus of another account or region has its own policy, in its own template)."""
        t = self.template
        parts = _arn_parts(bus_arn)
        if not parts[5].startswith("event-bus/"):
            raise Unsupported(f"resource policies of the events resource {bus_arn}")
        if (parts[3], parts[4]) != (t.region, t.account):
            return
        for lid, policy in t.of_type("AWS::Events::EventBusPolicy").items():
            props = policy["Properties"]
            if set(props) - {"EventBusName", "StatementId", "Statement"} or "Statement" not in props:
                raise Unsupported(f"event bus policy properties {sorted(props)} in {lid}")
            if t.resolve(props.get("EventBusName", "default")) == parts[5].removeprefix("event-bus/"):
                yield from _statements({"Statement": props["Statement"]}, lid)

    def _queue_arn(self, queue: Any) -> str:
        if isinstance(queue, dict) and set(queue) == {"Ref"}:
            return self.arn(queue["Ref"])
        raise Unsupported(f"QueuePolicy queue {queue!r}")

    def _lambda_permissions(self, function_arn: str) -> Iterator[_Statement]:
        """AWS::Lambda::Permission resources, as the statements Lambda adds to the function's policy."""
        t = self.template
        for lid, permission in t.of_type("AWS::Lambda::Permission").items():
            props = permission["Properties"]
            target = t.resolve(props["FunctionName"])
            if target != function_arn and self.template.arn("lambda", f"function:{target}") != function_arn:
                continue
            unknown = set(props) - {"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"}
            if unknown:
                raise Unsupported(f"Lambda permission properties {sorted(unknown)} in {lid}")
            principal = t.resolve(props["Principal"])
            kind = "Service" if principal.endswith(".amazonaws.com") else "AWS"
            condition: dict[str, dict[str, Any]] = {}
            if "SourceArn" in props:
                condition["ArnLike"] = {"AWS:SourceArn": props["SourceArn"]}
            if "SourceAccount" in props:
                condition["StringEquals"] = {"AWS:SourceAccount": props["SourceAccount"]}
            body = {"Effect": "Allow", "Principal": {kind: principal}, "Action": props["Action"]}
            body |= {"Resource": function_arn} | ({"Condition": condition} if condition else {})
            yield _Statement(lid, body)

    def _identity_statements(self, role_arn: str) -> list[_Statement]:
        t = self.template
        roles = [lid for lid in t.of_type("AWS::IAM::Role") if self.arn(lid) == role_arn]
        if len(roles) != 1:
            raise Unsupported(f"no role {role_arn} in the template")
        role_id = roles[0]
        properties = t.resources[role_id]["Properties"]
        if properties.get("ManagedPolicyArns") or properties.get("PermissionsBoundary"):
            raise Unsupported(f"{role_id}: managed policies and permissions boundaries are not modelled")
        statements = [s for p in properties.get("Policies", []) for s in _statements(p["PolicyDocument"], role_id)]
        for lid, policy in t.of_type("AWS::IAM::Policy").items():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += _statements(policy["Properties"]["PolicyDocument"], lid)
        for lid, policy in t.of_type("AWS::IAM::ManagedPolicy").items():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += _statements(policy["Properties"]["PolicyDocument"], lid)
        return statements

    def _context(self, request: Request) -> dict[str, ContextValue]:
        context = dict(request.context)
        if request.principal.kind == "AWS":
            context.setdefault("aws:PrincipalArn", request.principal.id)
            context.setdefault("aws:PrincipalAccount", request.principal.account or "")
        else:
            context.setdefault("aws:PrincipalServiceName", request.principal.id)
        return context

    def evaluate(self, request: Request) -> Outcome:
        t = self.template
        context = self._context(request)
        kind, resource_statements = self._resource_policies(request)
        is_kms = request.resource.startswith("arn:") and _arn_parts(request.resource)[2] == "kms"
        same_account_role = request.principal.kind == "AWS" and request.principal.account == t.account

        resource_hits = [
            hit for s in resource_statements if (hit := _applies(t, s, kind, request, context)) is not None
        ]
        identity_hits: list[_Applies] = []
        if same_account_role:
            identity_hits = [
                hit
                for s in self._identity_statements(request.principal.id)
                if (hit := _applies(t, s, _PolicyKind.IDENTITY, request, context)) is not None
            ]

        denies = [h for h in resource_hits + identity_hits if h.effect == "Deny"]
        if denies:
            return Outcome(Decision.EXPLICIT_DENY, f"denied by {_names(denies)}")
        resource_exact = [h for h in resource_hits if h.effect == "Allow" and h.principal is _PrincipalMatch.EXACT]
        resource_delegates = [
            h for h in resource_hits if h.effect == "Allow" and h.principal is _PrincipalMatch.ACCOUNT
        ]
        identity_allows = [h for h in identity_hits if h.effect == "Allow"]
        if resource_exact:
            return Outcome(Decision.ALLOW, f"allowed by {_names(resource_exact)}")
        if is_kms:
            if resource_delegates and identity_allows:
                return Outcome(
                    Decision.ALLOW, f"key policy {_names(resource_delegates)} delegates; {_names(identity_allows)}"
                )
            return Outcome(
                Decision.IMPLICIT_DENY,
                "the key policy neither allows this principal nor delegates an identity-policy allow "
                f"(delegation: {_names(resource_delegates) or 'none'}; identity: {_names(identity_allows) or 'none'})",
            )
        if identity_allows:
            return Outcome(Decision.ALLOW, f"allowed by {_names(identity_allows)}")
        return Outcome(Decision.IMPLICIT_DENY, f"no statement allows {request.action} on {request.resource}")

    def is_allowed(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, ContextValue] | None = None
    ) -> Outcome:
        return self.evaluate(Request(principal, action, resource, dict(context or {})))

    def evaluate_cross_account(self, request: Request, caller: PolicyEvaluator) -> Outcome:
        """``request`` by a role of ``caller``'s template (another account) on a resource of this one.

        Across accounts both must allow: the role's identity policies in its own account, and this
        resource's policy (a trust policy for sts:AssumeRole), naming the role or its account
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
        An explicit deny in either wins.
        """
        t = self.template
        if request.principal.kind != "AWS" or request.principal.account != caller.template.account:
            raise Unsupported(f"{request.principal} is no role of the caller's template")
        if caller.template.account == t.account:
            raise Unsupported("the caller's template is in the resource's account: use evaluate")
        context = self._context(request)
        kind, resource_statements = self._resource_policies(request)
        resource_hits = [
            hit for s in resource_statements if (hit := _applies(t, s, kind, request, context)) is not None
        ]
        identity_hits = [
            hit
            for s in caller._identity_statements(request.principal.id)
            if (hit := _applies(caller.template, s, _PolicyKind.IDENTITY, request, context)) is not None
        ]
        denies = [h for h in resource_hits + identity_hits if h.effect == "Deny"]
        if denies:
            return Outcome(Decision.EXPLICIT_DENY, f"denied by {_names(denies)}")
        resource_allows = [h for h in resource_hits if h.effect == "Allow"]
        identity_allows = [h for h in identity_hits if h.effect == "Allow"]
        if resource_allows and identity_allows:
            return Outcome(Decision.ALLOW, f"allowed by {_names(identity_allows)} and {_names(resource_allows)}")
        return Outcome(
            Decision.IMPLICIT_DENY,
            f"across accounts both must allow (identity: {_names(identity_allows) or 'none'}; "
            f"resource: {_names(resource_allows) or 'none'})",
        )


def _names(hits: Iterable[_Applies]) -> str:
    return ", ".join(sorted({h.where for h in hits}))
