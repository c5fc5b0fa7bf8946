"""The monthly chargeback use case: one Cost Explorer request per dimension and one for the month's
credits, refunds and tax, one CSV per dimension to the export bucket, one announcement per channel
with short-lived download links."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from finops_guard.core.delivery import ChatMessage, DeliveryFailed, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.core.settings import SettingsError
from finops_guard.costs.cards.chargeback import render_chargeback
from finops_guard.costs.chargeback import (
    Chargeback,
    Month,
    build_chargeback,
    chargeback_request,
    month_complete,
    month_costs,
    object_key,
    to_csv,
    with_charges,
)
from finops_guard.costs.record_types import charge_amounts, charges_request
from finops_guard.costs.settings import ReportSettings

KIND = "chargeback"


class CostQuerySource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


class ExportStore(Protocol):
    def put_csv(self, key: str, text: str) -> str | None: ...
    def download_link(self, key: str, version_id: str | None, expires_in_s: int) -> str: ...


@dataclass
class Published:
    chargeback: Chargeback
    key: str
    version_id: str | None
    url: str


@dataclass
class ChargebackOutcome:
    month: Month
    published: list[Published]
    complete: bool
    cost_requests: int
    messages: list[ChatMessage] = field(default_factory=list)
    delivery: DeliveryResult = field(default_factory=DeliveryResult)


def compute(settings: ReportSettings, month: Month, costs: CostQuerySource) -> list[Chargeback]:
    """The month's chargeback for every attribution dimension: one billed request each for usage,
    then one for the month's credits, refunds and tax by service, shared by every dimension (plus
    pages). Every amount in `settings.cost_metric`."""
    if not settings.attribution_dimensions:
        raise SettingsError(
            "no attribution dimensions are configured: deploy with the context key attributionDimensions "
            "(e.g. tag:Team), or give the CLI --dimension tag:Team"
        )
    metric = settings.cost_metric
    usage = [
        month_costs(dimension, costs.query(chargeback_request(dimension, month, metric)), metric)
        for dimension in settings.attribution_dimensions
    ]
    service = {"Type": "DIMENSION", "Key": "SERVICE"}
    charges = charge_amounts(costs.query(charges_request(month.first, month.end, metric, service)), metric)
    return [
        build_chargeback(
            with_charges(month_usage, charges), month, rule=settings.chargeback_unallocated, currency=settings.currency
        )
        for month_usage in usage
    ]


def publish(chargebacks: list[Chargeback], store: ExportStore, link_minutes: int) -> list[Published]:
    published = []
    for chargeback in chargebacks:
        key = object_key(chargeback.month, chargeback.dimension)
        version = store.put_csv(key, to_csv(chargeback))
        published.append(Published(chargeback, key, version, store.download_link(key, version, link_minutes * 60)))
    return published


def run_chargeback(
    settings: ReportSettings,
    *,
    month: Month,
    now: datetime,
    run_id: str,
    costs: CostQuerySource,
    store: ExportStore,
    outbox: Outbox,
    poster: Poster,
) -> ChargebackOutcome:
    """Compute, write and announce `month`. `run_id` names this run's messages: a retried invocation
    (same id) never announces twice; a later re-run (new id) announces the new version."""
    published = publish(compute(settings, month, costs), store, settings.chargeback_link_minutes)
    outcome = ChargebackOutcome(month, published, month_complete(month, now), costs.requests)
    expires_at = now + timedelta(minutes=settings.chargeback_link_minutes)
    pairs = [(p.chargeback, p.url) for p in published]
    for channel in settings.chat_channels:
        payload = render_chargeback(
            pairs, channel, expires_at=expires_at, timezone=settings.timezone, complete=outcome.complete
        )
        outcome.messages.append(ChatMessage(f"chargeback/{month}/{run_id}/{channel}", channel, KIND, payload))
    outcome.delivery = deliver_all(outcome.messages, outbox, poster, now)
    if outcome.delivery.failed:
        raise DeliveryFailed(outcome.delivery.failed, outcome.delivery.not_configured)
    return outcome
