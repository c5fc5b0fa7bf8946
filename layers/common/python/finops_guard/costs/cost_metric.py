"""The cost metric every Cost Explorer request asks for, and how its amounts are read.

Cost Explorer reports the same spend four ways (`costMetric`, one per deployment):

- `UnblendedCost` (default): what each charge cost on the day it was charged. A Savings Plan or
  reserved instance bought upfront is one spike on the purchase day, and a commitment's monthly
  fee one spike on the 1st.
- `AmortizedCost`: upfront and recurring commitment fees spread over the days the commitment
  covers, as the effective cost of the usage it covered. What the FinOps Framework recommends for
  showback and chargeback.
- `NetUnblendedCost` / `NetAmortizedCost`: the same after discounts (Enterprise Discount Program,
  private pricing, bundled discounts).

Every report, budget, forecast, attribution, chargeback and ROI of a deployment uses one metric,
and every card and CSV names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from finops_guard.core.money import parse_amount


class CostMetric(StrEnum):
    UNBLENDED = "UnblendedCost"
    AMORTIZED = "AmortizedCost"
    NET_AMORTIZED = "NetAmortizedCost"
    NET_UNBLENDED = "NetUnblendedCost"

    @property
    def label(self) -> str:
        """`unblended`, `amortized`, `net amortized`, `net unblended`: how cards and CSVs name it."""
        return _LABELS[self]

    @property
    def amortized(self) -> bool:
        return self in (CostMetric.AMORTIZED, CostMetric.NET_AMORTIZED)

    @property
    def net_of_discounts(self) -> bool:
        return self in (CostMetric.NET_AMORTIZED, CostMetric.NET_UNBLENDED)


_LABELS = {
    CostMetric.UNBLENDED: "unblended",
    CostMetric.AMORTIZED: "amortized",
    CostMetric.NET_AMORTIZED: "net amortized",
    CostMetric.NET_UNBLENDED: "net unblended",
}
DEFAULT_METRIC = CostMetric.UNBLENDED
METRIC_NAMES = tuple(m.value for m in CostMetric)


def parse_metric(text: str) -> CostMetric:
    """`AmortizedCost` (Cost Explorer's spelling, any case). Raises ValueError naming the choices."""
    wanted = text.strip().lower()
    for metric in CostMetric:
        if metric.value.lower() == wanted:
            return metric
    raise ValueError(f"{text!r} is not a cost metric; use one of {', '.join(METRIC_NAMES)}")


def metric_amount(metrics: Mapping[str, Any], metric: CostMetric) -> tuple[Decimal, str]:
    """(amount, unit) of `metric` in a group's or total's `Metrics` map. A map without the metric is
    Cost Explorer answering another request than the one sent: refused, never read as zero."""
    try:
        value = metrics[metric.value]
    except KeyError:
        present = ", ".join(metrics) or "none"
        raise KeyError(f"Cost Explorer's answer has no {metric.value} (it has {present})") from None
    return parse_amount(value["Amount"]), value.get("Unit") or "USD"
