"""The savings section of the weekly card: exact rows for a known summary, in Teams and Slack."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from finops_guard.core.periods import DateRange
from finops_guard.costs.cards.savings import rows, slack_section, teams_section
from finops_guard.costs.savings import DISMISSED, IMPLEMENTED, CommitmentKpi, summarize

from tests.unit.costs.test_savings import AS_OF, known_items, rec

KPI = CommitmentKpi(DateRange(date(2026, 11, 1), AS_OF), "USD", D("0.6"), D(300), D(200), D("0.975"), D("88.10"))
EXPECTED_ROWS = [
    ("Open savings (estimated)", "$109.03 / month · 3 open, 1 accepted"),
    ("1. i-a", "$61.32 / month · Rightsize m5.xlarge → m5.large · low effort"),
    ("2. i-c", "$30.37 / month · Rightsize m5.xlarge → m5.large · low effort"),
    ("3. i-b", "$12.34 / month · Rightsize m5.xlarge → m5.large · very low effort"),
    ("Realised this month", "$36.00 from 1 item (measured 14 days before/after) · 1 item measuring"),
    ("ROI: i-f", "estimated $20.00 / month · measuring (5/14 days)"),
    ("ROI: i-e", "estimated $50.00 / month · realised $182.50 / month"),
    ("Savings Plans, month-to-date", "coverage 60 % · utilisation 97 % · net savings $88.10"),
    (
        "By status",
        "open 3 · accepted 1 · implemented 2 · dismissed 1 · resolved upstream 1 (finops-guard savings list)",
    ),
]


def known_summary():
    return summarize(known_items(), AS_OF, currency="USD", commitment=KPI)


def test_a_known_summary_reads_as_these_rows():
    assert rows(known_summary(), "USD") == EXPECTED_ROWS


def test_the_teams_section_is_a_heading_and_one_factset_of_those_rows():
    assert teams_section(known_summary(), "USD") == [
        {"type": "TextBlock", "text": "Savings opportunities", "wrap": True, "weight": "Bolder", "separator": True,
         "spacing": "Medium"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in EXPECTED_ROWS]},
    ]  # fmt: skip


def test_the_slack_section_is_one_mrkdwn_section_of_the_same_rows():
    [block] = slack_section(known_summary())
    lines = block["text"]["text"].split("\n")
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert lines[0] == "*Savings opportunities*"
    assert lines[1:] == [f"• *{t}*: {v}" for t, v in EXPECTED_ROWS]


def test_nothing_to_show_gives_no_section_in_either_channel():
    summary = summarize([rec(status=DISMISSED, status_reason="x")], AS_OF)
    assert teams_section(summary, "USD") == [] and slack_section(summary) == []


def test_a_summary_with_only_the_commitment_kpi_shows_zero_open_savings_in_the_report_currency():
    none_active = CommitmentKpi(KPI.period, "EUR", D(0), D(0), D(50), None, None)
    assert rows(summarize([], AS_OF, currency="EUR", commitment=none_active), "EUR") == [
        ("Open savings (estimated)", "€0.00 / month · 0 open, 0 accepted"),
        ("Savings Plans, month-to-date", "coverage 0.0 % · no active Savings Plans"),
    ]


def test_implemented_items_not_measurable_say_why_and_nothing_is_realised_yet():
    sp = rec("sp", IMPLEMENTED, "412.80", implemented_on=date(2026, 11, 2), action_type="PurchaseSavingsPlans",
             resource_type="ComputeSavingsPlans", resource_id="111111111111")  # fmt: skip
    assert rows(summarize([sp], AS_OF), "USD")[1:3] == [
        ("Realised this month", "nothing measured yet"),
        ("ROI: account 111111111111", "estimated $412.80 / month · not measured: a commitment purchase: see "
                                      "Savings Plans coverage and utilisation"),
    ]  # fmt: skip


def test_slack_escapes_names_that_would_become_links_or_mentions():
    sneaky = rec("x", summary="Rightsize <!channel> & co")
    [block] = slack_section(summarize([sneaky], AS_OF))
    assert "&lt;!channel&gt; &amp; co" in block["text"]["text"] and "<!channel>" not in block["text"]["text"]
