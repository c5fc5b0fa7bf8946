"""The budget guard handler and the `budgets` CLI against moto (DynamoDB, SNS, SQS, EventBridge,
Secrets Manager, Cost Explorer seeded per request) and a loopback Teams endpoint."""

from __future__ import annotations

import io
import json
import sys
import threading
from decimal import Decimal

import pytest
from finops_guard import cli
from finops_guard.core.periods import report_window
from finops_guard.costs import runtime
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import evaluate
from finops_guard.costs.budgets import parse_budget
from finops_guard.costs.cards.common import FORECAST_TITLE
from finops_guard.costs.mock_data import synthetic_query_pages

from tests.conftest import load_handler
from tests.integration.conftest import FIRED_AT, FakeContext, emitted_metrics, logged_by

pytestmark = pytest.mark.integration
AS_OF = report_window(FIRED_AT).as_of  # 2026-11-15
DATA_ACCOUNT = "222222222222"


def actual_spend(document: dict) -> Decimal:
    """What the synthetic organisation spent inside a scope this month (to size test budgets)."""
    budget = parse_budget({**document, "amount": "1", "currency": "USD"})
    query = plan_queries([budget], AS_OF, 28)[0]
    costs = collect_budget_costs(query, synthetic_query_pages(query.request()), AS_OF)[budget.budget_id]
    return evaluate(costs, AS_OF).actual


@pytest.fixture
def guard(deployed, monkeypatch):
    budgets_table, alerts_table = deployed.aws.create_budget_tables()
    topic, email_queue = deployed.aws.alert_topic_with_capture()
    events_queue = deployed.aws.budget_exceeded_capture()
    for key, value in {
        "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
        "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
        "FINOPSGUARD_ALERT_TOPIC_ARN": topic,
        "POWERTOOLS_SERVICE_NAME": "budget-guard",
    }.items():
        monkeypatch.setenv(key, value)
    runtime.settings.cache_clear()
    runtime.budget_table.cache_clear()
    runtime.budget_alert_table.cache_clear()
    runtime.event_publisher.cache_clear()
    deployed.email_queue, deployed.events_queue = email_queue, events_queue
    return deployed


def write_budgets(tmp_path, documents) -> str:
    path = tmp_path / "budgets.json"
    path.write_text(json.dumps({"budgets": documents}))
    return str(path)


def apply(tmp_path, documents) -> int:
    return cli.main(["budgets", "apply", write_budgets(tmp_path, documents), "--stage", "test"])


def invoke_guard(deployed, budget_documents) -> dict:
    budgets = [parse_budget(d) for d in budget_documents]
    deployed.aws.seed_budget_costs(budgets, AS_OF)
    event = {"job": "budget-guard", "scheduled_time": "2026-11-16T09:00:00Z"}
    return load_handler("budget_guard").lambda_handler(event, FakeContext("finops-guard-test-budget-guard"))


def data_budget(amount: Decimal, **extra) -> dict:
    return {
        "id": "data-account",
        "name": "Data platform",
        "scope": {"account": [DATA_ACCOUNT]},
        "amount": str(amount),
        "currency": "USD",
        "alert_on": ["actual"],
        "notify": ["teams", "email"],
        **extra,
    }


def test_a_crossed_threshold_alerts_once_in_teams_and_by_email(guard, tmp_path):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    documents = [data_budget((spent / Decimal("0.93")).quantize(Decimal("1")))]  # ~93 % used
    assert apply(tmp_path, documents) == 0
    first = invoke_guard(guard, documents)
    assert first["fired"] == ["data-account:actual:90"]
    card = guard.chat.received[0].json()["attachments"][0]["content"]
    assert "Data platform" in card["body"][0]["text"] and "crossed 90 %" in card["body"][0]["text"]
    emails = guard.aws.drain(guard.email_queue)
    assert len(emails) == 1 and emails[0]["Subject"].startswith("Budget alert: Data platform")
    second = invoke_guard(guard, documents)
    assert second["fired"] == [] and len(guard.chat.received) == 1
    assert guard.aws.drain(guard.email_queue) == []


def test_fifty_budgets_over_three_scope_kinds_cost_at_most_three_requests(guard, tmp_path):
    accounts = [{"id": f"a{i}", "amount": "100000", "currency": "USD", "scope": {"account": [f"{i:012d}"]}}
                for i in range(1, 21)]  # fmt: skip
    services = [{"id": f"s{i}", "amount": "100000", "currency": "USD", "scope": {"service": [f"Service {i}"]}}
                for i in range(20)]  # fmt: skip
    teams = [{"id": f"t{i}", "amount": "100000", "currency": "USD", "scope": {"tag": {"Team": [f"team{i}"]}}}
             for i in range(10)]  # fmt: skip
    documents = accounts + services + teams
    assert apply(tmp_path, documents) == 0
    result = invoke_guard(guard, documents)
    assert result["budgets"] == 50
    assert len(guard.ce_requests) == result["cost_explorer_requests"] <= 3
    assert {tuple(g["Key"] for g in r["GroupBy"]) for r in guard.ce_requests} == {
        ("LINKED_ACCOUNT", "SERVICE"),
        ("Team", "SERVICE"),
    }


def test_two_concurrent_guard_runs_alert_once(guard, tmp_path):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    documents = [data_budget((spent / Decimal("0.8")).quantize(Decimal("1")), notify=["teams"])]
    apply(tmp_path, documents)
    budgets = [parse_budget(d) for d in documents]
    guard.aws.seed_budget_costs(budgets, AS_OF)
    handler = load_handler("budget_guard")
    results, errors = [], []

    def run():
        try:
            event = {"scheduled_time": "2026-11-16T09:00:00Z"}
            results.append(handler.lambda_handler(event, FakeContext("guard")))
        except Exception as error:  # pragma: no cover - surfaced by the assert
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(len(r["fired"]) for r in results) == [0, 1]
    assert len(guard.chat.received) == 1


def test_hard_limit_publishes_budget_exceeded_to_the_default_bus(guard, tmp_path):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    amount = (spent * Decimal("0.9")).quantize(Decimal("1"))  # 111 % used
    documents = [data_budget(amount, enforce_hard_limit=True, owner="data-lead@example.com", notify=["teams"])]
    apply(tmp_path, documents)
    result = invoke_guard(guard, documents)
    assert result["events"] == 1 and "data-account:hard-limit:100" in result["fired"]
    events = guard.aws.drain(guard.events_queue)
    assert len(events) == 1
    event = events[0]
    assert (event["source"], event["detail-type"]) == ("finops.guard", "Budget Exceeded")
    detail = event["detail"]
    assert detail["budgetId"] == "data-account" and detail["amount"] == str(amount)
    assert detail["period"] == {
        "kind": "monthly",
        "key": "2026-11",
        "start": "2026-11-01",
        "end": "2026-11-30",
        "asOf": "2026-11-15",
    }
    assert Decimal(detail["actual"]) == spent.quantize(Decimal("0.01"))
    assert Decimal(detail["consumptionPercent"]) >= 100
    invoke_guard(guard, documents)
    assert guard.aws.drain(guard.events_queue) == []  # once per period


def test_raising_the_amount_rearms_thresholds(guard, tmp_path):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    documents = [data_budget((spent / Decimal("0.95")).quantize(Decimal("1")), notify=["teams"])]
    apply(tmp_path, documents)
    assert invoke_guard(guard, documents)["fired"] == ["data-account:actual:90"]
    raised = [data_budget((spent / Decimal("0.6")).quantize(Decimal("1")), notify=["teams"])]
    apply(tmp_path, raised)
    result = invoke_guard(guard, raised)
    assert sorted(result["rearmed"]) == ["data-account:2026-11#actual#75", "data-account:2026-11#actual#90"]
    assert result["fired"] == []


def test_currency_mismatch_is_refused_and_reported(guard, tmp_path):
    documents = [{"id": "eur", "amount": "1000", "currency": "EUR"}]
    apply(tmp_path, documents)
    result = invoke_guard(guard, documents)
    assert "refusing to compare" in result["errors"]["eur"] and result["fired"] == []


def test_budgets_apply_is_idempotent(guard, tmp_path, capsys):
    documents = [data_budget(Decimal("5000")), {"id": "org", "amount": "90000", "currency": "USD"}]
    assert apply(tmp_path, documents) == 0
    assert "2 created, 0 updated, 0 unchanged, 0 removed" in capsys.readouterr().out
    writes = []
    runtime.budget_table("finops-guard-test-budgets").client.meta.events.register(
        "before-call.dynamodb.PutItem", lambda **_: writes.append(1)
    )
    assert apply(tmp_path, documents) == 0
    assert "0 created, 0 updated, 2 unchanged, 0 removed" in capsys.readouterr().out
    assert writes == []
    documents[1]["amount"] = "95000"
    apply(tmp_path, documents)
    assert "0 created, 1 updated, 1 unchanged" in capsys.readouterr().out and writes == [1]


ORG = {"id": "org", "amount": "90000", "currency": "USD"}
WEB = {"id": "web", "amount": "1500", "currency": "USD"}


class Terminal(io.StringIO):
    """Standard input on a terminal, with what the operator types."""

    def isatty(self) -> bool:
        return True


def stored_ids() -> list[str]:
    return sorted(b.budget_id for b, _ in runtime.budget_table("finops-guard-test-budgets").all_with_documents())


def apply_with(tmp_path, documents, *flags: str) -> int:
    return cli.main(["budgets", "apply", write_budgets(tmp_path, documents), "--stage", "test", *flags])


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(guard, tmp_path, capsys):
    apply(tmp_path, [data_budget(Decimal("5000")), ORG])
    capsys.readouterr()

    code = apply_with(tmp_path, [data_budget(Decimal("6000")), WEB], "--prune", "--dry-run")

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "dry run, nothing written: would create 1, would update 1, would remove 1, unchanged 0",
        "  would create: web", "  would update: data-account", "  would remove: org",
    ]  # fmt: skip
    assert stored_ids() == ["data-account", "org"]


def test_prune_without_a_terminal_is_refused_naming_yes_and_writes_nothing(guard, tmp_path, capsys, monkeypatch):
    apply(tmp_path, [data_budget(Decimal("5000")), ORG])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))

    code = apply_with(tmp_path, [WEB], "--prune")

    assert code == 2
    assert capsys.readouterr().err == (
        "finops-guard: --prune would remove 2 budgets not in the file (data-account, org); pass --yes to confirm"
        " (no terminal to ask on); --dry-run shows every change\n"
    )
    assert stored_ids() == ["data-account", "org"]


def test_prune_with_yes_removes_the_budgets_not_in_the_file(guard, tmp_path, capsys, monkeypatch):
    apply(tmp_path, [data_budget(Decimal("5000")), ORG])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    assert apply_with(tmp_path, [WEB], "--prune", "--yes") == 0

    assert "1 created, 0 updated, 0 unchanged, 2 removed" in capsys.readouterr().out
    assert stored_ids() == ["web"]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("y\n", ["web"]),
        ("n\n", ["data-account", "org"]),
        ("\n", ["data-account", "org"]),
        ("", ["data-account", "org"]),
    ],
)
def test_prune_on_a_terminal_lists_the_removals_and_asks(typed, kept, guard, tmp_path, capsys, monkeypatch):
    apply(tmp_path, [data_budget(Decimal("5000")), ORG])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", Terminal(typed))

    code = apply_with(tmp_path, [WEB], "--prune")

    out = capsys.readouterr()
    assert "  would remove: data-account\n  would remove: org\nremove 2 budgets not in the file? [y/N] " in out.out
    assert (code, stored_ids()) == ((0, kept) if typed == "y\n" else (1, kept))
    if code == 1:
        assert out.err == "not confirmed: nothing written\n"


def test_a_file_without_budgets_and_prune_needs_yes_even_on_a_terminal(guard, tmp_path, capsys, monkeypatch):
    apply(tmp_path, [ORG])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))

    assert apply_with(tmp_path, [], "--prune") == 2
    assert capsys.readouterr().err == (
        "finops-guard: the file has no budgets: --prune would remove all 1 budget; pass --yes if that is meant\n"
    )
    assert stored_ids() == ["org"]
    assert apply_with(tmp_path, [], "--prune", "--yes") == 0
    assert stored_ids() == []


def test_budgets_add_list_show_remove(guard, capsys):
    base = ["--stage", "test"]
    assert cli.main(["budgets", "add", "--id", "web", "--amount", "1500", "--currency", "usd",
                     "--scope", "tag:team=web", "--thresholds", "80,100", *base]) == 0  # fmt: skip
    assert cli.main(["budgets", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "web\tmonthly\t$1,500.00\t80/100 %\ttag team=web" in out
    assert cli.main(["budgets", "show", "web", *base]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["budget"]["scope"] == {"tag": {"team": ["web"]}} and shown["status"] is None
    assert cli.main(["budgets", "add", "--id", "web", "--amount", "1", "--currency", "USD", *base]) == 2
    assert cli.main(["budgets", "remove", "web", *base]) == 0
    assert cli.main(["budgets", "remove", "web", *base]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "-10", "--currency", "USD"], "budget.amount: '-10' must be greater than zero"),
        (["--amount", "10", "--currency", "DOLLARS"], "budget.currency: 'DOLLARS' is not an ISO 4217"),
        (["--amount", "10", "--currency", "USD", "--scope", "region=eu-west-1"], "unknown scope kind 'region'"),
        (["--amount", "10", "--currency", "USD", "--thresholds", "50,2000"], "2000 is outside 1..1000"),
    ],
)
def test_cli_refuses_invalid_budgets_naming_the_field(guard, capsys, args, message):
    assert cli.main(["budgets", "add", "--id", "bad", "--stage", "test", *args]) == 2
    assert message in capsys.readouterr().err
    assert cli.main(["budgets", "list", "--stage", "test"]) == 0
    assert "no budgets" in capsys.readouterr().out


def test_weekly_card_shows_every_budget_the_guard_evaluated(guard, tmp_path):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    documents = [
        data_budget((spent / Decimal("0.5")).quantize(Decimal("1")), notify=["teams"]),
        {"id": "org", "name": "Whole organisation", "amount": "1000000", "currency": "USD", "alert_on": ["actual"]},
    ]
    apply(tmp_path, documents)
    invoke_guard(guard, documents)
    guard.chat.clear()
    guard.seed_costs()
    guard.invoke()  # the weekly report, same deployment
    card = guard.chat.received[0].json()["attachments"][0]["content"]
    section = next(i for i, e in enumerate(card["body"]) if e.get("text", "").startswith("Budgets (2)"))
    facts = card["body"][section + 1]["facts"]
    assert [f["title"] for f in facts] == ["Data platform", "Whole organisation"]
    assert "(50 %) of" in facts[0]["value"] and facts[0]["value"].endswith("· Nov 2026")
    # The organisation's budget states the month-end the card's own KPI states: one forecast, one figure.
    kpis = next(e["facts"] for e in card["body"] if e["type"] == "FactSet")
    forecast = next(f["value"] for f in kpis if f["title"] == FORECAST_TITLE).split(" likely")[0]
    assert facts[1]["value"].startswith(f"forecast {forecast} (")


def test_a_corrupted_stored_budget_is_skipped_named_and_the_others_still_guarded(guard, tmp_path):
    from finops_guard.costs.budgets import InvalidStoredBudgets

    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    documents = [data_budget((spent / Decimal("0.93")).quantize(Decimal("1")), notify=["teams"])]
    apply(tmp_path, documents)
    guard.aws.client("dynamodb").put_item(  # a hand edit gone wrong
        TableName="finops-guard-test-budgets",
        Item={
            "pk": {"S": "BUDGET"},
            "budget_id": {"S": "broken"},
            "document": {"S": '{"id": "broken", "amount": "-1"}'},
        },
    )
    with pytest.raises(InvalidStoredBudgets, match="stored budget broken.amount"):
        invoke_guard(guard, documents)
    assert len(guard.chat.received) == 1  # the valid budget still alerted


def test_weekly_card_still_posts_when_budgets_cannot_be_read(guard):
    guard.aws.client("dynamodb").delete_table(TableName="finops-guard-test-budgets")
    guard.seed_costs()
    result = guard.invoke()
    assert result["delivered"] == ["weekly-report/2026-11-15/teams"]
    assert "budgets could not be read" in guard.logs.getvalue()


def test_each_budgets_consumption_is_published_for_the_dashboard(guard, tmp_path, capsys):
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    amount = (spent / Decimal("0.5")).quantize(Decimal("1"))  # about half used
    documents = [data_budget(amount)]
    assert apply(tmp_path, documents) == 0
    capsys.readouterr()
    invoke_guard(guard, documents)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "BudgetConsumptionPercent" in line]
    [emf] = [line for line in lines if "_aws" in line]
    assert emf["budget"] == "data-account" and emf["service"] == "budget-guard"
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FinOpsGuard"
    assert emf["BudgetConsumptionPercent"] == [float(round(spent / amount * 100, 1))]


def test_with_kpi_metrics_off_no_budget_metric_is_sent_and_the_consumption_is_logged(
    guard, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    spent = actual_spend({"id": "x", "scope": {"account": [DATA_ACCOUNT]}})
    amount = (spent / Decimal("0.93")).quantize(Decimal("1"))  # crosses 90 %: an alert fires
    documents = [data_budget(amount)]
    assert apply(tmp_path, documents) == 0
    capsys.readouterr()
    with logged_by("budget_guard") as logged:
        result = invoke_guard(guard, documents)

    assert result["fired"] == ["data-account:actual:90"]
    assert emitted_metrics(capsys.readouterr().out) == set()
    line = logged.extra_of("budgets guarded")
    assert line["consumption_percent"] == {"data-account": float(round(spent / amount * 100, 1))}
    assert (line["budgets"], line["fired"], line["errors"]) == (1, ["data-account:actual:90"], 0)
    assert line["cost_explorer_requests"] == result["cost_explorer_requests"]


def test_with_kpi_metrics_off_a_corrupted_stored_budget_is_still_counted(guard, tmp_path, capsys, monkeypatch):
    from finops_guard.costs.budgets import InvalidStoredBudgets

    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    documents = [data_budget(Decimal("100000000"), notify=["teams"])]
    apply(tmp_path, documents)
    guard.aws.client("dynamodb").put_item(
        TableName="finops-guard-test-budgets",
        Item={"pk": {"S": "BUDGET"}, "budget_id": {"S": "broken"}, "document": {"S": '{"id": "broken"}'}},
    )
    capsys.readouterr()
    with pytest.raises(InvalidStoredBudgets):
        invoke_guard(guard, documents)

    assert emitted_metrics(capsys.readouterr().out) == {"InvalidStoredBudgets"}


def test_apply_warns_about_a_service_name_it_does_not_know_and_refuses_an_alias(guard, tmp_path, capsys):
    unknown = [{"id": "new", "amount": "100", "currency": "USD", "scope": {"service": ["Amazon Quantum Ledger X"]}}]
    alias = [{"id": "ec2", "amount": "100", "currency": "USD", "scope": {"service": ["Amazon EC2"]}}]

    assert apply(tmp_path, unknown) == 0
    warned = capsys.readouterr().err
    assert apply(tmp_path, alias) == 2
    refused = capsys.readouterr().err

    assert warned.startswith("finops-guard: warning: ") and "Amazon Quantum Ledger X" in warned
    assert "did you mean 'Amazon Elastic Compute Cloud - Compute'?" in refused and refused.count("\n") == 1
    stored = guard.aws.client("dynamodb").scan(TableName="finops-guard-test-budgets")["Items"]
    assert [item["budget_id"]["S"] for item in stored] == ["new"]
