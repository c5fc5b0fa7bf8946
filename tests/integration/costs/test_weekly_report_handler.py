"""The weekly report handler, exactly as Lambda runs it, against moto and a loopback chat server."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from finops_guard import cli
from finops_guard.core.delivery import DeliveryFailed

from devtools.chat_recorder import Reply
from tests.integration.conftest import SLACK_PATH, SLACK_SECRET, TEAMS_PATH, TEAMS_SECRET, emitted_metrics, logged_by

pytestmark = pytest.mark.integration
MESSAGE_ID = "weekly-report/2026-11-15/teams"


def card(received):
    return received.json()["attachments"][0]["content"]


def test_weekly_report_posts_one_teams_card_from_two_cost_explorer_requests(deployed):
    # Without attribution dimensions: the usage by service and breakdown, then the month's credits,
    # refunds and tax (with them, those ride on the main request: see test_attribution).
    deployed.seed_costs()
    result = deployed.invoke()
    assert len(deployed.ce_requests) == 2 and result["cost_explorer_requests"] == 2
    request, charges = deployed.ce_requests
    assert request["Granularity"] == "DAILY" and request["Metrics"] == ["UnblendedCost"]
    assert request["TimePeriod"] == {"Start": "2026-09-21", "End": "2026-11-16"}  # the forecast's last 56 days
    assert [g["Key"] for g in request["GroupBy"]] == ["SERVICE", "LINKED_ACCOUNT"]
    assert request["Filter"] == {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund", "Tax"]}}}
    assert charges["Granularity"] == "MONTHLY" and [g["Key"] for g in charges["GroupBy"]] == ["RECORD_TYPE"]
    assert charges["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-11-16"}
    assert [r.path for r in deployed.chat.received] == [TEAMS_PATH]
    posted = card(deployed.chat.received[0])
    assert posted["version"] == "1.5"
    assert result["delivered"] == [MESSAGE_ID]
    assert Decimal(result["month_to_date"]) > 0
    assert deployed.outbox_item(MESSAGE_ID)["status"]["S"] == "delivered"


def test_cost_explorer_pages_are_followed_until_there_is_no_token(deployed):
    pages = deployed.seed_costs(groups_per_page=40)
    assert len(pages) > 3
    result = deployed.invoke()
    assert len(deployed.ce_requests) == len(pages) + 1 == result["cost_explorer_requests"]  # + credits/refunds/tax
    assert deployed.ce_requests[1]["NextPageToken"] == "page-2"
    expected = sum(
        Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
        for p in pages
        for r in p["ResultsByTime"]
        if r["TimePeriod"]["Start"] >= "2026-11-01"  # October's days feed the forecast, not the month to date
        for g in r["Groups"]
    )
    assert Decimal(result["month_to_date"]) == expected  # every page counted, none twice


def test_429_then_200_is_retried_after_the_retry_after_delay(deployed):
    deployed.seed_costs()
    deployed.chat.then(Reply(429, {"Retry-After": "2"}, "Too many requests"), Reply(202))
    result = deployed.invoke()
    assert len(deployed.chat.received) == 2 and deployed.sleeps == [2.0]
    assert deployed.chat.received[0].body == deployed.chat.received[1].body
    assert result["delivered"] == [MESSAGE_ID]


def test_repeated_500s_fail_the_invocation_and_keep_the_card_for_resend(deployed, capsys):
    deployed.seed_costs()
    deployed.chat.then(*[Reply(500, body="upstream error")] * 4)
    with pytest.raises(DeliveryFailed, match="HTTP 500 after 4 attempts"):
        deployed.invoke()
    assert len(deployed.chat.received) == 4 and len(deployed.sleeps) == 3
    kept = deployed.outbox_item(MESSAGE_ID)
    assert kept["status"]["S"] == "failed" and kept["attempts"]["N"] == "4"
    assert json.loads(kept["payload"]["S"]) == deployed.chat.received[0].json()

    # The outage is over: the operator re-sends what was kept, byte for byte the same card.
    deployed.chat.clear()
    assert cli.main(["report", "resend"]) == 0
    assert "delivered weekly-report/2026-11-15/teams" in capsys.readouterr().out
    assert len(deployed.chat.received) == 1
    assert deployed.chat.received[0].json() == json.loads(kept["payload"]["S"])
    assert deployed.outbox_item(MESSAGE_ID)["status"]["S"] == "delivered"
    assert cli.main(["report", "resend"]) == 0 and len(deployed.chat.received) == 1


def test_connection_reset_and_timeouts_are_retried(deployed):
    deployed.seed_costs()
    deployed.chat.then(Reply(drop_connection=True), Reply(503), Reply(202))
    result = deployed.invoke()
    assert len(deployed.chat.received) == 3 and len(deployed.sleeps) == 2
    assert result["delivered"] == [MESSAGE_ID]


def test_a_4xx_other_than_429_is_not_retried_and_its_response_is_logged(deployed):
    deployed.seed_costs()
    deployed.chat.then(Reply(400, body='{"error":"Invalid card: body[3] unknown type"}'))
    with pytest.raises(DeliveryFailed, match="teams answered 400"):
        deployed.invoke()
    assert len(deployed.chat.received) == 1 and deployed.sleeps == []
    logs = deployed.logs.getvalue()
    assert "chat webhook rejected the message" in logs and "Invalid card" in logs
    assert deployed.outbox_item(MESSAGE_ID)["status"]["S"] == "failed"


def test_missing_secret_fails_with_a_clear_error_and_keeps_the_card(deployed):
    deployed.aws.client("secretsmanager").delete_secret(SecretId=TEAMS_SECRET, ForceDeleteWithoutRecovery=True)
    deployed.seed_costs()
    with pytest.raises(
        DeliveryFailed, match=f"secret '{TEAMS_SECRET}' could not be read \\(ResourceNotFoundException\\)"
    ):
        deployed.invoke()
    assert deployed.chat.received == []
    assert deployed.outbox_item(MESSAGE_ID)["status"]["S"] == "failed"


def test_placeholder_secret_value_is_reported_without_being_echoed(deployed, capsys):
    deployed.aws.client("secretsmanager").put_secret_value(SecretId=TEAMS_SECRET, SecretString="kT9#placeholder")
    deployed.seed_costs()
    result = deployed.invoke()  # not set up yet is no failure (tests/integration/costs/test_first_days.py)
    last_error = deployed.outbox_item(MESSAGE_ID)["last_error"]["S"]
    assert "holds no webhook URL" in last_error and result["not_configured"] == [MESSAGE_ID]
    printed = capsys.readouterr()
    assert "kT9#placeholder" not in last_error + json.dumps(result) + deployed.logs.getvalue() + printed.out


def test_a_retried_invocation_does_not_post_the_same_report_twice(deployed):
    deployed.seed_costs()
    deployed.invoke()
    again = deployed.invoke()
    assert len(deployed.chat.received) == 1
    assert again["skipped"] == [MESSAGE_ID] and again["delivered"] == []


def test_two_concurrent_invocations_post_once(deployed):
    deployed.seed_costs()
    deployed.chat.then(Reply(202, delay_s=0.5))
    results, errors = [], []

    def run():
        try:
            results.append(deployed.invoke())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(deployed.chat.received) == 1
    assert sorted(len(r["delivered"]) for r in results) == [0, 1]


def test_slack_gets_the_same_report_as_block_kit_when_configured(deployed, monkeypatch):
    from finops_guard.costs import runtime

    deployed.aws.put_secret(SLACK_SECRET, deployed.chat.url(SLACK_PATH))
    monkeypatch.setenv("FINOPSGUARD_SLACK_SECRET_NAME", SLACK_SECRET)
    runtime.settings.cache_clear()
    deployed.seed_costs()
    result = deployed.invoke()
    assert sorted(r.path for r in deployed.chat.received) == sorted([SLACK_PATH, TEAMS_PATH])
    slack = next(r for r in deployed.chat.received if r.path == SLACK_PATH).json()
    assert slack["blocks"][0]["type"] == "header" and len(slack["blocks"]) <= 50
    assert sorted(result["delivered"]) == ["weekly-report/2026-11-15/slack", MESSAGE_ID]


def test_webhook_url_never_appears_in_logs_or_errors(deployed, capsys):
    deployed.seed_costs()
    deployed.chat.then(Reply(drop_connection=True), *[Reply(500)] * 3)
    with pytest.raises(DeliveryFailed) as failure:
        deployed.invoke()
    output, logs = capsys.readouterr(), deployed.logs.getvalue()
    assert "s3cr3t-token" not in output.out + output.err + logs + str(failure.value)
    assert "chat webhook attempt failed; retrying" in logs  # the logs were really captured


def test_mock_data_mode_posts_a_card_without_calling_cost_explorer(deployed, monkeypatch):
    from finops_guard.costs import runtime

    monkeypatch.setenv("FINOPSGUARD_USE_MOCK_DATA", "true")
    runtime.settings.cache_clear()
    result = deployed.invoke()
    assert deployed.ce_requests == [] and result["delivered"] == ["smoke-test/2026-11-16T07:00:00Z/teams"]
    assert "Amazon SageMaker" in deployed.chat.received[0].body.decode()


def test_smoke_test_event_uses_synthetic_data_and_leaves_the_real_report_alone(deployed):
    deployed.seed_costs()
    smoke = deployed.invoke({"smoke_test": True, "scheduled_time": "2026-11-16T07:00:00Z"})
    assert deployed.ce_requests == [] and smoke["delivered"] == ["smoke-test/2026-11-16T07:00:00Z/teams"]
    real = deployed.invoke()  # the scheduled run of the same week still posts the real card
    assert len(deployed.ce_requests) == 2 and real["delivered"] == [MESSAGE_ID]
    assert len(deployed.chat.received) == 2


def test_cli_dry_run_writes_the_payload_and_posts_nothing(deployed, tmp_path):
    out = tmp_path / "card.json"
    code = cli.main(["report", "weekly", "--mock", "--dry-run", "--out", str(out), "--now", "2026-11-16T07:00:00Z"])
    assert code == 0 and deployed.chat.received == []
    payload = json.loads(out.read_text())
    assert payload["attachments"][0]["content"]["version"] == "1.5"
    assert deployed.outbox_item(MESSAGE_ID) is None


def test_a_replaced_webhook_url_is_read_again_when_the_old_one_is_gone(deployed):
    deployed.seed_costs()
    deployed.invoke({"smoke_test": True, "scheduled_time": "2026-11-09T07:00:00Z"})  # warm: URL cached
    new_path = "/workflows/teams-new-token"
    deployed.aws.client("secretsmanager").put_secret_value(SecretId=TEAMS_SECRET,
                                                            SecretString=deployed.chat.url(new_path))  # fmt: skip
    deployed.chat.then(Reply(404, body="workflow not found"), Reply(202))
    result = deployed.invoke()
    assert len(result["delivered"]) == 1
    assert [r.path for r in deployed.chat.received][-2:] == [TEAMS_PATH, new_path]


def test_warm_runs_make_no_secrets_manager_call(deployed, monkeypatch):
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

    original, asked = SecretsProvider._get, []
    monkeypatch.setattr(
        SecretsProvider, "_get", lambda self, name, **kw: asked.append(name) or original(self, name, **kw)
    )
    deployed.seed_costs()
    for day in ("2026-11-02", "2026-11-09", "2026-11-16"):
        deployed.invoke({"smoke_test": True, "scheduled_time": f"{day}T07:00:00Z"})
    assert asked == [TEAMS_SECRET]  # the cold start only


def test_month_to_date_and_forecast_are_published_for_the_dashboard(deployed, capsys):
    deployed.seed_costs()
    result = deployed.invoke()
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"MonthToDateSpend"' in line]
    assert emf["MonthToDateSpend"] == [float(round(Decimal(result["month_to_date"]), 2))]
    assert emf["ForecastMonthEnd"][0] > emf["MonthToDateSpend"][0] and emf["WeeklyReportPosted"] == [1.0]


def test_a_smoke_test_neither_counts_as_the_weekly_report_nor_feeds_the_dashboard(deployed, capsys):
    deployed.invoke({"smoke_test": True, "scheduled_time": "2026-11-09T07:00:00Z"})
    out = capsys.readouterr().out
    assert '"_aws"' in out and "WeeklyReportPosted" not in out and "MonthToDateSpend" not in out


def test_with_kpi_metrics_off_only_the_deadline_alarms_metric_is_sent_and_the_kpis_are_logged(
    deployed, capsys, monkeypatch
):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")  # as the stack sets it without dashboards
    deployed.seed_costs()
    capsys.readouterr()
    with logged_by("weekly_report") as logged:
        result = deployed.invoke()

    assert emitted_metrics(capsys.readouterr().out) == {"WeeklyReportPosted"}
    line = logged.extra_of("weekly report delivered")
    assert (line["month_to_date"], line["currency"], line["cost_explorer_requests"]) == (
        result["month_to_date"], "USD", 2
    )  # fmt: skip
    assert Decimal(line["forecast_month_end"]) > Decimal(line["month_to_date"])


def test_with_kpi_metrics_on_the_dashboard_kpis_are_sent_too(deployed, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "on")
    deployed.seed_costs()
    capsys.readouterr()
    deployed.invoke()

    assert emitted_metrics(capsys.readouterr().out) == {
        "WeeklyReportPosted", "MonthToDateSpend", "ForecastMonthEnd", "CostExplorerRequests"
    }  # fmt: skip
