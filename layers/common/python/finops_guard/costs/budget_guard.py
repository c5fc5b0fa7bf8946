"""The daily budget guard: evaluate every budget, alert each crossed threshold once, re-arm on raises.

Exactly-once rules (see adapters/budget_store.py for the conditional writes):
- the decision to alert (budget, period, kind, threshold) is a conditional put of an alert record;
  a concurrent or repeated run whose put fails does not alert;
- sending goes through the chat outbox (its own conditional claim), so a record whose message was
  never delivered (a crash, an outage) is re-sent by the next run, never twice;
- a record whose threshold is no longer crossed is deleted when the budget amount was raised
  since it fired: the threshold is armed again. A new period has new keys, so it re-arms too.

Teams: an alert also goes to the channels of every team the budget's scope names (see
teams.Routing.for_budget). Its record waits for those messages too; a team message whose route
is gone by the time it is re-sent is dropped (and logged) so it cannot hold the record forever.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import unquote

from finops_guard.core.delivery import ChatMessage, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.core.periods import BudgetPeriod, budget_period
from finops_guard.costs.budget_costs import BudgetCosts, CostQuerySource, collect_budget_costs, plan_queries
from finops_guard.costs.budgets import Budget
from finops_guard.costs.cost_metric import DEFAULT_METRIC, CostMetric
from finops_guard.costs.forecast import DEFAULT_LEVEL, PeriodForecast
from finops_guard.costs.outlook import forecast_period_end, runway
from finops_guard.costs.teams import Routing, TeamRoute, message_suffix

log = logging.getLogger(__name__)
HARD_LIMIT = "hard-limit"
TOP_CONTRIBUTORS = 5


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period: BudgetPeriod
    currency: str
    forecast: PeriodForecast
    runway_days: Decimal | None
    contributors: tuple[tuple[str, Decimal], ...]
    contributor_label: str | None
    error: str | None = None
    account_names: Mapping[str, str] = field(default_factory=dict)  # id -> name, as Cost Explorer named them
    metric: CostMetric = DEFAULT_METRIC  # the cost metric of every amount (the alert card names it)
    day_spend: Decimal = Decimal(0)  # spend inside the scope on the period's `as_of` day (the daily digest)
    runway_days_before: Decimal | None = None  # the runway as it stood the day before (the daily digest)

    @property
    def actual(self) -> Decimal:
        return self.forecast.actual

    def consumption(self, kind: str) -> Decimal:
        """Percent of the budget amount: actual spend, or the likely period-end forecast."""
        value = self.forecast.actual if kind == "actual" else self.forecast.likely
        return value / self.budget.amount * 100

    def crossed(self, kind: str) -> tuple[Decimal, ...]:
        """Thresholds reached; exactly at the threshold counts as reached."""
        if self.error:
            return ()
        consumption = self.consumption(kind)
        return tuple(t for t in self.budget.thresholds if consumption >= t)

    @property
    def hard_limit_exceeded(self) -> bool:
        return self.budget.enforce_hard_limit and not self.error and self.consumption("actual") >= 100


def evaluate(costs: BudgetCosts, as_of: date, *, level: Decimal = DEFAULT_LEVEL) -> BudgetStatus:
    """Actual spend for the budget's current period, the forecast to its end (the one every card
    shows: outlook.forecast_period_end), runway and contributors."""
    budget = costs.budget
    period = budget_period(budget.period, as_of)
    outlook = forecast_period_end(costs.daily, period.days, as_of, level)
    actual = outlook.actual
    ranked = sorted(costs.contributors.items(), key=lambda item: (-item[1], item[0]))[:TOP_CONTRIBUTORS]
    error = None
    currency = costs.currency or budget.currency
    if currency != budget.currency:
        error = f"budget is in {budget.currency} but Cost Explorer reports {currency}; refusing to compare"
    return BudgetStatus(
        budget=budget,
        period=period,
        currency=currency,
        forecast=outlook,
        runway_days=runway(costs.daily, as_of, budget.amount - actual),
        contributors=tuple(ranked),
        contributor_label=_label(costs),
        error=error,
        account_names=costs.account_names,
        metric=costs.metric,
        day_spend=costs.daily.get(as_of, Decimal(0)),
        runway_days_before=(
            runway(costs.daily, as_of - timedelta(days=1), budget.amount - actual + costs.daily.get(as_of, Decimal(0)))
            if period.elapsed_days > 1
            else None
        ),
    )


def _label(costs: BudgetCosts) -> str | None:
    dim = costs.contributor_dimension
    if dim is None:
        return None
    return {"LINKED_ACCOUNT": "account", "SERVICE": "service"}.get(dim.key, dim.key)


def alert_key(period_key: str, kind: str, threshold: Decimal | None = None) -> str:
    return f"{period_key}#{kind}" if threshold is None else f"{period_key}#{kind}#{threshold}"


@dataclass(frozen=True)
class AlertRecord:
    """A fired alert. `amount` is the budget amount it fired against (re-arm when raised above it)."""

    budget_id: str
    key: str
    amount: Decimal
    message_ids: tuple[str, ...]
    delivered: bool
    created_at: str


@dataclass(frozen=True)
class Firing:
    status: BudgetStatus
    kind: str  # actual | forecasted | hard-limit
    thresholds: tuple[Decimal, ...]  # newly crossed, ascending

    @property
    def threshold(self) -> Decimal:
        return self.thresholds[-1]

    def records(self, message_ids: tuple[str, ...], now: datetime) -> list[AlertRecord]:
        period = self.status.period.key
        keys = (
            [alert_key(period, HARD_LIMIT)]
            if self.kind == HARD_LIMIT
            else [alert_key(period, self.kind, t) for t in self.thresholds]
        )
        created = now.isoformat(timespec="seconds")
        return [AlertRecord(self.status.budget.budget_id, k, self.status.budget.amount, message_ids, False, created)
                for k in keys]  # fmt: skip


@dataclass
class Decisions:
    fire: list[Firing] = field(default_factory=list)
    rearm: list[AlertRecord] = field(default_factory=list)
    redeliver: list[AlertRecord] = field(default_factory=list)


def candidate_keys(status: BudgetStatus) -> list[str]:
    """Every alert key this budget could hold for its current period."""
    keys = [alert_key(status.period.key, k, t) for k in status.budget.alert_on for t in status.budget.thresholds]
    if status.budget.enforce_hard_limit:
        keys.append(alert_key(status.period.key, HARD_LIMIT))
    return keys


def decide(status: BudgetStatus, existing: Mapping[str, AlertRecord]) -> Decisions:
    """What to do for one budget given the alert records already stored for its period."""
    decisions = Decisions()
    budget, period = status.budget, status.period.key
    for kind in budget.alert_on:
        crossed = set(status.crossed(kind))
        new = tuple(t for t in budget.thresholds if t in crossed and alert_key(period, kind, t) not in existing)
        if new:
            decisions.fire.append(Firing(status, kind, new))
        for threshold in budget.thresholds:
            record = existing.get(alert_key(period, kind, threshold))
            if record is None:
                continue
            if threshold not in crossed and budget.amount > record.amount:
                decisions.rearm.append(record)
            elif threshold in crossed and not record.delivered:
                decisions.redeliver.append(record)
    hard_key = alert_key(period, HARD_LIMIT)
    if status.hard_limit_exceeded and hard_key not in existing:
        decisions.fire.append(Firing(status, HARD_LIMIT, (Decimal(100),)))
    elif hard_key in existing and not existing[hard_key].delivered:
        decisions.redeliver.append(existing[hard_key])
    return decisions


class AlertStore(Protocol):
    def get_alerts(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], AlertRecord]: ...
    def record_alerts(self, records: Sequence[AlertRecord], expires_at: int) -> bool: ...
    def mark_delivered(self, budget_id: str, key: str) -> None: ...
    def rearm(self, record: AlertRecord) -> bool: ...
    def put_statuses(self, statuses: Sequence[BudgetStatus], now: datetime) -> None: ...


class DigestRenderer(Protocol):
    def __call__(self, firings: list[Firing], channel: str, timezone: str) -> dict[str, Any]: ...


DIGEST_AFTER = 5  # more alerts than this for one channel in one run become one digest message


def _combine_into_digests(
    messages: dict[str, ChatMessage],
    waiting: dict[tuple[str, str], set[str]],
    firings_of: Mapping[str, Firing],
    render_digest: DigestRenderer,
    timezone: str,
) -> None:
    """A first run over many budgets must not flood a channel: per destination (a channel of the
    deployment or of one team), more than DIGEST_AFTER alerts go out as one digest, and the alert
    records wait for the digest instead."""
    by_destination: dict[tuple[str, str | None], list[str]] = {}
    for message_id, message in messages.items():
        by_destination.setdefault((_destination_part(message_id), message.secret_name), []).append(message_id)
    for (destination, secret_name), ids in by_destination.items():
        if len(ids) <= DIGEST_AFTER:
            continue
        channel = messages[ids[0]].channel
        digest_id = f"budget-digest/{hashlib.sha256('|'.join(sorted(ids)).encode()).hexdigest()[:20]}/{destination}"
        firings = sorted((firings_of[i] for i in ids), key=lambda f: -f.status.consumption(_consumption_kind(f)))
        payload = render_digest(firings, channel, timezone)
        messages[digest_id] = ChatMessage(digest_id, channel, "budget-alert", payload, secret_name)
        for message_id in ids:
            del messages[message_id]
        for pending in waiting.values():
            if pending & set(ids):
                pending.difference_update(ids)
                pending.add(digest_id)


def _consumption_kind(firing: Firing) -> str:
    return "forecasted" if firing.kind == "forecasted" else "actual"


class EventPublisher(Protocol):
    def budget_exceeded(self, detail: dict[str, Any]) -> None: ...


class Renderer(Protocol):
    def __call__(self, firing: Firing, channel: str, timezone: str) -> dict[str, Any]: ...


@dataclass
class GuardOutcome:
    statuses: list[BudgetStatus]
    fired: list[Firing]
    rearmed: list[AlertRecord]
    delivery: DeliveryResult
    cost_requests: int
    events: int = 0
    dropped: list[str] = field(default_factory=list)  # team messages whose route was removed before redelivery

    @property
    def errors(self) -> list[BudgetStatus]:
        return [s for s in self.statuses if s.error]


def budget_exceeded_detail(status: BudgetStatus) -> dict[str, Any]:
    """The `Budget Exceeded` event detail (source finops.guard). Money as strings: exact decimals."""
    budget = status.budget
    return {
        "budgetId": budget.budget_id,
        "budgetName": budget.name,
        "scope": budget.to_document()["scope"],
        "period": {
            "kind": budget.period,
            "key": status.period.key,
            "start": status.period.days.first.isoformat(),
            "end": status.period.days.last.isoformat(),
            "asOf": status.period.as_of.isoformat(),
        },
        "currency": budget.currency,
        "amount": str(budget.amount),
        "actual": str(status.actual.quantize(Decimal("0.01"))),
        "forecast": str(status.forecast.likely.quantize(Decimal("0.01"))),
        "consumptionPercent": str(status.consumption("actual").quantize(Decimal("0.1"))),
        "owner": budget.owner,
    }


def message_ids(firing: Firing, teams: Sequence[TeamRoute] = ()) -> tuple[str, ...]:
    """budget-alert/<budget>/<period>/<kind>/<threshold>@<amount>/<channel> for each channel the budget
    notifies, then .../team/<team, URL-quoted>/<channel> for each channel of each of `teams`. A raised
    amount gives a re-armed threshold a new id, so its second alert is not mistaken for the first."""
    budget = firing.status.budget
    period = firing.status.period.key
    stem = f"budget-alert/{budget.budget_id}/{period}/{firing.kind}/{firing.threshold}@{budget.amount}"
    default = [f"{stem}/{channel}" for channel in budget.notify]
    # A team's channels are its own choice (its route): the budget's `notify` governs the default ones.
    for_teams = [f"{stem}/{message_suffix(r.team)}/{channel}" for r in teams for channel, _ in r.destinations()]
    return tuple(default + for_teams)


def _destination_part(message_id: str) -> str:
    """What follows the alert in a message id: `<channel>` or `team/<quoted team>/<channel>`."""
    return message_id.split("/", 5)[5]


def _team_of(message_id: str) -> str | None:
    """The team whose channel a message id names; None for the deployment's own channel."""
    team_part, _, _ = _destination_part(message_id).rpartition("/")
    return unquote(team_part.split("/", 1)[1]) if team_part else None


def _firing_of(status: BudgetStatus, message_id: str) -> Firing:
    """The alert a stored message id describes (kind and threshold), for re-rendering on redelivery."""
    _, _, _, kind, threshold_at, _ = message_id.split("/", 5)
    return Firing(status, kind, (Decimal(threshold_at.split("@")[0]),))


def _team_secret(routing: Routing | None, team: str, channel: str) -> str | None:
    """The webhook secret the team's route holds today for `channel`; None once route or channel is gone."""
    route = routing.route(team) if routing is not None else None
    return dict(route.destinations()).get(channel) if route is not None else None


def run_budget_guard(
    budgets: Sequence[Budget],
    *,
    now: datetime,
    costs: CostQuerySource,
    store: AlertStore,
    outbox: Outbox,
    poster: Poster,
    events: EventPublisher,
    render: Renderer,
    timezone: str,
    render_digest: DigestRenderer | None = None,
    routing: Routing | None = None,
    level: Decimal = DEFAULT_LEVEL,
    keep_days: int = 400,
    metric: CostMetric = DEFAULT_METRIC,
) -> GuardOutcome:
    """Evaluate `budgets` for the last complete UTC cost day before `now` and act on the decisions.
    Alerts go to each budget's `notify` channels and, with `routing`, to the teams its scope names.
    Every amount is in `metric`, on each budget's basis (usage, or net of credits, refunds and tax)."""
    as_of = now.astimezone(UTC).date() - timedelta(days=1)
    statuses = evaluate_all(budgets, as_of, costs, level=level, metric=metric)
    existing = store.get_alerts([(s.budget.budget_id, key) for s in statuses for key in candidate_keys(s)])
    expires_at = int((now + timedelta(days=keep_days)).timestamp())
    outcome = GuardOutcome(statuses, [], [], DeliveryResult(), costs.requests)
    messages: dict[str, ChatMessage] = {}
    waiting: dict[tuple[str, str], set[str]] = {}  # alert record -> message ids it waits for
    hard_limits: list[tuple[BudgetStatus, str]] = []

    firings_of: dict[str, Firing] = {}

    def send(status: BudgetStatus, record_keys: Sequence[str], ids: Sequence[str]) -> None:
        kept = []
        for message_id in ids:
            if message_id in outcome.dropped:
                continue
            if message_id not in messages:
                channel = message_id.rsplit("/", 1)[1]
                team = _team_of(message_id)
                secret_name = None if team is None else _team_secret(routing, team, channel)
                if team is not None and secret_name is None and routing is not None and not routing.available:
                    kept.append(message_id)  # routes unreadable this run: the record keeps waiting for it
                    continue
                if team is not None and secret_name is None:
                    log.warning(
                        "team channel no longer routed; its budget alert is dropped",
                        extra={"message_id": message_id, "team": team, "channel": channel},
                    )
                    outcome.dropped.append(message_id)
                    continue
                firings_of[message_id] = _firing_of(status, message_id)
                payload = render(firings_of[message_id], channel, timezone)
                messages[message_id] = ChatMessage(message_id, channel, "budget-alert", payload, secret_name)
            kept.append(message_id)
        for key in record_keys:
            waiting.setdefault((status.budget.budget_id, key), set()).update(kept)

    for status in statuses:
        budget_id = status.budget.budget_id
        decisions = decide(status, {key: rec for (bid, key), rec in existing.items() if bid == budget_id})
        for record in decisions.rearm:
            if store.rearm(record):
                outcome.rearmed.append(record)
        team_routes = routing.for_budget(status.budget) if routing is not None and decisions.fire else []
        for firing in decisions.fire:
            ids = () if firing.kind == HARD_LIMIT else message_ids(firing, team_routes)
            records = firing.records(ids, now)
            if not store.record_alerts(records, expires_at):
                log.info("alert already recorded by a concurrent run", extra={"budget_id": budget_id})
                continue
            outcome.fired.append(firing)
            if firing.kind == HARD_LIMIT:
                hard_limits.append((status, records[0].key))
            else:
                send(status, [r.key for r in records], ids)
        for record in decisions.redeliver:
            if record.key.split("#")[1] == HARD_LIMIT:
                hard_limits.append((status, record.key))
            else:
                send(status, [record.key], record.message_ids)

    for status, key in hard_limits:
        events.budget_exceeded(budget_exceeded_detail(status))
        store.mark_delivered(status.budget.budget_id, key)
        outcome.events += 1
    if render_digest is not None:
        _combine_into_digests(messages, waiting, firings_of, render_digest, timezone)
    outcome.delivery = deliver_all(messages.values(), outbox, poster, now)
    # Skipped = delivered earlier or being delivered by a concurrent run; failures stay in the outbox.
    done = set(outcome.delivery.delivered) | set(outcome.delivery.skipped)
    for (budget_id, key), pending in waiting.items():
        if pending <= done:
            store.mark_delivered(budget_id, key)
    store.put_statuses(statuses, now)
    return outcome


def evaluate_all(
    budgets: Sequence[Budget],
    as_of: date,
    costs: CostQuerySource,
    *,
    level: Decimal,
    metric: CostMetric = DEFAULT_METRIC,
) -> list[BudgetStatus]:
    statuses: list[BudgetStatus] = []
    for query in plan_queries(budgets, as_of, metric=metric):
        per_budget = collect_budget_costs(query, costs.query(query.request()), as_of)
        statuses.extend(evaluate(per_budget[b.budget_id], as_of, level=level) for b in query.budgets)
    order = {b.budget_id: i for i, b in enumerate(budgets)}
    return sorted(statuses, key=lambda s: order[s.budget.budget_id])
