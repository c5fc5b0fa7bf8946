"""Runtime settings of the cost functions (weekly report, budget guard, anomalies, attribution,
chargeback, savings), read from environment variables once and validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from finops_guard.core.settings import PREFIX, ChatChannels, SettingsError, decimal_in, flag, iso_date
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, parse_metric
from finops_guard.costs.teams import AttributionDimension, TeamConfigError, parse_dimension, parse_dimensions

if TYPE_CHECKING:  # only the weekly report is given a breakdown: no other function loads its module
    from finops_guard.costs.breakdown import Breakdown


def _attribution(
    dimensions_text: str | None, team_text: str | None
) -> tuple[tuple[AttributionDimension, ...], AttributionDimension | None]:
    """`tag:Team,tag:CostCenter` and the one whose values are teams (it must be among them)."""
    try:
        dimensions = parse_dimensions([d for d in (dimensions_text or "").split(",") if d.strip()])
        team = parse_dimension(team_text) if team_text else None
    except TeamConfigError as error:
        raise SettingsError(f"{PREFIX}ATTRIBUTION_DIMENSIONS/TEAM_DIMENSION: {error}") from None
    if team is not None and team not in dimensions:
        raise SettingsError(f"{PREFIX}TEAM_DIMENSION={team.spec()!r} must be one of {PREFIX}ATTRIBUTION_DIMENSIONS")
    return dimensions, team


@dataclass(frozen=True)
class ReportSettings(ChatChannels):
    stage: str
    timezone: str
    currency: str
    top_n: int
    monthly_budget: Decimal | None
    teams_secret_name: str | None
    slack_secret_name: str | None
    outbox_table: str | None
    use_mock_data: bool
    budgets_table: str | None = None
    budget_alerts_table: str | None = None
    alert_topic_arn: str | None = None
    event_bus_name: str = "default"
    forecast_interval: Decimal = Decimal("0.8")
    anomalies_table: str | None = None
    anomaly_min_impact: Decimal = Decimal(0)
    anomaly_realert_growth: Decimal = Decimal("0.5")
    attribution_dimensions: tuple[AttributionDimension, ...] = ()
    team_dimension: AttributionDimension | None = None  # its values are teams, routed to their channels
    team_routes_table: str | None = None
    team_webhooks_secret_name: str | None = None  # one JSON map: team -> {"teams": url, "slack": url}
    chargeback_bucket: str | None = None
    chargeback_unallocated: str = "proportional"  # or "separate": untagged cost kept as its own line
    chargeback_link_minutes: int = 60
    recommendations_table: str | None = None  # savings opportunities (Cost Optimization Hub), when enabled
    savings_plans_kpi: bool = False  # the weekly card asks for Savings Plans coverage/utilisation (2 requests)
    anomaly_monitor_since: date | None = None  # the services monitor's start: the card says it is learning
    cost_metric: CostMetric = DEFAULT_METRIC  # every Cost Explorer request and parser (costMetric)
    breakdown: Breakdown | None = None  # the weekly card's second grouping; None: organisation or not decides

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReportSettings:
        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(PREFIX + name, default)
            return value.strip() if isinstance(value, str) and value.strip() else default

        timezone = get("TIMEZONE", "UTC") or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{PREFIX}TIMEZONE={timezone!r} is not an IANA time zone") from None
        currency = (get("CURRENCY", "USD") or "USD").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise SettingsError(f"{PREFIX}CURRENCY={currency!r} is not an ISO 4217 code")
        top_text = get("TOP_N", "5") or "5"
        if not top_text.isdigit() or not 1 <= int(top_text) <= 10:
            raise SettingsError(f"{PREFIX}TOP_N={top_text!r} must be an integer from 1 to 10")
        budget_text = get("MONTHLY_BUDGET")
        budget = None
        if budget_text is not None:
            try:
                budget = Decimal(budget_text)
            except InvalidOperation:
                budget = None
            if budget is None or not budget.is_finite() or budget <= 0:
                raise SettingsError(f"{PREFIX}MONTHLY_BUDGET={budget_text!r} must be a positive amount")
        interval_text = get("FORECAST_INTERVAL", "0.8") or "0.8"
        try:
            interval = Decimal(interval_text)
        except InvalidOperation:
            interval = Decimal(-1)
        if not Decimal("0.5") <= interval <= Decimal("0.99"):
            raise SettingsError(f"{PREFIX}FORECAST_INTERVAL={interval_text!r} must be between 0.5 and 0.99")
        min_impact = decimal_in(get("ANOMALY_MIN_IMPACT", "0") or "0", "ANOMALY_MIN_IMPACT", Decimal(0), None)
        growth = decimal_in(get("ANOMALY_REALERT_GROWTH", "0.5") or "0.5", "ANOMALY_REALERT_GROWTH", None, Decimal(10))
        if growth <= 0:
            raise SettingsError(f"{PREFIX}ANOMALY_REALERT_GROWTH={str(growth)!r} must be greater than 0")
        dimensions, team = _attribution(get("ATTRIBUTION_DIMENSIONS"), get("TEAM_DIMENSION"))
        unallocated = get("CHARGEBACK_UNALLOCATED", "proportional") or "proportional"
        if unallocated not in ("proportional", "separate"):
            raise SettingsError(f"{PREFIX}CHARGEBACK_UNALLOCATED={unallocated!r} must be proportional or separate")
        link_text = get("CHARGEBACK_LINK_EXPIRY_MINUTES", "60") or "60"
        if not link_text.isdigit() or not 1 <= int(link_text) <= 720:
            raise SettingsError(f"{PREFIX}CHARGEBACK_LINK_EXPIRY_MINUTES={link_text!r} must be from 1 to 720")
        metric, breakdown = _metric_and_breakdown(get("COST_METRIC"), get("BREAKDOWN"))
        return cls(
            stage=get("STAGE", "dev") or "dev",
            timezone=timezone,
            currency=currency,
            top_n=int(top_text),
            monthly_budget=budget,
            teams_secret_name=get("TEAMS_SECRET_NAME"),
            slack_secret_name=get("SLACK_SECRET_NAME"),
            outbox_table=get("OUTBOX_TABLE"),
            use_mock_data=flag(env.get(PREFIX + "USE_MOCK_DATA")),
            budgets_table=get("BUDGETS_TABLE"),
            budget_alerts_table=get("BUDGET_ALERTS_TABLE"),
            alert_topic_arn=get("ALERT_TOPIC_ARN"),
            event_bus_name=get("EVENT_BUS_NAME", "default") or "default",
            forecast_interval=interval,
            anomalies_table=get("ANOMALIES_TABLE"),
            anomaly_min_impact=min_impact,
            anomaly_realert_growth=growth,
            attribution_dimensions=dimensions,
            team_dimension=team,
            team_routes_table=get("TEAM_ROUTES_TABLE"),
            team_webhooks_secret_name=get("TEAM_WEBHOOKS_SECRET_NAME"),
            chargeback_bucket=get("CHARGEBACK_BUCKET"),
            chargeback_unallocated=unallocated,
            chargeback_link_minutes=int(link_text),
            recommendations_table=get("RECOMMENDATIONS_TABLE"),
            savings_plans_kpi=flag(env.get(PREFIX + "SAVINGS_PLANS_KPI")),
            anomaly_monitor_since=iso_date(get("ANOMALY_MONITOR_SINCE"), "ANOMALY_MONITOR_SINCE"),
            cost_metric=metric,
            breakdown=breakdown,
        )


def _metric_and_breakdown(metric_text: str | None, breakdown_text: str | None) -> tuple[CostMetric, Breakdown | None]:
    try:
        metric = parse_metric(metric_text) if metric_text else DEFAULT_METRIC
    except ValueError as error:
        raise SettingsError(f"{PREFIX}COST_METRIC: {error}") from None
    try:
        breakdown = None
        if breakdown_text:
            from finops_guard.costs.breakdown import parse_breakdown

            breakdown = parse_breakdown(breakdown_text)
    except ValueError as error:
        raise SettingsError(f"{PREFIX}BREAKDOWN: {error}") from None
    return metric, breakdown
