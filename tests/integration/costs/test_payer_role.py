"""A tooling account's weekly report reads the payer's costs through the payer role, on the embedded AWS.

moto answers AssumeRole with keys of the role's account and answers a request signed with them from
that account's backends: the payer's Cost Explorer answers hold the seeded costs, the tooling account's
hold none. Each Cost Explorer request's signing key is read from its Authorization header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from finops_guard.costs import runtime
from finops_guard.costs.adapters import payer_account
from finops_guard.costs.adapters.cost_explorer import CostExplorerSource
from finops_guard.costs.breakdown import Breakdown, main_request
from finops_guard.costs.cost_metric import DEFAULT_METRIC
from finops_guard.costs.mock_data import synthetic_pages

from tests.integration.conftest import FIRED_AT, Deployment

pytestmark = pytest.mark.integration

PAYER = "444455556666"
ROLE_NAME = "finops-guard-test-payer-read"
ROLE_ARN = f"arn:aws:iam::{PAYER}:role/{ROLE_NAME}"
EXTERNAL_ID = "9f2c4e1a7b3d5f6081a2c3e4d5f60718"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


class PayerAccount:
    """The payer's role in moto, and what the function did with it: each AssumeRole (request, answer)
    and the key each Cost Explorer request was signed with."""

    def __init__(self, deployed: Deployment) -> None:
        self.deployed = deployed
        self.assumed: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.ce_signers: list[tuple[str, str]] = []  # (operation, access key id)

    def create_role(self) -> None:
        """As the PayerAccess stack makes it, in moto's payer account (keys of an admin role there)."""
        aws = self.deployed.aws
        admin = aws.client("sts").assume_role(RoleArn=f"arn:aws:iam::{PAYER}:role/admin", RoleSessionName="setup")
        keys = admin["Credentials"]
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=aws.endpoint,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
                        "ArnLike": {
                            "aws:PrincipalArn": "arn:aws:iam::123456789012:role/finops-guard/test/payer-reader/*"
                        },
                    },
                }
            ],
        }
        created = iam.create_role(
            RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=3600
        )
        assert created["Role"]["Arn"] == ROLE_ARN

    def record_assume_role(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = payer_account.assume_role_refresher
        assumed = self.assumed

        class RecordingSts:
            def __init__(self, sts: Any) -> None:
                self.sts = sts

            def assume_role(self, **request: Any) -> dict[str, Any]:
                answer = self.sts.assume_role(**request)
                assumed.append((request, answer["Credentials"]))
                return dict(answer)

        monkeypatch.setattr(payer_account, "assume_role_refresher", lambda role, sts: original(role, RecordingSts(sts)))

    def watch(self, client: Any) -> None:
        def signed(request: Any, event_name: str, **_: Any) -> None:
            header = request.headers["Authorization"]
            text = header.decode() if isinstance(header, bytes) else header
            match = _CREDENTIAL.search(text)
            assert match is not None, text
            self.ce_signers.append((event_name.rsplit(".", 1)[-1], match.group(1)))

        client.meta.events.register("before-send.ce", signed)

    @property
    def assumed_keys(self) -> list[str]:
        return [answer["AccessKeyId"] for _, answer in self.assumed]


@pytest.fixture
def payer(deployed: Deployment, monkeypatch: pytest.MonkeyPatch):
    """The weekly report deployed in the tooling account with the payer role (as CDK sets it)."""
    account = PayerAccount(deployed)
    account.create_role()
    monkeypatch.setenv("FINOPSGUARD_PAYER_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("FINOPSGUARD_PAYER_EXTERNAL_ID", EXTERNAL_ID)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "finops-guard-test-weekly-report")
    account.record_assume_role(monkeypatch)
    payer_account.payer_session.cache_clear()
    runtime._ce_client.cache_clear()
    client = runtime._ce_client()
    client.meta.events.register(
        "before-parameter-build.ce.GetCostAndUsage", lambda params, **_: deployed.ce_requests.append(dict(params))
    )
    account.watch(client)
    yield account
    payer_account.payer_session.cache_clear()
    runtime._ce_client.cache_clear()


def seed_payer_costs(deployed: Deployment, **kwargs: Any) -> list[dict[str, Any]]:
    from finops_guard.core.periods import report_window

    window = report_window(FIRED_AT)
    pages = list(synthetic_pages(window.query_start, window.query_end, **kwargs))
    deployed.aws.seed_cost_and_usage(pages, account_id=PAYER)
    return pages


def total(pages: list[dict[str, Any]]) -> Decimal:
    """The month to date of the seeded pages (the request reaches back 28 days, before the month too)."""
    from finops_guard.core.periods import report_window

    first = report_window(FIRED_AT).month_to_date.first.isoformat()
    return sum(
        (
            Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
            for p in pages
            for r in p["ResultsByTime"]
            if r["TimePeriod"]["Start"] >= first
            for g in r["Groups"]
        ),
        Decimal(0),
    )


def test_the_weekly_report_reads_the_payers_costs_with_the_assumed_session_only(deployed, payer) -> None:
    pages = seed_payer_costs(deployed, groups_per_page=40)  # several pages: several requests

    result = deployed.invoke()

    # The seeded pages, then the month's credits, refunds and tax (no attribution dimensions here).
    assert len(pages) > 2 and result["cost_explorer_requests"] == len(pages) + 1 == len(payer.ce_signers)
    assert Decimal(result["month_to_date"]) == total(pages)  # the payer's costs: the tooling account has none
    assert [request for request, _ in payer.assumed] == [
        {
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "finops-guard-test-weekly-report",
            "ExternalId": EXTERNAL_ID,
            "DurationSeconds": 3600,
        }
    ]
    [assumed_key] = payer.assumed_keys
    assert {key for _, key in payer.ce_signers} == {assumed_key} and assumed_key.startswith("ASIA")
    assert result["delivered"] == ["weekly-report/2026-11-15/teams"]


def test_reading_the_payer_the_card_ranks_linked_accounts_without_asking_organizations(
    deployed, payer, monkeypatch
) -> None:
    from finops_guard.costs.adapters import account_view

    seed_payer_costs(deployed)
    monkeypatch.delenv("FINOPSGUARD_BREAKDOWN")  # no `breakdown` in context: decided at run time
    runtime.settings.cache_clear()
    runtime._reads_organisation.cache_clear()
    asked: list[object] = []
    monkeypatch.setattr(account_view, "organisation_check", lambda *args: asked.append(args))

    deployed.invoke()

    # The payer is the organisation's management account: its Cost Explorer sees every member.
    assert asked == []
    assert [g["Key"] for g in deployed.ce_requests[0]["GroupBy"]] == ["SERVICE", "LINKED_ACCOUNT"]
    runtime._reads_organisation.cache_clear()


def test_without_the_payer_role_the_report_reads_its_own_account(deployed, payer, monkeypatch) -> None:
    seed_payer_costs(deployed)
    monkeypatch.delenv("FINOPSGUARD_PAYER_ROLE_ARN")
    monkeypatch.delenv("FINOPSGUARD_PAYER_EXTERNAL_ID")
    runtime._ce_client.cache_clear()
    payer.watch(runtime._ce_client())

    result = deployed.invoke()

    assert payer.assumed == [] and len(payer.ce_signers) == 2  # usage, then credits, refunds and tax
    assert not payer.ce_signers[0][1].startswith("ASIA")  # moto's assumed-role keys do
    assert Decimal(result["month_to_date"]) == 0  # the payer's costs are not the tooling account's


def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """One clock for the function's expiry checks and for moto's STS, which dates the sessions it issues."""
    now = [datetime.now(UTC)]
    monkeypatch.setattr(payer_account, "utc_now", lambda: now[0])
    monkeypatch.setattr("moto.sts.models.utcnow", lambda: now[0].replace(tzinfo=None))

    def advance(by: timedelta) -> None:
        now[0] += by

    return advance


def test_an_expired_session_is_renewed_and_the_next_requests_use_the_new_one(deployed, payer, monkeypatch) -> None:
    advance = fake_clock(monkeypatch)
    pages = seed_payer_costs(deployed)
    start, end = FIRED_AT.date().replace(day=1), FIRED_AT.date()
    source = CostExplorerSource(runtime._ce_client())

    request = main_request(start, end, DEFAULT_METRIC, Breakdown.LINKED_ACCOUNT)

    def read() -> list[Any]:
        return [page["ResultsByTime"] for page in source.query(request)]

    expected = [page["ResultsByTime"] for page in pages]
    assert read() == expected
    advance(timedelta(minutes=30))
    assert read() == expected
    assert len(payer.assumed) == 1  # still valid: reused

    advance(timedelta(hours=2))  # the session ended an hour ago; the container stayed warm
    assert read() == expected  # still the payer's costs

    first, second = payer.assumed_keys
    assert first != second
    signers = [key for _, key in payer.ce_signers]
    assert signers == [first] * (2 * len(pages)) + [second] * len(pages)
    assert payer.assumed[1][1]["Expiration"] > payer.assumed[0][1]["Expiration"] + timedelta(hours=2)
