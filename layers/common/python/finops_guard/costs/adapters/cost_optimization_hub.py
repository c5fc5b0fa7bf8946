"""AWS Cost Optimization Hub: every current recommendation, all pages, each request counted.

ListRecommendations is free, but it is counted anyway (`requests`, one per page) so a change that
multiplied calls would show in tests and metrics. The account must be enrolled in Cost Optimization
Hub (an opt-in in the Billing and Cost Management console); until then the call is refused and the
refresh fails loudly. IAM: cost-optimization-hub:ListRecommendations.

The listing is all-or-nothing: a page that fails raises, and nothing is returned, because the
refresh closes whatever is missing from the listing as resolved upstream.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from botocore.config import Config

from finops_guard.costs.adapters.payer_account import cost_client
from finops_guard.costs.savings import Recommendation, from_hub

log = logging.getLogger(__name__)
PAGE_SIZE = 1000  # the model's maximum for maxResults
# ThrottlingException is retried by standard mode with back-off; a page is cheap to ask again.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


def cost_optimization_hub_client() -> Any:
    # Cost Optimization Hub has one endpoint, in us-east-1, whatever region the function runs in; the payer
    # account's recommendations when a payer role is configured (FINOPSGUARD_PAYER_ROLE_ARN).
    return cost_client("cost-optimization-hub", os.environ, region_name="us-east-1", config=_CLIENT_CONFIG)


class CostOptimizationHub:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self.requests = 0
        self.unreadable = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = cost_optimization_hub_client()
        return self._client

    def pages(self) -> list[dict[str, Any]]:
        """Every ListRecommendations page, following nextToken; raises if any page fails."""
        pages: list[dict[str, Any]] = []
        request: dict[str, Any] = {"maxResults": PAGE_SIZE}
        while True:
            self.requests += 1
            page = self.client.list_recommendations(**request)
            pages.append(page)
            token = page.get("nextToken")
            if not token:
                return pages
            request = {"maxResults": PAGE_SIZE, "nextToken": token}

    def list_all(self, now: datetime) -> list[Recommendation]:
        """The complete current listing as recommendations first seen `now`. An item without an id
        cannot be tracked: it is logged and counted (`unreadable`), the rest still count."""
        listed: dict[str, Recommendation] = {}
        for page in self.pages():
            for item in page.get("items", []):
                try:
                    rec = from_hub(item, now)
                except (ValueError, ArithmeticError) as error:
                    self.unreadable += 1
                    log.error("unreadable Cost Optimization Hub item skipped", extra={"error": str(error)})
                    continue
                listed[rec.rec_id] = rec
        return list(listed.values())
