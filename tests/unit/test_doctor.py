"""finops_guard.doctor: every status of every doctor check over fact values, `finops-guard doctor`'s exit
codes and --json with the facts replaced, and secret values never in what it prints."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import finops_guard.adapters.deployment_health  # noqa: F401 - at collection: urllib3 opens a socket on import
import pytest
from finops_guard import cli, cli_doctor
from finops_guard.adapters.deployment_health import webhook_secret
from finops_guard.doctor import (
    DELETED,
    DOCTOR_STATUSES,
    MISSING,
    NOT_HTTPS,
    OPTIONAL_SCHEDULES,
    PLACEHOLDER,
    SCHEDULES,
    SET,
    DeployedStack,
    DoctorFacts,
    QueueDepth,
    WebhookSecret,
    assess,
    attribution_tag_keys,
    deployed_products,
    expected_schedules,
    webhook_secret_names,
)
from finops_guard.preflight import BLOCKING, OK, WARN, Alarm, Caller, Finding, Subscription, Unanswered, exit_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

STAGE = "prod"
ACCOUNT = "111111111111"
REGION = "eu-west-1"
CALLER = Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/Ops/jane")
NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:finops-guard-prod-ops-alarms"
CORE, COSTS, BILLING = "FinOpsGuard-prod-Core", "FinOpsGuard-prod-Costs", "FinOpsGuard-prod-Billing"
TEAMS, SLACK = "finops-guard/prod/teams-webhook-url", "finops-guard/prod/slack-webhook-url"
FINANCE_TEAMS = "finops-guard/prod/finance-teams-webhook-url"
FINANCE_SLACK = "finops-guard/prod/finance-slack-webhook-url"
SCHEDULE_NAMES = [f"finops-guard-prod-{n}" for n in SCHEDULES["Costs"] + SCHEDULES["Billing"]]


def stack(name: str, status: str = "CREATE_COMPLETE", outputs: tuple[str, ...] = ()) -> DeployedStack:
    return DeployedStack(name, status, output_keys=frozenset(outputs))


HEALTHY = DoctorFacts(
    caller=CALLER,
    region=REGION,
    stacks={CORE: stack(CORE), COSTS: stack(COSTS), BILLING: stack(BILLING)},
    secrets={
        TEAMS: WebhookSecret(TEAMS, SET, "https://acme.webhook.office.com/…"),
        FINANCE_TEAMS: WebhookSecret(FINANCE_TEAMS, SET, "https://acme.webhook.office.com/…"),
    },
    attribution="tag:Team,tag:CostCenter",
    cost_allocation_tags={"Team": "Active", "CostCenter": "Active"},
    schedules=dict.fromkeys(SCHEDULE_NAMES, "ENABLED"),
    alarm=Alarm("FinOpsGuard-prod-Failures", "OK", True, (TOPIC,)),
    subscriptions=(Subscription("email", "ops@example.com", pending=False),),
    queue=QueueDepth(0),
)


def findings(facts: DoctorFacts = HEALTHY, **changes) -> list[Finding]:
    return assess(STAGE, replace(facts, **changes), NOW)


def about(found: list[Finding], item: str) -> list[Finding]:
    return [f for f in found if f.item == item]


def only(found: list[Finding], item: str) -> Finding:
    [finding] = about(found, item)
    return finding


def not_ok(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.status != OK]


# --- the whole stage -----------------------------------------------------------------------------------


def test_a_healthy_stage_is_all_ok_and_exits_0():
    found = findings()

    assert not_ok(found) == []
    assert exit_code(found) == 0
    assert [f.item for f in found] == [
        "stack", "stack", "stack", "subscriptions", "failure alarm", "failure queue", "chat secret", "chat secret",
        "schedules", "cost explorer", "cost allocation tag Team", "cost allocation tag CostCenter",
    ]  # fmt: skip


def test_a_stage_with_no_stack_is_one_blocking_finding_naming_where_and_the_deploy_command():
    found = findings(DoctorFacts(CALLER, REGION, stacks=dict.fromkeys((CORE, COSTS, BILLING))))

    assert found == [
        Finding(
            "stack",
            BLOCKING,
            f"stage prod is not deployed in region {REGION} of account {ACCOUNT}",
            "finops-guard preflight --stage prod, then npx cdk deploy --all -c stage=prod",
        )
    ]
    assert exit_code(found) == 1


def test_a_failed_first_create_is_not_deployed_and_says_to_delete_it_first():
    stacks = {CORE: stack(CORE, "ROLLBACK_COMPLETE"), COSTS: None, BILLING: None}

    [finding] = findings(DoctorFacts(CALLER, REGION, stacks=stacks))

    assert finding.status == BLOCKING
    assert "(FinOpsGuard-prod-Core is ROLLBACK_COMPLETE)" in finding.detail
    assert "aws cloudformation delete-stack --stack-name FinOpsGuard-prod-Core" in finding.fix
    assert finding.fix.endswith("npx cdk deploy --all -c stage=prod")


def test_stacks_that_cannot_be_described_block_since_nothing_else_can_be_checked():
    gap = Unanswered("cloudformation:DescribeStacks", denied=True, reason="AccessDenied: no")

    [finding] = findings(DoctorFacts(CALLER, REGION, stacks=dict.fromkeys((CORE, COSTS, BILLING), gap)))

    assert finding.status == BLOCKING
    assert finding.detail == (
        f"could not check whether stage prod is deployed in region {REGION} of account {ACCOUNT} "
        "(needs cloudformation:DescribeStacks): nothing else can be checked"
    )
    assert finding.fix.startswith("grant cloudformation:DescribeStacks to the caller and run doctor again")


def test_one_stack_that_cannot_be_described_is_a_warning_and_its_product_is_skipped():
    gap = Unanswered("cloudformation:DescribeStacks", denied=True)

    found = findings(stacks={**HEALTHY.stacks, BILLING: gap})

    assert [(f.status, f.detail) for f in not_ok(found)] == [
        (WARN, "could not check stack FinOpsGuard-prod-Billing (needs cloudformation:DescribeStacks)")
    ]
    assert FINANCE_TEAMS not in " ".join(f.detail for f in found)


def test_only_the_core_deployed_checks_paging_and_chat_and_skips_the_products():
    found = findings(stacks={CORE: stack(CORE), COSTS: None, BILLING: None})

    assert not_ok(found) == []
    assert {f.item for f in found} == {"stack", "subscriptions", "failure alarm", "failure queue", "chat secret"}
    assert "FinOpsGuard-prod-Costs is not deployed: its checks are skipped" in only(found[1:2], "stack").detail


@pytest.mark.parametrize(
    ("status", "expected", "words"),
    [
        ("UPDATE_COMPLETE", OK, "is UPDATE_COMPLETE"),
        ("UPDATE_ROLLBACK_COMPLETE", OK, "(its last update was rolled back)"),
        ("UPDATE_IN_PROGRESS", WARN, "an operation is running"),
        ("UPDATE_ROLLBACK_FAILED", BLOCKING, "can be neither updated nor rolled back"),
        ("UPDATE_FAILED", WARN, "the last update failed"),
    ],
)
def test_a_deployed_stack_s_state(status, expected, words):
    found = findings(stacks={**HEALTHY.stacks, COSTS: stack(COSTS, status)})

    costs = [f for f in about(found, "stack") if COSTS in f.detail][0]
    assert (costs.status, words in costs.detail) == (expected, True)


# --- paging ---------------------------------------------------------------------------------------------


def test_no_subscription_on_the_ops_topic_blocks_because_nobody_is_paged():
    found = findings(subscriptions=())

    finding = only(found, "subscriptions")
    assert (finding.status, finding.detail) == (
        BLOCKING,
        "no confirmed subscription on finops-guard-prod-ops-alarms: the page reaches nobody",
    )
    assert "-c opsAlarmEmail=" in finding.fix
    assert exit_code(found) == 1


def test_a_pending_confirmation_is_not_subscribed():
    found = about(findings(subscriptions=(Subscription("email", "ops@example.com", pending=True),)), "subscriptions")

    assert [f.status for f in found] == [WARN, BLOCKING]
    assert "email ops@example.com has not confirmed" in found[0].detail


def test_an_https_subscription_is_shown_by_its_host_only():
    endpoint = "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"

    finding = only(findings(subscriptions=(Subscription("https", endpoint, pending=False),)), "subscriptions")

    assert finding.detail == "confirmed on finops-guard-prod-ops-alarms: https https://events.pagerduty.com/…"


def test_a_missing_ops_topic_blocks():
    finding = only(findings(subscriptions=None), "subscriptions")

    assert (finding.status, finding.detail) == (
        BLOCKING,
        "no SNS topic finops-guard-prod-ops-alarms: the alarms page nobody",
    )
    assert "aws cloudformation detect-stack-drift --stack-name FinOpsGuard-prod-Core" in finding.fix


def test_subscriptions_that_cannot_be_listed_are_a_warning_naming_the_action():
    gap = Unanswered("sns:ListSubscriptionsByTopic", denied=True)

    finding = only(findings(subscriptions=gap), "subscriptions")

    assert (finding.status, finding.detail) == (
        WARN,
        "could not check who is subscribed to finops-guard-prod-ops-alarms (needs sns:ListSubscriptionsByTopic)",
    )
    assert f"aws sns list-subscriptions-by-topic --topic-arn {TOPIC}" in finding.fix


@pytest.mark.parametrize(
    ("alarm", "status", "words"),
    [
        (Alarm("FinOpsGuard-prod-Failures", "INSUFFICIENT_DATA", True, (TOPIC,)), OK, "pages finops-guard-prod"),
        (Alarm("FinOpsGuard-prod-Failures", "ALARM", True, (TOPIC,)), WARN, "is in ALARM: something failed"),
        (Alarm("FinOpsGuard-prod-Failures", "OK", False, (TOPIC,)), BLOCKING, "has its actions disabled"),
        (Alarm("FinOpsGuard-prod-Failures", "OK", True, ()), BLOCKING, "does not notify finops-guard-prod-ops"),
        (None, BLOCKING, "no alarm FinOpsGuard-prod-Failures"),
        (Unanswered("cloudwatch:DescribeAlarms", True), WARN, "(needs cloudwatch:DescribeAlarms)"),
    ],
    ids=["insufficient-data", "alarm", "actions-disabled", "no-topic", "missing", "denied"],
)
def test_the_failure_alarm(alarm, status, words):
    finding = only(findings(alarm=alarm), "failure alarm")

    assert (finding.status, words in finding.detail) == (status, True), finding


def test_an_alarm_in_alarm_points_at_the_failure_queue_listing():
    finding = only(findings(alarm=replace(HEALTHY.alarm, state="ALARM")), "failure alarm")

    assert (
        finding.fix == "finops-guard dlq list --stage prod, fix the cause, then finops-guard dlq redrive --stage prod"
    )


@pytest.mark.parametrize(
    ("queue", "status", "detail"),
    [
        (QueueDepth(0), OK, "finops-guard-prod-failures is empty"),
        (QueueDepth(3), WARN, "3 failed event(s) wait in finops-guard-prod-failures"),
        (QueueDepth(1, 2), WARN, "1 failed event(s) wait in finops-guard-prod-failures (2 being read right now)"),
        (None, BLOCKING, "no queue finops-guard-prod-failures: failed events are lost"),
        (
            Unanswered("sqs:GetQueueAttributes", True),
            WARN,
            "could not check the depth of finops-guard-prod-failures (needs sqs:GetQueueAttributes)",
        ),
    ],
)
def test_the_failure_queue_depth(queue, status, detail):
    finding = only(findings(queue=queue), "failure queue")

    assert (finding.status, finding.detail) == (status, detail)


# --- chat secrets ---------------------------------------------------------------------------------------


def test_a_placeholder_secret_while_another_channel_works_is_a_warning_with_the_put_command():
    stacks = {**HEALTHY.stacks, CORE: stack(CORE, outputs=("SlackSecretName",))}
    secrets = {
        **HEALTHY.secrets,
        SLACK: WebhookSecret(SLACK, PLACEHOLDER),
        FINANCE_SLACK: WebhookSecret(FINANCE_SLACK, SET),
    }

    found = findings(stacks=stacks, secrets=secrets)

    [finding] = not_ok(found)
    assert (finding.status, finding.detail) == (
        WARN,
        f"{SLACK} still holds the placeholder the stack created: Slack gets no reports yet",
    )
    assert finding.fix == (
        f"aws secretsmanager put-secret-value --secret-id {SLACK} --secret-string 'https://...', "
        "then send what waits: finops-guard report resend --stage prod"
    )
    assert exit_code(found) == 0


def test_a_placeholder_in_the_only_channel_blocks_because_reports_reach_nobody():
    found = findings(secrets={**HEALTHY.secrets, TEAMS: WebhookSecret(TEAMS, PLACEHOLDER)})

    [finding] = not_ok(found)
    assert finding.status == BLOCKING
    assert "no other channel is set up: the stage's reports reach nobody" in finding.detail
    assert finding.fix.startswith(f"aws secretsmanager put-secret-value --secret-id {TEAMS} ")


def test_the_finance_secrets_are_checked_when_billing_is_deployed():
    found = findings(secrets={**HEALTHY.secrets, FINANCE_TEAMS: WebhookSecret(FINANCE_TEAMS, PLACEHOLDER)})

    [finding] = not_ok(found)
    assert FINANCE_TEAMS in finding.detail and "finance alerts reach nobody" in finding.detail


@pytest.mark.parametrize(
    ("secret", "words", "fix"),
    [
        (WebhookSecret(TEAMS, NOT_HTTPS, "http://hooks.example.com/…"), "not an https:// webhook URL", "put-secret"),
        (WebhookSecret(TEAMS, MISSING), "does not exist: every Microsoft Teams post fails", "detect-stack-drift"),
        (WebhookSecret(TEAMS, DELETED), "is scheduled for deletion", "aws secretsmanager restore-secret --secret-id"),
    ],
    ids=["not-https", "missing", "deleted"],
)
def test_a_secret_that_breaks_delivery_blocks(secret, words, fix):
    finding = not_ok(findings(secrets={**HEALTHY.secrets, TEAMS: secret}))[0]

    assert (finding.status, words in finding.detail, fix in finding.fix) == (BLOCKING, True, True)


def test_a_secret_that_cannot_be_read_is_a_warning_naming_the_action_and_blocks_nothing_else():
    gap = Unanswered("secretsmanager:GetSecretValue", denied=True)

    found = findings(secrets={**HEALTHY.secrets, TEAMS: gap})

    [finding] = not_ok(found)
    assert (finding.status, finding.detail) == (WARN, f"could not check whether {TEAMS} holds a webhook URL "
                                                       "(needs secretsmanager:GetSecretValue)")  # fmt: skip


def test_slack_secrets_are_expected_only_when_the_core_says_slack_is_on():
    with_slack = {**HEALTHY.stacks, CORE: stack(CORE, outputs=("SlackSecretName",))}

    assert webhook_secret_names(STAGE, HEALTHY.stacks) == {"Core": (TEAMS,), "Billing": (FINANCE_TEAMS,)}
    assert webhook_secret_names(STAGE, with_slack) == {
        "Core": (TEAMS, SLACK),
        "Billing": (FINANCE_TEAMS, FINANCE_SLACK),
    }


def test_a_webhook_value_is_reduced_to_its_state_and_host():
    assert webhook_secret(TEAMS, "Zx8rT1bK9mQ2vL4wN7pS") == WebhookSecret(TEAMS, PLACEHOLDER)
    assert webhook_secret(TEAMS, "") == WebhookSecret(TEAMS, PLACEHOLDER)
    assert webhook_secret(TEAMS, " https://acme.webhook.office.com/workflows/s3cr3t?sig=abc \n") == WebhookSecret(
        TEAMS, SET, "https://acme.webhook.office.com/…"
    )
    assert webhook_secret(TEAMS, "http://hooks.example.com/s3cr3t") == WebhookSecret(
        TEAMS, NOT_HTTPS, "http://hooks.example.com/…"
    )
    assert webhook_secret(TEAMS, "ftp://hooks.example.com/s3cr3t") == WebhookSecret(TEAMS, NOT_HTTPS, "ftp://…")


# --- schedules ------------------------------------------------------------------------------------------


def test_a_disabled_schedule_is_a_warning_with_the_command_that_enables_it_as_it_is():
    found = findings(schedules={**HEALTHY.schedules, "finops-guard-prod-chargeback": "DISABLED"})

    [finding] = not_ok(found)
    assert (finding.status, finding.detail) == (WARN, "finops-guard-prod-chargeback is DISABLED: its job does not run")
    assert finding.fix == (
        'aws scheduler update-schedule --cli-input-json "$(aws scheduler get-schedule --name '
        "finops-guard-prod-chargeback --output json | jq -c 'del(.Arn, .CreationDate, .LastModificationDate) "
        '| .State = "ENABLED"\')"'
    )
    assert about(found, "schedules")[0].detail.startswith("5 enabled: finops-guard-prod-weekly-report")


def test_a_missing_schedule_blocks_because_its_job_never_runs():
    schedules = {n: s for n, s in HEALTHY.schedules.items() if n != "finops-guard-prod-reconciliation"}

    [finding] = not_ok(findings(schedules=schedules))

    assert (finding.status, finding.detail) == (
        BLOCKING,
        "no schedule finops-guard-prod-reconciliation: its job never runs",
    )
    assert "--stack-name FinOpsGuard-prod-Billing" in finding.fix


def test_another_stage_s_schedules_under_the_same_prefix_do_not_count():
    schedules = {**HEALTHY.schedules, "finops-guard-prod-eu-weekly-report": "DISABLED"}

    assert not_ok(findings(schedules=schedules)) == []


def test_the_savings_refresh_schedule_is_expected_only_with_its_function():
    with_savings = {**HEALTHY.stacks, COSTS: stack(COSTS, outputs=("SavingsRefreshFunctionName",))}

    assert "finops-guard-prod-savings-refresh" not in expected_schedules(STAGE, HEALTHY.stacks)
    assert expected_schedules(STAGE, with_savings)["finops-guard-prod-savings-refresh"] == COSTS
    [finding] = not_ok(findings(stacks=with_savings))
    assert finding.detail == "no schedule finops-guard-prod-savings-refresh: its job never runs"


def test_schedules_that_cannot_be_listed_are_one_warning():
    finding = only(findings(schedules=Unanswered("scheduler:ListSchedules", True)), "schedules")

    assert (finding.status, finding.detail) == (
        WARN,
        "could not check the stage's schedules (needs scheduler:ListSchedules)",
    )
    assert "aws scheduler list-schedules --name-prefix finops-guard-prod-" in finding.fix


def test_the_schedule_names_are_the_ones_infra_creates():
    """Every schedule_name in infra/ (finops-guard-<stage>-<name>) is one doctor expects, and no other."""
    names = set()
    for path in (ROOT / "infra").rglob("*.py"):
        names |= set(re.findall(r'schedule_name=f"(?:finops-guard-\{[^}]+\}|\{prefix\})-([a-z-]+)"', path.read_text()))

    assert names == {n for product in SCHEDULES.values() for n in product} | set(OPTIONAL_SCHEDULES)


# --- Cost Explorer and the attribution tags ---------------------------------------------------------------


def test_an_inactive_tag_is_a_warning_with_the_activation_and_backfill_commands():
    found = findings(cost_allocation_tags={"Team": "Active", "CostCenter": "Inactive"})

    [finding] = not_ok(found)
    assert (finding.item, finding.status) == ("cost allocation tag CostCenter", WARN)
    assert "aws ce update-cost-allocation-tags-status" in finding.fix
    assert "aws ce start-cost-allocation-tag-backfill --backfill-from 2025-11-01T00:00:00Z" in finding.fix


def test_a_tag_billing_never_saw_is_a_warning():
    [finding] = not_ok(findings(cost_allocation_tags={"Team": "Active"}))

    assert finding.detail.startswith("CostCenter has never appeared in billing data")


def test_cost_explorer_refusing_is_one_warning_naming_the_action():
    found = findings(cost_allocation_tags=Unanswered("ce:ListCostAllocationTags", True))

    [finding] = not_ok(found)
    assert (finding.item, finding.status, finding.detail) == (
        "cost explorer",
        WARN,
        "could not check that Cost Explorer answers and the attribution tags are active "
        "(needs ce:ListCostAllocationTags)",
    )


def test_cost_explorer_failing_otherwise_says_why():
    gap = Unanswered("ce:ListCostAllocationTags", False, "DataUnavailableException: not enabled")

    [finding] = not_ok(findings(cost_allocation_tags=gap))

    assert "ce:ListCostAllocationTags failed (DataUnavailableException: not enabled)" in finding.detail


def test_cost_categories_only_need_no_tag():
    found = findings(attribution="costCategory:Project", cost_allocation_tags={})

    assert not_ok(found) == []
    assert only(found, "cost allocation tags").detail == "FINOPSGUARD_ATTRIBUTION_DIMENSIONS holds cost categories only"


def test_dimensions_that_cannot_be_read_still_show_whether_cost_explorer_answers():
    gap = Unanswered("lambda:GetFunctionConfiguration", True)

    found = findings(attribution=gap, cost_allocation_tags={})

    assert [(f.item, f.status) for f in not_ok(found)] == [("attribution", WARN)]
    assert "(needs lambda:GetFunctionConfiguration)" in only(found, "attribution").detail
    assert only(found, "cost explorer").status == OK
    assert about(found, "cost allocation tag Team") == []


@pytest.mark.parametrize(
    ("attribution", "words"),
    [(None, "no function finops-guard-prod-weekly-report"), ("tag:Team,team", "does not parse")],
)
def test_a_missing_function_or_unparsable_dimensions_block(attribution, words):
    finding = only(findings(attribution=attribution, cost_allocation_tags={}), "attribution")

    assert (finding.status, words in finding.detail) == (BLOCKING, True)


def test_attribution_tag_keys_are_read_as_the_functions_read_them():
    assert attribution_tag_keys("tag:Team, costCategory:Project,tag:Cost Center") == ("Team", "Cost Center")
    assert attribution_tag_keys("") == ()
    assert attribution_tag_keys("Team") is None


# --- any facts ------------------------------------------------------------------------------------------

GAPS = st.builds(Unanswered, st.sampled_from(["a:B", "ce:ListCostAllocationTags"]), st.booleans(), st.text(max_size=20))
STATUSES = ["CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS", "REVIEW_IN_PROGRESS",
            "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_COMPLETE", "SOMETHING_NEW"]  # fmt: skip
STACKS = st.one_of(
    st.none(),
    GAPS,
    st.builds(
        stack,
        st.just("x"),
        st.sampled_from(STATUSES),
        st.lists(st.sampled_from(["SlackSecretName", "SavingsRefreshFunctionName", "Other"]), max_size=3).map(tuple),
    ),
)
SECRET_NAMES = [TEAMS, SLACK, FINANCE_TEAMS, FINANCE_SLACK]
SECRETS = st.one_of(
    GAPS, st.builds(WebhookSecret, st.just("x"), st.sampled_from([SET, PLACEHOLDER, NOT_HTTPS, MISSING, DELETED]))
)
FACTS = st.builds(
    DoctorFacts,
    caller=st.just(CALLER),
    region=st.just(REGION),
    stacks=st.fixed_dictionaries({CORE: STACKS, COSTS: STACKS, BILLING: STACKS}),
    secrets=st.dictionaries(st.sampled_from(SECRET_NAMES), SECRETS),
    attribution=st.one_of(st.none(), GAPS, st.sampled_from(["", "tag:Team", "costCategory:P", "bad", "tag:A,tag:A"])),
    cost_allocation_tags=st.one_of(
        st.none(), GAPS, st.dictionaries(st.sampled_from(["Team", "A"]), st.sampled_from(["Active", "Inactive"]))
    ),
    schedules=st.one_of(
        GAPS, st.dictionaries(st.sampled_from(SCHEDULE_NAMES), st.sampled_from(["ENABLED", "DISABLED"]))
    ),
    alarm=st.one_of(
        st.none(),
        GAPS,
        st.builds(
            Alarm,
            st.just("a"),
            st.sampled_from(["OK", "ALARM", ""]),
            st.booleans(),
            st.lists(st.sampled_from([TOPIC, "arn:aws:sns:x"]), max_size=2).map(tuple),
        ),  # fmt: skip
    ),
    subscriptions=st.one_of(
        st.none(),
        GAPS,
        st.lists(
            st.builds(Subscription, st.sampled_from(["email", "https", "sms"]), st.text(max_size=30), st.booleans()),
            max_size=3,
        ).map(tuple),  # fmt: skip
    ),
    queue=st.one_of(st.none(), GAPS, st.builds(QueueDepth, st.integers(0, 10**6), st.integers(0, 10))),
)


@settings(max_examples=300, deadline=None)
@given(facts=FACTS)
def test_any_facts_give_findings_with_a_known_status_and_a_fix_for_each_problem(facts):
    found = assess(STAGE, facts, NOW)

    assert found
    assert all(f.status in DOCTOR_STATUSES for f in found)
    assert all(f.fix for f in found if f.status != OK), found
    assert exit_code(found) == (1 if any(f.status == BLOCKING for f in found) else 0)
    if not deployed_products(STAGE, facts.stacks):
        assert len(found) == 1 and found[0].status == BLOCKING
    json.dumps([f.to_json() for f in found])


CREDENTIAL = st.text(st.characters(min_codepoint=48, max_codepoint=122, categories=("Ll", "Lu", "Nd")), min_size=16)
VALUES = st.one_of(
    st.builds(
        lambda host, secret: f"https://{host}/webhookb2/{secret}", st.sampled_from(["a.webhook.office.com"]), CREDENTIAL
    ),  # fmt: skip
    st.builds(lambda secret: f"https://hooks.slack.com/services/{secret}?x=1", CREDENTIAL),
    st.builds(lambda secret: f"http://public.example.com/{secret}", CREDENTIAL),
    st.builds(lambda secret: f"https://{secret}:pw@hooks.example.com/", CREDENTIAL),
    CREDENTIAL,  # a placeholder is a generated random string: no more printable than the real value
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(teams=VALUES, slack=VALUES, finance=VALUES, finance_slack=VALUES)
def test_no_secret_value_is_ever_printed(teams, slack, finance, finance_slack, capsys, monkeypatch):
    stacks = {**HEALTHY.stacks, CORE: stack(CORE, outputs=("SlackSecretName",))}
    values = {TEAMS: teams, SLACK: slack, FINANCE_TEAMS: finance, FINANCE_SLACK: finance_slack}
    facts = replace(HEALTHY, stacks=stacks, secrets={n: webhook_secret(n, v) for n, v in values.items()})
    monkeypatch.setattr(cli_doctor, "health_reader", lambda: FakeReader(facts))

    cli.main(["doctor", "--stage", STAGE])
    cli.main(["doctor", "--stage", STAGE, "--json"])

    printed = capsys.readouterr()
    assert "not read" not in printed.out  # every secret was classified, so every value could have leaked
    for value in values.values():
        secret = re.findall(r"[A-Za-z0-9]{16,}", value)[0]
        assert secret not in printed.out + printed.err


# --- the command ----------------------------------------------------------------------------------------


class FakeReader:
    def __init__(self, facts: DoctorFacts) -> None:
        self.facts = facts
        self.stages: list[str] = []

    def gather(self, stage: str) -> DoctorFacts:
        self.stages.append(stage)
        return self.facts


@pytest.fixture
def reader(monkeypatch):
    fake = FakeReader(HEALTHY)
    monkeypatch.setattr(cli_doctor, "health_reader", lambda: fake)
    monkeypatch.setattr(cli_doctor, "now", lambda: NOW)
    monkeypatch.delenv("FINOPSGUARD_STAGE", raising=False)
    return fake


def test_the_command_prints_one_line_per_check_and_exits_0_when_healthy(reader, capsys):
    code = cli.main(["doctor", "--stage", "prod"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == (
        "FinOps Guard doctor for stage prod (FinOpsGuard-prod-Core, FinOpsGuard-prod-Costs, FinOpsGuard-prod-Billing): "
        f"account {ACCOUNT}, region {REGION}, as {CALLER.arn}"
    )
    assert out[1] == "[ok]         stack: FinOpsGuard-prod-Core is CREATE_COMPLETE"
    assert out[-2:] == ["0 blocking, 0 warn, 12 ok", "healthy"]


def test_the_command_prints_the_fix_and_exits_1_when_something_blocks(reader, capsys):
    reader.facts = replace(HEALTHY, subscriptions=())

    code = cli.main(["doctor", "--stage", "prod"])

    out = capsys.readouterr().out
    assert code == 1
    assert "[blocking]   subscriptions: no confirmed subscription on finops-guard-prod-ops-alarms" in out
    assert "             fix: set -c opsAlarmEmail=" in out
    assert out.splitlines()[-1] == "fix the blocking items, then run: finops-guard doctor --stage prod"


def test_json_is_the_list_of_findings(reader, capsys):
    reader.facts = replace(HEALTHY, queue=QueueDepth(2))

    code = cli.main(["doctor", "--stage", "prod", "--json"])

    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed[5] == {
        "item": "failure queue",
        "status": "warn",
        "detail": "2 failed event(s) wait in finops-guard-prod-failures",
        "fix": "finops-guard dlq list --stage prod, fix the cause, then finops-guard dlq redrive --stage prod",
    }
    assert len(printed) == 12


def test_the_stage_defaults_to_finops_guard_stage_then_dev(reader, monkeypatch, capsys):
    cli.main(["doctor"])
    monkeypatch.setenv("FINOPSGUARD_STAGE", "staging")
    cli.main(["doctor"])

    assert reader.stages == ["dev", "staging"]


@pytest.mark.parametrize(
    ("argv", "environment"), [(["doctor", "--stage", "Prod EU"], {}), (["doctor"], {"FINOPSGUARD_STAGE": "x y"})]
)
def test_a_bad_stage_is_one_line_and_exit_2_before_asking_aws(argv, environment, reader, monkeypatch, capsys):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and "use 1-16 lowercase letters" in err
    assert reader.stages == []
