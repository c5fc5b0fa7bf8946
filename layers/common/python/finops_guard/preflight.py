"""The first deploy: what `finops-guard preflight` and `finops-guard paging-check` decide. Pure: facts
that finops_guard.adapters.account_facts observed in the account go in, findings come out.

Every finding has a status, from good to bad:
- ``ok``: nothing to do;
- ``will-adopt``: something exists and the deploy takes it over (and says how);
- ``warn``: the deploy succeeds, but a feature will not work until the fix is applied (a read the
  caller may not make is a ``warn`` too: "could not check", naming the missing action);
- ``blocking``: the deploy would fail, or must not run until the fix is applied.
Each finding that is not ``ok`` carries its fix as concrete commands.

Why each item is decided the way it is (AWS documentation, checked when this was written):
- Cost Anomaly Detection allows one AWS-services (DIMENSIONAL, SERVICE) monitor per account; the stack's
  custom resource adopts the oldest one there is and creates ``finops-guard-<stage>-services`` only when
  there is none. "Only the AWS services monitor is available within member accounts": linked account,
  cost category and cost allocation tag monitors (CUSTOM) need the management (payer) account, or an
  account outside any organisation.
- Cost allocation tags are activated by the management account or a standalone account only; a
  backfill may start at the first day of a month at most twelve months back.
- CloudFormation's ImportExistingResources (``cdk deploy --import-existing-resources``) imports a
  resource only if the template gives it a static custom name, its DeletionPolicy is Retain or
  RetainExceptOnCreate, it belongs to no other stack, its type supports import, and the type's primary
  identifier is in the template and not read-only. A DynamoDB table qualifies (TableName); a Secrets
  Manager secret does not (its primary identifier is Id, the read-only ARN), so a leftover secret is
  adopted with a resource import (``cdk import``, answering the secret's ARN) before the deploy.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from finops_guard.costs.teams import MAX_DIMENSIONS, TeamConfigError, parse_dimension

OK, WILL_ADOPT, WARN, BLOCKING = "ok", "will-adopt", "warn", "blocking"
STATUSES = (OK, WILL_ADOPT, WARN, BLOCKING)

CDK_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{CDK_QUALIFIER}/version"
# The highest bootstrap version the app's cloud assembly requires (its lookup role's); an infra test
# reads the synthesized manifest and keeps this in step.
MIN_BOOTSTRAP_VERSION = 8
CDK_ROLE_KINDS = ("deploy", "file-publishing", "lookup")
EVENTBRIDGE_REGION = "us-east-1"  # Cost Anomaly Detection puts its events on this region's default bus only
PROJECT_TAG = ("Project", "FinOpsGuard")
STACK_NAME_TAG = "aws:cloudformation:stack-name"

# The stage's stacks (infra/stacks.py): ``FinOpsGuard-<stage>-<product>``, the core deployed first.
PRODUCTS = ("Core", "Costs", "Billing")

# The fixed-name resources that outlive `cdk destroy`, by the stack that creates them: a redeploy of the
# stage finds them.
TABLE_NAMES = {
    "Core": ("outbox",),
    "Costs": ("budgets", "budget-alerts", "anomalies", "team-routes", "recommendations"),
    "Billing": ("stripe-events", "billing-ledger", "billing-objects", "billing-alerts", "dunning", "invoice-requests"),
}
SECRET_NAMES = {
    "Core": ("teams-webhook-url",),
    "Costs": (),
    "Billing": ("finance-teams-webhook-url", "stripe-webhook-secret", "stripe-api-key"),
}
SLACK_SECRET_NAMES = {"Core": ("slack-webhook-url",), "Costs": (), "Billing": ("finance-slack-webhook-url",)}
# Team routing (on unless teamDimension is "" or "null"): one secret holds every team's webhook URLs.
TEAM_ROUTING_SECRET_NAMES = {"Core": (), "Costs": ("team-webhooks",), "Billing": ()}

# Stack states: a deploy updates a stack in a COMPLETE state; these need a hand first.
_STACK_DELETE_FIRST = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED")
# A stack resource in one of these states is no longer the stack's (a Retain policy skips the delete).
GONE_RESOURCE_STATUSES = ("DELETE_COMPLETE", "DELETE_SKIPPED")

_STAGE = re.compile(r"[a-z0-9-]{1,16}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_ACCOUNT_ID = re.compile(r"\d{12}")
_MONITOR_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:ce::\d{12}:anomalymonitor/[A-Za-z0-9-]{1,64}")
_NULLS = {"", "null", "none"}
_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0"}
_CUSTOM_MONITOR_KEYS = ("anomalyLinkedAccounts", "anomalyTag", "anomalyCostCategory")


class PreflightInputError(ValueError):
    """Bad input (stage, context file, -c value): the message is one line naming what to change."""


class AwsUnreachable(Exception):
    """AWS cannot be asked anything (no credentials, no region, no answer): one line saying what to do."""


# --- configuration: the few context keys preflight needs, parsed as strictly as infra/config.py ---------


@dataclass(frozen=True)
class NamedResource:
    """A resource a stack creates under a fixed name: ``kind`` is ``table`` or ``secret``; ``stack`` the
    name of the stack that creates it."""

    kind: str
    name: str
    stack: str


@dataclass(frozen=True)
class PreflightConfig:
    stage: str
    anomaly_service_monitor: bool = True
    anomaly_monitor_arns: tuple[str, ...] = ()
    custom_monitor_keys: tuple[str, ...] = ()  # the context keys set that create CUSTOM monitors
    attribution_tag_keys: tuple[str, ...] = ("Team", "CostCenter")  # tag keys of attributionDimensions
    dunning_sender_email: str | None = None
    slack_enabled: bool = False
    team_routing: bool = True  # teamDimension is not "" / "null": the team webhooks secret exists
    overrides: tuple[str, ...] = ()  # the -c key=value given (without stage), repeated in deploy commands

    def stack_name(self, product: str) -> str:
        """``FinOpsGuard-<stage>-<product>``, ``product`` one of PRODUCTS."""
        return f"FinOpsGuard-{self.stage}-{product}"

    @property
    def stack_names(self) -> tuple[str, ...]:
        """The stage's three stacks, the core first."""
        return tuple(self.stack_name(product) for product in PRODUCTS)

    def named_resources(self) -> tuple[NamedResource, ...]:
        """Every fixed-name table and secret of this stage's stacks, stack by stack (the core first)."""
        found: list[NamedResource] = []
        for product in PRODUCTS:
            stack = self.stack_name(product)
            secrets = SECRET_NAMES[product] + (SLACK_SECRET_NAMES[product] if self.slack_enabled else ())
            secrets += TEAM_ROUTING_SECRET_NAMES[product] if self.team_routing else ()
            found += [NamedResource("table", f"finops-guard-{self.stage}-{n}", stack) for n in TABLE_NAMES[product]]
            found += [NamedResource("secret", f"finops-guard/{self.stage}/{n}", stack) for n in secrets]
        return tuple(found)

    def deploy_command(self, *flags: str) -> str:
        """Deploy every stack of the stage (``--all``: the core first, then both products)."""
        return self.cdk_command("deploy", *flags, stacks=("--all",))

    def cdk_command(self, verb: str, *flags: str, stacks: Sequence[str] = ()) -> str:
        """``npx cdk <verb> <stacks>`` with this stage and the same -c values preflight was given, then
        ``flags``; a URL value is not repeated (integration URLs carry keys), only named."""
        context = [f"stage={self.stage}", *(_shown_override(pair) for pair in self.overrides)]
        return " ".join([f"npx cdk {verb}", *stacks, *(f"-c {c}" for c in context), *flags])


def _shown_override(pair: str) -> str:
    key, _, value = pair.partition("=")
    return shlex.quote(f"{key}=<your {key}>" if "://" in value else pair)


def parse_stage(raw: str) -> str:
    stage = raw.strip()
    if not _STAGE.fullmatch(stage) or stage.startswith("-") or stage.endswith("-"):
        raise PreflightInputError(
            f"--stage {raw!r}: use 1-16 lowercase letters, digits or inner hyphens (it is part of resource names)"
        )
    return stage


def load_context(text: str, source: str) -> dict[str, Any]:
    """The ``context`` object of a cdk.json text; ``source`` names the file in errors."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PreflightInputError(f"{source} is not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(document, dict):
        raise PreflightInputError(f'{source} must hold a JSON object with a "context" object')
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise PreflightInputError(f'{source}: "context" must be a JSON object')
    return context


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``-c key=value`` pairs as the CDK CLI reads them: the value is everything after the first '='."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise PreflightInputError(f"-c {pair!r}: write -c key=value, e.g. -c slackEnabled=true")
        overrides[key.strip()] = value
    return overrides


def parse_config(stage: str, context: Mapping[str, Any], pairs: Sequence[str] = ()) -> PreflightConfig:
    """The keys preflight needs from cdk.json's ``context`` overridden by ``-c key=value`` (``pairs``).

    ``stage`` (already checked) wins over the context's; a ``-c stage=`` that disagrees is an error.
    JSON null counts as absent, as in infra/config.py."""
    overrides = parse_overrides(pairs)
    if "stage" in overrides and overrides["stage"].strip() != stage:
        raise PreflightInputError(f"--stage {stage} and -c stage={overrides['stage']} disagree; give the stage once")
    merged = {key: value for key, value in {**context, **overrides}.items() if value is not None}

    def value(key: str, default: Any) -> Any:
        return merged.get(key, default)

    custom = tuple(
        key
        for key, parsed in (
            ("anomalyLinkedAccounts", _linked_accounts(value("anomalyLinkedAccounts", []))),
            ("anomalyTag", _cost_filter("anomalyTag", value("anomalyTag", None))),
            ("anomalyCostCategory", _cost_filter("anomalyCostCategory", value("anomalyCostCategory", None))),
        )
        if parsed
    )
    return PreflightConfig(
        stage=stage,
        anomaly_service_monitor=_bool("anomalyServiceMonitor", value("anomalyServiceMonitor", True)),
        anomaly_monitor_arns=_monitor_arns(value("anomalyMonitorArns", [])),
        custom_monitor_keys=custom,
        attribution_tag_keys=_attribution_tag_keys(value("attributionDimensions", ["tag:Team", "tag:CostCenter"])),
        dunning_sender_email=_optional_email("dunningSenderEmail", value("dunningSenderEmail", None)),
        slack_enabled=_bool("slackEnabled", value("slackEnabled", False)),
        team_routing=_team_routing(value("teamDimension", None)),
        overrides=tuple(f"{key}={text}" for key, text in overrides.items() if key != "stage"),
    )


def _invalid(key: str, raw: Any, problem: str) -> PreflightInputError:
    return PreflightInputError(f"Invalid context '{key}': {raw!r} {problem}")


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise _invalid(key, raw, "must be true or false")


def _string_list(key: str, raw: Any) -> list[Any]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NULLS:
            return []
        if not text.startswith("["):
            return [item.strip() for item in text.split(",")]
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise _invalid(key, raw, "is not a valid JSON array") from None
    if not isinstance(raw, list):
        raise _invalid(key, raw, "must be a list (JSON array or comma-separated string)")
    return [item.strip() if isinstance(item, str) else item for item in raw]


def _linked_accounts(raw: Any) -> tuple[str, ...]:
    accounts = _string_list("anomalyLinkedAccounts", raw)
    for account in accounts:
        if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
            raise _invalid("anomalyLinkedAccounts", raw, f"holds {account!r}, not a quoted 12-digit AWS account id")
    return tuple(dict.fromkeys(accounts))


def _monitor_arns(raw: Any) -> tuple[str, ...]:
    arns = _string_list("anomalyMonitorArns", raw)
    for arn in arns:
        if not isinstance(arn, str) or not _MONITOR_ARN.fullmatch(arn):
            raise _invalid(
                "anomalyMonitorArns", raw, f"holds {arn!r}, not an arn:aws:ce::<account>:anomalymonitor/<id>"
            )
    return tuple(dict.fromkeys(arns))


def _cost_filter(key: str, raw: Any) -> bool:
    """True when ``name=value1,value2`` is set, False when unset or null."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return False
    if not isinstance(raw, str):
        raise _invalid(key, raw, "must be a string 'name=value1,value2'")
    name, separator, values = raw.partition("=")
    if not separator or not name.strip() or not all(v.strip() for v in values.split(",")):
        raise _invalid(key, raw, "must be 'name=value1,value2'")
    return True


def _attribution_tag_keys(raw: Any) -> tuple[str, ...]:
    key = "attributionDimensions"
    specs = []
    for spec in _string_list(key, raw):
        try:
            specs.append(parse_dimension(spec if isinstance(spec, str) else "", key))
        except TeamConfigError:
            raise _invalid(key, raw, f"holds {spec!r}, not tag:<tag key> or costCategory:<name>") from None
    unique = list({d.spec(): d for d in specs}.values())
    if not 1 <= len(unique) <= MAX_DIMENSIONS:
        raise _invalid(key, raw, f"lists {len(unique)} dimensions; give 1 to {MAX_DIMENSIONS}")
    return tuple(d.key for d in unique if d.kind == "tag")


def _team_routing(raw: Any) -> bool:
    """infra/config.py: teamDimension absent or JSON null routes by the first dimension; "" or "null" is off.
    Which dimension it names is infra's to check."""
    return not (isinstance(raw, str) and raw.strip().lower() in _NULLS)


def _optional_email(key: str, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    if not isinstance(raw, str) or not _EMAIL.fullmatch(raw.strip()):
        raise _invalid(key, raw, "is not an e-mail address")
    return raw.strip()


# --- facts: what the adapter observed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Unanswered:
    """A read that got no usable answer. ``action`` is the IAM action (``ce:GetAnomalyMonitors``);
    ``denied``: the caller may not make it (AccessDenied); ``reason``: the error, one line."""

    action: str
    denied: bool
    reason: str = ""


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str  # as sts:GetCallerIdentity answered (an assumed-role session ARN for roles)

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1] if self.arn.count(":") >= 5 else "aws"


@dataclass(frozen=True)
class StackState:
    name: str
    status: str
    reason: str = ""
    owned: frozenset[str] | Unanswered = frozenset()  # physical ids of its live resources


@dataclass(frozen=True)
class AnomalyMonitor:
    name: str
    arn: str
    monitor_type: str
    dimension: str | None = None
    created_on: str | None = None  # YYYY-MM-DD


@dataclass(frozen=True)
class Organization:
    management_account: str | None  # None: the account belongs to no organisation (it is its own payer)


@dataclass(frozen=True)
class ApiGatewayRole:
    role_arn: str | None  # the account's CloudWatch Logs role setting for API Gateway; None when unset
    role_exists: bool | Unanswered | None = None  # None when no role is set


@dataclass(frozen=True)
class ExistingResource:
    name: str
    arn: str
    tags: Mapping[str, str] | Unanswered = field(default_factory=dict)
    deletion_date: str | None = None  # a secret scheduled for deletion: the day it goes
    status: str = ""  # a table's TableStatus


@dataclass(frozen=True)
class SesAccount:
    production_access: bool
    sending_enabled: bool = True


@dataclass(frozen=True)
class SesIdentity:
    identity: str  # the sender address, or its domain
    verified: bool


@dataclass(frozen=True)
class RoleDecision:
    role_arn: str
    decision: str  # allowed | explicitDeny | implicitDeny (IAM policy simulator)


@dataclass(frozen=True)
class AccountFacts:
    caller: Caller
    region: str
    stacks: Mapping[str, StackState | None | Unanswered] = field(default_factory=dict)  # name -> state; absent: None
    monitors: tuple[AnomalyMonitor, ...] | Unanswered = ()
    organization: Organization | Unanswered = Organization(None)
    api_gateway: ApiGatewayRole | Unanswered = ApiGatewayRole(None)
    resources: Mapping[str, ExistingResource | None | Unanswered] = field(default_factory=dict)  # name -> fact
    cost_allocation_tags: Mapping[str, str] | Unanswered = field(default_factory=dict)  # key -> Active/Inactive
    ses_account: SesAccount | Unanswered | None = None  # None: not checked (no dunningSenderEmail)
    ses_identities: tuple[SesIdentity, ...] | Unanswered = ()  # those that exist, the address first
    bootstrap_version: int | None | Unanswered = None  # None: the parameter does not exist
    deploy_roles: tuple[RoleDecision, ...] | Unanswered | None = None  # None: not simulated (root user)
    principal: str | None = None  # the IAM principal simulated


@dataclass(frozen=True)
class Finding:
    item: str
    status: str
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"item": self.item, "status": self.status, "detail": self.detail, "fix": self.fix}


# --- decisions --------------------------------------------------------------------------------------------


def cdk_role_arns(caller: Caller, region: str) -> tuple[str, ...]:
    """The bootstrap roles `cdk deploy` assumes: deploy, file publishing and lookup."""
    account = caller.account
    return tuple(
        f"arn:{caller.partition}:iam::{account}:role/cdk-{CDK_QUALIFIER}-{kind}-role-{account}-{region}"
        for kind in CDK_ROLE_KINDS
    )


def principal_arn(caller_arn: str) -> str | None:
    """The IAM principal to simulate for a caller: an assumed-role session becomes its role (without
    the role's path, which the session ARN does not carry); None for the root user and federated users."""
    parts = caller_arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith(("user/", "role/")):
        return caller_arn
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


def backfill_from(today: date) -> date:
    """The first day of the month twelve months back: the earliest start a tag backfill accepts."""
    return date(today.year - 1, today.month, 1)


def assess(config: PreflightConfig, facts: AccountFacts, today: date) -> list[Finding]:
    """Every preflight finding, in the order an operator fixes them."""
    return [
        permissions_finding(facts),
        bootstrap_finding(facts),
        region_finding(facts.region),
        *(stack_finding(name, facts.stacks.get(name)) for name in config.stack_names),
        *named_resource_findings(config, facts),
        services_monitor_finding(config, facts.monitors),
        custom_monitors_finding(config, facts),
        api_gateway_finding(config, facts.api_gateway),
        *cost_allocation_tag_findings(config, facts, today),
        *ses_findings(config, facts),
    ]


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when nothing blocks, 1 otherwise."""
    return 1 if any(f.status == BLOCKING for f in findings) else 0


def could_not_check(item: str, gap: Unanswered, what: str, by_hand: str) -> Finding:
    """A read without an answer: never a traceback, always the action that was missing."""
    if gap.denied:
        detail = f"could not check {what}: the caller may not call {gap.action}"
        fix = f"grant {gap.action} to the caller and run preflight again, or check by hand: {by_hand}"
    else:
        detail = f"could not check {what}: {gap.action} failed ({gap.reason or 'no answer'})"
        fix = f"run preflight again, or check by hand: {by_hand}"
    return Finding(item, WARN, detail, fix)


def permissions_finding(facts: AccountFacts) -> Finding:
    item = "permissions"
    roles = cdk_role_arns(facts.caller, facts.region)
    if facts.deploy_roles is None:
        if facts.principal is None and facts.caller.arn.endswith(":root"):
            return Finding(
                item,
                OK,
                "the caller is the account's root user, which may assume the CDK roles "
                "(deploy with an IAM role rather than root)",
            )
        return Finding(
            item,
            WARN,
            f"could not check: {facts.caller.arn} is not a user or role the IAM policy simulator can evaluate",
            f"check by hand: aws sts assume-role --role-arn {roles[0]} --role-session-name preflight",
        )
    if isinstance(facts.deploy_roles, Unanswered):
        by_hand = f"aws sts assume-role --role-arn {roles[0]} --role-session-name preflight"
        return could_not_check(item, facts.deploy_roles, "whether the caller may assume the CDK roles", by_hand)
    refused = [d for d in facts.deploy_roles if d.decision != "allowed"]
    if not refused:
        return Finding(item, OK, f"{facts.principal} may assume the CDK deploy, file-publishing and lookup roles")
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [d.role_arn for d in refused]}],
        },
        separators=(",", ":"),
    )
    names = ", ".join(f"{d.role_arn.rsplit('/', 1)[-1]} ({d.decision})" for d in refused)
    principal = facts.principal or facts.caller.arn
    kind, _, name = principal.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    verb = "put-user-policy --user-name" if kind == "user" else "put-role-policy --role-name"
    fix = f"aws iam {verb} {shlex.quote(name)} --policy-name cdk-deploy --policy-document {shlex.quote(document)}"
    if any(d.decision == "explicitDeny" for d in refused):
        fix += " (an explicit Deny wins over any Allow: remove it from the policy, boundary or SCP that has it)"
    return Finding(item, BLOCKING, f"{principal} may not sts:AssumeRole {names}", fix)


def bootstrap_finding(facts: AccountFacts) -> Finding:
    item = "cdk bootstrap"
    target = f"aws://{facts.caller.account}/{facts.region}"
    version = facts.bootstrap_version
    if isinstance(version, Unanswered):
        by_hand = f"aws ssm get-parameter --name {BOOTSTRAP_VERSION_PARAMETER}"
        return could_not_check(item, version, "the CDK bootstrap version", by_hand)
    if version is None:
        return Finding(
            item,
            BLOCKING,
            f"{target} is not bootstrapped ({BOOTSTRAP_VERSION_PARAMETER} does not exist)",
            f"npx cdk bootstrap {target}",
        )
    if version < MIN_BOOTSTRAP_VERSION:
        return Finding(
            item,
            BLOCKING,
            f"bootstrap version {version} is older than the {MIN_BOOTSTRAP_VERSION} this app needs",
            f"npx cdk bootstrap {target}",
        )
    return Finding(item, OK, f"bootstrap version {version} (this app needs {MIN_BOOTSTRAP_VERSION} or later)")


def region_finding(region: str) -> Finding:
    if region == EVENTBRIDGE_REGION:
        return Finding("region", OK, f"{region}: Cost Anomaly Detection events arrive on this region's bus")
    return Finding(
        "region",
        WARN,
        f"{region}: Cost Anomaly Detection puts its EventBridge events on the {EVENTBRIDGE_REGION} default bus "
        "only; anomaly alerts still arrive through the SNS subscription",
        f"nothing is required; for the EventBridge events as well, deploy in {EVENTBRIDGE_REGION}: "
        f"AWS_REGION={EVENTBRIDGE_REGION} npx cdk deploy ...",
    )


def stack_finding(name: str, stack: StackState | None | Unanswered) -> Finding:
    item = "stack"
    if isinstance(stack, Unanswered):
        return could_not_check(item, stack, f"stack {name}", f"aws cloudformation describe-stacks --stack-name {name}")
    if stack is None:
        return Finding(item, OK, f"{name} does not exist yet; the deploy creates it")
    status = stack.status
    why = f" ({stack.reason})" if stack.reason else ""
    events = f"aws cloudformation describe-stack-events --stack-name {name}"
    if status in _STACK_DELETE_FIRST:
        return Finding(
            item,
            BLOCKING,
            f"{name} is {status}{why}: a failed create cannot be updated",
            f"{events} (to see what failed), then: aws cloudformation delete-stack --stack-name {name} "
            f"&& aws cloudformation wait stack-delete-complete --stack-name {name} "
            f"(if it ends DELETE_FAILED on a deletion-protected table: aws cloudformation delete-stack "
            f"--stack-name {name} --deletion-mode FORCE_DELETE_STACK), then run preflight again: the "
            "tables a failed create keeps because of their deletion protection are will-adopt",
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        return Finding(
            item,
            BLOCKING,
            f"{name} is {status}{why}: it can be neither updated nor rolled back as is",
            f"{events}, fix the cause, then: aws cloudformation continue-update-rollback --stack-name {name} "
            "(add --resources-to-skip LOGICAL_ID for a resource that cannot be rolled back)",
        )
    if status == "DELETE_FAILED":
        return Finding(
            item,
            BLOCKING,
            f"{name} is {status}{why}",
            f"{events}, then: aws cloudformation delete-stack --stack-name {name} --deletion-mode FORCE_DELETE_STACK",
        )
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        return Finding(
            item,
            BLOCKING,
            f"{name} is {status}: another operation is running",
            f"wait for it: aws cloudformation describe-stacks --stack-name {name} --query 'Stacks[0].StackStatus'",
        )
    if status == "REVIEW_IN_PROGRESS":
        return Finding(item, OK, f"{name} exists only as a change set that never ran; the deploy creates it")
    if status == "UPDATE_FAILED":
        return Finding(
            item,
            WARN,
            f"{name} is {status}{why}: the last update failed and was not rolled back",
            f"{events}; the next deploy retries it, or roll it back: "
            f"aws cloudformation rollback-stack --stack-name {name}",
        )
    if status.endswith("_FAILED"):
        return Finding(item, BLOCKING, f"{name} is {status}{why}", f"{events}, fix the cause, then deploy again")
    note = " (its last update was rolled back)" if status == "UPDATE_ROLLBACK_COMPLETE" else ""
    return Finding(item, OK, f"{name} is {status}{note}; the deploy updates it")


def named_resource_findings(config: PreflightConfig, facts: AccountFacts) -> list[Finding]:
    """The fixed-name tables and secrets: free, the stack's own, leftovers to adopt, or in the way."""
    item = "named resources"
    states = {name: state for name, state in facts.stacks.items() if isinstance(state, StackState)}
    free: list[str] = []
    ours: list[NamedResource] = []
    adopt: list[NamedResource] = []  # tables: --import-existing-resources takes them
    secrets: list[tuple[NamedResource, ExistingResource]] = []  # need `cdk import` (see import_secrets_fix)
    restore: list[tuple[NamedResource, ExistingResource]] = []
    foreign: list[tuple[NamedResource, str]] = []
    waiting: list[NamedResource] = []
    gaps: list[tuple[NamedResource, Unanswered]] = []
    for resource in config.named_resources():
        fact = facts.resources.get(resource.name)
        if fact is None:
            free.append(resource.name)
        elif isinstance(fact, Unanswered):
            gaps.append((resource, fact))
        elif _owned_by(states.get(resource.stack), fact):
            ours.append(resource)
        elif isinstance(fact.tags, Unanswered):
            gaps.append((resource, fact.tags))
        elif fact.status == "DELETING":
            waiting.append(resource)
        elif (problem := _not_ours(config, resource, fact.tags)) is not None:
            foreign.append((resource, problem))
        elif fact.deletion_date is not None:
            restore.append((resource, fact))
        elif resource.kind == "secret":
            secrets.append((resource, fact))
        else:
            adopt.append(resource)
    findings: list[Finding] = []
    for name, state in states.items():
        if isinstance(state.owned, Unanswered):
            by_hand = f"aws cloudformation list-stack-resources --stack-name {name}"
            findings.append(could_not_check(item, state.owned, f"which resources {name} owns", by_hand))
    owners = Counter(r.stack for r in ours)
    counted = [
        f"{len(free)} not there yet (the deploy creates them)" if free else "",
        *(f"{count} owned by {name}" for name, count in owners.items()),
    ]
    if free or ours:
        findings.append(Finding(item, OK, "; ".join(c for c in counted if c)))
    for resource, gap in gaps:
        findings.append(could_not_check(item, gap, f"{resource.kind} {resource.name}", _describe(resource)))
    if waiting:
        names = ", ".join(r.name for r in waiting)
        waits = " && ".join(f"aws dynamodb wait table-not-exists --table-name {r.name}" for r in waiting)
        findings.append(Finding(item, BLOCKING, f"being deleted: {names}", f"wait until they are gone: {waits}"))
    if foreign:
        lines = "; ".join(f"{r.kind} {r.name} ({problem})" for r, problem in foreign)
        removes = " ; ".join(_remove_command(r) for r, _ in foreign)
        findings.append(
            Finding(
                item,
                BLOCKING,
                f"in the way, not this stage's: {lines}",
                f"choose another stage (--stage / -c stage=...), or if nothing uses them: {removes}",
            )
        )
    if restore:
        names = ", ".join(r.name for r, _ in restore)
        restores = " && ".join(f"aws secretsmanager restore-secret --secret-id {r.name}" for r, _ in restore)
        findings.append(
            Finding(
                item,
                BLOCKING,
                f"scheduled for deletion, so no stack can create or import them: {names}",
                f"{restores}, then: {import_secrets_fix(config, restore)}",
            )
        )
    if secrets:
        names = ", ".join(r.name for r, _ in secrets)
        findings.append(
            Finding(
                item,
                BLOCKING,
                f"secrets left by an earlier FinOps Guard {config.stage} deploy "
                f"(tagged {PROJECT_TAG[0]}={PROJECT_TAG[1]}, "
                f"Environment={config.stage}) and owned by no stack: {names}. --import-existing-resources cannot "
                "adopt a secret (CloudFormation auto-imports only types whose primary identifier is not read-only; "
                "a secret's is its ARN), so a deploy would fail on them",
                import_secrets_fix(config, secrets),
            )
        )
    if adopt:
        names = ", ".join(r.name for r in adopt)
        findings.append(
            Finding(
                item,
                WILL_ADOPT,
                f"tables left by an earlier FinOps Guard {config.stage} deploy "
                f"(tagged {PROJECT_TAG[0]}={PROJECT_TAG[1]}, "
                f"Environment={config.stage}) and owned by no stack; the deploy imports them, data kept: {names}",
                config.deploy_command("--import-existing-resources"),
            )
        )
    return findings


def import_secrets_fix(config: PreflightConfig, secrets: Sequence[tuple[NamedResource, ExistingResource]]) -> str:
    """Adopt leftover secrets (values kept) with a CloudFormation resource import into the stack that
    creates each: `cdk import` (one stack at a time, the core first) asks for each new resource's
    identifier; a secret's is its ARN."""
    imports = []
    for stack in dict.fromkeys(r.stack for r, _ in secrets):
        answers = "; ".join(f"{r.name}: {fact.arn}" for r, fact in secrets if r.stack == stack)
        imports.append(
            f"{config.cdk_command('import', stacks=(stack,))} and, where it asks for a secret's Id, "
            f"enter its ARN ({answers})"
        )
    return (
        f"{'; then '.join(imports)}; answer y only for FinOps Guard tables this preflight lists as left behind, "
        f"leave everything else empty; then: {config.deploy_command('--import-existing-resources')}"
    )


def _owned_by(stack: StackState | None, fact: ExistingResource) -> bool:
    """Whether ``stack`` (the one that creates the resource) owns it already."""
    if stack is None:
        return False
    owned = stack.owned
    if isinstance(owned, frozenset):
        return fact.name in owned or fact.arn in owned
    # The stack's resource list is unreadable: CloudFormation's own tag is the next best evidence.
    return isinstance(fact.tags, Mapping) and fact.tags.get(STACK_NAME_TAG) == stack.name


def _not_ours(config: PreflightConfig, resource: NamedResource, tags: Mapping[str, str]) -> str | None:
    """Why tags say a resource is not this stage's (or belongs to a stack other than the one that
    creates it), or None when it is."""
    project, environment = tags.get(PROJECT_TAG[0]), tags.get("Environment")
    if project != PROJECT_TAG[1] or environment != config.stage:
        expected = f"{PROJECT_TAG[0]}={PROJECT_TAG[1]}, Environment={config.stage}"
        shown = ", ".join(f"{k}={tags[k]}" for k in (PROJECT_TAG[0], "Environment") if k in tags)
        return f"tagged {shown}; expected {expected}" if shown else f"not tagged {expected}"
    stack = tags.get(STACK_NAME_TAG)
    if stack is not None and stack != resource.stack:
        return f"created by stack {stack}, not {resource.stack}; CloudFormation imports nothing another stack owns"
    return None


def _describe(resource: NamedResource) -> str:
    if resource.kind == "table":
        return f"aws dynamodb describe-table --table-name {resource.name}"
    return f"aws secretsmanager describe-secret --secret-id {resource.name}"


def _remove_command(resource: NamedResource) -> str:
    if resource.kind == "table":
        return f"aws dynamodb delete-table --table-name {resource.name}"
    return f"aws secretsmanager delete-secret --secret-id {resource.name} --force-delete-without-recovery"


def services_monitor_finding(config: PreflightConfig, monitors: tuple[AnomalyMonitor, ...] | Unanswered) -> Finding:
    item = "services monitor"
    if not config.anomaly_service_monitor:
        return Finding(item, OK, "not used (anomalyServiceMonitor=false)")
    if isinstance(monitors, Unanswered):
        return could_not_check(item, monitors, "the account's anomaly monitors", "aws ce get-anomaly-monitors")
    services = sorted(
        (m for m in monitors if m.monitor_type == "DIMENSIONAL" and m.dimension == "SERVICE"),
        key=lambda m: (m.created_on or "9999-12-31", m.arn),
    )
    own = f"finops-guard-{config.stage}-services"
    if not services:
        return Finding(item, OK, f"the account has no AWS services monitor; the deploy creates {own}")
    first = services[0]
    if first.name == own:
        return Finding(item, OK, f"{own} ({first.arn}) exists: FinOps Guard's own")
    return Finding(
        item,
        WILL_ADOPT,
        f"the account's AWS services monitor {first.name!r} ({first.arn}) is adopted: the stack subscribes to it "
        "and never deletes it (AWS allows one per account)",
        f"nothing to do; {config.deploy_command()} adopts it",
    )


def custom_monitors_finding(config: PreflightConfig, facts: AccountFacts) -> Finding:
    item = "custom monitors"
    keys = config.custom_monitor_keys
    if not keys:
        return Finding(item, OK, "none configured (anomalyLinkedAccounts, anomalyTag, anomalyCostCategory unset)")
    organization = facts.organization
    if isinstance(organization, Unanswered):
        by_hand = "aws organizations describe-organization --query Organization.MasterAccountId"
        return could_not_check(item, organization, "whether this is the management account", by_hand)
    payer = organization.management_account
    if payer is None or payer == facts.caller.account:
        where = "the organisation's management account" if payer else "an account outside any organisation"
        return Finding(item, OK, f"{', '.join(keys)} configured; {facts.caller.account} is {where}")
    unset = [f"-c {key}=null" for key in keys]
    keep_one = (
        [] if config.anomaly_service_monitor or config.anomaly_monitor_arns else ["-c anomalyServiceMonitor=true"]
    )
    return Finding(
        item,
        BLOCKING,
        f"{', '.join(keys)} create linked account, cost allocation tag or cost category monitors, which AWS "
        f"allows only in the management (payer) account {payer}; {facts.caller.account} is a member account, "
        "where only the AWS services monitor is available",
        f"deploy into {payer}, or drop them: {config.deploy_command(*unset, *keep_one)}",
    )


def api_gateway_finding(config: PreflightConfig, api: ApiGatewayRole | Unanswered) -> Finding:
    item = "api gateway logging role"
    if isinstance(api, Unanswered):
        return could_not_check(item, api, "API Gateway's CloudWatch Logs role", "aws apigateway get-account")
    if api.role_arn is None:
        return Finding(item, OK, "no CloudWatch Logs role is set; the deploy sets FinOps Guard's own")
    role_name = api.role_arn.rsplit("/", 1)[-1]
    exists = api.role_exists
    if isinstance(exists, Unanswered):
        return could_not_check(
            item, exists, f"whether role {role_name} exists", f"aws iam get-role --role-name {role_name}"
        )
    if not exists:
        return Finding(
            item,
            OK,
            f"set to {api.role_arn}, which no longer exists; the deploy replaces the dangling "
            "setting with FinOps Guard's role",
        )
    if role_name.startswith(f"{config.stack_name('Billing')}-"):
        return Finding(item, OK, f"set to this stage's own role {api.role_arn}")
    return Finding(
        item,
        WILL_ADOPT,
        f"set to {api.role_arn}, which exists: the deploy keeps it (one setting per account and region; "
        "other APIs log through it)",
        f"nothing to do; {config.deploy_command()} leaves it as it is",
    )


def cost_allocation_tag_findings(config: PreflightConfig, facts: AccountFacts, today: date) -> list[Finding]:
    keys = config.attribution_tag_keys
    if not keys:
        return [Finding("cost allocation tags", OK, "attributionDimensions holds cost categories only")]
    tags = facts.cost_allocation_tags
    if isinstance(tags, Unanswered):
        by_hand = f"aws ce list-cost-allocation-tags --tag-keys {' '.join(shlex.quote(k) for k in keys)}"
        return [could_not_check("cost allocation tags", tags, "cost allocation tag activation", by_hand)]
    organization = facts.organization
    payer = organization.management_account if isinstance(organization, Organization) else None
    where = f"in the management account {payer}: " if payer and payer != facts.caller.account else ""
    start = backfill_from(today).isoformat()
    findings = []
    for key in keys:
        item = f"cost allocation tag {key}"
        status = tags.get(key)
        activate = json.dumps([{"TagKey": key, "Status": "Active"}], separators=(",", ":"))
        commands = (
            f"{where}aws ce update-cost-allocation-tags-status --cost-allocation-tags-status {shlex.quote(activate)} "
            f"&& aws ce start-cost-allocation-tag-backfill --backfill-from {start}T00:00:00Z"
        )
        if status == "Active":
            findings.append(Finding(item, OK, f"{key} is active"))
        elif status is None:
            findings.append(
                Finding(
                    item,
                    WARN,
                    f"{key} has never appeared in billing data: attribution by tag:{key} shows everything as untagged",
                    f"tag resources with {key} (it shows up within 24 hours), then {commands}",
                )
            )
        else:
            findings.append(
                Finding(
                    item,
                    WARN,
                    f"{key} is {status.lower()}: attribution by tag:{key} shows everything as untagged",
                    f"{commands} (activation takes up to 24 hours; the backfill reaches back 12 months)",
                )
            )
    return findings


def ses_findings(config: PreflightConfig, facts: AccountFacts) -> list[Finding]:
    sender = config.dunning_sender_email
    if sender is None:
        return []
    item = "ses"
    domain = sender.rsplit("@", 1)[-1]
    findings: list[Finding] = []
    account = facts.ses_account
    if isinstance(account, Unanswered):
        findings.append(could_not_check(item, account, "the SES account", "aws sesv2 get-account"))
    elif account is not None and not account.production_access:
        findings.append(
            Finding(
                item,
                WARN,
                f"SES in {facts.region} is in the sandbox: dunning e-mails reach verified addresses only",
                "request production access: aws sesv2 put-account-details --production-access-enabled "
                "--mail-type TRANSACTIONAL --website-url https://YOUR-SITE "
                "--use-case-description 'payment reminders to our customers'",
            )
        )
    elif account is not None and not account.sending_enabled:
        findings.append(
            Finding(
                item,
                WARN,
                f"SES sending is paused in {facts.region}",
                "aws sesv2 put-account-sending-attributes --sending-enabled",
            )
        )
    identities = facts.ses_identities
    if isinstance(identities, Unanswered):
        by_hand = f"aws sesv2 get-email-identity --email-identity {sender}"
        findings.append(could_not_check(item, identities, f"the SES identity of {sender}", by_hand))
    elif any(i.verified for i in identities):
        verified = next(i.identity for i in identities if i.verified)
        findings.append(Finding(item, OK, f"{sender} may send: identity {verified} is verified"))
    elif identities:
        pending = ", ".join(i.identity for i in identities)
        findings.append(
            Finding(
                item,
                BLOCKING,
                f"identity {pending} is not verified: dunning e-mails from {sender} would be refused",
                f"finish the verification (the link SES e-mailed, or the domain's DKIM records), then check: "
                f"aws sesv2 get-email-identity --email-identity {identities[0].identity}",
            )
        )
    else:
        findings.append(
            Finding(
                item,
                BLOCKING,
                f"neither {sender} nor {domain} is an SES identity in {facts.region}: dunning e-mails would be refused",
                f"aws sesv2 create-email-identity --email-identity {sender} (then click the link SES sends), "
                f"or verify the domain: aws sesv2 create-email-identity --email-identity {domain}",
            )
        )
    return findings


# --- paging check -----------------------------------------------------------------------------------------

PAGING_REASON = "FinOps Guard paging check"
POLL_INTERVAL_S = 5.0


def default_paging_alarm(stage: str) -> str:
    """The core's failure queue alarm: a 5-minute alarm that treats missing data as OK, so with the queue
    empty it returns to OK at its next evaluation."""
    return f"FinOpsGuard-{stage}-Failures"


def core_deploy_command(stage: str) -> str:
    """Deploy (or restore) the core stack, which holds the ops topic and the paging alarms."""
    return f"npx cdk deploy FinOpsGuard-{stage}-Core -c stage={stage}"


def ops_topic_name(stage: str) -> str:
    return f"finops-guard-{stage}-ops-alarms"


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    actions_enabled: bool
    alarm_actions: tuple[str, ...]
    period_s: int | None = None


@dataclass(frozen=True)
class HistoryItem:
    timestamp: datetime
    summary: str
    data: str = ""  # HistoryData: JSON text


@dataclass(frozen=True)
class ActionResult:
    succeeded: bool
    target: str  # the action's ARN (the topic)
    error: str = ""  # why it failed


@dataclass(frozen=True)
class Subscription:
    protocol: str
    endpoint: str
    pending: bool


_ACTION = re.compile(r"(?P<verb>Successfully executed|Failed to execute) action (?P<target>\S+?)\.?(\s|$)")


def paging_precheck(stage: str, name: str, alarm: Alarm | None) -> Finding | None:
    """Why setting this alarm to ALARM would prove nothing, or None when it is fit for the check."""
    item = "alarm"
    if alarm is None:
        return Finding(
            item,
            BLOCKING,
            f"no alarm {name}",
            f"deploy the core stack first ({core_deploy_command(stage)}), or name one: --alarm NAME",
        )
    if alarm.state == "ALARM":
        return Finding(
            item,
            BLOCKING,
            f"{name} is in ALARM already (it paged when it went there); setting it again would change nothing",
            "pick an alarm that is OK: --alarm NAME "
            f"(aws cloudwatch describe-alarms --alarm-name-prefix FinOpsGuard-{stage}- --state-value OK)",
        )
    if not alarm.actions_enabled:
        return Finding(
            item,
            BLOCKING,
            f"{name} has its actions disabled: it pages nobody",
            f"aws cloudwatch enable-alarm-actions --alarm-names {name}",
        )
    if paging_topic(stage, alarm) is None:
        return Finding(
            item, BLOCKING, f"{name} notifies no SNS topic", f"redeploy to restore it: {core_deploy_command(stage)}"
        )
    return None


def paging_topic(stage: str, alarm: Alarm) -> str | None:
    """The SNS topic the alarm pages: the stage's ops topic, else the first topic among its actions."""
    topics = [a for a in alarm.alarm_actions if a.startswith("arn:") and ":sns:" in a]
    ours = [a for a in topics if a.endswith(f":{ops_topic_name(stage)}")]
    chosen = ours or topics
    return chosen[0] if chosen else None


def action_results(items: Iterable[HistoryItem], since: datetime) -> list[ActionResult]:
    """The alarm actions CloudWatch ran at or after ``since`` (its own clock), oldest first."""
    results = []
    for item in sorted(items, key=lambda i: i.timestamp):
        match = _ACTION.match(item.summary)
        if item.timestamp < since or match is None:
            continue
        succeeded = match["verb"] == "Successfully executed"
        results.append(ActionResult(succeeded, match["target"], "" if succeeded else _action_error(item)))
    return results


def _action_error(item: HistoryItem) -> str:
    try:
        data = json.loads(item.data) if item.data else {}
    except json.JSONDecodeError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    text = error if isinstance(error, str) and error else item.summary.partition("Received error:")[2] or item.summary
    return " ".join(text.strip().strip('"').split())[:400]


def wait_for_action(
    read_history: Callable[[], Sequence[HistoryItem] | Unanswered],
    since: datetime,
    wait_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval_s: float = POLL_INTERVAL_S,
) -> list[ActionResult] | Unanswered:
    """Poll the alarm's action history until an action shows or ``wait_s`` (seconds) have passed;
    stops at the first read that gets no answer."""
    started = clock()
    while True:
        history = read_history()
        if isinstance(history, Unanswered):
            return history
        results = action_results(history, since)
        remaining = wait_s - (clock() - started)
        if results or remaining <= 0:
            return results
        sleep(min(interval_s, remaining))


def redact_endpoint(protocol: str, endpoint: str) -> str:
    """What may be printed of a subscription endpoint: integration URLs carry keys in their path or
    query (PagerDuty, Opsgenie), so only their scheme and host are shown."""
    if protocol in ("http", "https"):
        scheme, _, rest = endpoint.partition("://")
        host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
        return f"{scheme}://{host}/…" if host != rest else f"{scheme}://{host}"
    if protocol == "sms":
        return "*" * max(len(endpoint) - 4, 0) + endpoint[-4:]
    return endpoint


def paging_findings(
    stage: str,
    alarm: Alarm,
    results: Sequence[ActionResult] | Unanswered,
    waited_s: float,
    subscriptions: Sequence[Subscription] | Unanswered,
) -> list[Finding]:
    """Did the page leave CloudWatch, and is anyone subscribed to receive it."""
    findings = []
    history = f"aws cloudwatch describe-alarm-history --alarm-name {alarm.name} --history-item-type Action"
    if isinstance(results, Unanswered):
        who = "the caller may not call" if results.denied else "no answer from"
        detail = f"{alarm.name} is in ALARM, but the page is unproven: {who} {results.action} ({results.reason})"
        findings.append(
            Finding("alarm action", BLOCKING, detail, f"grant {results.action}, or look by hand: {history}")
        )
        results = []
    elif not results:
        findings.append(
            Finding(
                "alarm action",
                BLOCKING,
                f"{alarm.name} is in ALARM, but CloudWatch recorded no action within {waited_s:g} s",
                f"look again in a minute: {history}",
            )
        )
    for result in results:
        if result.succeeded:
            findings.append(Finding("alarm action", OK, f"CloudWatch published the alarm to {result.target}"))
        else:
            findings.append(
                Finding(
                    "alarm action",
                    BLOCKING,
                    f"CloudWatch could not publish to {result.target}: {result.error}",
                    _publish_fix(stage, alarm.name, result),
                )
            )
    topic = ops_topic_name(stage)
    if isinstance(subscriptions, Unanswered):
        by_hand = f"aws sns list-subscriptions-by-topic --topic-arn <{topic} ARN>"
        findings.append(could_not_check("subscriptions", subscriptions, f"who is subscribed to {topic}", by_hand))
        return findings
    confirmed = [s for s in subscriptions if not s.pending]
    for pending in (s for s in subscriptions if s.pending):
        shown = redact_endpoint(pending.protocol, pending.endpoint)
        fix = (
            "open the 'AWS Notification - Subscription Confirmation' e-mail and confirm"
            if pending.protocol == "email"
            else "the endpoint must confirm the subscription (SubscribeURL)"
        )
        findings.append(
            Finding(
                "subscriptions",
                WARN,
                f"{pending.protocol} {shown} has not confirmed: it gets no page",
                f"{fix}; to send the confirmation again: aws sns subscribe --topic-arn <{topic} ARN> "
                f"--protocol {pending.protocol} --notification-endpoint <the endpoint>",
            )
        )
    if not confirmed:
        findings.append(
            Finding(
                "subscriptions",
                BLOCKING,
                f"no confirmed subscription on {topic}: the page reaches nobody",
                f"set -c opsAlarmEmail=... or -c opsAlarmHttpsEndpoints=... and redeploy "
                f"({core_deploy_command(stage)} ...), then confirm the subscription",
            )
        )
    else:
        shown = ", ".join(f"{s.protocol} {redact_endpoint(s.protocol, s.endpoint)}" for s in confirmed)
        findings.append(Finding("subscriptions", OK, f"confirmed on {topic}: {shown}"))
    return findings


def _publish_fix(stage: str, alarm: str, result: ActionResult) -> str:
    error = result.error.lower()
    redeploy = core_deploy_command(stage)
    if "kms" in error:
        return (
            f"the topic's KMS key policy must let cloudwatch.amazonaws.com use the key (kms:Decrypt, "
            f"kms:GenerateDataKey*): restore it with {redeploy}"
        )
    if "not authorized" in error or "authorization" in error:
        return (
            f"the topic policy must allow cloudwatch.amazonaws.com to sns:Publish: restore it with {redeploy}; "
            f"inspect it: aws sns get-topic-attributes --topic-arn {result.target} --query Attributes.Policy"
        )
    if "not found" in error or "does not exist" in error:
        return f"the topic is gone: {redeploy}"
    return (
        f"see the alarm history: aws cloudwatch describe-alarm-history --alarm-name {alarm} "
        f"--history-item-type Action; then {redeploy}"
    )


def state_update_floor(updated_at: datetime | None, now: datetime) -> datetime:
    """Where action history counts from: the alarm's own state-change time, else a minute before ``now``."""
    return updated_at if updated_at is not None else now - timedelta(minutes=1)
