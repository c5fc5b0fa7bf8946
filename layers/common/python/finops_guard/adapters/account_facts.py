"""The AWS side of `finops-guard preflight` (read-only calls) and `finops-guard paging-check` (one
SetAlarmState): each answer becomes a finops_guard.preflight fact, and so does each error.

An error is never raised to the command: AccessDenied becomes ``Unanswered(action, denied=True)``
naming the IAM action the caller lacks; any other error ``Unanswered(action, denied=False)``. Only the
first call of a command (sts:GetCallerIdentity, cloudwatch:DescribeAlarms) raises ``AwsUnreachable``:
no credentials, credentials AWS refuses, no region, or an endpoint that does not answer.

Clients come from one boto3 session: the region and credentials of the usual AWS configuration
(AWS_PROFILE, AWS_REGION, ...), AWS_ENDPOINT_URL honoured; Cost Explorer is always us-east-1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from finops_guard.core.adapters.aws import CLIENT_CONFIG
from finops_guard.preflight import (
    BOOTSTRAP_VERSION_PARAMETER,
    GONE_RESOURCE_STATUSES,
    AccountFacts,
    Alarm,
    AnomalyMonitor,
    ApiGatewayRole,
    AwsUnreachable,
    Caller,
    ExistingResource,
    HistoryItem,
    Organization,
    PreflightConfig,
    RoleDecision,
    SesAccount,
    SesIdentity,
    StackState,
    Subscription,
    Unanswered,
    cdk_role_arns,
    principal_arn,
)

T = TypeVar("T")
ClientMaker = Callable[[str, str], Any]  # (service, region) -> boto3 client

# Two attempts: an operator waiting at a terminal wants "unreachable" in seconds, not after four tries.
PREFLIGHT_CONFIG = CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 2}))
COST_EXPLORER_REGION = "us-east-1"
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "UnauthorizedException"}
)
REFUSED_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    }
)
_NO_CREDENTIALS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, TokenRetrievalError, SSOError)
_MAX_PAGES = 50  # far past any account's monitors, tags or stack resources; stop rather than loop


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def unanswered(action: str, error: Exception) -> Unanswered:
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", ""))
        return Unanswered(action, error_code(error) in DENIED_CODES, _one_line(f"{error_code(error)}: {message}"))
    return Unanswered(action, False, _one_line(f"{type(error).__name__}: {error}"))


def read_unless_missing(action: str, call: Callable[[], T]) -> T | None | Unanswered:
    """The call's answer; None when the resource does not exist; else what kept it from answering."""
    try:
        return call()
    except ClientError as error:
        return None if error_code(error) == "ResourceNotFoundException" else unanswered(action, error)
    except BotoCoreError as error:
        return unanswered(action, error)


def read_fact(action: str, call: Callable[[], T]) -> T | Unanswered:
    """The call's answer, or what kept it from answering."""
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        return unanswered(action, error)


def unreachable(error: Exception, endpoint: str) -> AwsUnreachable:
    """The one line an operator needs when the first call fails."""
    if isinstance(error, _NO_CREDENTIALS):
        return AwsUnreachable(
            f"no usable AWS credentials ({type(error).__name__}): set AWS_PROFILE or run aws configure / aws sso login"
        )
    if isinstance(error, ClientError) and error_code(error) in REFUSED_CREDENTIAL_CODES:
        code = error_code(error)
        return AwsUnreachable(f"AWS refused the credentials ({code}): refresh them (aws sso login, new keys)")
    if isinstance(error, BotoConnectionError):
        return AwsUnreachable(
            f"cannot reach {endpoint} ({type(error).__name__}): check the network or AWS_ENDPOINT_URL"
        )
    if isinstance(error, ClientError):
        return AwsUnreachable(_one_line(f"AWS answered {error_code(error)}: {error}"))
    return AwsUnreachable(_one_line(f"cannot ask AWS: {type(error).__name__}: {error}"))


class Clients:
    """boto3 clients of one session, one per service and region, created on first use. ``make`` and
    ``region`` replace the session's (tests: moto, or a Stubber's client)."""

    def __init__(self, make: ClientMaker | None = None, region: str | None = None) -> None:
        self._make = make
        self._region = region
        self._session: boto3.session.Session | None = None
        self._made: dict[tuple[str, str], Any] = {}

    def session(self) -> boto3.session.Session:
        if self._session is None:
            try:
                self._session = boto3.session.Session()
            except ProfileNotFound as error:
                raise AwsUnreachable(f"{error}: fix AWS_PROFILE or ~/.aws/config") from None
        return self._session

    @property
    def region(self) -> str:
        if self._region is None:
            # AWS_REGION first, as the CDK CLI reads it (botocore reads AWS_DEFAULT_REGION and the profile).
            try:
                region = os.environ.get("AWS_REGION") or self.session().region_name
            except ProfileNotFound as error:
                raise AwsUnreachable(f"{error}: fix AWS_PROFILE or ~/.aws/config") from None
            if not region:
                raise AwsUnreachable("no AWS region: set AWS_REGION, or a region in your AWS profile")
            self._region = region
        return self._region

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._made:
            try:
                if self._make is not None:
                    self._made[key] = self._make(*key)
                else:
                    self._made[key] = self.session().client(service, region_name=key[1], config=PREFLIGHT_CONFIG)
            except (NoRegionError, ProfileNotFound) as error:
                raise AwsUnreachable(f"{error}: set AWS_REGION / AWS_PROFILE") from None
        return self._made[key]


class AccountFactsReader:
    """Everything preflight looks at, read-only."""

    def __init__(self, clients: Clients | None = None) -> None:
        self.clients = clients or Clients()

    def gather(self, config: PreflightConfig) -> AccountFacts:
        caller = self.caller()
        region = self.clients.region
        ses_account, ses_identities = self.ses(config.dunning_sender_email)
        principal, deploy_roles = self.deploy_roles(caller, region)
        return AccountFacts(
            caller=caller,
            region=region,
            stacks={name: self.stack(name) for name in config.stack_names},
            monitors=self.monitors(),
            organization=self.organization(),
            api_gateway=self.api_gateway_role(),
            resources={
                r.name: self.table(r.name) if r.kind == "table" else self.secret(r.name)
                for r in config.named_resources()
            },
            cost_allocation_tags=self.cost_allocation_tags(config.attribution_tag_keys),
            ses_account=ses_account,
            ses_identities=ses_identities,
            bootstrap_version=self.bootstrap_version(),
            deploy_roles=deploy_roles,
            principal=principal,
        )

    def caller(self) -> Caller:
        """Who is asking; raises ``AwsUnreachable`` when AWS cannot be asked at all."""
        sts = self.clients.get("sts")
        try:
            answer = sts.get_caller_identity()
        except (ClientError, BotoCoreError) as error:
            raise unreachable(error, str(sts.meta.endpoint_url)) from None
        return Caller(account=str(answer["Account"]), arn=str(answer["Arn"]))

    def stack(self, name: str) -> StackState | None | Unanswered:
        cloudformation = self.clients.get("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if error_code(error) == "ValidationError" and "does not exist" in str(error):
                return None
            return unanswered("cloudformation:DescribeStacks", error)
        except BotoCoreError as error:
            return unanswered("cloudformation:DescribeStacks", error)
        if not stacks:
            return None
        owned = read_fact("cloudformation:ListStackResources", lambda: self._owned(cloudformation, name))
        stack = stacks[0]
        return StackState(name, str(stack["StackStatus"]), _one_line(str(stack.get("StackStatusReason", ""))), owned)

    @staticmethod
    def _owned(cloudformation: Any, name: str) -> frozenset[str]:
        owned: set[str] = set()
        token: str | None = None
        for _ in range(_MAX_PAGES):
            page = cloudformation.list_stack_resources(StackName=name, **({"NextToken": token} if token else {}))
            owned |= {
                str(r["PhysicalResourceId"])
                for r in page.get("StackResourceSummaries", [])
                if r.get("PhysicalResourceId") and r.get("ResourceStatus") not in GONE_RESOURCE_STATUSES
            }
            token = page.get("NextToken")
            if not token:
                break
        return frozenset(owned)

    def monitors(self) -> tuple[AnomalyMonitor, ...] | Unanswered:
        ce = self.clients.get("ce", COST_EXPLORER_REGION)

        def read() -> tuple[AnomalyMonitor, ...]:
            found: list[AnomalyMonitor] = []
            token: str | None = None
            for _ in range(_MAX_PAGES):
                page = ce.get_anomaly_monitors(**({"NextPageToken": token} if token else {}))
                found += [
                    AnomalyMonitor(
                        name=str(m.get("MonitorName", "")),
                        arn=str(m.get("MonitorArn", "")),
                        monitor_type=str(m.get("MonitorType", "")),
                        dimension=m.get("MonitorDimension"),
                        created_on=str(m["CreationDate"])[:10] if m.get("CreationDate") else None,
                    )
                    for m in page.get("AnomalyMonitors", [])
                ]
                token = page.get("NextPageToken")
                if not token:
                    break
            return tuple(found)

        return read_fact("ce:GetAnomalyMonitors", read)

    def organization(self) -> Organization | Unanswered:
        try:
            answer = self.clients.get("organizations").describe_organization()
        except ClientError as error:
            if error_code(error) == "AWSOrganizationsNotInUseException":
                return Organization(None)
            return unanswered("organizations:DescribeOrganization", error)
        except BotoCoreError as error:
            return unanswered("organizations:DescribeOrganization", error)
        return Organization(str(answer["Organization"].get("MasterAccountId") or "") or None)

    def api_gateway_role(self) -> ApiGatewayRole | Unanswered:
        # GetAccount is authorised as apigateway:GET on /account.
        account = read_fact("apigateway:GET", lambda: self.clients.get("apigateway").get_account())
        if isinstance(account, Unanswered):
            return account
        role_arn = account.get("cloudwatchRoleArn") or None
        if role_arn is None:
            return ApiGatewayRole(None)
        return ApiGatewayRole(str(role_arn), self._role_exists(str(role_arn).rsplit("/", 1)[-1]))

    def _role_exists(self, role_name: str) -> bool | Unanswered:
        try:
            self.clients.get("iam").get_role(RoleName=role_name)
        except ClientError as error:
            return False if error_code(error) == "NoSuchEntity" else unanswered("iam:GetRole", error)
        except BotoCoreError as error:
            return unanswered("iam:GetRole", error)
        return True

    def table(self, name: str) -> ExistingResource | None | Unanswered:
        dynamodb = self.clients.get("dynamodb")
        described = read_unless_missing("dynamodb:DescribeTable", lambda: dynamodb.describe_table(TableName=name))
        if described is None or isinstance(described, Unanswered):
            return described
        table = described["Table"]
        arn = str(table["TableArn"])

        def tags() -> dict[str, str]:
            found: dict[str, str] = {}
            token: str | None = None
            for _ in range(_MAX_PAGES):
                page = dynamodb.list_tags_of_resource(ResourceArn=arn, **({"NextToken": token} if token else {}))
                found |= {str(t["Key"]): str(t["Value"]) for t in page.get("Tags", [])}
                token = page.get("NextToken")
                if not token:
                    break
            return found

        tagged = read_fact("dynamodb:ListTagsOfResource", tags)
        return ExistingResource(name, arn, tagged, status=str(table.get("TableStatus", "")))

    def secret(self, name: str) -> ExistingResource | None | Unanswered:
        """Described only: no secret value is ever read."""
        secret = read_unless_missing(
            "secretsmanager:DescribeSecret", lambda: self.clients.get("secretsmanager").describe_secret(SecretId=name)
        )
        if secret is None or isinstance(secret, Unanswered):
            return secret
        deleted = secret.get("DeletedDate")
        return ExistingResource(
            name=name,
            arn=str(secret["ARN"]),
            tags={str(t["Key"]): str(t["Value"]) for t in secret.get("Tags", [])},
            deletion_date=deleted.date().isoformat() if isinstance(deleted, datetime) else None,
        )

    def cost_allocation_tags(self, keys: Sequence[str]) -> Mapping[str, str] | Unanswered:
        if not keys:
            return {}
        ce = self.clients.get("ce", COST_EXPLORER_REGION)

        def read() -> dict[str, str]:
            found: dict[str, str] = {}
            token: str | None = None
            for _ in range(_MAX_PAGES):
                page = ce.list_cost_allocation_tags(
                    TagKeys=list(keys), Type="UserDefined", **({"NextToken": token} if token else {})
                )
                found |= {str(t["TagKey"]): str(t["Status"]) for t in page.get("CostAllocationTags", [])}
                token = page.get("NextToken")
                if not token:
                    break
            return found

        return read_fact("ce:ListCostAllocationTags", read)

    def ses(self, sender: str | None) -> tuple[SesAccount | Unanswered | None, tuple[SesIdentity, ...] | Unanswered]:
        """The SES account and the sender's identities (the address, then its domain) that exist."""
        if sender is None:
            return None, ()
        sesv2 = self.clients.get("sesv2")
        answer = read_fact("ses:GetAccount", lambda: sesv2.get_account())
        account = (
            answer
            if isinstance(answer, Unanswered)
            else SesAccount(bool(answer.get("ProductionAccessEnabled")), bool(answer.get("SendingEnabled", True)))
        )
        identities: list[SesIdentity] = []
        for identity in (sender, sender.rsplit("@", 1)[-1]):
            try:
                found = sesv2.get_email_identity(EmailIdentity=identity)
            except ClientError as error:
                if error_code(error) == "NotFoundException":
                    continue
                return account, unanswered("ses:GetEmailIdentity", error)
            except BotoCoreError as error:
                return account, unanswered("ses:GetEmailIdentity", error)
            identities.append(SesIdentity(identity, bool(found.get("VerifiedForSendingStatus"))))
        return account, tuple(identities)

    def bootstrap_version(self) -> int | None | Unanswered:
        try:
            answer = self.clients.get("ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)
        except ClientError as error:
            return None if error_code(error) == "ParameterNotFound" else unanswered("ssm:GetParameter", error)
        except BotoCoreError as error:
            return unanswered("ssm:GetParameter", error)
        value = str(answer["Parameter"]["Value"]).strip()
        if not value.isdigit():
            return Unanswered("ssm:GetParameter", False, f"{BOOTSTRAP_VERSION_PARAMETER} holds {value[:40]!r}")
        return int(value)

    def deploy_roles(
        self, caller: Caller, region: str
    ) -> tuple[str | None, tuple[RoleDecision, ...] | Unanswered | None]:
        """The principal simulated and whether it may assume each CDK role (None: cannot be simulated)."""
        principal = principal_arn(caller.arn)
        if principal is None:
            return None, None
        iam = self.clients.get("iam")
        if ":assumed-role/" in caller.arn:
            # The session ARN drops the role's path; the simulator needs the role's real ARN.
            role_name = principal.rsplit("/", 1)[-1]
            role = read_fact("iam:GetRole", lambda: iam.get_role(RoleName=role_name))
            if not isinstance(role, Unanswered):
                principal = str(role["Role"]["Arn"])
        roles = list(cdk_role_arns(caller, region))
        simulated = principal

        def simulate() -> tuple[RoleDecision, ...]:
            decisions: list[RoleDecision] = []
            marker: str | None = None
            for _ in range(_MAX_PAGES):
                page = iam.simulate_principal_policy(
                    PolicySourceArn=simulated,
                    ActionNames=["sts:AssumeRole"],
                    ResourceArns=roles,
                    **({"Marker": marker} if marker else {}),
                )
                decisions += [
                    RoleDecision(str(r.get("EvalResourceName", "")), str(r["EvalDecision"]))
                    for r in page.get("EvaluationResults", [])
                ]
                marker = page.get("Marker") if page.get("IsTruncated") else None
                if not marker:
                    break
            return tuple(decisions)

        return principal, read_fact("iam:SimulatePrincipalPolicy", simulate)


class AlarmPager:
    """The paging check's calls: one alarm, its action history, the ops topic's subscriptions."""

    def __init__(self, clients: Clients | None = None) -> None:
        self.clients = clients or Clients()

    def alarm(self, name: str) -> Alarm | None | Unanswered:
        """The metric alarm ``name`` (None when there is none). The command's first call: raises
        ``AwsUnreachable`` when AWS cannot be asked at all."""
        cloudwatch = self.clients.get("cloudwatch")
        try:
            found = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) not in REFUSED_CREDENTIAL_CODES:
                return unanswered("cloudwatch:DescribeAlarms", error)
            raise unreachable(error, str(cloudwatch.meta.endpoint_url)) from None
        if not found:
            return None
        alarm = found[0]
        return Alarm(
            name=str(alarm["AlarmName"]),
            state=str(alarm.get("StateValue", "")),
            actions_enabled=bool(alarm.get("ActionsEnabled", True)),
            alarm_actions=tuple(str(a) for a in alarm.get("AlarmActions", [])),
            period_s=alarm.get("Period"),
        )

    def set_alarm(self, name: str, reason: str) -> None | Unanswered:
        """Put the alarm into ALARM; it returns to its real state at its next evaluation."""

        def put() -> None:
            self.clients.get("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)

        return read_fact("cloudwatch:SetAlarmState", put)

    def state_updated_at(self, name: str) -> datetime | None:
        """When CloudWatch (by its clock) last changed the alarm's state; None when it cannot say."""
        found = read_fact(
            "cloudwatch:DescribeAlarms",
            lambda: self.clients.get("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"],
        )
        if isinstance(found, Unanswered) or not found:
            return None
        updated = found[0].get("StateUpdatedTimestamp")
        return updated if isinstance(updated, datetime) else None

    def history(self, name: str, since: datetime) -> list[HistoryItem] | Unanswered:
        def read() -> list[HistoryItem]:
            page = self.clients.get("cloudwatch").describe_alarm_history(
                AlarmName=name, HistoryItemType="Action", StartDate=since, ScanBy="TimestampDescending", MaxRecords=50
            )
            return [
                HistoryItem(i["Timestamp"], str(i.get("HistorySummary", "")), str(i.get("HistoryData", "")))
                for i in page.get("AlarmHistoryItems", [])
            ]

        return read_fact("cloudwatch:DescribeAlarmHistory", read)

    def subscriptions(self, topic_arn: str) -> tuple[Subscription, ...] | Unanswered:
        sns = self.clients.get("sns")

        def read() -> tuple[Subscription, ...]:
            found: list[Subscription] = []
            token: str | None = None
            for _ in range(_MAX_PAGES):
                page = sns.list_subscriptions_by_topic(TopicArn=topic_arn, **({"NextToken": token} if token else {}))
                found += [
                    Subscription(
                        protocol=str(s.get("Protocol", "")),
                        endpoint=str(s.get("Endpoint", "")),
                        pending=s.get("SubscriptionArn") == "PendingConfirmation",
                    )
                    for s in page.get("Subscriptions", [])
                ]
                token = page.get("NextToken")
                if not token:
                    break
            return tuple(found)

        return read_fact("sns:ListSubscriptionsByTopic", read)
