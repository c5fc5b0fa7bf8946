"""Counting AWS requests: a botocore hook on every client converts each request the handlers make to
billable units (price key -> quantity), plus the units read from what a function prints (custom
metrics in Embedded Metric Format, log bytes, SMS parts)."""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from devtools.selfcost.dynamodb import ItemWrite, MotoTables, item_size, read_units, write_request_units
from devtools.selfcost.prices import GIB, HOURS_PER_BILLING_MONTH
from devtools.selfcost.template import TopicFacts

LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs meters each event's UTF-8 message + 26 bytes
_DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_parts(text: str) -> int:
    """Message parts of an SMS: GSM-7 160 characters (153 per part when split, extended characters
    count twice), otherwise UCS-2 70 (67 per part)."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        length = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        return 1 if length <= 160 else math.ceil(length / 153)
    length = len(text.encode("utf-16-be")) // 2
    return 1 if length <= 70 else math.ceil(length / 67)


def log_ingest_bytes(lines: Iterable[str]) -> int:
    return sum(len(line.encode()) + LOG_EVENT_OVERHEAD_BYTES for line in lines)


def metric_months(hours_by_metric: Mapping[Any, Iterable[int]]) -> Decimal:
    """Custom metrics are prorated by the hour: each metric costs the hours it was sent in / 730."""
    return sum((Decimal(len(set(hours))) for hours in hours_by_metric.values()), Decimal(0)) / HOURS_PER_BILLING_MONTH


# --- custom metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricId:
    """A custom metric as CloudWatch bills it (namespace, name, dimensions), and the function that sent
    it (for the breakdown). Powertools adds the `service` dimension (the function), so a function's
    metrics are its own; a metric without it (the stage's ChatDeliveryFailures) is one metric however
    many functions send it."""

    function: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    namespace: str = "FinOpsGuard"

    @property
    def billed(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.namespace, self.name, self.dimensions)

    @property
    def shared(self) -> bool:
        """Not the function's own metric: no `service` dimension."""
        return all(name != "service" for name, _ in self.dimensions)


def emf_metrics(lines: Iterable[str], function: str) -> set[MetricId]:
    """Distinct custom metrics in Embedded Metric Format lines (the `service` dimension is the function)."""
    found: set[MetricId] = set()
    for line in lines:
        if '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            namespace = str(directive.get("Namespace", "FinOpsGuard"))
            for dimension_set in directive.get("Dimensions", [[]]):
                dims = tuple(sorted((d, function if d == "service" else str(record.get(d))) for d in dimension_set))
                for metric in directive.get("Metrics", []):
                    found.add(MetricId(function, str(metric["Name"]), dims, namespace))
    return found


def metric_hours(records: Iterable[tuple[Iterable[MetricId], Iterable[int]]]) -> dict[Any, set[int]]:
    """The hours of the month each billed metric was sent in, from (metrics, hours) of invocations."""
    hours: dict[Any, set[int]] = defaultdict(set)
    for metrics, seen in records:
        seen = list(seen)
        for metric in metrics:
            hours[metric.billed].update(seen)
    return hours


# --- requests to units ----------------------------------------------------------------------------------


def _chunks(size_bytes: int, chunk: int = 64 * 1024) -> int:
    return max(1, math.ceil(size_bytes / chunk))


def request_units(
    service: str, operation: str, params: Mapping[str, Any], topics: Mapping[str, TopicFacts]
) -> dict[str, Decimal]:
    """Billable units of one request to a service other than DynamoDB (price key -> quantity)."""
    units: defaultdict[str, Decimal] = defaultdict(Decimal)
    if service == "ce":
        units["ce.request"] += 1
    elif service == "secretsmanager":
        units["secretsmanager.api_call"] += 1
    elif service == "sns" and operation in ("Publish", "PublishBatch"):
        entries = params.get("PublishBatchRequestEntries") or [params]
        for entry in entries:
            message = str(entry.get("Message", ""))
            if params.get("PhoneNumber"):
                parts = sms_parts(message)
                units["sns.sms_us"] += parts
                units["sns.sms_us_carrier"] += parts
                continue
            chunks = _chunks(len(message.encode()))
            units["sns.publish"] += chunks
            topic = topics.get(str(params.get("TopicArn") or params.get("TargetArn") or "").rsplit(":", 1)[-1])
            if topic is not None:
                units["sns.email"] += chunks * (
                    topic.subscriptions.get("email", 0) + topic.subscriptions.get("email-json", 0)
                )
                units["sns.https"] += chunks * (
                    topic.subscriptions.get("https", 0) + topic.subscriptions.get("http", 0)
                )
                if topic.encrypted:
                    units["kms.request"] += 1  # SNS asks KMS for a data key (an upper bound: SNS may reuse one)
    elif service in ("sesv2", "ses") and operation in ("SendEmail", "SendRawEmail", "SendBulkEmail"):
        destination = params.get("Destination") or {}
        recipients = sum(len(destination.get(k, [])) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
        units["ses.email"] += max(1, recipients or len(params.get("Destinations", [])))
    elif service == "events" and operation == "PutEvents":
        units["events.custom"] += sum(_chunks(len(json.dumps(e).encode())) for e in params.get("Entries", []))
    elif service == "s3":
        if operation in ("GetObject", "HeadObject"):
            units["s3.get"] += 1
        elif operation in ("PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2",
                           "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):  # fmt: skip
            units["s3.put"] += 1
            body = params.get("Body")
            if body is not None:
                size = len(body) if isinstance(body, bytes | str) else 0
                units["s3.storage"] += Decimal(size) / GIB  # kept all month (versioned bucket)
    elif service == "cost-optimization-hub":
        units["costoptimizationhub.request"] += 1
    elif service == "sqs":
        units["sqs.request"] += _chunks(len(json.dumps(params, default=str).encode()))
    elif service == "kms":
        units["kms.request"] += 1
    elif service in ("organizations", "sts"):  # the weekly report: organisation or single account (free)
        units[f"{service}.request"] += 1
    else:
        units[f"unpriced.{service}.{operation}"] += 1
    return {key: quantity for key, quantity in units.items() if quantity}


@dataclass
class Metered:
    units: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    calls: Counter[str] = field(default_factory=Counter)
    overhead_s: float = 0.0
    tables_written: set[str] = field(default_factory=set)


class AwsMeter:
    """Counts every AWS request made while active, through botocore event hooks on every client
    created after `installed()` (boto3, Powertools' parameters provider, the adapters)."""

    def __init__(self, tables: MotoTables, topics: Mapping[str, TopicFacts]) -> None:
        self.tables = tables
        self.topics = topics
        self.active = False
        self.current = Metered()

    @contextmanager
    def installed(self) -> Iterator[AwsMeter]:
        import botocore.session

        original = botocore.session.Session.create_client
        meter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            meter.attach(client)
            return client

        botocore.session.Session.create_client = create_client
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original

    def attach(self, client: Any) -> None:
        region = client.meta.region_name
        events = client.meta.events
        events.register("before-parameter-build", lambda **kw: self._before(region, **kw))
        events.register("response-received", self._attempt)
        events.register("after-call", lambda **kw: self._after(region, **kw))

    def start(self) -> None:
        self.current = Metered()
        self.active = True

    def stop(self) -> Metered:
        self.active = False
        return self.current

    def _attempt(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        if self.active and context is not None:
            context["selfcost_attempts"] = context.get("selfcost_attempts", 0) + 1

    def _before(self, region: str, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        started = time.perf_counter()
        try:
            context["selfcost_params"] = copy.deepcopy(params)  # botocore may rewrite params in place later
        except Exception:  # noqa: BLE001 - a body that cannot be copied: its top level is enough
            context["selfcost_params"] = dict(params)
        if model.service_model.service_name == "dynamodb" and model.name in _DDB_WRITES:
            context["selfcost_before"] = [self.tables.item(region, table, key) for table, key, _ in
                                          self._write_targets(region, model.name, params)]  # fmt: skip
        self.current.overhead_s += time.perf_counter() - started

    def _after(self, region: str, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active or "selfcost_params" not in context:
            return
        started = time.perf_counter()
        service, operation = model.service_model.service_name, model.name
        params = context["selfcost_params"]
        attempts = max(1, context.get("selfcost_attempts", 1))
        self.current.calls[f"{service}.{operation}"] += attempts
        error = (parsed.get("Error") or {}).get("Code")
        if service == "dynamodb":
            units = self._dynamodb(region, operation, params, parsed, context, error)
        else:
            units = request_units(service, operation, params, self.topics)
        for key, quantity in units.items():
            self.current.units[key] += Decimal(quantity) * attempts
        self.current.overhead_s += time.perf_counter() - started

    def _write_targets(
        self, region: str, operation: str, params: Mapping[str, Any]
    ) -> list[tuple[str, Mapping[str, Any], str]]:
        """(table, key, kind) of every item a write request names; kind Put/Update/Delete/ConditionCheck."""
        targets: list[tuple[str, Mapping[str, Any], str]] = []

        def key_of(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
            return {k: item[k] for k in self.tables.key_names(region, table) if k in item}

        if operation == "PutItem":
            targets.append((params["TableName"], key_of(params["TableName"], params["Item"]), "Put"))
        elif operation in ("UpdateItem", "DeleteItem"):
            targets.append((params["TableName"], params["Key"], operation.removesuffix("Item")))
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        targets.append((table, key_of(table, request["PutRequest"]["Item"]), "Put"))
                    else:
                        targets.append((table, request["DeleteRequest"]["Key"], "Delete"))
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, op),) = entry.items()
                key = op.get("Key") or key_of(op["TableName"], op.get("Item", {}))
                targets.append((op["TableName"], key, kind))
        return targets

    def _dynamodb(
        self,
        region: str,
        operation: str,
        params: Mapping[str, Any],
        parsed: Mapping[str, Any],
        context: Mapping[str, Any],
        error: str | None,
    ) -> dict[str, Decimal]:
        units: defaultdict[str, Decimal] = defaultdict(Decimal)
        if operation in _DDB_WRITES:
            transactional = operation == "TransactWriteItems"
            failed = error in _CONDITION_FAILED
            for (table, key, kind), before in zip(
                self._write_targets(region, operation, params), context.get("selfcost_before", []), strict=False
            ):
                after = None if kind == "Delete" else self.tables.item(region, table, key)
                if kind == "ConditionCheck":
                    after, item_failed = before, True
                else:
                    item_failed = failed
                    self.current.tables_written.add(table)
                units["dynamodb.wru"] += write_request_units(
                    ItemWrite(before, after, transactional, self.tables.index_keys(region, table), item_failed)
                )
            return units
        if operation == "GetItem":
            size = item_size(self.tables.item(region, params["TableName"], params["Key"]))
            units["dynamodb.rru"] += read_units(size, consistent=bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                for key in request.get("Keys", []):
                    size = item_size(self.tables.item(region, table, key))
                    units["dynamodb.rru"] += read_units(size, consistent=bool(request.get("ConsistentRead")))
        elif operation == "TransactGetItems":
            for entry in params.get("TransactItems", []):
                get = entry["Get"]
                size = item_size(self.tables.item(region, get["TableName"], get["Key"]))
                units["dynamodb.rru"] += read_units(size, consistent=True, transactional=True)
        elif operation in ("Query", "Scan"):
            table = params["TableName"]
            keys = self.tables.key_names(region, table)
            size = 0
            for returned in parsed.get("Items", []):
                full = self.tables.item(region, table, returned) if all(k in returned for k in keys) else None
                size += item_size(full or returned)  # a read is charged on the whole item, not the projection
            consistent = bool(params.get("ConsistentRead")) and not params.get("IndexName")
            units["dynamodb.rru"] += read_units(size, consistent=consistent)
        return units
