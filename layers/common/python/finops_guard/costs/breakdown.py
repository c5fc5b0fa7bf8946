"""The weekly card's second breakdown, and the weekly report's one daily request that carries it.

Cost Explorer allows two GroupBy keys per request. The first is always SERVICE; the second is the
breakdown (`breakdown` context): LINKED_ACCOUNT, REGION, USAGE_TYPE or INSTANCE_TYPE. The request
count does not change with the choice.

Default (no `breakdown` in context): LINKED_ACCOUNT when the deployment reads an organisation's
costs (the management account's Cost Explorer sees every member), REGION for a single account,
where a "top accounts" list would be a list of one. Which one it is, is asked once per container
(`adapters/account_view.py`) with the credentials Cost Explorer is called with, so a deployment
reading the payer's costs through a role counts as an organisation.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.record_types import usage_only


class Breakdown(StrEnum):
    LINKED_ACCOUNT = "LINKED_ACCOUNT"
    REGION = "REGION"
    USAGE_TYPE = "USAGE_TYPE"
    INSTANCE_TYPE = "INSTANCE_TYPE"

    @property
    def heading(self) -> str:
        """The card section's title: `Top linked accounts`, `Top regions`, ..."""
        return _HEADINGS[self]

    @property
    def noun(self) -> str:
        """One value's kind, singular: `linked account`, `region`, ..."""
        return _NOUNS[self]

    def group_by(self) -> dict[str, str]:
        return {"Type": "DIMENSION", "Key": self.value}


_HEADINGS = {
    Breakdown.LINKED_ACCOUNT: "Top linked accounts",
    Breakdown.REGION: "Top regions",
    Breakdown.USAGE_TYPE: "Top usage types",
    Breakdown.INSTANCE_TYPE: "Top instance types",
}
_NOUNS = {
    Breakdown.LINKED_ACCOUNT: "linked account",
    Breakdown.REGION: "region",
    Breakdown.USAGE_TYPE: "usage type",
    Breakdown.INSTANCE_TYPE: "instance type",
}
BREAKDOWN_NAMES = tuple(b.value for b in Breakdown)
SERVICE = {"Type": "DIMENSION", "Key": "SERVICE"}


def parse_breakdown(text: str) -> Breakdown:
    """`REGION` (any case). Raises ValueError naming the choices."""
    wanted = text.strip().upper()
    if wanted in BREAKDOWN_NAMES:
        return Breakdown(wanted)
    raise ValueError(f"{text!r} is not a breakdown; use one of {', '.join(BREAKDOWN_NAMES)}")


def default_breakdown(organisation: bool | None) -> Breakdown:
    """LINKED_ACCOUNT for an organisation, REGION for a single account; when it could not be told
    (None: the check was refused), LINKED_ACCOUNT, the breakdown every version before this one showed."""
    return Breakdown.REGION if organisation is False else Breakdown.LINKED_ACCOUNT


def main_request(start: date, end: date, metric: CostMetric, breakdown: Breakdown) -> dict[str, Any]:
    """The weekly report's request: DAILY `metric` of usage (no credits, refunds or tax) over
    [start, end) (end exclusive), grouped by SERVICE and the breakdown."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric.value],
        "GroupBy": [dict(SERVICE), breakdown.group_by()],
        "Filter": usage_only(),
    }
