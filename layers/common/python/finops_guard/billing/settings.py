"""Runtime settings of the billing functions (Stripe webhook; dunning, reconciliation, finance admin
API and invoice bot), read from environment variables once and validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from finops_guard.core.settings import PREFIX, SettingsError, decimal_in


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

        from finops_guard.billing.ledger_rules import parse_dunning_steps

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
    dunning_templates: str | None = None  # JSON object of step templates (see finops_guard.billing.dunning)
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
        variance = decimal_in(get("VARIANCE_PERCENT") or "1", "VARIANCE_PERCENT", Decimal(0), Decimal(100))
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
