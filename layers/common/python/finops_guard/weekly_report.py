"""The weekly report use case: costs in, report built, one message per channel delivered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from finops_guard.attribution import AttributionAggregate, aggregate_attribution, attribution_request
from finops_guard.cards.slack import slack_payload
from finops_guard.cards.teams import teams_payload
from finops_guard.costs import CostAggregate, aggregate_pages
from finops_guard.delivery import ChatMessage, DeliveryFailed, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.periods import report_window
from finops_guard.report import BudgetLine, WeeklyReport, build_weekly_report
from finops_guard.settings import ReportSettings
from finops_guard.teams import Routing, message_suffix

if TYPE_CHECKING:  # the savings model loads only when there are savings to show (cold start)
    from finops_guard.savings import CommitmentKpi, Recommendation

KIND = "weekly-report"


class CostSource(Protocol):
    requests: int

    def pages(self, start: date, end: date) -> Iterator[dict[str, Any]]: ...
    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


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
    routing: Routing | None = None,
    savings: Sequence[Recommendation] = (),
    commitment: CommitmentKpi | None = None,
) -> tuple[WeeklyReport, list[ChatMessage]]:
    """Build the report for the week before `now` and render it for every configured channel, plus
    one card per routed team, scoped to the team's spend, in the team's own channels.

    Cost Explorer: one request for the organisation and one per attribution dimension (plus their
    pages), however many teams there are. `budgets`: stored budgets with their latest guard
    evaluation, shown in their own section (and on the cards of the teams they concern). `savings`:
    stored recommendations (each team's card shows its own); `commitment`: the Savings Plans KPI."""
    window = report_window(now)
    aggregate = aggregate_pages(costs.pages(window.query_start, window.query_end), window)
    routing = routing or Routing(None)
    routed = [r.team for r in routing.routes]
    attributions = [
        aggregate_attribution(
            dimension,
            costs.query(attribution_request(dimension, window.query_start, window.query_end, "DAILY")),
            window,
            routed if dimension == routing.dimension else (),
        )
        for dimension in settings.attribution_dimensions
    ]
    report = _report(settings, aggregate, now, monthly_budget=settings.monthly_budget)
    summaries = tuple(a.summary(settings.top_n) for a in attributions)
    report = replace(report, budgets=tuple(budgets), attribution=summaries)
    if savings or commitment is not None:
        from finops_guard.savings import summarize

        summary = summarize(savings, window.as_of, currency=settings.currency, commitment=commitment)
        report = replace(report, savings=summary)
    # Synthetic data must never take the real week's message id (the real report would be skipped).
    base_id = f"smoke-test/{now:%Y-%m-%dT%H:%M:%SZ}" if settings.use_mock_data else report.report_id
    messages = _render(settings, report, base_id)
    by_team = next((a for a in attributions if a.dimension == routing.dimension), None)
    if by_team is not None:
        messages += _team_messages(settings, report, by_team, routing, budgets, savings, base_id, now)
    return report, messages


def _team_messages(
    settings: ReportSettings,
    report: WeeklyReport,
    by_team: AttributionAggregate,
    routing: Routing,
    budgets: Sequence[BudgetLine],
    savings: Sequence[Recommendation],
    base_id: str,
    now: datetime,
) -> list[ChatMessage]:
    """Each routed team's card, in its own channels: its spend only, the budgets that name it and
    its own savings opportunities."""
    from finops_guard.savings import summarize

    messages = []
    for route in routing.routes:
        suffix = message_suffix(route.team)
        team_savings = summarize(savings, report.window.as_of, currency=settings.currency, team=route.team)
        team_report = replace(
            _report(settings, by_team.team_costs[route.team], now, monthly_budget=None),
            report_id=f"{report.report_id}/{suffix}",
            scope=f"{by_team.dimension.label} {route.team}",
            budgets=tuple(b for b in budgets if route.team in b.teams),
            savings=team_savings if savings else None,
        )
        secrets = dict(route.destinations())
        rendered = _render(settings, team_report, f"{base_id}/{suffix}", list(secrets))
        messages += [replace(m, secret_name=secrets[m.channel]) for m in rendered]
    return messages


def _report(
    settings: ReportSettings, aggregate: CostAggregate, now: datetime, *, monthly_budget: Decimal | None
) -> WeeklyReport:
    return build_weekly_report(
        aggregate,
        stage=settings.stage,
        currency=settings.currency,
        top_n=settings.top_n,
        generated_at=now,
        monthly_budget=monthly_budget,
        forecast_level=settings.forecast_interval,
    )


def _render(
    settings: ReportSettings, report: WeeklyReport, base_id: str, channels: Sequence[str] | None = None
) -> list[ChatMessage]:
    renderers = {"teams": teams_payload, "slack": slack_payload}
    return [
        ChatMessage(f"{base_id}/{channel}", channel, KIND, renderers[channel](report, settings.timezone))
        for channel in (settings.chat_channels if channels is None else channels)
    ]


def run_weekly_report(
    settings: ReportSettings,
    *,
    now: datetime,
    costs: CostSource,
    outbox: Outbox,
    poster: Poster,
    budgets: Sequence[BudgetLine] = (),
    routing: Routing | None = None,
    savings: Sequence[Recommendation] = (),
    commitment: CommitmentKpi | None = None,
) -> WeeklyReportOutcome:
    """Compose and deliver. Raises DeliveryFailed (after keeping the messages) if any channel failed."""
    report, messages = compose(
        settings, costs, now=now, budgets=budgets, routing=routing, savings=savings, commitment=commitment
    )
    result = deliver_all(messages, outbox, poster, now)
    outcome = WeeklyReportOutcome(report, messages, result, costs.requests)
    if result.failed:
        raise DeliveryFailed(result.failed)
    return outcome
