"""Is a deployed stage healthy? What `finops-guard doctor` decides. Pure: the facts that
finops_guard.adapters.deployment_health observed in the account go in, findings come out.

Findings are preflight's (``Finding``), with three of its statuses:
- ``ok``: nothing to do;
- ``warn``: the stage runs, but something needs a hand (a chat channel not set up yet, a schedule
  disabled, failed events parked, a tag not active); a read the caller may not make is a ``warn``
  too: "could not check ... (needs <action>)";
- ``blocking``: the stage is not doing its job (not deployed, nobody paged, a job that never runs,
  no chat channel at all).
Each finding that is not ``ok`` carries its fix as concrete commands. Secret values never reach this
module: the adapter turns each into a ``WebhookSecret`` (its state, and a URL's scheme and host only).

A check runs only for the products whose stack is deployed (``FinOpsGuard-<stage>-<product>``):
- Core: the ops topic ``finops-guard-<stage>-ops-alarms`` has a confirmed subscription; the failure
  alarm ``FinOpsGuard-<stage>-Failures`` pages it and its state; the failure queue
  ``finops-guard-<stage>-failures`` depth; the chat webhook secrets;
- Costs: the schedules; Cost Explorer answers and the attribution tags (the weekly report
  function's FINOPSGUARD_ATTRIBUTION_DIMENSIONS: what the deployed code uses) are active;
- Billing: the schedules; the finance chat webhook secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from finops_guard.core.delivery import put_webhook_command
from finops_guard.costs.teams import TeamConfigError, parse_dimensions
from finops_guard.preflight import (
    BLOCKING,
    OK,
    PRODUCTS,
    SECRET_NAMES,
    SLACK_SECRET_NAMES,
    WARN,
    AccountFacts,
    Alarm,
    Caller,
    Finding,
    PreflightConfig,
    StackState,
    Subscription,
    Unanswered,
    core_deploy_command,
    cost_allocation_tag_findings,
    default_paging_alarm,
    ops_topic_name,
    paging_findings,
    stack_finding,
)

DOCTOR_STATUSES = (OK, WARN, BLOCKING)

# Secret states (WebhookSecret.state)
SET, PLACEHOLDER, NOT_HTTPS, MISSING, DELETED = "set", "placeholder", "not-https", "missing", "scheduled-for-deletion"

# The chat webhook secrets, ``finops-guard/<stage>/<name>`` (infra/core/secrets.add_webhook_secrets): one
# audience per stack, Teams always, Slack with slackEnabled (the core then has a SlackSecretName output).
# Preflight's lists of the stacks' secrets, less the Stripe ones.
CHAT_SECRETS = {p: tuple(n for n in SECRET_NAMES[p] if n.endswith("-webhook-url")) for p in PRODUCTS}
SLACK_CHAT_SECRETS = SLACK_SECRET_NAMES
SLACK_OUTPUT = "SlackSecretName"  # the core stack's output, present with slackEnabled
AUDIENCES = {"Core": "reports", "Billing": "finance alerts"}

# The EventBridge Scheduler schedules, ``finops-guard-<stage>-<name>`` (grep schedule_name in infra/).
SCHEDULES = {
    "Core": (),
    "Costs": ("weekly-report", "budget-guard", "chargeback"),
    "Billing": ("dunning-sender", "reconciliation", "billing-export"),
}
# With savingsRecommendations only: the costs stack then has a SavingsRefreshFunctionName output.
OPTIONAL_SCHEDULES = {"savings-refresh": ("Costs", "SavingsRefreshFunctionName")}

# The function whose environment names the attribution dimensions the deployed stage uses.
ATTRIBUTION_FUNCTION = "weekly-report"
ATTRIBUTION_VARIABLE = "FINOPSGUARD_ATTRIBUTION_DIMENSIONS"
COST_EXPLORER_REGION = "us-east-1"

# A stack in one of these states has no resources to check (a failed create, one being created or deleted).
_NOTHING_DEPLOYED = frozenset(
    {
        "REVIEW_IN_PROGRESS",
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
    }
)
_HEALTHY_STACK = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)


# --- facts: what the adapter observed ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedStack:
    name: str
    status: str
    reason: str = ""
    output_keys: frozenset[str] = frozenset()  # the keys of its outputs (which optional parts it has)


@dataclass(frozen=True)
class WebhookSecret:
    """What doctor may know of a chat webhook secret: ``state`` (SET, PLACEHOLDER, NOT_HTTPS, MISSING,
    DELETED) and, for a URL, ``shown``: its scheme and host only (preflight.redact_endpoint)."""

    name: str
    state: str
    shown: str | None = None


@dataclass(frozen=True)
class QueueDepth:
    visible: int  # ApproximateNumberOfMessages: failed events waiting
    in_flight: int = 0  # ApproximateNumberOfMessagesNotVisible: being read (dlq list, redrive) right now


@dataclass(frozen=True)
class DoctorFacts:
    """Each fact is what AWS answered, ``Unanswered`` when it did not, and its default when not asked (its
    product is not deployed). ``None`` means the thing does not exist."""

    caller: Caller
    region: str
    stacks: Mapping[str, DeployedStack | None | Unanswered] = field(default_factory=dict)  # stack name -> state
    secrets: Mapping[str, WebhookSecret | Unanswered] = field(default_factory=dict)  # secret name -> state
    attribution: str | None | Unanswered = None  # the function's FINOPSGUARD_ATTRIBUTION_DIMENSIONS; None: no function
    cost_allocation_tags: Mapping[str, str] | Unanswered | None = None  # key -> Active/Inactive; None: not asked
    schedules: Mapping[str, str] | Unanswered = field(default_factory=dict)  # schedule name -> ENABLED/DISABLED
    alarm: Alarm | None | Unanswered = None
    subscriptions: tuple[Subscription, ...] | None | Unanswered = ()  # None: the ops topic does not exist
    queue: QueueDepth | None | Unanswered = None  # None: the failure queue does not exist


# --- names ------------------------------------------------------------------------------------------------


def stack_name(stage: str, product: str) -> str:
    return f"FinOpsGuard-{stage}-{product}"


def stack_names(stage: str) -> tuple[str, ...]:
    """The stage's stacks, the core first."""
    return tuple(stack_name(stage, product) for product in PRODUCTS)


def failure_queue_name(stage: str) -> str:
    return f"finops-guard-{stage}-failures"


def function_name(stage: str, name: str) -> str:
    return f"finops-guard-{stage}-{name}"


def schedule_prefix(stage: str) -> str:
    """ListSchedules' NamePrefix. Another stage's names may share it (``prod`` and ``prod-eu``): only the
    expected names count."""
    return f"finops-guard-{stage}-"


def ops_topic_arn(stage: str, caller: Caller, region: str) -> str:
    return f"arn:{caller.partition}:sns:{region}:{caller.account}:{ops_topic_name(stage)}"


def deployed_products(stage: str, stacks: Mapping[str, DeployedStack | None | Unanswered]) -> tuple[str, ...]:
    """The products whose stack exists with its resources (in PRODUCTS order)."""
    return tuple(
        product
        for product in PRODUCTS
        if isinstance(stack := stacks.get(stack_name(stage, product)), DeployedStack)
        and stack.status not in _NOTHING_DEPLOYED
    )


def _outputs(stage: str, product: str, stacks: Mapping[str, DeployedStack | None | Unanswered]) -> frozenset[str]:
    stack = stacks.get(stack_name(stage, product))
    return stack.output_keys if isinstance(stack, DeployedStack) else frozenset()


def webhook_secret_names(
    stage: str, stacks: Mapping[str, DeployedStack | None | Unanswered]
) -> dict[str, tuple[str, ...]]:
    """Product -> the names of its audience's chat webhook secrets, for each deployed product that has one."""
    slack = SLACK_OUTPUT in _outputs(stage, "Core", stacks)
    found = {}
    for product in deployed_products(stage, stacks):
        names = CHAT_SECRETS.get(product, ()) + (SLACK_CHAT_SECRETS.get(product, ()) if slack else ())
        if names:
            found[product] = tuple(f"finops-guard/{stage}/{name}" for name in names)
    return found


def expected_schedules(stage: str, stacks: Mapping[str, DeployedStack | None | Unanswered]) -> dict[str, str]:
    """Schedule name -> the stack that creates it, for the deployed products."""
    products = deployed_products(stage, stacks)
    expected = {f"{schedule_prefix(stage)}{n}": stack_name(stage, p) for p in products for n in SCHEDULES[p]}
    for name, (product, output) in OPTIONAL_SCHEDULES.items():
        if product in products and output in _outputs(stage, product, stacks):
            expected[f"{schedule_prefix(stage)}{name}"] = stack_name(stage, product)
    return expected


def attribution_tag_keys(text: str) -> tuple[str, ...] | None:
    """The tag keys of a FINOPSGUARD_ATTRIBUTION_DIMENSIONS value (``tag:Team,costCategory:Project`` ->
    ``("Team",)``), read as finops_guard.costs.settings reads it; None when it does not parse."""
    try:
        dimensions = parse_dimensions([d for d in text.split(",") if d.strip()])
    except TeamConfigError:
        return None
    return tuple(d.key for d in dimensions if d.kind == "tag")


# --- decisions --------------------------------------------------------------------------------------------


def assess(stage: str, facts: DoctorFacts, now: datetime) -> list[Finding]:
    """Every doctor finding, in the order an operator fixes them. ``now``: an aware instant (its UTC day
    dates a cost allocation tag backfill)."""
    stacks = stack_findings(stage, facts)
    products = deployed_products(stage, facts.stacks)
    if not products:
        return stacks
    findings = list(stacks)
    if "Core" in products:
        findings += subscription_findings(stage, facts)
        findings.append(alarm_finding(stage, facts))
        findings.append(queue_finding(stage, facts.queue))
    findings += secret_findings(stage, facts)
    findings += schedule_findings(stage, facts)
    if "Costs" in products:
        findings += cost_explorer_findings(stage, facts, now)
    return findings


def unchecked(item: str, gap: Unanswered, what: str, by_hand: str | None = None) -> Finding:
    """A read without an answer: a warning naming the IAM action, never a traceback."""
    hand = f", or check by hand: {by_hand}" if by_hand else ""
    if gap.denied:
        return Finding(
            item,
            WARN,
            f"could not check {what} (needs {gap.action})",
            f"grant {gap.action} to the caller and run doctor again{hand}",
        )
    return Finding(
        item,
        WARN,
        f"could not check {what}: {gap.action} failed ({gap.reason or 'no answer'})",
        f"run doctor again{hand}",
    )


def drift_fix(stack: str) -> str:
    """A resource deleted outside CloudFormation: a deploy does not recreate what the stack thinks it has."""
    return (
        f"it was deleted outside CloudFormation, which a deploy does not repair; confirm with: aws cloudformation "
        f"detect-stack-drift --stack-name {stack}, then aws cloudformation describe-stack-resource-drifts "
        f"--stack-name {stack} --stack-resource-drift-status-filters DELETED"
    )


def stack_findings(stage: str, facts: DoctorFacts) -> list[Finding]:
    item = "stack"
    names = stack_names(stage)
    states = [facts.stacks.get(name) for name in names]
    where = f"region {facts.region} of account {facts.caller.account}"
    deploy = f"finops-guard preflight --stage {stage}, then {PreflightConfig(stage).deploy_command()}"
    if not deployed_products(stage, facts.stacks):
        gaps = [s for s in states if isinstance(s, Unanswered)]
        if gaps:
            finding = unchecked(item, gaps[0], f"whether stage {stage} is deployed in {where}")
            return [Finding(item, BLOCKING, f"{finding.detail}: nothing else can be checked", finding.fix)]
        present = [s for s in states if isinstance(s, DeployedStack)]
        shown = "; ".join(f"{s.name} is {s.status}" for s in present)
        detail = f"stage {stage} is not deployed in {where}" + (f" ({shown})" if shown else "")
        fixes = [stack_finding(s.name, _as_state(s)).fix for s in present if s.status != "REVIEW_IN_PROGRESS"]
        return [Finding(item, BLOCKING, detail, "; ".join([*(f for f in fixes if f), deploy]))]
    findings = []
    for name, state in zip(names, states, strict=True):
        if isinstance(state, Unanswered):
            findings.append(
                unchecked(item, state, f"stack {name}", f"aws cloudformation describe-stacks --stack-name {name}")
            )
        elif state is None:
            product = name.rsplit("-", 1)[-1]
            findings.append(
                Finding(
                    item,
                    OK,
                    f"{name} is not deployed: its checks are skipped (deploy it with "
                    f"npx cdk deploy {name} -c stage={stage} when you want the {product.lower()} product)",
                )
            )
        elif state.status in _HEALTHY_STACK:
            note = " (its last update was rolled back)" if state.status == "UPDATE_ROLLBACK_COMPLETE" else ""
            findings.append(Finding(item, OK, f"{name} is {state.status}{note}"))
        elif state.status.endswith("_IN_PROGRESS"):
            findings.append(
                Finding(
                    item,
                    WARN,
                    f"{name} is {state.status}: an operation is running, so what doctor sees may change",
                    f"run doctor again when it ends: aws cloudformation describe-stacks --stack-name {name} "
                    "--query 'Stacks[0].StackStatus'",
                )
            )
        else:
            found = stack_finding(name, _as_state(state))
            if found.status == OK:  # a state preflight does not name either
                found = Finding(
                    item,
                    WARN,
                    f"{name} is {state.status}",
                    f"aws cloudformation describe-stack-events --stack-name {name}",
                )
            findings.append(Finding(item, BLOCKING if found.status == BLOCKING else WARN, found.detail, found.fix))
    return findings


def _as_state(stack: DeployedStack) -> StackState:
    return StackState(stack.name, stack.status, stack.reason)


def subscription_findings(stage: str, facts: DoctorFacts) -> list[Finding]:
    """Someone confirmed on the ops topic: the alarms page nobody otherwise (preflight's paging-check words)."""
    topic = ops_topic_name(stage)
    subscriptions = facts.subscriptions
    if isinstance(subscriptions, Unanswered):
        arn = ops_topic_arn(stage, facts.caller, facts.region)
        by_hand = f"aws sns list-subscriptions-by-topic --topic-arn {arn}"
        return [unchecked("subscriptions", subscriptions, f"who is subscribed to {topic}", by_hand)]
    if subscriptions is None:
        core = stack_name(stage, "Core")
        return [Finding("subscriptions", BLOCKING, f"no SNS topic {topic}: the alarms page nobody", drift_fix(core))]
    # paging_findings words the subscriptions after its alarm-action findings, which doctor does not make.
    placeholder = Alarm(default_paging_alarm(stage), "", True, ())
    return [f for f in paging_findings(stage, placeholder, [], 0, subscriptions) if f.item == "subscriptions"]


def alarm_finding(stage: str, facts: DoctorFacts) -> Finding:
    item = "failure alarm"
    name = default_paging_alarm(stage)
    alarm = facts.alarm
    if isinstance(alarm, Unanswered):
        return unchecked(item, alarm, f"alarm {name}", f"aws cloudwatch describe-alarms --alarm-names {name}")
    if alarm is None:
        return Finding(
            item, BLOCKING, f"no alarm {name}: a failed run pages nobody", drift_fix(stack_name(stage, "Core"))
        )
    topic = ops_topic_arn(stage, facts.caller, facts.region)
    if topic not in alarm.alarm_actions:
        return Finding(
            item,
            BLOCKING,
            f"{name} does not notify {ops_topic_name(stage)}: a failed run pages nobody",
            f"restore it: {core_deploy_command(stage)} (if the template did not change, see "
            f"aws cloudformation detect-stack-drift --stack-name {stack_name(stage, 'Core')})",
        )
    if not alarm.actions_enabled:
        return Finding(
            item,
            BLOCKING,
            f"{name} has its actions disabled: a failed run pages nobody",
            f"aws cloudwatch enable-alarm-actions --alarm-names {name}",
        )
    if alarm.state == "ALARM":
        return Finding(
            item,
            WARN,
            f"{name} is in ALARM: something failed every retry and is parked in {failure_queue_name(stage)} "
            "(a new failure does not page again until it clears)",
            f"finops-guard dlq list --stage {stage}, fix the cause, then finops-guard dlq redrive --stage {stage}",
        )
    state = f"{alarm.state}" if alarm.state else "no state yet"
    return Finding(item, OK, f"{name} pages {ops_topic_name(stage)}; {state}")


def queue_finding(stage: str, queue: QueueDepth | None | Unanswered) -> Finding:
    item = "failure queue"
    name = failure_queue_name(stage)
    if isinstance(queue, Unanswered):
        return unchecked(
            item,
            queue,
            f"the depth of {name}",
            f"aws sqs get-queue-attributes --queue-url $(aws sqs get-queue-url --queue-name {name} "
            "--query QueueUrl --output text) --attribute-names ApproximateNumberOfMessages",
        )
    if queue is None:
        return Finding(item, BLOCKING, f"no queue {name}: failed events are lost", drift_fix(stack_name(stage, "Core")))
    if queue.visible == 0 and queue.in_flight == 0:
        return Finding(item, OK, f"{name} is empty")
    reading = f" ({queue.in_flight} being read right now)" if queue.in_flight else ""
    return Finding(
        item,
        WARN,
        f"{queue.visible} failed event(s) wait in {name}{reading}",
        f"finops-guard dlq list --stage {stage}, fix the cause, then finops-guard dlq redrive --stage {stage}",
    )


def secret_findings(stage: str, facts: DoctorFacts) -> list[Finding]:
    """Each chat webhook secret of each deployed audience. A placeholder is a setup step (its messages wait in
    the outbox) while another channel of the audience works, and blocking when none does."""
    findings = []
    for product, names in webhook_secret_names(stage, facts.stacks).items():
        states = {name: facts.secrets.get(name) for name in names}
        audience_reached = any(isinstance(s, WebhookSecret) and s.state == SET for s in states.values())
        audience_unknown = any(not isinstance(s, WebhookSecret) for s in states.values())
        for name, state in states.items():
            findings.append(
                _secret_finding(stage, product, name, state, alone=not audience_reached and not audience_unknown)
            )
    return findings


def _channel(name: str) -> str:
    return "Slack" if name.endswith("slack-webhook-url") else "Microsoft Teams"


def _secret_finding(
    stage: str, product: str, name: str, secret: WebhookSecret | Unanswered | None, alone: bool
) -> Finding:
    item = "chat secret"
    channel = _channel(name)
    put = put_webhook_command(name)
    if secret is None:
        secret = Unanswered("secretsmanager:GetSecretValue", False, "not read")
    if isinstance(secret, Unanswered):
        return unchecked(item, secret, f"whether {name} holds a webhook URL")
    if secret.state == SET:
        return Finding(item, OK, f"{name} is set ({secret.shown or channel})")
    if secret.state == PLACEHOLDER:
        audience = AUDIENCES.get(product, "messages")
        if alone:
            detail = (
                f"{name} still holds the placeholder the stack created, and no other channel is set up: "
                f"the stage's {audience} reach nobody (they wait in the outbox)"
            )
        else:
            detail = f"{name} still holds the placeholder the stack created: {channel} gets no {audience} yet"
        return Finding(
            item,
            BLOCKING if alone else WARN,
            detail,
            f"{put}, then send what waits: finops-guard report resend --stage {stage}",
        )
    if secret.state == NOT_HTTPS:
        shown = f" ({secret.shown})" if secret.shown else ""
        return Finding(
            item,
            BLOCKING,
            f"{name} holds a URL that is not an https:// webhook URL{shown}: every {channel} post fails and pages",
            put,
        )
    if secret.state == DELETED:
        return Finding(
            item,
            BLOCKING,
            f"{name} is scheduled for deletion: every {channel} post fails and pages",
            f"aws secretsmanager restore-secret --secret-id {name}",
        )
    return Finding(
        item,
        BLOCKING,
        f"{name} does not exist: every {channel} post fails and pages",
        drift_fix(stack_name(stage, product)),
    )


def schedule_findings(stage: str, facts: DoctorFacts) -> list[Finding]:
    item = "schedules"
    expected = expected_schedules(stage, facts.stacks)
    if not expected:
        return []
    schedules = facts.schedules
    if isinstance(schedules, Unanswered):
        by_hand = f"aws scheduler list-schedules --name-prefix {schedule_prefix(stage)}"
        return [unchecked(item, schedules, "the stage's schedules", by_hand)]
    findings = []
    enabled = [name for name in expected if schedules.get(name) == "ENABLED"]
    for name, stack in expected.items():
        state = schedules.get(name)
        if state is None:
            findings.append(Finding(item, BLOCKING, f"no schedule {name}: its job never runs", drift_fix(stack)))
        elif state != "ENABLED":
            findings.append(Finding(item, WARN, f"{name} is {state}: its job does not run", enable_schedule_fix(name)))
    if enabled:
        findings.insert(0, Finding(item, OK, f"{len(enabled)} enabled: {', '.join(enabled)}"))
    return findings


def enable_schedule_fix(name: str) -> str:
    """UpdateSchedule replaces the whole schedule, so the fix sends it back as it is with State ENABLED:
    GetSchedule's answer less its read-only fields (needs jq)."""
    edit = 'del(.Arn, .CreationDate, .LastModificationDate) | .State = "ENABLED"'
    return (
        f'aws scheduler update-schedule --cli-input-json "$(aws scheduler get-schedule --name {name} '
        f"--output json | jq -c '{edit}')\""
    )


def cost_explorer_findings(stage: str, facts: DoctorFacts, now: datetime) -> list[Finding]:
    """Cost Explorer answers (the one ListCostAllocationTags request) and the tags of the attribution
    dimensions are active."""
    function = function_name(stage, ATTRIBUTION_FUNCTION)
    findings: list[Finding] = []
    keys: tuple[str, ...] | None = None
    text = facts.attribution
    if isinstance(text, Unanswered):
        by_hand = (
            f"aws lambda get-function-configuration --function-name {function} "
            f"--query Environment.Variables.{ATTRIBUTION_VARIABLE}"
        )
        findings.append(unchecked("attribution", text, "which attribution dimensions the stage uses", by_hand))
    elif text is None:
        findings.append(
            Finding(
                "attribution",
                BLOCKING,
                f"no function {function}: the weekly report never runs",
                drift_fix(stack_name(stage, "Costs")),
            )
        )
    else:
        keys = attribution_tag_keys(text)
        if keys is None:
            findings.append(
                Finding(
                    "attribution",
                    BLOCKING,
                    f"{function}'s {ATTRIBUTION_VARIABLE}={text[:200]!r} does not parse: the function fails at start",
                    f"redeploy with a valid -c attributionDimensions=tag:Team,tag:CostCenter: "
                    f"npx cdk deploy {stack_name(stage, 'Costs')} -c stage={stage} -c attributionDimensions=...",
                )
            )
    tags = facts.cost_allocation_tags
    if tags is None:
        return findings
    if isinstance(tags, Unanswered):
        what = "that Cost Explorer answers" + (" and the attribution tags are active" if keys else "")
        return [*findings, unchecked("cost explorer", tags, what, "aws ce list-cost-allocation-tags --max-results 1")]
    findings.append(Finding("cost explorer", OK, f"Cost Explorer answers ({COST_EXPLORER_REGION})"))
    if keys is None:
        return findings
    if not keys:
        return [*findings, Finding("cost allocation tags", OK, f"{ATTRIBUTION_VARIABLE} holds cost categories only")]
    # Preflight's wording and fix commands (activate, then backfill twelve months).
    config = PreflightConfig(stage=stage, attribution_tag_keys=keys)
    observed = AccountFacts(caller=facts.caller, region=facts.region, cost_allocation_tags=tags)
    return [*findings, *cost_allocation_tag_findings(config, observed, now.astimezone(UTC).date())]


def summary(findings: Sequence[Finding]) -> str:
    """``1 blocking, 2 warn, 9 ok``."""
    return ", ".join(f"{sum(f.status == s for f in findings)} {s}" for s in reversed(DOCTOR_STATUSES))
