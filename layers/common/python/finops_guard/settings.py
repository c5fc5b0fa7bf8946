"""Runtime settings of the report function, read from environment variables once and validated.

Values are names and knobs set by the CDK stack (never secrets): secret *names* travel in the
environment, secret values only ever come from Secrets Manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from finops_guard.teams import AttributionDimension, TeamConfigError, parse_dimension, parse_dimensions

PREFIX = "FINOPSGUARD_"


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _decimal_in(text: str, name: str, low: Decimal | None, high: Decimal | None) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise SettingsError(f"{PREFIX}{name}={text!r} is not a number") from None
    if not value.is_finite() or (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{PREFIX}{name}={text!r} is out of range")
    return value


def _iso_date(text: str | None, name: str) -> date | None:
    """`YYYY-MM-DD` exactly (date.fromisoformat alone would also take `20261110` or `2026-W46-2`)."""
    if text is None:
        return None
    problem = SettingsError(f"{PREFIX}{name}={text!r} must be a date as YYYY-MM-DD")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise problem
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise problem from None


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
class ReportSettings:
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
        min_impact = _decimal_in(get("ANOMALY_MIN_IMPACT", "0") or "0", "ANOMALY_MIN_IMPACT", Decimal(0), None)
        growth = _decimal_in(get("ANOMALY_REALERT_GROWTH", "0.5") or "0.5", "ANOMALY_REALERT_GROWTH", None, Decimal(10))
        if growth <= 0:
            raise SettingsError(f"{PREFIX}ANOMALY_REALERT_GROWTH={str(growth)!r} must be greater than 0")
        dimensions, team = _attribution(get("ATTRIBUTION_DIMENSIONS"), get("TEAM_DIMENSION"))
        unallocated = get("CHARGEBACK_UNALLOCATED", "proportional") or "proportional"
        if unallocated not in ("proportional", "separate"):
            raise SettingsError(f"{PREFIX}CHARGEBACK_UNALLOCATED={unallocated!r} must be proportional or separate")
        link_text = get("CHARGEBACK_LINK_EXPIRY_MINUTES", "60") or "60"
        if not link_text.isdigit() or not 1 <= int(link_text) <= 720:
            raise SettingsError(f"{PREFIX}CHARGEBACK_LINK_EXPIRY_MINUTES={link_text!r} must be from 1 to 720")
        return cls(
            stage=get("STAGE", "dev") or "dev",
            timezone=timezone,
            currency=currency,
            top_n=int(top_text),
            monthly_budget=budget,
            teams_secret_name=get("TEAMS_SECRET_NAME"),
            slack_secret_name=get("SLACK_SECRET_NAME"),
            outbox_table=get("OUTBOX_TABLE"),
            use_mock_data=_flag(env.get(PREFIX + "USE_MOCK_DATA")),
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
            savings_plans_kpi=_flag(env.get(PREFIX + "SAVINGS_PLANS_KPI")),
            anomaly_monitor_since=_iso_date(get("ANOMALY_MONITOR_SINCE"), "ANOMALY_MONITOR_SINCE"),
        )

    def require(self, field_name: str) -> str:
        value = getattr(self, field_name)
        if not value:
            raise SettingsError(f"{PREFIX}{field_name.upper()} is not set")
        return value

    @property
    def chat_channels(self) -> list[str]:
        return ["teams", "slack"] if self.slack_secret_name else ["teams"]

    def secret_for(self, channel: str) -> str:
        name = {"teams": self.teams_secret_name, "slack": self.slack_secret_name}.get(channel)
        if not name:
            raise SettingsError(f"no webhook secret is configured for channel {channel!r}")
        return name


@dataclass(frozen=True)
class BillingSettings:
    """The Stripe webhook function's settings (names and knobs; the signing secret is in Secrets Manager)."""

    stripe_secret_name: str
    stripe_previous_secret_name: str | None
    events_table: str
    ledger_table: str
    objects_table: str
    alerts_table: str
    dunning_table: str
    thresholds: dict[str, Decimal]
    dunning_steps: list[tuple[int, str]]
    max_body_bytes: int
    invoice_requests_table: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BillingSettings:
        import json

        from finops_guard.billing import parse_dunning_steps

        def need(name: str) -> str:
            value = (env.get(PREFIX + name) or "").strip()
            if not value:
                raise SettingsError(f"{PREFIX}{name} is not set")
            return value

        raw_thresholds = env.get(PREFIX + "BILLING_THRESHOLDS") or "{}"
        try:
            parsed = json.loads(raw_thresholds)
            thresholds = {str(k).upper(): Decimal(str(v)) for k, v in parsed.items()}
        except (ValueError, AttributeError, InvalidOperation):
            raise SettingsError(
                f"{PREFIX}BILLING_THRESHOLDS={raw_thresholds!r} is not a JSON object of amounts"
            ) from None
        try:
            steps = parse_dunning_steps(env.get(PREFIX + "DUNNING_STEPS") or "0:email,1:sms,3:email")
        except ValueError as error:
            raise SettingsError(f"{PREFIX}DUNNING_STEPS: {error}") from None
        max_body = env.get(PREFIX + "MAX_BODY_BYTES") or "262144"
        if not max_body.isdigit():
            raise SettingsError(f"{PREFIX}MAX_BODY_BYTES={max_body!r} is not a number of bytes")
        return cls(
            stripe_secret_name=need("STRIPE_SECRET_NAME"),
            stripe_previous_secret_name=(env.get(PREFIX + "STRIPE_PREVIOUS_SECRET_NAME") or "").strip() or None,
            events_table=need("STRIPE_EVENTS_TABLE"),
            ledger_table=need("LEDGER_TABLE"),
            objects_table=need("BILLING_OBJECTS_TABLE"),
            alerts_table=need("BILLING_ALERTS_TABLE"),
            dunning_table=need("DUNNING_TABLE"),
            thresholds=thresholds,
            dunning_steps=steps,
            max_body_bytes=int(max_body),
            invoice_requests_table=(env.get(PREFIX + "INVOICE_REQUESTS_TABLE") or "").strip() or None,
        )


@dataclass(frozen=True)
class BillingOpsSettings:
    """Settings of the billing operations functions (dunning sender, reconciliation, finance admin
    API and invoice bot). The Stripe API key is in Secrets Manager; only its name travels here."""

    stage: str
    stripe_api_key_secret_name: str
    stripe_api_base: str | None  # a Stripe-compatible server for tests and local runs; unset in production
    ledger_table: str
    objects_table: str
    alerts_table: str
    dunning_table: str
    invoice_requests_table: str | None = None
    export_bucket: str | None = None
    dunning_sender_email: str | None = None  # SES identity the dunning e-mails come from
    dunning_templates: str | None = None  # JSON object of step templates (see finops_guard.dunning)
    variance_percent: Decimal = Decimal(1)
    reconciliation_days: int = 30
    portal_return_url: str | None = None
    invoice_days_until_due: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BillingOpsSettings:
        def get(name: str) -> str | None:
            value = (env.get(PREFIX + name) or "").strip()
            return value or None

        def need(name: str) -> str:
            value = get(name)
            if value is None:
                raise SettingsError(f"{PREFIX}{name} is not set")
            return value

        def integer(name: str, default: int, low: int, high: int) -> int:
            text = get(name) or str(default)
            if not text.isdigit() or not low <= int(text) <= high:
                raise SettingsError(f"{PREFIX}{name}={text!r} must be an integer from {low} to {high}")
            return int(text)

        api_base = get("STRIPE_API_BASE")
        if api_base is not None and not re.match(r"https?://", api_base):
            raise SettingsError(f"{PREFIX}STRIPE_API_BASE={api_base!r} must be an http(s):// base URL")
        variance = _decimal_in(get("VARIANCE_PERCENT") or "1", "VARIANCE_PERCENT", Decimal(0), Decimal(100))
        return cls(
            stage=get("STAGE") or "dev",
            stripe_api_key_secret_name=need("STRIPE_API_KEY_SECRET_NAME"),
            stripe_api_base=api_base.rstrip("/") if api_base else None,
            ledger_table=need("LEDGER_TABLE"),
            objects_table=need("BILLING_OBJECTS_TABLE"),
            alerts_table=need("BILLING_ALERTS_TABLE"),
            dunning_table=need("DUNNING_TABLE"),
            invoice_requests_table=get("INVOICE_REQUESTS_TABLE"),
            export_bucket=get("EXPORT_BUCKET"),
            dunning_sender_email=get("DUNNING_SENDER_EMAIL"),
            dunning_templates=get("DUNNING_TEMPLATES"),
            variance_percent=variance,
            reconciliation_days=integer("RECONCILIATION_DAYS", 30, 1, 30),
            portal_return_url=get("PORTAL_RETURN_URL"),
            invoice_days_until_due=integer("INVOICE_DAYS_UNTIL_DUE", 30, 0, 365),
        )

    def require(self, field_name: str) -> str:
        value = getattr(self, field_name)
        if not value:
            raise SettingsError(f"{PREFIX}{field_name.upper()} is not set")
        return str(value)
