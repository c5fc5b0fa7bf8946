"""The dunning table as the sender sees it: due steps, and each step's one-way state changes.

pending -> sending (claimed by one run) -> sent | failed;  pending -> skipped | failed.
Every change is a conditional update on the current status, so a step is sent at most once even
when two runs overlap; a run that crashes between claim and send leaves the step in `sending`
(never re-sent automatically: at most once) for `finops-guard` / the alarm to surface.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.billing.dunning import DueStep
from finops_guard.core.adapters.aws import AwsAdapter, written_by_us


def _iso(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class DunningTable(AwsAdapter):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.table_name = table_name

    def due_steps(self, now: datetime) -> Iterator[DueStep]:
        """Pending steps due at or before `now`, oldest first (the by-due index: status, due_at)."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName="by-due",
            KeyConditionExpression="#status = :pending AND due_at <= :now",
            ExpressionAttributeNames={"#status": "status", "#day": "day"},
            ExpressionAttributeValues={":pending": {"S": "pending"}, ":now": {"S": _iso(now)}},
            ProjectionExpression="invoice_id, step, channel, #day, due_at",
        ):
            for item in page.get("Items", []):
                yield DueStep(
                    invoice_id=item["invoice_id"]["S"],
                    step=item["step"]["S"],
                    day=int(item.get("day", {}).get("N", "0")),
                    channel=item.get("channel", {}).get("S", ""),
                    due_at=item.get("due_at", {}).get("S", ""),
                )

    def stuck_steps(self, claimed_before: datetime) -> list[str]:
        """Steps claimed (`sending`) before `claimed_before` and never marked sent or failed: the run
        that claimed them died between claim and send, so nobody knows whether the customer got it."""
        stuck: list[str] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName="by-due",
            KeyConditionExpression="#status = :sending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":sending": {"S": "sending"}},
        ):
            for item in page.get("Items", []):
                claimed = item.get("claimed_at", {}).get("S", "")
                if claimed and claimed < _iso(claimed_before):
                    stuck.append(f"{item['invoice_id']['S']}/{item['step']['S']}")
        return sorted(stuck)

    def claim(self, step: DueStep, now: datetime) -> bool:
        """pending -> sending; False when another run got there first (or the step was cancelled).
        A fresh token tells our own applied-but-unanswered claim (botocore retried it) from theirs."""
        return self._move(step, "pending", "sending", now, {"claimed_at": _iso(now), "claim_token": uuid.uuid4().hex})

    def mark_sent(self, step: DueStep, now: datetime, message_id: str, to_hint: str) -> bool:
        return self._move(step, "sending", "sent", now, {"sent_at": _iso(now), "message_id": message_id,
                                                          "sent_to": to_hint})  # fmt: skip

    def mark_send_failed(self, step: DueStep, now: datetime, reason: str) -> bool:
        return self._move(step, "sending", "failed", now, {"failed_at": _iso(now), "reason": reason})

    def skip(self, step: DueStep, now: datetime, reason: str) -> bool:
        return self._move(step, "pending", "skipped", now, {"skipped_at": _iso(now), "reason": reason})

    def fail(self, step: DueStep, now: datetime, reason: str) -> bool:
        return self._move(step, "pending", "failed", now, {"failed_at": _iso(now), "reason": reason})

    def _move(self, step: DueStep, from_status: str, to_status: str, now: datetime, attrs: dict[str, str]) -> bool:
        names = {"#status": "status", **{f"#a{i}": key for i, key in enumerate(attrs)}}
        values = {":from": {"S": from_status}, ":to": {"S": to_status}, ":now": {"S": _iso(now)}}
        values.update({f":a{i}": {"S": value} for i, value in enumerate(attrs.values())})
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(attrs)))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"invoice_id": {"S": step.invoice_id}, "step": {"S": step.step}},
                UpdateExpression=f"SET #status = :to, updated_at = :now, {sets}",
                ConditionExpression="#status = :from",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                # Our own claim, applied though its answer was lost: the step is already ours.
                return written_by_us(error, "claim_token", attrs.get("claim_token")) is not None
            raise
        return True


class DunningChannels:
    """E-mail through Amazon SES (v2 API), SMS through Amazon SNS. Returns the provider's message id."""

    def __init__(self, sender_email: str | None, ses: Any | None = None, sns: Any | None = None) -> None:
        self.sender_email = sender_email
        self._ses = ses
        self._sns = sns

    def send(self, channel: str, to: str, subject: str | None, body: str) -> str:
        import boto3

        if channel == "email":
            if self._ses is None:
                self._ses = boto3.client("sesv2")
            reply = self._ses.send_email(
                FromEmailAddress=self.sender_email,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": subject or ""}, "Body": {"Text": {"Data": body}}}},
            )
            return str(reply["MessageId"])
        if self._sns is None:
            self._sns = boto3.client("sns")
        reply = self._sns.publish(
            PhoneNumber=to,
            Message=body,
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
        )
        return str(reply["MessageId"])
