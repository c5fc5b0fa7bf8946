"""The fault-injection harness shared by tests/integration/costs/test_faults.py and
tests/integration/billing/test_faults.py: every AWS call through devtools/fault_proxy.py, botocore's and
the ledger store's back-off recorded instead of slept, the retry bounds the tests count on the wire,
and the readers of what a faulted run left behind."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

import botocore.endpoint
import pytest
from botocore.config import Config
from finops_guard.billing import runtime as billing_runtime
from finops_guard.billing.adapters import billing_store
from finops_guard.core import runtime as core_runtime
from finops_guard.core.adapters import aws as aws_adapter
from finops_guard.core.adapters import secrets
from finops_guard.core.delivery import RetryPolicy
from finops_guard.costs import runtime
from finops_guard.costs.adapters import cost_explorer as cost_explorer_adapter

from devtools.fault_proxy import FaultProxy


def total_attempts(config: Config) -> int:
    """botocore's bound: `total_max_attempts`, or `max_attempts` retries after the first attempt."""
    retries = config.retries or {}
    return retries.get("total_max_attempts") or retries["max_attempts"] + 1


DYNAMODB_ATTEMPTS = total_attempts(aws_adapter.CLIENT_CONFIG)  # 4
COST_EXPLORER_ATTEMPTS = total_attempts(cost_explorer_adapter._CLIENT_CONFIG)  # 6 ("max_attempts": 5 retries)
SECRETS_ATTEMPTS = 3  # Powertools' Secrets Manager client: botocore's standard-mode default
CHAT_ATTEMPTS = RetryPolicy().max_attempts


class RecordedWaits:
    """Stands in for the `time` module where a retry loop sleeps: the waits are recorded, not slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def fresh_clients() -> None:
    """Every cached boto3 client and setting is rebuilt on next use (from the current environment)."""
    for module in [
        core_runtime,
        runtime,
        billing_runtime,
        *(m for name, m in list(sys.modules.items()) if name.startswith("handler_")),
    ]:
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    secrets.clear_cache()


@pytest.fixture
def faults(deployed, monkeypatch):
    """The deployment with every AWS call going through the fault proxy; botocore and the ledger
    store's conflict loop record their back-off instead of sleeping it."""
    proxy = FaultProxy(deployed.aws.endpoint).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    botocore_waits, conflict_waits = RecordedWaits(), RecordedWaits()
    monkeypatch.setattr(botocore.endpoint, "time", botocore_waits)
    monkeypatch.setattr(billing_store, "time", conflict_waits)
    fresh_clients()
    deployed.proxy = proxy
    deployed.botocore_waits = botocore_waits.waits
    deployed.conflict_waits = conflict_waits.waits
    yield deployed
    proxy.stop()
    fresh_clients()  # nothing keeps a client pointing at the stopped proxy


def emitted(capsys) -> Counter[str]:
    """Metric totals from the EMF documents the handlers printed (what CloudWatch alarms on): by name
    for the functions' Powertools metrics, `<name>@stage` for the stage-level ones (dimension `stage` only)."""
    totals: Counter[str] = Counter()
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            suffix = "@stage" if directive["Dimensions"] == [["stage"]] else ""
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                totals[metric["Name"] + suffix] += sum(value) if isinstance(value, list) else value
    return totals


def outbox_items(deployment) -> list[dict]:
    return deployment.aws.client("dynamodb").scan(TableName=deployment.table)["Items"]
