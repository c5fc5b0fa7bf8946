import json
from datetime import UTC, datetime
from decimal import Decimal as D

from finops_guard.core.cards import MAX_PAYLOAD_BYTES, payload_bytes
from finops_guard.core.periods import report_window
from finops_guard.costs.aggregate import aggregate_pages
from finops_guard.costs.cards.slack import MAX_BLOCKS, MAX_SECTION_TEXT, slack_payload
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.mock_data import synthetic_pages
from finops_guard.costs.report import build_weekly_report

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)


def build(accounts=None, services=None, budget=D("60000"), now=NOW, currency="USD"):
    window = report_window(now)
    pages = synthetic_pages(window.query_start, window.query_end, accounts=accounts, services=services, unit=currency)
    aggregate = aggregate_pages(pages, window)
    return build_weekly_report(
        aggregate, stage="prod", currency=currency, top_n=5, generated_at=now, monthly_budget=budget
    )


def card_of(payload):
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    return attachment["content"]


def elements(card, kind):
    return [e for e in card["body"] if e["type"] == kind]


def test_teams_payload_is_a_workflows_message_with_an_adaptive_card_1_5():
    payload = teams_payload(build(), "Europe/Madrid")
    assert payload["type"] == "message"
    card = card_of(payload)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card["actions"][0]["type"] == "Action.OpenUrl" and "cost-explorer" in card["actions"][0]["url"]


def test_teams_card_has_native_charts_each_with_a_fallback():
    card = card_of(teams_payload(build(), "UTC"))
    line = elements(card, "Chart.Line")[0]
    assert len(line["data"][0]["values"]) >= 14
    assert line["data"][0]["values"][-1]["x"].endswith("*")  # estimated last day marked
    bar = elements(card, "Chart.HorizontalBar")[0]
    assert len(bar["data"]) == 6  # top 5 + Other
    gauge = elements(card, "Chart.Gauge")[0]
    assert 0 <= gauge["value"] <= 100
    for chart in (line, bar, gauge):
        assert chart["fallback"]["type"] == "TextBlock"


def test_teams_card_kpi_factset_names_every_kpi():
    card = card_of(teams_payload(build(), "UTC"))
    titles = [f["title"] for f in elements(card, "FactSet")[0]["facts"]]
    assert titles == [
        "Month-to-date",
        "Daily burn",
        "Forecast month-end",  # one forecast; its value names the method
        "Week over week",
        "Next 30 / 60 / 90 days (same trend)",
        "Budget consumption",
        "Cost metric",
    ]
    trend = elements(card, "FactSet")[0]["facts"][2]["value"]
    assert "likely (80 % band: best $" in trend and ", worst $" in trend  # noisy data: a real band


def test_teams_card_without_budget_has_no_gauge_and_says_so():
    card = card_of(teams_payload(build(budget=None), "UTC"))
    assert not elements(card, "Chart.Gauge")
    facts = {f["title"]: f["value"] for f in elements(card, "FactSet")[0]["facts"]}
    assert facts["Budget"] == "no monthly budget configured"


def test_estimated_days_are_labelled():
    text = json.dumps(teams_payload(build(), "UTC"), ensure_ascii=False)
    assert "Estimated by Cost Explorer (may still change): Sun 15 Nov" in text


def test_chart_values_are_the_rounded_decimal_amounts():
    report = build()
    values = elements(card_of(teams_payload(report, "UTC")), "Chart.Line")[0]["data"][0]["values"]
    assert D(str(values[-1]["y"])) == report.daily[-1].amount.quantize(D("0.01"))


def large_org_report(accounts: int, services: int):
    """An aggregate as 1,000 accounts x 300 services would leave it (built directly: the card only
    depends on the summed totals, and streaming 4 M groups belongs in `make bench`)."""
    from finops_guard.costs.aggregate import CostAggregate, Totals

    window = report_window(datetime(2026, 11, 3, 7, tzinfo=UTC))
    aggregate = CostAggregate(window=window, currency="USD")
    long = "Amazon Elastic Compute Cloud - Compute with a very long marketplace product name"
    for i in range(services):
        aggregate.services[f"{long} {i}"] = Totals(D(f"{i}.123456"), D(i), D(i + 1))
    for i in range(accounts):
        aggregate.accounts[f"{i:012d}"] = Totals(D(f"{i}.5"), D(i), D(i))
        aggregate.account_names[f"{i:012d}"] = f"business-unit-{i}-" + "x" * 60
    for day in window.trend.each_day() + window.month_to_date.each_day():
        aggregate.daily[day] = D("123456789.987654321")
        aggregate.estimated_days.add(day)
    return build_weekly_report(
        aggregate, stage="prod", currency="USD", top_n=5, generated_at=NOW, monthly_budget=D("1")
    )


def test_card_stays_under_28kb_for_1000_accounts_and_300_services():
    report = large_org_report(1000, 300)
    payload = teams_payload(report, "UTC")
    assert payload_bytes(payload) <= MAX_PAYLOAD_BYTES
    assert len(report.top_accounts) == 6 and report.top_accounts[-1].name == "Other (995)"
    assert len(slack_payload(report, "UTC")["blocks"]) <= MAX_BLOCKS


def test_slack_payload_is_block_kit_within_limits():
    payload = slack_payload(build(), "UTC")
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header" and len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
    assert payload["text"].startswith("AWS cost report")
    assert any(b["type"] == "actions" for b in blocks)


def test_slack_escapes_names_that_look_like_markup():
    accounts = {"123456789012": "<!channel> & friends"}
    payload = slack_payload(build(accounts=accounts), "UTC")
    text = json.dumps(payload)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; friends" in text


def test_yen_report_shows_no_decimals():
    report = build(currency="JPY", budget=None)
    facts = elements(card_of(teams_payload(report, "Asia/Tokyo")), "FactSet")[0]["facts"]
    assert facts[0]["value"].startswith("¥") and "." not in facts[0]["value"].split(" ")[0]


def test_weekly_card_lists_stored_budgets_most_consumed_first():
    from dataclasses import replace

    from finops_guard.costs.report import BudgetLine

    lines = [
        BudgetLine("a", "Analytics", "2026-11", D("1000"), "USD", D("400"), D("800")),
        BudgetLine("b", "Batch", "2026-11", D("1000"), "USD", D("700"), D("1400")),
        BudgetLine("c", "New one", None, D("50"), "USD", None, None),
    ] + [BudgetLine(f"x{i}", f"Extra {i}", "2026-11", D("10"), "USD", D("1"), D("2")) for i in range(7)]
    from finops_guard.costs.report import budget_lines

    report = replace(build(), budgets=tuple(sorted(lines, key=lambda b: -(b.consumption(b.forecast) or -1))))
    card = card_of(teams_payload(report, "UTC"))
    titles = [e for e in card["body"] if e["type"] == "TextBlock" and e["text"].startswith("Budgets (10)")]
    assert titles, "budget section missing"
    facts = card["body"][card["body"].index(titles[0]) + 1]["facts"]
    assert facts[0] == {
        "title": "Batch",
        "value": "forecast $1,400.00 (140 %) · actual $700.00 (70 %) of $1,000.00 · Nov 2026",
    }
    assert facts[1]["title"] == "Analytics"
    assert facts[-1] == {"title": "…", "value": "2 more: finops-guard budgets list"}
    assert not any(f["title"] == "New one" for f in facts)  # unevaluated budgets sort last

    alone = replace(build(), budgets=(lines[2],))
    only = card_of(teams_payload(alone, "UTC"))["body"]
    assert only[-1]["facts"] == [{"title": "New one", "value": "not evaluated yet (the daily guard has not run)"}]
    assert budget_lines([], {}) == []


def test_budget_lines_join_statuses_and_sort_by_forecast_consumption():
    from types import SimpleNamespace

    from finops_guard.costs.report import budget_lines

    budgets = [SimpleNamespace(budget_id=i, name=i, amount=D("100"), currency="USD") for i in ("low", "high", "new")]
    statuses = {
        "low": {"period": "2026-11", "actual": "10", "forecast": "20"},
        "high": {"period": "2026-11", "actual": "60", "forecast": "120.5"},
    }
    lines = budget_lines(budgets, statuses)
    assert [line.budget_id for line in lines] == ["high", "low", "new"]
    assert lines[0].forecast == D("120.5") and lines[2].actual is None
