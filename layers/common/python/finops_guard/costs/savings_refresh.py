"""The daily savings refresh: Cost Optimization Hub's listing into the recommendations table, then ROI.

1. List every recommendation (all pages). A listing that fails part-way raises before anything is
   written: only a complete listing may close what it no longer contains.
2. Each listed item is upserted (same id, same item: estimate, effort, tags, team and last_seen
   follow upstream; status, first_seen and history never do). One that was resolved upstream and is
   listed again goes back to open.
3. Items missing from the listing close as resolved-upstream when open, accepted or dismissed;
   implemented items stay implemented (the change was done, so COH stops recommending it).
4. ROI: each implemented item whose 14 after-days are complete and that has no stored result costs
   exactly one Cost Explorer request; the result is stored and never queried again.
Every status move is a conditional write: a move an operator made meanwhile wins, and the refresh
counts a lost race instead of overwriting it (the next day's refresh looks again).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from finops_guard.costs.budget_costs import CostQuerySource
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.savings import (
    Recommendation,
    RecommendationNotFound,
    Roi,
    RoutesByAccount,
    StatusConflict,
    Transition,
    assign_team,
    completed_roi,
    daily_series,
    reopen_listed,
    resolve_upstream,
    roi_due,
    roi_request,
)

log = logging.getLogger(__name__)
PREFIX = "FINOPSGUARD_"


class RecommendationSource(Protocol):
    requests: int

    def list_all(self, now: datetime) -> list[Recommendation]: ...


class RecommendationStore(Protocol):
    def all(self) -> list[Recommendation]: ...
    def upsert(self, listed: Recommendation, now: datetime) -> Recommendation | None: ...
    def transition(self, move: Transition, now: datetime) -> None: ...
    def record_roi(self, rec_id: str, roi: Roi) -> bool: ...


@dataclass
class RefreshOutcome:
    listed: int = 0
    new: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    resolved_upstream: list[str] = field(default_factory=list)
    roi_measured: list[str] = field(default_factory=list)
    lost_races: list[str] = field(default_factory=list)
    hub_requests: int = 0
    cost_requests: int = 0


def refresh(
    *,
    now: datetime,
    hub: RecommendationSource,
    store: RecommendationStore,
    routing: RoutesByAccount,
    costs: CostQuerySource | None = None,
    metric: CostMetric = DEFAULT_METRIC,
) -> RefreshOutcome:
    """Bring the table in line with the hub's complete listing at `now`, then measure due ROI
    (skipped when `costs` is None) in `metric`. Raises whatever the listing raised, having written nothing."""
    outcome = RefreshOutcome()
    try:
        listing = hub.list_all(now)
    finally:
        outcome.hub_requests = hub.requests
    outcome.listed = len(listing)
    stored = {rec.rec_id: rec for rec in store.all()}
    for listed in listing:
        previous = store.upsert(replace(listed, team=assign_team(listed, routing)), now)
        if previous is None:
            outcome.new.append(listed.rec_id)
            continue
        stored[listed.rec_id] = previous
        _move(store, reopen_listed(previous, now), now, outcome.reopened, outcome)
    listed_ids = {rec.rec_id for rec in listing}
    for rec in stored.values():
        if rec.rec_id not in listed_ids:
            _move(store, resolve_upstream(rec, now), now, outcome.resolved_upstream, outcome)
    if costs is not None:
        _measure_roi(stored, store, costs, now, outcome, metric)
    return outcome


def _move(
    store: RecommendationStore, move: Transition | None, now: datetime, done: list[str], outcome: RefreshOutcome
) -> None:
    if move is None:
        return
    try:
        store.transition(move, now)
    except (StatusConflict, RecommendationNotFound) as race:
        log.info("status changed meanwhile; left as it is", extra={"rec_id": move.rec_id, "reason": str(race)})
        outcome.lost_races.append(move.rec_id)
        return
    done.append(move.rec_id)


def _measure_roi(
    stored: Mapping[str, Recommendation],
    store: RecommendationStore,
    costs: CostQuerySource,
    now: datetime,
    outcome: RefreshOutcome,
    metric: CostMetric = DEFAULT_METRIC,
) -> None:
    as_of = now.astimezone(UTC).date() - timedelta(days=1)  # the last complete UTC cost day
    before = costs.requests
    try:
        for rec in sorted(stored.values(), key=lambda r: r.rec_id):
            if not roi_due(rec, as_of):
                continue
            roi = completed_roi(rec, daily_series(costs.query(roi_request(rec, metric)), metric), as_of, now)
            if roi is not None and store.record_roi(rec.rec_id, roi):
                outcome.roi_measured.append(rec.rec_id)
    finally:
        outcome.cost_requests = costs.requests - before
