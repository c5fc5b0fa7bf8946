"""`--stage` reads the deployed function's settings (finops_guard/adapters/deployment.py), and a manual
`report weekly` never takes the scheduled run's message ids."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from finops_guard import cli
from finops_guard.costs import runtime

from tests.integration.conftest import FIRED_AT

pytestmark = pytest.mark.integration

SCHEDULED_ID = "weekly-report/2026-11-15/teams"  # the scheduled run's id of the week before FIRED_AT


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def deploy_function(aws, name: str, environment: dict[str, str]) -> None:
    iam = aws.client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                           "Statement": []}))["Role"]["Arn"]  # fmt: skip
    aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.13", Role=role, Handler="handler.lambda_handler",
        Code={"ZipFile": _zip()}, Environment={"Variables": environment},
    )  # fmt: skip


@pytest.fixture
def function_only(deployed, monkeypatch):
    """The stage's weekly report function deployed with the fixture's settings; the shell has none."""
    environment = {k: v for k, v in os.environ.items() if k.startswith("FINOPSGUARD_")}
    deploy_function(deployed.aws, "finops-guard-test-weekly-report", environment)
    for key in environment:
        monkeypatch.delenv(key)
    runtime.settings.cache_clear()
    yield environment
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()


def test_a_manual_weekly_run_uses_the_deployed_settings_and_its_own_message_id(deployed, function_only, capsys):
    deployed.seed_costs()

    code = cli.main(["report", "weekly", "--stage", "test", "--now", FIRED_AT.isoformat()])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    [delivered] = json.loads(out)["delivered"]
    assert delivered.startswith("weekly-report/2026-11-15/manual-") and delivered.endswith("/teams")
    card = json.dumps(deployed.chat.received[0].json(), ensure_ascii=False)
    assert "Europe/Madrid" in card  # the function's time zone, not the shell's UTC
    assert "$60,000.00" in card  # and its monthly budget
    assert deployed.outbox_item(SCHEDULED_ID) is None


def test_the_scheduled_card_still_posts_after_a_manual_run_of_the_same_week(deployed, function_only, monkeypatch):
    deployed.seed_costs()
    assert cli.main(["report", "weekly", "--stage", "test", "--now", FIRED_AT.isoformat()]) == 0
    for key, value in function_only.items():  # now as the function runs
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()

    result = deployed.invoke()

    assert result["delivered"] == [SCHEDULED_ID]
    assert len(deployed.chat.received) == 2


def test_a_shell_variable_overrides_the_deployed_value_and_says_so(deployed, function_only, monkeypatch, capsys):
    monkeypatch.setenv("FINOPSGUARD_TIMEZONE", "UTC")

    code = cli.main(["report", "pending", "--stage", "test"])

    _, err = capsys.readouterr()
    assert code == 0
    assert err.splitlines() == [
        "finops-guard: warning: FINOPSGUARD_TIMEZONE from the shell overrides the value "
        "finops-guard-test-weekly-report runs with; unset it to use that one"
    ]


def test_the_deployed_outbox_table_is_used_without_any_variable(deployed, monkeypatch, capsys):
    table = deployed.aws.create_outbox_table("custom-outbox-name")
    deploy_function(deployed.aws, "finops-guard-test-weekly-report", {"FINOPSGUARD_OUTBOX_TABLE": table})
    for key in [k for k in os.environ if k.startswith("FINOPSGUARD_")]:
        monkeypatch.delenv(key)
    deployed.aws.client("dynamodb").delete_table(TableName=deployed.table)  # the default name is not there

    code = cli.main(["report", "pending", "--stage", "test"])

    out, err = capsys.readouterr()
    assert (code, out, err) == (0, "no undelivered messages\n", "")
