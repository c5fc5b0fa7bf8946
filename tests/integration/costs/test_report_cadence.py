"""The daily digest and the month-close report end to end (issue 22): the budget guard and the
chargeback handlers on the embedded AWS (DynamoDB, S3, Secrets Manager, Cost Explorer seeded per
request) with a loopback Teams webhook."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest
import requests
from finops_guard.costs import cadence_runtime, runtime
from finops_guard.costs.budget_costs import plan_queries
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.chargeback import Month, chargeback_request
from finops_guard.costs.mock_data import synthetic_query_pages
from finops_guard.costs.month_close import history_request

from devtools.lambda_runner import FakeContext
from tests.conftest import load_handler
from tests.integration.costs import test_budget_guard_handler as budget_guard_tests
from tests.integration.costs.test_budget_guard_handler import apply

guard = budget_guard_tests.guard  # the budget guard's deployment fixture, shared

pytestmark = pytest.mark.integration
ORG = {"id": "org", "name": "Whole organisation", "amount": "250000", "currency": "USD"}
GUARD_EVENT = {"job": "budget-guard", "scheduled_time": "2026-11-16T09:00:00Z"}  # the day: Sun 15 Nov 2026
DAY = date(2026, 11, 15)


def invoke_guard(event: dict = GUARD_EVENT) -> dict:
    return load_handler("budget_guard").lambda_handler(event, FakeContext("finops-guard-test-budget-guard"))


def seed_guard(deployed, documents, as_of: date, *, final: bool = False) -> None:
    pages = [p for q in plan_queries([parse_budget(d) for d in documents], as_of)
             for p in synthetic_query_pages(q.request())]  # fmt: skip
    deployed.aws.seed_cost_and_usage([finalised(p) for p in pages] if final else pages)


def finalised(page: dict) -> dict:
    """A page as Cost Explorer answers once the invoice is final: nothing estimated."""
    copied = copy.deepcopy(page)
    for result in copied["ResultsByTime"]:
        result["Estimated"] = False
    return copied


def digest_cards(deployed) -> list:
    return [r for r in deployed.chat.received if "Daily cost digest" in r.body.decode()]


@pytest.fixture
def digest(request, monkeypatch):
    deployed = request.getfixturevalue("guard")
    table = deployed.aws.create_anomalies_table()
    for key, value in {
        "FINOPSGUARD_DAILY_DIGEST": '["default"]',
        "FINOPSGUARD_ANOMALIES_TABLE": table,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()
    cadence_runtime.cadence_settings.cache_clear()
    deployed.anomalies_table = table
    yield deployed
    cadence_runtime.cadence_settings.cache_clear()


def test_a_loud_day_posts_one_digest_naming_its_day_with_no_cost_explorer_request_of_its_own(digest, tmp_path):
    assert apply(tmp_path, [ORG]) == 0
    seed_guard(digest, [ORG], DAY)
    result = invoke_guard()
    assert result["digest"] == {"posted": ["default"], "quiet": [], "delivered": ["daily-digest/2026-11-15/teams"]}
    # The guard's one request for its budget, and nothing more: the digest read the same pages.
    assert len(digest.ce_requests) == result["cost_explorer_requests"] == len(plan_queries([parse_budget(ORG)], DAY))
    [card] = digest_cards(digest)
    body = card.json()["attachments"][0]["content"]["body"]
    assert body[0]["text"] == "Daily cost digest · Sun 15 Nov 2026"
    assert "Amazon SageMaker" in card.body.decode()  # the synthetic spike


def test_a_rerun_of_the_same_day_posts_no_second_digest(digest, tmp_path):
    apply(tmp_path, [ORG])
    seed_guard(digest, [ORG], DAY)
    invoke_guard()
    again = invoke_guard()
    assert again["digest"]["delivered"] == [] and len(digest_cards(digest)) == 1


def test_a_quiet_day_posts_nothing_and_says_so_in_the_log(digest, tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_DIGEST_MIN_SHARE", "1000")
    monkeypatch.setenv("FINOPSGUARD_DIGEST_MIN_AMOUNT", "1000000")
    cadence_runtime.cadence_settings.cache_clear()
    apply(tmp_path, [ORG])
    seed_guard(digest, [ORG], DAY)
    result = invoke_guard()
    assert result["digest"] == {"posted": [], "quiet": ["default"], "delivered": []}
    assert digest_cards(digest) == []
    assert "daily digest quiet: nothing to report, nothing posted" in digest.logs.getvalue()


def test_an_anomaly_opened_on_the_day_makes_a_quiet_day_post(digest, tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_DIGEST_MIN_SHARE", "1000")
    monkeypatch.setenv("FINOPSGUARD_DIGEST_MIN_AMOUNT", "1000000")
    cadence_runtime.cadence_settings.cache_clear()
    dynamodb = digest.aws.client("dynamodb")
    for anomaly_id, first_seen, alerted in (("opened", "2026-11-15T10:04:00+00:00", True),
                                            ("yesterday", "2026-11-14T23:59:59+00:00", True),
                                            ("too-small", "2026-11-15T11:00:00+00:00", False)):  # fmt: skip
        item = {"anomaly_id": {"S": anomaly_id}, "first_seen": {"S": first_seen}, "service": {"S": "AWS Lambda"},
                "account_id": {"S": "222222222222"}, "last_impact": {"N": "321.5"}}  # fmt: skip
        if alerted:
            item["impact_alerted"] = {"N": "321.5"}
        dynamodb.put_item(TableName=digest.anomalies_table, Item=item)
    apply(tmp_path, [ORG])
    seed_guard(digest, [ORG], DAY)
    result = invoke_guard()
    assert result["digest"]["posted"] == ["default"]
    [card] = digest_cards(digest)
    text = card.body.decode()
    assert "1 anomaly opened" in text and "$321.50" in text and "prod-data (222222222222)" in text


# --- the month-close report --------------------------------------------------------------------------------

OCT = Month(2026, 10)
CHARGEBACK_EVENT = {"job": "chargeback", "scheduled_time": "2026-11-01T08:00:00Z"}  # 09:00 in Madrid
TEAM_BUDGET = {"id": "web", "name": "Team web", "amount": "9000", "currency": "USD",
               "scope": {"tag": {"Team": ["web"]}}}  # fmt: skip


@pytest.fixture
def month_close(request, monkeypatch):
    deployed = request.getfixturevalue("guard")
    bucket = deployed.aws.create_export_bucket()
    for key, value in {
        "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team",
        "FINOPSGUARD_CHARGEBACK_BUCKET": bucket,
        "FINOPSGUARD_MONTH_CLOSE_REPORT": "true",
        "FINOPSGUARD_BUDGET_ADJUST_THRESHOLD": "10",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()
    runtime.export_bucket.cache_clear()
    cadence_runtime.cadence_settings.cache_clear()
    deployed.bucket = bucket
    yield deployed
    cadence_runtime.cadence_settings.cache_clear()


def seed_chargeback_and_close(deployed, documents, *, final: bool = False) -> None:
    """The chargeback's request, then the month-close's: history, then the budgets as of 31 Oct."""
    pages = synthetic_query_pages(chargeback_request(parse_team(), OCT))
    pages += synthetic_query_pages(history_request(OCT, date(2026, 11, 1)))
    pages += [p for q in plan_queries([parse_budget(d) for d in documents], date(2026, 10, 31))
              for p in synthetic_query_pages(q.request())]  # fmt: skip
    deployed.aws.seed_cost_and_usage([finalised(p) for p in pages] if final else pages)


def parse_team():
    from finops_guard.costs.teams import parse_dimension

    return parse_dimension("tag:Team")


def invoke_chargeback() -> dict:
    return load_handler("chargeback").lambda_handler(CHARGEBACK_EVENT, FakeContext("finops-guard-test-chargeback"))


def month_close_cards(deployed) -> list:
    return [r.json() for r in deployed.chat.received if "Month close" in r.body.decode()]


def test_provisional_on_the_1st_then_final_once_even_on_reruns(month_close, tmp_path):
    documents = [ORG, TEAM_BUDGET]
    assert apply(tmp_path, documents) == 0
    seed_chargeback_and_close(month_close, documents)
    first = invoke_chargeback()
    assert first["month_close"]["action"] == "posted provisional"
    # One Team dimension reused from the chargeback: 1 history + 1 budgets request of its own, beside the
    # chargeback's 2 (the Team usage, then the month's credits, refunds and tax).
    assert first["month_close"]["cost_explorer_requests"] == 2 and len(month_close.ce_requests) == 4
    assert invoke_chargeback()["month_close"]["action"] == "provisional report already posted"
    [provisional] = month_close_cards(month_close)
    assert provisional["attachments"][0]["content"]["body"][0]["text"] == "Month close · Oct 2026 · provisional"

    # 3 Nov: October's days are no longer estimated in the guard's pages (only its own last day is), so it
    # asks for the month again; Cost Explorer's month answers still say estimated: it waits, posting nothing.
    month_close.aws.forget_cost_and_usage()
    seed_guard(month_close, documents, date(2026, 11, 2))
    seed_history_then_budgets_then_team(month_close, documents, today=date(2026, 11, 3), final=False)
    waiting = invoke_guard({"scheduled_time": "2026-11-03T09:00:00Z"})
    assert waiting["month_close"]["action"] == "waiting for Cost Explorer to finalise the month"

    # 4 Nov: AWS finalised the invoice.
    month_close.aws.forget_cost_and_usage()
    seed_guard(month_close, documents, date(2026, 11, 3))
    seed_history_then_budgets_then_team(month_close, documents, today=date(2026, 11, 4))
    final = invoke_guard({"scheduled_time": "2026-11-04T09:00:00Z"})
    assert final["month_close"]["action"] == "posted final" and final["month_close"]["cost_explorer_requests"] == 3
    for scheduled in ("2026-11-04T09:00:00Z", "2026-11-05T09:00:00Z"):
        month_close.aws.forget_cost_and_usage()
        seed_guard(month_close, documents, date(2026, 11, int(scheduled[8:10]) - 1))
        assert invoke_guard({"scheduled_time": scheduled})["month_close"]["action"] == "final report already posted"
    assert invoke_chargeback()["month_close"]["action"] == "final report already posted"
    titles = [c["attachments"][0]["content"]["body"][0]["text"] for c in month_close_cards(month_close)]
    assert titles == ["Month close · Oct 2026 · provisional", "Month close · Oct 2026 · final"]


def seed_history_then_budgets_then_team(deployed, documents, *, today: date, final: bool = True) -> None:
    """The guard's month-close asks history, budgets, then the Team dimension (nothing reused)."""
    pages = synthetic_query_pages(history_request(OCT, today))
    pages += [p for q in plan_queries([parse_budget(d) for d in documents], date(2026, 10, 31))
              for p in synthetic_query_pages(q.request())]  # fmt: skip
    pages += synthetic_query_pages(chargeback_request(parse_team(), OCT))
    deployed.aws.seed_cost_and_usage([finalised(p) for p in pages] if final else pages)


def test_the_card_links_the_archived_html_and_csv_beside_the_chargeback(month_close, tmp_path):
    apply(tmp_path, [ORG])
    seed_chargeback_and_close(month_close, [ORG])
    invoke_chargeback()
    [card] = month_close_cards(month_close)
    actions = card["attachments"][0]["content"]["actions"]
    assert [a["title"] for a in actions] == ["Open the report (HTML)", "Download CSV"]
    html_page, csv_text = (requests.get(a["url"], timeout=5) for a in actions)
    assert html_page.headers["Content-Type"].startswith("text/html")
    assert "<h1>Month close · Oct 2026 · provisional</h1>" in html_page.text
    assert csv_text.text.startswith("month,status,section,name,metric,value,unit\r\n")
    s3 = month_close.aws.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=month_close.bucket)["Contents"]}
    assert {"chargeback/2026-10/month-close.csv", "chargeback/2026-10/month-close.html",
            "chargeback/2026-10/tag-team.csv"} <= keys  # fmt: skip


def test_the_budget_variance_on_the_card_is_the_exact_difference(month_close, tmp_path):
    apply(tmp_path, [ORG])
    seed_chargeback_and_close(month_close, [ORG])
    invoke_chargeback()
    stored = month_close.aws.client("dynamodb").get_item(
        TableName="finops-guard-test-budget-alerts",
        Key={"budget_id": {"S": "#month-close"}, "alert_key": {"S": "2026-10#provisional"}},
    )["Item"]
    report = json.loads(stored["report"]["S"])
    [budget] = report["budgets"]
    assert Decimal(budget["measured"]) - Decimal(budget["amount"]) == Decimal(budget["measured"]) - Decimal("250000")
    assert stored["announced"]["BOOL"] is True
