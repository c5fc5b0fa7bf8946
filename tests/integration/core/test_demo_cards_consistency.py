"""Cards a finance reader trusts (issue 17): every card `make demo` posts, Teams and Slack, both
products, and its HTML preview, read as one document. One date style, one percent style, money
always as format_money writes it, and one month-end forecast figure wherever it appears.

The demo runs once, in its own process (it sets environment variables and patches a client, as
Lambda would), into a temporary folder; `out/` is neither needed nor touched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from finops_guard.core.money import ISO_4217, format_money
from finops_guard.core.preview import render_slack_html, render_teams_html
from finops_guard.costs.cards.common import FORECAST_TITLE

from devtools.lambda_runner import ROOT

pytestmark = pytest.mark.integration

DEMO_BUDGET_S = 300  # about 25 s alone on the 2-core machine; this only stops a hung run

MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
# The one style (core/formats.py), longest shapes first: each is removed before the next is tried.
ALLOWED_DATES = [
    re.compile(rf"\b\d{{1,2}} {MON} \d{{4}} \d{{2}}:\d{{2}} [A-Za-z_]+(?:/[A-Za-z_]+)*"),  # instant
    re.compile(rf"\b\d{{1,2}} {MON} \d{{4}} – \d{{1,2}} {MON} \d{{4}}\b"),  # range over a year end
    re.compile(rf"\b\d{{1,2}} {MON} – \d{{1,2}} {MON} \d{{4}}\b"),  # range over a month end
    re.compile(rf"\b\d{{1,2}}–\d{{1,2}} {MON} \d{{4}}\b"),  # range in a month
    re.compile(rf"\b{WEEKDAY} \d{{1,2}} {MON} \d{{4}}\b"),  # day
    re.compile(rf"\b{MON} \d{{4}}\b"),  # month
    re.compile(r"\bQ[1-4] \d{4}\b"),  # quarter
]
AXIS_DAY = re.compile(rf"\d{{1,2}} {MON}\*?")  # a chart's x value only
DATE_WORD = re.compile(rf"\b(?:{MON}|{WEEKDAY})\b")
FORBIDDEN_DATES = {  # a file name (`chargeback-2026-11-tag-team.csv`) is no date a reader reads
    "ISO date": re.compile(r"(?<![\w/-])\d{4}-\d{2}-\d{2}"),
    "ISO month": re.compile(r"(?<![\w/-])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])\b"),
    "period key": re.compile(r"\b\d{4}-Q[1-4]\b"),
    "MM-DD": re.compile(r"(?<![\w-])(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\w-])"),
    "ISO time": re.compile(r"\dT\d{2}:\d{2}"),
    "full month name": re.compile(
        r"\b(?:January|February|March|April|June|July|August|September|October|November|December) \d{4}"
    ),
}
PERCENT = re.compile(r"([+-]?\d[\d.,]*)( ?)%")
ONE_DECIMAL_BELOW_10 = re.compile(r"[+-]?\d\.\d")
WHOLE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})*")
SYMBOL = r"(?:A\$|C\$|[$€£¥₹])"
MONEY = re.compile(rf"[+-]?{SYMBOL}(\d[\d,]*(?:\.\d+)?)")
GROUPED = re.compile(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?")
CODED_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?) ([A-Z]{3})\b")
CODE_SPAN = re.compile(r"`[^`\n]*`")  # a command (`finops-guard chargeback run --month 2026-11`) keeps ISO
SLACK_LINK = re.compile(r"<[a-z]+://[^|>]*\|([^>]*)>")  # <url|label>: a reader sees the label
AXIS_LINE = re.compile(rf"(?m)^\d{{1,2}} {MON}\*?$")  # a chart's x value, alone on its line in a preview
SKIPPED_KEYS = {"type", "$schema", "version", "url", "color", "size", "weight", "spacing", "contentType",
                "width", "valueFormat", "displayMode", "style", "horizontalAlignment"}  # fmt: skip


@dataclass(frozen=True)
class Card:
    name: str  # e.g. weekly-2-slack-payload.json
    payload: dict[str, Any]

    @property
    def channel(self) -> str:
        return "slack" if "-slack" in self.name else "teams"

    @property
    def kind(self) -> str:
        return self.name.split("-")[0]

    def strings(self) -> Iterator[tuple[str, str]]:
        """(key, text) of every string a reader sees, code spans (commands) removed."""
        yield from ((key, CODE_SPAN.sub("`…`", SLACK_LINK.sub(r"\1", text))) for key, text in _strings(self.payload))

    def text(self) -> str:
        return "\n".join(text for _, text in self.strings())

    def preview_text(self) -> str:
        render = render_slack_html if self.channel == "slack" else render_teams_html
        return html_text(render(self.payload))


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in SKIPPED_KEYS:
                yield from _strings(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str) and not value.startswith(("https://", "http://")):
        yield key, value


def html_text(document: str) -> str:
    """What a browser shows of a preview, without code (commands), preformatted blocks (e-mails and
    CSV lines, not cards) and the number a Teams gauge draws itself from its value (`100%`: the
    client's format, not ours; the card's own words for it are in the gauge's subLabel)."""
    document = re.sub(r"<(pre|code|style|title)\b.*?</\1>", " ", document, flags=re.S)
    document = re.sub(r'<text[^>]*class="[^"]*gauge-value[^"]*"[^>]*>.*?</text>', " ", document, flags=re.S)
    document = re.sub(r"<[^>]+>", "\n", document)
    text = re.sub(r"&(amp|lt|gt|quot|#39);", lambda m: {"amp": "&", "lt": "<", "gt": ">"}.get(m[1], "'"), document)
    return CODE_SPAN.sub("`…`", text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-out")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_BUDGET_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def cards(demo: Path) -> list[Card]:
    found = [Card(p.name, json.loads(p.read_text())) for p in sorted(demo.glob("*-payload.json"))]
    kinds = {card.kind for card in found}
    assert {"weekly", "alert", "anomaly", "chargeback", "billing"} <= kinds, kinds  # both products
    return found


def texts(cards: list[Card], demo: Path) -> Iterator[tuple[str, str, str]]:
    """(where, key, text) for every card string, every card's preview and every demo HTML page."""
    for card in cards:
        for key, text in card.strings():
            yield card.name, key, text
        yield f"{card.name} (preview)", "", card.preview_text()
    for page in sorted(demo.glob("*.html")):
        yield page.name, "", html_text(page.read_text())


# --- the checks: each returns what breaks its rule, so a test can show them all at once ------------------


def date_problems(key: str, text: str) -> list[str]:
    problems = [f"{label}: {m.group(0)!r}" for label, rule in FORBIDDEN_DATES.items() for m in rule.finditer(text)]
    if key == "x" and AXIS_DAY.fullmatch(text):
        return problems
    rest = AXIS_LINE.sub("⟨axis⟩", text)
    for shape in ALLOWED_DATES:
        rest = shape.sub("⟨date⟩", rest)
    problems += [f"date outside the style: {rest[max(0, m.start() - 20) : m.end() + 20]!r}"
                 for m in DATE_WORD.finditer(rest)]  # fmt: skip
    return problems


def percent_problems(text: str) -> list[str]:
    problems = []
    for match in PERCENT.finditer(text):
        number, space = match.groups()
        if not space:
            problems.append(f"no space before %: {match.group(0)!r}")
        elif "." in number:
            if not ONE_DECIMAL_BELOW_10.fullmatch(number):
                problems.append(f"a decimal only below 10 %, and one: {match.group(0)!r}")
        elif not WHOLE.fullmatch(number) or abs(int(number.replace(",", ""))) < 10:
            problems.append(f"whole from 10 %, grouped by thousands: {match.group(0)!r}")
    return problems


def money_problems(text: str) -> list[str]:
    problems = []
    for match in MONEY.finditer(text):
        digits = match.group(1)
        decimals = len(digits.partition(".")[2])
        expected = 0 if "¥" in match.group(0) else 2
        if not GROUPED.fullmatch(digits) or decimals != expected:
            problems.append(f"money not as format_money writes it: {match.group(0)!r}")
    for match in CODED_AMOUNT.finditer(text):
        amount, code = match.groups()
        if code in ISO_4217 and (has_symbol(code) or not GROUPED.fullmatch(amount)):
            problems.append(f"an amount with its code where format_money writes its symbol: {match.group(0)!r}")
    return problems


def has_symbol(code: str) -> bool:
    return not format_money(Decimal(1), code).endswith(code)


def test_every_card_and_preview_writes_dates_in_the_one_style(cards, demo):
    problems = [f"{where}: {p}" for where, key, text in texts(cards, demo) for p in date_problems(key, text)]
    assert problems == []


def test_every_card_and_preview_writes_percentages_and_money_in_the_one_style(cards, demo):
    problems = [
        f"{where}: {p}" for where, _, text in texts(cards, demo) for p in percent_problems(text) + money_problems(text)
    ]
    assert problems == []


# --- one forecast ----------------------------------------------------------------------------------


def first_money(text: str) -> str:
    found = MONEY.search(text)
    assert found, f"no amount in {text!r}"
    return found.group(0)


def own_forecasts(card: Card) -> set[str]:
    """Every month-end forecast figure a weekly card states for its own scope: the KPI, the budget
    gauge and its fallback, the budget consumption, Slack's notification text."""
    found = set()
    for key, text in card.strings():
        if key == "text" and text.startswith("AWS cost report") and "forecast month-end" in text:
            found.add(first_money(text.split("forecast month-end", 1)[1]))  # Slack's notification
        elif text.startswith(f"*{FORECAST_TITLE}*") or text.startswith("*Budget consumption*"):
            found.add(first_money(text))
        elif key in ("subLabel", "text") and re.match(r"(Budget: )?forecast \S+ \(", text):
            found.add(first_money(text))  # the gauge and its fallback
    for facts in facts_of(card):
        for title, value in facts:
            if title in (FORECAST_TITLE, "Budget consumption"):
                found.add(first_money(value))
    return found


def facts_of(card: Card) -> Iterator[list[tuple[str, str]]]:
    def walk(value: Any) -> Iterator[list[tuple[str, str]]]:
        if isinstance(value, dict):
            if value.get("type") == "FactSet":
                yield [(f["title"], f["value"]) for f in value["facts"]]
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    yield from walk(card.payload)


def budget_lines(card: Card) -> dict[str, str]:
    """Budget name -> the forecast its line on a weekly card states."""
    lines = {}
    for facts in facts_of(card):
        lines |= {title: first_money(value) for title, value in facts if value.startswith("forecast ")}
    for _, text in card.strings():
        for name, value in re.findall(r"^• (.+?): (forecast .+)$", text, flags=re.M):
            lines[name] = first_money(value)
    return lines


def organisation_budget(demo: Path) -> str:
    """The name of the demo's monthly budget over the whole organisation (the weekly card's scope)."""
    budgets = json.loads((demo / "budgets.json").read_text())["budgets"]
    [name] = [b["name"] for b in budgets if not b.get("scope") and b.get("period", "monthly") == "monthly"]
    return name


# How a forecast names its method (costs.forecast.PeriodForecast.method).
METHOD = r"(trend[^·\n]* \d+ days|short history: [^·\n]+|no spend history)"


def test_a_weekly_card_states_one_month_end_forecast_named_by_its_method(cards):
    weekly = [card for card in cards if card.kind == "weekly"]
    assert len(weekly) == 5 + 1  # the organisation's five, and a single account's (its card ranks regions)
    for card in weekly:
        assert len(own_forecasts(card)) == 1, (card.name, own_forecasts(card))
        titles = [title for facts in facts_of(card) for title, _ in facts] + re.findall(
            r"^\*(.+?)\*$", card.text(), re.M
        )
        assert [t for t in titles if "orecast" in t and t != FORECAST_TITLE] == [], card.name
        assert re.search(METHOD, card.text()), card.name  # the forecast says how it was made


def test_the_same_scope_shows_the_same_forecast_in_teams_slack_and_the_budget_list(cards, demo):
    by_name = {card.name: card for card in cards}
    organisation = own_forecasts(by_name["weekly-1-teams-payload.json"])
    assert own_forecasts(by_name["weekly-2-slack-payload.json"]) == organisation
    assert own_forecasts(by_name["weekly-4-teams-web-payload.json"]) == own_forecasts(
        by_name["weekly-5-slack-web-payload.json"]
    )
    for name in ("weekly-1-teams-payload.json", "weekly-2-slack-payload.json"):
        assert {budget_lines(by_name[name])[organisation_budget(demo)]} == organisation


def test_a_budget_alert_states_the_forecast_the_weekly_card_lists_for_that_budget(cards):
    listed = budget_lines(next(card for card in cards if card.name == "weekly-1-teams-payload.json"))
    alerts = [card for card in cards if card.kind == "alert"]
    assert alerts
    for card in alerts:
        head = next(text for _, text in card.strings() if text.startswith("Budget alert: "))
        budget = head.removeprefix("Budget alert: ").split(" — ")[0]
        forecast = (
            next(
                first_money(value) for facts in facts_of(card) for title, value in facts if title.startswith("Forecast")
            )
            if card.channel == "teams"
            else first_money(card.text().split("*Forecast period end*", 1)[1])
        )
        assert forecast == listed[budget], (card.name, budget)
