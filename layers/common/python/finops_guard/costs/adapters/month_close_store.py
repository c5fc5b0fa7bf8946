"""Month-close state in the budget alerts table, and its archive in the chargeback bucket.

State: one item per (month, status) under the partition `#month-close` (a budget id can never start
with '#'), holding the report itself. Creating it is one conditional put, so a report is decided once
whatever runs concurrently; `announced` is set once every channel settled. Items expire after 400
days, as budget alerts do. The guard already keeps its alerts here; the chargeback may touch this
partition only (its IAM policy names the partition key).

Archive: the chargeback's export bucket (versioned); each put returns the version its link names.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter, written_by_us
from finops_guard.core.adapters.export_bucket import ExportBucket
from finops_guard.costs.month_close import STATUSES, MonthCloseReport
from finops_guard.costs.month_close_run import StoredReport

PARTITION = "#month-close"
KEEP = timedelta(days=400)


def _key(month: str, status: str) -> dict[str, dict[str, str]]:
    return {"budget_id": {"S": PARTITION}, "alert_key": {"S": f"{month}#{status}"}}


class MonthCloseTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def get(self, month: str) -> dict[str, StoredReport]:
        """The month's stored reports by status (consistent reads: a report created a moment ago counts)."""
        request = {self.table_name: {"Keys": [_key(month, s) for s in STATUSES], "ConsistentRead": True}}
        items: list[dict[str, Any]] = []
        while request:
            answer = self.client.batch_get_item(RequestItems=request)
            items += answer.get("Responses", {}).get(self.table_name, [])
            request = answer.get("UnprocessedKeys") or {}
        found = {}
        for item in items:
            status = item["alert_key"]["S"].rsplit("#", 1)[1]
            report = MonthCloseReport.from_document(json.loads(item["report"]["S"]))
            found[status] = StoredReport(report, item.get("announced", {}).get("BOOL", False))
        return found

    def create(self, report: MonthCloseReport, now: datetime) -> bool:
        """Store `report` unless its (month, status) is stored already: False then."""
        token = uuid.uuid4().hex  # our own write, recognised if its answer is lost and retried
        item = {
            **_key(report.month, report.status),
            "report": {"S": json.dumps(report.to_document(), separators=(",", ":"))},
            "announced": {"BOOL": False},
            "created_at": {"S": now.isoformat(timespec="seconds")},
            "expires_at": {"N": str(int((now + KEEP).timestamp()))},
            "token": {"S": token},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(alert_key)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return written_by_us(error, "token", token) is not None
        return True

    def mark_announced(self, month: str, status: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(month, status),
            UpdateExpression="SET announced = :true",
            ConditionExpression="attribute_exists(alert_key)",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )


class MonthCloseArchive(ExportBucket):
    """The chargeback bucket, for the month-close CSV and HTML page."""

    def put_text(self, key: str, text: str, content_type: str) -> str | None:
        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=content_type)
        return answer.get("VersionId")
