"""When the month-close report is computed, stored, archived and posted: provisional once, final once.

Two runs take part, neither on a schedule of its own:
- **the chargeback on the 1st** (`close_after_chargeback`) computes the month it just billed, reusing
  its own requests for the untagged share, and posts it: "provisional" while Cost Explorer still
  marks the month estimated (or its last UTC day has not ended), else "final";
- **the daily budget guard** (`check_after_guard`) asks, from the pages it read anyway, whether Cost
  Explorer stopped marking last month estimated. When it has, it computes the month again and posts
  it as "final", once, with what changed. The report's first request (the 13-month history) confirms
  it before any other is made; when the guard's pages cover no day of that month (no budgets), that
  one request a day is the check, until the month is final. It also posts the provisional report
  itself if the chargeback's was missing a day later.

Exactly once: each report is a conditional write in the store (month, status) holding the report
itself; a second run (a retry, a concurrent invocation, tomorrow's guard) finds it and re-sends the
stored report instead of computing another, and the outbox posts each (month, status, channel) once.
A report is marked announced when every channel settled, after which runs leave it alone.

The archive: `chargeback/<YYYY-MM>/month-close.csv` and `month-close.html` beside the chargeback's
CSVs in the versioned bucket, a new version per post; the card links that version, pre-signed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.delivery import ChatMessage, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.core.money import ZERO
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budgets import Budget
from finops_guard.costs.chargeback import Month, MonthCosts, chargeback_request, month_complete, month_costs
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.forecast import DEFAULT_LEVEL
from finops_guard.costs.guard_tap import GuardSpend
from finops_guard.costs.month_close import (
    DEFAULT_ADJUST_THRESHOLD,
    FINAL,
    KIND,
    PROVISIONAL,
    BudgetClose,
    MonthCloseReport,
    MonthHistory,
    PeriodRefused,
    add_months,
    budget_close,
    history_request,
    last_day,
    month_history,
    month_of,
    report_from_data,
    untagged_of,
    with_changes,
)
from finops_guard.costs.savings import Recommendation, summarize
from finops_guard.costs.teams import AttributionDimension

log = logging.getLogger(__name__)
# How long after a month's last day the guard keeps looking for its final figures: AWS finalises the
# invoice in the first days of the next month. The guard's budget requests reach back 56 days (the
# forecast's LOOKBACK_DAYS), so the month's last day is in its pages all that time.
FINAL_WINDOW_DAYS = 27
CSV_TYPE = "text/csv; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
WAITING_FINAL = "waiting for Cost Explorer to finalise the month"
HISTORY, BUDGETS, ATTRIBUTION = "13-month history", "budgets", "attribution"


class CostQuerySource(Protocol):
    requests: int

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class StoredReport:
    report: MonthCloseReport
    announced: bool


class MonthCloseStore(Protocol):
    def get(self, month: str) -> dict[str, StoredReport]: ...
    def create(self, report: MonthCloseReport, now: datetime) -> bool: ...
    def mark_announced(self, month: str, status: str) -> None: ...


class Archive(Protocol):
    def put_text(self, key: str, text: str, content_type: str) -> str | None: ...
    def download_link(self, key: str, version_id: str | None, expires_in_s: int) -> str: ...


@dataclass(frozen=True)
class Inputs:
    """What the month-close reads besides Cost Explorer, and its knobs."""

    budgets: Sequence[Budget] = ()
    recommendations: Sequence[Recommendation] = ()
    dimensions: Sequence[AttributionDimension] = ()
    currency: str = "USD"
    level: Decimal = DEFAULT_LEVEL
    threshold: Decimal = DEFAULT_ADJUST_THRESHOLD
    metric: CostMetric = DEFAULT_METRIC  # the deployment's costMetric: every request and amount in it


@dataclass(frozen=True)
class Publishing:
    """Where and how a report goes out."""

    archive: Archive
    outbox: Outbox
    poster: Poster
    channels: Sequence[str]
    timezone: str
    stage: str
    link_minutes: int = 60


@dataclass
class MonthCloseOutcome:
    month: str | None
    action: str  # what the run did, for the log and the handler's answer
    report: MonthCloseReport | None = None
    delivery: DeliveryResult = field(default_factory=DeliveryResult)
    cost_requests: int = 0
    archive: dict[str, str | None] = field(default_factory=dict)  # key -> version written


def compute(
    month: Month,
    *,
    now: datetime,
    costs: CostQuerySource,
    inputs: Inputs,
    reused: Mapping[str, MonthCosts] | None = None,
    history: MonthHistory | None = None,
    extra_requests: Sequence[tuple[str, int]] = (),
) -> MonthCloseReport:
    """The report of `month` as Cost Explorer tells it at `now`: 1 history request (its pages) unless
    `history` was fetched already (its requests then in `extra_requests`), one per budget grouping
    (as the guard groups them), one per attribution dimension not in `reused` (dimension spec -> the
    chargeback run's data for the month)."""
    requests = list(extra_requests)
    if history is None:
        history, count = fetch_history(month, now, costs, inputs.metric)
        requests.append((HISTORY, count))

    before = costs.requests
    closes = _budget_closes(month, costs, inputs)
    requests.append((BUDGETS, costs.requests - before))

    before = costs.requests
    estimated = str(month) in history.estimated
    untagged, reused_labels = [], []
    for dimension in inputs.dimensions:
        data = (reused or {}).get(dimension.spec())
        if data is None:
            data = month_costs(
                dimension, costs.query(chargeback_request(dimension, month, inputs.metric)), inputs.metric
            )
        else:
            reused_labels.append(f"spend by {dimension.label}")
        estimated = estimated or data.estimated
        untagged.append(untagged_of(data))
    if costs.requests - before:
        requests.append((ATTRIBUTION, costs.requests - before))

    summary = summarize(inputs.recommendations, last_day(month), currency=inputs.currency)
    realised = tuple(sorted((c, a) for c, a in summary.realised_month.items() if a != ZERO))
    return report_from_data(
        month,
        history=history,
        budgets=closes,
        untagged=untagged,
        savings=(realised, summary.realised_items, summary.measuring),
        estimated=estimated,
        complete=month_complete(month, now),
        currency=inputs.currency,
        generated_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        requests=requests,
        reused=reused_labels,
        metric=inputs.metric,
    )


def fetch_history(
    month: Month, now: datetime, costs: CostQuerySource, metric: CostMetric = DEFAULT_METRIC
) -> tuple[MonthHistory, int]:
    """The 13-month history in `metric` (and with it whether Cost Explorer still estimates the month),
    and the requests it took."""
    today = now.astimezone(UTC).date()
    before = costs.requests
    try:
        history = month_history(costs.query(history_request(month, today, metric=metric)), metric)
    except PeriodRefused:
        log.warning("Cost Explorer refused the year-ago month; month over month only", extra={"month": str(month)})
        history = month_history(costs.query(history_request(month, today, year_ago=False, metric=metric)), metric)
    return history, costs.requests - before


def _budget_closes(month: Month, costs: CostQuerySource, inputs: Inputs) -> list[BudgetClose]:
    """Each budget as of the month's last day: the guard's own requests for that day (same grouping,
    metric and basis per budget)."""
    as_of = last_day(month)
    closes: dict[str, BudgetClose] = {}
    for query in plan_queries(inputs.budgets, as_of, metric=inputs.metric):
        per_budget = collect_budget_costs(query, costs.query(query.request()), as_of)
        for budget in query.budgets:
            closes[budget.budget_id] = budget_close(
                per_budget[budget.budget_id], month, level=inputs.level, threshold=inputs.threshold
            )
    return [closes[b.budget_id] for b in inputs.budgets if b.budget_id in closes]


def archive_keys(month: str) -> tuple[str, str]:
    """(CSV key, HTML key) beside the month's chargeback CSVs."""
    return f"chargeback/{month}/month-close.csv", f"chargeback/{month}/month-close.html"


def message_id(month: str, status: str, channel: str) -> str:
    """`month-close/2026-10/provisional/teams`: once per month, status and channel, whatever the run."""
    return f"{KIND}/{month}/{status}/{channel}"


def announce(report: MonthCloseReport, publishing: Publishing, now: datetime) -> tuple[DeliveryResult, dict]:
    """Archive the report (a new version of each file) and post its card to every channel."""
    from finops_guard.costs.cards.month_close import render_month_close
    from finops_guard.costs.month_close_archive import to_csv, to_html

    csv_key, html_key = archive_keys(report.month)
    archive = publishing.archive
    csv_version = archive.put_text(csv_key, to_csv(report), CSV_TYPE)
    html_version = archive.put_text(html_key, to_html(report, publishing.timezone, publishing.stage), HTML_TYPE)
    seconds = publishing.link_minutes * 60
    links = (
        archive.download_link(html_key, html_version, seconds),
        archive.download_link(csv_key, csv_version, seconds),
    )
    expires_at = now + timedelta(seconds=seconds)
    messages = [
        ChatMessage(
            message_id(report.month, report.status, channel),
            channel,
            KIND,
            render_month_close(report, channel, links=links, expires_at=expires_at, timezone=publishing.timezone),
        )
        for channel in publishing.channels
    ]
    return deliver_all(messages, publishing.outbox, publishing.poster, now), {csv_key: csv_version,
                                                                              html_key: html_version}  # fmt: skip


def _post(
    report: MonthCloseReport, store: MonthCloseStore, publishing: Publishing, now: datetime, *, fresh: bool
) -> MonthCloseOutcome:
    """Post `report` once: `fresh` ones are first created in the store (a lost race posts the winner's)."""
    if fresh and not store.create(report, now):
        stored = store.get(report.month).get(report.status)
        if stored is None:  # pragma: no cover - created by another run and gone since: nothing to post
            return MonthCloseOutcome(report.month, "recorded by another run meanwhile")
        log.info("month-close report recorded by another run; posting that one", extra={"month": report.month})
        report = stored.report
    delivery, versions = announce(report, publishing, now)
    if not delivery.failed:
        store.mark_announced(report.month, report.status)
    action = f"posted {report.status}" if fresh else f"posted the stored {report.status} report again"
    return MonthCloseOutcome(report.month, action, report, delivery, report.cost_requests if fresh else 0, versions)


def close_after_chargeback(
    month: Month,
    *,
    now: datetime,
    costs: CostQuerySource,
    inputs: Inputs,
    reused: Mapping[str, MonthCosts],
    store: MonthCloseStore,
    publishing: Publishing,
) -> MonthCloseOutcome:
    """The chargeback's run on the 1st (or a re-run of a month): post the month's report unless it was."""
    stored = store.get(str(month))
    for status in (FINAL, PROVISIONAL):
        if status in stored:
            if not stored[status].announced:
                return _post(stored[status].report, store, publishing, now, fresh=False)
            return MonthCloseOutcome(str(month), f"{status} report already posted")
    report = compute(month, now=now, costs=costs, inputs=inputs, reused=reused)
    return _post(report, store, publishing, now, fresh=True)


def closed_month(as_of: date) -> Month | None:
    """The latest month that ended on or before `as_of` (a guard's last complete UTC cost day), while
    the guard's 28 days still reach its last day; None after that."""
    month = month_of(as_of) if (as_of + timedelta(days=1)).day == 1 else add_months(month_of(as_of), -1)
    return month if (as_of - last_day(month)).days <= FINAL_WINDOW_DAYS else None


def check_after_guard(
    as_of: date,
    spend: GuardSpend,
    *,
    now: datetime,
    costs: CostQuerySource,
    inputs: Inputs,
    store: MonthCloseStore,
    publishing: Publishing,
) -> MonthCloseOutcome:
    """The guard's daily look at last month: post the final report once Cost Explorer stops marking
    the month estimated (and the provisional one if the chargeback's is a day late)."""
    month = closed_month(as_of)
    if month is None:
        return MonthCloseOutcome(None, "no month closing")
    key = str(month)
    stored = store.get(key)
    final, provisional = stored.get(FINAL), stored.get(PROVISIONAL)
    if final is not None:
        if final.announced:
            return MonthCloseOutcome(key, "final report already posted")
        return _post(final.report, store, publishing, now, fresh=False)
    if provisional is not None and not provisional.announced:
        return _post(provisional.report, store, publishing, now, fresh=False)
    if provisional is None and as_of <= last_day(month):
        return MonthCloseOutcome(key, "waiting for the chargeback run to post the provisional report")
    if spend.month_final(month.first, last_day(month)) is False and provisional is not None:
        return MonthCloseOutcome(key, WAITING_FINAL)  # the guard's own pages still say estimated: free
    # The guard's pages say final (or cover no day of the month, for want of budgets): the history
    # request, the report's first anyway, says whether Cost Explorer agrees, before any other request.
    history, count = fetch_history(month, now, costs, inputs.metric)
    if key in history.estimated and provisional is not None:
        return MonthCloseOutcome(key, WAITING_FINAL, cost_requests=count)
    report = compute(month, now=now, costs=costs, inputs=inputs, history=history, extra_requests=[(HISTORY, count)])
    if report.status == FINAL:
        report = with_changes(report, provisional.report if provisional is not None else None)
    elif provisional is not None:  # pragma: no cover - the history said final; a dimension still estimates
        return MonthCloseOutcome(key, WAITING_FINAL, cost_requests=report.cost_requests)
    return _post(report, store, publishing, now, fresh=True)
