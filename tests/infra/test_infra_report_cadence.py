"""The daily digest and the month-close report (issue 22) in the templates: off by default; on, they add
only settings and least-privilege grants to the budget guard and the chargeback (no function, schedule,
alarm, table or bucket), cdk-nag stays clean, and the roles cover every call their code makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import test_infra_iam_covers_calls as iam_calls
from aws_cdk import App
from cdk_nag import AwsSolutionsChecks
from conftest import (
    Synth,
    arn_of,
    cdk_json_context,
    chargeback_bucket_id,
    function_of,
    policy_statements_of_role,
    role_id_of,
    synthesize,
    table_id_of,
)
from test_infra_compliance import acknowledgments
from test_infra_iam_covers_calls import missing_grants

from infra.config import ConfigError, load_config

pytestmark = pytest.mark.infra

chat, recorder = iam_calls.chat, iam_calls.recorder  # their fixtures, shared
REPORTS_CONTEXT = {
    "slackEnabled": "true",
    "timezone": "Europe/Madrid",
    "dailyDigest": '["default", "team:web"]',
    "digestMinShare": "25",
    "digestMinAmount": "50.5",
    "monthCloseReport": "true",
    "budgetAdjustThreshold": "15",
    "savingsRecommendations": "true",
}
REPORT_KEYS = ("FINOPSGUARD_DAILY_DIGEST", "FINOPSGUARD_MONTH_CLOSE_REPORT", "FINOPSGUARD_DIGEST_MIN_SHARE")


@pytest.fixture(scope="module")
def reports_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-reports"), REPORTS_CONTEXT)


def environment(synth: Synth, name: str) -> dict[str, Any]:
    return function_of(synth, name)[1]["Environment"]["Variables"]


def statement(synth: Synth, function: str, sid: str) -> dict[str, Any]:
    [found] = [s for s in policy_statements_of_role(synth, role_id_of(synth, function)) if s.get("Sid") == sid]
    return found


def counts(synth: Synth) -> dict[str, int]:
    kinds = ("AWS::Lambda::Function", "AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm", "AWS::DynamoDB::Table",
             "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::SNS::Topic", "AWS::SQS::Queue")  # fmt: skip
    return {kind: len(synth.resources(kind)) for kind in kinds}


def test_both_reports_are_off_by_default_and_set_nothing(default_synth: Synth) -> None:
    for function in ("budget-guard", "chargeback"):
        assert not set(REPORT_KEYS) & set(environment(default_synth, function)), function
    sids = {s.get("Sid") for s in policy_statements_of_role(default_synth, role_id_of(default_synth, "budget-guard"))}
    assert not {"ReadAnomaliesOpened", "PublishMonthClose"} & sids


def test_switched_on_they_add_no_resource_that_costs_a_month(reports_synth: Synth, tmp_path) -> None:
    without = synthesize(tmp_path, {k: v for k, v in REPORTS_CONTEXT.items() if k not in (
        "dailyDigest", "monthCloseReport")})  # fmt: skip
    assert counts(reports_synth) == counts(without)


def test_the_guard_reads_the_digest_and_month_close_settings(reports_synth: Synth) -> None:
    variables = environment(reports_synth, "budget-guard")
    assert {
        k: v
        for k, v in variables.items()
        if k
        in (
            "FINOPSGUARD_DAILY_DIGEST",
            "FINOPSGUARD_DIGEST_MIN_SHARE",
            "FINOPSGUARD_DIGEST_MIN_AMOUNT",
            "FINOPSGUARD_MONTH_CLOSE_REPORT",
            "FINOPSGUARD_BUDGET_ADJUST_THRESHOLD",
            "FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES",
        )
    } == {  # fmt: skip
        "FINOPSGUARD_DAILY_DIGEST": '["default","team:web"]',
        "FINOPSGUARD_DIGEST_MIN_SHARE": "25",
        "FINOPSGUARD_DIGEST_MIN_AMOUNT": "50.5",
        "FINOPSGUARD_MONTH_CLOSE_REPORT": "true",
        "FINOPSGUARD_BUDGET_ADJUST_THRESHOLD": "15",
        "FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES": "60",
    }
    assert variables["FINOPSGUARD_ANOMALIES_TABLE"] == {"Ref": table_id_of(reports_synth, "anomalies")}
    assert variables["FINOPSGUARD_CHARGEBACK_BUCKET"] == {"Ref": chargeback_bucket_id(reports_synth)}


def test_the_chargeback_reads_the_month_close_settings_and_the_budgets(reports_synth: Synth) -> None:
    variables = environment(reports_synth, "chargeback")
    assert variables["FINOPSGUARD_MONTH_CLOSE_REPORT"] == "true"
    assert variables["FINOPSGUARD_BUDGET_ADJUST_THRESHOLD"] == "15"
    assert variables["FINOPSGUARD_FORECAST_INTERVAL"] == "0.8"
    assert variables["FINOPSGUARD_BUDGETS_TABLE"] == {"Ref": table_id_of(reports_synth, "budgets")}
    assert variables["FINOPSGUARD_RECOMMENDATIONS_TABLE"] == {"Ref": table_id_of(reports_synth, "recommendations")}
    assert "FINOPSGUARD_DAILY_DIGEST" not in variables


def test_the_guard_may_scan_the_anomalies_and_write_only_the_month_close_files(reports_synth: Synth) -> None:
    assert statement(reports_synth, "budget-guard", "ReadAnomaliesOpened") == {
        "Sid": "ReadAnomaliesOpened",
        "Effect": "Allow",
        "Action": "dynamodb:Scan",
        "Resource": arn_of(table_id_of(reports_synth, "anomalies")),
    }
    bucket = chargeback_bucket_id(reports_synth)
    assert statement(reports_synth, "budget-guard", "PublishMonthClose") == {
        "Sid": "PublishMonthClose",
        "Effect": "Allow",
        "Action": ["s3:GetObjectVersion", "s3:PutObject"],
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/chargeback/*/month-close.*"]]},
    }


def test_the_chargeback_may_keep_month_close_state_in_its_partition_only(reports_synth: Synth) -> None:
    assert statement(reports_synth, "chargeback", "KeepMonthCloseState") == {
        "Sid": "KeepMonthCloseState",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": arn_of(table_id_of(reports_synth, "budget-alerts")),
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["#month-close"]}},
    }
    assert statement(reports_synth, "chargeback", "ReadBudgets")["Action"] == "dynamodb:Query"


def test_no_new_schedule_the_guard_and_the_chargeback_keep_theirs(reports_synth: Synth) -> None:
    schedules = {p["Properties"]["Name"]: p["Properties"] for p in reports_synth.resources(
        "AWS::Scheduler::Schedule").values()}  # fmt: skip
    assert schedules["finops-guard-dev-budget-guard"]["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert schedules["finops-guard-dev-chargeback"]["ScheduleExpression"] == "cron(0 9 1 * ? *)"
    for name in ("finops-guard-dev-budget-guard", "finops-guard-dev-chargeback"):
        assert schedules[name]["ScheduleExpressionTimezone"] == "Europe/Madrid"


def test_cdk_nag_is_clean_with_one_reviewed_acknowledgment_more(reports_synth: Synth, default_synth: Synth) -> None:
    report = AwsSolutionsChecks().validate_scope(reports_synth.app)
    assert [v.rule_name for v in report.violations] == []
    bucket = chargeback_bucket_id(reports_synth)
    added = set(acknowledgments(reports_synth)) - set(acknowledgments(default_synth))
    assert added == {
        ("Core", "SlackWebhookSecret", "AwsSolutions-SMG4"),  # slackEnabled
        ("Billing", "BillingApi/FinanceSlackWebhookSecret", "AwsSolutions-SMG4"),
        ("Costs", "Savings/SavingsRefresh/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),  # savings
        ("Costs", "Savings/SavingsRefresh/Function", "AwsSolutions-L1"),  # its Python 3.13, as every function's
        ("Costs", "Budgets/BudgetGuard/Role/DefaultPolicy",
         f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/chargeback/*/month-close.*]"),
    }  # fmt: skip


# --- the context keys ---------------------------------------------------------------------------------------


def config_of(**context: Any):
    return load_config(App(context={**cdk_json_context(), **context}).node)


def test_daily_digest_true_means_every_channel_and_with_team_routing_every_team() -> None:
    assert config_of(dailyDigest=True).reports.daily_digest == ("default", "team:*")
    assert config_of(dailyDigest="true", teamDimension="").reports.daily_digest == ("default",)
    assert config_of().reports.daily_digest == () and not config_of().reports.month_close_report


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"dailyDigest": '["slack"]'}, "names slack, but slackEnabled is false"),
        ({"dailyDigest": "team:*", "teamDimension": ""}, "team routing is off"),
        ({"dailyDigest": '["everyone"]'}, "holds 'everyone'"),
        ({"digestMinShare": "-1"}, "Invalid context 'digestMinShare'"),
        ({"digestMinAmount": "lots"}, "Invalid context 'digestMinAmount'"),
        ({"budgetAdjustThreshold": "1001"}, "Invalid context 'budgetAdjustThreshold'"),
        ({"monthCloseReport": "maybe"}, "Invalid context 'monthCloseReport'"),
    ],
)
def test_a_bad_report_setting_fails_synth_naming_its_key(context: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        config_of(**context)


# --- the roles cover every call the code makes ----------------------------------------------------------------


def test_guard_and_chargeback_roles_cover_every_call_of_the_digest_and_the_month_close(
    reports_synth: Synth, request: pytest.FixtureRequest
) -> None:
    from finops_guard.costs import cadence_runtime
    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budgets import parse_budget

    from devtools.lambda_runner import FakeContext, load_handler

    calls, aws, setenv = request.getfixturevalue("recorder")
    chat_sink = request.getfixturevalue("chat")
    aws.client("secretsmanager").create_secret(Name="iam/teams", SecretString=chat_sink.url("/teams"))
    budgets_table, alerts_table = aws.create_budget_tables("iam")
    bucket = aws.create_export_bucket("finops-guard-iam-exports")
    for key, value in {
        "FINOPSGUARD_TEAMS_SECRET_NAME": "iam/teams",
        "FINOPSGUARD_OUTBOX_TABLE": aws.create_outbox_table("finops-guard-iam-outbox"),
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "FINOPSGUARD_ANOMALIES_TABLE": aws.create_anomalies_table("iam"),
        "FINOPSGUARD_RECOMMENDATIONS_TABLE": aws.create_recommendations_table("iam"),
        "FINOPSGUARD_CHARGEBACK_BUCKET": bucket,
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team",
        "FINOPSGUARD_USE_MOCK_DATA": "true",
        "FINOPSGUARD_DAILY_DIGEST": '["default"]',
        "FINOPSGUARD_DIGEST_MIN_SHARE": "0",
        "FINOPSGUARD_DIGEST_MIN_AMOUNT": "0",
        "FINOPSGUARD_MONTH_CLOSE_REPORT": "true",
    }.items():
        setenv(key, value)
    cadence_runtime.cadence_settings.cache_clear()
    org = parse_budget({"id": "org", "amount": "1000", "currency": "USD"})
    BudgetTable(budgets_table, aws.client("dynamodb")).put_many([org], now=datetime.now(UTC))
    try:
        calls.clear()
        setenv("POWERTOOLS_SERVICE_NAME", "chargeback")
        chargeback = load_handler("chargeback").lambda_handler({"scheduled_time": "2026-11-01T09:00:00Z"},
                                                               FakeContext("iam-chargeback"))  # fmt: skip
        assert chargeback["month_close"]["action"] == "posted provisional"
        chargeback_calls = set(calls)
        calls.clear()
        setenv("POWERTOOLS_SERVICE_NAME", "budget-guard")
        # A month the chargeback has not closed: the guard posts its provisional report itself.
        guard = load_handler("budget_guard").lambda_handler({"scheduled_time": "2026-12-02T09:00:00Z"},
                                                            FakeContext("iam-guard"))  # fmt: skip
        guard_calls = set(calls)
    finally:
        cadence_runtime.cadence_settings.cache_clear()
    assert guard["digest"]["posted"] == ["default"]
    assert guard["month_close"] | {"delivered": []} == {
        "month": "2026-11", "action": "posted provisional", "delivered": [], "cost_explorer_requests": 3}  # fmt: skip
    buckets = {bucket: chargeback_bucket_id(reports_synth)}
    assert ("dynamodb:Scan", "finops-guard-iam-anomalies") in guard_calls
    assert ("dynamodb:PutItem", "finops-guard-iam-budget-alerts") in chargeback_calls
    assert missing_grants(reports_synth, "chargeback", chargeback_calls, buckets=buckets) == []
    assert missing_grants(reports_synth, "budget-guard", guard_calls, buckets=buckets) == []
    assert json.dumps(guard)  # the answer is plain JSON
