"""AWS side of the deploy-time custom resources (finops_guard/core/deploy_setup.py): Cost Anomaly Detection
monitors, API Gateway's account settings, one CloudWatch data point, and the answer to CloudFormation."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import CLIENT_CONFIG
from finops_guard.core.deploy_setup import Monitor, Outcome

_MAX_PAGES = 100  # 100 pages of monitors or subscriptions is far past any account's; stop rather than loop
_RESPONSE_URL = re.compile(r"https://[^\s]+|http://127\.0\.0\.1(:\d{1,5})?/[^\s]*")
# IAM is eventually consistent: API Gateway may not yet be able to assume a role created seconds ago
# ("The role ARN does not have required permissions set to API Gateway"). Retry that, bounded.
ROLE_PROPAGATION_ATTEMPTS = 8
ROLE_PROPAGATION_WAIT_S = 5.0


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class CostAnomalyMonitors:
    """Monitors through Cost Explorer's single endpoint (us-east-1, whatever region the stack is in)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("ce", region_name="us-east-1", config=CLIENT_CONFIG)
        return self._client

    def services_monitors(self) -> Sequence[Monitor]:
        found: list[Monitor] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            answer = self.client.get_anomaly_monitors(**({"NextPageToken": token} if token else {}))
            found += [
                _monitor(item)
                for item in answer.get("AnomalyMonitors", [])
                if item.get("MonitorType") == "DIMENSIONAL" and item.get("MonitorDimension") == "SERVICE"
            ]
            token = answer.get("NextPageToken")
            if not token:
                break
        return found

    def monitor(self, arn: str) -> Monitor | None:
        try:
            answer = self.client.get_anomaly_monitors(MonitorArnList=[arn])
        except ClientError as error:
            if _code(error) == "UnknownMonitorException":
                return None
            raise
        items = answer.get("AnomalyMonitors", [])
        return _monitor(items[0]) if items else None

    def create_services_monitor(self, name: str, tags: Mapping[str, str]) -> str:
        answer = self.client.create_anomaly_monitor(
            AnomalyMonitor={"MonitorName": name, "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"},
            ResourceTags=[{"Key": key, "Value": value} for key, value in sorted(tags.items())],
        )
        return str(answer["MonitorArn"])

    def subscriptions_using(self, arn: str) -> Sequence[str]:
        names: list[str] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            answer = self.client.get_anomaly_subscriptions(
                MonitorArn=arn, **({"NextPageToken": token} if token else {})
            )
            names += [str(item.get("SubscriptionName", "?")) for item in answer.get("AnomalySubscriptions", [])]
            token = answer.get("NextPageToken")
            if not token:
                break
        return names

    def delete(self, arn: str) -> None:
        try:
            self.client.delete_anomaly_monitor(MonitorArn=arn)
        except ClientError as error:
            if _code(error) != "UnknownMonitorException":
                raise


def _monitor(item: Mapping[str, Any]) -> Monitor:
    return Monitor(
        arn=str(item.get("MonitorArn", "")),
        name=str(item.get("MonitorName", "")),
        created_on=_day(item.get("CreationDate")),
    )


def _day(value: Any) -> date | None:
    # Cost Explorer answers dates as "YYYY-MM-DD" strings (some APIs add a time).
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class ApiGatewayAccountSettings:
    def __init__(
        self,
        apigateway: Any | None = None,
        iam: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._apigateway, self._iam, self._sleep = apigateway, iam, sleep

    @property
    def apigateway(self) -> Any:
        if self._apigateway is None:
            self._apigateway = boto3.client("apigateway", config=CLIENT_CONFIG)
        return self._apigateway

    @property
    def iam(self) -> Any:
        if self._iam is None:
            self._iam = boto3.client("iam", config=CLIENT_CONFIG)
        return self._iam

    def cloudwatch_role_arn(self) -> str | None:
        return self.apigateway.get_account().get("cloudwatchRoleArn") or None

    def role_exists(self, role_name: str) -> bool:
        try:
            self.iam.get_role(RoleName=role_name)
        except ClientError as error:
            if _code(error) == "NoSuchEntity":
                return False
            raise
        return True

    def set_cloudwatch_role(self, role_arn: str) -> None:
        operation = {"op": "replace", "path": "/cloudwatchRoleArn", "value": role_arn}
        for attempt in range(1, ROLE_PROPAGATION_ATTEMPTS + 1):
            try:
                self.apigateway.update_account(patchOperations=[operation])
                return
            except ClientError as error:
                if _code(error) != "BadRequestException" or attempt == ROLE_PROPAGATION_ATTEMPTS:
                    raise
                self._sleep(ROLE_PROPAGATION_WAIT_S)


class CloudWatchMetricSink:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("cloudwatch", config=CLIENT_CONFIG)
        return self._client

    def put_count(
        self, namespace: str, metric_name: str, dimensions: Mapping[str, str], value: int, at: datetime
    ) -> None:
        self.client.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": metric_name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
                    "Timestamp": at,
                    "Value": value,
                    "Unit": "Count",
                }
            ],
        )


def response_body(event: Mapping[str, Any], outcome: Outcome | None, reason: str) -> bytes:
    """CloudFormation's custom resource response: SUCCESS with the outcome, or FAILED with ``reason``."""

    def text(name: str) -> str:
        value = event.get(name)
        return value if isinstance(value, str) else ""

    if outcome is not None:
        status, physical_id, data = "SUCCESS", outcome.physical_id, dict(outcome.data)
    else:
        # A failed Create has no resource: an id of its own makes the rollback's Delete a no-op.
        status, physical_id, data = "FAILED", text("PhysicalResourceId") or f"failed-{text('RequestId')}", {}
    body = {
        "Status": status,
        "Reason": reason or "see the function's log group",
        "PhysicalResourceId": physical_id or "none",
        "StackId": text("StackId"),
        "RequestId": text("RequestId"),
        "LogicalResourceId": text("LogicalResourceId"),
        "NoEcho": False,
        "Data": data,
    }
    return json.dumps(body).encode()


def send_response(event: Mapping[str, Any], body: bytes, attempts: int = 3, timeout_s: float = 10.0) -> None:
    """PUT the answer to the pre-signed ResponseURL (https, or loopback in tests); raises when it cannot."""
    url = event.get("ResponseURL")
    if not isinstance(url, str) or not _RESPONSE_URL.fullmatch(url):
        raise ValueError("the request has no usable ResponseURL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
                answer.read()
            return
        except OSError:
            if attempt == attempts:
                raise
            time.sleep(attempt)
