"""The first days after `cdk deploy`, end to end on moto and loopback chat: a webhook secret still
holding its placeholder is a setup step (the run completes, nothing pages, the message waits in the
outbox and goes out once the URL is put), and the card says what is not set up yet.

Cost Explorer's ListCostAllocationTags is not in moto: devtools.operation_stub answers it on the
handler's own client, validated against the service model, and counts the requests."""

from __future__ import annotations

import json

import pytest
from finops_guard import cli
from finops_guard.core.adapters import secrets
from finops_guard.core.periods import report_window
from finops_guard.costs import runtime
from finops_guard.costs.attribution import attribution_request
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.mock_data import synthetic_query_pages
from finops_guard.costs.teams import parse_dimension

from devtools.operation_stub import OperationStub, cost_allocation_tags
from devtools.sqs_events import sqs_event
from tests.conftest import load_event, load_handler
from tests.integration.conftest import FIRED_AT, SLACK_PATH, SLACK_SECRET, TEAMS_PATH, TEAMS_SECRET, FakeContext
from tests.integration.first_days_harness import PLACEHOLDER, Output, placeholder

pytestmark = pytest.mark.integration
WEEKLY = "weekly-report/2026-11-15/teams"
PUT_TEAMS = f"aws secretsmanager put-secret-value --secret-id {TEAMS_SECRET} --secret-string 'https://...'"


def put_url(deployment, secret: str, path: str) -> None:
    """The operator puts the real URL. The CLI runs in its own process: nothing of the function's
    cache carries over, so the cache is cleared as a new process would start without one."""
    deployment.aws.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=deployment.chat.url(path))
    secrets.clear_cache()


def status(deployment, message_id: str) -> str:
    return deployment.outbox_item(message_id)["status"]["S"]


# --- the weekly report ----------------------------------------------------------------------------


def test_a_weekly_report_whose_teams_secret_is_a_placeholder_completes_keeps_the_card_and_pages_nothing(
    deployed, capsys
):
    placeholder(deployed)
    deployed.seed_costs()

    result = deployed.invoke()  # no exception: no Lambda retry, no DLQ, no Errors alarm

    assert result["delivered"] == [] and result["not_configured"] == [WEEKLY]
    assert deployed.chat.received == []
    output = Output(deployed, capsys)
    assert output.metrics["ChatNotConfigured"] == 1
    assert "ChatDeliveryFailures" not in output.metrics and "WeeklyReportPosted" not in output.metrics  # not posted
    kept = deployed.outbox_item(WEEKLY)
    assert kept["status"]["S"] == "failed" and "not set up yet" in kept["last_error"]["S"]
    [warning] = output.setup_warnings
    assert PUT_TEAMS in warning["message"] and warning["secret_name"] == TEAMS_SECRET
    assert output.lines("ERROR") == [] and PLACEHOLDER not in output.text

    # The operator puts the URL; the report waiting in the outbox goes out as it was rendered.
    put_url(deployed, TEAMS_SECRET, TEAMS_PATH)
    assert cli.main(["report", "resend"]) == 0
    assert [r.path for r in deployed.chat.received] == [TEAMS_PATH]
    assert deployed.chat.received[0].json() == json.loads(kept["payload"]["S"])
    assert status(deployed, WEEKLY) == "delivered"


def test_a_report_resend_before_the_url_is_put_keeps_the_card_and_says_which_secret_to_fill(deployed, capsys):
    placeholder(deployed)
    deployed.seed_costs()
    deployed.invoke()
    secrets.clear_cache()
    assert cli.main(["report", "resend"]) == 1
    assert PUT_TEAMS in capsys.readouterr().err
    assert deployed.chat.received == [] and status(deployed, WEEKLY) == "failed"


def test_with_teams_set_up_and_slack_a_placeholder_teams_gets_its_card_saying_slack_is_not_set_up(
    deployed, monkeypatch, capsys
):
    deployed.aws.put_secret(SLACK_SECRET, PLACEHOLDER)
    monkeypatch.setenv("FINOPSGUARD_SLACK_SECRET_NAME", SLACK_SECRET)
    runtime.settings.cache_clear()
    deployed.seed_costs()

    result = deployed.invoke()

    assert result["delivered"] == [WEEKLY] and result["not_configured"] == ["weekly-report/2026-11-15/slack"]
    [teams_card] = deployed.chat.received
    texts = [b.get("text", "") for b in teams_card.json()["attachments"][0]["content"]["body"]]
    assert "Setup: 1 thing not set up yet" in texts
    assert "• Slack is not set up yet: this report waits for it in the outbox." in texts
    metrics = Output(deployed, capsys).metrics
    assert metrics["WeeklyReportPosted"] == 1 and metrics["ChatNotConfigured"] == 1
    assert "ChatDeliveryFailures" not in metrics

    put_url(deployed, SLACK_SECRET, SLACK_PATH)
    assert cli.main(["report", "resend"]) == 0
    slack = deployed.chat.received[-1]
    assert slack.path == SLACK_PATH and "not set up" not in slack.body.decode()  # its own card never says so


def test_a_warm_container_reads_a_placeholder_again_on_its_next_run(deployed, monkeypatch):
    placeholder(deployed)
    deployed.seed_costs()
    deployed.invoke()
    deployed.aws.client("secretsmanager").put_secret_value(SecretId=TEAMS_SECRET,
                                                            SecretString=deployed.chat.url(TEAMS_PATH))  # fmt: skip
    monkeypatch.setattr(secrets, "REFRESH_INTERVAL_S", 0.0)  # the next run comes a week later, not within a minute
    smoke = deployed.invoke({"smoke_test": True, "scheduled_time": "2026-11-23T07:00:00Z"})
    assert smoke["delivered"] == ["smoke-test/2026-11-23T07:00:00Z/teams"]


# --- cost allocation tags: asked only when a tag dimension attributes nothing ---------------------


@pytest.fixture
def attribution(deployed, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "tag:Team,tag:CostCenter")
    runtime.settings.cache_clear()
    with OperationStub(
        runtime._ce_client(), "list_cost_allocation_tags", cost_allocation_tags({"Team": "Inactive"})
    ) as stub:
        deployed.tags = stub
        yield deployed


def seed_attribution(deployed, *, untagged: str | None = None) -> None:
    """The main request's pages, then one page set per dimension; `untagged`: that tag is on nothing
    (Cost Explorer answers every group with the empty value, as it does for a tag never activated)."""
    deployed.seed_costs()
    window = report_window(FIRED_AT)
    pages = []
    for spec in ("tag:Team", "tag:CostCenter"):
        request = attribution_request(parse_dimension(spec), window.query_start, window.query_end, "DAILY")
        for page in synthetic_query_pages(request):
            if spec == untagged:
                for result in page["ResultsByTime"]:
                    for group in result["Groups"]:
                        group["Keys"][0] = group["Keys"][0].split("$")[0] + "$"
            pages.append(page)
    deployed.aws.seed_cost_and_usage(pages)


def test_a_healthy_account_makes_no_list_cost_allocation_tags_request(attribution):
    seed_attribution(attribution)
    result = attribution.invoke()
    assert attribution.tags.requests == []
    assert result["cost_explorer_requests"] == 3  # the main request and one per dimension, as before
    assert "Setup:" not in attribution.chat.received[0].body.decode()


def test_a_tag_dimension_that_is_all_untagged_costs_one_request_and_the_card_says_how_to_activate_it(attribution):
    seed_attribution(attribution, untagged="tag:Team")
    result = attribution.invoke()
    assert [r["TagKeys"] for r in attribution.tags.requests] == [["Team"]]
    assert result["cost_explorer_requests"] == 4
    texts = [b.get("text", "") for b in attribution.chat.received[0].json()["attachments"][0]["content"]["body"]]
    assert "• Tag `Team` is not active as a cost allocation tag." in texts
    fix = texts[texts.index("• Tag `Team` is not active as a cost allocation tag.") + 1]
    assert "aws ce update-cost-allocation-tags-status" in fix
    assert "aws ce start-cost-allocation-tag-backfill --backfill-from 2026-11-01T00:00:00Z" in fix


# --- alerts: the anomaly batch (SQS) and the budget guard -----------------------------------------


def test_an_anomaly_batch_whose_teams_secret_is_a_placeholder_is_acknowledged_and_the_card_redriven_later(
    deployed, monkeypatch, capsys
):
    monkeypatch.setenv("FINOPSGUARD_ANOMALIES_TABLE", deployed.aws.create_anomalies_table())
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "anomaly-alerts")
    runtime.settings.cache_clear()
    runtime.anomaly_table.cache_clear()
    placeholder(deployed)
    event = load_event("anomaly_eventbridge.json")
    body = json.dumps(event)

    handler = load_handler("anomaly_alerts")
    result = handler.lambda_handler(sqs_event([body]), FakeContext("finops-guard-test-anomaly-alerts"))

    assert result == {"batchItemFailures": []}  # not retried into the DLQ: the card is safe in the outbox
    output = Output(deployed, capsys)
    assert output.metrics["ChatNotConfigured"] == 1 and "ChatDeliveryFailures" not in output.metrics
    assert "AnomalyForwardingLatency" not in output.metrics  # nothing was posted
    [kept] = deployed.aws.client("dynamodb").scan(TableName=deployed.table)["Items"]
    assert kept["status"]["S"] == "failed" and kept["kind"]["S"] == "cost-anomaly"
    [warning] = output.setup_warnings
    assert PUT_TEAMS in warning["message"] and output.lines("ERROR") == []

    put_url(deployed, TEAMS_SECRET, TEAMS_PATH)
    assert cli.main(["outbox", "redrive", "--stage", "test"]) == 0
    [card] = deployed.chat.received
    assert card.json() == json.loads(kept["payload"]["S"])
    # A later sighting of the same anomaly (not grown) posts nothing more.
    handler.lambda_handler(sqs_event([body]), FakeContext("finops-guard-test-anomaly-alerts"))
    assert len(deployed.chat.received) == 1


def test_a_budget_alert_waits_for_a_teams_secret_that_is_a_placeholder_and_the_next_run_sends_it(
    deployed, monkeypatch, capsys
):
    budgets_table, alerts_table = deployed.aws.create_budget_tables()
    for key, value in {
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "POWERTOOLS_SERVICE_NAME": "budget-guard",
    }.items():
        monkeypatch.setenv(key, value)
    for cached in (runtime.settings, runtime.budget_table, runtime.budget_alert_table):
        cached.cache_clear()
    from finops_guard.costs.adapters.budget_store import BudgetTable

    budget = parse_budget({"id": "tiny", "amount": "1", "currency": "USD", "alert_on": ["actual"], "notify": ["teams"]})
    BudgetTable(budgets_table, deployed.aws.client("dynamodb")).put_many([budget], now=FIRED_AT)
    deployed.aws.seed_budget_costs([budget], report_window(FIRED_AT).as_of)
    placeholder(deployed)
    event = {"scheduled_time": "2026-11-16T09:00:00Z"}
    handler = load_handler("budget_guard")

    first = handler.lambda_handler(event, FakeContext("finops-guard-test-budget-guard"))

    assert first["fired"] and first["delivered"] == [] and len(first["not_configured"]) == 1
    output = Output(deployed, capsys)
    assert output.metrics["ChatNotConfigured"] == 1 and "ChatDeliveryFailures" not in output.metrics
    assert len(output.setup_warnings) == 1 and output.lines("ERROR") == []
    assert deployed.chat.received == [] and status(deployed, first["not_configured"][0]) == "failed"

    # The URL is put; the guard's next run re-sends the alert it still owes (no operator command needed).
    put_url(deployed, TEAMS_SECRET, TEAMS_PATH)
    second = handler.lambda_handler(event, FakeContext("finops-guard-test-budget-guard"))
    assert second["fired"] == [] and second["delivered"] == first["not_configured"]
    assert len(deployed.chat.received) == 1
