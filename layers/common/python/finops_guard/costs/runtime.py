"""Composition root of the cost functions: builds the real (or mock) adapters from settings, once per
warm container.

Handlers and the CLI get their collaborators here, so tests can swap any of them. Adapters only
some functions use are imported inside their factory, so no function pays their import at cold
start (the weekly report never loads the anomaly store).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_guard.core.adapters.chat import WebhookPoster
from finops_guard.core.delivery import ChatMessage, Poster, RoutingPoster

# Shared factories, re-exported: a cost handler builds everything from this module.
from finops_guard.core.runtime import SAFETY_MARGIN_S as SAFETY_MARGIN_S
from finops_guard.core.runtime import ChatSetup as ChatSetup
from finops_guard.core.runtime import chat_setup as chat_setup
from finops_guard.core.runtime import outbox as outbox
from finops_guard.core.runtime import scheduled_time as scheduled_time
from finops_guard.core.runtime import webhook_poster as core_webhook_poster
from finops_guard.costs.adapters.cost_explorer import CostExplorerSource, cost_explorer_client
from finops_guard.costs.adapters.payer_account import PayerRole
from finops_guard.costs.settings import ReportSettings

if TYPE_CHECKING:
    from finops_guard.core.adapters.export_bucket import ExportBucket
    from finops_guard.core.adapters.notify import EventBridgePublisher
    from finops_guard.costs.adapters.anomaly_store import AnomalyTable
    from finops_guard.costs.adapters.budget_store import BudgetAlertTable, BudgetTable
    from finops_guard.costs.adapters.cost_allocation_tags import CostAllocationTags
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
    from finops_guard.costs.adapters.team_routes import TeamRoutesTable
    from finops_guard.costs.breakdown import Breakdown
    from finops_guard.costs.mock_data import MockCostSource
    from finops_guard.costs.report import BudgetLine
    from finops_guard.costs.savings import CommitmentKpi, Recommendation
    from finops_guard.costs.teams import Routing

log = logging.getLogger(__name__)


@cache
def settings() -> ReportSettings:
    return ReportSettings.from_env(os.environ)


def settings_for(event: dict[str, Any] | None) -> ReportSettings:
    """`{"smoke_test": true}` in the event runs on synthetic data: the client smoke test, no redeploy."""
    config = settings()
    if (event or {}).get("smoke_test") is True:
        return replace(config, use_mock_data=True)
    return config


def cost_source(config: ReportSettings) -> CostExplorerSource | MockCostSource:
    # A fresh source per run (it counts requests); the boto3 client behind it is cached.
    if config.use_mock_data:  # the client smoke test's synthetic data: no cold start pays for it
        from finops_guard.costs.mock_data import MockCostSource

        return MockCostSource()
    return CostExplorerSource(_ce_client())


@cache
def _ce_client() -> Any:
    return cost_explorer_client()


def report_breakdown(config: ReportSettings) -> Breakdown:
    """The weekly card's second breakdown: the configured one (`breakdown` context), else LINKED_ACCOUNT
    for an organisation and REGION for a single account, asked once per warm container."""
    from finops_guard.costs.breakdown import default_breakdown

    if config.breakdown is not None:
        return config.breakdown
    if config.use_mock_data:
        return default_breakdown(True)  # the synthetic data is an organisation of four accounts
    return default_breakdown(_reads_organisation())


@cache
def _reads_organisation() -> bool | None:
    # Cost Explorer's view decides, so the answer follows its credentials (cost_explorer_client): reading
    # the payer's costs through its role is reading the organisation's management account, without asking
    # (the payer role holds cost reads only, and the function's own role no Organizations action).
    if PayerRole.from_env(os.environ) is not None:
        return True
    from finops_guard.costs.adapters.account_view import organisation_check

    return organisation_check()


def tag_activation(config: ReportSettings) -> CostAllocationTags | None:
    """Asks Cost Explorer whether attribution's tags are active (only when one attributes nothing);
    None on synthetic data. A fresh one per run: it counts its requests."""
    if config.use_mock_data:
        return None
    from finops_guard.costs.adapters.cost_allocation_tags import CostAllocationTags

    return CostAllocationTags(_ce_client())


@cache
def budget_table(table_name: str) -> BudgetTable:
    from finops_guard.costs.adapters.budget_store import BudgetTable

    return BudgetTable(table_name)


@cache
def budget_alert_table(table_name: str) -> BudgetAlertTable:
    from finops_guard.costs.adapters.budget_store import BudgetAlertTable

    return BudgetAlertTable(table_name)


@cache
def anomaly_table(table_name: str) -> AnomalyTable:
    from finops_guard.costs.adapters.anomaly_store import AnomalyTable

    return AnomalyTable(table_name)


@cache
def event_publisher(bus_name: str) -> EventBridgePublisher:
    from finops_guard.core.adapters.notify import EventBridgePublisher

    return EventBridgePublisher(bus_name)


def budget_overview(
    config: ReportSettings, routing: Routing | None = None, *, strict: bool = False
) -> list[BudgetLine]:
    """Every stored budget with its latest guard evaluation; empty when budgets are not deployed.
    The weekly card is the product's main job: a failure to read budgets is logged, not fatal, unless
    `strict` (the CLI: the operator is told, rather than sent a card without its budgets)."""
    if not config.budgets_table or not config.budget_alerts_table:
        return []
    from finops_guard.costs.report import budget_lines  # the weekly report's: loaded there already

    try:
        budgets = budget_table(config.budgets_table).all()
        statuses = budget_alert_table(config.budget_alerts_table).get_statuses([b.budget_id for b in budgets])
    except (BotoCoreError, ClientError) as error:
        if strict:
            raise
        log.error("budgets could not be read; weekly card sent without them", extra={"error": type(error).__name__})
        return []

    return budget_lines(budgets, statuses, routing)


@cache
def team_routes_table(table_name: str) -> TeamRoutesTable:
    from finops_guard.costs.adapters.team_routes import TeamRoutesTable

    return TeamRoutesTable(table_name)


def routing(config: ReportSettings) -> Routing:
    """The team routes, read once per run. Without them every card and alert still reaches the
    default channel: a failure to read routes is logged, never fatal."""
    from finops_guard.costs.teams import Routing

    if not config.team_routes_table or config.team_dimension is None:
        return Routing(config.team_dimension)
    try:
        routes, invalid = team_routes_table(config.team_routes_table).load()
    except (BotoCoreError, ClientError) as error:
        log.error("team routes could not be read; default channel only", extra={"error": type(error).__name__})
        return Routing(config.team_dimension, available=False)
    for problem in invalid:
        log.error("invalid team route skipped; fix it with finops-guard teams add", extra={"problem": str(problem)})
    return Routing(config.team_dimension, routes)


@cache
def export_bucket(bucket: str) -> ExportBucket:
    from finops_guard.core.adapters.export_bucket import ExportBucket

    return ExportBucket(bucket)


def webhook_poster(
    config: ReportSettings, remaining_ms: int | None = None, setup: ChatSetup | None = None
) -> WebhookPoster:
    """The core's poster, with each routed team's messages sent to its URL in the team webhooks secret."""

    def team_url(message: ChatMessage, refresh: bool) -> str | None:
        team = _team_of(config, message)
        if team is None:
            return None
        from finops_guard.costs.adapters.team_webhooks import read_team_webhook_url

        return read_team_webhook_url(
            config.require("team_webhooks_secret_name"), team, channel=message.channel, refresh=refresh
        )

    return core_webhook_poster(config, remaining_ms, setup, destination_url=team_url)


def _team_of(config: ReportSettings, message: ChatMessage) -> str | None:
    """The team whose channel `message` is for (its URL is in the team webhooks secret), else None.
    A message kept in the outbox before the team webhooks secret names its team's old secret under
    finops-guard/<stage>/teams/ (no longer readable): its id still names the team."""
    from finops_guard.costs.teams import destination_team, legacy_team_secret_prefix, team_of_message

    team = destination_team(message.secret_name)
    if team is None and message.secret_name and message.secret_name.startswith(legacy_team_secret_prefix(config.stage)):
        team = team_of_message(message.message_id)
    return team


def alert_poster(config: ReportSettings, remaining_ms: int | None = None) -> Poster:
    """Teams/Slack webhooks plus e-mail through the alert topic, when one is configured."""
    webhooks = webhook_poster(config, remaining_ms)
    channels: dict[str, Poster] = {"teams": webhooks, "slack": webhooks}
    if config.alert_topic_arn:
        from finops_guard.core.adapters.notify import SnsEmailPoster

        channels["email"] = SnsEmailPoster(config.alert_topic_arn)
    return RoutingPoster(channels)


@cache
def recommendations_table(table_name: str) -> RecommendationsTable:
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable

    return RecommendationsTable(table_name)


@cache
def cost_optimization_hub_client() -> Any:
    from finops_guard.costs.adapters.cost_optimization_hub import cost_optimization_hub_client

    return cost_optimization_hub_client()


@dataclass
class SavingsOverview:
    """What the weekly card shows about savings: stored recommendations and the commitment KPI."""

    recommendations: list[Recommendation] = field(default_factory=list)
    commitment: CommitmentKpi | None = None
    cost_requests: int = 0  # the KPI's Cost Explorer requests (2 when enabled)


def savings_overview(config: ReportSettings, now: datetime) -> SavingsOverview:
    """Stored recommendations and, when enabled, Savings Plans coverage and utilisation
    month-to-date. The weekly card is the main job: failing to read either is logged, not fatal."""
    overview = SavingsOverview()
    if config.recommendations_table:
        try:
            overview.recommendations = recommendations_table(config.recommendations_table).all()
        except (BotoCoreError, ClientError) as error:
            log.error(
                "recommendations could not be read; card sent without them", extra={"error": type(error).__name__}
            )
    if config.savings_plans_kpi and not config.use_mock_data:
        from finops_guard.core.periods import report_window
        from finops_guard.costs.adapters.savings_plans import SavingsPlansSource
        from finops_guard.costs.savings import commitment_window

        source = SavingsPlansSource(_ce_client())
        try:
            overview.commitment = source.commitment(commitment_window(report_window(now).as_of), config.currency)
        except (BotoCoreError, ClientError) as error:
            log.error(
                "Savings Plans KPI could not be read; card sent without it", extra={"error": type(error).__name__}
            )
        overview.cost_requests = source.requests
    return overview
