"""The deploy-setup function as CloudFormation calls it: the answer PUT to the pre-signed URL (a
loopback server here), Cost Explorer answered by botocore's Stubber (moto has no anomaly APIs) with
responses validated against the service model, API Gateway, IAM and CloudWatch on moto."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.stub import Stubber
from finops_guard.core.adapters.deploy_setup import ApiGatewayAccountSettings, CloudWatchMetricSink, CostAnomalyMonitors
from finops_guard.core.deploy_setup import Ports

from devtools.hub_stub import fake_client
from devtools.lambda_runner import FakeContext
from tests.conftest import load_event, load_handler

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
DEFAULT_MONITOR = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OUR_MONITOR = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/11111111-2222-3333-4444-555555555555"
TAGS = [
    {"Key": "CostCenter", "Value": "finops"},
    {"Key": "Environment", "Value": "prod"},
    {"Key": "Owner", "Value": "platform-team"},
    {"Key": "Project", "Value": "FinOpsGuard"},
]


class ResponseBucket:
    """Stands in for the S3 pre-signed URL CloudFormation waits on: records each PUT body."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        bucket = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bucket.answers.append(json.loads(body))
                bucket.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/stack-response?X-Amz-Signature=abc"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def bucket():
    server = ResponseBucket()
    yield server
    server.stop()


@pytest.fixture
def ce():
    client = fake_client("ce")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def handler(aws, ce, monkeypatch):
    aws.reset()
    module = load_handler("deploy_setup")
    ports = Ports(
        monitors=CostAnomalyMonitors(ce[0]),
        api_gateway=ApiGatewayAccountSettings(sleep=lambda _: None),
        metrics=CloudWatchMetricSink(),
    )
    monkeypatch.setattr(module, "PORTS", ports)
    return module


def event(bucket: ResponseBucket, **changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(load_event("cfn_custom_resource_create.json"))
    request["ResponseURL"] = bucket.url
    request.update(changes)
    return request


def monitor(arn: str, name: str, created: str = "2024-03-01") -> dict[str, Any]:
    return {
        "MonitorArn": arn,
        "MonitorName": name,
        "CreationDate": created,
        "MonitorType": "DIMENSIONAL",
        "MonitorDimension": "SERVICE",
    }


def invoke(handler, request: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(request, FakeContext("finops-guard-prod-deploy-setup"))


def test_create_adopts_the_accounts_default_services_monitor(handler, ce, bucket):
    _, stubber = ce
    custom = {"MonitorArn": f"arn:aws:ce::{ACCOUNT}:anomalymonitor/c", "MonitorName": "tags", "MonitorType": "CUSTOM"}
    stubber.add_response("get_anomaly_monitors", {"AnomalyMonitors": [custom], "NextPageToken": "p2"}, {})
    stubber.add_response(
        "get_anomaly_monitors",
        {"AnomalyMonitors": [monitor(DEFAULT_MONITOR, "Default-Services-Monitor")]},
        {"NextPageToken": "p2"},
    )

    assert invoke(handler, event(bucket)) == {"answered": True, "status": "SUCCESS"}

    [answer] = bucket.answers
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == f"adopted@{DEFAULT_MONITOR}"
    assert answer["Data"] == {
        "MonitorArn": DEFAULT_MONITOR,
        "MonitorName": "Default-Services-Monitor",
        "Since": "2024-03-01",
        "Adopted": "true",
    }
    assert (answer["StackId"], answer["LogicalResourceId"]) == (
        f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/FinOpsGuard-prod/5b1a6b70-8f1e-11f0-9d3c-0a1b2c3d4e5f",
        "AnomaliesServicesMonitor7A0C043F",
    )
    # S3 pre-signed PUTs are signed without a content type.
    assert bucket.headers[0].get("Content-Type", "") == ""


def test_create_in_an_empty_account_creates_our_tagged_monitor(handler, ce, bucket):
    _, stubber = ce
    stubber.add_response("get_anomaly_monitors", {"AnomalyMonitors": []}, {})
    stubber.add_response(
        "create_anomaly_monitor",
        {"MonitorArn": OUR_MONITOR},
        {
            "AnomalyMonitor": {
                "MonitorName": "finops-guard-prod-services",
                "MonitorType": "DIMENSIONAL",
                "MonitorDimension": "SERVICE",
            },
            "ResourceTags": TAGS,
        },
    )

    invoke(handler, event(bucket))

    [answer] = bucket.answers
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == f"created@{OUR_MONITOR}"
    assert answer["Data"]["Adopted"] == "false"


def test_delete_keeps_our_monitor_while_another_stage_subscribes_to_it(handler, ce, bucket):
    _, stubber = ce
    stubber.add_response(
        "get_anomaly_subscriptions",
        {
            "AnomalySubscriptions": [
                {
                    "SubscriptionName": "finops-guard-staging-immediate",
                    "MonitorArnList": [OUR_MONITOR],
                    "Subscribers": [{"Address": "arn:aws:sns:eu-west-1:123456789012:x", "Type": "SNS"}],
                    "Frequency": "IMMEDIATE",
                }
            ]
        },
        {"MonitorArn": OUR_MONITOR},
    )

    invoke(handler, event(bucket, RequestType="Delete", PhysicalResourceId=f"created@{OUR_MONITOR}"))

    [answer] = bucket.answers
    assert answer["Status"] == "SUCCESS"  # and no DeleteAnomalyMonitor: the Stubber would refuse it


def test_delete_removes_our_monitor_once_unused_and_tolerates_it_being_gone(handler, ce, bucket):
    _, stubber = ce
    stubber.add_response("get_anomaly_subscriptions", {"AnomalySubscriptions": []}, {"MonitorArn": OUR_MONITOR})
    stubber.add_client_error(
        "delete_anomaly_monitor",
        "UnknownMonitorException",
        "no such monitor",
        expected_params={"MonitorArn": OUR_MONITOR},
    )

    invoke(handler, event(bucket, RequestType="Delete", PhysicalResourceId=f"created@{OUR_MONITOR}"))

    assert bucket.answers[0]["Status"] == "SUCCESS"


def test_a_refused_call_fails_the_resource_with_one_line_saying_why(handler, ce, bucket):
    _, stubber = ce
    stubber.add_client_error(
        "get_anomaly_monitors",
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: ce:GetAnomalyMonitors",
    )

    assert invoke(handler, event(bucket)) == {"answered": True, "status": "FAILED"}

    [answer] = bucket.answers
    assert answer["Status"] == "FAILED"
    assert "ce:GetAnomalyMonitors" in answer["Reason"] and "\n" not in answer["Reason"]
    # The rollback's Delete then names an id that is not a monitor: nothing is deleted.
    assert answer["PhysicalResourceId"] == "failed-6f3e2a1c-4b5d-4e6f-8a9b-0c1d2e3f4a5b"


def test_an_account_without_an_api_gateway_logs_role_gets_ours(handler, aws, bucket):
    iam = aws.client("iam")
    role = iam.create_role(RoleName="FinOpsGuard-prod-LogsRole", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    request = event(
        bucket,
        ResourceType="Custom::ApiGatewayCloudWatchRole",
        ResourceProperties={"ServiceToken": "x", "RoleArn": role},
    )

    invoke(handler, request)

    assert bucket.answers[0]["Status"] == "SUCCESS"
    assert bucket.answers[0]["Data"] == {"RoleArn": role, "Adopted": "false"}
    assert aws.client("apigateway").get_account()["cloudwatchRoleArn"] == role


def test_a_central_teams_api_gateway_logs_role_is_adopted_untouched(handler, aws, bucket):
    iam = aws.client("iam")
    central = iam.create_role(RoleName="central-apigw-logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ours = iam.create_role(RoleName="FinOpsGuard-prod-LogsRole", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": central}]
    )
    request = event(
        bucket,
        ResourceType="Custom::ApiGatewayCloudWatchRole",
        ResourceProperties={"ServiceToken": "x", "RoleArn": ours},
    )

    invoke(handler, request)

    assert bucket.answers[0]["Data"] == {"RoleArn": central, "Adopted": "true"}
    assert aws.client("apigateway").get_account()["cloudwatchRoleArn"] == central


def test_the_weekly_deadline_grace_puts_its_points_on_the_alarms_series(handler, aws, bucket):
    request = event(
        bucket,
        ResourceType="Custom::ReportDeadlineGrace",
        ResourceProperties={
            "ServiceToken": "x",
            "Namespace": "FinOpsGuard",
            "MetricName": "WeeklyReportPosted",
            "Dimensions": {"service": "weekly-report"},
            "Timezone": "Europe/Madrid",
        },
    )

    invoke(handler, request)

    assert bucket.answers[0]["Status"] == "SUCCESS"
    metrics = aws.client("cloudwatch").list_metrics(Namespace="FinOpsGuard")["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in metrics] == [
        ("WeeklyReportPosted", [{"Name": "service", "Value": "weekly-report"}])
    ]


@pytest.mark.parametrize(
    "bad_event",
    [None, [], {"RequestType": "Create"}, {"ResponseURL": "file:///etc/passwd", "RequestType": "Create"}],
)
def test_an_event_that_cannot_be_answered_is_logged_never_raised(handler, bad_event):
    assert invoke(handler, bad_event) == {"answered": False}
