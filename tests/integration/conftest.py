"""Handlers against the embedded AWS (moto server) and chat webhooks on 127.0.0.1."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from finops_guard.billing import runtime as billing_runtime
from finops_guard.core import runtime as core_runtime
from finops_guard.core.adapters import chat as chat_adapter
from finops_guard.core.adapters import secrets
from finops_guard.core.periods import report_window
from finops_guard.costs import runtime
from finops_guard.costs.mock_data import synthetic_pages
from hypothesis import HealthCheck, settings

from devtools.chat_recorder import ChatRecorder
from devtools.embedded_aws import EmbeddedAws
from devtools.lambda_runner import FakeContext
from tests.conftest import load_event, load_handler
from tests.integration.fault_harness import faults  # noqa: F401 - the fault proxy fixture of both test_faults.py

pytestmark = pytest.mark.integration

FUNCTION_NAME = "finops-guard-test-weekly-report"
TEAMS_SECRET = "finops-guard/test/teams-webhook-url"
SLACK_SECRET = "finops-guard/test/slack-webhook-url"
# Webhook paths carry the credential in real life; tests check they never leak.
TEAMS_PATH = "/workflows/teams-s3cr3t-token"
SLACK_PATH = "/services/slack-s3cr3t-token"
SCHEDULE_EVENT = load_event("scheduler_weekly_report.json")
FIRED_AT = datetime.fromisoformat(SCHEDULE_EVENT["scheduled_time"].replace("Z", "+00:00")).astimezone(UTC)

# Property tests on the embedded AWS: each case is real DynamoDB and HTTP on 127.0.0.1, so fewer of them
# than the unit tests' runs of the same strategies.
MOTO = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Deployment:
    aws: EmbeddedAws
    chat: ChatRecorder
    table: str
    sleeps: list[float] = field(default_factory=list)  # retry back-off
    paces: list[float] = field(default_factory=list)  # per-channel rate spacing
    ce_requests: list[dict] = field(default_factory=list)
    logs: io.StringIO = field(default_factory=io.StringIO)

    def seed_costs(self, **kwargs) -> list[dict]:
        window = report_window(FIRED_AT)
        pages = list(synthetic_pages(window.query_start, window.query_end, **kwargs))
        self.aws.seed_cost_and_usage(pages)
        return pages

    def invoke(self, event: dict | None = None) -> dict:
        handler = load_handler("weekly_report")
        return handler.lambda_handler(SCHEDULE_EVENT if event is None else event, FakeContext(FUNCTION_NAME))

    def outbox_item(self, message_id: str) -> dict | None:
        item = self.aws.client("dynamodb").get_item(TableName=self.table, Key={"message_id": {"S": message_id}})
        return item.get("Item")


@pytest.fixture(scope="session")
def aws():
    server = EmbeddedAws().start()
    with server.activated():
        yield server
    server.stop()


@pytest.fixture
def chat():
    recorder = ChatRecorder().start()
    yield recorder
    recorder.stop()


@pytest.fixture
def deployed(aws, chat, monkeypatch) -> Deployment:
    """A fresh 'deployment': outbox table, Teams secret pointing at the loopback recorder, env as CDK sets it."""
    aws.reset()
    table = aws.create_outbox_table()
    aws.put_secret(TEAMS_SECRET, chat.url(TEAMS_PATH))
    env = {
        "FINOPSGUARD_STAGE": "test",
        "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
        "FINOPSGUARD_CURRENCY": "USD",
        "FINOPSGUARD_TOP_N": "5",
        "FINOPSGUARD_MONTHLY_BUDGET": "60000",
        "FINOPSGUARD_TEAMS_SECRET_NAME": TEAMS_SECRET,
        "FINOPSGUARD_OUTBOX_TABLE": table,
        # As `-c breakdown=LINKED_ACCOUNT` sets it: the seeded pages are grouped by account (moto's
        # account is in no organisation, so the default would be REGION; test_cost_numbers covers it).
        "FINOPSGUARD_BREAKDOWN": "LINKED_ACCOUNT",
        "POWERTOOLS_SERVICE_NAME": "weekly-report",
        "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINOPSGUARD_SLACK_SECRET_NAME", raising=False)
    monkeypatch.delenv("FINOPSGUARD_USE_MOCK_DATA", raising=False)
    runtime.settings.cache_clear()
    core_runtime.chat_settings.cache_clear()
    runtime.outbox.cache_clear()
    runtime._ce_client.cache_clear()
    runtime._reads_organisation.cache_clear()
    secrets.clear_cache()
    deployment = Deployment(aws, chat, table)
    # Everything the function logs, formatted exactly as CloudWatch would receive it.
    function_logger = load_handler("weekly_report").logger
    capture = logging.StreamHandler(deployment.logs)
    capture.setFormatter(function_logger.handlers[0].formatter)
    watched = [function_logger._logger, logging.getLogger("finops_guard")]
    for watched_logger in watched:
        watched_logger.addHandler(capture)
    monkeypatch.setattr(chat_adapter, "_sleep", deployment.sleeps.append)
    monkeypatch.setattr(chat_adapter, "_pace_sleep", deployment.paces.append)
    runtime._ce_client().meta.events.register(
        "before-parameter-build.ce.GetCostAndUsage", lambda params, **_: deployment.ce_requests.append(dict(params))
    )
    yield deployment
    for watched_logger in watched:
        watched_logger.removeHandler(capture)
    runtime.settings.cache_clear()
    core_runtime.chat_settings.cache_clear()
    runtime.outbox.cache_clear()
    runtime._ce_client.cache_clear()
    secrets.clear_cache()


STRIPE_SECRET_NAME = "finops-guard/test/stripe-webhook-secret"


def deploy_billing(deployed: Deployment, monkeypatch: pytest.MonkeyPatch, **extra_env: str) -> Deployment:
    """The webhook's billing tables, its signing secret and the settings the stack gives it (plus
    `extra_env`), with the cached settings and store cleared; `deployed.tables` names the tables."""
    from devtools import stripe_events

    tables = deployed.aws.create_billing_tables()
    deployed.aws.put_secret(STRIPE_SECRET_NAME, stripe_events.TEST_SECRET)
    env = {
        "FINOPSGUARD_STRIPE_SECRET_NAME": STRIPE_SECRET_NAME,
        "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": f"{STRIPE_SECRET_NAME}-previous",
        "FINOPSGUARD_STRIPE_EVENTS_TABLE": tables["events"],
        "FINOPSGUARD_LEDGER_TABLE": tables["ledger"],
        "FINOPSGUARD_BILLING_OBJECTS_TABLE": tables["objects"],
        "FINOPSGUARD_BILLING_ALERTS_TABLE": tables["alerts"],
        "FINOPSGUARD_DUNNING_TABLE": tables["dunning"],
        "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
        **extra_env,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    clear_billing_caches()
    secrets.clear_cache()
    deployed.tables = tables  # type: ignore[attr-defined]
    return deployed


def clear_billing_caches() -> None:
    billing_runtime.billing_settings.cache_clear()
    billing_runtime.billing_store.cache_clear()


def emitted_metrics(out: str) -> set[str]:
    """The names of the metrics in the Embedded Metric Format lines of `out` (what CloudWatch bills)."""
    names: set[str] = set()
    for line in out.splitlines():
        if line.startswith('{"_aws"'):
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names.update(metric["Name"] for metric in directive["Metrics"])
    return names


class LoggedRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def extra_of(self, message: str) -> dict:
        """The attributes of the one record logged with `message` (Powertools keeps `extra` there)."""
        [record] = [r for r in self.records if r.getMessage() == message]
        return record.__dict__


@contextmanager
def logged_by(function: str) -> Iterator[LoggedRecords]:
    """The records functions/<function>/handler.py logs through its own Powertools logger."""
    capture = LoggedRecords()
    logger = load_handler(function).logger._logger
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
