"""finops_guard.preflight: every status of every preflight item, the context parsing, the paging check."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from finops_guard.preflight import (
    BLOCKING,
    MIN_BOOTSTRAP_VERSION,
    OK,
    WARN,
    WILL_ADOPT,
    AccountFacts,
    ActionResult,
    Alarm,
    AnomalyMonitor,
    ApiGatewayRole,
    Caller,
    ExistingResource,
    Finding,
    HistoryItem,
    Organization,
    PreflightConfig,
    PreflightInputError,
    RoleDecision,
    SesAccount,
    SesIdentity,
    StackState,
    Subscription,
    Unanswered,
    action_results,
    api_gateway_finding,
    assess,
    backfill_from,
    bootstrap_finding,
    cdk_role_arns,
    cost_allocation_tag_findings,
    custom_monitors_finding,
    exit_code,
    load_context,
    named_resource_findings,
    paging_findings,
    paging_precheck,
    paging_topic,
    parse_config,
    parse_stage,
    permissions_finding,
    principal_arn,
    redact_endpoint,
    region_finding,
    services_monitor_finding,
    ses_findings,
    stack_finding,
    wait_for_action,
)

from tests.conftest import ROOT

ACCOUNT, PAYER = "111111111111", "999999999999"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
CALLER = Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane")
TODAY = date(2026, 12, 2)
CONFIG = PreflightConfig(stage="prod")
DENIED = Unanswered("ce:GetAnomalyMonitors", denied=True, reason="AccessDeniedException: no")
OURS = {"Project": "FinOpsGuard", "Environment": "prod"}
REPO_CONTEXT = load_context((ROOT / "cdk.json").read_text(), "cdk.json")


def facts(**changes) -> AccountFacts:
    base = AccountFacts(
        caller=CALLER,
        region="us-east-1",
        bootstrap_version=MIN_BOOTSTRAP_VERSION,
        principal=ROLE_ARN,
        deploy_roles=tuple(RoleDecision(arn, "allowed") for arn in cdk_role_arns(CALLER, "us-east-1")),
    )
    return replace(base, **changes)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# --- configuration ----------------------------------------------------------------------------------------


def test_repo_cdk_json_gives_the_default_configuration():
    config = parse_config("prod", REPO_CONTEXT)

    assert config.attribution_tag_keys == ("Team", "CostCenter")
    assert config.anomaly_service_monitor is True
    assert config.custom_monitor_keys == ()
    assert config.dunning_sender_email is None
    assert config.slack_enabled is False


def test_named_resources_are_twelve_tables_and_five_secrets_without_slack():
    names = [r.name for r in parse_config("prod", REPO_CONTEXT).named_resources()]

    assert len([n for n in names if n.startswith("finops-guard-prod-")]) == 12
    assert "finops-guard-prod-billing-ledger" in names
    assert [n for n in names if n.startswith("finops-guard/prod/")] == [
        "finops-guard/prod/teams-webhook-url",
        "finops-guard/prod/team-webhooks",
        "finops-guard/prod/finance-teams-webhook-url",
        "finops-guard/prod/stripe-webhook-secret",
        "finops-guard/prod/stripe-api-key",
    ]


def test_each_named_resource_belongs_to_the_stack_that_creates_it():
    stacks = {r.name: r.stack for r in parse_config("prod", REPO_CONTEXT, ["slackEnabled=true"]).named_resources()}

    assert CONFIG.stack_names == ("FinOpsGuard-prod-Core", "FinOpsGuard-prod-Costs", "FinOpsGuard-prod-Billing")
    assert {name for name, stack in stacks.items() if stack == "FinOpsGuard-prod-Core"} == {
        "finops-guard-prod-outbox",
        "finops-guard/prod/teams-webhook-url",
        "finops-guard/prod/slack-webhook-url",
    }
    assert {name for name, stack in stacks.items() if stack == "FinOpsGuard-prod-Costs"} == {
        "finops-guard-prod-budgets",
        "finops-guard-prod-budget-alerts",
        "finops-guard-prod-anomalies",
        "finops-guard-prod-team-routes",
        "finops-guard-prod-recommendations",
        "finops-guard/prod/team-webhooks",
    }
    assert {name for name, stack in stacks.items() if stack == "FinOpsGuard-prod-Billing"} == {
        "finops-guard-prod-stripe-events",
        "finops-guard-prod-billing-ledger",
        "finops-guard-prod-billing-objects",
        "finops-guard-prod-billing-alerts",
        "finops-guard-prod-dunning",
        "finops-guard-prod-invoice-requests",
        "finops-guard/prod/finance-teams-webhook-url",
        "finops-guard/prod/finance-slack-webhook-url",
        "finops-guard/prod/stripe-webhook-secret",
        "finops-guard/prod/stripe-api-key",
    }


@pytest.mark.parametrize(("raw", "routing"), [(None, True), ("tag:Team", True), ("", False), ("null", False)])
def test_team_routing_off_has_no_team_webhooks_secret(raw, routing):
    config = parse_config("prod", {**REPO_CONTEXT, "teamDimension": raw})

    assert config.team_routing is routing
    assert ("finops-guard/prod/team-webhooks" in {r.name for r in config.named_resources()}) is routing


def test_slack_enabled_adds_the_two_slack_secrets():
    names = [r.name for r in parse_config("prod", REPO_CONTEXT, ["slackEnabled=true"]).named_resources()]

    assert "finops-guard/prod/slack-webhook-url" in names
    assert "finops-guard/prod/finance-slack-webhook-url" in names


def test_c_overrides_win_over_cdk_json_and_come_back_in_the_deploy_command():
    config = parse_config(
        "prod",
        REPO_CONTEXT,
        ["anomalyTag=team=data,ml", "anomalyLinkedAccounts=222222222222", "opsAlarmEmail=on call@example.com"],
    )

    assert config.custom_monitor_keys == ("anomalyLinkedAccounts", "anomalyTag")
    assert config.deploy_command("--import-existing-resources") == (
        "npx cdk deploy --all -c stage=prod -c anomalyTag=team=data,ml -c anomalyLinkedAccounts=222222222222 "
        "-c 'opsAlarmEmail=on call@example.com' --import-existing-resources"
    )


def test_urls_given_with_c_are_named_not_repeated_in_commands():
    endpoint = "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"
    config = parse_config("prod", {}, [f"opsAlarmHttpsEndpoints={endpoint}"])

    assert config.deploy_command() == (
        "npx cdk deploy --all -c stage=prod -c 'opsAlarmHttpsEndpoints=<your opsAlarmHttpsEndpoints>'"
    )


def test_null_unsets_a_custom_monitor_like_cdk_does():
    config = parse_config("prod", {"anomalyTag": "team=data"}, ["anomalyTag=null"])

    assert config.custom_monitor_keys == ()


def test_cost_category_dimensions_need_no_tag_activation():
    config = parse_config("prod", {}, ['attributionDimensions=["costCategory:Project", "tag:Team"]'])

    assert config.attribution_tag_keys == ("Team",)


@pytest.mark.parametrize("stage", ["Prod", "-prod", "prod-", "a" * 17, "", "pr od", "prod_1"])
def test_a_bad_stage_is_one_line_naming_the_rule(stage):
    with pytest.raises(PreflightInputError) as raised:
        parse_stage(stage)

    assert "\n" not in str(raised.value)
    assert "lowercase letters, digits or inner hyphens" in str(raised.value)


@pytest.mark.parametrize(
    ("pairs", "context", "named"),
    [
        (["slackEnabled=maybe"], {}, "slackEnabled"),
        (["anomalyServiceMonitor=2"], {}, "anomalyServiceMonitor"),
        (["attributionDimensions=team"], {}, "attributionDimensions"),
        (['attributionDimensions=["tag:a","tag:b","tag:c","tag:d"]'], {}, "attributionDimensions"),
        (["dunningSenderEmail=billing"], {}, "dunningSenderEmail"),
        (["anomalyLinkedAccounts=1234"], {}, "anomalyLinkedAccounts"),
        (["anomalyTag=team"], {}, "anomalyTag"),
        (["anomalyMonitorArns=arn:aws:ce::1:anomalymonitor/x"], {}, "anomalyMonitorArns"),
        ([], {"slackEnabled": 3}, "slackEnabled"),
        ([], {"anomalyLinkedAccounts": "[1, 2"}, "anomalyLinkedAccounts"),
        (["noequals"], {}, "-c 'noequals'"),
        (["stage=dev"], {}, "disagree"),
    ],
)
def test_bad_context_values_are_one_line_naming_the_key(pairs, context, named):
    with pytest.raises(PreflightInputError) as raised:
        parse_config("prod", context, pairs)

    assert named in str(raised.value)
    assert "\n" not in str(raised.value)


def test_c_stage_that_agrees_with_stage_is_accepted():
    assert parse_config("prod", {}, ["stage=prod"]).overrides == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [("{not json", "is not valid JSON (line 1"), ("[1]", "JSON object"), ('{"context": []}', '"context" must be')],
)
def test_a_malformed_cdk_json_is_one_line(text, problem):
    with pytest.raises(PreflightInputError, match="cdk.json") as raised:
        load_context(text, "cdk.json")

    assert problem in str(raised.value)


# --- permissions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "principal"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane", f"arn:aws:iam::{ACCOUNT}:role/Admin"),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/Dev/s", f"arn:aws-cn:iam::{ACCOUNT}:role/Dev"),
        (f"arn:aws:iam::{ACCOUNT}:user/ops/jane", f"arn:aws:iam::{ACCOUNT}:user/ops/jane"),
        (f"arn:aws:iam::{ACCOUNT}:root", None),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/jane", None),
        ("not an arn", None),
    ],
)
def test_the_simulated_principal_of_a_caller(caller, principal):
    assert principal_arn(caller) == principal


def test_cdk_roles_are_the_bootstrap_roles_of_account_and_region():
    assert cdk_role_arns(CALLER, "eu-west-1") == (
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-deploy-role-{ACCOUNT}-eu-west-1",
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-file-publishing-role-{ACCOUNT}-eu-west-1",
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-lookup-role-{ACCOUNT}-eu-west-1",
    )


def test_may_assume_every_cdk_role_is_ok():
    assert permissions_finding(facts()).status == OK


def test_a_cdk_role_the_caller_may_not_assume_blocks_with_the_policy_to_attach():
    roles = cdk_role_arns(CALLER, "us-east-1")
    decisions = (
        RoleDecision(roles[0], "implicitDeny"),
        RoleDecision(roles[1], "allowed"),
        RoleDecision(roles[2], "allowed"),
    )

    finding = permissions_finding(facts(deploy_roles=decisions))

    assert finding.status == BLOCKING
    assert f"cdk-hnb659fds-deploy-role-{ACCOUNT}-us-east-1 (implicitDeny)" in finding.detail
    assert finding.fix.startswith("aws iam put-role-policy --role-name Admin --policy-name cdk-deploy")
    assert roles[0] in finding.fix and roles[1] not in finding.fix


def test_a_user_gets_a_user_policy_and_an_explicit_deny_is_named():
    user = f"arn:aws:iam::{ACCOUNT}:user/ops/jane"
    decisions = (RoleDecision(cdk_role_arns(CALLER, "us-east-1")[0], "explicitDeny"),)

    finding = permissions_finding(facts(caller=Caller(ACCOUNT, user), principal=user, deploy_roles=decisions))

    assert finding.fix.startswith("aws iam put-user-policy --user-name jane ")
    assert "explicit Deny" in finding.fix


def test_simulation_denied_is_a_warning_naming_the_action():
    gap = Unanswered("iam:SimulatePrincipalPolicy", denied=True, reason="AccessDenied: no")

    finding = permissions_finding(facts(deploy_roles=gap))

    assert finding.status == WARN
    assert finding.detail.startswith("could not check")
    assert "iam:SimulatePrincipalPolicy" in finding.detail


def test_the_root_user_is_ok_and_a_federated_user_could_not_be_checked():
    root = facts(caller=Caller(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"), principal=None, deploy_roles=None)
    federated = replace(root, caller=Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:federated-user/jane"))

    assert permissions_finding(root).status == OK
    assert permissions_finding(federated).status == WARN


# --- bootstrap, region ------------------------------------------------------------------------------------


def test_no_bootstrap_blocks_with_the_bootstrap_command():
    finding = bootstrap_finding(facts(region="eu-west-1", bootstrap_version=None))

    assert finding.status == BLOCKING
    assert finding.fix == f"npx cdk bootstrap aws://{ACCOUNT}/eu-west-1"


def test_an_old_bootstrap_blocks_and_the_needed_one_is_ok():
    assert bootstrap_finding(facts(bootstrap_version=MIN_BOOTSTRAP_VERSION - 1)).status == BLOCKING
    assert bootstrap_finding(facts(bootstrap_version=MIN_BOOTSTRAP_VERSION)).status == OK


def test_an_unreadable_bootstrap_version_is_a_warning_naming_ssm_get_parameter():
    finding = bootstrap_finding(facts(bootstrap_version=Unanswered("ssm:GetParameter", True, "AccessDenied")))

    assert (finding.status, "ssm:GetParameter" in finding.detail) == (WARN, True)


def test_us_east_1_is_ok_and_elsewhere_warns_about_eventbridge():
    assert region_finding("us-east-1").status == OK
    elsewhere = region_finding("eu-central-1")
    assert elsewhere.status == WARN
    assert "SNS" in elsewhere.detail


# --- stack ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "in_fix"),
    [
        ("CREATE_COMPLETE", OK, None),
        ("UPDATE_COMPLETE", OK, None),
        ("UPDATE_ROLLBACK_COMPLETE", OK, None),
        ("IMPORT_COMPLETE", OK, None),
        ("REVIEW_IN_PROGRESS", OK, None),
        ("ROLLBACK_COMPLETE", BLOCKING, "aws cloudformation delete-stack --stack-name FinOpsGuard-prod-Costs"),
        ("ROLLBACK_FAILED", BLOCKING, "--deletion-mode FORCE_DELETE_STACK"),
        ("CREATE_FAILED", BLOCKING, "delete-stack"),
        ("UPDATE_ROLLBACK_FAILED", BLOCKING, "continue-update-rollback --stack-name FinOpsGuard-prod-Costs"),
        ("DELETE_FAILED", BLOCKING, "FORCE_DELETE_STACK"),
        ("IMPORT_ROLLBACK_FAILED", BLOCKING, "describe-stack-events"),
        ("UPDATE_IN_PROGRESS", BLOCKING, "describe-stacks"),
        ("UPDATE_FAILED", WARN, "rollback-stack"),
    ],
)
def test_stack_states(status, expected, in_fix):
    finding = stack_finding("FinOpsGuard-prod-Costs", StackState("FinOpsGuard-prod-Costs", status))

    assert finding.status == expected
    if in_fix:
        assert in_fix in finding.fix


def test_no_stack_is_ok_and_an_unreadable_stack_warns():
    assert stack_finding("FinOpsGuard-prod-Core", None).status == OK
    gap = stack_finding("FinOpsGuard-prod-Core", Unanswered("cloudformation:DescribeStacks", True))
    assert (gap.status, "cloudformation:DescribeStacks" in gap.detail) == (WARN, True)


# --- named resources --------------------------------------------------------------------------------------

LEDGER, WEBHOOK = "finops-guard-prod-billing-ledger", "finops-guard/prod/stripe-webhook-secret"
LEDGER_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{LEDGER}"
WEBHOOK_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{WEBHOOK}-AbCdEf"


def test_nothing_there_yet_is_one_ok():
    finding = only(named_resource_findings(CONFIG, facts()))

    assert (finding.status, finding.detail) == (OK, "17 not there yet (the deploy creates them)")


BILLING = "FinOpsGuard-prod-Billing"
OUTBOX = "finops-guard-prod-outbox"
OUTBOX_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{OUTBOX}"


def test_resources_their_stacks_own_are_ok():
    billing = StackState(BILLING, "UPDATE_COMPLETE", owned=frozenset({LEDGER, WEBHOOK_ARN}))
    core = StackState("FinOpsGuard-prod-Core", "UPDATE_COMPLETE", owned=frozenset({OUTBOX}))
    resources = {
        LEDGER: ExistingResource(LEDGER, LEDGER_ARN, OURS),
        WEBHOOK: ExistingResource(WEBHOOK, WEBHOOK_ARN, OURS),
        OUTBOX: ExistingResource(OUTBOX, OUTBOX_ARN, OURS),
    }
    stacks = {"FinOpsGuard-prod-Core": core, BILLING: billing}

    finding = only(named_resource_findings(CONFIG, facts(stacks=stacks, resources=resources)))

    assert finding.status == OK
    assert "2 owned by FinOpsGuard-prod-Billing" in finding.detail
    assert "1 owned by FinOpsGuard-prod-Core" in finding.detail


def test_a_resource_owned_by_another_stack_of_the_stage_is_not_its_own():
    # The outbox is the core's: the billing stack owning a table of that name is not the deploy's to adopt.
    billing = StackState(BILLING, "UPDATE_COMPLETE", owned=frozenset({OUTBOX}))
    tagged = {**OURS, "aws:cloudformation:stack-name": BILLING}
    resources = {OUTBOX: ExistingResource(OUTBOX, OUTBOX_ARN, tagged)}

    finding = next(
        f
        for f in named_resource_findings(CONFIG, facts(stacks={BILLING: billing}, resources=resources))
        if f.status != OK
    )

    assert finding.status == BLOCKING
    assert f"created by stack {BILLING}, not FinOpsGuard-prod-Core" in finding.detail


def test_leftover_tables_tagged_for_this_stage_are_adopted_with_import_existing_resources():
    resources = {LEDGER: ExistingResource(LEDGER, LEDGER_ARN, OURS)}

    finding = only([f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status != OK])

    assert finding.status == WILL_ADOPT
    assert LEDGER in finding.detail
    assert finding.fix == "npx cdk deploy --all -c stage=prod --import-existing-resources"


def test_leftover_secrets_block_until_imported_with_cdk_import_as_auto_import_cannot_take_them():
    config = replace(CONFIG, overrides=("slackEnabled=true",))
    resources = {
        LEDGER: ExistingResource(LEDGER, LEDGER_ARN, OURS),
        WEBHOOK: ExistingResource(WEBHOOK, WEBHOOK_ARN, OURS),
    }

    findings = [f for f in named_resource_findings(config, facts(resources=resources)) if f.status != OK]

    assert [f.status for f in findings] == [BLOCKING, WILL_ADOPT]
    assert WEBHOOK in findings[0].detail and LEDGER not in findings[0].detail
    assert "--import-existing-resources cannot adopt a secret" in findings[0].detail
    assert findings[0].fix.startswith(
        "npx cdk import FinOpsGuard-prod-Billing -c stage=prod -c slackEnabled=true and, where it asks"
    )
    assert f"{WEBHOOK}: {WEBHOOK_ARN}" in findings[0].fix
    assert findings[0].fix.endswith(
        "then: npx cdk deploy --all -c stage=prod -c slackEnabled=true --import-existing-resources"
    )


def test_leftover_secrets_of_two_stacks_are_imported_one_stack_at_a_time_core_first():
    teams = "finops-guard/prod/teams-webhook-url"
    teams_arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{teams}-XyZ123"
    resources = {
        WEBHOOK: ExistingResource(WEBHOOK, WEBHOOK_ARN, OURS),
        teams: ExistingResource(teams, teams_arn, OURS),
    }

    [finding] = [f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status != OK]

    assert finding.fix.startswith(
        f"npx cdk import FinOpsGuard-prod-Core -c stage=prod and, where it asks for a secret's Id, enter its ARN "
        f"({teams}: {teams_arn}); then npx cdk import FinOpsGuard-prod-Billing -c stage=prod and, where it asks "
        f"for a secret's Id, enter its ARN ({WEBHOOK}: {WEBHOOK_ARN});"
    )


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"Project": "FinOpsGuard", "Environment": "dev"},
        {"Project": "Other", "Environment": "prod"},
        {**OURS, "aws:cloudformation:stack-name": "SomeOtherStack"},
    ],
)
def test_a_resource_not_tagged_as_this_stages_blocks(tags):
    resources = {LEDGER: ExistingResource(LEDGER, LEDGER_ARN, tags)}

    finding = next(f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status != OK)

    assert finding.status == BLOCKING
    assert LEDGER in finding.detail
    assert "choose another stage" in finding.fix
    assert f"aws dynamodb delete-table --table-name {LEDGER}" in finding.fix


def test_a_secret_scheduled_for_deletion_blocks_until_restored():
    resources = {WEBHOOK: ExistingResource(WEBHOOK, WEBHOOK_ARN, OURS, deletion_date="2026-12-09")}

    finding = next(f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status != OK)

    assert finding.status == BLOCKING
    assert finding.fix.startswith(f"aws secretsmanager restore-secret --secret-id {WEBHOOK}, then: npx cdk import")
    assert f"{WEBHOOK}: {WEBHOOK_ARN}" in finding.fix


def test_a_table_being_deleted_blocks_until_it_is_gone():
    resources = {LEDGER: ExistingResource(LEDGER, LEDGER_ARN, OURS, status="DELETING")}

    finding = next(f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status != OK)

    assert finding.status == BLOCKING
    assert f"aws dynamodb wait table-not-exists --table-name {LEDGER}" in finding.fix


def test_unreadable_resources_and_tags_warn_naming_the_action():
    resources = {
        LEDGER: ExistingResource(LEDGER, LEDGER_ARN, Unanswered("dynamodb:ListTagsOfResource", True, "denied")),
        WEBHOOK: Unanswered("secretsmanager:DescribeSecret", True, "denied"),
    }

    warnings = [f for f in named_resource_findings(CONFIG, facts(resources=resources)) if f.status == WARN]

    assert [
        "dynamodb:ListTagsOfResource" in warnings[0].detail,
        "secretsmanager:DescribeSecret" in warnings[1].detail,
    ] == [
        True,
        True,
    ]


def test_without_the_stacks_resource_list_its_cloudformation_tag_counts_as_owned():
    stack = StackState(BILLING, "UPDATE_COMPLETE", owned=Unanswered("cloudformation:ListStackResources", True))
    tagged = {**OURS, "aws:cloudformation:stack-name": BILLING}
    resources = {LEDGER: ExistingResource(LEDGER, LEDGER_ARN, tagged)}

    findings = named_resource_findings(CONFIG, facts(stacks={BILLING: stack}, resources=resources))

    assert [f.status for f in findings] == [WARN, OK]
    assert "1 owned by FinOpsGuard-prod-Billing" in findings[1].detail


# --- services monitor, custom monitors --------------------------------------------------------------------


def monitor(name: str, created: str, kind: str = "DIMENSIONAL", dimension: str | None = "SERVICE") -> AnomalyMonitor:
    return AnomalyMonitor(name, f"arn:aws:ce::{ACCOUNT}:anomalymonitor/{name.lower()}", kind, dimension, created)


def test_an_existing_services_monitor_is_adopted_by_name():
    monitors = (monitor("Tags", "2020-01-01", "CUSTOM", None), monitor("Default-Services-Monitor", "2021-05-01"))

    finding = services_monitor_finding(CONFIG, monitors)

    assert finding.status == WILL_ADOPT
    assert "'Default-Services-Monitor'" in finding.detail
    assert "never deletes it" in finding.detail


def test_the_oldest_services_monitor_is_the_one_adopted():
    monitors = (monitor("Newer", "2024-01-01"), monitor("Older", "2022-01-01"))

    assert "'Older'" in services_monitor_finding(CONFIG, monitors).detail


def test_no_services_monitor_is_ok_and_the_deploy_creates_ours():
    finding = services_monitor_finding(CONFIG, (monitor("Tags", "2020-01-01", "CUSTOM", None),))

    assert (finding.status, finding.detail.endswith("creates finops-guard-prod-services")) == (OK, True)


def test_our_own_services_monitor_is_ok():
    assert services_monitor_finding(CONFIG, (monitor("finops-guard-prod-services", "2025-01-01"),)).status == OK


def test_services_monitor_switched_off_is_ok_and_unreadable_monitors_warn():
    assert services_monitor_finding(replace(CONFIG, anomaly_service_monitor=False), DENIED).status == OK
    finding = services_monitor_finding(CONFIG, DENIED)
    assert (finding.status, "ce:GetAnomalyMonitors" in finding.detail) == (WARN, True)


CUSTOM = replace(CONFIG, custom_monitor_keys=("anomalyLinkedAccounts", "anomalyTag"))


@pytest.mark.parametrize("organization", [Organization(None), Organization(ACCOUNT)])
def test_custom_monitors_in_a_payer_account_are_ok(organization):
    assert custom_monitors_finding(CUSTOM, facts(organization=organization)).status == OK


def test_custom_monitors_in_a_member_account_block():
    finding = custom_monitors_finding(CUSTOM, facts(organization=Organization(PAYER)))

    assert finding.status == BLOCKING
    assert PAYER in finding.detail
    assert finding.fix.endswith("-c anomalyLinkedAccounts=null -c anomalyTag=null")


def test_dropping_custom_monitors_keeps_one_monitor():
    config = replace(CUSTOM, anomaly_service_monitor=False)

    finding = custom_monitors_finding(config, facts(organization=Organization(PAYER)))

    assert finding.fix.endswith("-c anomalyTag=null -c anomalyServiceMonitor=true")


def test_no_custom_monitors_is_ok_and_an_unreadable_organisation_warns():
    assert custom_monitors_finding(CONFIG, facts(organization=DENIED)).status == OK
    gap = Unanswered("organizations:DescribeOrganization", True, "AccessDeniedException")
    finding = custom_monitors_finding(CUSTOM, facts(organization=gap))
    assert (finding.status, "organizations:DescribeOrganization" in finding.detail) == (WARN, True)


# --- API Gateway's CloudWatch Logs role -------------------------------------------------------------------


def test_an_unset_logging_role_is_ok():
    assert api_gateway_finding(CONFIG, ApiGatewayRole(None)).status == OK


def test_a_set_existing_logging_role_is_adopted():
    finding = api_gateway_finding(CONFIG, ApiGatewayRole(f"arn:aws:iam::{ACCOUNT}:role/apigw-logs", True))

    assert finding.status == WILL_ADOPT
    assert "apigw-logs" in finding.detail


def test_a_dangling_logging_role_is_ok_and_replaced():
    finding = api_gateway_finding(CONFIG, ApiGatewayRole(f"arn:aws:iam::{ACCOUNT}:role/gone", False))

    assert (finding.status, "no longer exists" in finding.detail) == (OK, True)


def test_this_stages_own_logging_role_is_ok():
    own = f"arn:aws:iam::{ACCOUNT}:role/FinOpsGuard-prod-Billing-BillingApiLogsRole-AbC"
    costs = f"arn:aws:iam::{ACCOUNT}:role/FinOpsGuard-prod-Costs-SomeRole-AbC"

    assert api_gateway_finding(CONFIG, ApiGatewayRole(own, True)).status == OK
    assert api_gateway_finding(CONFIG, ApiGatewayRole(costs, True)).status == WILL_ADOPT


def test_unreadable_api_gateway_settings_warn_naming_the_action():
    account = api_gateway_finding(CONFIG, Unanswered("apigateway:GET", True))
    role = api_gateway_finding(CONFIG, ApiGatewayRole(ROLE_ARN, Unanswered("iam:GetRole", True)))

    assert (account.status, "apigateway:GET" in account.detail) == (WARN, True)
    assert (role.status, "iam:GetRole" in role.detail) == (WARN, True)


# --- cost allocation tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("today", "start"), [(TODAY, date(2025, 12, 1)), (date(2026, 1, 31), date(2025, 1, 1))])
def test_backfill_starts_on_the_first_of_the_month_twelve_months_back(today, start):
    assert backfill_from(today) == start


def test_active_tags_are_ok_inactive_and_unknown_ones_warn_with_activation_and_backfill():
    findings = cost_allocation_tag_findings(
        CONFIG, facts(cost_allocation_tags={"Team": "Active", "CostCenter": "Inactive"}), TODAY
    )
    unknown = only(cost_allocation_tag_findings(replace(CONFIG, attribution_tag_keys=("Owner",)), facts(), TODAY))

    assert [f.status for f in findings] == [OK, WARN]
    activate = """'[{"TagKey":"CostCenter","Status":"Active"}]'"""
    assert findings[1].fix.startswith(
        f"aws ce update-cost-allocation-tags-status --cost-allocation-tags-status {activate}"
    )
    assert "aws ce start-cost-allocation-tag-backfill --backfill-from 2025-12-01T00:00:00Z" in findings[1].fix
    assert (unknown.status, "never appeared" in unknown.detail) == (WARN, True)
    assert unknown.fix.startswith("tag resources with Owner")


def test_a_member_account_activates_tags_in_the_management_account():
    finding = only(
        cost_allocation_tag_findings(
            replace(CONFIG, attribution_tag_keys=("Team",)), facts(organization=Organization(PAYER)), TODAY
        )
    )

    assert f"in the management account {PAYER}: aws ce update-cost-allocation-tags-status" in finding.fix


def test_unreadable_tags_warn_and_cost_categories_only_are_ok():
    gap = Unanswered("ce:ListCostAllocationTags", True, "AccessDeniedException")
    finding = only(cost_allocation_tag_findings(CONFIG, facts(cost_allocation_tags=gap), TODAY))
    categories = only(cost_allocation_tag_findings(replace(CONFIG, attribution_tag_keys=()), facts(), TODAY))

    assert (finding.status, "ce:ListCostAllocationTags" in finding.detail) == (WARN, True)
    assert categories.status == OK


# --- SES --------------------------------------------------------------------------------------------------

DUNNING = replace(CONFIG, dunning_sender_email="billing@example.com")


def test_no_dunning_sender_checks_nothing_of_ses():
    assert ses_findings(CONFIG, facts()) == []


def test_production_ses_with_a_verified_sender_is_ok():
    verified = (SesIdentity("billing@example.com", True),)

    finding = only(ses_findings(DUNNING, facts(ses_account=SesAccount(True), ses_identities=verified)))

    assert finding.status == OK


def test_a_verified_domain_is_enough():
    identities = (SesIdentity("billing@example.com", False), SesIdentity("example.com", True))

    finding = only(ses_findings(DUNNING, facts(ses_account=SesAccount(True), ses_identities=identities)))

    assert (finding.status, "example.com is verified" in finding.detail) == (OK, True)


def test_the_sandbox_warns_with_the_production_access_request():
    verified = (SesIdentity("example.com", True),)

    findings = ses_findings(DUNNING, facts(ses_account=SesAccount(False), ses_identities=verified))

    assert [f.status for f in findings] == [WARN, OK]
    assert "sandbox" in findings[0].detail
    assert findings[0].fix.startswith(
        "request production access: aws sesv2 put-account-details --production-access-enabled"
    )


def test_paused_sending_warns():
    findings = ses_findings(
        DUNNING,
        facts(ses_account=SesAccount(True, sending_enabled=False), ses_identities=(SesIdentity("example.com", True),)),
    )

    assert findings[0].status == WARN


def test_an_unverified_identity_blocks():
    unverified = (SesIdentity("billing@example.com", False),)

    finding = only(ses_findings(DUNNING, facts(ses_account=SesAccount(True), ses_identities=unverified)))

    assert finding.status == BLOCKING
    assert "aws sesv2 get-email-identity --email-identity billing@example.com" in finding.fix


def test_no_identity_blocks_with_the_create_command():
    finding = only(ses_findings(DUNNING, facts(ses_account=SesAccount(True), ses_identities=())))

    assert finding.status == BLOCKING
    assert "aws sesv2 create-email-identity --email-identity billing@example.com" in finding.fix


def test_unreadable_ses_warns_naming_the_actions():
    findings = ses_findings(
        DUNNING,
        facts(ses_account=Unanswered("ses:GetAccount", True), ses_identities=Unanswered("ses:GetEmailIdentity", True)),
    )

    assert [f.status for f in findings] == [WARN, WARN]
    assert ["ses:GetAccount" in findings[0].detail, "ses:GetEmailIdentity" in findings[1].detail] == [True, True]


# --- assess -----------------------------------------------------------------------------------------------


def test_a_ready_account_has_nothing_blocking():
    findings = assess(CONFIG, facts(cost_allocation_tags={"Team": "Active", "CostCenter": "Active"}), TODAY)

    assert {f.status for f in findings} == {OK}
    assert exit_code(findings) == 0
    assert [f.item for f in findings][:6] == ["permissions", "cdk bootstrap", "region", "stack", "stack", "stack"]
    assert [f.detail for f in findings if f.item == "stack"] == [
        f"FinOpsGuard-prod-{product} does not exist yet; the deploy creates it"
        for product in ("Core", "Costs", "Billing")
    ]


def test_one_blocking_item_makes_exit_code_one():
    findings = assess(CONFIG, facts(bootstrap_version=None), TODAY)

    assert exit_code(findings) == 1


def test_a_finding_as_json():
    assert json.loads(json.dumps(Finding("region", WARN, "d", "f").to_json())) == {
        "item": "region",
        "status": "warn",
        "detail": "d",
        "fix": "f",
    }


# --- paging check -----------------------------------------------------------------------------------------

TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:finops-guard-prod-ops-alarms"
ALARM = Alarm("FinOpsGuard-prod-Failures", "OK", True, (TOPIC,), 300)
SINCE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_an_ok_alarm_with_the_ops_topic_is_fit_for_the_check():
    assert paging_precheck("prod", ALARM.name, ALARM) is None
    assert paging_topic("prod", replace(ALARM, alarm_actions=("arn:aws:sns:eu-west-1:1:other", TOPIC))) == TOPIC


@pytest.mark.parametrize(
    ("alarm", "in_detail"),
    [
        (None, "no alarm"),
        (replace(ALARM, state="ALARM"), "in ALARM already"),
        (replace(ALARM, actions_enabled=False), "actions disabled"),
        (replace(ALARM, alarm_actions=("arn:aws:lambda:eu-west-1:1:function:x",)), "notifies no SNS topic"),
    ],
)
def test_alarms_unfit_for_the_check_block(alarm, in_detail):
    finding = paging_precheck("prod", ALARM.name, alarm)

    assert finding.status == BLOCKING
    assert in_detail in finding.detail


def history(minutes: int, summary: str, data: dict | None = None) -> HistoryItem:
    return HistoryItem(SINCE + timedelta(minutes=minutes), summary, json.dumps(data or {}))


def test_action_results_read_success_and_failure_after_the_state_change_only():
    items = [
        history(-5, f"Successfully executed action {TOPIC}"),
        history(
            1,
            f'Failed to execute action {TOPIC}. Received error: "CloudWatch Alarms is not authorized"',
            {"error": "CloudWatch Alarms is not authorized to perform: SNS:Publish on resource: x"},
        ),
        history(2, "Alarm updated from OK to ALARM"),
        history(3, f"Successfully executed action {TOPIC}"),
    ]

    results = action_results(items, SINCE)

    assert results == [
        ActionResult(False, TOPIC, "CloudWatch Alarms is not authorized to perform: SNS:Publish on resource: x"),
        ActionResult(True, TOPIC),
    ]


def test_waiting_polls_until_the_action_shows():
    reads = [[], [], [history(1, f"Successfully executed action {TOPIC}")]]
    sleeps: list[float] = []

    results = wait_for_action(lambda: reads.pop(0), SINCE, 60, clock=lambda: sum(sleeps), sleep=sleeps.append)

    assert results == [ActionResult(True, TOPIC)]
    assert sleeps == [5.0, 5.0]


def test_waiting_is_bounded():
    sleeps: list[float] = []

    results = wait_for_action(lambda: [], SINCE, 12, clock=lambda: sum(sleeps), sleep=sleeps.append)

    assert results == []
    assert sleeps == [5.0, 5.0, 2.0]


def test_waiting_stops_at_an_unreadable_history():
    gap = Unanswered("cloudwatch:DescribeAlarmHistory", True, "AccessDenied")

    assert wait_for_action(lambda: gap, SINCE, 60, clock=lambda: 0.0, sleep=pytest.fail) == gap


@pytest.mark.parametrize(
    ("protocol", "endpoint", "shown"),
    [
        (
            "https",
            "https://events.pagerduty.com/integration/0123456789abcdef/enqueue",
            "https://events.pagerduty.com/…",
        ),
        ("https", "https://api.opsgenie.com/v1/json/amazonsns?apiKey=0a1b2c3d", "https://api.opsgenie.com/…"),
        ("https", "https://user:pw@hooks.example.com", "https://hooks.example.com/…"),
        ("https", "https://hooks.example.com", "https://hooks.example.com"),
        ("email", "oncall@example.com", "oncall@example.com"),
        ("sms", "+34600123456", "********3456"),
    ],
)
def test_endpoints_are_shown_without_their_keys(protocol, endpoint, shown):
    assert redact_endpoint(protocol, endpoint) == shown


def test_a_published_page_with_a_confirmed_subscriber_is_ok():
    subscriptions = (Subscription("email", "oncall@example.com", pending=False),)

    findings = paging_findings("prod", ALARM, [ActionResult(True, TOPIC)], 60, subscriptions)

    assert [f.status for f in findings] == [OK, OK]
    assert "email oncall@example.com" in findings[1].detail


@pytest.mark.parametrize(
    ("error", "in_fix"),
    [
        ("CloudWatch Alarms is not authorized to perform: SNS:Publish on resource: x", "topic policy"),
        ("KMS.AccessDeniedException: kms:GenerateDataKey denied", "KMS key policy"),
        ("Topic does not exist", "the topic is gone"),
        ("Rate exceeded", "describe-alarm-history --alarm-name FinOpsGuard-prod-Failures"),
    ],
)
def test_a_failed_publish_blocks_with_its_reason_and_fix(error, in_fix):
    subscriptions = (Subscription("email", "oncall@example.com", pending=False),)

    finding = paging_findings("prod", ALARM, [ActionResult(False, TOPIC, error)], 60, subscriptions)[0]

    assert finding.status == BLOCKING
    assert error in finding.detail
    assert in_fix in finding.fix


def test_no_action_within_the_wait_blocks():
    finding = paging_findings("prod", ALARM, [], 60, (Subscription("email", "a@example.com", False),))[0]

    assert (finding.status, "within 60 s" in finding.detail) == (BLOCKING, True)


def test_pending_subscriptions_are_flagged_and_none_confirmed_blocks():
    subscriptions = (
        Subscription("email", "oncall@example.com", pending=True),
        Subscription("https", "https://events.pagerduty.com/integration/secret-key/enqueue", pending=True),
    )

    findings = paging_findings("prod", ALARM, [ActionResult(True, TOPIC)], 60, subscriptions)

    assert [f.status for f in findings] == [OK, WARN, WARN, BLOCKING]
    assert "Subscription Confirmation" in findings[1].fix
    assert all("secret-key" not in f"{f.detail} {f.fix}" for f in findings)


def test_unreadable_subscriptions_warn_and_an_unreadable_history_blocks():
    gap = Unanswered("sns:ListSubscriptionsByTopic", True, "AuthorizationError")
    unreadable = Unanswered("cloudwatch:DescribeAlarmHistory", True, "AccessDenied")

    subscriptions = paging_findings("prod", ALARM, [ActionResult(True, TOPIC)], 60, gap)
    history_gap = paging_findings("prod", ALARM, unreadable, 60, ())

    assert [f.status for f in subscriptions] == [OK, WARN]
    assert "sns:ListSubscriptionsByTopic" in subscriptions[1].detail
    assert history_gap[0].status == BLOCKING
    assert "cloudwatch:DescribeAlarmHistory" in history_gap[0].detail
