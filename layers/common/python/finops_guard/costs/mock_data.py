"""Deterministic synthetic Cost Explorer data: the smoke-test source and the demo's seed.

`synthetic_pages` answers exactly like `GetCostAndUsage` (DAILY, UnblendedCost usage, grouped by
SERVICE and LINKED_ACCOUNT), split into pages joined by NextPageToken, so the same parsing code runs
on it at any size. `synthetic_query_pages` answers any request (every metric, breakdown, record
type, filter) from the same organisation, which also gets a credit and, on request, refunds, tax
and a Savings Plan (`Extras`).
The organisation has a visible spike (SageMaker training in the data account over the last days)
and Cost Explorer's habit of marking the most recent day `Estimated`.
"""

from __future__ import annotations

import calendar
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

ACCOUNTS = {
    "111111111111": "prod-platform",
    "222222222222": "prod-data",
    "333333333333": "staging",
    "444444444444": "sandbox",
}
# (service, typical daily cost in the biggest account)
SERVICES = [
    ("Amazon Elastic Compute Cloud - Compute", "412.00"),
    ("Amazon Relational Database Service", "188.00"),
    ("Amazon Simple Storage Service", "96.00"),
    ("Amazon Elastic Kubernetes Service", "72.00"),
    ("EC2 - Other", "64.00"),
    ("Amazon CloudFront", "41.00"),
    ("Amazon DynamoDB", "38.00"),
    ("AWS Lambda", "22.00"),
    ("Amazon ElastiCache", "35.00"),
    ("Amazon OpenSearch Service", "44.00"),
    ("Amazon SageMaker", "18.00"),
    ("Amazon Redshift", "52.00"),
    ("Amazon Kinesis", "12.00"),
    ("Amazon Simple Queue Service", "4.10"),
    ("Amazon Simple Notification Service", "2.20"),
    ("AmazonCloudWatch", "27.00"),
    ("AWS Key Management Service", "3.40"),
    ("AWS Secrets Manager", "1.90"),
    ("Amazon Virtual Private Cloud", "16.00"),
    ("Amazon Route 53", "2.80"),
    ("AWS WAF", "6.50"),
    ("Amazon Elastic Container Service", "19.00"),
    ("Amazon Elastic Container Registry (ECR)", "3.10"),
    ("Amazon Elastic File System", "8.40"),
    ("AWS Glue", "14.00"),
    ("Amazon Athena", "5.60"),
    ("AWS Step Functions", "1.30"),
    ("Amazon API Gateway", "7.70"),
    ("AWS Backup", "9.20"),
    ("AWS Config", "4.40"),
    ("AWS CloudTrail", "2.10"),
    ("Amazon GuardDuty", "6.90"),
    ("AWS Security Hub", "3.30"),
    ("Tax", "0.00"),
]
ACCOUNT_SCALE = {
    "111111111111": Decimal("1.0"),
    "222222222222": Decimal("0.55"),
    "333333333333": Decimal("0.22"),
    "444444444444": Decimal("0.06"),
}
SPIKE = ("Amazon SageMaker", "222222222222", 4, Decimal("60"))  # service, account, last N days, factor


def _noise(*parts: object) -> Decimal:
    """A stable pseudo-random factor in [0.85, 1.15) from its inputs (no global RNG state)."""
    return Decimal("0.85") + Decimal(zlib.crc32("|".join(map(str, parts)).encode()) % 30000) / Decimal(100000)


def daily_amount(day: date, service: str, base: Decimal, account: str, as_of: date) -> Decimal:
    weekday = Decimal("0.8") if day.weekday() >= 5 else Decimal("1")
    growth = Decimal(1) + Decimal(day.toordinal() % 400) / Decimal(4000)  # slow upward drift
    amount = base * ACCOUNT_SCALE.get(account, Decimal("0.1")) * weekday * growth * _noise(day, service, account)
    spike_service, spike_account, spike_days, factor = SPIKE
    if service == spike_service and account == spike_account and (as_of - day).days < spike_days:
        amount *= factor
    return amount.quantize(Decimal("0.0000000001"))


def synthetic_pages(
    start: date,
    end: date,
    *,
    accounts: dict[str, str] | None = None,
    services: list[tuple[str, str]] | None = None,
    groups_per_page: int = 10000,  # Cost Explorer does not document its page size
    estimated_days: int = 1,
    unit: str = "USD",
) -> Iterator[dict[str, Any]]:
    """Yield `GetCostAndUsage` pages for [start, end) (end exclusive, as Cost Explorer)."""
    accounts = ACCOUNTS if accounts is None else accounts
    services = SERVICES if services is None else services
    as_of = end - timedelta(days=1)
    attributes = [{"Value": a, "Attributes": {"description": n}} for a, n in accounts.items()]
    page: list[dict[str, Any]] = []
    size = 0
    number = 0

    def flush(last: bool) -> dict[str, Any]:
        nonlocal page, size, number
        number += 1
        out: dict[str, Any] = {
            "GroupDefinitions": [
                {"Type": "DIMENSION", "Key": "SERVICE"},
                {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
            ],
            "ResultsByTime": page,
            "DimensionValueAttributes": attributes,
        }
        if not last:
            out["NextPageToken"] = f"page-{number + 1}"
        page, size = [], 0
        return out

    day = start
    while day < end:
        estimated = (end - day).days <= estimated_days
        combos = ((service, Decimal(base), account) for service, base in services for account in accounts)
        while True:
            chunk = [
                {
                    "Keys": [service, account],
                    "Metrics": {
                        "UnblendedCost": {"Amount": str(daily_amount(day, service, base, account, as_of)), "Unit": unit}
                    },
                }
                for service, base, account in islice(combos, groups_per_page - size)
            ]
            if not chunk:
                break
            page.append(
                {
                    "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                    "Total": {},
                    "Groups": chunk,
                    "Estimated": estimated,
                }
            )
            size += len(chunk)
            if size >= groups_per_page:
                yield flush(last=False)
        day += timedelta(days=1)
    yield flush(last=True)


TEAMS = ("platform", "data", "web")
COST_CENTERS = {"platform": "CC-100", "data": "CC-200", "web": "CC-100"}
ENVIRONMENTS = {"111111111111": "prod", "222222222222": "prod", "333333333333": "staging", "444444444444": "dev"}
# Spend nobody tagged, as in every real organisation: shared networking and account-level
# services everywhere, and the whole sandbox account.
UNTAGGED_SERVICES = frozenset({"EC2 - Other", "Amazon Virtual Private Cloud", "AWS Config", "AWS CloudTrail", "Tax"})
UNTAGGED_ACCOUNTS = frozenset({"444444444444"})
EC2 = "Amazon Elastic Compute Cloud - Compute"
SAVINGS_PLAN_SERVICE = "Savings Plans for AWS Compute usage"
REGIONS = ("us-east-1", "eu-west-1", "us-west-2")
INSTANCE_TYPES = ("m6g.large", "c7g.xlarge", "r6i.2xlarge", "t3.medium")
NET_DISCOUNT = Decimal("0.03")  # the net metrics: an Enterprise Discount Program discount on usage
ZERO = Decimal(0)


@dataclass(frozen=True)
class SavingsPlan:
    """A Compute Savings Plan bought on `purchased_on` in `account`: `upfront` paid that day and
    `monthly_fee` a month for `term_days`. Unblended, Cost Explorer shows the upfront fee and the
    rest of the purchase month's fee on the purchase day and each later month's fee on its 1st;
    amortized, the same money is the daily effective cost of the usage the plan covers."""

    purchased_on: date
    upfront: Decimal
    monthly_fee: Decimal
    term_days: int = 365
    account: str = "111111111111"

    def active(self, day: date) -> bool:
        return self.purchased_on <= day < self.purchased_on + timedelta(days=self.term_days)

    def unblended(self, day: date) -> list[tuple[str, Decimal]]:
        """(record type, amount) charged on `day`."""
        if not self.active(day):
            return []
        month_days = Decimal(calendar.monthrange(day.year, day.month)[1])
        if day == self.purchased_on:
            rest = (month_days - day.day + 1) / month_days
            return [("SavingsPlanUpfrontFee", self.upfront), ("SavingsPlanRecurringFee", self.monthly_fee * rest)]
        return [("SavingsPlanRecurringFee", self.monthly_fee)] if day.day == 1 else []

    def amortized(self, day: date) -> Decimal:
        """The day's effective cost: the upfront fee over the term, the month's fee over its days."""
        if not self.active(day):
            return ZERO
        month_days = Decimal(calendar.monthrange(day.year, day.month)[1])
        return self.upfront / self.term_days + self.monthly_fee / month_days


@dataclass(frozen=True)
class Extras:
    """What the synthetic organisation is charged besides usage.

    `credits`: (service, account, amount a day), negative, e.g. a promotional credit applied as the
    usage accrues; `refunds`: (service, account, day of month, amount), negative; `tax_rate`: tax
    as a share of each account's usage of the day, posted under the `Tax` service;
    `savings_plans`: commitments whose fees depend on the metric (see SavingsPlan)."""

    credits: tuple[tuple[str, str, Decimal], ...] = ((EC2, "111111111111", Decimal("-45.00")),)
    refunds: tuple[tuple[str, str, int, Decimal], ...] = ()
    tax_rate: Decimal = ZERO
    savings_plans: tuple[SavingsPlan, ...] = ()


DEFAULT_EXTRAS = Extras()


def _pick(options: tuple[str, ...], *parts: str) -> str:
    return options[zlib.crc32("|".join(parts).encode()) % len(options)]


def _attributes(service: str, account: str, record_type: str = "Usage") -> dict[tuple[str, str], str]:
    """Grouping values of one (service, account) cost line: dimensions, `Team` and `CostCenter` tags
    (empty when untagged, as Cost Explorer answers), a cost category."""
    tagged = service not in UNTAGGED_SERVICES and account not in UNTAGGED_ACCOUNTS and record_type == "Usage"
    team = TEAMS[zlib.crc32(service.encode()) % len(TEAMS)] if tagged else ""
    global_service = service in ("Tax", "Amazon Route 53", "Amazon CloudFront")
    region = "global" if global_service else _pick(REGIONS, service, account)
    instance = _pick(INSTANCE_TYPES, service, account) if service == EC2 else "NoInstanceType"
    return {
        ("DIMENSION", "SERVICE"): service,
        ("DIMENSION", "LINKED_ACCOUNT"): account,
        ("DIMENSION", "RECORD_TYPE"): record_type,
        ("DIMENSION", "REGION"): region,
        ("DIMENSION", "INSTANCE_TYPE"): instance,
        ("DIMENSION", "USAGE_TYPE"): f"{region}:{instance if service == EC2 else service.split()[-1]}-Usage",
        ("TAG", "Team"): f"Team${team}",
        ("TAG", "CostCenter"): f"CostCenter${COST_CENTERS.get(team, '')}",
        ("COST_CATEGORY", "Environment"): f"Environment${ENVIRONMENTS.get(account, 'dev')}",
    }


def _matches(expression: dict[str, Any] | None, attributes: dict[tuple[str, str], str]) -> bool:
    if not expression:
        return True
    if "And" in expression:
        return all(_matches(e, attributes) for e in expression["And"])
    if "Or" in expression:
        return any(_matches(e, attributes) for e in expression["Or"])
    if "Not" in expression:
        return not _matches(expression["Not"], attributes)
    for field, type_ in (("Dimensions", "DIMENSION"), ("Tags", "TAG"), ("CostCategories", "COST_CATEGORY")):
        if field in expression:
            spec = expression[field]
            if (type_, spec["Key"]) not in attributes:
                raise ValueError(f"unsupported filter key in synthetic data: {spec['Key']}")
            value = attributes[(type_, spec["Key"])]
            return value.split("$", 1)[-1] in spec["Values"]
    raise ValueError(f"unsupported filter expression in synthetic data: {expression}")


def _cost_lines(
    day: date,
    as_of: date,
    metric: str,
    accounts: dict[str, str],
    services: list[tuple[str, str]],
    scale: dict[str, Decimal] | None,
    extras: Extras,
) -> Iterator[tuple[dict[tuple[str, str], str], Decimal]]:
    """Every cost line of one UTC day, in `metric` (Cost Explorer's name): usage, credits, refunds,
    tax and Savings Plan charges, with their grouping values."""
    net = metric.startswith("Net")
    usage_by_account: dict[str, Decimal] = {}
    for service, base in services:
        if service == "Tax":
            continue  # the Tax service carries the Tax record type (below), never usage
        factor = (scale or {}).get(service, Decimal(1))
        for account in accounts:
            amount = daily_amount(day, service, Decimal(base), account, as_of) * factor
            if net:
                amount *= 1 - NET_DISCOUNT
            usage_by_account[account] = usage_by_account.get(account, ZERO) + amount
            yield _attributes(service, account), amount
    for plan in extras.savings_plans:
        if plan.account not in accounts:
            continue
        if "Amortized" in metric:
            effective = plan.amortized(day)
            if effective:
                yield _attributes(EC2, plan.account, "SavingsPlanCoveredUsage"), effective
        else:
            for record_type, amount in plan.unblended(day):
                yield _attributes(SAVINGS_PLAN_SERVICE, plan.account, record_type), amount
    for service, account, amount in extras.credits:
        if account in accounts:
            yield _attributes(service, account, "Credit"), Decimal(amount)
    for service, account, day_of_month, amount in extras.refunds:
        if account in accounts and day.day == day_of_month:
            yield _attributes(service, account, "Refund"), Decimal(amount)
    for account in accounts:
        yield _attributes("Tax", account, "Tax"), usage_by_account.get(account, ZERO) * extras.tax_rate


def synthetic_query_pages(
    request: dict[str, Any],
    *,
    accounts: dict[str, str] | None = None,
    services: list[tuple[str, str]] | None = None,
    scale: dict[str, Decimal] | None = None,
    extras: Extras = DEFAULT_EXTRAS,
) -> list[dict[str, Any]]:
    """Answer any DAILY or MONTHLY `GetCostAndUsage` request in any of the four cost metrics
    (GroupBy up to two of SERVICE, LINKED_ACCOUNT, REGION, USAGE_TYPE, INSTANCE_TYPE, RECORD_TYPE,
    TAG Team, TAG CostCenter, COST_CATEGORY Environment; Filters with And, Or, Not) from the synthetic
    organisation: usage with the record type `Usage`, and `extras` (a credit by default).
    `scale` multiplies a service's cost (e.g. to push a budget over a threshold in the demo)."""
    accounts = ACCOUNTS if accounts is None else accounts
    services = SERVICES if services is None else services
    [metric] = request.get("Metrics") or ["UnblendedCost"]
    start = date.fromisoformat(request["TimePeriod"]["Start"])
    end = date.fromisoformat(request["TimePeriod"]["End"])
    as_of = end - timedelta(days=1)
    group_by = [(g["Type"], g["Key"]) for g in request.get("GroupBy", [])]
    monthly = request.get("Granularity") == "MONTHLY"
    periods: dict[date, tuple[date, dict[tuple[str, ...], Decimal], bool]] = {}
    day = start
    while day < end:
        first = day.replace(day=1) if monthly else day
        following = (first + timedelta(days=32)).replace(day=1) if monthly else day + timedelta(days=1)
        _, sums, estimated = periods.setdefault(first, (min(following, end), {}, False))
        for attributes, amount in _cost_lines(day, as_of, metric, accounts, services, scale, extras):
            if not _matches(request.get("Filter"), attributes):
                continue
            try:
                key = tuple(attributes[g] for g in group_by)
            except KeyError as missing:
                raise ValueError(f"unsupported GroupBy in synthetic data: {missing}") from None
            sums[key] = sums.get(key, ZERO) + amount
        periods[first] = (periods[first][0], sums, estimated or day == as_of)
        day += timedelta(days=1)
    results = []
    for first, (period_end, sums, estimated) in periods.items():
        groups = [
            {"Keys": list(key), "Metrics": {metric: {"Amount": str(amount), "Unit": "USD"}}}
            for key, amount in sorted(sums.items())
        ]
        results.append(
            {
                "TimePeriod": {"Start": max(first, start).isoformat(), "End": period_end.isoformat()},
                "Total": {} if group_by else {metric: {"Amount": str(sum(sums.values(), ZERO)), "Unit": "USD"}},
                "Groups": groups if group_by else [],
                "Estimated": estimated,
            }
        )
    # Grouped by LINKED_ACCOUNT, Cost Explorer names the accounts of the answer, as for the weekly report.
    named = ("DIMENSION", "LINKED_ACCOUNT") in group_by
    account_names = [{"Value": a, "Attributes": {"description": n}} for a, n in accounts.items() if named]
    return [{"GroupDefinitions": request.get("GroupBy", []), "ResultsByTime": results,
             "DimensionValueAttributes": account_names}]  # fmt: skip


class MockCostSource:
    """Stands in for Cost Explorer when FINOPSGUARD_USE_MOCK_DATA=true (the client smoke test)."""

    requests = 0

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in synthetic_query_pages(request):
            self.requests += 1
            yield page
