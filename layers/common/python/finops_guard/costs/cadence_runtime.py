"""Composition of the reports at every cadence (issue 22) inside the functions that carry them.

- the budget guard's daily run: `guard_source` puts a GuardTap between the guard and Cost Explorer,
  then `after_budget_guard` builds and posts the daily digest from what passed, and takes the
  month-close's daily look at last month;
- the chargeback's monthly run: `chargeback_source` keeps its pages, then `after_chargeback` posts
  the month-close report reusing them.

Everything here is off unless the stack switched it on (cadence_settings.py): a guard or chargeback
without these settings runs exactly as before, with its cost source untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from finops_guard.core.delivery import DeliveryResult
from finops_guard.costs import runtime
from finops_guard.costs.cadence_settings import CadenceSettings
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import Routing

if TYPE_CHECKING:  # loaded when a report is on, not at every cold start
    from finops_guard.costs.budget_guard import GuardOutcome
    from finops_guard.costs.budgets import Budget
    from finops_guard.costs.chargeback import Month
    from finops_guard.costs.daily_digest import DigestOutcome
    from finops_guard.costs.guard_tap import CostQuerySource
    from finops_guard.costs.month_close_run import MonthCloseOutcome

log = logging.getLogger(__name__)
REFUSED_PERIOD = ("ValidationException", "DataUnavailableException")


@cache
def cadence_settings() -> CadenceSettings:
    return CadenceSettings.from_env(os.environ)


def _as_of(now: datetime) -> Any:
    return now.astimezone(UTC).date() - timedelta(days=1)


def guard_source(
    costs: CostQuerySource,
    cadence: CadenceSettings,
    routing: Routing,
    now: datetime,
    metric: CostMetric = DEFAULT_METRIC,
) -> CostQuerySource:
    """The guard's cost source, tapped when the digest or the month-close reads from its pages (in
    `metric`, the deployment's costMetric, as the guard asks for it)."""
    if not (cadence.digest_on or cadence.month_close):
        return costs
    from finops_guard.costs.guard_tap import GuardTap

    teams = [r.team for r in routing.routes if cadence.digest_team(r.team)] if cadence.digest_on else []
    dimension = routing.dimension.dimension if routing.dimension is not None and teams else None
    return GuardTap(
        costs, keep_from=_as_of(now) - timedelta(days=7), team_dimension=dimension, teams=teams, metric=metric
    )


class _PeriodAware:
    """Cost Explorer for the month-close: a refused MONTHLY period reads as PeriodRefused (the history
    request then asks again without the year-ago month)."""

    def __init__(self, source: CostQuerySource) -> None:
        self._source = source

    @property
    def requests(self) -> int:
        return self._source.requests

    @requests.setter
    def requests(self, value: int) -> None:
        self._source.requests = value

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from finops_guard.costs.month_close import PeriodRefused

        try:
            yield from self._source.query(request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if request.get("Granularity") == "MONTHLY" and code in REFUSED_PERIOD:
                raise PeriodRefused(str(error)) from error
            raise


@dataclass
class CadenceOutcome:
    digest: DigestOutcome | None = None
    month_close: MonthCloseOutcome | None = None

    @property
    def deliveries(self) -> list[DeliveryResult]:
        found = [self.digest.delivery] if self.digest is not None else []
        return found + ([self.month_close.delivery] if self.month_close is not None else [])

    @property
    def cost_requests(self) -> int:
        return self.month_close.cost_requests if self.month_close is not None else 0


def _inputs(config: ReportSettings, cadence: CadenceSettings, budgets: Sequence[Budget]) -> Any:
    from finops_guard.costs.month_close_run import Inputs

    recommendations = (
        runtime.recommendations_table(config.recommendations_table).all() if config.recommendations_table else []
    )
    return Inputs(
        budgets=budgets,
        recommendations=recommendations,
        dimensions=config.attribution_dimensions,
        currency=config.currency,
        level=config.forecast_interval,
        threshold=cadence.budget_adjust_threshold,
        metric=config.cost_metric,
    )


def _publishing(config: ReportSettings, remaining_ms: int | None) -> Any:
    from finops_guard.costs.adapters.month_close_store import MonthCloseArchive
    from finops_guard.costs.month_close_run import Publishing

    return Publishing(
        archive=MonthCloseArchive(config.require("chargeback_bucket")),
        outbox=runtime.outbox(config.require("outbox_table")),
        poster=runtime.webhook_poster(config, remaining_ms),
        channels=config.chat_channels,
        timezone=config.timezone,
        stage=config.stage,
        link_minutes=config.chargeback_link_minutes,
    )


def _store(config: ReportSettings) -> Any:
    from finops_guard.costs.adapters.month_close_store import MonthCloseTable

    return MonthCloseTable(config.require("budget_alerts_table"))


def after_budget_guard(
    source: CostQuerySource,
    outcome: GuardOutcome,
    *,
    now: datetime,
    config: ReportSettings,
    cadence: CadenceSettings,
    routing: Routing,
    budgets: Sequence[Budget],
    remaining_ms: int | None = None,
) -> CadenceOutcome:
    """The daily digest of the guard's day, then the month-close's look at last month."""
    result = CadenceOutcome()
    if not (cadence.digest_on or cadence.month_close):
        return result
    from finops_guard.costs.guard_tap import GuardTap

    if not isinstance(source, GuardTap):
        return result
    as_of = _as_of(now)
    if cadence.digest_on:
        from finops_guard.costs.adapters.anomalies_opened import AnomaliesOpenedTable
        from finops_guard.costs.cards.daily_digest import render_digest
        from finops_guard.costs.daily_digest import QuietRule, run_daily_digest

        teams = [r for r in routing.routes if cadence.digest_team(r.team)] if routing.available else []
        result.digest = run_daily_digest(
            as_of,
            source.spend,
            outcome.statuses,
            anomalies=AnomaliesOpenedTable(config.anomalies_table) if config.anomalies_table else None,
            rule=QuietRule(cadence.digest_min_share, cadence.digest_min_amount),
            currency=config.currency,
            default_channels=cadence.digest_channels(config.chat_channels),
            outbox=runtime.outbox(config.require("outbox_table")),
            poster=runtime.webhook_poster(config, remaining_ms),
            now=now,
            render=render_digest,
            teams=teams,
            routing=routing,
            team_label=routing.dimension.label if routing.dimension is not None else "Team",
        )
    if cadence.month_close:
        from finops_guard.costs.month_close_run import check_after_guard

        result.month_close = check_after_guard(
            as_of,
            source.spend,
            now=now,
            costs=_PeriodAware(source.source),
            inputs=_inputs(config, cadence, budgets),
            store=_store(config),
            publishing=_publishing(config, remaining_ms),
        )
    return result


def chargeback_source(costs: CostQuerySource, cadence: CadenceSettings) -> CostQuerySource:
    """The chargeback's cost source, keeping its pages when the month-close will reuse them."""
    if not cadence.month_close:
        return costs
    from finops_guard.costs.guard_tap import RecordingSource

    return RecordingSource(costs)


def after_chargeback(
    source: CostQuerySource,
    month: Month,
    *,
    now: datetime,
    config: ReportSettings,
    cadence: CadenceSettings,
    remaining_ms: int | None = None,
) -> MonthCloseOutcome | None:
    """The month-close report of the month the chargeback just billed."""
    if not cadence.month_close:
        return None
    from finops_guard.costs.guard_tap import RecordingSource

    if not isinstance(source, RecordingSource):
        return None
    from finops_guard.costs.chargeback import chargeback_request, month_costs
    from finops_guard.costs.month_close_run import close_after_chargeback

    reused = {}
    metric = config.cost_metric  # the chargeback's own requests, as it made them (monthly_chargeback.compute)
    for dimension in config.attribution_dimensions:
        pages = source.pages_for(chargeback_request(dimension, month, metric))
        if pages is not None:
            reused[dimension.spec()] = month_costs(dimension, pages, metric)
    budgets = runtime.budget_table(config.budgets_table).all() if config.budgets_table else []
    return close_after_chargeback(
        month,
        now=now,
        costs=_PeriodAware(source.source),
        inputs=_inputs(config, cadence, budgets),
        reused=reused,
        store=_store(config),
        publishing=_publishing(config, remaining_ms),
    )
