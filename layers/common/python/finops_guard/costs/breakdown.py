"""The weekly card's second breakdown, and the weekly report's one daily request that carries it.

Cost Explorer allows two GroupBy keys per request. The second is the breakdown (`breakdown`
context): LINKED_ACCOUNT, REGION, USAGE_TYPE or INSTANCE_TYPE; the request count does not change
with the choice. The first is what no other request of the report answers:
- with attribution dimensions (the default), RECORD_TYPE, unfiltered: the day's usage per
  breakdown value and the day's credits, refunds and tax, in the request the report made anyway.
  Top services come from the first attribution request, grouped by [dimension, SERVICE];
- without them, SERVICE, usage only; credits, refunds and tax then cost one more request
  (record_types.charges_request).

Default (no `breakdown` in context): LINKED_ACCOUNT when the deployment reads an organisation's
costs (the management account's Cost Explorer sees every member), REGION for a single account,
where a "top accounts" list would be a list of one. A deployment reading the payer's costs through
its role (FINOPSGUARD_PAYER_ROLE_ARN) reads the organisation's management account: an organisation,
without asking. Otherwise it is asked once per container (`adapters/account_view.py`), with the
function's own credentials, which are the ones Cost Explorer is called with.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.record_types import RECORD_TYPE, usage_only


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


def main_request(
    start: date, end: date, metric: CostMetric, breakdown: Breakdown, *, by_record_type: bool = False
) -> dict[str, Any]:
    """The weekly report's request: DAILY `metric` over [start, end) (end exclusive), grouped by
    SERVICE (usage only) and the breakdown, or, `by_record_type`, by RECORD_TYPE (everything, so
    credits, refunds and tax come apart from usage) and the breakdown."""
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric.value],
        "GroupBy": [dict(RECORD_TYPE if by_record_type else SERVICE), breakdown.group_by()],
    }
    if not by_record_type:
        request["Filter"] = usage_only()
    return request
