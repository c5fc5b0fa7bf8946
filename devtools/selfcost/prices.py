"""The price table (us-east-1 list prices, each with its source) and bills: counts x prices, in Decimal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

HOURS_PER_BILLING_MONTH = Decimal(730)  # AWS's pricing examples prorate monthly charges over 730 hours
GIB = Decimal(2**30)


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
    # metric-month (10 free); composite alarms $0.50 per alarm-month; dashboards $3.00 per month beyond 3
    # free.
    "logs.ingest": Price("CloudWatch Logs", "ingestion (function, Lambda, access logs)", _D("0.50"), _D(1), "GB",
                         _D(5), "always", "aws.amazon.com/cloudwatch/pricing"),
    "logs.storage": Price("CloudWatch Logs", "storage (one-month retention)", _D("0.03"), _D(1), "GB-month",
                          source="aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.metric": Price("CloudWatch", "custom metrics via EMF (hourly prorated)", _D("0.30"), _D(1),
                               "metric-month", _D(10), "always", "aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.alarm": Price("CloudWatch", "standard-resolution alarm metrics", _D("0.10"), _D(1),
                              "alarm metric-month", _D(10), "always", "aws.amazon.com/cloudwatch/pricing"),
    "cloudwatch.composite_alarm": Price("CloudWatch", "composite alarms", _D("0.50"), _D(1), "alarm-month",
                                        source="aws.amazon.com/cloudwatch/pricing"),
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
    # aws.amazon.com/organizations/pricing ("offered at no additional charge") and aws.amazon.com/iam/pricing
    # (IAM and STS at no additional charge): the weekly report asks once per container whether Cost
    # Explorer sees an organisation (DescribeOrganization, GetCallerIdentity). Zero lines, counted.
    "organizations.request": Price("Organizations", "API requests (free)", _D(0), _D(1), "request",
                                   source="aws.amazon.com/organizations/pricing"),
    "sts.request": Price("STS", "API requests (free)", _D(0), _D(1), "request", source="aws.amazon.com/iam/pricing"),
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


def bill_json(bill: Bill) -> dict[str, Any]:
    """A bill as JSON: money and quantities as decimal strings."""
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
