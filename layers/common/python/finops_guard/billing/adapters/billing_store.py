"""Applying a Stripe event's effects exactly once, in one DynamoDB transaction.

The processed-event record (stripe-events, permanent) is written in the same TransactWriteItems as
the ledger entries, the object state, the alerts and the dunning steps: a duplicate delivery, even
concurrent, fails the event's condition and writes nothing; a failure part-way writes nothing.
An event older than the stored object state is recorded as `stale` and changes nothing else.
Settling a paid invoice (resolving its alerts, cancelling pending dunning) and the monthly
threshold check are idempotent and run after the commit, again on every redelivery. An invoice
that opened alerts or dunning carries `needs_settlement` on its object record (set in the same
transaction), so paying an invoice that never failed costs one read, not a round of updates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.billing.ledger_rules import AlertChange, DunningStep, Effects, LedgerEntry
from finops_guard.core.adapters.aws import AwsAdapter
from finops_guard.core.money import minor_units

TOTAL_PREFIX = "TOTAL#"
INVOICE_ALERT_KINDS = ("invoice_failed", "payment_action_required", "escalation")
CONFLICT_RETRIES = 4


@dataclass(frozen=True)
class BillingTables:
    events: str
    ledger: str
    objects: str
    alerts: str
    dunning: str
    invoice_requests: str | None = None  # the invoice bot's requests, confirmed by invoice.sent


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}


def _attr(value: Any) -> dict[str, Any]:
    """A plain JSON-like value as a DynamoDB attribute."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return _n(value)
    if isinstance(value, Mapping):
        return {"M": {str(k): _attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attr(v) for v in value]}
    return _s(str(value))


def total_key(month: str, currency: str) -> str:
    return f"{TOTAL_PREFIX}{month}#{currency}"


class BillingStore(AwsAdapter):
    service = "dynamodb"

    def __init__(self, tables: BillingTables, client: Any | None = None) -> None:
        super().__init__(client)
        self.tables = tables

    def apply(self, effects: Effects, now: datetime) -> str:
        """'applied' | 'duplicate' | 'stale'. Raises on anything Stripe should retry (a 5xx)."""
        for attempt in range(CONFLICT_RETRIES):
            planned = self._with_refund_delta(effects)
            if planned is None:
                return self._record_only(effects, now, "stale")
            items = self._items(planned, now)
            try:
                self.client.transact_write_items(TransactItems=items)
                return "applied"
            except ClientError as error:
                outcome = _cancellation(error, refund_item=1 if planned.refund_level else None)
                if outcome == "duplicate":
                    return "duplicate"
                if outcome == "stale":
                    return self._record_only(effects, now, "stale")
                if outcome == "conflict" and attempt + 1 < CONFLICT_RETRIES:
                    time.sleep(0.05 * 2**attempt)  # a concurrent delivery touching the same items
                    continue
                raise
        raise RuntimeError("unreachable")

    # --- building the transaction ----------------------------------------------------------------

    def _with_refund_delta(self, effects: Effects) -> Effects | None:
        """Refunds arrive as a cumulative `amount_refunded`: book the delta over the recorded level."""
        if effects.refund_level is None:
            return effects
        charge_id, level = effects.refund_level
        item = self.client.get_item(
            TableName=self.tables.objects, Key={"object_id": _s(charge_id)}, ConsistentRead=True
        ).get("Item", {})
        recorded = int(item.get("refunded_minor", {}).get("N", "0"))
        if level <= recorded:
            return None  # an older or repeated refund level: nothing new to book
        entries = [replace(e, amount_minor=-(level - recorded)) for e in effects.ledger]
        return replace(effects, ledger=entries, refund_recorded=recorded)

    def _items(self, effects: Effects, now: datetime) -> list[dict[str, Any]]:
        stamp = now.isoformat(timespec="seconds")
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.tables.events,
                    "Item": self._event_item(effects, now, "applied"),
                    "ConditionExpression": "attribute_not_exists(event_id)",
                }
            }
        ]
        if effects.state is not None:
            follow_ups = bool(effects.dunning) or any(alert.invoice_id for alert in effects.open_alerts)
            items.append(self._state_update(effects, stamp, follow_ups))
        if effects.refund_level is not None:
            items.append(self._refund_update(effects, stamp))
        totals: dict[tuple[str, str, str], int] = {}
        for entry in effects.ledger:
            items.append(self._ledger_put(entry, stamp))
            key = (entry.customer_id, entry.month, entry.currency)
            totals[key] = totals.get(key, 0) + entry.amount_minor
        for (customer, month, currency), amount in totals.items():
            items.append(
                {
                    "Update": {
                        "TableName": self.tables.ledger,
                        "Key": {"customer_id": _s(customer), "entry_key": _s(total_key(month, currency))},
                        "UpdateExpression": "ADD total_minor :amount SET currency = :currency, updated_at = :now",
                        "ExpressionAttributeValues": {
                            ":amount": _n(amount),
                            ":currency": _s(currency),
                            ":now": _s(stamp),
                        },
                    }
                }
            )
        items.extend(self._alert_upsert(alert, stamp) for alert in effects.open_alerts)
        items.extend(self._dunning_upsert(step, stamp) for step in effects.dunning)
        return items

    def _event_item(self, effects: Effects, now: datetime, outcome: str) -> dict[str, Any]:
        return {
            "event_id": _s(effects.event_id),
            "type": _s(effects.event_type),
            "outcome": _s(outcome),
            "received_at": _s(now.isoformat(timespec="seconds")),
        }

    def _state_update(self, effects: Effects, stamp: str, follow_ups: bool = False) -> dict[str, Any]:
        state = effects.state
        assert state is not None
        attributes = {**state.attributes, "needs_settlement": True} if follow_ups else state.attributes
        names = {f"#a{i}": key for i, key in enumerate(attributes)}
        values = {f":a{i}": _attr(value) for i, value in enumerate(attributes.values())}
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
        return {
            "Update": {
                "TableName": self.tables.objects,
                "Key": {"object_id": _s(state.object_id)},
                "UpdateExpression": f"SET {sets}, object_type = :type, #rank = :rank, event_created = :created,"
                " last_event_id = :event, updated_at = :now",
                # Never backwards: a lower rank loses; at the same rank the newer (or same-second) event wins.
                "ConditionExpression": "attribute_not_exists(object_id) OR #rank < :rank"
                " OR (#rank = :rank AND event_created <= :created)",
                "ExpressionAttributeNames": {**names, "#rank": "rank"},
                "ExpressionAttributeValues": {
                    **values,
                    ":type": _s(state.object_type),
                    ":rank": _n(state.rank),
                    ":created": _n(state.event_created),
                    ":event": _s(effects.event_id),
                    ":now": _s(stamp),
                },
            }
        }

    def _refund_update(self, effects: Effects, stamp: str) -> dict[str, Any]:
        assert effects.refund_level is not None
        charge_id, level = effects.refund_level
        recorded = effects.refund_recorded
        condition = "attribute_not_exists(refunded_minor)" if recorded == 0 else "refunded_minor = :recorded"
        values = {":level": _n(level), ":type": _s("charge"), ":now": _s(stamp)}
        if recorded:
            values[":recorded"] = _n(recorded)
        return {
            "Update": {
                "TableName": self.tables.objects,
                "Key": {"object_id": _s(charge_id)},
                "UpdateExpression": "SET refunded_minor = :level, object_type = :type, updated_at = :now",
                "ConditionExpression": condition,  # optimistic: another refund level booked meanwhile -> retry
                "ExpressionAttributeValues": values,
            }
        }

    def _ledger_put(self, entry: LedgerEntry, stamp: str) -> dict[str, Any]:
        item = {
            "customer_id": _s(entry.customer_id),
            "entry_key": _s(entry.entry_key),
            "month": _s(entry.month),
            "kind": _s(entry.kind),
            "amount_minor": _n(entry.amount_minor),
            "currency": _s(entry.currency),
            "source_id": _s(entry.source_id),
            "event_id": _s(entry.event_id),
            "occurred_at": _s(entry.occurred_at),
            "recorded_at": _s(stamp),
        }
        if entry.invoice_id:
            item["invoice_id"] = _s(entry.invoice_id)
        return {
            "Put": {
                "TableName": self.tables.ledger,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(entry_key)",
            }
        }

    def _alert_upsert(self, alert: AlertChange, stamp: str) -> dict[str, Any]:
        values = {
            ":kind": _s(alert.kind),
            ":open": _s("open"),
            ":customer": _attr(alert.customer_id),
            ":invoice": _attr(alert.invoice_id),
            ":amount": _attr(alert.amount_minor),
            ":currency": _attr(alert.currency),
            ":detail": _attr(alert.detail),
            ":now": _s(stamp),
        }
        named = ""
        if alert.customer_name:  # an event without the name keeps the one an earlier event stored
            named, values[":name"] = ", customer_name = :name", _s(alert.customer_name)
        return {
            "Update": {
                "TableName": self.tables.alerts,
                "Key": {"alert_id": _s(alert.alert_id)},
                "UpdateExpression": "SET kind = :kind, #status = :open, customer_id = :customer,"
                " invoice_id = :invoice, amount_minor = :amount, currency = :currency, detail = :detail,"
                f" opened_at = if_not_exists(opened_at, :now), updated_at = :now{named}",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def _dunning_upsert(self, step: DunningStep, stamp: str) -> dict[str, Any]:
        # A repeated failure keeps the schedule of the first one (if_not_exists), never resets it.
        return {
            "Update": {
                "TableName": self.tables.dunning,
                "Key": {"invoice_id": _s(step.invoice_id), "step": _s(step.step)},
                "UpdateExpression": "SET #status = if_not_exists(#status, :pending),"
                " due_at = if_not_exists(due_at, :due), channel = :channel, #day = :day, updated_at = :now",
                "ExpressionAttributeNames": {"#status": "status", "#day": "day"},
                "ExpressionAttributeValues": {
                    ":pending": _s("pending"),
                    ":due": _s(step.due_at),
                    ":channel": _s(step.channel),
                    ":day": _n(step.day),
                    ":now": _s(stamp),
                },
            }
        }

    def _record_only(self, effects: Effects, now: datetime, outcome: str) -> str:
        try:
            self.client.put_item(
                TableName=self.tables.events,
                Item=self._event_item(effects, now, outcome),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return "duplicate"
            raise
        return outcome

    # --- after the commit: idempotent, re-run on every delivery ------------------------------------

    def settle_invoice(self, invoice_id: str, now: datetime) -> tuple[int, int]:
        """A paid invoice: resolve its open alerts and cancel its pending dunning steps. The flag is
        cleared last, so a crash part-way is finished by Stripe's redelivery."""
        key = {"object_id": _s(invoice_id)}
        flagged = self.client.get_item(
            TableName=self.tables.objects, Key=key, ProjectionExpression="needs_settlement", ConsistentRead=True
        ).get("Item", {})
        if not flagged.get("needs_settlement", {}).get("BOOL"):
            return 0, 0
        stamp = _s(now.isoformat(timespec="seconds"))
        resolved = 0
        for kind in INVOICE_ALERT_KINDS:
            if self._conditional_update(
                self.tables.alerts,
                {"alert_id": _s(f"{kind}#{invoice_id}")},
                "SET #status = :resolved, resolved_at = :now",
                "#status IN (:open, :retrying)",  # a finance retry may hold the alert right now
                {":resolved": _s("resolved"), ":open": _s("open"), ":retrying": _s("retrying"), ":now": stamp},
            ):
                resolved += 1
        cancelled = 0
        steps = self.client.query(
            TableName=self.tables.dunning,
            KeyConditionExpression="invoice_id = :invoice",
            ExpressionAttributeValues={":invoice": _s(invoice_id)},
            ConsistentRead=True,
        ).get("Items", [])
        for step in steps:
            if self._conditional_update(
                self.tables.dunning,
                {"invoice_id": _s(invoice_id), "step": step["step"]},
                "SET #status = :cancelled, cancelled_at = :now",
                "#status = :pending",
                {":cancelled": _s("cancelled"), ":pending": _s("pending"), ":now": stamp},
            ):
                cancelled += 1
        self.client.update_item(TableName=self.tables.objects, Key=key, UpdateExpression="REMOVE needs_settlement")
        return resolved, cancelled

    def raise_threshold_alerts(self, effects: Effects, thresholds: Mapping[str, Decimal], now: datetime) -> list[str]:
        """Once per (customer, month, currency): the month's ledger total crossed the configured amount."""
        raised = []
        for customer, month, currency in {(e.customer_id, e.month, e.currency) for e in effects.ledger}:
            limit = thresholds.get(currency)
            if limit is None:
                continue
            item = self.client.get_item(
                TableName=self.tables.ledger,
                Key={"customer_id": _s(customer), "entry_key": _s(total_key(month, currency))},
                ConsistentRead=True,
            ).get("Item")
            total = int(item["total_minor"]["N"]) if item else 0
            limit_minor = int((limit * 10 ** minor_units(currency)).to_integral_value())
            if total < limit_minor:
                continue
            alert_id = f"threshold_exceeded#{customer}#{month}#{currency}"
            try:
                self.client.put_item(
                    TableName=self.tables.alerts,
                    Item={
                        "alert_id": _s(alert_id),
                        "kind": _s("threshold_exceeded"),
                        "status": _s("open"),
                        "customer_id": _s(customer),
                        "amount_minor": _n(total),
                        "currency": _s(currency),
                        "detail": _attr({"month": month, "threshold_minor": limit_minor}),
                        "opened_at": _s(now.isoformat(timespec="seconds")),
                        **({"customer_name": _s(effects.customer_name)} if effects.customer_name else {}),
                    },
                    ConditionExpression="attribute_not_exists(alert_id)",
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue
            raised.append(alert_id)
        return raised

    def confirm_invoice_request(self, request_id: str, event_id: str, event_created: int, now: datetime) -> int | None:
        """The request-to-delivery latency in seconds, once per bot invoice (None on redelivery)."""
        if not self.tables.invoice_requests:
            return None
        from finops_guard.billing.adapters.invoice_requests import InvoiceRequestTable

        requests = InvoiceRequestTable(self.tables.invoice_requests, client=self.client)
        return requests.confirm(request_id, event_id=event_id, event_created=event_created, now=now)

    def _conditional_update(
        self, table: str, key: dict[str, Any], update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        try:
            self.client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- reading (CLI, demo, summary) --------------------------------------------------------------

    def ledger_for_month(self, month: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.tables.ledger,
            IndexName="by-month",
            KeyConditionExpression="#month = :month",
            ExpressionAttributeNames={"#month": "month"},
            ExpressionAttributeValues={":month": _s(month)},
        ):
            entries.extend(page.get("Items", []))
        return entries

    def open_alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.tables.alerts,
            IndexName="by-status",
            KeyConditionExpression="#status = :open",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":open": _s("open")},
        ):
            alerts.extend(page.get("Items", []))
        return alerts


def _cancellation(error: ClientError, refund_item: int | None = None) -> str:
    """What a failed TransactWriteItems means for this event. The event record is item 0; a refund's
    level check failing means another refund was booked meanwhile: read again and retry."""
    code = error.response["Error"]["Code"]
    if code == "TransactionConflictException":
        return "conflict"
    if code != "TransactionCanceledException":
        return "error"
    reasons = [r.get("Code") or "None" for r in error.response.get("CancellationReasons", [])]
    if reasons and reasons[0] == "ConditionalCheckFailed":
        return "duplicate"
    if "TransactionConflict" in reasons:
        return "conflict"
    if refund_item is not None and len(reasons) > refund_item and reasons[refund_item] == "ConditionalCheckFailed":
        return "conflict"
    if "ConditionalCheckFailed" in reasons:
        # The object state (or refund level) is newer, or a ledger entry exists: nothing to change.
        return "stale"
    return "error"
