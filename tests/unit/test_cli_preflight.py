"""`finops-guard preflight` / `paging-check`: exit codes, one-line errors, --json; AWS replaced by fakes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import finops_guard.adapters.account_facts  # noqa: F401 - at collection: urllib3 opens a socket on import (IPv6 probe)
import pytest
from finops_guard import cli, cli_preflight
from finops_guard.preflight import (
    MIN_BOOTSTRAP_VERSION,
    AccountFacts,
    Alarm,
    Caller,
    ExistingResource,
    HistoryItem,
    RoleDecision,
    Subscription,
    Unanswered,
    cdk_role_arns,
)

from tests.conftest import ROOT

ACCOUNT = "111111111111"
CALLER = Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane")
READY = AccountFacts(
    caller=CALLER,
    region="us-east-1",
    bootstrap_version=MIN_BOOTSTRAP_VERSION,
    principal=f"arn:aws:iam::{ACCOUNT}:role/Admin",
    deploy_roles=tuple(RoleDecision(arn, "allowed") for arn in cdk_role_arns(CALLER, "us-east-1")),
    cost_allocation_tags={"Team": "Active", "CostCenter": "Active"},
)
AWS_ENVIRONMENT = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
)  # fmt: skip


class FakeReader:
    def __init__(self, facts: AccountFacts) -> None:
        self.facts = facts
        self.configs: list = []

    def gather(self, config):
        self.configs.append(config)
        return self.facts


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A working directory holding the repository's cdk.json."""
    (tmp_path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def account(monkeypatch, checkout):
    """Preflight reads READY (or what the test sets) instead of AWS."""
    reader = FakeReader(READY)
    monkeypatch.setattr(cli_preflight, "facts_reader", lambda: reader)
    monkeypatch.setattr(cli_preflight, "now", lambda: datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    return reader


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """No credentials anywhere botocore looks, and no instance metadata: nothing may open a socket."""
    for name in AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --- preflight --------------------------------------------------------------------------------------------


def test_a_ready_account_exits_zero_and_prints_the_deploy_command(account, capsys):
    code, out, _ = run(capsys, "preflight", "--stage", "prod", "-c", "opsAlarmEmail=oncall@example.com")

    assert code == 0
    assert out.splitlines()[0].startswith(
        "FinOps Guard preflight for FinOpsGuard-prod-Core, FinOpsGuard-prod-Costs, FinOpsGuard-prod-Billing: "
        f"account {ACCOUNT}"
    )
    assert "[ok]         permissions:" in out
    assert out.rstrip().endswith(
        "nothing blocking; deploy: npx cdk deploy --all -c stage=prod -c opsAlarmEmail=oncall@example.com"
    )


def test_leftovers_to_adopt_put_import_existing_resources_into_the_deploy_command(account, capsys):
    ledger = "finops-guard-prod-billing-ledger"
    tags = {"Project": "FinOpsGuard", "Environment": "prod"}
    account.facts = replace(READY, resources={ledger: ExistingResource(ledger, f"arn:{ledger}", tags)})

    code, out, _ = run(capsys, "preflight", "--stage", "prod")

    assert code == 0
    assert "[will-adopt] named resources:" in out
    assert out.rstrip().endswith("--import-existing-resources")


def test_a_blocking_item_exits_one_with_its_fix(account, capsys):
    account.facts = replace(READY, bootstrap_version=None)

    code, out, _ = run(capsys, "preflight", "--stage", "prod")

    assert code == 1
    assert f"[blocking]   cdk bootstrap: aws://{ACCOUNT}/us-east-1 is not bootstrapped" in out
    assert f"             fix: npx cdk bootstrap aws://{ACCOUNT}/us-east-1" in out
    assert out.rstrip().endswith("fix the blocking items, then run preflight again")


def test_json_output_lists_every_finding_and_the_exit_code(account, capsys):
    account.facts = replace(READY, bootstrap_version=None, region="eu-west-1")

    code, out, _ = run(capsys, "preflight", "--stage", "prod", "--json")

    report = json.loads(out)
    assert code == 1
    assert {k: report[k] for k in ("stage", "stacks", "account", "region", "exit_code")} == {
        "stage": "prod",
        "stacks": ["FinOpsGuard-prod-Core", "FinOpsGuard-prod-Costs", "FinOpsGuard-prod-Billing"],
        "account": ACCOUNT,
        "region": "eu-west-1",
        "exit_code": 1,
    }
    assert report["counts"]["blocking"] == 1
    assert report["counts"]["warn"] == 1
    assert sum(report["counts"].values()) == len(report["findings"])
    assert {"item": "region", "status": "warn"}.items() <= report["findings"][2].items()


def test_c_values_and_the_context_file_reach_the_checks(account, capsys, checkout):
    (checkout / "other.json").write_text(json.dumps({"context": {"slackEnabled": True}}))

    run(capsys, "preflight", "--stage", "qa", "--context-file", "other.json", "-c", "dunningSenderEmail=b@example.com")

    config = account.configs[0]
    assert (config.stage, config.slack_enabled, config.dunning_sender_email) == ("qa", True, "b@example.com")


@pytest.mark.parametrize("stage", ["Prod", "-x", "x" * 17])
def test_a_bad_stage_is_one_line_and_exit_two(account, capsys, stage):
    code, out, err = run(capsys, "preflight", f"--stage={stage}")

    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"finops-guard: --stage {stage!r}")


def test_a_missing_cdk_json_is_one_line_and_exit_two(account, capsys, checkout):
    (checkout / "cdk.json").unlink()

    code, _, err = run(capsys, "preflight", "--stage", "prod")

    assert code == 2
    assert "no cdk.json in" in one_line(err)


def test_a_missing_context_file_is_one_line_and_exit_two(account, capsys):
    code, _, err = run(capsys, "preflight", "--stage", "prod", "--context-file", "nope.json")

    assert (code, one_line(err)) == (2, "finops-guard: --context-file nope.json: no such file")


def test_a_malformed_cdk_json_is_one_line_and_exit_two(account, capsys, checkout):
    (checkout / "cdk.json").write_text('{"context": {"stage": "dev",}}')

    code, _, err = run(capsys, "preflight", "--stage", "prod")

    assert code == 2
    assert "cdk.json is not valid JSON" in one_line(err)


def test_a_bad_context_value_is_one_line_and_exit_two(account, capsys):
    code, _, err = run(capsys, "preflight", "--stage", "prod", "-c", "slackEnabled=perhaps")

    assert (code, one_line(err)) == (2, "finops-guard: Invalid context 'slackEnabled': 'perhaps' must be true or false")


def test_no_credentials_is_one_line_and_exit_four(checkout, no_aws_config, monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    code, out, err = run(capsys, "preflight", "--stage", "prod")

    assert (code, out) == (4, "")
    assert one_line(err).startswith("finops-guard: no usable AWS credentials (NoCredentialsError)")


def test_no_region_is_one_line_and_exit_four(checkout, no_aws_config, capsys):
    code, _, err = run(capsys, "preflight", "--stage", "prod")

    assert code == 4
    assert one_line(err) == "finops-guard: no AWS region: set AWS_REGION, or a region in your AWS profile"


def test_an_unknown_profile_is_one_line_and_exit_four(checkout, no_aws_config, monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "nobody")

    code, _, err = run(capsys, "preflight", "--stage", "prod")

    assert code == 4
    assert one_line(err) == (
        "finops-guard: The config profile (nobody) could not be found: fix AWS_PROFILE or ~/.aws/config"
    )


def test_help_documents_the_exit_codes(capsys):
    assert cli.main(["preflight", "--help"]) == 0

    assert "4 AWS unreachable" in " ".join(capsys.readouterr().out.split())


# --- paging-check -----------------------------------------------------------------------------------------

TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:finops-guard-prod-ops-alarms"
ALARM = Alarm("FinOpsGuard-prod-Failures", "OK", True, (TOPIC,), 300)
SET_AT = datetime(2026, 12, 2, 9, 0, 5, tzinfo=UTC)


class FakePager:
    """CloudWatch answering the paging check: an action shows after ``delay`` reads."""

    def __init__(self, summary: str | None = None, delay: int = 1, subscriptions=None) -> None:
        self.alarm_found: Alarm | None | Unanswered = ALARM
        self.summary = summary if summary is not None else f"Successfully executed action {TOPIC}"
        self.delay = delay
        self.reads = 0
        self.set: list[tuple[str, str]] = []
        self.subscribed = (
            subscriptions if subscriptions is not None else (Subscription("email", "oncall@example.com", False),)
        )

    def alarm(self, name):
        return self.alarm_found

    def set_alarm(self, name, reason):
        self.set.append((name, reason))

    def state_updated_at(self, name):
        return SET_AT

    def history(self, name, since):
        self.reads += 1
        if self.reads <= self.delay:
            return []
        return [HistoryItem(SET_AT + timedelta(seconds=2), self.summary)]

    def subscriptions(self, topic):
        return self.subscribed


@pytest.fixture
def pager(monkeypatch):
    fake = FakePager()
    slept: list[float] = []
    monkeypatch.setattr(cli_preflight, "alarm_pager", lambda: fake)
    monkeypatch.setattr(cli_preflight, "sleep", slept.append)
    monkeypatch.setattr(cli_preflight, "clock", lambda: sum(slept))
    fake.slept = slept
    return fake


def test_a_page_that_left_cloudwatch_for_a_confirmed_subscriber_exits_zero(pager, capsys):
    code, out, _ = run(capsys, "paging-check", "--stage", "prod")

    assert code == 0
    assert pager.set == [("FinOpsGuard-prod-Failures", "FinOps Guard paging check")]
    assert f"[ok]         alarm action: CloudWatch published the alarm to {TOPIC}" in out
    assert "Now confirm the page arrived at email oncall@example.com." in out
    assert "returns to OK by itself within 300 s" in out
    assert pager.slept == [5.0]


def test_a_failed_publish_exits_one_with_the_reason(pager, capsys):
    pager.summary = (f"Failed to execute action {TOPIC}. Received error: \"CloudWatch Alarms is not authorized to "
                     f"perform: SNS:Publish on resource: {TOPIC}\"")  # fmt: skip

    code, out, _ = run(capsys, "paging-check", "--stage", "prod")

    assert code == 1
    assert "is not authorized to perform: SNS:Publish" in out
    assert "fix: the topic policy must allow cloudwatch.amazonaws.com to sns:Publish" in out
    assert "No page left CloudWatch" in out
    assert "confirm the page arrived" not in out


def test_no_action_within_the_wait_exits_one_after_a_bounded_wait(pager, capsys):
    pager.delay = 10**6

    code, out, _ = run(capsys, "paging-check", "--stage", "prod", "--wait", "20")

    assert code == 1
    assert sum(pager.slept) == 20
    assert "recorded no action within 20 s" in out


def test_a_page_nobody_confirmed_exits_one(pager, capsys):
    pager.subscribed = (Subscription("https", "https://events.pagerduty.com/integration/KEY123/enqueue", True),)

    code, out, _ = run(capsys, "paging-check", "--stage", "prod")

    assert code == 1
    assert "https://events.pagerduty.com/…" in out
    assert "KEY123" not in out


def test_a_missing_alarm_exits_one_without_setting_anything(pager, capsys):
    pager.alarm_found = None

    code, out, _ = run(capsys, "paging-check", "--stage", "prod", "--alarm", "nope")

    assert code == 1
    assert "no alarm nope" in out
    assert pager.set == []


def test_an_unreadable_alarm_exits_one_naming_the_action(pager, capsys):
    pager.alarm_found = Unanswered("cloudwatch:DescribeAlarms", True, "AccessDenied: no")

    code, out, _ = run(capsys, "paging-check", "--stage", "prod")

    assert code == 1
    assert "the caller may not call cloudwatch:DescribeAlarms" in out


@pytest.mark.parametrize("wait", ["0", "601", "soon"])
def test_a_bad_wait_is_one_line_and_exit_two(pager, capsys, wait):
    code, _, err = run(capsys, "paging-check", "--stage", "prod", "--wait", wait)

    assert code == 2
    assert one_line(err).startswith(f"finops-guard: --wait {wait!r}")


def test_paging_check_without_credentials_exits_four(no_aws_config, monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    code, _, err = run(capsys, "paging-check", "--stage", "prod")

    assert code == 4
    assert "no usable AWS credentials" in one_line(err)
