"""The stage-level ChatDeliveryFailures: the exact EMF line the stage's chat delivery alarm reads."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from finops_guard.core import service_levels
from finops_guard.core.service_levels import chat_delivery_failures_line, count_chat_delivery_failures, kpi_metrics_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AT = datetime(2026, 11, 16, 7, 2, 1, 250000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def not_warned_yet(monkeypatch):
    monkeypatch.setattr(service_levels, "_warned", False)
    monkeypatch.setattr(service_levels, "_warned_kpi", False)


def emitted(count, environ) -> list[str]:
    lines: list[str] = []
    count_chat_delivery_failures(count, environ=environ, now=lambda: AT, write=lines.append)
    return lines


def test_the_line_is_one_metric_with_only_the_stage_dimension():
    [line] = emitted(2, {"FINOPSGUARD_STAGE": "prod"})

    assert json.loads(line) == {
        "_aws": {
            "Timestamp": 1794812521250,
            "CloudWatchMetrics": [
                {
                    "Namespace": "FinOpsGuard",
                    "Dimensions": [["stage"]],
                    "Metrics": [{"Name": "ChatDeliveryFailures", "Unit": "Count"}],
                }
            ],
        },
        "stage": "prod",
        "ChatDeliveryFailures": 2,
    }
    assert "\n" not in line and line == chat_delivery_failures_line(2, "prod", AT)


def test_the_timestamp_is_milliseconds_since_the_epoch():
    document = json.loads(chat_delivery_failures_line(1, "qa", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)))

    assert document["_aws"]["Timestamp"] == 1000


def test_it_is_written_to_stdout_as_one_line(capsys):
    assert count_chat_delivery_failures(1, environ={"FINOPSGUARD_STAGE": "dev"}) is True

    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["stage"] == "dev" and json.loads(line)["ChatDeliveryFailures"] == 1


@pytest.mark.parametrize("count", [0, -1, True, 1.5, None, "3"])
def test_nothing_is_emitted_for_no_failures_or_a_count_that_is_not_one(count):
    assert emitted(count, {"FINOPSGUARD_STAGE": "prod"}) == []


@pytest.mark.parametrize("environ", [{}, {"FINOPSGUARD_STAGE": ""}, {"FINOPSGUARD_STAGE": "Prod env"}])
def test_without_a_stage_nothing_is_emitted_and_one_warning_is_logged(environ, caplog):
    with caplog.at_level(logging.WARNING, logger="finops_guard.core.service_levels"):
        assert emitted(1, environ) == [] and emitted(3, environ) == []

    warnings = [r for r in caplog.records if r.name == "finops_guard.core.service_levels"]
    assert len(warnings) == 1 and "FINOPSGUARD_STAGE" in warnings[0].getMessage()


def test_a_failing_write_never_fails_the_caller(caplog):
    def broken(_line: str) -> None:
        raise OSError("stdout closed")

    assert count_chat_delivery_failures(1, environ={"FINOPSGUARD_STAGE": "prod"}, write=broken) is False


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers() | st.none() | st.text(max_size=3), stage=st.text(max_size=20) | st.none())
def test_no_count_or_stage_makes_it_raise(count, stage):
    environ = {} if stage is None else {"FINOPSGUARD_STAGE": stage}
    for line in emitted(count, environ):
        document = json.loads(line)
        assert document["stage"] == stage and document["ChatDeliveryFailures"] == count > 0


def test_kpi_metrics_are_on_when_the_stack_says_on_or_nothing_says_otherwise():
    assert kpi_metrics_on({"FINOPSGUARD_KPI_METRICS": "on"}) is True
    assert kpi_metrics_on({}) is True  # a local run or a test: the metrics as before


def test_kpi_metrics_are_off_when_the_stack_says_off_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="finops_guard.core.service_levels"):
        assert kpi_metrics_on({"FINOPSGUARD_KPI_METRICS": "off"}) is False

    assert [r for r in caplog.records if r.name == "finops_guard.core.service_levels"] == []


@pytest.mark.parametrize("value", ["", "ON", "true", "1", "yes please"])
def test_any_other_value_means_off_with_one_warning_per_container(value, caplog):
    with caplog.at_level(logging.WARNING, logger="finops_guard.core.service_levels"):
        assert kpi_metrics_on({"FINOPSGUARD_KPI_METRICS": value}) is False
        assert kpi_metrics_on({"FINOPSGUARD_KPI_METRICS": value}) is False

    [warning] = [r for r in caplog.records if r.name == "finops_guard.core.service_levels"]
    assert "FINOPSGUARD_KPI_METRICS" in warning.getMessage()


def test_the_switch_reads_the_process_environment_at_each_call(monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    assert kpi_metrics_on() is False
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "on")
    assert kpi_metrics_on() is True
