"""`make bench`, issue 7 (self-cost): the deployment's own monthly AWS bill, computed from the AWS
requests the real handlers make during a simulated month on the embedded AWS.

How the figures are made (`python -m devtools.bench_selfcost`, `--json` for the bench driver; `--smoke`
runs every scenario through the same code for the first SMOKE.days days only, with fewer sampled
customer groups: a test that the bench still runs, whose figures are not a month's):

- The stack is synthesized in-process with cdk.json's default context. Memory sizes, schedules,
  retry attempts, environment variables, topics and the fixed resources (secrets, KMS keys, alarms,
  dashboards, SQS event sources) are read from that template, never restated here.
- November 2026 is simulated on the embedded AWS (moto server) with the chat recorder and a
  loopback Stripe. Every handler runs through its Lambda entry point (`load_handler`), at the times
  its schedule (expanded from the template) fires. A botocore hook on every client counts each AWS
  request and converts it to billable units from the real requests and responses (DynamoDB request
  units from item sizes, SMS segments from the text, e-mail recipients, custom events...).
- Lambda: one request per invocation; GB-seconds = the template's memory x this machine's handler
  duration rounded up to 1 ms (standing in for Lambda's), plus the INIT phase of cold starts (billed
  since 1 Aug 2025), measured as a fresh interpreter importing the function's handler.py.
- Each function is its own container: the secrets module's caches are kept per function, cleared
  on a cold start. Scheduled runs start cold; the webhook's containers follow its arrival times.
- Money is Decimal throughout; prices live in PRICES, one table, with their sources.

- Cost Explorer answers come from the synthetic organisation (finops_guard.costs.mock_data), queued on
  the embedded Cost Explorer in the order each run asks (CostAnswers); Cost Optimization Hub, which
  moto lacks, is answered by botocore's Stubber, the Savings Plans reads by a before-call handler.

Scenario A: one account, no Stripe, cdk.json's defaults: attribution by tag:Team and tag:CostCenter
(the weekly report's extra request per dimension, the monthly chargeback on the 1st: a request, a
CSV and a pre-signed link per dimension), the team routes table empty. The billing machinery still
runs (hourly dunning sender, daily reconciliation, weekly export). "A without attribution": the
same month with the attribution variables emptied and no chargeback, to price attribution (not a
deployable configuration: attributionDimensions takes 1 to 3). Scenario C: A with the opt-in
savings recommendations and Savings Plans KPI (a second template synthesized with them on; the
daily savings refresh, the weekly report reading the recommendations and the KPI). Scenario B: A's
report workloads with two teams routed to their own channels, plus 10,008 Stripe events a month
(139 customer groups of devtools.billing_month's month), of which 14 groups (1,008 events) go through
the webhook and are weighted to the month; the ledger is then replicated to full size for the
reconciliation, export and admin calls. Stripe's own fees are not AWS cost and are left out. Each
configuration's month starts from empty report state (outbox, budget alerts, anomalies).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import math
import os
import random
import re
import secrets as secrets_module
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from devtools.lambda_runner import ROOT

TARGET_USD = Decimal("0.50")
MONTH = (2026, 11)
MONITOR_SINCE = date(2026, 6, 1)  # the AWS-services anomaly monitor's start, long before the month
STAGE = "dev"
FUNCTION_PREFIX = f"finops-guard-{STAGE}-"
HOURS_PER_BILLING_MONTH = Decimal(730)  # AWS's pricing examples prorate monthly charges over 730 hours
GIB = Decimal(2**30)
STRIPE_EVENTS_PER_MONTH = 10_000
SAMPLE_GROUPS = 14  # customer groups (72 events each) that really go through the webhook


@dataclass(frozen=True)
class Scale:
    """How much of the month runs: every day (`days` None) or the first `days`; `sample_groups` of the
    Stripe customer groups go through the webhook; `init_runs` fresh interpreters time each INIT (0:
    the one that also writes the bytecode cache); `reconciliations` of them run on the full ledger."""

    days: int | None
    sample_groups: int
    init_runs: int
    reconciliations: int


FULL = Scale(days=None, sample_groups=SAMPLE_GROUPS, init_runs=3, reconciliations=3)
# Day 1 has the chargeback, day 2 (a Monday) the weekly report and export, day 3 the first anomaly.
SMOKE = Scale(days=3, sample_groups=2, init_runs=0, reconciliations=1)
WEBHOOK_IDLE_TIMEOUT_S = 600  # assumption: an idle Lambda environment is reclaimed after ~10 minutes
SQS_POLLERS = 5  # Lambda's documented starting number of SQS pollers per event source mapping
SQS_LONG_POLL_S = 20  # each poller long-polls; an empty queue answers after 20 s
LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs meters each event's UTF-8 message + 26 bytes
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # storage overhead per item (and per index entry)


# --- the price table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """A public list price in us-east-1: `usd` for `per` units of `unit`."""

    service: str
    item: str
    usd: Decimal
    per: Decimal
    unit: str
    free_per_month: Decimal = Decimal(0)  # the AWS Free Tier allowance per month, account-wide
    free_tier: str = ""  # "always" or "12 months" (older accounts only); "" when there is none
    source: str = ""

    @property
    def unit_price(self) -> Decimal:
        return self.usd / self.per


_D = Decimal
M = Decimal(1_000_000)

# Public list prices, US East (N. Virginia), as published on each service's pricing page (read for
# this bench in 2026; check them before quoting). Free tiers are account-wide: the bill is judged
# without them, and a second total shows them as if this stack were the account's only usage.
PRICES: dict[str, Price] = {
    # aws.amazon.com/aws-cost-management/aws-cost-explorer/pricing: "$0.01 per request"; each page of a
    # paginated result is a separate request.
    "ce.request": Price("Cost Explorer", "API requests", _D("0.01"), _D(1), "request",
                        source="aws.amazon.com/aws-cost-management/aws-cost-explorer/pricing"),
    # aws.amazon.com/lambda/pricing: requests $0.20 per 1M; Arm duration $0.0000133334 per GB-second
    # (first 7.5 billion GB-s); 1M requests and 400,000 GB-s always free. INIT is billed since 2025-08-01.
    "lambda.request": Price("Lambda", "requests (invocations)", _D("0.20"), M, "request", _D(1_000_000), "always",
                            "aws.amazon.com/lambda/pricing"),
    "lambda.gb_second": Price("Lambda", "duration, arm64 (incl. INIT)", _D("0.0000133334"), _D(1), "GB-second",
                              _D(400_000), "always", "aws.amazon.com/lambda/pricing"),
    # aws.amazon.com/dynamodb/pricing/on-demand (after the November 2024 cut): $0.625 per million write
    # request units, $0.125 per million read request units; storage $0.25 per GB-month (25 GB always
    # free); continuous backups (PITR) $0.20 per GB-month. On-demand requests have no free tier.
    "dynamodb.wru": Price("DynamoDB", "on-demand write request units", _D("0.625"), M, "WRU",
                          source="aws.amazon.com/dynamodb/pricing/on-demand"),
    "dynamodb.rru": Price("DynamoDB", "on-demand read request units", _D("0.125"), M, "RRU",
                          source="aws.amazon.com/dynamodb/pricing/on-demand"),
    "dynamodb.storage": Price("DynamoDB", "table + index storage", _D("0.25"), _D(1), "GB-month", _D(25), "always",
                              "aws.amazon.com/dynamodb/pricing/on-demand"),
    "dynamodb.pitr": Price("DynamoDB", "point-in-time recovery", _D("0.20"), _D(1), "GB-month",
                           source="aws.amazon.com/dynamodb/pricing/on-demand"),
    # aws.amazon.com/secrets-manager/pricing: $0.40 per secret per month, $0.05 per 10,000 API calls.
    "secretsmanager.api_call": Price("Secrets Manager", "API calls", _D("0.05"), _D(10_000), "call",
                                     source="aws.amazon.com/secrets-manager/pricing"),
    "secretsmanager.secret": Price("Secrets Manager", "secrets stored", _D("0.40"), _D(1), "secret-month",
                                   source="aws.amazon.com/secrets-manager/pricing"),
    # aws.amazon.com/api-gateway/pricing: REST APIs $3.50 per million (first 333 million); 1M calls a
    # month free for 12 months.
    "apigateway.request": Price("API Gateway", "REST API requests", _D("3.50"), M, "request", _D(1_000_000),
                                "12 months", "aws.amazon.com/api-gateway/pricing"),
    # aws.amazon.com/sns/pricing: publishes $0.50 per million (each 64 KB chunk a request; 1M free);
    # e-mail deliveries $2.00 per 100,000 (1,000 free); HTTP(S) $0.60 per million (100,000 free);
    # deliveries to SQS and Lambda are free.
    "sns.publish": Price("SNS", "publish requests", _D("0.50"), M, "request", _D(1_000_000), "always",
                         "aws.amazon.com/sns/pricing"),
    "sns.email": Price("SNS", "e-mail notifications", _D("2.00"), _D(100_000), "delivery", _D(1_000), "always",
                       "aws.amazon.com/sns/pricing"),
    "sns.https": Price("SNS", "HTTP(S) notifications", _D("0.60"), M, "delivery", _D(100_000), "always",
                       "aws.amazon.com/sns/pricing"),
    # aws.amazon.com/end-user-messaging/pricing (SNS SMS is delivered by AWS End User Messaging):
    # assumption: every recipient is a US number reached from a toll-free/10DLC origination identity;
    # $0.00581 per message part, plus the US carriers' pass-through fee per part, taken at the highest
    # current one ($0.0045, Verizon/T-Mobile 2026). Parts: 160 GSM-7 characters (153 when split), 70 UCS-2.
    "sns.sms_us": Price("SNS (SMS)", "SMS message parts to US numbers", _D("0.00581"), _D(1), "part",
                        source="aws.amazon.com/end-user-messaging/pricing"),
    "sns.sms_us_carrier": Price("SNS (SMS)", "US carrier pass-through fee", _D("0.0045"), _D(1), "part",
                                source="US carrier fee schedules, 2026 (upper figure)"),
    # aws.amazon.com/ses/pricing: outbound e-mail $0.10 per 1,000 (3,000 a month free for 12 months).
    "ses.email": Price("SES", "outbound e-mails (per recipient)", _D("0.10"), _D(1_000), "e-mail", _D(3_000),
                       "12 months", "aws.amazon.com/ses/pricing"),
    # aws.amazon.com/sqs/pricing: standard queues $0.40 per million requests (64 KB chunks); 1M free.
    "sqs.request": Price("SQS", "requests", _D("0.40"), M, "request", _D(1_000_000), "always",
                         "aws.amazon.com/sqs/pricing"),
    # aws.amazon.com/eventbridge/pricing: custom events $1.00 per million; AWS service events free;
    # Scheduler invocations $1.00 per million after 14 million free a month.
    "events.custom": Price("EventBridge", "custom events (PutEvents entries)", _D("1.00"), M, "event",
                           source="aws.amazon.com/eventbridge/pricing"),
    "scheduler.invocation": Price("EventBridge Scheduler", "scheduled invocations", _D("1.00"), M, "invocation",
                                  _D(14_000_000), "always", "aws.amazon.com/eventbridge/pricing"),
    # aws.amazon.com/cloudwatch/pricing: Logs ingestion $0.50 per GB, storage $0.03 per GB-month (5 GB
    # of logs always free); custom metrics $0.30 per metric-month (EMF metrics are custom metrics),
    # prorated by the hour and metered only when sent (10 free); standard alarms $0.10 per alarm
    # metric-month (10 free); dashboards $3.00 per month beyond 3 free.
    "logs.ingest": Price("CloudWatch Logs", "ingestion (function, Lambda, access logs)", _D("0.50"), _D(1), "GB",
                         _D(5), "always", "aws.amazon.com/cloudwatch/pricing"),
    "logs.storage": Price("CloudWatch Logs", "storage (one-month retention)", _D("0.03"), _D(1), "GB-month",
                          source="aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.metric": Price("CloudWatch", "custom metrics via EMF (hourly prorated)", _D("0.30"), _D(1),
                               "metric-month", _D(10), "always", "aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.alarm": Price("CloudWatch", "standard-resolution alarm metrics", _D("0.10"), _D(1),
                              "alarm metric-month", _D(10), "always", "aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.dashboard": Price("CloudWatch", "dashboards", _D("3.00"), _D(1), "dashboard-month", _D(3), "always",
                                  "aws.amazon.com/cloudwatch/pricing"),
    # aws.amazon.com/kms/pricing: $1.00 per customer managed key per month; $0.03 per 10,000 requests
    # (20,000 a month free).
    "kms.key": Price("KMS", "customer managed keys", _D("1.00"), _D(1), "key-month",
                     source="aws.amazon.com/kms/pricing"),
    "kms.request": Price("KMS", "requests", _D("0.03"), _D(10_000), "request", _D(20_000), "always",
                         "aws.amazon.com/kms/pricing"),
    # aws.amazon.com/s3/pricing: S3 Standard PUT/COPY/POST/LIST $0.005 per 1,000, GET $0.0004 per 1,000,
    # storage $0.023 per GB-month (first 50 TB); 12-month free tier: 2,000 PUTs, 20,000 GETs, 5 GB.
    "s3.put": Price("S3", "PUT/COPY/POST/LIST requests", _D("0.005"), _D(1_000), "request", _D(2_000), "12 months",
                    "aws.amazon.com/s3/pricing"),
    "s3.get": Price("S3", "GET requests", _D("0.0004"), _D(1_000), "request", _D(20_000), "12 months",
                    "aws.amazon.com/s3/pricing"),
    "s3.storage": Price("S3", "Standard storage", _D("0.023"), _D(1), "GB-month", _D(5), "12 months",
                        "aws.amazon.com/s3/pricing"),
    # aws.amazon.com/aws-cost-management/cost-optimization-hub (FAQ: "available at no additional charge");
    # the savings refresh lists its recommendations daily, a zero line that shows the requests were counted.
    "costoptimizationhub.request": Price("Cost Optimization Hub", "API requests (free)", _D(0), _D(1), "request",
                                         source="aws.amazon.com/aws-cost-management/cost-optimization-hub"),
    # aws.amazon.com/ec2/pricing/on-demand (data transfer): out to the internet $0.09 per GB after
    # 100 GB a month free (all services).
    "dataout.internet": Price("Data transfer", "out to the internet (chat webhook posts)", _D("0.09"), _D(1), "GB",
                              _D(100), "always", "aws.amazon.com/ec2/pricing/on-demand"),
}  # fmt: skip

# The services issue 7 names, and the price keys that must exist for each (a test checks them).
ISSUE_SERVICES: dict[str, tuple[str, ...]] = {
    "Cost Explorer": ("ce.request",),
    "Lambda": ("lambda.request", "lambda.gb_second"),
    "DynamoDB": ("dynamodb.wru", "dynamodb.rru"),
    "Secrets Manager": ("secretsmanager.api_call", "secretsmanager.secret"),
    "API Gateway": ("apigateway.request",),
    "SNS": ("sns.publish", "sns.email", "sns.https", "sns.sms_us"),
    "SES": ("ses.email",),
    "SQS": ("sqs.request",),
    "CloudWatch": ("logs.ingest", "cloudwatch.metric", "cloudwatch.alarm", "cloudwatch.dashboard"),
    "KMS": ("kms.key", "kms.request"),
    "EventBridge Scheduler": ("scheduler.invocation",),
}


# --- the bill -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillLine:
    key: str  # a PRICES key
    quantity: Decimal
    note: str = ""

    @property
    def price(self) -> Price:
        return PRICES[self.key]

    @property
    def usd(self) -> Decimal:
        return self.quantity * self.price.unit_price


@dataclass(frozen=True)
class Bill:
    lines: tuple[BillLine, ...]

    @classmethod
    def from_counts(cls, counts: Mapping[str, Decimal], notes: Mapping[str, str] | None = None) -> Bill:
        """One line per price key with a non-zero quantity, in PRICES order. Unknown keys are an error."""
        unknown = sorted(set(counts) - set(PRICES))
        if unknown:
            raise KeyError(f"no price for {unknown}")
        return cls(
            tuple(
                BillLine(key, Decimal(counts[key]), (notes or {}).get(key, ""))
                for key in PRICES
                if counts.get(key, Decimal(0)) != 0
            )
        )

    def quantity(self, key: str) -> Decimal:
        return sum((line.quantity for line in self.lines if line.key == key), Decimal(0))

    @property
    def usd(self) -> Decimal:
        """At list price, no free tier."""
        return sum((line.usd for line in self.lines), Decimal(0))

    @property
    def usd_after_free_tier(self) -> Decimal:
        """As if this bill were the account's only usage: each key's free allowance subtracted once."""
        total = Decimal(0)
        for key in dict.fromkeys(line.key for line in self.lines):
            price = PRICES[key]
            total += max(Decimal(0), self.quantity(key) - price.free_per_month) * price.unit_price
        return total


def usd(amount: Decimal, places: int = 4) -> str:
    return f"${amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,}"


# --- unit conversions (pure) ------------------------------------------------------------------------


def number_size(text: str) -> int:
    """DynamoDB's size of a number: 1 byte per two significant digits, plus 1."""
    mantissa = text.strip().lstrip("+-").lower().split("e")[0]
    digits = mantissa.replace(".", "").lstrip("0")
    if "." in mantissa:
        digits = digits.rstrip("0") if digits else ""
    else:
        digits = digits.rstrip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    """Size of one DynamoDB attribute value (low-level JSON form), per the DynamoDB developer guide."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(str(inner).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(len(v) if isinstance(v, bytes | bytearray) else len(str(v).encode()) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of an item: attribute names (UTF-8) plus values; 0 for no item."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in (item or {}).items())


def write_units(size_bytes: int, *, transactional: bool = False) -> int:
    """Write request units of one item write: 1 per started KB (at least 1), doubled in a transaction."""
    units = max(1, math.ceil(size_bytes / 1024))
    return 2 * units if transactional else units


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> Decimal:
    """Read request units of one read of `size_bytes` (a Query page: the sum of the items it read):
    1 per started 4 KB (at least one), half for eventually consistent, 2 for transactional."""
    blocks = max(1, math.ceil(size_bytes / 4096))
    if transactional:
        return Decimal(2 * blocks)
    return Decimal(blocks) if consistent else Decimal(blocks) / 2


@dataclass(frozen=True)
class ItemWrite:
    """One item a write request touched, as it was before and after (None: absent)."""

    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    transactional: bool = False
    index_keys: tuple[tuple[str, ...], ...] = ()  # key attributes of each global secondary index
    failed: bool = False  # a condition failed: charged on the existing item, nothing written


def index_write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Sequence[str]) -> int:
    """Writes a change makes in one index (ALL projection): none when the item is in neither image,
    one when it enters, leaves or stays with the same keys, two (delete + put) when its keys change."""
    was = before is not None and all(k in before for k in keys)
    now = after is not None and all(k in after for k in keys)
    if not was and not now:
        return 0
    if was and now:
        assert before is not None and after is not None
        if all(before[k] == after[k] for k in keys):
            return write_units(max(item_size(before), item_size(after)))
        return write_units(item_size(before)) + write_units(item_size(after))
    return write_units(item_size(before if was else after))


def write_request_units(write: ItemWrite) -> int:
    """The table write (the larger of the old and new item) plus the index writes it causes."""
    size = item_size(write.before) if write.failed else max(item_size(write.before), item_size(write.after))
    units = write_units(size, transactional=write.transactional)
    if not write.failed:
        units += sum(index_write_units(write.before, write.after, keys) for keys in write.index_keys)
    return units


def billed_ms(seconds: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(round(seconds * 1000, 6)))


def gb_seconds(memory_mb: int, milliseconds: int) -> Decimal:
    return Decimal(memory_mb) / 1024 * Decimal(milliseconds) / 1000


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


def cold_starts(arrivals: Sequence[float], idle_timeout_s: float = WEBHOOK_IDLE_TIMEOUT_S) -> list[bool]:
    """For sorted arrival times (seconds): True where the request finds no warm environment, i.e. the
    first one and any after a gap longer than the idle timeout (one environment; overlaps ignored)."""
    return [i == 0 or arrivals[i] - arrivals[i - 1] > idle_timeout_s for i in range(len(arrivals))]


# --- schedules (pure) -------------------------------------------------------------------------------

_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> set[int] | None:
    """Values of one cron field; None for `*`/`?`. Supports lists, ranges, names and a/b steps."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-")
            start, end = (names or {}).get(first, 0) or int(first), (names or {}).get(last, 0) or int(last)
        else:
            start = (names or {}).get(part, 0) or int(part)
            end = high if step > 1 else start
        if not low <= start <= end <= high:
            raise ValueError(f"cron field {text!r} outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def runs_in_month(expression: str, timezone: str, year: int, month: int) -> list[datetime]:
    """The UTC instants an EventBridge Scheduler expression fires in a calendar month (of the zone).
    rate(): from the first instant of the month. cron(): minutes hours day-of-month month
    day-of-week year, AWS flavour (day-of-week 1 = SUN); L, W and # are not supported."""
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        seconds = int(rate.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[rate.group(2).rstrip("s")]
        count = math.ceil((end - start).total_seconds() / seconds)
        return [(start + timedelta(seconds=i * seconds)).astimezone(UTC) for i in range(count)]
    cron = re.fullmatch(r"cron\((.+)\)", expression)
    if not cron or len(cron.group(1).split()) != 6:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    minutes, hours, dom, mon, dow, year_field = cron.group(1).split()
    if any(c in f"{dom}{dow}" for c in "LW#"):
        raise ValueError(f"unsupported cron field in {expression!r}")
    minute_set = _cron_field(minutes, 0, 59) or set(range(60))
    hour_set = _cron_field(hours, 0, 23) or set(range(24))
    dom_set, mon_set = _cron_field(dom, 1, 31), _cron_field(mon, 1, 12, _MONTHS)
    dow_set, year_set = _cron_field(dow, 1, 7, _DAYS), _cron_field(year_field, 1970, 2199)
    runs = []
    day = start.date()
    while day < end.date():
        aws_dow = day.isoweekday() % 7 + 1  # Sunday = 1
        wanted = (
            (dom_set is None or day.day in dom_set)
            and (dow_set is None or aws_dow in dow_set)
            and (mon_set is None or day.month in mon_set)
            and (year_set is None or day.year in year_set)
        )
        if wanted:
            for hour in sorted(hour_set):
                for minute in sorted(minute_set):
                    runs.append(datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC))
        day += timedelta(days=1)
    return runs


# --- what the template says (pure over its JSON) ---------------------------------------------------


@dataclass(frozen=True)
class FunctionFacts:
    name: str  # short name, e.g. "weekly-report"
    logical_id: str
    memory_mb: int
    timeout_s: int
    environment: Mapping[str, Any]
    retry_attempts: int  # asynchronous invocations: Lambda retries a failed event this many times


@dataclass(frozen=True)
class ScheduleFacts:
    name: str
    function: str
    expression: str
    timezone: str
    payload: str  # the target's Input, with <aws.scheduler.scheduled-time> still in it


@dataclass(frozen=True)
class TopicFacts:
    name: str
    encrypted: bool  # a customer managed KMS key (each publish costs KMS requests)
    subscriptions: Mapping[str, int]  # protocol -> count


@dataclass(frozen=True)
class TemplateFacts:
    functions: Mapping[str, FunctionFacts]
    schedules: tuple[ScheduleFacts, ...]
    topics: Mapping[str, TopicFacts]
    resources: Mapping[str, Mapping[str, Any]]
    counts: Mapping[str, int]  # resource type -> count
    alarm_metrics: int  # standard-resolution alarm metrics (a metric-math alarm counts each metric)
    sqs_event_sources: int  # event source mappings reading an SQS queue (Lambda polls them)
    pitr_tables: tuple[str, ...]

    @classmethod
    def from_template(cls, template: Mapping[str, Any], prefix: str = FUNCTION_PREFIX) -> TemplateFacts:
        resources: dict[str, Mapping[str, Any]] = template["Resources"]
        by_type: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
        for logical_id, resource in resources.items():
            by_type[resource["Type"]][logical_id] = resource.get("Properties", {})
        retries = {
            props["FunctionName"]["Ref"]: int(props.get("MaximumRetryAttempts", 2))
            for props in by_type["AWS::Lambda::EventInvokeConfig"].values()
        }
        functions = {}
        for logical_id, props in by_type["AWS::Lambda::Function"].items():
            name = str(props["FunctionName"]).removeprefix(prefix)
            functions[name] = FunctionFacts(
                name=name,
                logical_id=logical_id,
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
                environment=props.get("Environment", {}).get("Variables", {}),
                retry_attempts=retries.get(logical_id, 2),
            )
        by_logical = {f.logical_id: f.name for f in functions.values()}
        schedules = tuple(
            ScheduleFacts(
                name=str(props["Name"]),
                function=by_logical[props["Target"]["Arn"]["Fn::GetAtt"][0]],
                expression=str(props["ScheduleExpression"]),
                timezone=str(props.get("ScheduleExpressionTimezone", "UTC")),
                payload=str(props["Target"].get("Input", "{}")),
            )
            for props in by_type["AWS::Scheduler::Schedule"].values()
        )
        subscriptions: dict[str, Counter[str]] = defaultdict(Counter)
        for props in by_type["AWS::SNS::Subscription"].values():
            topic_ref = props.get("TopicArn", {})
            subscriptions[topic_ref.get("Ref", str(topic_ref)) if isinstance(topic_ref, dict) else topic_ref][
                str(props.get("Protocol"))
            ] += 1
        for logical_id, props in by_type["AWS::SNS::Topic"].items():
            for sub in props.get("Subscription", []) or []:
                subscriptions[logical_id][str(sub.get("Protocol"))] += 1
        topics = {
            str(props.get("TopicName", logical_id)): TopicFacts(
                name=str(props.get("TopicName", logical_id)),
                encrypted="KmsMasterKeyId" in props,
                subscriptions=dict(subscriptions.get(logical_id, {})),
            )
            for logical_id, props in by_type["AWS::SNS::Topic"].items()
        }
        alarm_metrics = sum(
            sum(1 for m in props["Metrics"] if "MetricStat" in m) if "Metrics" in props else 1
            for props in by_type["AWS::CloudWatch::Alarm"].values()
        )
        sqs_sources = sum(
            1
            for props in by_type["AWS::Lambda::EventSourceMapping"].values()
            if _refers_to_type(props.get("EventSourceArn"), resources, "AWS::SQS::Queue")
        )
        pitr = tuple(
            str(props.get("TableName", lid))
            for lid, props in by_type["AWS::DynamoDB::Table"].items()
            if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        )
        return cls(
            functions=functions,
            schedules=schedules,
            topics=topics,
            resources=resources,
            counts={kind: len(items) for kind, items in by_type.items()},
            alarm_metrics=alarm_metrics,
            sqs_event_sources=sqs_sources,
            pitr_tables=pitr,
        )

    def fixed_counts(self, hours_in_month: int) -> dict[str, Decimal]:
        """Charges that do not depend on calls: resources that exist all month."""
        polls = Decimal(SQS_POLLERS * self.sqs_event_sources * hours_in_month * 3600 // SQS_LONG_POLL_S)
        return {
            "secretsmanager.secret": Decimal(self.counts.get("AWS::SecretsManager::Secret", 0)),
            "kms.key": Decimal(self.counts.get("AWS::KMS::Key", 0)),
            "cloudwatch.alarm": Decimal(self.alarm_metrics),
            "cloudwatch.dashboard": Decimal(self.counts.get("AWS::CloudWatch::Dashboard", 0)),
            "sqs.request": polls,
        }


def _refers_to_type(value: Any, resources: Mapping[str, Mapping[str, Any]], kind: str) -> bool:
    if isinstance(value, dict):
        target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        return bool(target) and resources.get(str(target), {}).get("Type") == kind
    return isinstance(value, str) and f":{kind.split('::')[1].lower()}:" in value


def synthesize_template(changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack with cdk.json's default context (with `changes`), synthesized in-process as tests/infra does."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from aws_cdk import App

    from infra.stack import create_stack

    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **(changes or {})}
    context["aws:cdk:bundling-stacks"] = []  # no layer bundling: the template's resources are the same
    with tempfile.TemporaryDirectory() as outdir, redirect_stdout(io.StringIO()):
        app = App(context=context, outdir=outdir)
        stack = create_stack(app)
        assembly = app.synth()
        path = Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)
        return dict(json.loads(path.read_text()))


# --- counting AWS requests ---------------------------------------------------------------------------

_DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_CONDITION_FAILED = {"ConditionalCheckFailedException", "TransactionCanceledException"}


class MotoTables:
    """The embedded DynamoDB's items, read straight from moto's backend (no request, not counted)
    to size what a request read or wrote."""

    def __init__(self, account: str = "123456789012") -> None:
        self.account = account

    def _table(self, region: str, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        try:
            return dynamodb_backends[self.account][region].get_table(name)
        except Exception:  # noqa: BLE001 - unknown table: nothing to size
            return None

    def key_names(self, region: str, name: str) -> tuple[str, ...]:
        table = self._table(region, name)
        if table is None:
            return ()
        return tuple(k for k in (table.hash_key_attr, table.range_key_attr) if k)

    def index_keys(self, region: str, name: str) -> tuple[tuple[str, ...], ...]:
        table = self._table(region, name)
        if table is None:
            return ()
        return tuple(tuple(k["AttributeName"] for k in index.schema) for index in table.global_indexes)

    def item(self, region: str, name: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._table(region, name)
        if table is None:
            return None
        try:
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        except KeyError:
            return None
        found = table.get_item(hash_value, range_value)
        return None if found is None else dict(found.to_json()["Attributes"])


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


# --- one process, many Lambda containers -----------------------------------------------------------


@dataclass(frozen=True)
class MetricId:
    function: str
    name: str
    dimensions: tuple[tuple[str, str], ...]


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
            for dimension_set in directive.get("Dimensions", [[]]):
                dims = tuple(sorted((d, function if d == "service" else str(record.get(d))) for d in dimension_set))
                for metric in directive.get("Metrics", []):
                    found.add(MetricId(function, str(metric["Name"]), dims))
    return found


@dataclass
class Invocation:
    function: str
    at: datetime
    cold: bool
    weight: Decimal
    hours: frozenset[int]  # hours of the month the represented invocations fall in (custom metric proration)
    units: defaultdict[str, Decimal]
    calls: Counter[str]
    metrics: set[MetricId]
    duration_ms: int
    init_ms: int
    log_bytes: int
    result: Any = None
    error: str | None = None
    tables_written: set[str] = field(default_factory=set)


class Lambdas:
    """Runs handlers as Lambda would, one simulated container per function, and accounts each run."""

    def __init__(
        self,
        facts: TemplateFacts,
        environments: Mapping[str, Mapping[str, str]],
        init_ms: Mapping[str, int],
        meter: AwsMeter,
        chat_bytes: Callable[[], int],
        month_start: datetime,
    ) -> None:
        from finops_guard.billing import runtime as billing_runtime
        from finops_guard.core import runtime as core_runtime
        from finops_guard.core.adapters import secrets
        from finops_guard.costs import runtime

        from devtools.lambda_runner import load_handler

        self.facts = facts
        self.environments = environments
        self.init_ms = init_ms
        self.meter = meter
        self.chat_bytes = chat_bytes
        self.month_start = month_start
        self.runtimes = (core_runtime, runtime, billing_runtime)  # every cached client and setting
        self.secrets = secrets
        self.records: list[Invocation] = []
        self._saved: dict[str, dict[str, dict[Any, Any]]] = {}
        self._last: str | None = None
        self._base_env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))}
        self.handlers: dict[str, ModuleType] = {}
        for name in facts.functions:
            self._set_env(name)
            self.handlers[name] = load_handler(name.replace("-", "_"))

    def _set_env(self, function: str, overrides: Mapping[str, str] | None = None) -> None:
        os.environ.clear()
        os.environ.update(self._base_env)
        os.environ.update(self.environments[function])
        os.environ.update(overrides or {})

    def _caches(self) -> list[dict[Any, Any]]:
        """The secrets adapter's module-level caches (private lower-case dicts): a container's state."""
        return [v for k, v in vars(self.secrets).items() if k.startswith("_") and not k.startswith("__")
                and k[1:2].islower() and isinstance(v, dict)]  # fmt: skip

    def _enter(self, function: str, cold: bool) -> None:
        from aws_lambda_powertools.utilities import parameters
        from finops_guard.core.adapters import chat

        saved = self._saved.get(function, {})
        for index, cache in enumerate(self._caches()):
            cache.clear()
            if not cold:
                cache.update(saved.get(str(index), {}))
        if cold:
            parameters.clear_caches()
        if cold or self._last != function:  # env-dependent singletons (clients, settings): no AWS call to rebuild
            for module in (*self.runtimes, self.handlers[function]):
                for value in vars(module).values():
                    if callable(getattr(value, "cache_clear", None)):
                        value.cache_clear()
        chat.PACER = type(chat.PACER)()  # posting pace is per container, and simulated runs are hours apart

    def _leave(self, function: str) -> None:
        self._saved[function] = {str(i): dict(cache) for i, cache in enumerate(self._caches())}
        self._last = function

    @contextmanager
    def _captured_logs(self, function: str) -> Iterator[io.StringIO]:
        """Only this function's log handlers on the finops_guard loggers, writing to a buffer."""
        buffer = io.StringIO()
        own = list(self.handlers[function].logger._logger.handlers)
        loggers = [logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict)
                   if n == "finops_guard" or n.startswith("finops_guard.")]  # fmt: skip
        saved = [(lg, list(lg.handlers)) for lg in loggers if lg.handlers]
        streams = [(h, h.stream) for h in own if isinstance(h, logging.StreamHandler)]
        for lg, _ in saved:
            lg.handlers = list(own)
        for handler, _ in streams:
            handler.setStream(buffer)
        try:
            with redirect_stdout(buffer):  # Powertools prints EMF metrics with print()
                yield buffer
        finally:
            for handler, stream in streams:
                handler.setStream(stream)
            for lg, handlers in saved:
                lg.handlers = handlers

    def hour(self, at: datetime) -> int:
        return int((at - self.month_start).total_seconds() // 3600)

    def invoke(
        self,
        function: str,
        event: Mapping[str, Any],
        *,
        at: datetime,
        cold: bool,
        weight: Decimal = Decimal(1),
        hours: Iterable[int] | None = None,
        extra: Mapping[str, Decimal] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Invocation:
        from devtools.lambda_runner import FakeContext

        facts = self.facts.functions[function]
        self._set_env(function, env)
        self._enter(function, cold)
        context = FakeContext(f"{FUNCTION_PREFIX}{function}", timeout_s=facts.timeout_s, memory_mb=facts.memory_mb)
        chat_before = self.chat_bytes()
        result, error = None, None
        with self._captured_logs(function) as buffer:
            self.meter.start()
            started = time.perf_counter()
            try:
                result = self.handlers[function].lambda_handler(dict(event), context)
            except Exception as exc:  # noqa: BLE001 - Lambda records the error; the caller decides on retries
                error = f"{type(exc).__name__}: {exc}"[:300]
            elapsed = time.perf_counter() - started
            metered = self.meter.stop()
        self._leave(function)
        duration = billed_ms(max(0.0, elapsed - metered.overhead_s))
        init = self.init_ms[function] if cold else 0
        lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
        lines += platform_log_lines(function, duration, facts.memory_mb, init)
        log_bytes = log_ingest_bytes(lines)
        units = defaultdict(Decimal, metered.units)
        units["lambda.request"] += 1
        units["lambda.gb_second"] += gb_seconds(facts.memory_mb, duration + init)
        units["logs.ingest"] += Decimal(log_bytes) / GIB
        units["logs.storage"] += Decimal(log_bytes) / GIB  # one-month retention: a month of logs is stored
        units["dataout.internet"] += Decimal(self.chat_bytes() - chat_before) / GIB
        for key, quantity in (extra or {}).items():
            units[key] += quantity
        record = Invocation(
            function=function,
            at=at,
            cold=cold,
            weight=weight,
            hours=frozenset(hours if hours is not None else [self.hour(at)]),
            units=units,
            calls=metered.calls,
            metrics=emf_metrics(lines, function),
            duration_ms=duration,
            init_ms=init,
            log_bytes=log_bytes,
            result=result,
            error=error,
            tables_written=metered.tables_written,
        )
        self.records.append(record)
        return record

    def invoke_async(self, function: str, event: Mapping[str, Any], *, at: datetime, **kwargs: Any) -> list[Invocation]:
        """An asynchronous invocation (a schedule): Lambda retries a failed event (warm) as often as the
        template says, then parks it in the function's dead-letter queue (one SQS request)."""
        runs = [self.invoke(function, event, at=at, cold=True, **kwargs)]
        kwargs.pop("extra", None)
        for attempt in range(self.facts.functions[function].retry_attempts):
            if runs[-1].error is None:
                break
            runs.append(self.invoke(function, event, at=at + timedelta(minutes=1 + attempt), cold=False, **kwargs))
        if runs[-1].error is not None:
            runs[-1].units["sqs.request"] += 1
        return runs


def platform_log_lines(function: str, duration_ms: int, memory_mb: int, init_ms: int) -> list[str]:
    """The lines Lambda itself writes to the function's log group for one invocation."""
    request = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    lines = [
        f"START RequestId: {request} Version: $LATEST",
        f"END RequestId: {request}",
        f"REPORT RequestId: {request}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {duration_ms + init_ms} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {min(memory_mb, 120)} MB"
        + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms else ""),
    ]
    if init_ms:
        lines.insert(0, "INIT_START Runtime Version: python:3.14.v9\tRuntime Version ARN: arn:aws:lambda:us-east-1::"
                        "runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")  # fmt: skip
    return lines


def measure_init_ms(functions: Mapping[str, FunctionFacts], environments: Mapping[str, Mapping[str, str]],
                    runs: int = 3) -> dict[str, int]:  # fmt: skip
    """A cold start's INIT, measured as a fresh interpreter importing the function's handler.py
    (median of `runs`, after one run that writes the bytecode cache)."""

    def one(name: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))}
        env.update({k: v for k, v in environments[name].items() if k.startswith("POWERTOOLS_")})
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "layers/common/python"), str(ROOT / "functions" / name.replace("-", "_"))]
        )
        timings = []
        for i in range(runs + 1):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import handler"], env=env, check=True, capture_output=True)
            if i or not runs:
                timings.append(time.perf_counter() - started)
        return billed_ms(statistics.median(timings))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(functions, pool.map(one, functions), strict=True))


# --- the simulated deployment ---------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Deployment:
    """What the stack creates, on the embedded AWS under the template's names, and each function's
    environment from the template with its references resolved to the embedded resources."""

    def __init__(self, aws: Any, facts: TemplateFacts, chat_url: Callable[[str], str]) -> None:
        self.aws = aws
        self.facts = facts
        self.tables = aws.create_billing_tables(STAGE)
        self.outbox = aws.create_outbox_table(f"finops-guard-{STAGE}-outbox")
        self.budgets_table, self.alerts_table = aws.create_budget_tables(STAGE)
        self.anomalies_table = aws.create_anomalies_table(STAGE)
        self.team_routes_table = aws.create_team_routes_table(STAGE)  # empty until `finops-guard teams add`
        self.topic_arns = {name: aws.client("sns").create_topic(Name=name)["TopicArn"] for name in facts.topics}
        self.buckets: dict[str, str] = {}  # the template's logical id -> its embedded bucket
        self.chat_url = chat_url
        self.secret_names = [str(p["Properties"]["Name"]) for p in facts.resources.values()
                             if p["Type"] == "AWS::SecretsManager::Secret"]  # fmt: skip
        for name in self.secret_names:
            if name.endswith("-webhook-url"):
                value = chat_url("/finance" if "/finance-" in name else "/teams")
            elif name.endswith("stripe-webhook-secret"):
                from devtools.stripe_events import TEST_SECRET

                value = TEST_SECRET
            else:  # the API key: CDK's generated placeholder until an operator puts an rk_ key
                value = secrets_module.token_urlsafe(24)
            aws.put_secret(name, value)
        self.environments = {name: self.environment_of(f) for name, f in facts.functions.items()}

    def _resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        resource = self.facts.resources[target]
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            return str(props["TableName"])
        if resource["Type"] == "AWS::SNS::Topic":
            return str(self.topic_arns[props["TopicName"]])
        if resource["Type"] == "AWS::S3::Bucket":
            return self._bucket(target)
        if resource["Type"] == "Custom::AnomalyServicesMonitor" and "Fn::GetAtt" in value:
            # What the deploy-setup function answers: the monitor's ARN, its start (before the month: the
            # model is done learning, as in a month of steady use).
            return {"MonitorArn": f"arn:aws:ce::123456789012:anomalymonitor/{target.lower()}",
                    "Since": MONITOR_SINCE.isoformat()}[value["Fn::GetAtt"][1]]  # fmt: skip
        raise ValueError(f"cannot resolve {value} ({resource['Type']})")

    def _bucket(self, logical_id: str) -> str:
        """One embedded bucket per template bucket a function names (export, chargeback), versioned
        like the template's, named after the construct (`...-attributionchargebackbucket`)."""
        if logical_id not in self.buckets:
            construct = re.sub(r"[0-9A-F]{8}$", "", logical_id).lower()
            self.buckets[logical_id] = self.aws.create_export_bucket(f"finops-guard-{STAGE}-{construct}"[:63])
        return self.buckets[logical_id]

    def environment_of(self, function: FunctionFacts) -> dict[str, str]:
        return {key: self._resolve(value) for key, value in function.environment.items()}

    def route_teams(self, teams: Sequence[str], now: datetime) -> list[str]:
        """What `finops-guard teams add <team> --teams-secret ...` leaves: per team a Teams webhook
        secret under the team prefix (the operator creates it; it is not in the template) and a route
        by the team tag alone (no accounts). Returns the secrets' names."""
        from finops_guard.costs.adapters.team_routes import TeamRoutesTable
        from finops_guard.costs.teams import TeamRoute, team_secret_prefix

        routes = TeamRoutesTable(self.team_routes_table, self.aws.client("dynamodb"))
        names = []
        for team in teams:
            name = f"{team_secret_prefix(STAGE)}{team}"
            self.aws.put_secret(name, self.chat_url(f"/teams/{team}"))
            routes.put(TeamRoute(team, teams_secret=name), now)
            names.append(name)
        return names


def scheduled_event(schedule: ScheduleFacts, at: datetime) -> dict[str, Any]:
    return dict(json.loads(schedule.payload.replace("<aws.scheduler.scheduled-time>", _iso(at))))


# --- scenario A: reports, budgets, anomalies (and the idle billing machinery) ---------------------


ACCOUNT = "111111111111"


def _one_account() -> dict[str, str]:
    from finops_guard.costs.mock_data import ACCOUNTS

    return {ACCOUNT: ACCOUNTS[ACCOUNT]}


def budget_documents(as_of: date) -> list[dict[str, Any]]:
    """Five budgets over two scope kinds (the account, four services), sized against the synthetic
    account's own month so that thresholds cross during the month, as they would in use."""
    from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
    from finops_guard.costs.budget_guard import evaluate
    from finops_guard.costs.budgets import parse_budget
    from finops_guard.costs.mock_data import SERVICES, synthetic_query_pages

    def month_actual(scope: dict[str, Any]) -> Decimal:
        probe = parse_budget({"id": "probe", "amount": "1", "currency": "USD", "scope": scope})
        query = plan_queries([probe], as_of, 28)[0]
        costs = collect_budget_costs(query, synthetic_query_pages(query.request(), accounts=_one_account()), as_of)
        return evaluate(costs["probe"], as_of).actual

    plans: list[tuple[str, dict[str, Any], Decimal, dict[str, Any]]] = [
        ("account", {"account": [ACCOUNT]}, Decimal("0.95"),
         {"notify": ["teams", "email"], "enforce_hard_limit": True}),
        ("compute", {"service": [SERVICES[0][0]]}, Decimal("1.10"), {"notify": ["teams"]}),
        ("database", {"service": [SERVICES[1][0]]}, Decimal("1.40"), {"notify": ["teams"]}),
        ("storage", {"service": [SERVICES[2][0]]}, Decimal("3"), {"notify": ["teams"]}),
        ("kubernetes", {"service": [SERVICES[3][0]]}, Decimal("0.85"), {"notify": ["teams", "email"]}),
    ]  # fmt: skip
    return [
        {"id": budget_id, "amount": str((month_actual(scope) * factor).quantize(Decimal(1))), "currency": "USD",
         "scope": scope, **extra}
        for budget_id, scope, factor, extra in plans
    ]  # fmt: skip


def anomaly_bodies(anomaly_id: str, impact: Decimal, when: datetime) -> list[str]:
    """The same anomaly as Cost Anomaly Detection sends it both ways (SNS notification, EventBridge
    event): in us-east-1 the subscription and the rule both deliver to the inbox."""
    sns = json.loads((ROOT / "events" / "anomaly_sns_notification.json").read_text())
    bridge = json.loads((ROOT / "events" / "anomaly_eventbridge.json").read_text())
    message = json.loads(sns["Message"])
    for detail in (message, bridge["detail"]):
        detail["anomalyId"] = anomaly_id
        detail["impact"]["totalImpact"] = float(impact)
        detail["impact"]["maxImpact"] = float(impact)
        detail["rootCauses"] = [dict(r, linkedAccount=ACCOUNT) for r in detail["rootCauses"]]
    sns["Message"] = json.dumps(message)
    sns["Timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    bridge["time"] = _iso(when)
    return [json.dumps(sns), json.dumps(bridge)]


Answer = tuple[Any, Callable[[], list[dict[str, Any]]]]  # (the request, or a key naming it; its pages)


class CostAnswers:
    """GetCostAndUsage answers on the embedded AWS. moto answers a request body it has not seen with
    the next queued page and one it has seen with the same answer again, so each distinct request is
    queued once, in the order the handler asks, just before the run that asks it (later
    configurations of the same month are answered from moto's memory). A queued page nobody asked
    for would answer the next new request instead: `check` reports and drops it."""

    def __init__(self, aws: Any, queued: Callable[[], list[Any]] | None = None) -> None:
        self.aws = aws
        self.queued = queued or _moto_cost_and_usage_queue
        self.seeded: set[str] = set()
        self.problems: list[str] = []

    def seed(self, answers: Iterable[Answer]) -> None:
        pages: list[dict[str, Any]] = []
        for request, answer in answers:
            key = json.dumps(request, sort_keys=True, default=str)
            if key not in self.seeded:
                self.seeded.add(key)
                pages += answer()
        if pages:
            self.aws.seed_cost_and_usage(pages)

    def check(self, run: str) -> None:
        queue = self.queued()
        if queue:
            self.problems.append(f"{run}: {len(queue)} seeded Cost Explorer answer(s) never asked for")
            queue.clear()


def _moto_cost_and_usage_queue(account: str = "123456789012") -> list[Any]:
    """The embedded Cost Explorer's queue of seeded answers (moto runs in this process)."""
    from moto.ce.models import ce_backends

    queue: list[Any] = ce_backends[account]["global"].cost_usage_results_queue
    return queue


def _synthetic(request: dict[str, Any]) -> Answer:
    from finops_guard.costs.mock_data import synthetic_query_pages

    return request, partial(synthetic_query_pages, request, accounts=_one_account())


def attribution_dimensions(env: Mapping[str, str]) -> tuple[Any, ...]:
    """The AttributionDimensions a function's environment configures, in order."""
    from finops_guard.costs.teams import parse_dimensions

    specs = [d for d in env.get("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "").split(",") if d.strip()]
    return tuple(parse_dimensions(specs))


def weekly_answers(at: datetime, dimensions: Sequence[Any]) -> list[Answer]:
    """The weekly report's requests in its order: the organisation's costs, then one per dimension."""
    from finops_guard.core.periods import report_window
    from finops_guard.costs.attribution import attribution_request
    from finops_guard.costs.mock_data import synthetic_pages

    window = report_window(at)

    def organisation() -> list[dict[str, Any]]:
        return list(synthetic_pages(window.query_start, window.query_end, accounts=_one_account()))

    return [(("weekly", window.query_start, window.query_end), organisation)] + [
        _synthetic(attribution_request(d, window.query_start, window.query_end, "DAILY")) for d in dimensions
    ]


def chargeback_answers(at: datetime, dimensions: Sequence[Any], timezone: str) -> list[Answer]:
    """The chargeback's requests: last month, one per dimension."""
    from finops_guard.costs.chargeback import chargeback_request, month_before

    month = month_before(at, timezone)
    return [_synthetic(chargeback_request(d, month)) for d in dimensions]


# Attribution switched off (not deployable: attributionDimensions takes 1 to 3): the weekly report
# without its attribution requests, and no team routing in the posting functions.
NO_ATTRIBUTION = {name: "" for name in ("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "FINOPSGUARD_TEAM_DIMENSION",
                                        "FINOPSGUARD_TEAM_ROUTES_TABLE", "FINOPSGUARD_TEAM_SECRET_PREFIX")}  # fmt: skip
NO_ATTRIBUTION_LABEL = "A-no-attribution"
ROUTED_TEAMS = ("platform", "data")  # scenario B: two of the synthetic org's Team tag values get a channel


def run_reports(
    sim: Simulation, answers: CostAnswers, *, overrides: Mapping[str, str] | None = None, chargeback: bool = True
) -> list[Invocation]:
    """Weekly reports, the daily budget guard, the monthly chargeback (the 1st, last month) and
    anomaly alerts, at their scheduled times. `overrides`: environment changes for all of them."""
    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budget_costs import plan_queries
    from finops_guard.costs.budgets import parse_budgets
    from finops_guard.costs.forecast import DEFAULT_LOOKBACK

    from devtools.sqs_events import sqs_event

    aws, start = sim.aws, sim.month_start
    documents = budget_documents(date(MONTH[0], MONTH[1], 28))
    budgets = parse_budgets(documents)
    BudgetTable(sim.deployment.budgets_table, aws.client("dynamodb")).put_many(budgets, now=start)
    first = len(sim.lambdas.records)
    scheduled = ("weekly-report", "budget-guard", *(("chargeback",) if chargeback else ()))
    jobs: list[tuple[datetime, str, ScheduleFacts | None, Any]] = []
    for spec in sim.facts.schedules:
        if spec.function in scheduled:
            jobs += [(at, spec.function, spec, None) for at in sim.runs(spec)]
    sightings = [  # (day, hour, anomaly, impact): four anomalies, one grows by 60 %, one is seen again unchanged
        (3, 7, "a1", Decimal(150)), (8, 14, "a2", Decimal(420)), (12, 6, "a2", Decimal(672)),
        (12, 20, "a3", Decimal(230)), (19, 9, "a3", Decimal(230)), (25, 11, "a4", Decimal(980)),
    ]  # fmt: skip
    for day, hour, anomaly, impact in sightings:
        seen = datetime(MONTH[0], MONTH[1], day, hour, tzinfo=UTC)
        if sim.within(seen):
            jobs.append((seen, "anomaly-alerts", None, (anomaly, impact)))
    for at, function, schedule, detail in sorted(jobs, key=lambda job: job[0]):
        env = {**sim.lambdas.environments[function], **(overrides or {})}
        extra = {"scheduler.invocation": Decimal(1)}
        if function == "weekly-report":
            answers.seed(weekly_answers(at, attribution_dimensions(env)))
        elif function == "budget-guard":
            answers.seed(_synthetic(q.request()) for q in plan_queries(budgets, at.date() - timedelta(days=1),
                                                                        DEFAULT_LOOKBACK))  # fmt: skip
        elif function == "chargeback":
            dimensions = attribution_dimensions(env)
            answers.seed(chargeback_answers(at, dimensions, env["FINOPSGUARD_TIMEZONE"]))
            extra["s3.get"] = Decimal(len(dimensions))  # assumption: each CSV is downloaded once through its link
        if schedule is not None:
            sim.lambdas.invoke_async(function, scheduled_event(schedule, at), at=at, extra=extra, env=overrides)
            answers.check(f"{function} {_iso(at)}")
            continue
        anomaly, impact = detail
        bodies = anomaly_bodies(f"{anomaly}-e1b2c3d4-5f60-4718-8a9b", impact, at)
        # Delivery to the inbox: SNS publish by Cost Anomaly Detection (billed to the topic owner, its
        # key asked for a data key), SNS->SQS and EventBridge->SQS sends, and the poller's one delete.
        extra = {"sns.publish": Decimal(1), "kms.request": Decimal(1), "sqs.request": Decimal(len(bodies) + 1)}
        sim.lambdas.invoke("anomaly-alerts", sqs_event(bodies), at=at, cold=True, extra=extra, env=overrides)
    return sim.lambdas.records[first:]


def clear_report_state(sim: Simulation) -> None:
    """Forget what the report functions remember (messages kept in the outbox, budget thresholds
    alerted, anomalies seen), so the next configuration's month starts as a fresh deployment's
    would. Harness requests: not counted."""
    dynamodb = sim.aws.client("dynamodb")
    deployment = sim.deployment
    for table in (deployment.outbox, deployment.alerts_table, deployment.anomalies_table):
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
        deletes = [{"DeleteRequest": {"Key": {k: item[k] for k in keys}}} for item in items]
        for i in range(0, len(deletes), 25):
            batch: dict[str, Any] = {table: deletes[i : i + 25]}
            while batch:
                batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


# --- scenario C: savings recommendations (opt-in) ---------------------------------------------------

SAVINGS_FUNCTION = "savings-refresh"
SAVINGS_CONTEXT = {"savingsRecommendations": True, "savingsPlansKpi": True}  # both opt-in, off by default
# Cost Explorer's Savings Plans answers (moto has none): 62 % of eligible spend covered, 97 % used.
SAVINGS_PLANS_ANSWERS: dict[str, dict[str, Any]] = {
    "GetSavingsPlansCoverage": {"SavingsPlansCoverages": [{
        "Attributes": {}, "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-16"},
        "Coverage": {"SpendCoveredBySavingsPlans": "620.5", "OnDemandCost": "379.5", "TotalCost": "1000",
                     "CoveragePercentage": "62.05"}}]},
    "GetSavingsPlansUtilization": {"SavingsPlansUtilizationsByTime": [], "Total": {
        "Utilization": {"TotalCommitment": "640", "UsedCommitment": "620.5", "UnusedCommitment": "19.5",
                        "UtilizationPercentage": "96.95"},
        "Savings": {"NetSavings": "210.25", "OnDemandCostEquivalent": "850.25"}}},
}  # fmt: skip


def opted_in_facts() -> tuple[TemplateFacts | None, str]:
    """The template synthesized with SAVINGS_CONTEXT, or None and why it could not be."""
    try:
        return TemplateFacts.from_template(synthesize_template(SAVINGS_CONTEXT)), ""
    except Exception as error:  # noqa: BLE001 - scenario C is optional: skipped, saying why
        return None, f"synthesis failed: {type(error).__name__}: {error}"[:300]


def with_savings_refresh(
    facts: TemplateFacts, opted_in: TemplateFacts | None
) -> tuple[TemplateFacts, ScheduleFacts | None]:
    """`facts` plus the savings refresh function (and the resources its environment names) of the
    template synthesized with SAVINGS_CONTEXT, and its schedule; no schedule when there is none."""
    if opted_in is None:
        return facts, None
    schedule = next((s for s in opted_in.schedules if s.function == SAVINGS_FUNCTION), None)
    if SAVINGS_FUNCTION not in opted_in.functions or schedule is None:
        return facts, None
    functions = {**facts.functions, SAVINGS_FUNCTION: opted_in.functions[SAVINGS_FUNCTION]}
    return replace(facts, functions=functions, resources={**opted_in.resources, **facts.resources}), schedule


@contextmanager
def savings_plans_answered() -> Iterator[None]:
    """Cost Explorer clients created meanwhile answer GetSavingsPlansCoverage/-Utilization from
    SAVINGS_PLANS_ANSWERS, the way botocore's Stubber answers (no HTTP; the meter still counts them)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    original = botocore.session.Session.create_client

    def answer(model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        return AWSResponse("", 200, {}, None), copy.deepcopy(SAVINGS_PLANS_ANSWERS[model.name])

    def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        if client.meta.service_model.service_name == "ce":
            for operation in SAVINGS_PLANS_ANSWERS:
                client.meta.events.register(f"before-call.cost-explorer.{operation}", answer)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield
    finally:
        botocore.session.Session.create_client = original


def run_savings(
    sim: Simulation, answers: CostAnswers, schedule: ScheduleFacts, weekly_overrides: Mapping[str, str]
) -> list[Invocation]:
    """Scenario C's runs: the daily savings refresh (Cost Optimization Hub answered by botocore's
    Stubber with the two documented sample pages: 4 recommendations) and the weekly reports with
    `weekly_overrides` (reading the recommendations table and the Savings Plans KPI). On the 3rd an
    operator accepts and implements one item (CLI requests, not counted): its ROI costs one request
    14 days later."""
    from botocore.stub import Stubber
    from finops_guard.costs import runtime
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
    from finops_guard.costs.savings import (
        ACCEPTED,
        IMPLEMENTED,
        change_status,
        roi_due,
        roi_request,
        roi_unmeasurable_reason,
    )

    from devtools.hub_stub import fake_client, hub_page, stub_listing

    table_name = sim.lambdas.environments[SAVINGS_FUNCTION]["FINOPSGUARD_RECOMMENDATIONS_TABLE"]
    weekly = next(s for s in sim.facts.schedules if s.function == "weekly-report")
    jobs = [(at, SAVINGS_FUNCTION, schedule) for at in sim.runs(schedule)]
    jobs += [(at, "weekly-report", weekly) for at in sim.runs(weekly)]
    pages = [hub_page("page1"), hub_page("page2")]
    table = RecommendationsTable(table_name, sim.aws.client("dynamodb"))
    hub = fake_client("cost-optimization-hub")  # created under the meter: its requests are counted
    first = len(sim.lambdas.records)
    implemented: str | None = None
    original = runtime.cost_optimization_hub_client
    runtime.cost_optimization_hub_client = lambda: hub  # type: ignore[assignment]
    try:
        with Stubber(hub) as stubber, savings_plans_answered():
            for at, function, spec in sorted(jobs, key=lambda job: job[0]):
                overrides = weekly_overrides if function == "weekly-report" else {}
                env = {**sim.lambdas.environments[function], **overrides}
                if function == "weekly-report":
                    answers.seed(weekly_answers(at, attribution_dimensions(env)))
                else:
                    stub_listing(stubber, *pages)
                    rec = table.get(implemented) if implemented else None
                    if rec is not None and roi_due(rec, at.date() - timedelta(days=1)):
                        answers.seed([_synthetic(roi_request(rec))])
                sim.lambdas.invoke_async(function, scheduled_event(spec, at), at=at,
                                         extra={"scheduler.invocation": Decimal(1)}, env=overrides)  # fmt: skip
                answers.check(f"{function} {_iso(at)}")
                try:
                    stubber.assert_no_pending_responses()
                except AssertionError:  # they would answer the next run's listing: stop here, say so
                    answers.problems.append(f"{function} {_iso(at)}: Cost Optimization Hub pages left unread")
                    break
                if function == SAVINGS_FUNCTION and implemented is None and at.day >= 3:
                    implemented = next(r.rec_id for r in table.all() if roi_unmeasurable_reason(r) is None)
                    change_status(table, implemented, ACCEPTED, now=at + timedelta(hours=3), by="cli:bench")
                    change_status(table, implemented, IMPLEMENTED, now=at + timedelta(hours=4), by="cli:bench",
                                  implemented_on=at.date())  # fmt: skip
    finally:
        runtime.cost_optimization_hub_client = original
    return sim.lambdas.records[first:]


def run_idle_billing(sim: Simulation, dunning_sample_every: int = 10) -> list[Invocation]:
    """The billing functions of a deployment that never hears from Stripe: the hourly dunning sender
    (every `dunning_sample_every`-th run executed, weighted), the daily reconciliation (the API key
    secret still holds its placeholder) and the weekly export."""
    first = len(sim.lambdas.records)
    for schedule in sim.facts.schedules:
        runs = sim.runs(schedule)
        if schedule.function == "dunning-sender":
            for i in range(0, len(runs), dunning_sample_every):
                represented = runs[i : i + dunning_sample_every]
                sim.lambdas.invoke_async(
                    "dunning-sender", scheduled_event(schedule, runs[i]), at=runs[i],
                    weight=Decimal(len(represented)), hours=[sim.lambdas.hour(r) for r in represented],
                    extra={"scheduler.invocation": Decimal(1)},
                )  # fmt: skip
        elif schedule.function in ("reconciliation", "billing-admin"):
            for at in runs:
                sim.lambdas.invoke_async(schedule.function, scheduled_event(schedule, at), at=at,
                                         extra={"scheduler.invocation": Decimal(1)})  # fmt: skip
    return sim.lambdas.records[first:]


# --- scenario B: 10,000 Stripe events a month ------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    group: int  # the customer group (a renamed copy of billing_month's five customers)
    index: int  # the event's position in billing_month's list
    at: float  # when Stripe delivers it (epoch seconds)
    event: dict[str, Any] | None  # built for sampled groups only


def _rename(event: dict[str, Any], group: int) -> dict[str, Any]:
    """A customer group's own ids: every demo id carries q<group>q (so the ledger can be replicated)."""
    text = json.dumps(event)
    text = (
        text.replace("demo", f"q{group:03d}q").replace("Demo", f"Q{group:03d}Q").replace("cus_", f"cus_q{group:03d}q")
    )
    return dict(json.loads(text))


def stripe_month(groups: int, sampled: int, seed: int = 7) -> list[Delivery]:
    """`groups` x billing_month's 72 events over November, each group shifted by 0-6 days and each
    event by up to an hour; a late or duplicate delivery keeps arriving after the event it follows."""
    from devtools.billing_month import month_of_events

    template = month_of_events()
    deliveries: list[Delivery] = []
    for group in range(groups):
        rng = random.Random(f"{seed}:{group}")
        offset = rng.randrange(0, 6 * 86400)
        last_for_object: dict[str, float] = {}
        for index, event in enumerate(template):
            obj = event["data"]["object"]
            at = event["created"] + offset + rng.randrange(0, 3600)
            key = str(obj.get("id") or obj.get("object"))
            if at <= last_for_object.get(key, 0):
                at = last_for_object[key] + 60  # Stripe delivered it after the one before it in the list
            last_for_object[key] = at
            built = None
            if group < sampled:
                built = _rename(copy.deepcopy(event), group)
                built["created"] += offset
                transitions = built["data"]["object"].get("status_transitions") or {}
                if transitions.get("paid_at"):
                    transitions["paid_at"] += offset
                if built["type"] == "credit_note.created":
                    built["data"]["object"]["created"] += offset
            deliveries.append(Delivery(group, index, float(at), built))
    return sorted(deliveries, key=lambda d: (d.at, d.group, d.index))


class StreamTail:
    """New records of the billing alerts table's stream since the last look (harness reads, not counted)."""

    def __init__(self, aws: Any, table: str) -> None:
        self.streams = aws.client("dynamodbstreams")
        self.arn = aws.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.after: str | None = None

    def new_records(self) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"StreamArn": self.arn, "ShardId": self.shard}
        if self.after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.after)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator)
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator") if page["Records"] else None
        if records:
            self.after = records[-1]["dynamodb"]["SequenceNumber"]
        return [{**r, "eventSourceARN": self.arn} for r in records]


def _access_log_bytes() -> int:
    """One API Gateway access log line in the stage's format, with typical values."""
    from infra.constructs.billing_api import ACCESS_LOG_FIELDS

    sample = {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "ip": "3.18.12.63", "httpMethod": "POST",
              "resourcePath": "/stripe/webhook", "status": "200", "responseLength": "48",
              "requestTime": "17/Nov/2026:09:00:00 +0000", "integrationLatency": "38"}  # fmt: skip
    line = json.dumps({k: sample.get(k, "-") for k in ACCESS_LOG_FIELDS}, separators=(",", ":"))
    return log_ingest_bytes([line])


def run_stripe_month(
    sim: Simulation,
    fake: Any,
    take_events: Callable[[], list[dict[str, Any]]],
    sample_groups: int = SAMPLE_GROUPS,
    reconciliations: int = 3,
) -> tuple[list[Invocation], dict[str, Any]]:
    """The webhook month (sampled groups, weighted), the notifier on new billing alerts, and the hourly
    dunning sender interleaved with them; then the reconciliation, weekly export and admin calls on
    the ledger replicated to full size."""
    from devtools import stripe_events as se

    lambdas, start = sim.lambdas, sim.month_start
    groups = math.ceil(STRIPE_EVENTS_PER_MONTH / 72)
    deliveries = stripe_month(groups, sample_groups)
    group_weight = {g: Decimal(len(range(g, groups, sample_groups))) for g in range(sample_groups)}
    full_cold = dict(zip(((d.group, d.index, d.at) for d in deliveries),
                         cold_starts([d.at for d in deliveries]), strict=True))  # fmt: skip
    replicas: dict[tuple[int, int], list[float]] = defaultdict(list)
    for d in deliveries:
        replicas[(d.group % sample_groups, d.index)].append(d.at)
    access_log = Decimal(_access_log_bytes()) / GIB
    api_extra = {"apigateway.request": Decimal(1), "logs.ingest": access_log, "logs.storage": access_log}
    tail = StreamTail(sim.aws, sim.deployment.tables["alerts"])
    first = len(lambdas.records)
    failing: set[str] = set()

    def hours_of(times: Iterable[float]) -> list[int]:
        return [int((t - start.timestamp()) // 3600) for t in times]

    def notify(at: datetime, weight: Decimal, hours: Iterable[int]) -> None:
        records = tail.new_records()
        for i in range(0, len(records), 10):  # the stream trigger's batch size
            lambdas.invoke("billing-notifier", {"Records": records[i : i + 10]}, at=at, cold=True, weight=weight,
                           hours=hours)  # fmt: skip

    def deliver(event: dict[str, Any], at: datetime, *, cold: bool, weight: Decimal, hours: Iterable[int]) -> None:
        if event["type"] == "invoice.payment_failed":
            invoice = event["data"]["object"]
            if invoice["id"] not in failing and invoice["id"] not in fake.invoices:
                failing.add(invoice["id"])
                fake.add_customer(invoice["customer"], email=f"ap@{invoice['customer'][4:].lower()}.example",
                                  name="Customer Ltd", phone="+15555550123")  # fmt: skip
                fake.add_invoice(customer=invoice["customer"], currency=invoice["currency"],
                                 amount_minor=invoice["amount_due"], status="open", invoice_id=invoice["id"],
                                 created=event["created"], due_date=event["created"] + 14 * 86400)  # fmt: skip
        hours = list(hours)
        record = lambdas.invoke("stripe-webhook", se.signed_request(event), at=at, cold=cold, weight=weight,
                                hours=hours, extra=api_extra)  # fmt: skip
        if sim.deployment.tables["alerts"] in record.tables_written:
            notify(at, weight, hours)

    clock = [time.perf_counter()]
    dunning = next(s for s in sim.facts.schedules if s.function == "dunning-sender")
    dunning_runs: list[Invocation] = []
    pending = iter(d for d in deliveries if d.event is not None)
    upcoming = next(pending, None)
    for at in sim.runs(dunning):
        dunning_runs += lambdas.invoke_async("dunning-sender", scheduled_event(dunning, at), at=at,
                                             extra={"scheduler.invocation": Decimal(1)})  # fmt: skip
        while upcoming is not None and upcoming.at < at.timestamp() + 3600:
            assert upcoming.event is not None
            slot = (upcoming.group, upcoming.index)
            deliver(upcoming.event, datetime.fromtimestamp(upcoming.at, UTC), cold=full_cold[(*slot, upcoming.at)],
                    weight=group_weight[upcoming.group], hours=hours_of(replicas[slot]))  # fmt: skip
            upcoming = next(pending, None)
    # Dunning: runs with due steps happen ~group_weight times as often in the full month (capped by the
    # schedule); the rest are idle runs, each like the sample's idle runs.
    busy = [r for r in dunning_runs if r.result and any(r.result.get(k) for k in ("sent", "skipped", "failed"))]
    idle = [r for r in dunning_runs if r not in busy]
    scale = Decimal(groups) / sample_groups
    busy_full = min(Decimal(len(dunning_runs)), Decimal(len(busy)) * scale)
    for r in busy:
        r.weight = busy_full / len(busy)
    for r in idle:
        r.weight = (Decimal(len(dunning_runs)) - busy_full) / len(idle)
    clock.append(time.perf_counter())
    storage = table_storage(sim.aws, sim.facts, scale=scale)
    sample_events = sum(1 for d in deliveries if d.event is not None)
    full_events = len(deliveries)
    # Full size for the jobs that read the whole ledger: replicate the sampled groups' rows. Those
    # harness writes are not billing alerts anyone raised: their stream records are skipped.
    replicate_billing(sim, fake, groups, sample_groups)
    tail.new_records()
    clock.append(time.perf_counter())
    jobs_extra = {"scheduler.invocation": Decimal(1)}
    for schedule in sim.facts.schedules:
        runs = sim.runs(schedule)
        if schedule.function == "reconciliation":
            measured = runs[-reconciliations:]
            share = Decimal(len(runs)) / len(measured)
            chunk = math.ceil(len(runs) / len(measured))
            for n, at in enumerate(measured):
                represented = runs[n * chunk : (n + 1) * chunk]
                lambdas.invoke_async("reconciliation", scheduled_event(schedule, at), at=at, weight=share,
                                     hours=[lambdas.hour(r) for r in represented], extra=jobs_extra)  # fmt: skip
                notify(at, share, [lambdas.hour(r) for r in represented])
        elif schedule.function == "billing-admin":
            lambdas.invoke_async("billing-admin", scheduled_event(schedule, runs[-1]), at=runs[-1],
                                 weight=Decimal(len(runs)), hours=[lambdas.hour(r) for r in runs],
                                 extra=jobs_extra)  # fmt: skip
    clock.append(time.perf_counter())
    for at, event, weight, hours in admin_calls(sim, fake):
        lambdas.invoke("billing-admin", event, at=at, cold=True, weight=weight, hours=hours, extra=api_extra)
        for stripe_event in take_events():  # Stripe's events about what the call did, delivered after it
            deliver(stripe_event, at, cold=False, weight=weight, hours=hours)
    clock.append(time.perf_counter())
    figures = {
        "seconds": dict(
            zip(
                ("month", "replication", "jobs", "admin"),
                (round(b - a, 1) for a, b in zip(clock, clock[1:], strict=False)),
                strict=False,
            )
        ),
        "groups": groups,
        "sample_groups": sample_groups,
        "events_full": full_events,
        "events_sampled": sample_events,
        "scale": str((Decimal(full_events) / sample_events).quantize(Decimal("0.01"))),
        "webhook_cold_share": str((Decimal(sum(full_cold.values())) / len(full_cold)).quantize(Decimal("0.001"))),
        "dunning_busy_runs_sampled": len(busy),
        "dunning_busy_runs_month": str(busy_full.quantize(Decimal("0.1"))),
        "storage": storage,
    }
    return lambdas.records[first:], figures


def replicate_billing(sim: Simulation, fake: Any, groups: int, sample_groups: int = SAMPLE_GROUPS) -> None:
    """Copy each sampled group's ledger, objects and alerts rows to the groups it stands for, and
    give the loopback Stripe the invoices the ledger booked (harness writes, not counted)."""
    dynamodb = sim.aws.client("dynamodb")
    tables = sim.deployment.tables
    for role in ("ledger", "objects", "alerts", "dunning"):
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=tables[role]):
            items.extend(page["Items"])
        copies = []
        for item in items:
            text = json.dumps(item)
            found = re.search(r"q(\d{3})q", text)
            if not found:
                continue
            group = int(found.group(1))
            for target in range(group + sample_groups, groups, sample_groups):
                copies.append(json.loads(text.replace(f"q{group:03d}q", f"q{target:03d}q")
                                         .replace(f"Q{group:03d}Q", f"Q{target:03d}Q")))  # fmt: skip
        for i in range(0, len(copies), 25):
            batch = {tables[role]: [{"PutRequest": {"Item": item}} for item in copies[i : i + 25]]}
            while batch:
                batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    booked: dict[str, list[Any]] = defaultdict(lambda: ["", "", 0, 0])
    for page in dynamodb.get_paginator("scan").paginate(TableName=tables["ledger"]):
        for entry in page["Items"]:
            invoice_id = entry.get("invoice_id", {}).get("S")
            if not invoice_id or entry.get("kind", {}).get("S") not in ("subscription", "booking_fee"):
                continue
            row = booked[invoice_id]
            row[0], row[1] = entry["customer_id"]["S"], entry["currency"]["S"]
            row[2] += int(entry["amount_minor"]["N"])
            occurred = datetime.fromisoformat(entry["occurred_at"]["S"].replace("Z", "+00:00"))
            row[3] = int(occurred.timestamp())
    for invoice_id, (customer, currency, amount, created) in booked.items():
        if invoice_id not in fake.invoices:
            fake.add_invoice(customer=customer, currency=currency.lower(), amount_minor=amount, status="paid",
                             created=created, invoice_id=invoice_id)  # fmt: skip


def admin_calls(sim: Simulation, fake: Any) -> list[tuple[datetime, dict[str, Any], Decimal, list[int]]]:
    """A month of finance admin API use, 20 calls at office hours: 8 summaries, 4 CSV exports, 4 bot
    invoices, 2 portal links, an alert resent and one retried. Calls of one kind cost alike, so each
    kind runs once or twice and is weighted: (time, API Gateway event, weight, hours represented)."""
    dynamodb = sim.aws.client("dynamodb")
    open_alerts = [
        item["alert_id"]["S"]
        for page in dynamodb.get_paginator("scan").paginate(TableName=sim.deployment.tables["alerts"])
        for item in page["Items"]
        if item.get("status", {}).get("S") == "open" and item.get("invoice_id", {}).get("S") in fake.invoices
    ]
    customer = next(iter(fake.customers))

    def call(method: str, resource: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return {"httpMethod": method, "resource": resource, "path": resource.replace("{id}", extra.get("id", "")),
                "headers": {}, "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
                "pathParameters": {"id": extra["id"]} if "id" in extra else None,
                "queryStringParameters": extra.get("query"),
                "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/finance-lead"}}}  # fmt: skip

    def invoice(i: int) -> dict[str, Any]:
        return call("POST", "/invoices", {"request_id": f"bench-invoice-{i}", "customer": customer, "currency": "EUR",
                                          "amount": "1250.00", "description": "Workshop"})  # fmt: skip

    kinds: list[tuple[int, list[dict[str, Any]]]] = [  # (calls a month, the ones executed)
        (8, [call("GET", "/billing/summary")] * 2),
        (4, [call("GET", "/billing/export.csv", query={"month": "2026-11"})]),
        (4, [invoice(1), invoice(2)]),
        (2, [call("POST", "/billing/portal-session", {"customer": customer})]),
    ]
    if open_alerts:
        kinds += [(1, [call("POST", "/billing/alerts/{id}/resend", id=open_alerts[0])]),
                  (1, [call("POST", "/billing/alerts/{id}/retry", id=open_alerts[-1])])]  # fmt: skip
    days = [d for d in range(2, 31) if date(MONTH[0], MONTH[1], d).isoweekday() <= 5]
    slots = iter(datetime(MONTH[0], MONTH[1], days[i % len(days)], 10 + i % 7, tzinfo=UTC) for i in range(100))
    calls = []
    for per_month, executed in kinds:
        times = [next(slots) for _ in range(per_month)]
        share = math.ceil(per_month / len(executed))
        for n, event in enumerate(executed):
            represented = times[n * share : (n + 1) * share]
            calls.append((represented[0], event, Decimal(per_month) / len(executed),
                          [sim.lambdas.hour(t) for t in represented]))  # fmt: skip
    return calls


def table_storage(aws: Any, facts: TemplateFacts, scale: Decimal = Decimal(1),
                  scaled: Sequence[str] = ("stripe-events", "billing-ledger", "billing-objects", "billing-alerts",
                                           "dunning", "invoice-requests")) -> dict[str, str]:  # fmt: skip
    """Bytes stored per table after the month (items + 100 B each, and again per index entry);
    billing tables multiplied by `scale` (they hold the sampled customer groups)."""
    dynamodb = aws.client("dynamodb")
    sizes: dict[str, str] = {}
    for name in dynamodb.list_tables()["TableNames"]:
        indexes = [
            [k["AttributeName"] for k in index["KeySchema"]]
            for index in dynamodb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
        ]
        total = 0
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                size = item_size(item) + DYNAMODB_ITEM_OVERHEAD_BYTES
                total += size + sum(size for keys in indexes if all(k in item for k in keys))
        factor = scale if any(name.endswith(s) for s in scaled) else Decimal(1)
        sizes[name] = str(Decimal(total) * factor)
    return sizes


# --- the month ------------------------------------------------------------------------------------


class Simulation:
    def __init__(
        self, aws: Any, facts: TemplateFacts, deployment: Deployment, lambdas: Lambdas, days: int | None = None
    ) -> None:
        self.aws = aws
        self.facts = facts
        self.deployment = deployment
        self.lambdas = lambdas
        self.month_start = datetime(MONTH[0], MONTH[1], 1, tzinfo=UTC)
        self.days = days  # None: the whole month; else its first `days` days (the smoke run)

    def within(self, at: datetime) -> bool:
        return self.days is None or at < self.month_start + timedelta(days=self.days)

    def runs(self, schedule: ScheduleFacts) -> list[datetime]:
        return [at for at in runs_in_month(schedule.expression, schedule.timezone, *MONTH) if self.within(at)]


def usage_counts(records: Iterable[Invocation], extra: Mapping[str, Decimal] | None = None) -> dict[str, Decimal]:
    """Weighted units of a scenario's invocations; custom metrics by the hours they were sent in."""
    counts: defaultdict[str, Decimal] = defaultdict(Decimal)
    hours: dict[MetricId, set[int]] = defaultdict(set)
    for record in records:
        for key, quantity in record.units.items():
            counts[key] += Decimal(quantity) * record.weight
        for metric in record.metrics:
            hours[metric].update(record.hours)
    counts["cloudwatch.metric"] = metric_months(hours)
    for key, quantity in (extra or {}).items():
        counts[key] += quantity
    return {key: Decimal(value) for key, value in counts.items() if value}


def storage_counts(sizes: Mapping[str, str], pitr_tables: Sequence[str]) -> dict[str, Decimal]:
    stored = sum((Decimal(v) for v in sizes.values()), Decimal(0)) / GIB
    backed_up = sum((Decimal(v) for k, v in sizes.items() if k in pitr_tables), Decimal(0)) / GIB
    return {"dynamodb.storage": stored, "dynamodb.pitr": backed_up}


def _summary(records: Sequence[Invocation]) -> dict[str, Any]:
    by_function: dict[str, dict[str, Any]] = {}
    calls: defaultdict[str, Decimal] = defaultdict(Decimal)
    for r in records:
        row = by_function.setdefault(r.function, {"invocations": Decimal(0), "cold": Decimal(0), "errors": Decimal(0),
                                                  "gb_s": Decimal(0), "executed": 0})  # fmt: skip
        row["invocations"] += r.weight
        row["cold"] += r.weight if r.cold else 0
        row["errors"] += r.weight if r.error else 0
        row["gb_s"] += r.units["lambda.gb_second"] * r.weight
        row["executed"] += 1
        for name, n in r.calls.items():
            calls[name] += Decimal(n) * r.weight
    errors = sorted({f"{r.function}: {r.error}" for r in records if r.error})
    hours: dict[MetricId, set[int]] = defaultdict(set)
    for r in records:
        for metric in r.metrics:
            hours[metric].update(r.hours)
    metrics: dict[str, dict[str, str]] = {}
    metric_hours: dict[str, dict[str, int]] = defaultdict(dict)
    for metric, seen in hours.items():
        label = metric.name + "".join(f"[{k}={v}]" for k, v in metric.dimensions if k != "service")
        metric_hours[metric.function][label] = len(seen)
        row = metrics.setdefault(metric.function, {"metrics": "0", "metric_months": "0"})
        row["metrics"] = str(int(row["metrics"]) + 1)
        row["metric_months"] = str(Decimal(row["metric_months"]) + Decimal(len(seen)) / HOURS_PER_BILLING_MONTH)
    return {
        "metrics": {
            k: {"metrics": v["metrics"], "metric_months": str(Decimal(v["metric_months"]).quantize(Decimal("0.001")))}
            for k, v in sorted(metrics.items())
        },
        "functions": {
            k: {kk: str(v.quantize(Decimal("0.001"))) if isinstance(v, Decimal) else v for kk, v in row.items()}
            for k, row in sorted(by_function.items())
        },  # fmt: skip
        "metric_hours": {k: dict(sorted(v.items())) for k, v in sorted(metric_hours.items())},
        "calls": {k: str(Decimal(v).quantize(Decimal("0.1"))) for k, v in sorted(calls.items())},
        "errors": errors[:5],
    }


def _bill_json(bill: Bill) -> dict[str, Any]:
    return {
        "lines": [
            {"key": line.key, "service": line.price.service, "item": line.price.item, "unit": line.price.unit,
             "quantity": str(line.quantity), "unit_price": str(line.price.unit_price), "usd": str(line.usd),
             "note": line.note}
            for line in bill.lines
        ],
        "usd": str(bill.usd),
        "usd_after_free_tier": str(bill.usd_after_free_tier),
    }  # fmt: skip


def measure(scale: Scale = FULL) -> dict[str, Any]:
    """Both scenarios' monthly bills (money as decimal strings) and what they were computed from."""
    for key in [k for k in os.environ if k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))]:
        del os.environ[key]
    started = time.perf_counter()
    facts = TemplateFacts.from_template(synthesize_template())
    opted_in, not_synthesized = opted_in_facts()
    synth_s = time.perf_counter() - started

    from devtools.chat_recorder import ChatRecorder
    from devtools.embedded_aws import EmbeddedAws
    from devtools.moto_rollback import item_level_rollback
    from devtools.stripe_fake import StripeFake

    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    meter = AwsMeter(MotoTables(), facts.topics)
    month_start = datetime(MONTH[0], MONTH[1], 1, tzinfo=UTC)
    hours_in_month = len(runs_in_month("rate(1 hour)", "UTC", *MONTH))

    def chat_bytes() -> int:
        return sum(len(r.body) + len(r.path) + 16 + sum(len(k) + len(v) + 4 for k, v in r.headers.items())
                   for r in chat.received)  # fmt: skip

    fake = StripeFake(now=lambda: int(month_start.timestamp()) + 29 * 86400).start()
    stripe_events: list[dict[str, Any]] = []
    fake.on_event(stripe_events.append)

    def take_events() -> list[dict[str, Any]]:
        taken = list(stripe_events)
        stripe_events.clear()
        return taken

    try:
        with aws.activated(), meter.installed(), item_level_rollback():
            sim_facts, savings_schedule = with_savings_refresh(facts, opted_in)
            aws.create_recommendations_table(STAGE)
            deployment = Deployment(aws, sim_facts, chat.url)
            aws.client("ses").verify_email_identity(EmailAddress="billing@finops-guard.example")
            env = {name: {**e, "FINOPSGUARD_STRIPE_API_BASE": fake.base_url}
                   for name, e in deployment.environments.items()}  # fmt: skip
            savings_weekly: dict[str, str] = {}
            if opted_in is not None and savings_schedule is not None:
                opted_weekly = deployment.environment_of(opted_in.functions["weekly-report"])
                savings_weekly = {k: v for k, v in opted_weekly.items() if env["weekly-report"].get(k) != v}
            init_ms = measure_init_ms(sim_facts.functions, env, runs=scale.init_runs)
            lambdas = Lambdas(sim_facts, env, init_ms, meter, chat_bytes, month_start)
            sim = Simulation(aws, sim_facts, deployment, lambdas, days=scale.days)
            answers = CostAnswers(aws)
            t0 = time.perf_counter()
            reports = run_reports(sim, answers)
            idle = run_idle_billing(sim)
            report_storage = table_storage(aws, facts)
            t1 = time.perf_counter()
            clear_report_state(sim)
            bare = run_reports(sim, answers, overrides=NO_ATTRIBUTION, chargeback=False)
            t2 = time.perf_counter()
            clear_report_state(sim)
            savings: list[Invocation] = []
            if savings_schedule is not None:
                savings = run_savings(sim, answers, savings_schedule, savings_weekly)
            savings_storage = table_storage(aws, facts)
            t3 = time.perf_counter()
            clear_report_state(sim)
            team_secrets = deployment.route_teams(ROUTED_TEAMS, month_start - timedelta(days=1))
            team_posts_before = sum(1 for r in chat.received if r.path.startswith("/teams/"))
            routed = run_reports(sim, answers)
            team_posts = sum(1 for r in chat.received if r.path.startswith("/teams/")) - team_posts_before
            routed_storage = table_storage(aws, facts)
            # Scenario B's deployment: the real restricted key and a verified dunning sender.
            key_name = next(n for n in deployment.secret_names if n.endswith("stripe-api-key"))
            aws.client("secretsmanager").put_secret_value(SecretId=key_name, SecretString=fake.api_key)
            for name in ("dunning-sender", "reconciliation", "billing-admin"):
                env[name]["FINOPSGUARD_DUNNING_SENDER_EMAIL"] = "billing@finops-guard.example"
            billing, stripe_figures = run_stripe_month(sim, fake, take_events, scale.sample_groups,
                                                       scale.reconciliations)  # fmt: skip
            t4 = time.perf_counter()
    finally:
        fake.stop()
        chat.stop()
        aws.stop()
    fixed = Bill.from_counts(facts.fixed_counts(hours_in_month), {
        "sqs.request": f"Lambda's SQS pollers, modelled: {SQS_POLLERS} pollers x {facts.sqs_event_sources} queue, "
                       f"one {SQS_LONG_POLL_S} s long poll each, all month",
        "cloudwatch.alarm": f"{facts.counts.get('AWS::CloudWatch::Alarm', 0)} alarms in the template",
    })  # fmt: skip
    savings_facts: dict[str, Any] = {"context": SAVINGS_CONTEXT}
    if opted_in is None or savings_schedule is None:
        savings_facts["skipped"] = not_synthesized or f"that template has no {SAVINGS_FUNCTION} schedule"
    else:
        savings_facts.update(
            weekly_report_env=sorted(savings_weekly),
            fixed=_bill_json(Bill.from_counts(opted_in.fixed_counts(hours_in_month))),
            alarms=opted_in.counts.get("AWS::CloudWatch::Alarm", 0),
            memory_mb=opted_in.functions[SAVINGS_FUNCTION].memory_mb,
            schedule=[savings_schedule.expression, len(runs_in_month(savings_schedule.expression,
                                                                     savings_schedule.timezone, *MONTH))],
        )  # fmt: skip
    recommendations = {k: v for k, v in savings_storage.items() if k.endswith("-recommendations")}
    c_sizes = {**report_storage, **recommendations}
    b_sizes = {**{k: v for k, v in routed_storage.items() if not _is_billing_table(k)},
               **{k: v for k, v in stripe_figures["storage"].items() if _is_billing_table(k)}}  # fmt: skip
    weekly_less = [r for r in reports if r.function != "weekly-report"]  # C replaces A's weekly reports
    scenarios = {}
    for label, records, sizes in (("A", reports + idle, report_storage),
                                  (NO_ATTRIBUTION_LABEL, bare + idle, report_storage),
                                  *([("C", weekly_less + savings + idle, c_sizes)] if savings else []),
                                  ("B", routed + billing, b_sizes)):  # fmt: skip
        counts = usage_counts(records, storage_counts(sizes, facts.pitr_tables))
        unpriced = {k: str(v) for k, v in counts.items() if k not in PRICES}  # a service this table has no price for
        bill = Bill.from_counts({k: v for k, v in counts.items() if k in PRICES})
        scenarios[label] = {**_bill_json(bill), **_summary(records), "unpriced": unpriced,
                            "met": scale == FULL and bill.usd < TARGET_USD}  # fmt: skip
    # Each routed team's webhook secret is a secret the operator creates (not in the template).
    scenarios["B"]["team_secrets"] = _bill_json(Bill.from_counts(
        {"secretsmanager.secret": Decimal(len(team_secrets))},
        {"secretsmanager.secret": f"{len(team_secrets)} routed teams' webhook secrets"}))  # fmt: skip
    return {
        "month": f"{MONTH[0]}-{MONTH[1]:02d}",
        "hours_in_month": hours_in_month,
        "target_usd": str(TARGET_USD),
        "scenarios": scenarios,
        "fixed": {**_bill_json(fixed), "counts": {k: v for k, v in sorted(facts.counts.items())
                                                  if k.split("::")[1] in ("SecretsManager", "KMS", "CloudWatch")}},
        "template": {"memory_mb": {n: f.memory_mb for n, f in facts.functions.items()},
                     "schedules": {s.function: [s.expression, len(sim.runs(s))] for s in facts.schedules},
                     "init_ms": init_ms},
        "attribution": {"dimensions": env["weekly-report"].get("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", ""),
                        "routed_teams": list(ROUTED_TEAMS), "team_cards_posted": team_posts},
        "savings": savings_facts,
        "harness_problems": answers.problems,
        # Every scenario ran, priced every request, and the harness answered every Cost Explorer request.
        "correct": not answers.problems and bool(savings) and all(s["usd"] != "0" and not s["unpriced"]
                                                                 for s in scenarios.values()),
        "smoke": scale != FULL,
        "stripe": {k: v for k, v in stripe_figures.items() if k != "storage"},
        "seconds": {"synth": round(synth_s, 1), "scenario_a": round(t1 - t0, 1),
                    "a_without_attribution": round(t2 - t1, 1), "scenario_c": round(t3 - t2, 1),
                    "scenario_b": round(t4 - t3, 1), "total": round(time.perf_counter() - started, 1)},
        "executed_invocations": len(lambdas.records),
    }  # fmt: skip


def _is_billing_table(name: str) -> bool:
    return any(name.endswith(s) for s in ("stripe-events", "billing-ledger", "billing-objects", "billing-alerts",
                                          "dunning", "invoice-requests"))  # fmt: skip


# --- the printout ---------------------------------------------------------------------------------


def _qty(text: str) -> str:
    value = Decimal(text)
    if value >= 100:
        return f"{value.quantize(Decimal(1)):,}"
    if value >= 1:
        return f"{value.quantize(Decimal('0.01')):,}"
    return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"


def _table(bill: Mapping[str, Any]) -> list[str]:
    lines = [f"    {'line item':62s} {'count':>12s} {'unit':>18s} {'unit price':>14s} {'monthly':>10s}"]
    for line in bill["lines"]:
        price = Decimal(line["unit_price"])
        lines.append(
            f"    {line['service'] + ': ' + line['item']:62.62s} {_qty(line['quantity']):>12s} {line['unit']:>18.18s}"
            f" {'$' + format(price.normalize(), 'f'):>14s} {usd(Decimal(line['usd'])):>10s}"
        )
        if line["note"]:
            lines.append(f"      ({line['note']})")
    return lines


def _scenario_details(scenario: Mapping[str, Any]) -> list[str]:
    metric_price = PRICES["cloudwatch.metric"].unit_price
    functions = ", ".join(
        f"{name} {Decimal(row['invocations']):,.0f}"
        + (f" ({Decimal(row['cold']):,.0f} cold)" if 0 < Decimal(row["cold"]) < Decimal(row["invocations"]) else "")
        for name, row in scenario["functions"].items()
    )
    metrics = ", ".join(
        f"{name} {row['metrics']} x {Decimal(row['metric_months']) * HOURS_PER_BILLING_MONTH / int(row['metrics']):.0f}"
        f" h = {usd(Decimal(row['metric_months']) * metric_price)}"
        for name, row in sorted(scenario["metrics"].items(), key=lambda kv: -Decimal(kv[1]["metric_months"]))
    )
    calls = sorted(scenario["calls"].items(), key=lambda kv: -Decimal(kv[1]))
    requests = ", ".join(f"{name} {Decimal(n):,.0f}" for name, n in calls)
    lines = [
        f"    invocations/month: {functions} (scheduled runs, notifier, anomaly and admin calls start cold)",
        f"    custom metrics (metrics x hours sent, of 730): {metrics}",
        f"    AWS requests counted, per month: {requests}",
    ]
    if scenario["errors"]:
        lines.append(f"    failed invocations, as the code behaves: {'; '.join(scenario['errors'])}")
    if scenario.get("unpriced"):
        lines.append(f"    requests with no price in PRICES (not in the total): {scenario['unpriced']}")
    return lines


ASSUMPTIONS = (
    "durations are this 2-core machine's (Lambda at 256-512 MB has a fraction of a vCPU: expect several times the"
    " GB-s, still cents); INIT = a fresh interpreter importing handler.py",
    "containers: every scheduled run, notifier batch, anomaly batch and admin call starts cold; the webhook's"
    f" environment is reclaimed after {WEBHOOK_IDLE_TIMEOUT_S // 60} idle minutes (arrival times of the full"
    " month; one environment, overlaps ignored); warm invocations reuse the cached secrets",
    "anomalies arrive twice (SNS subscription and EventBridge rule both deliver in us-east-1); SMS to US numbers;"
    " scenario B sets dunningSenderEmail (an operator using dunning would)",
    "DynamoDB units from the items' sizes: writes the larger of old/new item per KB (x2 in transactions, plus"
    " index writes), reads per 4 KB of items read (half when eventually consistent); storage = the month's data",
    "custom metrics are prorated by the hour they are sent in; free tiers are account-wide, so the target is judged"
    " on list prices",
    "each chargeback CSV is downloaded once through its card's pre-signed link (one S3 GET); scenario B's two teams"
    " are routed by their Team tag alone (no accounts), each with a Teams webhook secret",
)
NOT_COUNTED = (
    "Stripe's own fees (not AWS)",
    "alarm notifications to the ops topic (SNS e-mail only with opsAlarmEmail; none fire in these scenarios)",
    "KMS requests AWS services make with AWS managed keys (Secrets Manager, DynamoDB); SQS-managed SSE is free",
    "DynamoDB items a Query filtered out (none of the code's queries filter); Lambda's DynamoDB stream reads (free)",
    "a US SMS origination identity (toll-free or 10DLC number and registration), which is outside the stack",
    "data transfer of Stripe API calls and SES/SNS deliveries; API Gateway execution logs (ERROR level only)",
    "S3 server access logs of the export and chargeback buckets (delivered free; a few KB stored)",
    "the operator's own CLI requests (teams add, savings accept/implement, report resend)",
)


def bill_changes(base: Mapping[str, Any], other: Mapping[str, Any], top: int = 5) -> list[str]:
    """The lines of `other` that differ from `base` most in money, e.g. 'Cost Explorer +20 request
    +$0.2000' (bills as _bill_json writes them)."""
    before = {line["key"]: line for line in base["lines"]}
    after = {line["key"]: line for line in other["lines"]}
    changes = []
    for key in dict.fromkeys([*before, *after]):
        money = Decimal(after[key]["usd"] if key in after else 0) - Decimal(before[key]["usd"] if key in before else 0)
        count = Decimal(after[key]["quantity"] if key in after else 0) - Decimal(
            before[key]["quantity"] if key in before else 0
        )
        if money or count:
            changes.append((money, count, key))
    changes.sort(key=lambda change: (-abs(change[0]), -abs(change[1])))

    def signed(value: Decimal, text: str) -> str:
        return ("-" if value < 0 else "+") + text

    return [
        f"{PRICES[key].service} {signed(count, _qty(str(abs(count))))} {PRICES[key].unit}"
        f" {signed(money, usd(abs(money)))}"
        for money, count, key in changes[:top]
    ]


def _variant_lines(figures: Mapping[str, Any]) -> list[str]:
    """A without attribution and C (A + savings), each against A."""
    scenarios, out = figures["scenarios"], []
    a = scenarios["A"]
    bare = scenarios.get(NO_ATTRIBUTION_LABEL)
    if bare is not None:
        price = Decimal(a["usd"]) - Decimal(bare["usd"])
        dimensions = figures.get("attribution", {}).get("dimensions", "")
        out += [
            f"  A without attribution (what-if: attribution dimensions and team routing emptied, no chargeback;"
            f" not deployable, attributionDimensions takes 1 to 3): usage {usd(Decimal(bare['usd']))}",
            f"    attribution with its defaults ({dimensions or 'the default dimensions'}) costs"
            f" {usd(price)} a month: " + ", ".join(bill_changes(bare, a)),
        ]
    savings, facts = scenarios.get("C"), figures.get("savings", {})
    if savings is not None:
        schedule = facts.get("schedule", ["?", 0])
        fixed = figures["fixed"]
        more_fixed = Decimal(facts["fixed"]["usd"]) - Decimal(fixed["usd"]) if "fixed" in facts else Decimal(0)
        out += [
            f"  C = A + savings recommendations (opt-in: {', '.join(facts.get('context', {}))} on): usage"
            f" {usd(Decimal(savings['usd']))}, {usd(Decimal(savings['usd']) - Decimal(a['usd']))} more than A: "
            + ", ".join(bill_changes(a, savings)),
            f"    and {usd(more_fixed)} more fixed a month (its template: {facts.get('alarms', '?')} alarms):"
            f" savings refresh {facts.get('memory_mb', '?')} MB, {schedule[0]} = {schedule[1]} runs, Cost"
            " Optimization Hub answered by botocore's Stubber (2 pages, 4 items; the API is free), one item"
            " implemented on the 3rd (its ROI measured once); weekly report with"
            f" {', '.join(facts.get('weekly_report_env', []))}",
        ]
        out += ["    " + line.strip() for line in _scenario_details(savings)[2:3]]
    elif facts.get("skipped"):
        out.append(f"  C (A + savings recommendations, {facts.get('context')}) not measured: {facts['skipped']}")
    return out


def report(figures: Mapping[str, Any]) -> list[str]:
    target = Decimal(figures["target_usd"])
    stripe = figures["stripe"]
    schedules = figures["template"]["schedules"]
    attribution = figures.get("attribution", {})
    routed = attribution.get("routed_teams", [])
    out = [
        f"Self-cost: the deployment's own AWS bill for {figures['month']} at us-east-1 list prices"
        " (devtools/bench_selfcost.py):",
        "  every AWS request the handlers made on the embedded AWS, counted by a botocore hook and converted to",
        "  billable units; memory and schedules from the synthesized template"
        f" ({figures['executed_invocations']:,} invocations executed in {figures['seconds']['total']} s; schedules: "
        + ", ".join(f"{name} {expr} = {n}" for name, (expr, n) in schedules.items()) + ")",
    ]  # fmt: skip
    titles = {
        "A": "Scenario A: one account, no Stripe, cdk.json defaults (attribution by tag:Team and tag:CostCenter,"
             " no team routed yet) -- 5 weekly reports, 30 budget-guard runs over 5 budgets (2 scope kinds),"
             " 6 anomaly sightings, the chargeback on the 1st; the billing jobs still run (720 dunning runs:"
             " 72 executed x 10; 30 reconciliations; 5 exports)",
        "B": f"Scenario B: A's reports with {len(routed)} teams routed to their own channels"
             f" ({', '.join(routed)}: {attribution.get('team_cards_posted', '?')} team cards posted)"
             f" + {stripe['events_full']:,} Stripe events/month ({stripe['groups']} customer"
             f" groups of devtools.billing_month; {stripe['events_sampled']:,} events through the webhook, weighted x"
             f"{stripe['scale']}), the notifier, 720 dunning runs ({stripe['dunning_busy_runs_sampled']} with due"
             f" steps, ~{Decimal(stripe['dunning_busy_runs_month']):.0f} a month), 30 reconciliations (3 executed x 10)"
             " and 5 exports on the ledger replicated to full size, 20 admin calls (9 executed, weighted)",
    }  # fmt: skip
    for label in ("A", "B"):
        scenario = figures["scenarios"][label]
        out.append(f"  {titles[label]}")
        out += _table(scenario)
        out.append(f"    usage total {usd(Decimal(scenario['usd']))} at list price"
                   f" ({usd(Decimal(scenario['usd_after_free_tier']))} if the free tier covered it)")  # fmt: skip
        out += _scenario_details(scenario)
        if label == "A":
            out += _variant_lines(figures)
    fixed = figures["fixed"]
    out.append("  Fixed monthly charges, counted from the synthesized template (the same in every scenario):")
    out += _table(fixed)
    out.append(f"    fixed total {usd(Decimal(fixed['usd']))} at list price"
               f" ({usd(Decimal(fixed['usd_after_free_tier']))} after the always-free allowances)")  # fmt: skip
    for label in ("A", "B"):
        scenario = figures["scenarios"][label]
        secrets = scenario.get("team_secrets")
        total = Decimal(scenario["usd"]) + Decimal(fixed["usd"]) + Decimal(secrets["usd"] if secrets else 0)
        out.append(f"  Scenario {label}: usage {usd(Decimal(scenario['usd']), 2)}"
                   f" + fixed {usd(Decimal(fixed['usd']), 2)}"
                   + (f" + {secrets['lines'][0]['note']} {usd(Decimal(secrets['usd']), 2)}" if secrets else "")
                   + f" = {usd(total, 2)} a month")  # fmt: skip
    if figures.get("harness_problems"):
        out.append("  HARNESS PROBLEMS (figures may be off): " + "; ".join(figures["harness_problems"][:5]))
    out.append("  assumptions: " + "; ".join(ASSUMPTIONS))
    out.append("  not counted: " + "; ".join(NOT_COUNTED))
    a = figures["scenarios"]["A"]
    verdict = "not judged (smoke run)" if figures.get("smoke") else "met" if a["met"] else "NOT MET"
    if figures.get("smoke"):
        out.insert(0, f"SMOKE RUN (the first {SMOKE.days} days, {stripe['sample_groups']} sampled customer groups): "
                      f"the code paths of the month, not its bill; correct: {figures['correct']}")  # fmt: skip
    out.append(f"  target: scenario A's usage < {usd(target, 2)} a month (judged on usage only: the calls' cost at list"
               f" price, no free tier): {usd(Decimal(a['usd']))} -- {verdict}; the fixed charges"
               f" ({usd(Decimal(fixed['usd']), 2)}) are reported beside it")  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line (for make bench)")
    parser.add_argument("--smoke", action="store_true", help="the first days only: does the bench still run?")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    figures = measure(SMOKE if args.smoke else FULL)
    if args.json:
        print(json.dumps(figures, default=str))
    else:
        print("\n".join(report(figures)))
    if args.smoke:
        return 0 if figures["correct"] else 1
    return 0 if figures["scenarios"]["A"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
