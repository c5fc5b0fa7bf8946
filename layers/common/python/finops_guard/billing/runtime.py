"""Composition root of the billing functions: builds the real adapters from settings, once per warm
container. Handlers get their collaborators here, so tests can swap any of them; adapters only some
functions use are imported inside their factory (no function pays their import at cold start).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from finops_guard.billing.settings import BillingOpsSettings, BillingSettings

# Shared factories, re-exported: a billing handler builds everything from this module.
from finops_guard.core.runtime import chat_settings as chat_settings
from finops_guard.core.runtime import outbox as outbox
from finops_guard.core.runtime import scheduled_time as scheduled_time
from finops_guard.core.runtime import webhook_poster as webhook_poster

if TYPE_CHECKING:
    from finops_guard.billing.adapters.billing_reads import BillingReads
    from finops_guard.billing.adapters.billing_store import BillingStore
    from finops_guard.billing.adapters.stripe_api import StripeApi


@cache
def billing_settings() -> BillingSettings:
    return BillingSettings.from_env(os.environ)


@cache
def billing_store() -> BillingStore:
    from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables

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
    from finops_guard.billing.adapters.stripe_api import StripeApi, read_stripe_api_key

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
    from finops_guard.billing.adapters.billing_reads import BillingReads

    return BillingReads(ledger_table=ledger_table, objects_table=objects_table, alerts_table=alerts_table)


@cache
def billing_ops_store() -> BillingStore:
    """The billing tables as the operations functions see them (no processed-events table)."""
    from finops_guard.billing.adapters.billing_store import BillingStore, BillingTables

    config = billing_ops_settings()
    tables = BillingTables("", config.ledger_table, config.objects_table, config.alerts_table, config.dunning_table)
    return BillingStore(tables)
