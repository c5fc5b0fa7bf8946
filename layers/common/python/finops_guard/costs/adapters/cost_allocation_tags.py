"""Cost allocation tags' activation status (ce:ListCostAllocationTags, USD 0.01 per request).

Asked only when a `tag:` attribution dimension attributes nothing this month, for those keys only
(one request: at most three keys, well under a page).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)
MAX_PAGES = 5  # three keys fit one page; stop rather than pay for a paging loop


class CostAllocationTags:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests = 0

    def statuses(self, keys: Sequence[str]) -> dict[str, str] | None:
        """Key -> "Active" / "Inactive" for the keys Billing knows (one it has never seen on a resource
        is absent); None when the status cannot be read (e.g. a member account of an organisation:
        only the management account sees cost allocation tags). Never raises: the card is the job."""
        found: dict[str, str] = {}
        request: dict[str, Any] = {"TagKeys": list(keys)}
        try:
            for _ in range(MAX_PAGES):
                self.requests += 1
                page = self._client.list_cost_allocation_tags(**request)
                for tag in page.get("CostAllocationTags", ()):
                    if tag.get("TagKey") in keys and found.get(tag["TagKey"]) != "Active":
                        found[tag["TagKey"]] = tag.get("Status", "")
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
        except (BotoCoreError, ClientError) as error:
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
            log.warning("cost allocation tags could not be read; card says so", extra={"error": code})
            return None
        return found
