"""The weekly report use case: costs in, report built, one message per channel delivered."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from finops_guard.core.delivery import ChatMessage, DeliveryFailed, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.core.money import ZERO
from finops_guard.core.periods import report_window
from finops_guard.costs.aggregate import CostAggregate, aggregate_pages
from finops_guard.costs.attribution import AttributionAggregate, aggregate_attribution, attribution_request
from finops_guard.costs.breakdown import Breakdown, main_request
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.record_types import CHARGE_KINDS, CREDIT, REFUND, TAX, Charges, charge_amounts, charges_request
from finops_guard.costs.report import BudgetLine, WeeklyReport, build_weekly_report
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import Routing, message_suffix

if TYPE_CHECKING:  # the savings model loads only when there are savings to show (cold start)
    from finops_guard.costs.attribution import AttributionSummary
    from finops_guard.costs.savings import CommitmentKpi, Recommendation
    from finops_guard.costs.setup_status import SetupItem

KIND = "weekly-report"


class CostSource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


class TagActivation(Protocol):
    """Cost allocation tags' activation (ce:ListCostAllocationTags, a billed Cost Explorer request)."""

    requests: int

    def statuses(self, keys: Sequence[str]) -> Mapping[str, str] | None:
        """Tag key -> "Active" / "Inactive" for the keys Billing knows; None when it cannot be read."""
        ...


@dataclass
class WeeklyReportOutcome:
    report: WeeklyReport
    messages: list[ChatMessage]
    delivery: DeliveryResult
    cost_requests: int

    @property
    def posted(self) -> bool:
        """The organisation's card reached at least one of the deployment's channels (now, or earlier)."""
        done = set(self.delivery.delivered) | set(self.delivery.skipped)
        return any(m.secret_name is None and m.message_id in done for m in self.messages)


def compose(
    settings: ReportSettings,
    costs: CostSource,
    *,
    now: datetime,
    budgets: Sequence[BudgetLine] = (),
    routing: Routing | None = None,
    savings: Sequence[Recommendation] = (),
    commitment: CommitmentKpi | None = None,
    tags: TagActivation | None = None,
    unready_channels: Mapping[str, str] | None = None,
    manual_run: str | None = None,
    breakdown: Breakdown | None = None,
) -> tuple[WeeklyReport, list[ChatMessage]]:
    """Build the report for the week before `now` and render it for every configured channel, plus
    one card per routed team, scoped to the team's spend, in the team's own channels.

    Cost Explorer, in `settings.cost_metric`: one request for the organisation (DAILY, by RECORD_TYPE
    and `breakdown`: the resolved one, else `settings.breakdown`, else LINKED_ACCOUNT) and one per
    attribution dimension (by the dimension and SERVICE: top services come from the first), plus
    their pages, however many teams there are. Without attribution dimensions the organisation's
    request is by SERVICE and the breakdown, and the month's credits, refunds and tax cost one more.
    `budgets`: stored budgets with their latest guard
    evaluation, shown in their own section (and on the cards of the teams they concern). `savings`:
    stored recommendations (each team's card shows its own); `commitment`: the Savings Plans KPI.
    Setup section of the organisation's cards: `tags` is asked about the `tag:` dimensions that
    attribute nothing this month (one request, only then); `unready_channels` (channel -> secret)
    are the deployment's channels whose webhook secret still holds its placeholder. `manual_run`
    (e.g. "manual-20261202T155600Z"): an operator's run, whose messages get ids of their own, so the
    outbox never takes the scheduled card of that week for one already posted."""
    window = report_window(now)
    metric = settings.cost_metric
    breakdown = breakdown or settings.breakdown or Breakdown.LINKED_ACCOUNT
    by_record_type = bool(settings.attribution_dimensions)
    main = main_request(window.query_start, window.query_end, metric, breakdown, by_record_type=by_record_type)
    aggregate = aggregate_pages(costs.query(main), window, metric, by_record_type=by_record_type)
    routing = routing or Routing(None)
    routed = [r.team for r in routing.routes]
    attributions = [
        aggregate_attribution(
            dimension,
            costs.query(attribution_request(dimension, window.query_start, window.query_end, "DAILY", metric)),
            window,
            routed if dimension == routing.dimension else (),
            metric,
        )
        for dimension in settings.attribution_dimensions
    ]
    if attributions:  # the main request was by record type: its services are the first dimension's
        aggregate.services = attributions[0].overall.services
        charges = aggregate.charges
    else:
        charges = _charges_alone(settings, costs, window.month_to_date.first, window.query_end)
    report = _report(settings, aggregate, now, monthly_budget=settings.monthly_budget)
    summaries = tuple(a.summary(settings.top_n) for a in attributions)
    report = replace(
        report,
        budgets=tuple(budgets),
        attribution=summaries,
        breakdown=breakdown,
        charges=Charges(
            usage=report.month_to_date,
            credits=charges.get(CREDIT, ZERO),
            refunds=charges.get(REFUND, ZERO),
            tax=charges.get(TAX, ZERO),
            currency=report.currency,
        ),
    )
    setup = _setup(settings, summaries, now, window.month_to_date.first, tags, unready_channels or {})
    if setup:
        report = replace(report, setup=setup)
    if savings or commitment is not None:
        from finops_guard.costs.savings import summarize

        summary = summarize(savings, window.as_of, currency=settings.currency, commitment=commitment)
        report = replace(report, savings=summary)
    # Synthetic data must never take the real week's message id (the real report would be skipped).
    base_id = f"smoke-test/{now:%Y-%m-%dT%H:%M:%SZ}" if settings.use_mock_data else report.report_id
    if manual_run and not settings.use_mock_data:
        base_id = f"{base_id}/{manual_run}"
    messages = _render(settings, report, base_id)
    by_team = next((a for a in attributions if a.dimension == routing.dimension), None)
    if by_team is not None:
        messages += _team_messages(settings, report, by_team, routing, budgets, savings, base_id, now)
    return report, messages


def _charges_alone(settings: ReportSettings, costs: CostSource, first: date, end: date) -> dict[str, Decimal]:
    """Credits, refunds and tax of the month to date when no attribution request carries services
    (so the main one cannot carry record types): one more request, MONTHLY, by RECORD_TYPE."""
    amounts = charge_amounts(costs.query(charges_request(first, end, settings.cost_metric)), settings.cost_metric)
    return {kind: amounts.kind_total(kind) for kind in CHARGE_KINDS}


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
    from finops_guard.costs.savings import summarize

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
            breakdown=report.breakdown,
            account_names=report.account_names,  # the team's own request is not by account: name them from ours
        )
        secrets = dict(route.destinations())
        rendered = _render(settings, team_report, f"{base_id}/{suffix}", list(secrets))
        messages += [replace(m, secret_name=secrets[m.channel]) for m in rendered]
    return messages


def _setup(
    settings: ReportSettings,
    summaries: Sequence[AttributionSummary],
    now: datetime,
    month_start: date,
    tags: TagActivation | None,
    unready_channels: Mapping[str, str],
) -> tuple[SetupItem, ...]:
    from finops_guard.costs import setup_status  # loaded at run time, not in the handler's cold import

    items = setup_status.chat_items(unready_channels)
    keys = setup_status.tag_keys_to_check(summaries)
    if keys and tags is not None:
        items += setup_status.tag_items(keys, tags.statuses(keys), month_start)
    learning = setup_status.anomaly_learning_item(settings.anomaly_monitor_since, now.astimezone(UTC).date())
    if learning is not None:
        items.append(learning)
    return tuple(items)


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
    renderers = {"teams": teams_payload, "slack": _slack_payload}
    return [
        ChatMessage(
            f"{base_id}/{channel}", channel, KIND, renderers[channel](_seen_in(report, channel), settings.timezone)
        )
        for channel in (settings.chat_channels if channels is None else channels)
    ]


def _slack_payload(report: WeeklyReport, timezone: str) -> dict[str, Any]:
    # Slack is optional (off by default): a deployment without it never loads its card code.
    from finops_guard.costs.cards.slack import slack_payload

    return slack_payload(report, timezone)


def _seen_in(report: WeeklyReport, channel: str) -> WeeklyReport:
    """A card does not say that its own channel is not set up: it is only read once it is."""
    if not report.setup:
        return report
    from finops_guard.costs.setup_status import for_channel

    return replace(report, setup=for_channel(report.setup, channel))


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
    tags: TagActivation | None = None,
    unready_channels: Mapping[str, str] | None = None,
    breakdown: Breakdown | None = None,
) -> WeeklyReportOutcome:
    """Compose and deliver. Raises DeliveryFailed (after keeping the messages) if any channel failed.
    A channel not set up yet is no failure: its message is kept and listed in `not_configured`."""
    report, messages = compose(
        settings,
        costs,
        now=now,
        budgets=budgets,
        routing=routing,
        savings=savings,
        commitment=commitment,
        tags=tags,
        unready_channels=unready_channels,
        breakdown=breakdown,
    )
    result = deliver_all(messages, outbox, poster, now)
    requests = costs.requests + (tags.requests if tags is not None else 0)
    outcome = WeeklyReportOutcome(report, messages, result, requests)
    if result.failed:
        raise DeliveryFailed(result.failed, result.not_configured)
    return outcome
