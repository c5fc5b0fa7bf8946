"""Composition root: builds the real (or mock) adapters from settings, once per warm container.

Handlers and the CLI get their collaborators here, so tests can swap any of them. Adapters only
some functions use are imported inside their factory, so no function pays their import at cold
start (the weekly report never loads the anomaly store).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_guard.adapters.chat import WebhookPoster
from finops_guard.adapters.cost_explorer import CostExplorerSource, cost_explorer_client
from finops_guard.adapters.outbox import DynamoOutbox
from finops_guard.adapters.secrets import read_team_webhook_url, read_webhook_url
from finops_guard.delivery import ChatConfigError, ChatMessage, ChatNotConfigured, Poster, RoutingPoster
from finops_guard.mock_data import MockCostSource
from finops_guard.report import BudgetLine, budget_lines
from finops_guard.settings import BillingOpsSettings, BillingSettings, ReportSettings

if TYPE_CHECKING:
    from finops_guard.adapters.anomaly_store import AnomalyTable
    from finops_guard.adapters.billing_reads import BillingReads
    from finops_guard.adapters.billing_store import BillingStore
    from finops_guard.adapters.budget_store import BudgetAlertTable, BudgetTable
    from finops_guard.adapters.cost_allocation_tags import CostAllocationTags
    from finops_guard.adapters.export_bucket import ExportBucket
    from finops_guard.adapters.notify import EventBridgePublisher
    from finops_guard.adapters.recommendations_store import RecommendationsTable
    from finops_guard.adapters.stripe_api import StripeApi
    from finops_guard.adapters.team_routes import TeamRoutesTable
    from finops_guard.savings import CommitmentKpi, Recommendation
    from finops_guard.teams import Routing

SAFETY_MARGIN_S = 10.0
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
    return MockCostSource() if config.use_mock_data else CostExplorerSource(_ce_client())


@cache
def _ce_client() -> Any:
    return cost_explorer_client()


def tag_activation(config: ReportSettings) -> CostAllocationTags | None:
    """Asks Cost Explorer whether attribution's tags are active (only when one attributes nothing);
    None on synthetic data. A fresh one per run: it counts its requests."""
    if config.use_mock_data:
        return None
    from finops_guard.adapters.cost_allocation_tags import CostAllocationTags

    return CostAllocationTags(_ce_client())


@dataclass
class ChatSetup:
    """The deployment's chat channels as one run found them, before rendering any card."""

    unready: dict[str, str] = field(default_factory=dict)  # channel -> its secret, still holding the placeholder
    # secret -> why it could not be read: delivery reports it as the failure it is, without reading again
    unreadable: dict[str, ChatConfigError] = field(default_factory=dict)


def chat_setup(config: ReportSettings) -> ChatSetup:
    """Reads (and caches) the deployment's webhook secrets, so the card that gets through can say which
    channel is not set up yet."""
    setup = ChatSetup()
    for channel in config.chat_channels:
        secret = config.secret_for(channel)
        try:
            read_webhook_url(secret, channel=channel)
        except ChatNotConfigured:
            setup.unready[channel] = secret
        except ChatConfigError as error:
            setup.unreadable[secret] = error
    return setup


@cache
def outbox(table_name: str) -> DynamoOutbox:
    return DynamoOutbox(table_name)


@cache
def budget_table(table_name: str) -> BudgetTable:
    from finops_guard.adapters.budget_store import BudgetTable

    return BudgetTable(table_name)


@cache
def budget_alert_table(table_name: str) -> BudgetAlertTable:
    from finops_guard.adapters.budget_store import BudgetAlertTable

    return BudgetAlertTable(table_name)


@cache
def anomaly_table(table_name: str) -> AnomalyTable:
    from finops_guard.adapters.anomaly_store import AnomalyTable

    return AnomalyTable(table_name)


@cache
def event_publisher(bus_name: str) -> EventBridgePublisher:
    from finops_guard.adapters.notify import EventBridgePublisher

    return EventBridgePublisher(bus_name)


def budget_overview(config: ReportSettings, routing: Routing | None = None) -> list[BudgetLine]:
    """Every stored budget with its latest guard evaluation; empty when budgets are not deployed.
    The weekly card is the product's main job: a failure to read budgets is logged, not fatal."""
    if not config.budgets_table or not config.budget_alerts_table:
        return []
    try:
        budgets = budget_table(config.budgets_table).all()
        statuses = budget_alert_table(config.budget_alerts_table).get_statuses([b.budget_id for b in budgets])
    except (BotoCoreError, ClientError) as error:
        log.error("budgets could not be read; weekly card sent without them", extra={"error": type(error).__name__})
        return []
    return budget_lines(budgets, statuses, routing)


@cache
def team_routes_table(table_name: str) -> TeamRoutesTable:
    from finops_guard.adapters.team_routes import TeamRoutesTable

    return TeamRoutesTable(table_name)


def routing(config: ReportSettings) -> Routing:
    """The team routes, read once per run. Without them every card and alert still reaches the
    default channel: a failure to read routes is logged, never fatal."""
    from finops_guard.teams import Routing

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
    from finops_guard.adapters.export_bucket import ExportBucket

    return ExportBucket(bucket)


@cache
def billing_settings() -> BillingSettings:
    return BillingSettings.from_env(os.environ)


@cache
def billing_store() -> BillingStore:
    from finops_guard.adapters.billing_store import BillingStore, BillingTables

    config = billing_settings()
    tables = BillingTables(
        config.events_table,
        config.ledger_table,
        config.objects_table,
        config.alerts_table,
        config.dunning_table,
        config.invoice_requests_table,
    )
    return BillingStore(tables)


@cache
def billing_ops_settings() -> BillingOpsSettings:
    return BillingOpsSettings.from_env(os.environ)


@cache
def stripe_api() -> StripeApi:
    """The one Stripe client of the billing operations functions; the key is read on first use."""
    from finops_guard.adapters.stripe_api import StripeApi, read_stripe_api_key

    config = billing_ops_settings()
    name = config.stripe_api_key_secret_name
    return StripeApi(
        lambda: read_stripe_api_key(name),
        api_base=config.stripe_api_base,
        refresh_key=lambda: read_stripe_api_key(name, refresh=True),
    )


def billing_reads() -> BillingReads:
    """The billing tables as the admin API and the daily KPIs read them (queries, alert claims)."""
    config = billing_ops_settings()
    return _billing_reads(config.ledger_table, config.objects_table, config.alerts_table)


@cache
def _billing_reads(ledger_table: str, objects_table: str, alerts_table: str) -> BillingReads:
    from finops_guard.adapters.billing_reads import BillingReads

    return BillingReads(ledger_table=ledger_table, objects_table=objects_table, alerts_table=alerts_table)


@cache
def billing_ops_store() -> BillingStore:
    """The billing tables as the operations functions see them (no processed-events table)."""
    from finops_guard.adapters.billing_store import BillingStore, BillingTables

    config = billing_ops_settings()
    tables = BillingTables("", config.ledger_table, config.objects_table, config.alerts_table, config.dunning_table)
    return BillingStore(tables)


def alert_poster(config: ReportSettings, remaining_ms: int | None = None) -> Poster:
    """Teams/Slack webhooks plus e-mail through the alert topic, when one is configured."""
    webhooks = webhook_poster(config, remaining_ms)
    channels: dict[str, Poster] = {"teams": webhooks, "slack": webhooks}
    if config.alert_topic_arn:
        from finops_guard.adapters.notify import SnsEmailPoster

        channels["email"] = SnsEmailPoster(config.alert_topic_arn)
    return RoutingPoster(channels)


def webhook_poster(
    config: ReportSettings, remaining_ms: int | None = None, setup: ChatSetup | None = None
) -> WebhookPoster:
    """A poster that stops retrying before the Lambda timeout (remaining_ms from the context).
    `setup`: this run's chat_setup; a secret it could not read is not read again in the same run."""
    deadline = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_S
    unreadable = setup.unreadable if setup is not None else {}

    def url_for(message: ChatMessage, refresh: bool = False) -> str:
        team = _team_of(config, message)
        if team is not None:
            return read_team_webhook_url(
                config.require("team_webhooks_secret_name"), team, channel=message.channel, refresh=refresh
            )
        secret = message.secret_name or config.secret_for(message.channel)
        if secret in unreadable and not refresh:
            raise ChatConfigError(str(unreadable[secret]))
        return read_webhook_url(secret, channel=message.channel, refresh=refresh)

    return WebhookPoster(url_for, refresh_url=lambda message: url_for(message, refresh=True), deadline=deadline)


def _team_of(config: ReportSettings, message: ChatMessage) -> str | None:
    """The team whose channel `message` is for (its URL is in the team webhooks secret), else None.
    A message kept in the outbox before the team webhooks secret names its team's old secret under
    finops-guard/<stage>/teams/ (no longer readable): its id still names the team."""
    from finops_guard.teams import destination_team, legacy_team_secret_prefix, team_of_message

    team = destination_team(message.secret_name)
    if team is None and message.secret_name and message.secret_name.startswith(legacy_team_secret_prefix(config.stage)):
        team = team_of_message(message.message_id)
    return team


def scheduled_time(event: dict[str, Any] | None) -> datetime:
    """The instant the schedule fired (stable across retries), else now."""
    text = (event or {}).get("scheduled_time") or (event or {}).get("time")
    if isinstance(text, str) and text and not text.startswith("<"):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return datetime.now(UTC)


@cache
def recommendations_table(table_name: str) -> RecommendationsTable:
    from finops_guard.adapters.recommendations_store import RecommendationsTable

    return RecommendationsTable(table_name)


@cache
def cost_optimization_hub_client() -> Any:
    from finops_guard.adapters.cost_optimization_hub import cost_optimization_hub_client

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
        from finops_guard.adapters.savings_plans import SavingsPlansSource
        from finops_guard.periods import report_window
        from finops_guard.savings import commitment_window

        source = SavingsPlansSource(_ce_client())
        try:
            overview.commitment = source.commitment(commitment_window(report_window(now).as_of), config.currency)
        except (BotoCoreError, ClientError) as error:
            log.error(
                "Savings Plans KPI could not be read; card sent without it", extra={"error": type(error).__name__}
            )
        overview.cost_requests = source.requests
    return overview
