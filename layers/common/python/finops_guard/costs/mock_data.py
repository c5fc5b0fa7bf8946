"""Deterministic synthetic Cost Explorer data: the smoke-test source and the demo's seed.

`synthetic_pages` answers exactly like `GetCostAndUsage` (DAILY, UnblendedCost, grouped by SERVICE
and LINKED_ACCOUNT), split into pages joined by NextPageToken, so the same parsing code runs on it.
The organisation has a visible spike (SageMaker training in the data account over the last days)
and Cost Explorer's habit of marking the most recent day `Estimated`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
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


def _attributes(service: str, account: str) -> dict[tuple[str, str], str]:
    """Grouping values of one (service, account) cost line: dimensions, `Team` and `CostCenter` tags
    (empty when untagged, as Cost Explorer answers), a cost category."""
    tagged = service not in UNTAGGED_SERVICES and account not in UNTAGGED_ACCOUNTS
    team = TEAMS[zlib.crc32(service.encode()) % len(TEAMS)] if tagged else ""
    return {
        ("DIMENSION", "SERVICE"): service,
        ("DIMENSION", "LINKED_ACCOUNT"): account,
        ("TAG", "Team"): f"Team${team}",
        ("TAG", "CostCenter"): f"CostCenter${COST_CENTERS.get(team, '')}",
        ("COST_CATEGORY", "Environment"): f"Environment${ENVIRONMENTS.get(account, 'dev')}",
    }


def _matches(expression: dict[str, Any] | None, attributes: dict[tuple[str, str], str]) -> bool:
    if not expression:
        return True
    if "And" in expression:
        return all(_matches(e, attributes) for e in expression["And"])
    for field, type_ in (("Dimensions", "DIMENSION"), ("Tags", "TAG"), ("CostCategories", "COST_CATEGORY")):
        if field in expression:
            spec = expression[field]
            value = attributes.get((type_, spec["Key"]), "")
            return value.split("$", 1)[-1] in spec["Values"]
    raise ValueError(f"unsupported filter expression in synthetic data: {expression}")


def synthetic_query_pages(
    request: dict[str, Any],
    *,
    accounts: dict[str, str] | None = None,
    services: list[tuple[str, str]] | None = None,
    scale: dict[str, Decimal] | None = None,
) -> list[dict[str, Any]]:
    """Answer any DAILY or MONTHLY UnblendedCost `GetCostAndUsage` request (GroupBy up to two of
    SERVICE, LINKED_ACCOUNT, TAG Team, TAG CostCenter, COST_CATEGORY Environment; simple Filters)
    from the synthetic org.
    `scale` multiplies a service's cost (e.g. to push a budget over a threshold in the demo)."""
    accounts = ACCOUNTS if accounts is None else accounts
    services = SERVICES if services is None else services
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
        for service, base in services:
            factor = (scale or {}).get(service, Decimal(1))
            for account in accounts:
                attributes = _attributes(service, account)
                if not _matches(request.get("Filter"), attributes):
                    continue
                key = tuple(attributes[g] for g in group_by)
                amount = daily_amount(day, service, Decimal(base), account, as_of) * factor
                sums[key] = sums.get(key, Decimal(0)) + amount
        periods[first] = (periods[first][0], sums, estimated or day == as_of)
        day += timedelta(days=1)
    results = []
    for first, (period_end, sums, estimated) in periods.items():
        groups = [
            {"Keys": list(key), "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}
            for key, amount in sorted(sums.items())
        ]
        results.append(
            {
                "TimePeriod": {"Start": max(first, start).isoformat(), "End": period_end.isoformat()},
                "Total": {} if group_by else {"UnblendedCost": {"Amount": str(sum(sums.values())), "Unit": "USD"}},
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

    def pages(self, start: date, end: date) -> Iterator[dict[str, Any]]:
        for page in synthetic_pages(start, end):
            self.requests += 1
            yield page

    def query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in synthetic_query_pages(request):
            self.requests += 1
            yield page
