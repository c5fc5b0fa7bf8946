"""What the stack's deploy-time custom resources decide: adopt the account-wide settings a first deploy
would otherwise collide with, and open the weekly report's first deadline.

CloudFormation sends each custom resource a Create, Update or Delete request; ``handle`` answers it
with an ``Outcome`` and never raises (the handler turns an unexpected error into FAILED, so a stack
never waits an hour for an answer that will not come).

- ``Custom::AnomalyServicesMonitor``: Cost Anomaly Detection allows one AWS-services monitor
  (DIMENSIONAL, SERVICE) per account, and many accounts have one ("Default-Services-Monitor", or
  another stage's or region's). Create adopts an existing one, else creates ``MonitorName``. The
  physical id records which (``adopted@<arn>`` / ``created@<arn>``): Delete never deletes an adopted
  monitor, nor a created one that another subscription still uses (another stage or region adopted it).
- ``Custom::ApiGatewayCloudWatchRole``: API Gateway's CloudWatch Logs role is one setting per account
  and region. A set role that still exists is adopted and left alone; only an unset or dangling
  setting is pointed at ``RoleArn``. Delete leaves the setting (other APIs may log through it).
- ``Custom::ReportDeadlineGrace``: the weekly "not posted" alarm treats a week without a post as
  breaching, so a new stage would page before its first scheduled day. Create puts data points of
  ``MetricName`` (see ``report_grace``): the deploy opens the first week, and the alarm pages only
  when that week's scheduled day passes without a report. Update and Delete do nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RequestType = Literal["Create", "Update", "Delete"]
SERVICES_MONITOR = "Custom::AnomalyServicesMonitor"
API_GATEWAY_ROLE = "Custom::ApiGatewayCloudWatchRole"
REPORT_GRACE = "Custom::ReportDeadlineGrace"
API_GATEWAY_ROLE_ID = "api-gateway-account-cloudwatch-role"
REPORT_GRACE_ID = "weekly-report-deadline-grace"
_MONITOR_ID = re.compile(r"(?P<how>adopted|created)@(?P<arn>arn:[\w-]+:ce::\d{12}:anomalymonitor/[\w-]+)")
_ROLE_ARN = re.compile(r"arn:[\w-]+:iam::\d{12}:role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})")
_NAME = re.compile(r"[\w+=,.@ -]{1,1024}")
_ZONE = re.compile(r"[A-Za-z0-9_+/-]{1,64}")
_MAX_REASON = 900  # CloudFormation shows the reason; the whole response must stay under 4 KB


class SetupError(Exception):
    """A request this handler cannot carry out; the message is the FAILED reason CloudFormation shows."""


@dataclass(frozen=True)
class CfnRequest:
    """The parts of a CloudFormation custom resource request that decide the answer."""

    request_type: RequestType
    resource_type: str
    physical_id: str | None
    properties: Mapping[str, Any]

    def text(self, name: str, pattern: re.Pattern[str] = _NAME) -> str:
        value = self.properties.get(name)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise SetupError(f"{self.resource_type} needs a valid {name}, got {str(value)[:80]!r}")
        return value


@dataclass(frozen=True)
class Outcome:
    physical_id: str
    data: Mapping[str, str] = field(default_factory=dict)
    note: str = ""  # what was done, for the log line


def parse_request(event: Any) -> CfnRequest:
    """The request in ``event``; ``SetupError`` naming the first thing that is missing or wrong."""
    if not isinstance(event, Mapping):
        raise SetupError("the event is not a CloudFormation custom resource request")
    request_type = event.get("RequestType")
    if request_type not in ("Create", "Update", "Delete"):
        raise SetupError(f"unknown RequestType {str(request_type)[:40]!r}")
    resource_type = event.get("ResourceType")
    if not isinstance(resource_type, str):
        raise SetupError("the request has no ResourceType")
    physical_id = event.get("PhysicalResourceId")
    properties = event.get("ResourceProperties")
    return CfnRequest(
        request_type=request_type,
        resource_type=resource_type,
        physical_id=physical_id if isinstance(physical_id, str) else None,
        properties=properties if isinstance(properties, Mapping) else {},
    )


# --- ports ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitor:
    arn: str
    name: str
    created_on: date | None


class AnomalyMonitors(Protocol):
    def services_monitors(self) -> Sequence[Monitor]:
        """Every DIMENSIONAL monitor on SERVICE in the account (all pages)."""
        ...

    def monitor(self, arn: str) -> Monitor | None: ...

    def create_services_monitor(self, name: str, tags: Mapping[str, str]) -> str: ...

    def subscriptions_using(self, arn: str) -> Sequence[str]: ...

    def delete(self, arn: str) -> None:
        """Delete the monitor; one already gone is not an error."""
        ...


class ApiGatewayAccount(Protocol):
    def cloudwatch_role_arn(self) -> str | None: ...

    def role_exists(self, role_name: str) -> bool: ...

    def set_cloudwatch_role(self, role_arn: str) -> None: ...


class MetricSink(Protocol):
    def put_count(
        self, namespace: str, metric_name: str, dimensions: Mapping[str, str], value: int, at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class Ports:
    monitors: AnomalyMonitors
    api_gateway: ApiGatewayAccount
    metrics: MetricSink


# --- decisions ------------------------------------------------------------------------------------


def handle(request: CfnRequest, ports: Ports, now: datetime) -> Outcome:
    """The answer to one request (``SetupError`` when it cannot be carried out)."""
    if request.resource_type == SERVICES_MONITOR:
        return services_monitor(request, ports.monitors, now.date())
    if request.resource_type == API_GATEWAY_ROLE:
        return api_gateway_role(request, ports.api_gateway)
    if request.resource_type == REPORT_GRACE:
        return report_grace(request, ports.metrics, now)
    if request.request_type == "Delete":
        # Nothing of ours to remove: an unknown type must not block a stack's deletion or rollback.
        return Outcome(request.physical_id or "unknown", note=f"nothing to delete for {request.resource_type}")
    raise SetupError(f"unknown resource type {request.resource_type[:80]!r}")


def services_monitor(request: CfnRequest, monitors: AnomalyMonitors, today: date) -> Outcome:
    known = _MONITOR_ID.fullmatch(request.physical_id or "")
    if request.request_type == "Delete":
        return _delete_monitor(request, known, monitors)
    if request.request_type == "Update" and known:
        current = monitors.monitor(known["arn"])
        if current is not None:
            return _monitor_outcome(request.physical_id or "", current, today, "kept")
    # Create, or an Update whose monitor was deleted out of band: adopt one, else create ours.
    name = request.text("MonitorName")
    existing = sorted(monitors.services_monitors(), key=lambda m: (m.created_on or date.max, m.arn))
    if existing:
        monitor = existing[0]
        return _monitor_outcome(f"adopted@{monitor.arn}", monitor, today, f"adopted {monitor.name}")
    tags = request.properties.get("Tags")
    arn = monitors.create_services_monitor(name, _string_map(tags))
    return _monitor_outcome(f"created@{arn}", Monitor(arn=arn, name=name, created_on=today), today, f"created {name}")


def _monitor_outcome(physical_id: str, monitor: Monitor, today: date, note: str) -> Outcome:
    since = monitor.created_on or today
    adopted = physical_id.startswith("adopted@")
    data = {"MonitorArn": monitor.arn, "MonitorName": monitor.name, "Since": since.isoformat()}
    data["Adopted"] = "true" if adopted else "false"
    return Outcome(physical_id, data, note)


def _delete_monitor(request: CfnRequest, known: re.Match[str] | None, monitors: AnomalyMonitors) -> Outcome:
    physical_id = request.physical_id or "none"
    if known is None:
        # A failed create (no monitor was made) sends Delete with whatever id it answered.
        return Outcome(physical_id, note="no monitor recorded; nothing to delete")
    if known["how"] == "adopted":
        return Outcome(physical_id, note=f"left adopted monitor {known['arn']} in place")
    users = list(monitors.subscriptions_using(known["arn"]))
    if users:
        return Outcome(physical_id, note=f"kept {known['arn']}: still used by {', '.join(users[:5])}")
    monitors.delete(known["arn"])
    return Outcome(physical_id, note=f"deleted {known['arn']}")


def api_gateway_role(request: CfnRequest, account: ApiGatewayAccount) -> Outcome:
    if request.request_type == "Delete":
        return Outcome(request.physical_id or API_GATEWAY_ROLE_ID, note="left the account's CloudWatch role setting")
    ours = request.text("RoleArn", _ROLE_ARN)
    current = account.cloudwatch_role_arn()
    if current == ours:
        return Outcome(API_GATEWAY_ROLE_ID, {"RoleArn": ours, "Adopted": "false"}, "already set to ours")
    if current:
        name = _ROLE_ARN.fullmatch(current)
        if name is not None and account.role_exists(name["name"]):
            return Outcome(API_GATEWAY_ROLE_ID, {"RoleArn": current, "Adopted": "true"}, f"adopted {current}")
    account.set_cloudwatch_role(ours)
    replaced = f" (replaced dangling {current})" if current else ""
    return Outcome(API_GATEWAY_ROLE_ID, {"RoleArn": ours, "Adopted": "false"}, f"set {ours}{replaced}")


def report_grace(request: CfnRequest, metrics: MetricSink, now: datetime) -> Outcome:
    """Two data points when the stack is created: one now, which covers the first week, and one in the
    last complete day of ``Timezone``. A wall-clock alarm evaluates complete days only, so without the
    second its first evaluation (before the next midnight) would find seven empty days and page."""
    if request.request_type != "Create":
        return Outcome(request.physical_id or REPORT_GRACE_ID, note="the grace opens on create only")
    namespace, metric_name = request.text("Namespace"), request.text("MetricName")
    zone = _zone(request.text("Timezone", _ZONE))
    dimensions = _string_map(request.properties.get("Dimensions"))
    local_midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    # Less than 24 hours ago: older points may take up to 48 hours to reach the alarm.
    yesterday = (local_midnight - timedelta(seconds=1)).astimezone(UTC)
    for at in (yesterday, now):
        metrics.put_count(namespace, metric_name, dimensions, 1, at)
    return Outcome(
        REPORT_GRACE_ID,
        {"OpenedAt": now.isoformat()},
        f"put {namespace}/{metric_name}=1 at {yesterday.isoformat()} and {now.isoformat()}",
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SetupError(f"{REPORT_GRACE} needs an IANA Timezone, got {name[:60]!r}") from error


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k)[:128]: str(v)[:256] for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def failure_reason(error: BaseException) -> str:
    """One line for CloudFormation's FAILED reason: the error's own words, no traceback, bounded."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:_MAX_REASON]
