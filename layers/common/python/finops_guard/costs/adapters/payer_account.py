"""The credentials the cost functions read cost data with: their own, or the payer account's role.

AWS advises against running workloads in the management (payer) account, and Cost Explorer in a member
account sees only that account. Deployed in a tooling account with ``payerAccountId``, the cost
functions run with FINOPSGUARD_PAYER_ROLE_ARN (``finops-guard-<stage>-payer-read`` in the payer) and
FINOPSGUARD_PAYER_EXTERNAL_ID, and their Cost Explorer, Cost Optimization Hub and Savings Plans clients
sign with that role's credentials; every other client (DynamoDB, Secrets Manager, S3...) keeps the
function's own.

The role is assumed on the first cost request, not at import or cold start, and the session is kept
for the container's life: botocore's refreshable credentials assume the role again 15 minutes before
the hour-long session ends (10 minutes before at the latest, when a refresh is mandatory), so a warm
function assumes it about once every 45 minutes, and a session never expires mid-run. The session name,
``finops-guard-<stage>-<function>``, tells the payer's CloudTrail which function of which stage read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials

ROLE_ARN_VARIABLE = "FINOPSGUARD_PAYER_ROLE_ARN"
EXTERNAL_ID_VARIABLE = "FINOPSGUARD_PAYER_EXTERNAL_ID"
# The payer role's MaxSessionDuration (PayerAccess stack): an hour, renewed before it ends.
SESSION_SECONDS = 3600
SESSION_NAME_MAX = 64  # STS RoleSessionName: 2-64 of [\w+=,.@-]
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,64}")
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]")
# The STS client that assumes the role uses the function's own credentials; a slow STS is cut short
# and retried like the other AWS clients.
_STS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=3, read_timeout=5)

Clock = Callable[[], datetime]


class PayerRoleError(ValueError):
    """The function's payer role settings are unusable (a deployment error: the stack sets both)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PayerRole:
    """The payer account's read role and how this function assumes it."""

    role_arn: str
    external_id: str
    session_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PayerRole | None:
        """None when no payer role is configured (the function reads its own account's costs)."""
        role_arn = env.get(ROLE_ARN_VARIABLE, "").strip()
        external_id = env.get(EXTERNAL_ID_VARIABLE, "").strip()
        if not role_arn and not external_id:
            return None
        if not _ROLE_ARN.fullmatch(role_arn):
            raise PayerRoleError(f"{ROLE_ARN_VARIABLE}={role_arn!r} is not an IAM role ARN")
        if not external_id:
            raise PayerRoleError(f"{ROLE_ARN_VARIABLE} is set but {EXTERNAL_ID_VARIABLE} is not")
        return cls(role_arn, external_id, session_name(env))


def session_name(env: Mapping[str, str]) -> str:
    """``finops-guard-<stage>-<function>``: Lambda's function name (the stack names every function so),
    else built from the stage and the Powertools service name; at most 64 characters STS accepts."""
    name = env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
    if not name:
        stage = env.get("FINOPSGUARD_STAGE", "").strip() or "dev"
        name = f"finops-guard-{stage}-{env.get('POWERTOOLS_SERVICE_NAME', '').strip() or 'cli'}"
    return _NOT_IN_SESSION_NAME.sub("-", name)[:SESSION_NAME_MAX]


def assume_role_refresher(role: PayerRole, sts: Any) -> Callable[[], dict[str, str]]:
    """What botocore calls for fresh credentials: one sts:AssumeRole of ``role``, as the metadata
    botocore's refreshable credentials take."""

    def refresh() -> dict[str, str]:
        answer = sts.assume_role(
            RoleArn=role.role_arn,
            RoleSessionName=role.session_name,
            ExternalId=role.external_id,
            DurationSeconds=SESSION_SECONDS,
        )
        credentials = answer["Credentials"]
        expiration = credentials["Expiration"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat() if isinstance(expiration, datetime) else str(expiration),
        }

    return refresh


class _AssumedRoleProvider(CredentialProvider):
    """Puts the role's credentials first in the session's credential chain."""

    METHOD = "finops-guard-payer-role"
    CANONICAL_NAME = "finops-guard-payer-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def assumed_role_session(role: PayerRole, *, sts: Any | None = None, clock: Clock | None = None) -> boto3.Session:
    """A boto3 session whose clients sign with ``role``'s credentials: assumed on first use, assumed
    again before they expire (``clock``: the time the expiry is checked against, injectable)."""
    if sts is None:
        sts = boto3.client("sts", config=_STS_CONFIG)
    credentials = DeferredRefreshableCredentials(
        refresh_using=assume_role_refresher(role, sts),
        method=_AssumedRoleProvider.METHOD,
        time_fetcher=clock or (lambda: utc_now()),
    )
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", _AssumedRoleProvider(credentials))
    return boto3.Session(botocore_session=core)


@cache
def payer_session(role: PayerRole) -> boto3.Session:
    """One session per role and container: its credentials are reused while valid."""
    return assumed_role_session(role)


def cost_client(service: str, env: Mapping[str, str], **kwargs: Any) -> Any:
    """A client of a cost data service (``ce``, ``cost-optimization-hub``): signed with the payer role's
    credentials when ``env`` names one, else with the function's own, as before."""
    role = PayerRole.from_env(env)
    if role is None:
        return boto3.client(service, **kwargs)
    return payer_session(role).client(service, **kwargs)
