"""What waits in the stage's failure queue `finops-guard-<stage>-failures`, and what redriving it does.

Four services put a message there, each in its own shape:
- Lambda's on-failure destination, for an asynchronous event (a schedule's run, a custom resource)
  that failed every retry: an *invocation record* naming the function, the condition and the error,
  with the original event as `requestPayload`. Redrive: invoke that function again with the event.
- EventBridge Scheduler, for an event it could not deliver to its target: the body is the target
  input and the message attributes say why (`ERROR_CODE`, `ERROR_MESSAGE`, `SCHEDULE_ARN`,
  `TARGET_ARN`, ...). Redrive: invoke the target function with the body.
- The anomaly inbox, for a message that failed five receives: the body is the inbox message (an SNS
  notification or a Cost Anomaly Detection EventBridge event). Redrive: send it back to the inbox.
- The billing notifier's stream mapping, for a batch that failed every retry: a record of where the
  batch lies in the stream (`DDBStreamBatchInfo`), without the records. Not redrivable from here.
Anything else is `Unrecognised`: listed, never redriven.

`parse_failure` never raises; `plan_redrive` refuses to invoke a function of another stage. Pure: no
boto3 (the queue, Lambda and the inbox are reached through finops_guard.core.adapters.dead_letters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from finops_guard.core import bounded_json

MAX_BODY_CHARS = 1_048_576  # SQS's largest message (1 MiB); a character is at least one byte
MAX_DEPTH = 32
_SHORT_TEXT = 2_000  # longer error texts are cut: they are shown, never acted on

_FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]{1,32}:\d{12}:function:(?P<name>[A-Za-z0-9_-]{1,64})"
    r"(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_SCHEDULE_ARN = re.compile(
    r"arn:aws[a-z-]*:scheduler:[a-z0-9-]{1,32}:\d{12}:schedule/[0-9A-Za-z_.-]{1,64}/(?P<name>[0-9A-Za-z_.-]{1,64})"
)
_SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]{1,32}:\d{12}:(?P<name>[A-Za-z0-9_-]{1,256})")
_DDB_STREAM_ARN = re.compile(
    r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]{1,32}:\d{12}:table/(?P<table>[A-Za-z0-9_.-]{3,255})/stream/\S{1,64}"
)
_SCHEDULER_ATTRIBUTES = ("SCHEDULE_ARN", "TARGET_ARN")


@dataclass(frozen=True)
class FunctionFailure:
    """Lambda's invocation record: the function's event failed every retry (or aged out)."""

    function_name: str  # e.g. finops-guard-prod-weekly-report
    condition: str  # RetriesExhausted, EventAgeExceeded, ...
    attempts: int | None
    error_type: str | None
    error_message: str | None
    failed_at: datetime | None
    payload: str | None  # the original event as JSON text; None when the record carries none


@dataclass(frozen=True)
class ScheduleFailure:
    """EventBridge Scheduler could not invoke the target (throttled, missing, not permitted)."""

    schedule_name: str
    function_name: str  # the target
    error_code: str | None
    error_message: str | None
    retry_attempts: str | None
    failed_at: datetime | None
    payload: str  # the target input, JSON text


@dataclass(frozen=True)
class PoisonAnomalyMessage:
    """An anomaly inbox message that failed five receives."""

    shape: str  # "sns" or "eventbridge"
    origin: str  # the topic name, or the event's detail-type
    published_at: datetime | None
    failed_at: datetime | None
    body: str  # exactly as the inbox received it


@dataclass(frozen=True)
class StreamBatchFailure:
    """The billing notifier's stream mapping gave up on a batch; the record says where it lies."""

    function_name: str
    condition: str
    table: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    batch_size: int | None
    first_record_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True)
class Unrecognised:
    reason: str
    failed_at: datetime | None


Failure = FunctionFailure | ScheduleFailure | PoisonAnomalyMessage | StreamBatchFailure | Unrecognised


# --- what redrive does ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InvokeFunction:
    function_name: str
    payload: str

    def describe(self) -> str:
        return f"invoke {self.function_name} (async) with the event"


@dataclass(frozen=True)
class ReturnToInbox:
    queue_name: str
    body: str

    def describe(self) -> str:
        return f"send it back to {self.queue_name}"


@dataclass(frozen=True)
class Keep:
    """Not redriven: the message stays in the queue until an operator discards it."""

    reason: str

    def describe(self) -> str:
        return f"keep it: {self.reason}"


Redrive = InvokeFunction | ReturnToInbox | Keep


def anomaly_inbox_name(stage: str) -> str:
    return f"finops-guard-{stage}-anomaly-inbox"


# Every function the stacks deploy (tests/infra checks this list against the templates). A name must
# match one exactly: a prefix alone would let stage "prod" redrive stage "prod-eu"'s functions.
FUNCTIONS = frozenset(
    {
        "weekly-report",
        "budget-guard",
        "anomaly-alerts",
        "chargeback",
        "savings-refresh",
        "costs-setup",
        "stripe-webhook",
        "billing-notifier",
        "dunning-sender",
        "reconciliation",
        "billing-admin",
        "billing-setup",
    }
)


def function_prefix(stage: str) -> str:
    return f"finops-guard-{stage}-"


def short_name(function_name: str, stage: str) -> str | None:
    """`weekly-report` for finops-guard-<stage>-weekly-report; None for a function of another stage or app."""
    prefix = function_prefix(stage)
    rest = function_name[len(prefix) :] if function_name.startswith(prefix) else ""
    return rest if rest in FUNCTIONS else None


def plan_redrive(failure: Failure, stage: str) -> Redrive:
    """What `finops-guard dlq redrive` does with `failure`. Only functions of `stage` are invoked."""
    if isinstance(failure, FunctionFailure | ScheduleFailure):
        if short_name(failure.function_name, stage) is None:
            return Keep(f"refused: {failure.function_name} is not a function of stage {stage}")
        if failure.payload is None:
            return Keep("the record carries no event to re-send; read the function's log for it")
        return InvokeFunction(failure.function_name, failure.payload)
    if isinstance(failure, PoisonAnomalyMessage):
        return ReturnToInbox(anomaly_inbox_name(stage), failure.body)
    if isinstance(failure, StreamBatchFailure):
        first = f", first written {format_instant(failure.first_record_at)}" if failure.first_record_at else ""
        return Keep(
            f"not redrivable: {failure.function_name} gave up on stream records {failure.start_sequence}.."
            f"{failure.end_sequence} of {failure.table} shard {failure.shard_id}{first} (a stream keeps records "
            f"24 h). Their cards are kept in the outbox: finops-guard outbox redrive --stage {stage}; the alerts "
            "stay in the billing alerts table (GET /billing/summary) and the ledger is checked by the daily "
            "reconciliation. Then discard this message"
        )
    return Keep(f"unrecognised ({failure.reason}); inspect it, then discard it")


def source(failure: Failure, stage: str) -> str:
    """Where the failure came from, in the operator's words."""
    if isinstance(failure, FunctionFailure):
        return short_name(failure.function_name, stage) or failure.function_name
    if isinstance(failure, ScheduleFailure):
        return f"schedule {failure.schedule_name}"
    if isinstance(failure, PoisonAnomalyMessage):
        return "anomaly inbox"
    if isinstance(failure, StreamBatchFailure):
        return "stream batch"
    return "unrecognised"


def function_of(failure: Failure, stage: str) -> str | None:
    """The short name of the function the failure belongs to (for `--function`), if it is of `stage`."""
    if isinstance(failure, FunctionFailure | ScheduleFailure | StreamBatchFailure):
        return short_name(failure.function_name, stage)
    if isinstance(failure, PoisonAnomalyMessage):
        return "anomaly-alerts"
    return None


def error_text(failure: Failure) -> str:
    """The error, one line: errorType/errorMessage, ERROR_CODE/ERROR_MESSAGE, or the condition."""
    if isinstance(failure, FunctionFailure):
        attempts = f" after {failure.attempts} attempt(s)" if failure.attempts is not None else ""
        detail = ": ".join(part for part in (failure.error_type, failure.error_message) if part)
        return _one_line(f"{failure.condition}{attempts}" + (f": {detail}" if detail else ""))
    if isinstance(failure, ScheduleFailure):
        detail = ": ".join(part for part in (failure.error_code, failure.error_message) if part)
        retries = f" (retries {failure.retry_attempts})" if failure.retry_attempts else ""
        return _one_line((detail or "the schedule could not invoke its target") + retries)
    if isinstance(failure, PoisonAnomalyMessage):
        return (
            f"{failure.shape} message from {failure.origin} failed 5 receives: malformed, or its alert not "
            "delivered (the anomaly-alerts ERROR lines name the message id)"
        )
    if isinstance(failure, StreamBatchFailure):
        size = f"{failure.batch_size} record(s)" if failure.batch_size is not None else "a batch"
        return f"{failure.condition}: {size} of {failure.table} not processed by {failure.function_name}"
    return _one_line(failure.reason)


# --- parsing -------------------------------------------------------------------------------------


def parse_failure(body: Any, attributes: Any = None, *, sent_at: datetime | None = None) -> Failure:
    """Read one failure queue message: `body` as SQS returns it, `attributes` its MessageAttributes
    (`{"ERROR_CODE": {"DataType": "String", "StringValue": "..."}}`), `sent_at` its SentTimestamp.
    Never raises: whatever is not one of the four shapes is `Unrecognised`."""
    try:
        return _parse(body, _string_attributes(attributes), sent_at if isinstance(sent_at, datetime) else None)
    except Exception as error:  # noqa: BLE001 - the promise is "never raises"; a bug shows as Unrecognised
        return Unrecognised(f"unreadable: {type(error).__name__}", None)


def _parse(body: Any, attributes: dict[str, str], sent_at: datetime | None) -> Failure:
    try:
        document = bounded_json.loads(body, max_depth=MAX_DEPTH, max_chars=MAX_BODY_CHARS)
    except bounded_json.JsonRefused as refused:
        return Unrecognised(f"body is not JSON we read: {refused.reason}", sent_at)
    if any(name in attributes for name in _SCHEDULER_ATTRIBUTES):
        return _schedule_failure(body, attributes, sent_at)
    if not isinstance(document, dict):
        return Unrecognised("body is not a JSON object", sent_at)
    if isinstance(document.get("requestContext"), dict):
        if "DDBStreamBatchInfo" in document:
            return _stream_batch_failure(document, sent_at)
        return _function_failure(document, sent_at)
    if document.get("Type") == "Notification" and "TopicArn" in document:
        return _sns_anomaly(body, document, sent_at)
    if document.get("source") == "aws.ce":
        return _eventbridge_anomaly(body, document, sent_at)
    return Unrecognised("not an invocation record, schedule event, anomaly message or stream batch", sent_at)


def _function_failure(document: dict[str, Any], sent_at: datetime | None) -> Failure:
    context = document["requestContext"]
    function = _function_name(context.get("functionArn"))
    condition = _text(context.get("condition"), 100)
    if function is None or condition is None:
        return Unrecognised("invocation record without a FinOps Guard-readable functionArn or condition", sent_at)
    response = document.get("responsePayload")
    error_type = error_message = None
    if isinstance(response, dict):
        error_type = _text(response.get("errorType"), 200)
        error_message = _text(response.get("errorMessage"), _SHORT_TEXT)
    elif isinstance(response, str):
        error_message = _text(response, _SHORT_TEXT)
    payload = _json_text(document["requestPayload"]) if "requestPayload" in document else None
    return FunctionFailure(
        function_name=function,
        condition=condition,
        attempts=_count(context.get("approximateInvokeCount")),
        error_type=error_type,
        error_message=error_message,
        failed_at=_instant_of(document.get("timestamp")) or sent_at,
        payload=payload,
    )


def _stream_batch_failure(document: dict[str, Any], sent_at: datetime | None) -> Failure:
    context, info = document["requestContext"], document["DDBStreamBatchInfo"]
    function = _function_name(context.get("functionArn"))
    condition = _text(context.get("condition"), 100)
    if function is None or condition is None or not isinstance(info, dict):
        return Unrecognised("stream batch record without a functionArn, condition or batch info", sent_at)
    stream = _DDB_STREAM_ARN.fullmatch(info.get("streamArn") or "") if isinstance(info.get("streamArn"), str) else None
    shard = _text(info.get("shardId"), 200)
    start, end = _text(info.get("startSequenceNumber"), 100), _text(info.get("endSequenceNumber"), 100)
    if stream is None or shard is None or start is None or end is None:
        return Unrecognised("stream batch record without a DynamoDB stream, shard or sequence numbers", sent_at)
    return StreamBatchFailure(
        function_name=function,
        condition=condition,
        table=stream["table"],
        shard_id=shard,
        start_sequence=start,
        end_sequence=end,
        batch_size=_count(info.get("batchSize")),
        first_record_at=_instant_of(info.get("approximateArrivalOfFirstRecord")),
        failed_at=_instant_of(document.get("timestamp")) or sent_at,
    )


def _schedule_failure(body: str, attributes: dict[str, str], sent_at: datetime | None) -> Failure:
    schedule = _SCHEDULE_ARN.fullmatch(attributes.get("SCHEDULE_ARN", ""))
    function = _function_name(attributes.get("TARGET_ARN"))
    if schedule is None or function is None:
        return Unrecognised("scheduler dead-letter event whose schedule or target is not a Lambda function", sent_at)
    return ScheduleFailure(
        schedule_name=schedule["name"],
        function_name=function,
        error_code=_text(attributes.get("ERROR_CODE"), 200),
        error_message=_text(attributes.get("ERROR_MESSAGE"), _SHORT_TEXT),
        retry_attempts=_text(attributes.get("RETRY_ATTEMPTS"), 20),
        failed_at=sent_at,
        payload=body,
    )


def _sns_anomaly(body: str, document: dict[str, Any], sent_at: datetime | None) -> Failure:
    topic = _SNS_TOPIC_ARN.fullmatch(document["TopicArn"]) if isinstance(document["TopicArn"], str) else None
    if topic is None or not isinstance(document.get("Message"), str):
        return Unrecognised("SNS notification without a topic ARN or a text Message", sent_at)
    return PoisonAnomalyMessage("sns", topic["name"], _instant_of(document.get("Timestamp")), sent_at, body)


def _eventbridge_anomaly(body: str, document: dict[str, Any], sent_at: datetime | None) -> Failure:
    detail_type = _text(document.get("detail-type"), 128)
    if detail_type is None or not isinstance(document.get("detail"), dict):
        return Unrecognised("aws.ce event without a detail-type or detail", sent_at)
    return PoisonAnomalyMessage("eventbridge", detail_type, _instant_of(document.get("time")), sent_at, body)


# --- small strict readers ------------------------------------------------------------------------


def _string_attributes(attributes: Any) -> dict[str, str]:
    """SQS MessageAttributes -> {name: StringValue}; anything not a string attribute is ignored."""
    if not isinstance(attributes, Mapping):
        return {}
    values: dict[str, str] = {}
    for name, attribute in attributes.items():
        if isinstance(name, str) and isinstance(attribute, Mapping):
            value = attribute.get("StringValue")
            if isinstance(value, str):
                values[name] = value
    return values


def _function_name(arn: Any) -> str | None:
    match = _FUNCTION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    return match["name"] if match else None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else None


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _instant_of(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def format_instant(value: datetime | None) -> str:
    """UTC, to the second, as the listing shows it; `-` when unknown."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())
