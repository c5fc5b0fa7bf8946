"""Typed FinOps Guard configuration, read from CDK context and validated before any resource exists.

Values given with ``cdk synth -c key=value`` always arrive as strings, so every parser accepts the
string form of numbers, booleans and null as well as the JSON types cdk.json can hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from constructs import Node
from finops_guard.money import ISO_4217

# Defaults mirror the "context" block of cdk.json (a test keeps the two in step).
DEFAULTS: dict[str, Any] = {
    "stage": "dev",
    "reportSchedule": "cron(0 8 ? * MON *)",
    "timezone": "UTC",
    "currency": "USD",
    "topN": 5,
    "monthlyBudget": None,
    "opsAlarmEmail": None,
    "slackEnabled": False,
    "owner": "platform-team",
    "costCenter": "finops",
    "budgetSchedule": "cron(0 9 * * ? *)",
    "forecastInterval": 0.8,
    "financeAlertEmail": None,
}

# One list of currencies for synth-time and run-time validation.
ISO_4217_CURRENCIES = ISO_4217

# The forecast band's confidence level: below 0.5 it is no band at all, at 1 it is unbounded.
FORECAST_INTERVAL_MIN = Decimal("0.5")
FORECAST_INTERVAL_MAX = Decimal("0.99")

_STAGE = re.compile(r"[a-z0-9-]{1,16}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_RATE = re.compile(r"rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)")
_CRON = re.compile(r"cron\((?P<fields>[^()]*)\)")
# CloudFormation tag values: letters, digits, spaces and _ . : / = + - @, at most 256 characters.
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{1,256}")
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
class FinOpsGuardConfig:
    stage: str
    report_schedule: str
    timezone: str
    currency: str
    top_n: int
    monthly_budget: str | None
    ops_alarm_email: str | None
    slack_enabled: bool
    owner: str
    cost_center: str
    budget_schedule: str
    forecast_interval: str
    finance_alert_email: str | None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> FinOpsGuardConfig:
        """Build from a mapping of context keys; missing keys take the cdk.json defaults."""

        def value(key: str) -> Any:
            return context.get(key, DEFAULTS[key])

        return cls(
            stage=_stage(value("stage")),
            report_schedule=_schedule_expression("reportSchedule", value("reportSchedule")),
            timezone=_timezone(value("timezone")),
            currency=_currency(value("currency")),
            top_n=_int_in_range("topN", value("topN"), 1, 10),
            monthly_budget=_optional_positive_decimal("monthlyBudget", value("monthlyBudget")),
            ops_alarm_email=_optional_email("opsAlarmEmail", value("opsAlarmEmail")),
            slack_enabled=_bool("slackEnabled", value("slackEnabled")),
            owner=_tag_value("owner", value("owner")),
            cost_center=_tag_value("costCenter", value("costCenter")),
            budget_schedule=_schedule_expression("budgetSchedule", value("budgetSchedule")),
            forecast_interval=_decimal_in_range(
                "forecastInterval", value("forecastInterval"), FORECAST_INTERVAL_MIN, FORECAST_INTERVAL_MAX
            ),
            finance_alert_email=_optional_email("financeAlertEmail", value("financeAlertEmail")),
        )


def load_config(node: Node) -> FinOpsGuardConfig:
    """Read and validate the FinOps Guard keys from the construct tree's context."""
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


def _optional_positive_decimal(key: str, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULLS):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ConfigError(key, raw, "must be a positive amount such as 1500 or 1500.50")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(key, raw, "must be a positive amount such as 1500 or 1500.50") from None
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(key, raw, "must be a positive amount such as 1500 or 1500.50")
    return str(amount)


def _decimal_in_range(key: str, raw: Any, low: Decimal, high: Decimal) -> str:
    problem = f"must be a decimal from {low} to {high}, e.g. 0.8"
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ConfigError(key, raw, problem)
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(key, raw, problem) from None
    if not number.is_finite() or not low <= number <= high:
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
