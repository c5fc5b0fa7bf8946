"""The context keys of a tooling-account deployment reading the payer's costs: each bad value or
missing companion stops synth naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App
from conftest import cdk_json_context

from infra.config import ConfigError, FinOpsGuardConfig
from infra.stacks import create_stacks

pytestmark = pytest.mark.infra

PAYER = "444455556666"
TOOLING = "111122223333"
EXTERNAL_ID = "9f2c4e1a7b3d5f6081a2c3e4d5f60718"  # openssl rand -hex 16
MONITOR = f"arn:aws:ce::{PAYER}:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef"
OTHER_MONITOR = MONITOR.replace(PAYER, TOOLING)
TOOLING_SIDE = {"payerAccountId": PAYER, "payerRoleExternalId": EXTERNAL_ID}
PAYER_SIDE = {**TOOLING_SIDE, "payerAccess": "true", "toolingAccountId": TOOLING, "toolingRegion": "eu-west-1"}


def config(**context: Any) -> FinOpsGuardConfig:
    return FinOpsGuardConfig.from_context(context)


def test_by_default_the_functions_read_their_own_account_and_no_payer_stack_is_made() -> None:
    default = config()

    assert (default.payer_account_id, default.payer_role_external_id, default.payer_access) == (None, None, False)
    assert (default.tooling_account_id, default.tooling_region, default.payer_anomaly_monitor_arns) == (None, None, ())


def test_the_tooling_side_needs_the_payer_account_and_the_external_id() -> None:
    tooling = config(**TOOLING_SIDE)

    assert (tooling.payer_account_id, tooling.payer_role_external_id) == (PAYER, EXTERNAL_ID)
    assert tooling.payer_role_name == "finops-guard-dev-payer-read"
    assert tooling.payer_reader_path == "/finops-guard/dev/payer-reader/"
    assert tooling.payer_access is False


def test_the_payer_side_from_cli_strings() -> None:
    payer = config(**PAYER_SIDE, stage="prod", payerAnomalyMonitorArns=f"{MONITOR}, {MONITOR}")

    assert payer.payer_access is True
    assert (payer.tooling_account_id, payer.tooling_region) == (TOOLING, "eu-west-1")
    assert payer.payer_anomaly_monitor_arns == (MONITOR,)
    assert payer.payer_role_name == "finops-guard-prod-payer-read"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("payerAccountId", "44445555666", "is not a 12-digit AWS account id"),
        ("payerAccountId", "4444-5555-6666", "is not a 12-digit AWS account id"),
        ("payerAccountId", True, "is not a 12-digit AWS account id"),
        ("toolingAccountId", "tooling", "is not a 12-digit AWS account id"),
        ("toolingRegion", "Ireland", "is not an AWS region name"),
        ("toolingRegion", "eu-west", "is not an AWS region name"),
        ("payerAccess", "maybe", "must be true or false"),
        ("payerRoleExternalId", "finops", "must be 32 to 1224 characters that nobody could guess"),
        ("payerRoleExternalId", "a" * 1225, "must be 32 to 1224 characters"),
        ("payerRoleExternalId", EXTERNAL_ID + " with spaces", "may hold only letters, digits and _+=,.@:/-"),
        ("payerRoleExternalId", "ab" * 20, "could be guessed"),
        ("payerRoleExternalId", f"external-id-of-{PAYER}-for-costs", "could be guessed"),
        ("payerRoleExternalId", f"finops-guard-dev-{EXTERNAL_ID}", "could be guessed"),
        ("payerAnomalyMonitorArns", f"arn:aws:ce::{PAYER}:monitor/x", f"holds 'arn:aws:ce::{PAYER}:monitor/x'"),
        ("payerAnomalyMonitorArns", OTHER_MONITOR, f"holds '{OTHER_MONITOR}', which is no monitor"),
    ],
)
def test_an_invalid_payer_value_is_refused_naming_the_key_and_the_value(key: str, value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(**{**PAYER_SIDE, key: value})

    assert error.value.key == key
    assert f"Invalid context '{key}': {value!r} {problem}" in str(error.value)


@pytest.mark.parametrize("context", [{"payerAccountId": PAYER}, {**PAYER_SIDE, "payerRoleExternalId": "null"}])
def test_reading_the_payer_without_the_external_id_is_refused_saying_how_to_make_one(context: dict) -> None:
    with pytest.raises(ConfigError, match="'payerRoleExternalId'.*must be set with payerAccountId or payerAccess.*"
                       "openssl rand -hex 16"):  # fmt: skip
        config(**context)


@pytest.mark.parametrize("missing", ["payerAccountId", "toolingAccountId", "toolingRegion"])
def test_the_payer_stack_needs_the_payer_and_the_tooling_account_and_region(missing: str) -> None:
    with pytest.raises(ConfigError, match=f"Invalid context '{missing}': None must be set with payerAccess=true"):
        config(**{k: v for k, v in PAYER_SIDE.items() if k != missing})


def test_the_payer_account_cannot_be_its_own_tooling_account() -> None:
    with pytest.raises(ConfigError, match="'toolingAccountId'.*is the payer account itself"):
        config(**{**PAYER_SIDE, "toolingAccountId": PAYER})


def test_monitors_of_the_payer_need_the_payer_account() -> None:
    with pytest.raises(ConfigError, match=r"'payerAnomalyMonitorArns'.*no monitor of payerAccountId \(None\)"):
        config(payerAnomalyMonitorArns=MONITOR)


def test_an_openssl_generated_external_id_is_accepted() -> None:
    import secrets

    for _ in range(200):
        external_id = secrets.token_hex(16)
        assert config(**{**TOOLING_SIDE, "payerRoleExternalId": external_id}).payer_role_external_id == external_id


def test_an_invalid_payer_value_fails_synth_before_any_construct_is_created() -> None:
    app = App(context={**cdk_json_context(), **PAYER_SIDE, "toolingRegion": "mars-1"})

    with pytest.raises(ConfigError, match="'toolingRegion': 'mars-1'"):
        create_stacks(app)

    assert app.node.children == []
