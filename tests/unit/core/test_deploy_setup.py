"""Deploy-time custom resources: adopt what the account already has, create only what is missing,
delete only what we made and nobody else uses, and answer every request without raising."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from finops_guard.core.deploy_setup import (
    API_GATEWAY_ROLE,
    REPORT_GRACE,
    SERVICES_MONITOR,
    Monitor,
    Ports,
    SetupError,
    failure_reason,
    handle,
    parse_request,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ACCOUNT = "123456789012"
OURS = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/11111111-2222-3333-4444-555555555555"
DEFAULT = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OUR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/FinOpsGuard-prod-BillingApiLogsRole-ABC123"
CENTRAL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/platform/central-apigw-logs"


@dataclass
class FakeMonitors:
    existing: list[Monitor] = field(default_factory=list)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    created: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def services_monitors(self) -> Sequence[Monitor]:
        return list(self.existing)

    def monitor(self, arn: str) -> Monitor | None:
        return next((m for m in self.existing if m.arn == arn), None)

    def create_services_monitor(self, name: str, tags: Mapping[str, str]) -> str:
        self.created.append((name, dict(tags)))
        self.existing.append(Monitor(arn=OURS, name=name, created_on=None))
        return OURS

    def subscriptions_using(self, arn: str) -> Sequence[str]:
        return self.subscriptions.get(arn, [])

    def delete(self, arn: str) -> None:
        self.deleted.append(arn)


@dataclass
class FakeApiGateway:
    role: str | None = None
    roles: set[str] = field(default_factory=set)
    set_to: list[str] = field(default_factory=list)

    def cloudwatch_role_arn(self) -> str | None:
        return self.role

    def role_exists(self, role_name: str) -> bool:
        return role_name in self.roles

    def set_cloudwatch_role(self, role_arn: str) -> None:
        self.set_to.append(role_arn)
        self.role = role_arn


@dataclass
class FakeMetrics:
    points: list[tuple[str, str, dict[str, str], int, datetime]] = field(default_factory=list)

    def put_count(self, namespace: str, metric_name: str, dimensions: Mapping[str, str], value: int, at: datetime):
        self.points.append((namespace, metric_name, dict(dimensions), value, at))


def ports(monitors=None, api=None, metrics=None) -> Ports:
    return Ports(
        monitors=monitors or FakeMonitors(), api_gateway=api or FakeApiGateway(), metrics=metrics or FakeMetrics()
    )


def request(resource_type: str, request_type: str = "Create", physical_id: str | None = None, **properties: Any):
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ResourceType": resource_type,
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:x", **properties},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return parse_request(event)


def monitor_request(request_type: str = "Create", physical_id: str | None = None):
    return request(
        SERVICES_MONITOR,
        request_type,
        physical_id,
        MonitorName="finops-guard-prod-services",
        Tags={"Project": "FinOpsGuard", "Environment": "prod"},
    )


# --- the services monitor -------------------------------------------------------------------------


def test_an_account_without_a_services_monitor_gets_ours_tagged_and_learning_from_today():
    monitors = FakeMonitors()

    outcome = handle(monitor_request(), ports(monitors), NOW)

    assert monitors.created == [("finops-guard-prod-services", {"Project": "FinOpsGuard", "Environment": "prod"})]
    assert outcome.physical_id == f"created@{OURS}"
    assert outcome.data == {
        "MonitorArn": OURS,
        "MonitorName": "finops-guard-prod-services",
        "Since": "2026-12-02",
        "Adopted": "false",
    }


def test_an_existing_services_monitor_is_adopted_not_duplicated():
    # AWS allows one: creating a second fails with a bare "AlreadyExists / null".
    monitors = FakeMonitors(existing=[Monitor(DEFAULT, "Default-Services-Monitor", date(2024, 3, 1))])

    outcome = handle(monitor_request(), ports(monitors), NOW)

    assert monitors.created == []
    assert outcome.physical_id == f"adopted@{DEFAULT}"
    assert outcome.data["MonitorArn"] == DEFAULT
    assert outcome.data["Since"] == "2024-03-01"
    assert outcome.data["Adopted"] == "true"


def test_the_oldest_of_several_services_monitors_is_adopted():
    newer = Monitor("arn:aws:ce::123456789012:anomalymonitor/b", "b", date(2025, 1, 1))
    older = Monitor("arn:aws:ce::123456789012:anomalymonitor/a", "a", date(2023, 1, 1))

    outcome = handle(monitor_request(), ports(FakeMonitors(existing=[newer, older])), NOW)

    assert outcome.data["MonitorArn"] == older.arn


def test_an_adopted_monitor_is_never_deleted():
    monitors = FakeMonitors(existing=[Monitor(DEFAULT, "Default-Services-Monitor", date(2024, 3, 1))])

    handle(monitor_request("Delete", f"adopted@{DEFAULT}"), ports(monitors), NOW)

    assert monitors.deleted == []


def test_our_monitor_is_deleted_when_no_subscription_uses_it_any_more():
    monitors = FakeMonitors(existing=[Monitor(OURS, "finops-guard-prod-services", date(2026, 1, 5))])

    handle(monitor_request("Delete", f"created@{OURS}"), ports(monitors), NOW)

    assert monitors.deleted == [OURS]


def test_our_monitor_is_kept_while_another_stage_or_region_subscribes_to_it():
    monitors = FakeMonitors(
        existing=[Monitor(OURS, "finops-guard-prod-services", date(2026, 1, 5))],
        subscriptions={OURS: ["finops-guard-staging-immediate"]},
    )

    outcome = handle(monitor_request("Delete", f"created@{OURS}"), ports(monitors), NOW)

    assert monitors.deleted == []
    assert "finops-guard-staging-immediate" in outcome.note


def test_the_rollback_of_a_failed_create_deletes_nothing():
    monitors = FakeMonitors(existing=[Monitor(DEFAULT, "Default-Services-Monitor", None)])

    handle(monitor_request("Delete", "failed-0f1e2d3c"), ports(monitors), NOW)

    assert monitors.deleted == []


def test_an_update_keeps_the_monitor_and_answers_its_attributes_again():
    monitors = FakeMonitors(existing=[Monitor(OURS, "finops-guard-prod-services", date(2026, 11, 30))])

    outcome = handle(monitor_request("Update", f"created@{OURS}"), ports(monitors), NOW)

    assert outcome.physical_id == f"created@{OURS}"
    assert outcome.data["Since"] == "2026-11-30"
    assert monitors.created == []


def test_an_update_after_the_monitor_was_deleted_by_hand_adopts_or_creates_again():
    monitors = FakeMonitors()

    outcome = handle(monitor_request("Update", f"created@{OURS}"), ports(monitors), NOW)

    assert [name for name, _ in monitors.created] == ["finops-guard-prod-services"]
    assert outcome.physical_id == f"created@{OURS}"


def test_a_monitor_request_without_a_name_is_refused_with_the_property_named():
    with pytest.raises(SetupError, match="MonitorName"):
        handle(request(SERVICES_MONITOR), ports(), NOW)


# --- the API Gateway CloudWatch role --------------------------------------------------------------


def test_an_account_without_a_logs_role_gets_ours():
    api = FakeApiGateway()

    outcome = handle(request(API_GATEWAY_ROLE, RoleArn=OUR_ROLE), ports(api=api), NOW)

    assert api.set_to == [OUR_ROLE]
    assert outcome.data == {"RoleArn": OUR_ROLE, "Adopted": "false"}


def test_a_central_teams_logs_role_is_adopted_and_left_alone():
    api = FakeApiGateway(role=CENTRAL_ROLE, roles={"central-apigw-logs"})

    outcome = handle(request(API_GATEWAY_ROLE, RoleArn=OUR_ROLE), ports(api=api), NOW)

    assert api.set_to == []
    assert outcome.data == {"RoleArn": CENTRAL_ROLE, "Adopted": "true"}


def test_a_setting_naming_a_deleted_role_is_replaced_by_ours():
    api = FakeApiGateway(role=CENTRAL_ROLE, roles=set())

    outcome = handle(request(API_GATEWAY_ROLE, RoleArn=OUR_ROLE), ports(api=api), NOW)

    assert api.set_to == [OUR_ROLE]
    assert "dangling" in outcome.note


def test_deleting_the_stack_leaves_the_account_setting_that_other_apis_may_use():
    api = FakeApiGateway(role=OUR_ROLE, roles={"FinOpsGuard-prod-BillingApiLogsRole-ABC123"})

    handle(
        request(API_GATEWAY_ROLE, "Delete", "api-gateway-account-cloudwatch-role", RoleArn=OUR_ROLE),
        ports(api=api),
        NOW,
    )

    assert api.set_to == []
    assert api.role == OUR_ROLE


def test_a_role_property_that_is_not_a_role_arn_is_refused():
    with pytest.raises(SetupError, match="RoleArn"):
        handle(request(API_GATEWAY_ROLE, RoleArn="arn:aws:s3:::bucket"), ports(), NOW)


# --- the weekly report's first deadline ------------------------------------------------------------


def grace_request(request_type: str = "Create"):
    return request(
        REPORT_GRACE,
        request_type,
        None if request_type == "Create" else "weekly-report-deadline-grace",
        Namespace="FinOpsGuard",
        MetricName="WeeklyReportPosted",
        Dimensions={"service": "weekly-report"},
        Timezone="Europe/Madrid",
    )


def test_a_new_stage_opens_its_first_week_now_and_in_the_last_complete_local_day():
    metrics = FakeMetrics()

    handle(grace_request(), ports(metrics=metrics), NOW)

    # 09:30 UTC is 10:30 in Madrid: the last complete Madrid day ended at 23:00 UTC the day before.
    yesterday = datetime(2026, 12, 1, 22, 59, 59, tzinfo=UTC)
    assert metrics.points == [
        ("FinOpsGuard", "WeeklyReportPosted", {"service": "weekly-report"}, 1, yesterday),
        ("FinOpsGuard", "WeeklyReportPosted", {"service": "weekly-report"}, 1, NOW),
    ]


@pytest.mark.parametrize("hour", [0, 1, 12, 21, 22, 23])
def test_the_earlier_point_is_always_in_the_previous_local_day_and_less_than_a_day_old(hour):
    metrics = FakeMetrics()
    now = datetime(2026, 12, 2, hour, 59, 59, tzinfo=UTC)

    handle(grace_request(), ports(metrics=metrics), now)

    earlier = metrics.points[0][4]
    madrid = ZoneInfo("Europe/Madrid")
    assert earlier.astimezone(madrid).date() == now.astimezone(madrid).date() - timedelta(days=1)
    # Under 24 hours old (CloudWatch may hold older points back for two days), but for a deploy in the
    # last second of a local day, whose previous day ended exactly 24 hours before.
    assert timedelta(0) < now - earlier <= timedelta(hours=24)


def test_a_grace_without_a_valid_time_zone_is_refused():
    with pytest.raises(SetupError, match="Timezone"):
        handle(
            request(REPORT_GRACE, Namespace="FinOpsGuard", MetricName="WeeklyReportPosted", Timezone="Mars/Olympus"),
            ports(),
            NOW,
        )


@pytest.mark.parametrize("request_type", ["Update", "Delete"])
def test_updates_and_deletes_never_count_as_a_post(request_type):
    metrics = FakeMetrics()

    handle(grace_request(request_type), ports(metrics=metrics), NOW)

    assert metrics.points == []


# --- any request ----------------------------------------------------------------------------------


def test_an_unknown_resource_type_is_refused_on_create_but_never_blocks_a_delete():
    with pytest.raises(SetupError, match="unknown resource type"):
        handle(request("Custom::Other"), ports(), NOW)
    assert handle(request("Custom::Other", "Delete", "x"), ports(), NOW).physical_id == "x"


@settings(max_examples=300, deadline=None)
@given(
    event=st.one_of(
        st.none(),
        st.integers(),
        st.text(),
        st.lists(st.integers()),
        st.dictionaries(
            st.sampled_from(["RequestType", "ResourceType", "PhysicalResourceId", "ResourceProperties", "X"]),
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=30),
                st.sampled_from(["Create", "Update", "Delete", SERVICES_MONITOR, API_GATEWAY_ROLE, REPORT_GRACE]),
                st.dictionaries(
                    st.sampled_from(["MonitorName", "RoleArn", "Namespace", "MetricName", "Dimensions", "Tags"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=40), st.dictionaries(st.text(), st.text())),
                ),
            ),
        ),
    )
)
def test_no_request_makes_the_decision_raise_anything_but_a_setup_error(event):
    try:
        handle(parse_request(event), ports(), NOW)
    except SetupError as error:
        assert failure_reason(error)


def test_a_failure_reason_is_one_bounded_line():
    reason = failure_reason(RuntimeError("line one\nline two " + "x" * 5000))

    assert "\n" not in reason
    assert reason.startswith("line one line two")
    assert len(reason) <= 900
