"""The weekly report use case: costs in, report built, one message per channel delivered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from finops_guard.cards.slack import slack_payload
from finops_guard.cards.teams import teams_payload
from finops_guard.costs import aggregate_pages
from finops_guard.delivery import ChatMessage, DeliveryFailed, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.periods import report_window
from finops_guard.report import BudgetLine, WeeklyReport, build_weekly_report
from finops_guard.settings import ReportSettings

KIND = "weekly-report"


class CostSource(Protocol):
    requests: int

    def pages(self, start: date, end: date) -> Iterator[dict[str, Any]]: ...


@dataclass
class WeeklyReportOutcome:
    report: WeeklyReport
    messages: list[ChatMessage]
    delivery: DeliveryResult
    cost_requests: int


def compose(
    settings: ReportSettings,
    costs: CostSource,
    *,
    now: datetime,
    budgets: Sequence[BudgetLine] = (),
) -> tuple[WeeklyReport, list[ChatMessage]]:
    """Build the report for the week before `now` and render it for every configured channel.
    `budgets`: stored budgets with their latest guard evaluation, shown in their own section."""
    window = report_window(now)
    aggregate = aggregate_pages(costs.pages(window.query_start, window.query_end), window)
    report = build_weekly_report(
        aggregate,
        stage=settings.stage,
        currency=settings.currency,
        top_n=settings.top_n,
        generated_at=now,
        monthly_budget=settings.monthly_budget,
        forecast_level=settings.forecast_interval,
    )
    report = replace(report, budgets=tuple(budgets))
    # Synthetic data must never take the real week's message id (the real report would be skipped).
    base_id = f"smoke-test/{now:%Y-%m-%dT%H:%M:%SZ}" if settings.use_mock_data else report.report_id
    messages = [ChatMessage(f"{base_id}/teams", "teams", KIND, teams_payload(report, settings.timezone))]
    if settings.slack_secret_name:
        messages.append(ChatMessage(f"{base_id}/slack", "slack", KIND, slack_payload(report, settings.timezone)))
    return report, messages


def run_weekly_report(
    settings: ReportSettings,
    *,
    now: datetime,
    costs: CostSource,
    outbox: Outbox,
    poster: Poster,
    budgets: Sequence[BudgetLine] = (),
) -> WeeklyReportOutcome:
    """Compose and deliver. Raises DeliveryFailed (after keeping the messages) if any channel failed."""
    report, messages = compose(settings, costs, now=now, budgets=budgets)
    result = deliver_all(messages, outbox, poster, now)
    outcome = WeeklyReportOutcome(report, messages, result, costs.requests)
    if result.failed:
        raise DeliveryFailed(result.failed)
    return outcome
