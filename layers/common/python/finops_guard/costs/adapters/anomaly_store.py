"""Anomaly state in DynamoDB (pk anomaly_id): first/last seen, sightings, impact history, and the
impact last alerted. Alerting is one conditional update, so concurrent sightings alert once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import AwsAdapter, written_by_us
from finops_guard.costs.anomalies import AlertPolicy, Anomaly, Sighting

KEEP = timedelta(days=400)
RESEND_AFTER = timedelta(minutes=5)  # an undelivered alert younger than this may still be in flight


class AnomalyTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def record(self, anomaly: Anomaly, policy: AlertPolicy, now: datetime) -> Sighting:
        sighting_set = (
            "last_seen = :now, first_seen = if_not_exists(first_seen, :now), last_impact = :impact,"
            " sightings = if_not_exists(sightings, :zero) + :one, expires_at = :expires,"
            " impact_history = list_append(if_not_exists(impact_history, :empty), :entry),"
            " service = :service, account_id = :account"
        )
        values: dict[str, Any] = {
            ":now": {"S": now.isoformat(timespec="seconds")},
            ":impact": {"N": str(anomaly.total_impact)},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":expires": {"N": str(int((now + KEEP).timestamp()))},
            ":empty": {"L": []},
            ":entry": {
                "L": [
                    {
                        "M": {
                            "at": {"S": anomaly.published_at.isoformat(timespec="seconds")},
                            "impact": {"N": str(anomaly.total_impact)},
                            "source": {"S": anomaly.source},
                        }
                    }
                ]
            },
            ":service": {"S": anomaly.service or "unknown"},
            ":account": {"S": anomaly.account_id or "unknown"},
        }
        key = {"anomaly_id": {"S": anomaly.anomaly_id}}
        if policy.alertable(anomaly):
            # A fresh token: if DynamoDB applied this alert but the answer was lost, botocore's retry
            # fails the condition against our own write, and the token says it was ours.
            token = uuid.uuid4().hex
            try:
                new = self.client.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression=f"SET {sighting_set}, impact_alerted = :impact, realert_at = :next,"
                    " #status = :alerted, delivered = :false, alerted_at = :now, alert_token = :token,"
                    " alerts = if_not_exists(alerts, :zero) + :one",
                    ConditionExpression="attribute_not_exists(impact_alerted) OR realert_at <= :impact",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        **values,
                        ":next": {"N": str(policy.next_alert_at(anomaly.total_impact))},
                        ":alerted": {"S": "alerted"},
                        ":false": {"BOOL": False},
                        ":token": {"S": token},
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ).get("Attributes", {})
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                current = written_by_us(error, "alert_token", token)
                if current is not None:
                    outcome = "new" if current.get("alerts", {}).get("N") == "1" else "updated"
                    return Sighting(anomaly, outcome, anomaly.total_impact)
            else:
                outcome = "new" if new.get("alerts", {}).get("N") == "1" else "updated"
                return Sighting(anomaly, outcome, anomaly.total_impact)
        item = self.client.update_item(
            TableName=self.table_name,
            Key=key,
            UpdateExpression=f"SET {sighting_set}, #status = if_not_exists(#status, :below)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={**values, ":below": {"S": "below-threshold"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if "impact_alerted" not in item:
            return Sighting(anomaly, "below-threshold")
        alerted_at = datetime.fromisoformat(item["alerted_at"]["S"])
        if not item.get("delivered", {}).get("BOOL", True) and now - alerted_at >= RESEND_AFTER:
            return Sighting(anomaly, "undelivered", Decimal(item["impact_alerted"]["N"]))
        return Sighting(anomaly, "silent")

    def mark_delivered(self, anomaly_id: str, impact: Decimal) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"anomaly_id": {"S": anomaly_id}},
                UpdateExpression="SET delivered = :true",
                ConditionExpression="impact_alerted = :impact",
                ExpressionAttributeValues={":true": {"BOOL": True}, ":impact": {"N": str(impact)}},
            )
        except ClientError as error:
            # A bigger alert for the same anomaly was recorded meanwhile; it tracks its own delivery.
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
