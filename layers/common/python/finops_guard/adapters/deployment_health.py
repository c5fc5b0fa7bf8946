"""The AWS side of `finops-guard doctor`: read-only calls whose answers become finops_guard.doctor facts,
and so does each error (AccessDenied: ``Unanswered(action, denied=True)``), as in account_facts, whose
``Clients`` (one boto3 session, AWS_REGION and AWS_ENDPOINT_URL honoured) and caller check this reuses.
Only the first call, sts:GetCallerIdentity, raises ``AwsUnreachable``.

A webhook secret's value is read (GetSecretValue) only to tell a URL from the placeholder the stack
created, as the functions tell it (finops_guard.core.adapters.secrets.validate_webhook_url); it leaves
this module as a ``WebhookSecret``: a state and, for a URL, its scheme and host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_guard.adapters.account_facts import (
    AccountFactsReader,
    AlarmPager,
    Clients,
    error_code,
    read_fact,
    read_unless_missing,
    unanswered,
)
from finops_guard.core.adapters.secrets import validate_webhook_url
from finops_guard.core.delivery import ChatConfigError, ChatNotConfigured
from finops_guard.doctor import (
    ATTRIBUTION_FUNCTION,
    ATTRIBUTION_VARIABLE,
    COST_EXPLORER_REGION,
    DELETED,
    MISSING,
    NOT_HTTPS,
    PLACEHOLDER,
    SET,
    DeployedStack,
    DoctorFacts,
    QueueDepth,
    WebhookSecret,
    attribution_tag_keys,
    deployed_products,
    failure_queue_name,
    function_name,
    ops_topic_arn,
    schedule_prefix,
    stack_names,
    webhook_secret_names,
)
from finops_guard.preflight import Subscription, Unanswered, default_paging_alarm, redact_endpoint

_MAX_PAGES = 20  # a stage has seven schedules; stop rather than loop
_QUEUE_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def webhook_secret(name: str, value: str) -> WebhookSecret:
    """What doctor may know of a webhook secret's value: set, the placeholder, or a URL that is not https.
    The value itself stays here."""
    try:
        url = validate_webhook_url(value.strip(), secret_name=name, channel="doctor")
    except ChatNotConfigured:
        return WebhookSecret(name, PLACEHOLDER)
    except ChatConfigError:
        return WebhookSecret(name, NOT_HTTPS, _shown(value.strip()))
    return WebhookSecret(name, SET, _shown(url))


def _shown(url: str) -> str:
    """The scheme and host only: a webhook URL's path and query are its credential."""
    scheme = url.partition("://")[0].lower()
    return redact_endpoint(scheme, url) if scheme in ("http", "https") else f"{scheme}://…"


class DeploymentHealthReader:
    """Everything doctor looks at, read-only."""

    def __init__(self, clients: Clients | None = None) -> None:
        self.clients = clients or Clients()

    def gather(self, stage: str) -> DoctorFacts:
        caller = AccountFactsReader(self.clients).caller()
        region = self.clients.region
        stacks = {name: self.stack(name) for name in stack_names(stage)}
        products = deployed_products(stage, stacks)
        facts = DoctorFacts(caller=caller, region=region, stacks=stacks)
        if not products:
            return facts
        secrets = {name: self.secret(name) for names in webhook_secret_names(stage, stacks).values() for name in names}
        costs: dict[str, Any] = {}
        if "Costs" in products:
            attribution = self.attribution(function_name(stage, ATTRIBUTION_FUNCTION))
            keys = attribution_tag_keys(attribution) if isinstance(attribution, str) else None
            costs = {"attribution": attribution, "cost_allocation_tags": self.cost_allocation_tags(keys or ())}
        core: dict[str, Any] = {}
        if "Core" in products:
            pager = AlarmPager(self.clients)
            core = {
                "alarm": pager.alarm(default_paging_alarm(stage)),
                "subscriptions": self.subscriptions(pager, ops_topic_arn(stage, caller, region)),
                "queue": self.queue_depth(failure_queue_name(stage)),
            }
        schedules = self.schedules(schedule_prefix(stage)) if {"Costs", "Billing"} & set(products) else {}
        return DoctorFacts(
            caller=caller, region=region, stacks=stacks, secrets=secrets, schedules=schedules, **costs, **core
        )

    def stack(self, name: str) -> DeployedStack | None | Unanswered:
        try:
            stacks = self.clients.get("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if error_code(error) == "ValidationError" and "does not exist" in str(error):
                return None
            return unanswered("cloudformation:DescribeStacks", error)
        except BotoCoreError as error:
            return unanswered("cloudformation:DescribeStacks", error)
        if not stacks:
            return None
        stack = stacks[0]
        return DeployedStack(
            name=name,
            status=str(stack["StackStatus"]),
            reason=" ".join(str(stack.get("StackStatusReason", "")).split())[:300],
            output_keys=frozenset(str(o["OutputKey"]) for o in stack.get("Outputs", []) if "OutputKey" in o),
        )

    def secret(self, name: str) -> WebhookSecret | Unanswered:
        try:
            answer = self.clients.get("secretsmanager").get_secret_value(SecretId=name)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return WebhookSecret(name, MISSING)
            if error_code(error) == "InvalidRequestException" and "deletion" in str(error).lower():
                return WebhookSecret(name, DELETED)
            return unanswered("secretsmanager:GetSecretValue", error)
        except BotoCoreError as error:
            return unanswered("secretsmanager:GetSecretValue", error)
        return webhook_secret(name, str(answer.get("SecretString") or ""))

    def attribution(self, function: str) -> str | None | Unanswered:
        """The function's FINOPSGUARD_ATTRIBUTION_DIMENSIONS ("" when unset); None when there is no function."""
        lambda_ = self.clients.get("lambda")
        answer = read_unless_missing(
            "lambda:GetFunctionConfiguration", lambda: lambda_.get_function_configuration(FunctionName=function)
        )
        if answer is None or isinstance(answer, Unanswered):
            return answer
        return str(answer.get("Environment", {}).get("Variables", {}).get(ATTRIBUTION_VARIABLE, ""))

    def cost_allocation_tags(self, keys: Sequence[str]) -> Mapping[str, str] | Unanswered:
        """Exactly one Cost Explorer request ($0.01), never a second page: with tag keys, their statuses
        (three keys at most fit one page); without, one tag, only to see Cost Explorer answer."""
        ce = self.clients.get("ce", COST_EXPLORER_REGION)
        request: dict[str, Any] = {"TagKeys": list(keys), "Type": "UserDefined"} if keys else {"MaxResults": 1}

        def read() -> dict[str, str]:
            page = ce.list_cost_allocation_tags(**request)
            found = {str(t["TagKey"]): str(t["Status"]) for t in page.get("CostAllocationTags", [])}
            return {key: found[key] for key in keys if key in found} if keys else {}

        return read_fact("ce:ListCostAllocationTags", read)

    def schedules(self, prefix: str) -> dict[str, str] | Unanswered:
        """Name -> State of every schedule whose name starts with ``prefix``, in any group."""
        scheduler = self.clients.get("scheduler")

        def read() -> dict[str, str]:
            found: dict[str, str] = {}
            token: str | None = None
            for _ in range(_MAX_PAGES):
                page = scheduler.list_schedules(NamePrefix=prefix, **({"NextToken": token} if token else {}))
                found |= {str(s["Name"]): str(s.get("State", "")) for s in page.get("Schedules", [])}
                token = page.get("NextToken")
                if not token:
                    break
            return found

        return read_fact("scheduler:ListSchedules", read)

    @staticmethod
    def subscriptions(pager: AlarmPager, topic_arn: str) -> tuple[Subscription, ...] | None | Unanswered:
        """The ops topic's subscriptions; None when the topic does not exist."""
        found = pager.subscriptions(topic_arn)
        if isinstance(found, Unanswered) and not found.denied and found.reason.startswith("NotFound"):
            return None
        return found

    def queue_depth(self, name: str) -> QueueDepth | None | Unanswered:
        sqs = self.clients.get("sqs")
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            return None if error_code(error) in _QUEUE_GONE else unanswered("sqs:GetQueueUrl", error)
        except BotoCoreError as error:
            return unanswered("sqs:GetQueueUrl", error)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        answer = read_fact(
            "sqs:GetQueueAttributes", lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        )
        if isinstance(answer, Unanswered):
            return answer
        attributes = answer.get("Attributes", {})
        return QueueDepth(int(attributes.get(names[0], 0)), int(attributes.get(names[1], 0)))
