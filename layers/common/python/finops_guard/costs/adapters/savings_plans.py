"""Cost Explorer's Savings Plans coverage and utilisation: the commitment KPI, 2 billed requests.

GetSavingsPlansCoverage and GetSavingsPlansUtilization cost USD 0.01 each (like every Cost Explorer
request), so this runs in the weekly report, not daily, and every request (each coverage page
too) is counted in `requests`. Cost Explorer answers DataUnavailableException when it has nothing
to report (typically: no Savings Plans in the period); that reads as "no data", not as a failure.
IAM: ce:GetSavingsPlansCoverage, ce:GetSavingsPlansUtilization.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.core.periods import DateRange
from finops_guard.costs.adapters.cost_explorer import cost_explorer_client
from finops_guard.costs.savings import CommitmentKpi, commitment_kpi

NO_DATA = "DataUnavailableException"


class SavingsPlansSource:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self.requests = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = cost_explorer_client()
        return self._client

    def commitment(self, period: DateRange, currency: str = "USD") -> CommitmentKpi:
        """Coverage and utilisation over `period` (inclusive UTC days), MONTHLY granularity."""
        time_period = {"Start": period.first.isoformat(), "End": (period.last + timedelta(days=1)).isoformat()}
        coverage_pages: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TimePeriod": time_period,
            "Granularity": "MONTHLY",
            "Metrics": ["SpendCoveredBySavingsPlans"],
        }
        try:
            while True:
                self.requests += 1
                page = self.client.get_savings_plans_coverage(**request)
                coverage_pages.append(page)
                if not page.get("NextToken"):
                    break
                request = {**request, "NextToken": page["NextToken"]}
        except ClientError as error:
            if error.response["Error"]["Code"] != NO_DATA:
                raise
        utilization = None
        try:
            self.requests += 1
            utilization = self.client.get_savings_plans_utilization(TimePeriod=time_period, Granularity="MONTHLY")
        except ClientError as error:
            if error.response["Error"]["Code"] != NO_DATA:
                raise
        return commitment_kpi(period, coverage_pages, utilization, currency)
