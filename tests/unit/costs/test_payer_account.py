"""The payer role session: configured from the environment, assumed on first use, reused while valid,
assumed again before it expires and after it has expired (an injected clock, a fake STS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from finops_guard.costs.adapters import payer_account
from finops_guard.costs.adapters.payer_account import (
    SESSION_SECONDS,
    PayerRole,
    PayerRoleError,
    assumed_role_session,
    session_name,
)

ROLE_ARN = "arn:aws:iam::444455556666:role/finops-guard-prod-payer-read"
EXTERNAL_ID = "9f2c4e1a7b3d5f6081a2c3e4d5f60718"
LAMBDA_ENV = {
    "FINOPSGUARD_PAYER_ROLE_ARN": ROLE_ARN,
    "FINOPSGUARD_PAYER_EXTERNAL_ID": EXTERNAL_ID,
    "AWS_LAMBDA_FUNCTION_NAME": "finops-guard-prod-weekly-report",
}
STARTED = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeSts:
    """STS's AssumeRole: a new key pair per call, valid for the requested seconds from the clock's now."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.requests: list[dict[str, Any]] = []

    def assume_role(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        n = len(self.requests)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAPAYER{n:04d}",
                "SecretAccessKey": f"secret-{n}",
                "SessionToken": f"token-{n}",
                "Expiration": self.clock() + timedelta(seconds=request["DurationSeconds"]),
            }
        }


@pytest.fixture
def clock() -> Clock:
    return Clock(STARTED)


@pytest.fixture
def sts(clock: Clock) -> FakeSts:
    return FakeSts(clock)


def access_key(session: Any) -> str:
    return str(session.get_credentials().get_frozen_credentials().access_key)


def role() -> PayerRole:
    role = PayerRole.from_env(LAMBDA_ENV)
    assert role is not None
    return role


def test_no_payer_variables_mean_the_functions_own_credentials() -> None:
    assert PayerRole.from_env({"AWS_LAMBDA_FUNCTION_NAME": "finops-guard-prod-weekly-report"}) is None


def test_the_role_external_id_and_session_name_come_from_the_lambda_environment() -> None:
    assert role() == PayerRole(ROLE_ARN, EXTERNAL_ID, "finops-guard-prod-weekly-report")


def test_outside_lambda_the_session_name_is_built_from_the_stage_and_service() -> None:
    env = {"FINOPSGUARD_STAGE": "qa", "POWERTOOLS_SERVICE_NAME": "budget-guard"}

    assert session_name(env) == "finops-guard-qa-budget-guard"
    assert session_name({}) == "finops-guard-dev-cli"


def test_a_session_name_keeps_only_what_sts_accepts_and_at_most_64_characters() -> None:
    name = session_name({"AWS_LAMBDA_FUNCTION_NAME": "finops guard/" + "x" * 80})

    assert name.startswith("finops-guard-x") and len(name) == 64


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FINOPSGUARD_PAYER_ROLE_ARN": ROLE_ARN}, "FINOPSGUARD_PAYER_EXTERNAL_ID is not"),
        ({"FINOPSGUARD_PAYER_EXTERNAL_ID": EXTERNAL_ID}, "is not an IAM role ARN"),
        ({**LAMBDA_ENV, "FINOPSGUARD_PAYER_ROLE_ARN": "arn:aws:iam::4444:role/x"}, "is not an IAM role ARN"),
    ],
)
def test_half_a_payer_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(PayerRoleError, match=message):
        PayerRole.from_env(env)


def test_the_role_is_assumed_on_first_use_not_when_the_session_or_client_is_made(clock, sts) -> None:
    session = assumed_role_session(role(), sts=sts, clock=clock)
    session.client("ce", region_name="us-east-1")

    assert sts.requests == []
    assert access_key(session) == "ASIAPAYER0001"
    assert sts.requests == [
        {
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "finops-guard-prod-weekly-report",
            "ExternalId": EXTERNAL_ID,
            "DurationSeconds": SESSION_SECONDS,
        }
    ]


def test_the_session_is_reused_while_it_is_valid(clock, sts) -> None:
    session = assumed_role_session(role(), sts=sts, clock=clock)
    access_key(session)

    clock.advance(minutes=44)

    assert access_key(session) == "ASIAPAYER0001" and len(sts.requests) == 1


def test_the_session_is_renewed_fifteen_minutes_before_it_expires(clock, sts) -> None:
    session = assumed_role_session(role(), sts=sts, clock=clock)
    access_key(session)

    clock.advance(minutes=46)

    assert access_key(session) == "ASIAPAYER0002" and len(sts.requests) == 2
    assert access_key(session) == "ASIAPAYER0002" and len(sts.requests) == 2


def test_an_expired_session_is_renewed_before_the_next_request(clock, sts) -> None:
    session = assumed_role_session(role(), sts=sts, clock=clock)
    access_key(session)

    clock.advance(hours=3)  # a warm container idle for hours

    assert access_key(session) == "ASIAPAYER0002" and len(sts.requests) == 2


def test_a_refused_assume_role_fails_the_request_that_needed_it(clock) -> None:
    from botocore.exceptions import ClientError

    class Refusing:
        def assume_role(self, **request: Any) -> dict[str, Any]:
            error = {"Error": {"Code": "AccessDenied", "Message": f"not authorized to assume {request['RoleArn']}"}}
            raise ClientError(error, "AssumeRole")

    session = assumed_role_session(role(), sts=Refusing(), clock=clock)

    with pytest.raises(ClientError, match="finops-guard-prod-payer-read"):
        access_key(session)


def test_cost_clients_use_the_payer_session_only_when_a_role_is_configured(monkeypatch, clock, sts) -> None:
    made: list[PayerRole] = []

    def session_for(role: PayerRole) -> Any:
        made.append(role)
        return assumed_role_session(role, sts=sts, clock=clock)

    monkeypatch.setattr(payer_account, "payer_session", session_for)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its credentials are this test's only
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFUNCTIONOWN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "own")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    own = payer_account.cost_client("ce", {}, region_name="us-east-1")
    payer = payer_account.cost_client("ce", LAMBDA_ENV, region_name="us-east-1")

    assert made == [role()]
    assert own._request_signer._credentials.access_key == "AKIAFUNCTIONOWN"
    assert payer._request_signer._credentials.get_frozen_credentials().access_key == "ASIAPAYER0001"
