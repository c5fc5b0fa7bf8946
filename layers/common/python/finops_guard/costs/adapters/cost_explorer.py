"""Cost Explorer GetCostAndUsage, following NextPageToken. Each call costs USD 0.01, so count them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from botocore.config import Config

from finops_guard.costs.adapters.payer_account import cost_client

# LimitExceededException is Cost Explorer's throttle; standard mode retries it with backoff.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


def cost_explorer_client() -> Any:
    # Cost Explorer has a single endpoint in us-east-1 whatever region the function runs in. With a payer
    # role configured (FINOPSGUARD_PAYER_ROLE_ARN), the client reads the payer account's costs through it.
    return cost_client("ce", os.environ, region_name="us-east-1", config=_CLIENT_CONFIG)


class CostExplorerSource:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self.requests = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = cost_explorer_client()
        return self._client

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Any GetCostAndUsage request, every page (one billed request per page)."""
        request = dict(request)
        while True:
            self.requests += 1
            page = self.client.get_cost_and_usage(**request)
            yield page
            token = page.get("NextPageToken")
            if not token:
                return
            request["NextPageToken"] = token
