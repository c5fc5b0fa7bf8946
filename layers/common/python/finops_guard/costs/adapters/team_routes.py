"""The team routes table: team value -> its webhook secret names (and the accounts it owns).

Item: pk = "ROUTE", sk = team, document = the route's JSON. One Query lists every route (no Scan);
the table holds one item per team, written only by `finops-guard teams add|remove`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from finops_guard.core.adapters.aws import AwsAdapter
from finops_guard.costs.teams import TeamConfigError, TeamRoute, parse_route

PARTITION = "ROUTE"


class TeamRoutesTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def all(self) -> list[TeamRoute]:
        """Every stored route, by team. A route that no longer validates (edited by hand) is skipped
        and logged by the caller's choice: `load` returns the errors too."""
        return self.load()[0]

    def load(self) -> tuple[list[TeamRoute], list[TeamConfigError]]:
        routes, errors = [], []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": PARTITION}},
        ):
            for item in page.get("Items", []):
                try:
                    routes.append(parse_route(json.loads(item["document"]["S"])))
                except (TeamConfigError, ValueError, KeyError) as error:
                    errors.append(TeamConfigError(f"stored route {item['sk']['S']!r}: {error}"))
        return sorted(routes, key=lambda r: r.team), errors

    def get(self, team: str) -> TeamRoute | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": PARTITION}, "sk": {"S": team}}, ConsistentRead=True
        ).get("Item")
        return parse_route(json.loads(item["document"]["S"])) if item else None

    def put(self, route: TeamRoute, now: datetime) -> None:
        """Add or replace a team's route (the latest `teams add` wins; routes are configuration)."""
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": PARTITION},
                "sk": {"S": route.team},
                "document": {"S": json.dumps(route.to_document(), sort_keys=True, ensure_ascii=False)},
                "updated_at": {"S": now.isoformat(timespec="seconds")},
            },
        )

    def remove(self, team: str) -> bool:
        """Delete a route; False when there was none."""
        answer = self.client.delete_item(
            TableName=self.table_name, Key={"pk": {"S": PARTITION}, "sk": {"S": team}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in answer
