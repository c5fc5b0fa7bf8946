"""Savings opportunities: recommendations, their status, the weekly summary and the realised ROI.

Where they come from: AWS Cost Optimization Hub (COH) `ListRecommendations`, one item per resource
(COH de-duplicates by resource unless `includeAllRecommendations` is set). `rec_id` is COH's
`recommendationId`: the same id on a later refresh is the same recommendation.

Status (who may move it where):

    open -> accepted | dismissed(reason)          operator (CLI)
    accepted -> implemented(date) | dismissed(reason) | open
    dismissed -> open
    open -> implemented                           REFUSED: accept it first (no skipping unrecorded)
    open | accepted | dismissed -> resolved-upstream   the daily refresh, when COH stops listing it
    resolved-upstream -> open                     the daily refresh, when COH lists it again
    implemented                                   final; it stays implemented when COH stops listing it

Every move appends one entry to the item's history and is written conditionally on the status it
was decided from (see adapters/recommendations_store.py), so a move happens exactly once.

Money: estimates are Decimal in the recommendation's currency (COH `currencyCode`, USD by default),
converted from COH's JSON numbers through their decimal text and rounded to 0.01; never float maths.

ROI (`measure_roi`): resource-level daily cost would need Cost Explorer's GetCostAndUsageWithResources,
which is opt-in (hourly/resource granularity must be enabled and is billed) and keeps only 14 days:
too short to see 14 days before *and* after. So the saving is measured on the daily usage cost (in
the deployment's cost metric; credits, refunds and tax excluded, as a credit is no saving) of
the resource's *service in its account* (ROI_SERVICE maps COH resource types to Cost Explorer SERVICE
values): the mean of the 14 complete UTC cost days before `implemented_on` against the mean of the
14 complete days after it (`implemented_on` itself is excluded: the change happened during it).
Realised monthly saving = (mean daily before - mean daily after) x 365 / 12 (an average month,
30.4167 days). Until the 14 after-days are complete the item is "measuring (n/14 days)"; once
complete the result is stored and never queried again (one Cost Explorer request per item, ever).
Limits: anything else that changed in the same service and account during those 28 days (other
resources started or stopped, price changes, usage growth, Savings Plans or RIs applied) shows up
as saving or loss; commitment purchases (Savings Plans, reserved instances) move cost to another
"service" and are not measured this way (see the commitment KPI instead); the last days can still
be Cost Explorer estimates (counted in `estimated_days`); a resource younger than 14 days has zero
days in the before-window, which understates its before-mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from finops_guard.core.money import ZERO, parse_amount
from finops_guard.core.periods import DateRange
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric, metric_amount
from finops_guard.costs.record_types import usage_only

SOURCE = "cost-optimization-hub"
OPEN, ACCEPTED, IMPLEMENTED, DISMISSED, RESOLVED_UPSTREAM = (
    "open", "accepted", "implemented", "dismissed", "resolved-upstream",
)  # fmt: skip
STATUSES = (OPEN, ACCEPTED, IMPLEMENTED, DISMISSED, RESOLVED_UPSTREAM)
ACTIVE = (OPEN, ACCEPTED)  # the savings still to be had
CLOSED_BY_UPSTREAM = (OPEN, ACCEPTED, DISMISSED)  # what a disappearance closes (never `implemented`)
OPERATOR_MOVES: dict[str, tuple[str, ...]] = {
    OPEN: (ACCEPTED, DISMISSED),
    ACCEPTED: (IMPLEMENTED, DISMISSED, OPEN),
    DISMISSED: (OPEN,),
}
REFRESH_BY = "refresh"
MAX_REASON = 500
CENT = Decimal("0.01")
ROI_WINDOW_DAYS = 14
ROI_HISTORY_MONTHS = 13
DAYS_PER_MONTH = Decimal(365) / Decimal(12)  # 30.41666…: an average month, so months compare
_MEAN = Decimal("0.000001")  # stored daily means keep 6 places: far below a cent a month

# COH currentResourceType -> Cost Explorer SERVICE dimension value whose daily cost the ROI compares.
ROI_SERVICE = {
    "Ec2Instance": "Amazon Elastic Compute Cloud - Compute",
    "Ec2AutoScalingGroup": "Amazon Elastic Compute Cloud - Compute",
    "EbsVolume": "EC2 - Other",
    "NatGateway": "EC2 - Other",
    "LambdaFunction": "AWS Lambda",
    "EcsService": "Amazon Elastic Container Service",
    "RdsDbInstance": "Amazon Relational Database Service",
    "RdsDbInstanceStorage": "Amazon Relational Database Service",
    "AuroraDbClusterStorage": "Amazon Relational Database Service",
    "DynamoDBTable": "Amazon DynamoDB",
    "ElastiCacheCluster": "Amazon ElastiCache",
    "DocumentDBCluster": "Amazon DocumentDB (with MongoDB compatibility)",
    "WorkSpaces": "Amazon WorkSpaces",
    "SageMakerEndpoint": "Amazon SageMaker",
}
COMMITMENT_ACTIONS = ("PurchaseSavingsPlans", "PurchaseReservedInstances")
EFFORT_LABELS = {"VeryLow": "very low", "Low": "low", "Medium": "medium", "High": "high", "VeryHigh": "very high"}


class SavingsError(ValueError):
    """A request about a recommendation that cannot be done; the message says what to do instead."""


class TransitionRefused(SavingsError):
    """The status machine does not allow this move from the current status."""


class RecommendationNotFound(SavingsError):
    def __init__(self, rec_id: str) -> None:
        super().__init__(f"no recommendation {rec_id!r} (finops-guard savings list shows them)")
        self.rec_id = rec_id


class StatusConflict(RuntimeError):
    """The stored status is no longer the one the move was decided from: someone else moved it first."""

    def __init__(self, rec_id: str, expected: str, actual: str | None) -> None:
        super().__init__(
            f"recommendation {rec_id!r} is now {actual or 'gone'}, not {expected}: it was changed "
            "meanwhile (another operator or the daily refresh); nothing was written — look again with "
            "`finops-guard savings show`"
        )
        self.rec_id, self.expected, self.actual = rec_id, expected, actual


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class HistoryEntry:
    """One status move: to `status` from `from_status`, at an ISO UTC instant, by whom, and why."""

    status: str
    at: str
    by: str
    from_status: str | None = None
    reason: str | None = None

    def to_document(self) -> dict[str, str]:
        document = {"status": self.status, "at": self.at, "by": self.by}
        if self.from_status:
            document["from"] = self.from_status
        if self.reason:
            document["reason"] = self.reason
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> HistoryEntry:
        return cls(str(document["status"]), str(document["at"]), str(document.get("by", "")),
                   document.get("from"), document.get("reason"))  # fmt: skip


@dataclass(frozen=True)
class Roi:
    """A completed measurement: mean daily cost of `service` in the account, 14 days before and after."""

    service: str
    before_daily: Decimal
    after_daily: Decimal
    currency: str
    measured_at: str
    window_days: int = ROI_WINDOW_DAYS
    estimated_days: int = 0

    @property
    def daily_saving(self) -> Decimal:
        return self.before_daily - self.after_daily

    @property
    def monthly_saving(self) -> Decimal:
        """Realised saving per average month (365/12 days), in `currency`; negative = it costs more."""
        return (self.daily_saving * DAYS_PER_MONTH).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Recommendation:
    rec_id: str
    resource_id: str
    account_id: str
    region: str
    action_type: str
    resource_type: str
    summary: str
    estimated_monthly_savings: Decimal
    currency: str = "USD"
    effort: str = ""
    resource_arn: str = ""
    recommended_resource_type: str = ""
    restart_needed: bool | None = None
    rollback_possible: bool | None = None
    tags: tuple[tuple[str, str], ...] = ()
    source: str = SOURCE
    first_seen: str = ""
    last_seen: str = ""
    status: str = OPEN
    status_reason: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    implemented_on: date | None = None
    team: str | None = None
    roi: Roi | None = None

    def tag(self, key: str) -> str | None:
        return next((v for k, v in self.tags if k == key), None)

    @property
    def effort_label(self) -> str:
        return EFFORT_LABELS.get(self.effort, self.effort.lower() or "unknown")

    @property
    def resource_label(self) -> str:
        return self.resource_id or self.resource_arn or self.rec_id

    def to_document(self) -> dict[str, Any]:
        """JSON-safe plain values (money as decimal strings), for `finops-guard savings show`."""
        roi = None
        if self.roi is not None:
            r = self.roi
            roi = {"service": r.service, "before_daily": str(r.before_daily), "after_daily": str(r.after_daily),
                   "monthly_saving": str(r.monthly_saving), "currency": r.currency, "measured_at": r.measured_at,
                   "window_days": r.window_days, "estimated_days": r.estimated_days}  # fmt: skip
        return {
            "id": self.rec_id,
            "source": self.source,
            "status": self.status,
            "status_reason": self.status_reason,
            "action": self.action_type,
            "summary": self.summary,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "resource_arn": self.resource_arn,
            "account_id": self.account_id,
            "region": self.region,
            "estimated_monthly_savings": str(self.estimated_monthly_savings),
            "currency": self.currency,
            "effort": self.effort,
            "restart_needed": self.restart_needed,
            "rollback_possible": self.rollback_possible,
            "team": self.team,
            "tags": dict(self.tags),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "implemented_on": self.implemented_on.isoformat() if self.implemented_on else None,
            "roi": roi,
            "history": [h.to_document() for h in self.history],
        }


# --- reading Cost Optimization Hub ----------------------------------------------------------------


def hub_amount(value: Any) -> Decimal:
    """A COH JSON number as exact money: botocore hands doubles over as float, so read its shortest
    decimal text (repr), never its binary value, and round to 0.01 (half even)."""
    if value is None:
        return ZERO.quantize(CENT)
    if isinstance(value, float):
        value = repr(value)
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


ACTION_LABELS = {
    "PurchaseSavingsPlans": "Buy Savings Plans",
    "PurchaseReservedInstances": "Buy reserved instances",
    "MigrateToGraviton": "Migrate to Graviton",
    "ScaleIn": "Scale in",
}
MAX_SUMMARY = 160


def describe_change(action: str, current: str, recommended: str) -> str:
    """`Rightsize m5.xlarge → m5.large`, `Stop m5.large`: what COH proposes, in one short line."""
    label = ACTION_LABELS.get(action, action)
    change = f"{current} → {recommended}" if current and recommended and current != recommended else current
    text = f"{label} {change}".strip()
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def from_hub(item: Mapping[str, Any], now: datetime) -> Recommendation:
    """One `ListRecommendations` item (as botocore returns it) as a recommendation first seen `now`."""
    rec_id = item.get("recommendationId")
    if not isinstance(rec_id, str) or not rec_id:
        raise ValueError("a Cost Optimization Hub item without recommendationId")
    seen = utc_text(now)
    tags = tuple((str(t["key"]), str(t.get("value", ""))) for t in item.get("tags") or () if t.get("key"))
    return Recommendation(
        rec_id=rec_id,
        resource_id=str(item.get("resourceId", "")),
        resource_arn=str(item.get("resourceArn", "")),
        account_id=str(item.get("accountId", "")),
        region=str(item.get("region", "")),
        action_type=str(item.get("actionType", "")),
        resource_type=str(item.get("currentResourceType", "")),
        recommended_resource_type=str(item.get("recommendedResourceType", "")),
        summary=describe_change(
            str(item.get("actionType", "")),
            str(item.get("currentResourceSummary", "")),
            str(item.get("recommendedResourceSummary", "")),
        ),
        estimated_monthly_savings=hub_amount(item.get("estimatedMonthlySavings")),
        currency=str(item.get("currencyCode") or "USD").upper(),
        effort=str(item.get("implementationEffort", "")),
        restart_needed=item.get("restartNeeded"),
        rollback_possible=item.get("rollbackPossible"),
        tags=tuple(sorted(tags)),
        first_seen=seen,
        last_seen=seen,
    )


class RoutesByAccount(Protocol):
    """The part of teams.Routing team assignment needs."""

    @property
    def dimension(self) -> Any: ...

    def for_accounts(self, accounts: Iterable[str | None]) -> Sequence[Any]: ...


def assign_team(rec: Recommendation, routing: RoutesByAccount) -> str | None:
    """The team a recommendation belongs to: the resource's tag for the team dimension when that
    dimension is a tag and the resource carries it (COH returns resource tags); otherwise the one
    team whose route lists the account. Several teams routing the same account: none (ambiguous,
    the default channel still sees it)."""
    dimension = routing.dimension
    if dimension is not None and dimension.kind == "tag":
        value = rec.tag(dimension.key)
        if value:
            return value
    routes = routing.for_accounts([rec.account_id])
    return routes[0].team if len(routes) == 1 else None


# --- status machine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A decided move, to be written only if the stored status is still `from_status`."""

    rec_id: str
    from_status: str
    to_status: str
    entry: HistoryEntry
    status_reason: str | None = None
    implemented_on: date | None = None


def earliest_implementation_day(rec: Recommendation, at: datetime) -> tuple[date, str]:
    """The first UTC day a recommendation can be recorded as implemented on, and why: 13 months before
    `at`, as far back as Cost Explorer measures its ROI. Not the day FinOps Guard first saw it: a change
    made before the stage was deployed, or while Cost Optimization Hub still listed it, is real."""
    del rec  # every recommendation has the same floor; kept for callers that may refine it
    today = at.astimezone(UTC).date()
    months = today.year * 12 + today.month - 1 - ROI_HISTORY_MONTHS
    year, month = divmod(months, 12)
    return date(year, month + 1, min(today.day, 28)), f"{ROI_HISTORY_MONTHS} months back, Cost Explorer's reach"


def plan_transition(
    rec: Recommendation,
    to: str,
    *,
    at: datetime,
    by: str,
    reason: str | None = None,
    implemented_on: date | None = None,
) -> Transition:
    """An operator's move, checked against the status machine. `implemented_on` is the UTC day the
    change was made (required to implement; not after `at`'s UTC day). Dismissing needs a reason."""
    if to not in STATUSES:
        raise TransitionRefused(f"unknown status {to!r}; use one of {', '.join(STATUSES)}")
    reason = (reason or "").strip() or None
    if reason and len(reason) > MAX_REASON:
        raise TransitionRefused(f"reason: at most {MAX_REASON} characters")
    current = rec.status
    if to == current:
        raise TransitionRefused(f"{rec.rec_id} is already {current}")
    if current == OPEN and to == IMPLEMENTED:
        raise TransitionRefused(
            f"{rec.rec_id} is open: accept it first (finops-guard savings accept {rec.rec_id}), then implement it"
        )
    if current == IMPLEMENTED:
        raise TransitionRefused(f"{rec.rec_id} is implemented: that is final")
    if current == RESOLVED_UPSTREAM:
        raise TransitionRefused(
            f"{rec.rec_id} was resolved upstream (Cost Optimization Hub no longer lists it); "
            "it reopens by itself if it is listed again"
        )
    if to not in OPERATOR_MOVES.get(current, ()):
        allowed = ", ".join(OPERATOR_MOVES.get(current, ())) or "nothing"
        raise TransitionRefused(f"{rec.rec_id} is {current}: it can move to {allowed}, not {to}")
    if to == DISMISSED and not reason:
        raise TransitionRefused("dismissing needs a reason (--reason), so the next person knows why")
    day = None
    if to == IMPLEMENTED:
        if implemented_on is None:
            raise TransitionRefused("implementing needs the date the change was made")
        if implemented_on > at.astimezone(UTC).date():
            raise TransitionRefused(f"implemented on {implemented_on} is in the future")
        floor, why = earliest_implementation_day(rec, at)
        if implemented_on < floor:
            raise TransitionRefused(f"implemented on {implemented_on} is before {floor} ({why}): give the real day")
        day = implemented_on
    entry = HistoryEntry(to, utc_text(at), by, current, reason)
    return Transition(rec.rec_id, current, to, entry, reason, day)


def resolve_upstream(rec: Recommendation, at: datetime) -> Transition | None:
    """COH no longer lists it: open, accepted and dismissed items close; implemented ones stay."""
    if rec.status not in CLOSED_BY_UPSTREAM:
        return None
    entry = HistoryEntry(RESOLVED_UPSTREAM, utc_text(at), REFRESH_BY, rec.status, "no longer listed upstream")
    return Transition(rec.rec_id, rec.status, RESOLVED_UPSTREAM, entry, "no longer listed upstream")


def reopen_listed(rec: Recommendation, at: datetime) -> Transition | None:
    """Listed again after it was resolved upstream: it is open again."""
    if rec.status != RESOLVED_UPSTREAM:
        return None
    entry = HistoryEntry(OPEN, utc_text(at), REFRESH_BY, RESOLVED_UPSTREAM, "listed again upstream")
    return Transition(rec.rec_id, RESOLVED_UPSTREAM, OPEN, entry, None)


def applied(rec: Recommendation, move: Transition) -> Recommendation:
    """The recommendation as it reads after `move` was written."""
    return replace(
        rec,
        status=move.to_status,
        status_reason=move.status_reason,
        history=(*rec.history, move.entry),
        implemented_on=move.implemented_on or rec.implemented_on,
    )


class StatusStore(Protocol):
    def get(self, rec_id: str) -> Recommendation | None: ...
    def transition(self, move: Transition, now: datetime) -> None: ...


def change_status(
    store: StatusStore,
    rec_id: str,
    to: str,
    *,
    now: datetime,
    by: str,
    reason: str | None = None,
    implemented_on: date | None = None,
) -> Recommendation:
    """Read, decide, write conditionally: raises RecommendationNotFound, TransitionRefused, or
    StatusConflict when another writer moved it between our read and our write."""
    rec = store.get(rec_id)
    if rec is None:
        raise RecommendationNotFound(rec_id)
    move = plan_transition(rec, to, at=now, by=by, reason=reason, implemented_on=implemented_on)
    store.transition(move, now)
    return applied(rec, move)


# --- ROI ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoiWindows:
    """The 14 complete UTC cost days before and after the implementation day (which is excluded),
    and the one Cost Explorer request covering both: `query_start` inclusive, `query_end` exclusive."""

    implemented_on: date
    before: DateRange
    after: DateRange

    @property
    def query_start(self) -> date:
        return self.before.first

    @property
    def query_end(self) -> date:
        return self.after.last + timedelta(days=1)


def roi_windows(implemented_on: date, days: int = ROI_WINDOW_DAYS) -> RoiWindows:
    before = DateRange(implemented_on - timedelta(days=days), implemented_on - timedelta(days=1))
    after = DateRange(implemented_on + timedelta(days=1), implemented_on + timedelta(days=days))
    return RoiWindows(implemented_on, before, after)


@dataclass(frozen=True)
class RoiMeasurement:
    """Means of daily cost (currency units per day). `after_days` complete days are in so far."""

    before_daily: Decimal
    after_daily: Decimal | None
    after_days: int
    window_days: int
    estimated_days: int = 0

    @property
    def complete(self) -> bool:
        return self.after_days >= self.window_days

    @property
    def daily_saving(self) -> Decimal | None:
        return None if self.after_daily is None else self.before_daily - self.after_daily

    @property
    def monthly_saving(self) -> Decimal | None:
        """(before - after) × 365/12, rounded to 0.01; provisional while not complete."""
        saving = self.daily_saving
        return None if saving is None else (saving * DAYS_PER_MONTH).quantize(CENT, rounding=ROUND_HALF_EVEN)

    def progress(self) -> str:
        return f"measuring ({self.after_days}/{self.window_days} days)"


def after_days_complete(implemented_on: date, as_of: date, days: int = ROI_WINDOW_DAYS) -> int:
    """Complete after-days available on `as_of` (the last complete UTC cost day), 0..days."""
    return max(0, min(days, (as_of - implemented_on).days))


def measure_roi(
    daily: Mapping[date, Decimal],
    implemented_on: date,
    as_of: date,
    *,
    days: int = ROI_WINDOW_DAYS,
    estimated: Iterable[date] = (),
) -> RoiMeasurement:
    """Mean daily cost over the `days` before `implemented_on` and over the complete days after it,
    up to `as_of` inclusive. A day missing from `daily` counts as zero (Cost Explorer lists every
    day; a missing one had no cost). The implementation day itself is in neither window."""
    windows = roi_windows(implemented_on, days)
    before = sum((daily.get(d, ZERO) for d in windows.before.each_day()), ZERO) / days
    n = after_days_complete(implemented_on, as_of, days)
    after_window = windows.after.each_day()[:n]
    after = sum((daily.get(d, ZERO) for d in after_window), ZERO) / n if n else None
    counted = set(windows.before.each_day()) | set(after_window)
    return RoiMeasurement(before, after, n, days, len(counted & set(estimated)))


def roi_service(rec: Recommendation) -> str | None:
    """The Cost Explorer SERVICE whose daily cost measures this recommendation, or None."""
    if rec.action_type in COMMITMENT_ACTIONS:
        return None
    return ROI_SERVICE.get(rec.resource_type)


def roi_unmeasurable_reason(rec: Recommendation) -> str | None:
    if rec.action_type in COMMITMENT_ACTIONS:
        return "a commitment purchase: see Savings Plans coverage and utilisation"
    if rec.resource_type not in ROI_SERVICE:
        return f"no Cost Explorer service known for {rec.resource_type or 'this resource type'}"
    if not rec.account_id:
        return "no account id"
    return None


def roi_due(rec: Recommendation, as_of: date) -> bool:
    """Implemented, not measured yet, measurable, and its 14 after-days are complete by `as_of`."""
    return (
        rec.status == IMPLEMENTED
        and rec.roi is None
        and rec.implemented_on is not None
        and roi_unmeasurable_reason(rec) is None
        and after_days_complete(rec.implemented_on, as_of) >= ROI_WINDOW_DAYS
    )


def roi_request(rec: Recommendation, metric: CostMetric = DEFAULT_METRIC) -> dict[str, Any]:
    """The one GetCostAndUsage request measuring `rec`: DAILY usage in `metric` of its service in its
    account, from 14 days before to 14 days after the implementation day (end exclusive)."""
    service = roi_service(rec)
    if rec.implemented_on is None or service is None:
        raise ValueError(f"{rec.rec_id} cannot be measured: {roi_unmeasurable_reason(rec) or 'not implemented'}")
    windows = roi_windows(rec.implemented_on)
    return {
        "TimePeriod": {"Start": windows.query_start.isoformat(), "End": windows.query_end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric.value],
        "Filter": usage_only(
            {
                "And": [
                    {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [rec.account_id]}},
                    {"Dimensions": {"Key": "SERVICE", "Values": [service]}},
                ]
            }
        ),
    }


@dataclass
class DailySeries:
    daily: dict[date, Decimal] = field(default_factory=dict)
    estimated: set[date] = field(default_factory=set)
    currency: str | None = None


def daily_series(pages: Iterable[Mapping[str, Any]], metric: CostMetric = DEFAULT_METRIC) -> DailySeries:
    """Ungrouped DAILY GetCostAndUsage pages -> cost per UTC day (its Total), read in `metric`."""
    series = DailySeries()
    for page in pages:
        for result in page.get("ResultsByTime", ()):
            day = date.fromisoformat(result["TimePeriod"]["Start"][:10])
            total = result.get("Total", {})
            # Ungrouped answers carry the day in Total; grouped ones (a single empty key) in Groups.
            maps = [total] if total else [g["Metrics"] for g in result.get("Groups", ())]
            for metrics in maps:
                amount, unit = metric_amount(metrics, metric)
                series.daily[day] = series.daily.get(day, ZERO) + amount
                series.currency = unit or series.currency
            series.daily.setdefault(day, ZERO)
            if result.get("Estimated"):
                series.estimated.add(day)
    return series


def completed_roi(rec: Recommendation, series: DailySeries, as_of: date, now: datetime) -> Roi | None:
    """The stored form of a complete measurement; None while the after-window is not complete."""
    service = roi_service(rec)
    if rec.implemented_on is None or service is None:
        return None
    measured = measure_roi(series.daily, rec.implemented_on, as_of, estimated=series.estimated)
    if not measured.complete or measured.after_daily is None:
        return None
    return Roi(
        service=service,
        before_daily=measured.before_daily.quantize(_MEAN, rounding=ROUND_HALF_EVEN),
        after_daily=measured.after_daily.quantize(_MEAN, rounding=ROUND_HALF_EVEN),
        currency=series.currency or rec.currency,
        measured_at=utc_text(now),
        window_days=measured.window_days,
        estimated_days=measured.estimated_days,
    )


def realised_in_month(rec: Recommendation, as_of: date) -> Decimal | None:
    """Saving realised in `as_of`'s month up to `as_of` (inclusive): the measured daily saving times
    the days of that month after the implementation day. None until the ROI is measured."""
    if rec.roi is None or rec.implemented_on is None:
        return None
    first = max(as_of.replace(day=1), rec.implemented_on + timedelta(days=1))
    days = max(0, (as_of - first).days + 1)
    return rec.roi.daily_saving * days


# --- commitment KPI (Savings Plans) ---------------------------------------------------------------


@dataclass(frozen=True)
class CommitmentKpi:
    """Savings Plans over `period` (complete UTC days). Ratios are 0..1; None = no data (coverage with
    no eligible spend; utilisation with no active Savings Plans)."""

    period: DateRange
    currency: str
    coverage: Decimal | None
    covered_spend: Decimal
    on_demand_spend: Decimal
    utilisation: Decimal | None
    net_savings: Decimal | None


def commitment_window(as_of: date) -> DateRange:
    """Month-to-date of `as_of` (the last complete UTC cost day), as the weekly report reads it."""
    return DateRange(as_of.replace(day=1), as_of)


def commitment_kpi(
    period: DateRange,
    coverage_pages: Iterable[Mapping[str, Any]],
    utilization: Mapping[str, Any] | None,
    currency: str = "USD",
) -> CommitmentKpi:
    """From GetSavingsPlansCoverage pages and the GetSavingsPlansUtilization answer (None: Cost
    Explorer had no data, e.g. no active Savings Plans). Coverage = covered / total eligible spend,
    summed over every returned period, so pages and groups add up correctly."""
    covered = on_demand = total = ZERO
    for page in coverage_pages:
        for entry in page.get("SavingsPlansCoverages", ()):
            data = entry.get("Coverage", {})
            covered += parse_amount(data.get("SpendCoveredBySavingsPlans") or "0")
            on_demand += parse_amount(data.get("OnDemandCost") or "0")
            total += parse_amount(data.get("TotalCost") or "0")
    utilisation = net = None
    if utilization is not None:
        aggregate = utilization.get("Total", {})
        percent = aggregate.get("Utilization", {}).get("UtilizationPercentage")
        if percent not in (None, ""):
            utilisation = parse_amount(percent) / 100
        saving = aggregate.get("Savings", {}).get("NetSavings")
        if saving not in (None, ""):
            net = parse_amount(saving)
    return CommitmentKpi(period, currency, covered / total if total > 0 else None, covered, on_demand,
                         utilisation, net)  # fmt: skip


# --- the weekly summary ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RoiLine:
    """An implemented item's realised saving next to its estimate: `state` is measured (with
    `monthly`), measuring (with `after_days`) or not-measured (with `note`)."""

    rec: Recommendation
    state: str
    monthly: Decimal | None = None
    after_days: int = 0
    note: str | None = None


def roi_line(rec: Recommendation, as_of: date) -> RoiLine:
    if rec.roi is not None:
        return RoiLine(rec, "measured", monthly=rec.roi.monthly_saving)
    reason = roi_unmeasurable_reason(rec)
    if reason is not None:
        return RoiLine(rec, "not-measured", note=reason)
    days = after_days_complete(rec.implemented_on, as_of) if rec.implemented_on else 0
    return RoiLine(rec, "measuring", after_days=days)


@dataclass(frozen=True)
class SavingsSummary:
    """What the weekly card shows about savings, for everyone (team None) or one team.

    - `open_monthly`: estimated monthly savings of open + accepted items, per currency;
    - `top`: the open + accepted items with the largest estimate (at most 3), largest first;
    - `realised_month`: savings realised in `as_of`'s month up to `as_of`, per currency: for every
      implemented item with a completed ROI, (mean daily before - mean daily after) × the days of
      the month after its implementation day. Items still measuring are not in it (`measuring`);
    - `roi_lines`: the most recently implemented items (at most 3) with their realised saving;
    - `counts`: items per status (every status, zeros included, in STATUSES order).
    """

    as_of: date
    currency: str
    team: str | None
    counts: tuple[tuple[str, int], ...]
    open_monthly: dict[str, Decimal]
    top: tuple[Recommendation, ...]
    realised_month: dict[str, Decimal]
    realised_items: int
    measuring: int
    roi_lines: tuple[RoiLine, ...]
    commitment: CommitmentKpi | None = None

    def count(self, status: str) -> int:
        return dict(self.counts).get(status, 0)

    @property
    def has_content(self) -> bool:
        """Anything worth a card section: savings to act on, implemented items, or the commitment KPI."""
        return bool(self.count(OPEN) or self.count(ACCEPTED) or self.count(IMPLEMENTED) or self.commitment)


TOP_N = 3
ROI_LINES = 3


def ranked(recs: Iterable[Recommendation]) -> list[Recommendation]:
    """Largest estimated monthly saving first; ties by id so the order is stable."""
    return sorted(recs, key=lambda r: (-r.estimated_monthly_savings, r.rec_id))


def summarize(
    recs: Iterable[Recommendation],
    as_of: date,
    *,
    currency: str = "USD",
    team: str | None = None,
    commitment: CommitmentKpi | None = None,
    top_n: int = TOP_N,
) -> SavingsSummary:
    """The weekly summary of `recs` (for `team` only when given) as of `as_of`, the report's last
    complete UTC cost day. `currency` is the report's, used when a total is empty."""
    chosen = [r for r in recs if team is None or r.team == team]
    counts = {s: 0 for s in STATUSES}
    open_monthly: dict[str, Decimal] = {}
    realised: dict[str, Decimal] = {}
    realised_items = measuring = 0
    for rec in chosen:
        counts[rec.status] = counts.get(rec.status, 0) + 1
        if rec.status in ACTIVE:
            open_monthly[rec.currency] = open_monthly.get(rec.currency, ZERO) + rec.estimated_monthly_savings
        if rec.status == IMPLEMENTED:
            amount = realised_in_month(rec, as_of)
            if amount is not None and rec.roi is not None:
                realised[rec.roi.currency] = realised.get(rec.roi.currency, ZERO) + amount
                realised_items += 1
            elif roi_unmeasurable_reason(rec) is None:
                measuring += 1
    implemented = sorted(
        (r for r in chosen if r.status == IMPLEMENTED),
        key=lambda r: (r.implemented_on or date.min, r.rec_id),
        reverse=True,
    )
    return SavingsSummary(
        as_of=as_of,
        currency=currency,
        team=team,
        counts=tuple(counts.items()),
        open_monthly=open_monthly,
        top=tuple(ranked(r for r in chosen if r.status in ACTIVE)[:top_n]),
        realised_month=realised,
        realised_items=realised_items,
        measuring=measuring,
        roi_lines=tuple(roi_line(r, as_of) for r in implemented[:ROI_LINES]),
        commitment=commitment if team is None else None,
    )


def teams_with_items(recs: Iterable[Recommendation]) -> list[str]:
    """Teams owning at least one open or accepted item (those get a savings section in their card)."""
    return sorted({r.team for r in recs if r.team and r.status in ACTIVE})


def by_status(recs: Iterable[Recommendation], statuses: Sequence[str]) -> Iterator[Recommendation]:
    wanted = set(statuses)
    return (r for r in ranked(recs) if r.status in wanted)
