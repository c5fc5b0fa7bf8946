"""Typed FinOps Guard configuration, read from CDK context and validated before any resource exists.

Values given with ``cdk synth -c key=value`` always arrive as strings, so every parser accepts the
string form of numbers, booleans and null as well as the JSON types cdk.json can hold.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from constructs import Node
from finops_guard.core.money import ISO_4217
from finops_guard.costs.breakdown import BREAKDOWN_NAMES, parse_breakdown
from finops_guard.costs.cost_metric import METRIC_NAMES, parse_metric
from finops_guard.costs.teams import MAX_DIMENSIONS, TeamConfigError, parse_dimension

# Defaults mirror the "context" block of cdk.json (a test keeps the two in step).
DEFAULTS: dict[str, Any] = {
    "stage": "dev",
    "reportSchedule": "cron(0 8 ? * MON *)",
    "timezone": "UTC",
    "currency": "USD",
    "topN": 5,
    "monthlyBudget": None,
    "opsAlarmEmail": None,
    "opsAlarmHttpsEndpoints": [],
    "slackEnabled": False,
    "owner": "platform-team",
    "costCenter": "finops",
    "budgetSchedule": "cron(0 9 * * ? *)",
    "forecastInterval": 0.8,
    "financeAlertEmail": None,
    "anomalyMinImpact": 0,
    "anomalyRealertGrowth": 0.5,
    # JSON null in context cannot be told from an absent key (it falls back to 100 here): switch the
    # absolute threshold off with the string "null", e.g. -c anomalyThresholdAbsolute=null.
    "anomalyThresholdAbsolute": 100,
    "anomalyThresholdPercent": None,
    "anomalyThresholdMatch": "any",
    "anomalyServiceMonitor": True,
    "anomalyMonitorArns": [],
    "anomalyLinkedAccounts": [],
    "anomalyTag": None,
    "anomalyCostCategory": None,
    "billingMonthlyThresholds": {},
    "dunningSteps": "0:email,1:sms,3:email",
    "webhookMaxBodyBytes": 262144,
    "billingApiRateLimit": 50,
    "billingApiBurstLimit": 100,
    "billingAdminRateLimit": 10,
    "billingAdminBurstLimit": 20,
    "dunningSenderEmail": None,
    "dunningTemplates": None,
    "dunningSchedule": "rate(1 hour)",
    "reconciliationSchedule": "cron(30 6 * * ? *)",
    "billingExportSchedule": "cron(0 6 ? * MON *)",
    "reconciliationVariancePercent": 1,
    "billingPortalReturnUrl": None,
    "invoiceDaysUntilDue": 30,
    # Only for test and local deployments: a Stripe-compatible server (stripe-mock, a loopback fake).
    "stripeApiBase": None,
    "attributionDimensions": ["tag:Team", "tag:CostCenter"],
    # null (or absent): the first attribution dimension; "" or "null" switches team routing off.
    "teamDimension": None,
    "chargebackUnallocated": "proportional",
    "chargebackSchedule": "cron(0 9 1 * ? *)",
    "chargebackLinkExpiryMinutes": 60,
    # Off by default: Cost Optimization Hub is an opt-in service; switched on in an account that is not
    # enrolled, the daily refresh would fail and page every day until someone enrols or switches it off.
    "savingsRecommendations": False,
    "savingsPlansKpi": False,
    "savingsSchedule": "cron(30 5 * * ? *)",
    "dashboard": False,
    # Reading the payer (management) account's costs from a tooling account: set payerAccountId (and the
    # external id) where the cost stacks run; deploy FinOpsGuard-<stage>-PayerAccess into the payer with
    # payerAccess=true, toolingAccountId and toolingRegion (README, Deploy).
    "payerAccountId": None,
    "payerRoleExternalId": None,
    "payerAccess": False,
    "toolingAccountId": None,
    "toolingRegion": None,
    "payerAnomalyMonitorArns": [],
    # --- Reports at every cadence (issue 22): the daily digest and the month-close report, both opt-in.
    # No schedule, function or alarm of their own: the budget guard's daily run and the chargeback's
    # monthly run carry them (infra/costs/report_cadence.py).
    "dailyDigest": False,  # false | true | ["default", "teams", "slack", "team:*", "team:<name>"]
    "digestMinShare": 20,  # percent of the 7-day average a rise must reach...
    "digestMinAmount": 100,  # ...and currency units it must reach, for a digest to post
    "monthCloseReport": False,
    "budgetAdjustThreshold": 10,  # percent: a budget's variance beyond it gets a proposed amount
}

# --- Cost numbers (issue 19): the metric every cost function reads, the weekly card's second breakdown ---
COST_NUMBER_DEFAULTS: dict[str, Any] = {
    "costMetric": "UnblendedCost",
    # null (or absent): decided at run time, LINKED_ACCOUNT when Cost Explorer sees an organisation (the
    # management account, or its role), REGION for a single account.
    "breakdown": None,
}
DEFAULTS.update(COST_NUMBER_DEFAULTS)
# The functions that read Cost Explorer amounts get FINOPSGUARD_COST_METRIC; the anomaly forwarder reads
# Cost Anomaly Detection's impact, which has no metric to choose.
COST_METRIC_FUNCTIONS = ("weekly-report", "budget-guard", "chargeback", "savings-refresh")
# --- end of cost numbers ---

# One list of currencies for synth-time and run-time validation.
ISO_4217_CURRENCIES = ISO_4217

# The forecast band's confidence level: below 0.5 it is no band at all, at 1 it is unbounded.
FORECAST_INTERVAL_MIN = Decimal("0.5")
FORECAST_INTERVAL_MAX = Decimal("0.99")

# A re-alert needs the anomaly's impact to grow by this fraction; above 10 (1000 %) it never would.
REALERT_GROWTH_MAX = Decimal("10")
# Paging integrations (PagerDuty, Opsgenie, ...) subscribed to the ops topic: a handful at most, more is a mistake.
OPS_HTTPS_ENDPOINTS_MAX = 10
# Cost Anomaly Detection limits: linked accounts per custom monitor, and key/value lengths.
LINKED_ACCOUNTS_MAX = 10
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
COST_CATEGORY_NAME_MAX, COST_CATEGORY_VALUE_MAX = 50, 50
THRESHOLD_MATCHES = ("any", "all")
# Dunning: one step per day after the invoice failed, the last one at most two months later.
DUNNING_DAY_MAX = 60
DUNNING_CHANNELS = ("email", "sms")
# Stripe events are at most a few tens of KiB; the API Gateway payload limit is 10 MB.
WEBHOOK_BODY_MIN, WEBHOOK_BODY_MAX = 1024, 1048576
# API Gateway's default account-level throttle quota (requests per second, every API of the account in
# the region together); no stage or method limit can exceed it.
API_LIMIT_MAX = 10000
# Dunning message templates: what each channel needs, the placeholders the sender fills in, and
# two SMS segments at most (longer texts are split and billed per segment).
DUNNING_TEMPLATE_FIELDS = {"email": ("subject", "body"), "sms": ("body",)}
DUNNING_PLACEHOLDERS = ("customer_name", "amount", "invoice_number", "pay_link", "due_date", "day")
SMS_BODY_MAX = 320
VARIANCE_PERCENT_MAX = Decimal(100)
# Payment terms of bot invoices: 0 is due on receipt, at most a year.
INVOICE_DAYS_UNTIL_DUE_MAX = 365
# Chargeback: untagged spend is shared out in proportion to tagged spend, or kept as its own line.
CHARGEBACK_UNALLOCATED = ("proportional", "separate")
# The pre-signed link in the chargeback card: at least a minute, at most half a day (a working day's
# reading; the CSV stays in the bucket for anyone with read access after that).
CHARGEBACK_LINK_MINUTES_MAX = 720
# The payer role's external id: STS takes 2 to 1224 of these characters; a value a third party could
# guess (short, repetitive, or built from an account id) is refused, so at least 32 random ones.
EXTERNAL_ID_MIN, EXTERNAL_ID_MAX = 32, 1224
EXTERNAL_ID_MIN_DISTINCT = 8

_STAGE = re.compile(r"[a-z0-9-]{1,16}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_RATE = re.compile(r"rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)")
_CRON = re.compile(r"cron\((?P<fields>[^()]*)\)")
# CloudFormation tag values: letters, digits, spaces and _ . : / = + - @, at most 256 characters.
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{1,256}")
_ACCOUNT_ID = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]+")
_MONITOR_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:ce::\d{12}:anomalymonitor/[A-Za-z0-9-]{1,64}")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?([/?#]\S*)?")
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?([/?#]\S*)?")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NULLS = {"", "null", "none"}
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


class ConfigError(ValueError):
    """A context value is invalid; the message names the context key and the bad value."""

    def __init__(self, key: str, value: Any, problem: str) -> None:
        super().__init__(f"Invalid context '{key}': {value!r} {problem}")
        self.key = key
        self.value = value


@dataclass(frozen=True)
class CostFilter:
    """One Cost Explorer filter key and the values it matches, e.g. tag ``team`` = ``data, ml``."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class DunningStep:
    """Remind the customer on ``day`` days after the invoice payment failed, through ``channel``."""

    day: int
    channel: str


@dataclass(frozen=True)
class DunningTemplate:
    """The text of one dunning message. ``key`` is a channel (``email``, ``sms``: every step of that
    channel) or ``<day>:<channel>`` (one step); ``subject`` is None for SMS."""

    key: str
    body: str
    subject: str | None = None

    def as_json(self) -> dict[str, str]:
        return {"body": self.body} if self.subject is None else {"subject": self.subject, "body": self.body}


@dataclass(frozen=True)
class FinOpsGuardConfig:
    stage: str
    report_schedule: str
    timezone: str
    currency: str
    top_n: int
    monthly_budget: str | None
    ops_alarm_email: str | None
    ops_alarm_https_endpoints: tuple[str, ...]
    slack_enabled: bool
    owner: str
    cost_center: str
    budget_schedule: str
    forecast_interval: str
    finance_alert_email: str | None
    anomaly_min_impact: str
    anomaly_realert_growth: str
    anomaly_threshold_absolute: str | None
    anomaly_threshold_percent: str | None
    anomaly_threshold_match: str
    anomaly_service_monitor: bool
    anomaly_monitor_arns: tuple[str, ...]
    anomaly_linked_accounts: tuple[str, ...]
    anomaly_tag: CostFilter | None
    anomaly_cost_category: CostFilter | None
    billing_monthly_thresholds: tuple[tuple[str, str], ...]  # (currency, amount), sorted by currency
    dunning_steps: tuple[DunningStep, ...]
    webhook_max_body_bytes: int
    billing_api_rate_limit: int  # the Stripe webhook (POST /stripe/webhook)
    billing_api_burst_limit: int
    billing_admin_rate_limit: int  # every other method of the stage, each on its own (the admin routes)
    billing_admin_burst_limit: int
    dunning_sender_email: str | None
    dunning_templates: tuple[DunningTemplate, ...]  # sorted by key; empty: the sender's built-in texts
    dunning_schedule: str
    reconciliation_schedule: str
    billing_export_schedule: str
    reconciliation_variance_percent: str
    billing_portal_return_url: str | None
    invoice_days_until_due: int
    stripe_api_base: str | None
    attribution_dimensions: tuple[str, ...]  # "tag:<key>" / "costCategory:<name>", in context order
    team_dimension: str | None  # one of attribution_dimensions; None: team routing is off
    chargeback_unallocated: str
    chargeback_schedule: str
    chargeback_link_expiry_minutes: int
    savings_recommendations: bool  # Cost Optimization Hub -> recommendations table, daily, and the weekly card
    savings_plans_kpi: bool  # the weekly card's Savings Plans coverage and utilisation (2 Cost Explorer requests)
    savings_schedule: str
    dashboard: bool  # the CloudWatch dashboards, opt-in: $3 a month each beyond an account's first three
    # The daily digest and the month-close report (issue 22); defined with its keys at the end of this file.
    reports: ReportCadence = field(default_factory=lambda: ReportCadence())
    # The payer (management) account whose costs the cost functions read through its role; None: their own.
    payer_account_id: str | None = None
    payer_role_external_id: str | None = None  # set exactly when payer_account_id or payer_access is
    payer_access: bool = False  # the app also holds FinOpsGuard-<stage>-PayerAccess (deployed into the payer)
    tooling_account_id: str | None = None  # where the cost stacks run: set exactly when payer_access is
    tooling_region: str | None = None
    payer_anomaly_monitor_arns: tuple[str, ...] = ()  # the payer's monitors PayerAccess subscribes
    # --- cost numbers (issue 19) ---
    cost_metric: str = "UnblendedCost"  # Cost Explorer's metric name, canonical spelling
    breakdown: str | None = None  # None: organisation or single account decides at run time

    @property
    def payer_role_name(self) -> str:
        """The read role in the payer account, ``finops-guard-<stage>-payer-read`` (a fixed name: the
        tooling account's functions name it in their grant and environment)."""
        return f"finops-guard-{self.stage}-payer-read"

    @property
    def payer_reader_path(self) -> str:
        """The IAM path of the cost functions' roles that may assume the payer role: the payer role's
        trust names this path, since CloudFormation generates the roles' names."""
        return f"/finops-guard/{self.stage}/payer-reader/"

    @property
    def creates_custom_anomaly_monitors(self) -> bool:
        return bool(self.anomaly_linked_accounts or self.anomaly_tag or self.anomaly_cost_category)

    @property
    def billing_thresholds_json(self) -> str:
        """The monthly billing thresholds as compact JSON text, e.g. ``{"EUR":"4000","USD":"5000"}``."""
        return json.dumps(dict(self.billing_monthly_thresholds), separators=(",", ":"))

    @property
    def dunning_steps_text(self) -> str:
        """The dunning steps in their context form, e.g. ``0:email,1:sms,3:email``."""
        return ",".join(f"{step.day}:{step.channel}" for step in self.dunning_steps)

    @property
    def dunning_templates_json(self) -> str | None:
        """The dunning templates as compact JSON text keyed like the context, or None when unset."""
        if not self.dunning_templates:
            return None
        templates = {template.key: template.as_json() for template in self.dunning_templates}
        return json.dumps(templates, separators=(",", ":"), ensure_ascii=False)

    @property
    def attribution_dimensions_text(self) -> str:
        """The attribution dimensions as the functions read them, e.g. ``tag:Team,tag:CostCenter``."""
        return ",".join(self.attribution_dimensions)

    def cost_metric_environment(self) -> dict[str, str]:
        """The metric every function reading Cost Explorer amounts uses (COST_METRIC_FUNCTIONS)."""
        return {"FINOPSGUARD_COST_METRIC": self.cost_metric}

    def breakdown_environment(self) -> dict[str, str]:
        """The weekly report's breakdown when chosen; absent, a function reading the payer's costs counts
        as an organisation's, and one reading its own account's asks (organizations:DescribeOrganization,
        see infra/costs/cost_reports.py)."""
        return {"FINOPSGUARD_BREAKDOWN": self.breakdown} if self.breakdown else {}

    def report_environment(self) -> dict[str, str]:
        """Stage, schedule time zone and currency: what every chat-posting function renders with."""
        return {
            "FINOPSGUARD_STAGE": self.stage,
            "FINOPSGUARD_TIMEZONE": self.timezone,
            "FINOPSGUARD_CURRENCY": self.currency,
        }

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> FinOpsGuardConfig:
        """Build from a mapping of context keys; missing keys take the cdk.json defaults."""

        def value(key: str) -> Any:
            return context.get(key, DEFAULTS[key])

        dunning_steps = _dunning_steps(value("dunningSteps"))
        return cls(
            stage=_stage(value("stage")),
            report_schedule=_schedule_expression("reportSchedule", value("reportSchedule")),
            timezone=_timezone(value("timezone")),
            currency=_currency(value("currency")),
            top_n=_int_in_range("topN", value("topN"), 1, 10),
            monthly_budget=_optional_positive_decimal("monthlyBudget", value("monthlyBudget")),
            ops_alarm_email=_optional_email("opsAlarmEmail", value("opsAlarmEmail")),
            ops_alarm_https_endpoints=_https_endpoints(value("opsAlarmHttpsEndpoints")),
            slack_enabled=_bool("slackEnabled", value("slackEnabled")),
            owner=_tag_value("owner", value("owner")),
            cost_center=_tag_value("costCenter", value("costCenter")),
            budget_schedule=_schedule_expression("budgetSchedule", value("budgetSchedule")),
            forecast_interval=_decimal_in_range(
                "forecastInterval", value("forecastInterval"), FORECAST_INTERVAL_MIN, FORECAST_INTERVAL_MAX
            ),
            finance_alert_email=_optional_email("financeAlertEmail", value("financeAlertEmail")),
            **_anomaly_settings(value),
            billing_monthly_thresholds=_billing_thresholds(value("billingMonthlyThresholds")),
            dunning_steps=dunning_steps,
            webhook_max_body_bytes=_int_in_range(
                "webhookMaxBodyBytes", value("webhookMaxBodyBytes"), WEBHOOK_BODY_MIN, WEBHOOK_BODY_MAX
            ),
            billing_api_rate_limit=_int_in_range("billingApiRateLimit", value("billingApiRateLimit"), 1, API_LIMIT_MAX),
            billing_api_burst_limit=_int_in_range(
                "billingApiBurstLimit", value("billingApiBurstLimit"), 1, API_LIMIT_MAX
            ),
            billing_admin_rate_limit=_int_in_range(
                "billingAdminRateLimit", value("billingAdminRateLimit"), 1, API_LIMIT_MAX
            ),
            billing_admin_burst_limit=_int_in_range(
                "billingAdminBurstLimit", value("billingAdminBurstLimit"), 1, API_LIMIT_MAX
            ),
            **_billing_ops_settings(value, dunning_steps),
            **_attribution_settings(value),
            savings_recommendations=_bool("savingsRecommendations", value("savingsRecommendations")),
            savings_plans_kpi=_bool("savingsPlansKpi", value("savingsPlansKpi")),
            savings_schedule=_schedule_expression("savingsSchedule", value("savingsSchedule")),
            dashboard=_bool("dashboard", value("dashboard")),
            **_cost_number_settings(value),
            **_payer_settings(value),
            reports=_report_cadence(
                value, _bool("slackEnabled", value("slackEnabled")), _attribution_settings(value)["team_dimension"]
            ),  # fmt: skip
        )


def _cost_number_settings(value: Any) -> dict[str, Any]:
    """costMetric (Cost Explorer's spelling, any case) and breakdown (null, "" or "auto": decided at run time)."""
    metric_raw, breakdown_raw = value("costMetric"), value("breakdown")
    try:
        metric = parse_metric(_string("costMetric", metric_raw)).value
    except ValueError:
        raise ConfigError(
            "costMetric", metric_raw, f"is not a cost metric; use one of {', '.join(METRIC_NAMES)}"
        ) from None
    breakdown = None
    if not (
        breakdown_raw is None or (isinstance(breakdown_raw, str) and breakdown_raw.strip().lower() in {*_NULLS, "auto"})
    ):
        try:
            breakdown = parse_breakdown(_string("breakdown", breakdown_raw)).value
        except ValueError:
            raise ConfigError(
                "breakdown", breakdown_raw, f"is not a breakdown; use one of {', '.join(BREAKDOWN_NAMES)}, or null"
            ) from None
    return {"cost_metric": metric, "breakdown": breakdown}


def _billing_ops_settings(value: Any, steps: tuple[DunningStep, ...]) -> dict[str, Any]:
    return {
        "dunning_sender_email": _optional_email("dunningSenderEmail", value("dunningSenderEmail")),
        "dunning_templates": _dunning_templates(value("dunningTemplates"), steps),
        "dunning_schedule": _schedule_expression("dunningSchedule", value("dunningSchedule")),
        "reconciliation_schedule": _schedule_expression("reconciliationSchedule", value("reconciliationSchedule")),
        "billing_export_schedule": _schedule_expression("billingExportSchedule", value("billingExportSchedule")),
        "reconciliation_variance_percent": _variance_percent(value("reconciliationVariancePercent")),
        "billing_portal_return_url": _optional_url(
            "billingPortalReturnUrl", value("billingPortalReturnUrl"), _HTTPS_URL, "https://"
        ),
        "invoice_days_until_due": _int_in_range(
            "invoiceDaysUntilDue", value("invoiceDaysUntilDue"), 0, INVOICE_DAYS_UNTIL_DUE_MAX
        ),
        "stripe_api_base": _optional_url("stripeApiBase", value("stripeApiBase"), _HTTP_URL, "http:// or https://"),
    }


def _attribution_settings(value: Any) -> dict[str, Any]:
    dimensions = _attribution_dimensions(value("attributionDimensions"))
    return {
        "attribution_dimensions": dimensions,
        "team_dimension": _team_dimension(value("teamDimension"), dimensions),
        "chargeback_unallocated": _chargeback_unallocated(value("chargebackUnallocated")),
        "chargeback_schedule": _schedule_expression("chargebackSchedule", value("chargebackSchedule")),
        "chargeback_link_expiry_minutes": _int_in_range(
            "chargebackLinkExpiryMinutes", value("chargebackLinkExpiryMinutes"), 1, CHARGEBACK_LINK_MINUTES_MAX
        ),
    }


def _optional_account_id(key: str, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    account = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if account is None or not _ACCOUNT_ID.fullmatch(account):
        raise ConfigError(key, raw, 'is not a 12-digit AWS account id (quote it in cdk.json, e.g. "123456789012")')
    return account


def _optional_region(key: str, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    region = _string(key, raw)
    if not _REGION.fullmatch(region):
        raise ConfigError(key, raw, "is not an AWS region name such as us-east-1 or eu-west-1")
    return region


def _external_id(raw: Any, accounts: tuple[str | None, ...], stage: str) -> str | None:
    key = "payerRoleExternalId"
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    generate = "generate one with: openssl rand -hex 16"
    if not isinstance(raw, str) or not EXTERNAL_ID_MIN <= len(raw.strip()) <= EXTERNAL_ID_MAX:
        raise ConfigError(
            key, raw, f"must be {EXTERNAL_ID_MIN} to {EXTERNAL_ID_MAX} characters that nobody could guess; {generate}"
        )
    external_id = raw.strip()
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise ConfigError(key, raw, f"may hold only letters, digits and _+=,.@:/- (what STS accepts); {generate}")
    guessable = [account for account in accounts if account and account in external_id]
    if len(set(external_id)) < EXTERNAL_ID_MIN_DISTINCT or guessable or f"finops-guard-{stage}" in external_id:
        raise ConfigError(
            key,
            raw,
            f"could be guessed (too few distinct characters, or built from an account id or the stage); {generate}",
        )
    return external_id


def _payer_settings(value: Any) -> dict[str, Any]:
    """Who reads whose costs. payerAccountId (where the cost stacks run) and payerAccess (the payer's own
    stack) each need the external id; payerAccess also names the tooling account and region, and the
    payer and tooling accounts differ (in the payer account itself no role is needed)."""
    payer = _optional_account_id("payerAccountId", value("payerAccountId"))
    access = _bool("payerAccess", value("payerAccess"))
    tooling = _optional_account_id("toolingAccountId", value("toolingAccountId"))
    region = _optional_region("toolingRegion", value("toolingRegion"))
    stage = _stage(value("stage"))
    external_id = _external_id(value("payerRoleExternalId"), (payer, tooling), stage)
    monitors = _payer_monitor_arns(value("payerAnomalyMonitorArns"), payer)
    if (payer is not None or access) and external_id is None:
        raise ConfigError(
            "payerRoleExternalId",
            value("payerRoleExternalId"),
            "must be set with payerAccountId or payerAccess: the payer role is assumed only with it "
            "(generate one with: openssl rand -hex 16, and give both deploys the same value)",
        )
    if access:
        for key, given in (("payerAccountId", payer), ("toolingAccountId", tooling), ("toolingRegion", region)):
            if given is None:
                raise ConfigError(
                    key,
                    value(key),
                    "must be set with payerAccess=true: the payer stack names the payer account it is deployed "
                    "into, and the tooling account and region whose cost functions it trusts and whose event bus "
                    "receives the payer's anomaly events",
                )
    if payer is not None and payer == tooling:
        raise ConfigError(
            "toolingAccountId",
            value("toolingAccountId"),
            "is the payer account itself; deployed in the payer account, the cost functions read its costs "
            "directly: leave payerAccountId unset",
        )
    return {
        "payer_account_id": payer,
        "payer_role_external_id": external_id,
        "payer_access": access,
        "tooling_account_id": tooling,
        "tooling_region": region,
        "payer_anomaly_monitor_arns": monitors,
    }


def _payer_monitor_arns(raw: Any, payer: str | None) -> tuple[str, ...]:
    key = "payerAnomalyMonitorArns"
    arns = _string_list(key, raw)
    for arn in arns:
        if not isinstance(arn, str) or not _MONITOR_ARN.fullmatch(arn):
            raise ConfigError(key, raw, f"holds {arn!r}, not an arn:aws:ce::<account>:anomalymonitor/<id> ARN")
        if payer is None or arn.split(":")[4] != payer:
            raise ConfigError(key, raw, f"holds {arn!r}, which is no monitor of payerAccountId ({payer})")
    return _unique(arns)


def _anomaly_settings(value: Any) -> dict[str, Any]:
    absolute = _optional_positive_decimal("anomalyThresholdAbsolute", value("anomalyThresholdAbsolute"))
    percent = _optional_positive_decimal(
        "anomalyThresholdPercent", value("anomalyThresholdPercent"), "must be a positive percentage such as 20 or 12.5"
    )
    if absolute is None and percent is None:
        raise ConfigError(
            "anomalyThresholdAbsolute",
            value("anomalyThresholdAbsolute"),
            "and anomalyThresholdPercent are both unset; set at least one alert threshold",
        )
    settings: dict[str, Any] = {
        "anomaly_min_impact": _decimal_at_least_zero("anomalyMinImpact", value("anomalyMinImpact")),
        "anomaly_realert_growth": _realert_growth(value("anomalyRealertGrowth")),
        "anomaly_threshold_absolute": absolute,
        "anomaly_threshold_percent": percent,
        "anomaly_threshold_match": _threshold_match(value("anomalyThresholdMatch")),
        "anomaly_service_monitor": _bool("anomalyServiceMonitor", value("anomalyServiceMonitor")),
        "anomaly_monitor_arns": _monitor_arns(value("anomalyMonitorArns")),
        "anomaly_linked_accounts": _linked_accounts(value("anomalyLinkedAccounts")),
        "anomaly_tag": _cost_filter("anomalyTag", value("anomalyTag"), TAG_KEY_MAX, TAG_VALUE_MAX),
        "anomaly_cost_category": _cost_filter(
            "anomalyCostCategory", value("anomalyCostCategory"), COST_CATEGORY_NAME_MAX, COST_CATEGORY_VALUE_MAX
        ),
    }
    monitored = (
        settings["anomaly_service_monitor"]
        or settings["anomaly_monitor_arns"]
        or settings["anomaly_linked_accounts"]
        or settings["anomaly_tag"]
        or settings["anomaly_cost_category"]
    )
    if not monitored:
        raise ConfigError(
            "anomalyServiceMonitor",
            value("anomalyServiceMonitor"),
            "leaves no anomaly monitor to subscribe: set anomalyMonitorArns, anomalyLinkedAccounts, "
            "anomalyTag or anomalyCostCategory, or keep the service monitor",
        )
    return settings


# A context key shaped like FinOps Guard's own (camelCase, no ':', '@', '/' or '-'): CDK's keys
# (feature flags "@aws-cdk/...", "aws:cdk:...", cached lookups "availability-zones:...",
# "acknowledged-issue-numbers") never look like this, so one that isn't known is a typo.
_OWN_KEY_SHAPE = re.compile(r"[a-z][A-Za-z0-9]*")


def unknown_keys(keys: Iterable[str]) -> list[str]:
    """The keys that look like FinOps Guard's own context keys but aren't, in the order given."""
    return [key for key in keys if _OWN_KEY_SHAPE.fullmatch(key) and key not in DEFAULTS]


def _refuse_unknown_keys(context: Mapping[str, Any]) -> None:
    for key in unknown_keys(context):
        close = difflib.get_close_matches(key, DEFAULTS, n=1, cutoff=0.75)
        hint = f"did you mean '{close[0]}'?" if close else "see README, Context keys, for the keys FinOps Guard reads"
        raise ConfigError(key, context[key], f"is set, but '{key}' is not a FinOps Guard context key ({hint})")


def load_config(node: Node) -> FinOpsGuardConfig:
    """Read and validate the FinOps Guard keys from the construct tree's context. A key shaped like
    ours that we don't read (`-c montlyBudget=100`) is refused, so a typo never goes unnoticed."""
    _refuse_unknown_keys(node.get_all_context())
    context = {key: node.try_get_context(key) for key in DEFAULTS}
    return FinOpsGuardConfig.from_context({k: v for k, v in context.items() if v is not None})


def _string(key: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ConfigError(key, raw, "must be a string")
    return raw.strip()


def _stage(raw: Any) -> str:
    stage = _string("stage", raw)
    if not _STAGE.fullmatch(stage) or stage.startswith("-") or stage.endswith("-"):
        raise ConfigError("stage", raw, "must be 1-16 lowercase letters, digits or inner hyphens (it is used in names)")
    return stage


def _schedule_expression(key: str, raw: Any) -> str:
    expression = " ".join(_string(key, raw).split())
    if _RATE.fullmatch(expression):
        rate = _RATE.fullmatch(expression)
        assert rate is not None
        if (rate["value"] == "1") != (not rate["unit"].endswith("s")):
            raise ConfigError(key, raw, "uses the wrong unit form: write rate(1 day) but rate(2 days)")
        return expression
    cron = _CRON.fullmatch(expression)
    if cron:
        fields = cron["fields"].split()
        if len(fields) != 6:
            raise ConfigError(
                key,
                raw,
                f"is a cron expression with {len(fields)} fields; EventBridge Scheduler needs 6 "
                "(minutes hours day-of-month month day-of-week year), e.g. cron(0 8 ? * MON *)",
            )
        if "?" not in (fields[2], fields[4]):
            raise ConfigError(key, raw, "must use '?' in either day-of-month or day-of-week")
        return expression
    raise ConfigError(key, raw, "is not an EventBridge Scheduler cron(...) or rate(...) expression")


def _timezone(raw: Any) -> str:
    name = _string("timezone", raw)
    try:
        if not name:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError("timezone", raw, "is not an IANA time zone") from None
    return name


def _currency(raw: Any) -> str:
    code = _string("currency", raw)
    if code not in ISO_4217_CURRENCIES:
        raise ConfigError("currency", raw, "is not an ISO 4217 currency code (three capitals, e.g. EUR)")
    return code


def _int_in_range(key: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(key, raw, f"must be a whole number from {low} to {high}")
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
        number = int(raw)
    else:
        raise ConfigError(key, raw, f"must be a whole number from {low} to {high}")
    if not low <= number <= high:
        raise ConfigError(key, raw, f"must be a whole number from {low} to {high}")
    return number


def _optional_positive_decimal(
    key: str, raw: Any, problem: str = "must be a positive amount such as 1500 or 1500.50"
) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    amount = _decimal(key, raw, problem)
    if amount <= 0:
        raise ConfigError(key, raw, problem)
    return str(amount)


def _decimal_in_range(key: str, raw: Any, low: Decimal, high: Decimal) -> str:
    problem = f"must be a decimal from {low} to {high}, e.g. 0.8"
    number = _decimal(key, raw, problem)
    if not low <= number <= high:
        raise ConfigError(key, raw, problem)
    return str(number)


def _optional_email(key: str, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    address = _string(key, raw)
    if not _EMAIL.fullmatch(address):
        raise ConfigError(key, raw, "is not an e-mail address")
    return address


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ConfigError(key, raw, "must be true or false")


def _tag_value(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if not _TAG_VALUE.fullmatch(value):
        raise ConfigError(key, raw, "must be a non-empty tag value (letters, digits, spaces, _ . : / = + - @; max 256)")
    return value


def _decimal_at_least_zero(key: str, raw: Any) -> str:
    problem = "must be an amount of 0 or more, e.g. 25"
    number = _decimal(key, raw, problem)
    if number < 0:
        raise ConfigError(key, raw, problem)
    return str(number)


def _realert_growth(raw: Any) -> str:
    key, problem = "anomalyRealertGrowth", f"must be a fraction above 0 and at most {REALERT_GROWTH_MAX}, e.g. 0.5"
    number = _decimal(key, raw, problem)
    if not 0 < number <= REALERT_GROWTH_MAX:
        raise ConfigError(key, raw, problem)
    return str(number)


def _decimal(key: str, raw: Any, problem: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ConfigError(key, raw, problem)
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(key, raw, problem) from None
    if not number.is_finite():
        raise ConfigError(key, raw, problem)
    return number


def _threshold_match(raw: Any) -> str:
    match = _string("anomalyThresholdMatch", raw).lower()
    if match not in THRESHOLD_MATCHES:
        raise ConfigError(
            "anomalyThresholdMatch", raw, "must be 'any' (either threshold alerts) or 'all' (both must be met)"
        )
    return match


def _string_list(key: str, raw: Any) -> list[Any]:
    """A list from cdk.json, or from -c as a JSON array or comma-separated string; null is empty."""
    if raw is None:
        return []
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NULLS:
            return []
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(key, raw, "is not a valid JSON array") from None
        else:
            return [item.strip() for item in text.split(",")]
    if not isinstance(raw, list):
        raise ConfigError(key, raw, "must be a list (JSON array or comma-separated string)")
    return [item.strip() if isinstance(item, str) else item for item in raw]


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _monitor_arns(raw: Any) -> tuple[str, ...]:
    arns = _string_list("anomalyMonitorArns", raw)
    for arn in arns:
        if not isinstance(arn, str) or not _MONITOR_ARN.fullmatch(arn):
            raise ConfigError(
                "anomalyMonitorArns", raw, f"holds {arn!r}, not an arn:aws:ce::<account>:anomalymonitor/<id> ARN"
            )
    return _unique(arns)


def _https_endpoints(raw: Any) -> tuple[str, ...]:
    key = "opsAlarmHttpsEndpoints"
    urls = _string_list(key, raw)
    for url in urls:
        if not isinstance(url, str) or not _HTTPS_URL.fullmatch(url):
            raise ConfigError(key, raw, f"holds {url!r}, not an absolute https:// URL (alarms leave over TLS only)")
    unique = _unique(urls)
    if len(unique) > OPS_HTTPS_ENDPOINTS_MAX:
        raise ConfigError(key, raw, f"lists {len(unique)} endpoints; at most {OPS_HTTPS_ENDPOINTS_MAX} are allowed")
    return unique


def _linked_accounts(raw: Any) -> tuple[str, ...]:
    accounts = _string_list("anomalyLinkedAccounts", raw)
    for account in accounts:
        if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
            raise ConfigError("anomalyLinkedAccounts", raw, f"holds {account!r}, not a quoted 12-digit AWS account id")
    unique = _unique(accounts)
    if len(unique) > LINKED_ACCOUNTS_MAX:
        raise ConfigError(
            "anomalyLinkedAccounts",
            raw,
            f"lists {len(unique)} accounts; one monitor takes at most {LINKED_ACCOUNTS_MAX}",
        )
    return unique


def _cost_filter(key: str, raw: Any, key_max: int, value_max: int) -> CostFilter | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    text = _string(key, raw)
    name, separator, values_text = text.partition("=")
    name = name.strip()
    values = [v.strip() for v in values_text.split(",")]
    problem = f"must be 'name=value1,value2' (name up to {key_max} characters, values up to {value_max})"
    if not separator or not name or len(name) > key_max or not all(0 < len(v) <= value_max for v in values):
        raise ConfigError(key, raw, problem)
    return CostFilter(key=name, values=_unique(values))


def _billing_thresholds(raw: Any) -> tuple[tuple[str, str], ...]:
    """A mapping currency -> positive amount, from cdk.json or from -c as a JSON object; null is none."""
    key, problem = "billingMonthlyThresholds", 'must map ISO 4217 currencies to positive amounts, e.g. {"USD": "5000"}'
    thresholds = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NULLS:
            return ()
        try:
            thresholds = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(key, raw, problem) from None
    if not isinstance(thresholds, dict):
        raise ConfigError(key, raw, problem)
    amounts = []
    for currency, amount in thresholds.items():
        if currency not in ISO_4217_CURRENCIES:
            raise ConfigError(key, raw, f"holds {currency!r}, not an ISO 4217 currency code (three capitals, e.g. EUR)")
        try:
            positive = _optional_positive_decimal(key, amount)
        except ConfigError:
            positive = None
        if positive is None:
            raise ConfigError(key, raw, f"holds {currency} {amount!r}, not a positive amount such as 5000 or 5000.50")
        amounts.append((currency, positive))
    return tuple(sorted(amounts))


def _dunning_steps(raw: Any) -> tuple[DunningStep, ...]:
    key = "dunningSteps"
    problem = (
        f"must be comma-separated DAY:CHANNEL steps with days 0-{DUNNING_DAY_MAX} in ascending order "
        f"and channels {' or '.join(DUNNING_CHANNELS)}, e.g. 0:email,1:sms,3:email"
    )
    if not isinstance(raw, str):
        raise ConfigError(key, raw, problem)
    steps: list[DunningStep] = []
    for item in raw.split(","):
        day_text, separator, channel = (part.strip() for part in item.partition(":"))
        channel = channel.lower()
        if not separator or not re.fullmatch(r"\d{1,2}", day_text) or channel not in DUNNING_CHANNELS:
            raise ConfigError(key, raw, problem)
        day = int(day_text)
        if day > DUNNING_DAY_MAX or (steps and day <= steps[-1].day):
            raise ConfigError(key, raw, problem)
        steps.append(DunningStep(day=day, channel=channel))
    return tuple(steps)


def _variance_percent(raw: Any) -> str:
    key = "reconciliationVariancePercent"
    problem = f"must be a percentage above 0 and at most {VARIANCE_PERCENT_MAX}, e.g. 1 or 0.5"
    number = _decimal(key, raw, problem)
    if not 0 < number <= VARIANCE_PERCENT_MAX:
        raise ConfigError(key, raw, problem)
    return str(number)


def _optional_url(key: str, raw: Any, pattern: re.Pattern[str], schemes: str) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    url = _string(key, raw)
    if not pattern.fullmatch(url):
        raise ConfigError(key, raw, f"is not an absolute {schemes} URL")
    return url


def _dunning_templates(raw: Any, steps: tuple[DunningStep, ...]) -> tuple[DunningTemplate, ...]:
    """Templates keyed ``email``/``sms`` or ``<day>:<channel>``, from cdk.json or -c as a JSON object."""
    key = "dunningTemplates"
    problem = (
        'must map "email", "sms" or "<day>:<channel>" (e.g. "3:email") to {"subject": ..., "body": ...} for '
        'e-mail or {"body": ...} for SMS'
    )
    templates = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NULLS:
            return ()
        try:
            templates = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(key, raw, problem) from None
    if templates is None:
        return ()
    if not isinstance(templates, dict):
        raise ConfigError(key, raw, problem)
    step_keys = {f"{step.day}:{step.channel}" for step in steps}
    parsed = []
    for template_key, fields in templates.items():
        channel = _template_channel(raw, template_key, step_keys, problem)
        expected = DUNNING_TEMPLATE_FIELDS[channel]
        if not isinstance(fields, dict) or set(fields) != set(expected):
            found = sorted(fields) if isinstance(fields, dict) else fields
            raise ConfigError(
                key, raw, f"holds {template_key!r} with {found!r}; an {channel} template has exactly {expected!r}"
            )
        for field_name in expected:
            _check_template_text(raw, template_key, field_name, fields[field_name])
        if channel == "sms" and len(fields["body"]) > SMS_BODY_MAX:
            raise ConfigError(
                key,
                raw,
                f"holds an SMS body for {template_key!r} of {len(fields['body'])} characters; "
                f"the limit is {SMS_BODY_MAX}",
            )
        parsed.append(DunningTemplate(key=template_key, body=fields["body"], subject=fields.get("subject")))
    return tuple(sorted(parsed, key=lambda template: template.key))


def _template_channel(raw: Any, template_key: Any, step_keys: set[str], problem: str) -> str:
    key = "dunningTemplates"
    if template_key in DUNNING_TEMPLATE_FIELDS:
        return str(template_key)
    match = re.fullmatch(r"(\d{1,2}):(email|sms)", template_key) if isinstance(template_key, str) else None
    if match is None:
        raise ConfigError(key, raw, f"holds the key {template_key!r}: {problem}")
    normalized = f"{int(match[1])}:{match[2]}"
    if normalized != template_key or template_key not in step_keys:
        raise ConfigError(
            key, raw, f"holds {template_key!r}, which is no step of dunningSteps ({', '.join(sorted(step_keys))})"
        )
    return match[2]


def _check_template_text(raw: Any, template_key: str, field_name: str, text: Any) -> None:
    key = "dunningTemplates"
    where = f"the {field_name} of {template_key!r}"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, raw, f"holds {where}, which must be non-empty text")
    allowed = ", ".join(f"{{{name}}}" for name in DUNNING_PLACEHOLDERS)
    for name in _PLACEHOLDER.findall(text):
        if name not in DUNNING_PLACEHOLDERS:
            raise ConfigError(key, raw, f"holds the unknown placeholder {{{name}}} in {where}; allowed: {allowed}")
    # Whatever is left must be plain text: a stray brace would break the sender's formatting at run time.
    plain = _PLACEHOLDER.sub("", text)
    if "{" in plain or "}" in plain:
        raise ConfigError(key, raw, f"holds an unpaired {{ or }} in {where}; allowed placeholders: {allowed}")


def _dimension_spec(key: str, raw: Any, spec: Any, *, listed: bool) -> str:
    """One attribution dimension (``listed``: an item of the list ``raw``) in the grammar the functions
    parse (finops_guard.costs.teams), normalised."""
    problem = (
        "tag:<tag key> or costCategory:<cost category name> (a tag key of 1 to 128 letters, digits, spaces "
        f"or _.:/=+-@; a cost category name of at most {COST_CATEGORY_NAME_MAX} characters)"
    )
    problem = f"holds {spec!r}, not {problem}" if listed else f"is not {problem}"
    if not isinstance(spec, str):
        raise ConfigError(key, raw, problem)
    try:
        dimension = parse_dimension(spec)
    except TeamConfigError:
        raise ConfigError(key, raw, problem) from None
    if dimension.kind == "costCategory" and len(dimension.key) > COST_CATEGORY_NAME_MAX:
        raise ConfigError(key, raw, problem)
    return dimension.spec()


def _attribution_dimensions(raw: Any) -> tuple[str, ...]:
    key = "attributionDimensions"
    specs = _unique([_dimension_spec(key, raw, spec, listed=True) for spec in _string_list(key, raw)])
    if not 1 <= len(specs) <= MAX_DIMENSIONS:
        raise ConfigError(
            key,
            raw,
            f"lists {len(specs)} dimensions; give 1 to {MAX_DIMENSIONS} (each is one more Cost Explorer request "
            'per weekly report and chargeback run), e.g. ["tag:Team", "tag:CostCenter"]',
        )
    return specs


def _team_dimension(raw: Any, dimensions: tuple[str, ...]) -> str | None:
    key = "teamDimension"
    if raw is None:  # absent, or JSON null (which context cannot tell from absent)
        return dimensions[0]
    if isinstance(raw, str) and raw.strip().lower() in _NULLS:
        return None
    spec = _dimension_spec(key, raw, raw, listed=False)
    if spec not in dimensions:
        raise ConfigError(
            key,
            raw,
            f'must be one of attributionDimensions ({", ".join(dimensions)}), or "" or "null" to switch team '
            "routing off",
        )
    return spec


def _chargeback_unallocated(raw: Any) -> str:
    rule = _string("chargebackUnallocated", raw).lower()
    if rule not in CHARGEBACK_UNALLOCATED:
        raise ConfigError(
            "chargebackUnallocated",
            raw,
            "must be 'proportional' (untagged spend shared out by each team's share of tagged spend) or "
            "'separate' (kept as its own unallocated line)",
        )
    return rule


# --- Reports at every cadence (issue 22): the daily digest and the month-close report ---------------------

DIGEST_CHANNELS = ("default", "teams", "slack")
DIGEST_EVERY_TEAM = "team:*"
DIGEST_PERCENT_MAX = Decimal(1000)


@dataclass(frozen=True)
class ReportCadence:
    """The daily digest's destinations and quiet rule, and the month-close report's switches, as the
    functions read them (finops_guard/costs/cadence_settings.py)."""

    daily_digest: tuple[str, ...] = ()  # empty: off
    digest_min_share: str = "20"
    digest_min_amount: str = "100"
    month_close_report: bool = False
    budget_adjust_threshold: str = "10"

    def guard_environment(self) -> dict[str, str]:
        """What the budget guard reads: the digest, and the month-close's daily final check."""
        environment: dict[str, str] = {}
        if self.daily_digest:
            environment |= {
                "FINOPSGUARD_DAILY_DIGEST": json.dumps(list(self.daily_digest), separators=(",", ":")),
                "FINOPSGUARD_DIGEST_MIN_SHARE": self.digest_min_share,
                "FINOPSGUARD_DIGEST_MIN_AMOUNT": self.digest_min_amount,
            }
        return environment | self.month_close_environment()

    def month_close_environment(self) -> dict[str, str]:
        if not self.month_close_report:
            return {}
        return {"FINOPSGUARD_MONTH_CLOSE_REPORT": "true",
                "FINOPSGUARD_BUDGET_ADJUST_THRESHOLD": self.budget_adjust_threshold}  # fmt: skip


def _report_cadence(value: Any, slack_enabled: bool, team_dimension: str | None) -> ReportCadence:
    return ReportCadence(
        daily_digest=_daily_digest(value("dailyDigest"), slack_enabled, team_dimension),
        digest_min_share=_percent_at_most("digestMinShare", value("digestMinShare"), DIGEST_PERCENT_MAX),
        digest_min_amount=_decimal_at_least_zero("digestMinAmount", value("digestMinAmount")),
        month_close_report=_bool("monthCloseReport", value("monthCloseReport")),
        budget_adjust_threshold=_percent_at_most(
            "budgetAdjustThreshold", value("budgetAdjustThreshold"), DIGEST_PERCENT_MAX
        ),
    )


def _percent_at_most(key: str, raw: Any, high: Decimal) -> str:
    problem = f"must be a percentage from 0 to {high}, e.g. 20"
    number = _decimal(key, raw, problem)
    if not 0 <= number <= high:
        raise ConfigError(key, raw, problem)
    return str(number)


def _daily_digest(raw: Any, slack_enabled: bool, team_dimension: str | None) -> tuple[str, ...]:
    """false (off), true (every chat channel and, with team routing, every routed team) or a list of
    destinations: default, teams, slack, team:* or team:<name>."""
    key = "dailyDigest"
    if isinstance(raw, bool) or (isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE):
        if not _bool(key, raw):
            return ()
        return ("default", DIGEST_EVERY_TEAM) if team_dimension is not None else ("default",)
    problem = "must be true, false or a list of default, teams, slack, team:* and team:<name>"
    destinations = []
    for item in _string_list(key, raw):
        if not isinstance(item, str) or not (item in DIGEST_CHANNELS or (item.startswith("team:") and item[5:])):
            raise ConfigError(key, raw, f"holds {item!r}: {problem}")
        if item == "slack" and not slack_enabled:
            raise ConfigError(key, raw, "names slack, but slackEnabled is false")
        if item.startswith("team:") and team_dimension is None:
            raise ConfigError(key, raw, f"names {item!r}, but team routing is off (teamDimension)")
        destinations.append(item)
    return _unique(destinations)
