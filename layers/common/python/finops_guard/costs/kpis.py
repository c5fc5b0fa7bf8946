"""The KPI arithmetic of the weekly report. Pure functions over Decimal money.

Glossary (seed): month-to-date spend; daily burn = MTD / elapsed calendar days; forecast month-end
= the one forecast every card shows (finops_guard.costs.outlook: the model of the last 56
days); budget consumption = forecast / budget; week-over-week = last 7 complete days vs the 7 before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from finops_guard.core.money import ZERO


def daily_burn(month_to_date: Decimal, elapsed_days: int) -> Decimal:
    """Average spend per elapsed calendar day of the month (currency units per day)."""
    if elapsed_days <= 0:
        raise ValueError("elapsed_days must be positive")
    return month_to_date / elapsed_days


def ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole, or None when whole is zero (a percentage change from nothing is undefined)."""
    return None if whole == 0 else part / whole


@dataclass(frozen=True)
class Change:
    current: Decimal
    previous: Decimal

    @property
    def delta(self) -> Decimal:
        return self.current - self.previous

    @property
    def relative(self) -> Decimal | None:
        return ratio(self.delta, self.previous)


@dataclass(frozen=True)
class Ranked:
    name: str
    month_to_date: Decimal
    week_over_week: Change


def top_with_other(
    items: Mapping[str, tuple[Decimal, Decimal, Decimal]], top_n: int, other_label: str = "Other"
) -> list[Ranked]:
    """Top `top_n` by month-to-date spend (ties by name), the rest summed as `other_label`.

    `items` maps name -> (month_to_date, this_week, previous_week). Names with no spend in any
    window are left out.
    """
    ranked = sorted(
        ((name, values) for name, values in items.items() if any(v != 0 for v in values)),
        key=lambda item: (-item[1][0], item[0]),
    )
    top = [Ranked(name, mtd, Change(week, prev)) for name, (mtd, week, prev) in ranked[:top_n]]
    rest = ranked[top_n:]
    if rest:
        top.append(
            Ranked(
                f"{other_label} ({len(rest)})",
                sum((v[0] for _, v in rest), ZERO),
                Change(sum((v[1] for _, v in rest), ZERO), sum((v[2] for _, v in rest), ZERO)),
            )
        )
    return top
