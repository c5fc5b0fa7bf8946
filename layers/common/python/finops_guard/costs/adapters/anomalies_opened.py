"""The anomalies first seen on one UTC day, for the daily digest (read-only).

The anomalies table is keyed by anomaly id only, and holds a few hundred items at most (one per
anomaly, kept 400 days): one filtered Scan a day reads it whole for well under a cent a month, where
an index on `first_seen` would cost storage and a second copy of every write.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from finops_guard.core.adapters.aws import AwsAdapter
from finops_guard.costs.daily_digest import OpenedAnomaly


class AnomaliesOpenedTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def opened_on(self, day: date) -> list[OpenedAnomaly]:
        """Anomalies whose first sighting (an ISO instant in UTC) falls on `day`, that alerted (below
        the minimum impact they are recorded silently, and stay out of the digest too)."""
        paginator = self.client.get_paginator("scan")
        found = []
        for page in paginator.paginate(
            TableName=self.table_name,
            FilterExpression="first_seen >= :first AND first_seen < :next AND attribute_exists(impact_alerted)",
            ExpressionAttributeValues={
                ":first": {"S": day.isoformat()},
                ":next": {"S": (day + timedelta(days=1)).isoformat()},
            },
            ProjectionExpression="anomaly_id, service, account_id, last_impact",
        ):
            for item in page.get("Items", ()):
                found.append(
                    OpenedAnomaly(
                        anomaly_id=item["anomaly_id"]["S"],
                        service=_known(item.get("service", {}).get("S")),
                        account_id=_known(item.get("account_id", {}).get("S")),
                        impact=Decimal(item.get("last_impact", {}).get("N", "0")),
                    )
                )
        return found


def _known(value: str | None) -> str | None:
    return None if value in (None, "", "unknown") else value
