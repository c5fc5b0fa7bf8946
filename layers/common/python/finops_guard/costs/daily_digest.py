"""The daily digest: a handful of lines about yesterday, posted only when something needs a reader.

Built inside the budget guard's daily run from what that run already has, so it costs no Cost
Explorer request: the guard's pages (through costs/guard_tap.py), the budget statuses it computed,
and the anomalies the anomaly function recorded (read from the anomalies table).

- **The day** is the guard's: the last complete UTC cost day before the run (Cost Explorer's days are
  UTC), named on the card.
- **Spend**: that day against the average of the 7 days before it. Seven days hold each weekday once,
  so the baseline has the same weekday mix every day of the week.
- **Movers**: the three values (services when the guard's data is grouped by service, else accounts
  or its other dimension) whose day moved most from their own 7-day average, either way.
- **Budgets**: those whose runway (days until the amount is used up at the period's average burn)
  fell below what is left of their period on that day: they will run out before it ends.
- **Anomalies**: those Cost Anomaly Detection opened that day (first seen by FinOps Guard).

**Quiet rule.** A digest posts when the day's spend, or one of its movers, *rose* by at least
`min_share` of its 7-day average *and* by at least `min_amount` (a share alone would post a $0.10 to
$0.50 service every day; an amount alone would post a large bill's daily noise), or when a budget's
runway fell below its period, or when an anomaly opened. Falls never post on their own (the peers
users asked us to match post only when cost rose); they are listed when the digest posts anyway. A
quiet day posts nothing and the log says so.

Money is Decimal in the cost currency throughout; ratios are plain Decimals (0.2 = 20 %).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.delivery import ChatMessage, DeliveryResult, Outbox, Poster, deliver_all
from finops_guard.core.money import ZERO
from finops_guard.core.periods import WEEK_DAYS, DateRange
from finops_guard.costs.budget_guard import BudgetStatus
from finops_guard.costs.budgets import LINKED_ACCOUNT, SERVICE, Dimension
from finops_guard.costs.guard_tap import GuardSpend
from finops_guard.costs.kpis import ratio
from finops_guard.costs.teams import Routing, TeamRoute, message_suffix

log = logging.getLogger(__name__)

KIND = "daily-digest"
TOP_MOVERS = 3
MAX_BUDGETS = 5
MAX_ANOMALIES = 5
DEFAULT_MIN_SHARE = Decimal("0.2")
DEFAULT_MIN_AMOUNT = Decimal(100)


@dataclass(frozen=True)
class QuietRule:
    """A rise counts when it is at least `min_share` of the baseline (a ratio) and at least
    `min_amount` (currency units). Either may be 0, which leaves the other alone."""

    min_share: Decimal = DEFAULT_MIN_SHARE
    min_amount: Decimal = DEFAULT_MIN_AMOUNT


def baseline_days(day: date) -> DateRange:
    """The 7 complete UTC days before `day`: one of each weekday."""
    return DateRange(day - timedelta(days=WEEK_DAYS), day - timedelta(days=1))


@dataclass(frozen=True)
class Move:
    """One series' `day` against the mean of its 7 days before (currency units per day)."""

    name: str
    day_spend: Decimal
    average: Decimal

    @property
    def delta(self) -> Decimal:
        return self.day_spend - self.average

    @property
    def relative(self) -> Decimal | None:
        """delta / average; None when the average is zero (new spend)."""
        return ratio(self.delta, self.average)

    def rose_beyond(self, rule: QuietRule) -> bool:
        """Rose by at least the rule's share of its average and at least its amount. Spend that is new
        (no average) counts on the amount alone."""
        if self.delta <= 0 or self.delta < rule.min_amount:
            return False
        relative = self.relative
        return relative is None or relative >= rule.min_share


def move(name: str, series: Mapping[date, Decimal], day: date) -> Move:
    """`series` (a missing day is zero) on `day` against its 7-day average."""
    week = baseline_days(day)
    total = sum((series.get(d, ZERO) for d in week.each_day()), ZERO)
    return Move(name, series.get(day, ZERO), total / WEEK_DAYS)


def movers(by_value: Mapping[str, Mapping[date, Decimal]], day: date, top: int = TOP_MOVERS) -> list[Move]:
    """The `top` values whose `day` moved most from their 7-day average, either way (largest absolute
    change first, ties by name). Values that did not move are left out."""
    moves = [move(name, series, day) for name, series in by_value.items()]
    moved = [m for m in moves if m.delta != 0]
    return sorted(moved, key=lambda m: (-abs(m.delta), m.name))[:top]


@dataclass(frozen=True)
class RunwayDrop:
    """A budget that, on the digest's day, will run out before its period ends."""

    status: BudgetStatus
    runway_days: Decimal
    remaining_days: int

    @property
    def runs_out_on(self) -> date:
        """The day the amount is used up at the current burn (the period's average so far)."""
        whole = int(self.runway_days)  # toward zero: the last full day the money lasts
        return self.status.period.as_of + timedelta(days=whole)


def _short_of_period(runway: Decimal | None, remaining_days: int) -> bool:
    return runway is not None and runway < remaining_days


def runway_fell(status: BudgetStatus) -> RunwayDrop | None:
    """The budget's runway is below what is left of its period on its day, and was not the day before.

    The day before, the period had spent `actual - day_spend` (the status's spend inside the scope on
    its day) in one day less. On a period's first day there was no day before in it:
    a new period that starts short counts as fallen."""
    if status.error:
        return None
    period = status.period
    runway = status.runway_days
    if not _short_of_period(runway, period.remaining_days):
        return None
    assert runway is not None
    if period.elapsed_days > 1:  # the runway of the day before, on the same model (budget_guard.evaluate)
        if _short_of_period(status.runway_days_before, period.remaining_days + 1):
            return None
    return RunwayDrop(status, runway, period.remaining_days)


@dataclass(frozen=True)
class OpenedAnomaly:
    """An anomaly first seen on the digest's day (what the anomalies table holds of it)."""

    anomaly_id: str
    service: str | None
    account_id: str | None
    impact: Decimal


class AnomaliesOpened(Protocol):
    def opened_on(self, day: date) -> list[OpenedAnomaly]: ...


@dataclass(frozen=True)
class Digest:
    """One destination's digest of `day`. `scope` is None for the deployment's channels, else a team."""

    day: date
    currency: str
    scope: str | None = None
    scope_label: str | None = None  # e.g. "Team web"
    spend: Move | None = None  # None: no spend figure for this scope in the guard's data
    movers: tuple[Move, ...] = ()
    mover_label: str = "service"
    budgets: tuple[RunwayDrop, ...] = ()
    anomalies: tuple[OpenedAnomaly, ...] = ()
    estimated: bool = False  # Cost Explorer still estimates the day
    reasons: tuple[str, ...] = ()  # why it posts; none = quiet
    account_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        return not self.reasons


MOVER_LABELS = {SERVICE: "service", LINKED_ACCOUNT: "account"}
_PREFERRED = (SERVICE, LINKED_ACCOUNT)


def mover_dimension(spend: GuardSpend) -> Dimension | None:
    """Services when the guard's data has them, else accounts, else its first dimension."""
    for dimension in _PREFERRED:
        if dimension in spend.by_dimension:
            return dimension
    return next(iter(spend.by_dimension), None)


def mover_label(dimension: Dimension | None) -> str:
    if dimension is None:
        return "service"
    return MOVER_LABELS.get(dimension, dimension.key)


def shown_movers(moves: Iterable[Move], rule: QuietRule, top: int = TOP_MOVERS) -> list[Move]:
    """The `top` movers a digest lists: every value whose rise made it post first (largest rise
    first), then the biggest other moves either way; listed largest absolute change first."""
    moved = [m for m in moves if m.delta != 0]
    chosen = sorted((m for m in moved if m.rose_beyond(rule)), key=lambda m: (-m.delta, m.name))[:top]
    names = {m.name for m in chosen}
    rest = sorted((m for m in moved if m.name not in names), key=lambda m: (-abs(m.delta), m.name))
    chosen += rest[: top - len(chosen)]
    return sorted(chosen, key=lambda m: (-abs(m.delta), m.name))


def build_digest(
    day: date,
    *,
    currency: str,
    rule: QuietRule,
    daily: Mapping[date, Decimal] | None,
    by_value: Mapping[str, Mapping[date, Decimal]],
    label: str,
    budgets: Iterable[RunwayDrop] = (),
    anomalies: Iterable[OpenedAnomaly] = (),
    estimated: bool = False,
    scope: str | None = None,
    scope_label: str | None = None,
    account_names: Mapping[str, str] | None = None,
) -> Digest:
    """The digest of `day` for one destination, and why it posts (see the module docstring).
    `daily`: the scope's spend per UTC day (None: the guard's data has no spend figure for it);
    `by_value`: the same by `label` (service, account...) for the movers."""
    spend = move("spend", daily, day) if daily is not None else None
    moves = [move(name, series, day) for name, series in by_value.items()]
    rising = sum(1 for m in moves if m.rose_beyond(rule))
    drops = tuple(sorted(budgets, key=lambda d: (d.runway_days - d.remaining_days, d.status.budget.budget_id)))
    opened = tuple(sorted(anomalies, key=lambda a: (-a.impact, a.anomaly_id)))
    reasons: list[str] = []
    if spend is not None and spend.rose_beyond(rule):
        reasons.append("spend rose")
    if rising:
        reasons.append(f"{rising} {label}{'s' if rising != 1 else ''} rose")
    if drops:
        reasons.append(f"{len(drops)} budget{'s' if len(drops) != 1 else ''} will run out before the period ends")
    if opened:
        reasons.append(f"{len(opened)} anomal{'ies' if len(opened) != 1 else 'y'} opened")
    return Digest(
        day=day,
        currency=currency,
        scope=scope,
        scope_label=scope_label,
        spend=spend,
        movers=tuple(shown_movers(moves, rule)),
        mover_label=label,
        budgets=drops[:MAX_BUDGETS],
        anomalies=opened[:MAX_ANOMALIES],
        estimated=estimated,
        reasons=tuple(reasons),
        account_names=dict(account_names or {}),
    )


def fallen_budgets(statuses: Iterable[BudgetStatus]) -> list[RunwayDrop]:
    """The budgets whose runway fell below their period on their last evaluated day."""
    return [drop for status in statuses if (drop := runway_fell(status)) is not None]


def message_id(day: date, channel: str, team_suffix: str | None = None) -> str:
    """`daily-digest/2026-11-15/teams`, or `.../team/<quoted team>/<channel>` for a team's channel:
    one digest per day and destination, so a rerun of the same day posts nothing new."""
    stem = f"{KIND}/{day.isoformat()}"
    return f"{stem}/{team_suffix}/{channel}" if team_suffix else f"{stem}/{channel}"


def digest_facts(digest: Digest) -> dict[str, Any]:
    """What a log line says about a digest (quiet or not)."""
    return {
        "day": digest.day.isoformat(),
        "scope": digest.scope or "default",
        "quiet": digest.quiet,
        "reasons": list(digest.reasons),
        "spend": None if digest.spend is None else str(digest.spend.day_spend),
        "average": None if digest.spend is None else str(digest.spend.average),
        "budgets": [d.status.budget.budget_id for d in digest.budgets],
        "anomalies": [a.anomaly_id for a in digest.anomalies],
    }


# --- the use case: one digest per destination, delivered through the outbox ---------------------------


class Renderer(Protocol):
    def __call__(self, digest: Digest, channel: str) -> dict[str, Any]: ...


@dataclass
class DigestOutcome:
    digests: list[Digest] = field(default_factory=list)  # every digest built, quiet ones included
    messages: list[ChatMessage] = field(default_factory=list)
    delivery: DeliveryResult = field(default_factory=DeliveryResult)

    @property
    def quiet(self) -> list[Digest]:
        return [d for d in self.digests if d.quiet]


def compose_digests(
    day: date,
    spend: GuardSpend,
    statuses: Sequence[BudgetStatus],
    anomalies: Sequence[OpenedAnomaly],
    *,
    rule: QuietRule,
    currency: str,
    default_channels: Sequence[str],
    teams: Sequence[TeamRoute] = (),
    routing: Routing | None = None,
    team_label: str = "Team",
) -> list[tuple[Digest, list[tuple[str, str | None]]]]:
    """Each destination's digest of `day` with its (channel, team destination) pairs: the deployment's
    channels first (the whole organisation), then each of `teams` (its spend when the guard's data
    is grouped by the team dimension, the budgets its scope names, the anomalies in its accounts)."""
    currency = spend.currency or currency
    estimated = day in spend.estimated_days
    fallen = fallen_budgets(statuses)
    dimension = mover_dimension(spend)
    out: list[tuple[Digest, list[tuple[str, str | None]]]] = []
    if default_channels:
        digest = build_digest(
            day,
            currency=currency,
            rule=rule,
            daily=spend.daily,
            by_value=spend.by_dimension.get(dimension, {}) if dimension is not None else {},
            label=mover_label(dimension),
            budgets=fallen,
            anomalies=anomalies,
            estimated=estimated,
            account_names=spend.account_names,
        )
        out.append((digest, [(channel, None) for channel in default_channels]))
    for route in teams:
        team_spend = spend.teams.get(route.team)
        accounts = set(route.accounts)
        digest = build_digest(
            day,
            currency=currency,
            rule=rule,
            daily=team_spend.daily if team_spend is not None else None,
            by_value=team_spend.by_value if team_spend is not None else {},
            label=mover_label(team_spend.value_dimension if team_spend is not None else None),
            budgets=[d for d in fallen if routing is not None and route in routing.for_budget(d.status.budget)],
            anomalies=[a for a in anomalies if a.account_id in accounts],
            estimated=estimated,
            scope=route.team,
            scope_label=f"{team_label} {route.team}",
            account_names=spend.account_names,
        )
        out.append((digest, list(route.destinations())))
    return out


def run_daily_digest(
    day: date,
    spend: GuardSpend,
    statuses: Sequence[BudgetStatus],
    *,
    anomalies: AnomaliesOpened | None,
    rule: QuietRule,
    currency: str,
    default_channels: Sequence[str],
    outbox: Outbox,
    poster: Poster,
    now: datetime,
    render: Renderer,
    teams: Sequence[TeamRoute] = (),
    routing: Routing | None = None,
    team_label: str = "Team",
) -> DigestOutcome:
    """Build every destination's digest of `day` (the guard's last complete UTC cost day), post the
    ones that are not quiet (once per day and destination: stable message ids through the outbox),
    and log the quiet ones."""
    opened = anomalies.opened_on(day) if anomalies is not None else []
    outcome = DigestOutcome()
    for digest, destinations in compose_digests(
        day, spend, statuses, opened, rule=rule, currency=currency, default_channels=default_channels,
        teams=teams, routing=routing, team_label=team_label,
    ):  # fmt: skip
        outcome.digests.append(digest)
        if digest.quiet:
            log.info("daily digest quiet: nothing to report, nothing posted", extra=digest_facts(digest))
            continue
        suffix = message_suffix(digest.scope) if digest.scope is not None else None
        for channel, destination in destinations:
            outcome.messages.append(
                ChatMessage(message_id(day, channel, suffix), channel, KIND, render(digest, channel), destination)
            )
        log.info("daily digest posted", extra=digest_facts(digest))
    outcome.delivery = deliver_all(outcome.messages, outbox, poster, now)
    return outcome
