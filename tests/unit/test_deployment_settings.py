"""Where a CLI command's settings come from (finops_guard/adapters/deployment.py): pure merge rules."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from finops_guard.adapters import deployment
from hypothesis import given
from hypothesis import strategies as st

DEPLOYED = {
    "FINOPSGUARD_STAGE": "prod",
    "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
    "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-prod-outbox",
    "POWERTOOLS_SERVICE_NAME": "weekly-report",  # not a setting of ours: never copied
}


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetFunctionConfiguration")


def test_the_deployed_settings_are_the_base_and_only_ours_are_kept():
    resolved = deployment.merge("prod", "weekly-report", DEPLOYED, {})
    assert resolved.environment == {
        "FINOPSGUARD_STAGE": "prod",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_OUTBOX_TABLE": "finops-guard-prod-outbox",
    }
    assert (resolved.source, resolved.warnings) == ("deployed finops-guard-prod-weekly-report", ())


def test_a_shell_value_that_differs_wins_and_is_warned_about():
    resolved = deployment.merge("prod", "weekly-report", DEPLOYED, {"FINOPSGUARD_TIMEZONE": "UTC"})
    assert resolved.environment["FINOPSGUARD_TIMEZONE"] == "UTC"
    assert resolved.warnings == (
        "FINOPSGUARD_TIMEZONE from the shell overrides the value finops-guard-prod-weekly-report runs with; "
        "unset it to use that one",
    )


def test_a_shell_value_equal_to_the_deployed_one_or_new_is_not_warned_about():
    shell = {"FINOPSGUARD_TIMEZONE": "Europe/Madrid", "FINOPSGUARD_TOP_N": "3", "FINOPSGUARD_STAGE": "dev"}
    resolved = deployment.merge("prod", "weekly-report", DEPLOYED, shell)
    assert resolved.warnings == ()
    assert resolved.environment["FINOPSGUARD_TOP_N"] == "3"
    assert resolved.environment["FINOPSGUARD_STAGE"] == "prod"  # the stage asked for, always


def test_a_stage_without_the_function_falls_back_to_the_shell_quietly():
    resolved = deployment.merge("ghost", "weekly-report", None, {"FINOPSGUARD_OUTBOX_TABLE": "mine"})
    assert resolved.environment == {"FINOPSGUARD_OUTBOX_TABLE": "mine", "FINOPSGUARD_STAGE": "ghost"}
    assert (resolved.source, resolved.warnings) == ("shell", ())
    assert deployment.merge("ghost", "weekly-report", None, {}).source == "defaults"


def test_a_caller_who_may_not_read_the_function_is_told_which_action_and_goes_on():
    def denied(stage: str, function: str) -> None:
        raise client_error("AccessDeniedException")

    resolved = deployment.resolve("prod", "chargeback", {}, reader=denied)
    assert resolved.warnings == (
        "cannot read the settings of finops-guard-prod-chargeback (needs lambda:GetFunctionConfiguration): "
        "using FINOPSGUARD_* variables and default names",
    )


def test_any_other_aws_error_is_the_commands_to_report():
    def throttled(stage: str, function: str) -> None:
        raise client_error("TooManyRequestsException")

    with pytest.raises(ClientError):
        deployment.resolve("prod", "chargeback", {}, reader=throttled)


class FakeLambda:
    def __init__(self, answer: dict | None = None, error: str | None = None) -> None:
        self.answer, self.error, self.asked = answer, error, []

    def get_function_configuration(self, FunctionName: str) -> dict:  # noqa: N803 - boto3's name
        self.asked.append(FunctionName)
        if self.error:
            raise client_error(self.error)
        return self.answer or {}


def test_the_function_read_is_the_stages_and_a_missing_one_is_none():
    client = FakeLambda({"Environment": {"Variables": {"FINOPSGUARD_TOP_N": "3"}}})
    assert deployment.deployed_environment("prod", "weekly-report", client) == {"FINOPSGUARD_TOP_N": "3"}
    assert client.asked == ["finops-guard-prod-weekly-report"]
    assert deployment.deployed_environment("prod", "x", FakeLambda(error="ResourceNotFoundException")) is None
    assert deployment.deployed_environment("prod", "x", FakeLambda({})) == {}  # a function without variables


@given(
    deployed=st.none() | st.dictionaries(st.text(max_size=30), st.text(max_size=30), max_size=8),
    shell=st.dictionaries(st.text(max_size=30), st.text(max_size=30), max_size=8),
)
def test_any_environments_merge_without_raising_and_keep_the_stage(deployed, shell):
    resolved = deployment.merge("prod", "weekly-report", deployed, shell)
    assert resolved.environment["FINOPSGUARD_STAGE"] == "prod"
    assert all(key.startswith("FINOPSGUARD_") for key in resolved.environment)
