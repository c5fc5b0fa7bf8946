"""`finops-guard doctor` end to end (finops_guard.cli.main) against in-process moto, the stage's resources
created by hand under their real names: stacks (a tiny template each, with the outputs doctor reads),
webhook secrets, the ops topic and its subscription, the failure alarm and queue, the schedules and the
weekly report function with its environment.

moto does not implement Cost Explorer's ListCostAllocationTags: that one call is answered by botocore's
Stubber (its request and answer checked against the service model) at the adapter's client boundary,
which also proves doctor makes exactly one Cost Explorer request. A Stubber stands in for AccessDenied,
which moto never answers."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from botocore.stub import Stubber
from finops_guard import cli, cli_doctor
from finops_guard.adapters.account_facts import Clients
from finops_guard.adapters.deployment_health import DeploymentHealthReader
from moto import mock_aws

from tests.unit.test_cli_surface import no_aws  # noqa: F401 - the fixture: no credentials, no region

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
STAGE = "it"
TEAMS_SECRET = "finops-guard/it/teams-webhook-url"
SLACK_SECRET = "finops-guard/it/slack-webhook-url"
FINANCE_SECRET = "finops-guard/it/finance-teams-webhook-url"
TEAMS_URL = "https://acme.webhook.office.com/webhookb2/teams-s3cr3t-token"
FINANCE_URL = "https://acme.webhook.office.com/webhookb2/finance-s3cr3t-token"
PLACEHOLDER = "kQ9vX2mB7nR4tY8wZ1cF5hJ3"  # what CloudFormation's GenerateSecretString leaves: no URL
SCHEDULES = ["weekly-report", "budget-guard", "chargeback", "dunning-sender", "reconciliation", "billing-export"]
DIMENSIONS = "tag:Team,tag:CostCenter"
ACTIVE = [{"TagKey": "Team", "Type": "UserDefined", "Status": "Active"},
          {"TagKey": "CostCenter", "Type": "UserDefined", "Status": "Active"}]  # fmt: skip


@pytest.fixture
def moto_aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "FINOPSGUARD_STAGE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


class CostExplorer:
    """The stubbed Cost Explorer client: one queued answer per expected request; counts every request."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "ce", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.stub = Stubber(self.client)
        self.requests: list[dict] = []
        self.client.meta.events.register("before-parameter-build.ce.*", self._count)
        self.stub.activate()

    def _count(self, params, **_) -> None:
        self.requests.append(dict(params))

    def answers(self, tags: list[dict], expected: dict | None = None) -> None:
        expected = {"TagKeys": ["Team", "CostCenter"], "Type": "UserDefined"} if expected is None else expected
        self.stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": tags}, expected)

    def refuses(self) -> None:
        self.stub.add_client_error(
            "list_cost_allocation_tags", service_error_code="AccessDeniedException", service_message="not authorized"
        )


@pytest.fixture
def ce(moto_aws, monkeypatch) -> CostExplorer:
    """doctor's reader as the command makes it, with Cost Explorer (us-east-1) stubbed."""
    stubbed = CostExplorer()
    session = boto3.session.Session()
    others: dict[str, object] = {}

    def make(service: str, region: str):
        return stubbed.client if service == "ce" else others.get(service) or session.client(service, region_name=region)

    stubbed.others = others  # type: ignore[attr-defined]
    monkeypatch.setattr(cli_doctor, "health_reader", lambda: DeploymentHealthReader(Clients(make=make)))
    return stubbed


def create_stack(product: str, outputs: dict[str, str] | None = None) -> None:
    template = {
        "Resources": {"Marker": {"Type": "AWS::SSM::Parameter",
                                 "Properties": {"Type": "String", "Value": product, "Name": f"/it/{product}"}}},
        "Outputs": {key: {"Value": value} for key, value in (outputs or {}).items()},
    }  # fmt: skip
    boto3.client("cloudformation").create_stack(
        StackName=f"FinOpsGuard-{STAGE}-{product}", TemplateBody=json.dumps(template)
    )


def deploy(
    *,
    slack: bool = False,
    teams_value: str = TEAMS_URL,
    subscribed: bool = True,
    disabled: tuple[str, ...] = (),
    dimensions: str = DIMENSIONS,
) -> str:
    """The three stacks and every resource doctor reads, as a deploy (and setup) leaves them; the ops topic ARN."""
    create_stack("Core", {"SlackSecretName": SLACK_SECRET} if slack else {})
    create_stack("Costs")
    create_stack("Billing")
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=TEAMS_SECRET, SecretString=teams_value)
    secrets.create_secret(Name=FINANCE_SECRET, SecretString=FINANCE_URL)
    if slack:
        secrets.create_secret(Name=SLACK_SECRET, SecretString="https://hooks.slack.com/services/slack-s3cr3t-token")
        secrets.create_secret(Name="finops-guard/it/finance-slack-webhook-url", SecretString=PLACEHOLDER)
    sns = boto3.client("sns")
    topic = sns.create_topic(Name=f"finops-guard-{STAGE}-ops-alarms")["TopicArn"]
    if subscribed:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=f"FinOpsGuard-{STAGE}-Failures", AlarmActions=[topic], OKActions=[topic], Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible", Statistic="Maximum", Period=300, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Dimensions=[{"Name": "QueueName", "Value": f"finops-guard-{STAGE}-failures"}],
    )  # fmt: skip
    boto3.client("sqs").create_queue(QueueName=f"finops-guard-{STAGE}-failures")
    role = boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    function = boto3.client("lambda").create_function(
        FunctionName=f"finops-guard-{STAGE}-weekly-report", Runtime="python3.12", Role=role,
        Handler="handler.lambda_handler", Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": dimensions, "FINOPSGUARD_STAGE": STAGE}},
    )  # fmt: skip
    scheduler = boto3.client("scheduler")
    for name in SCHEDULES:
        scheduler.create_schedule(
            Name=f"finops-guard-{STAGE}-{name}", ScheduleExpression="cron(0 8 ? * MON *)",
            FlexibleTimeWindow={"Mode": "OFF"}, State="DISABLED" if name in disabled else "ENABLED",
            Target={"Arn": function["FunctionArn"], "RoleArn": role, "Input": "{}"},
        )  # fmt: skip
    return topic


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["doctor", "--stage", STAGE, *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def lines_with(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"[{status}]")]


# --- the stage as deployed ---------------------------------------------------------------------------------


def test_a_healthy_stage_exits_0_with_every_check_ok_and_one_cost_explorer_request(ce, capsys):
    deploy()
    ce.answers(ACTIVE)

    code, out, err = run(capsys)

    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"FinOps Guard doctor for stage it (FinOpsGuard-it-Core, FinOpsGuard-it-Costs, FinOpsGuard-it-Billing): "
        f"account {ACCOUNT}, region {REGION}, as arn:aws:sts::{ACCOUNT}:user/moto"
    )
    assert lines_with(out, "warn") + lines_with(out, "blocking") == []
    assert "[ok]         subscriptions: confirmed on finops-guard-it-ops-alarms: email ops@example.com" in out
    assert "[ok]         failure queue: finops-guard-it-failures is empty" in out
    assert f"[ok]         chat secret: {TEAMS_SECRET} is set (https://acme.webhook.office.com/…)" in out
    assert "[ok]         schedules: 6 enabled: finops-guard-it-weekly-report" in out
    assert "[ok]         cost allocation tag CostCenter: CostCenter is active" in out
    assert out.splitlines()[-2:] == ["0 blocking, 0 warn, 12 ok", "healthy"]
    assert ce.requests == [{"TagKeys": ["Team", "CostCenter"], "Type": "UserDefined"}]
    assert "s3cr3t" not in out


def test_the_tag_keys_asked_are_the_deployed_function_s_dimensions(ce, capsys):
    deploy(dimensions="tag:Project,costCategory:Unit")
    ce.answers([{"TagKey": "Project", "Type": "UserDefined", "Status": "Inactive"}],
               {"TagKeys": ["Project"], "Type": "UserDefined"})  # fmt: skip

    code, out, _ = run(capsys)

    assert code == 0
    [warning] = lines_with(out, "warn")
    assert warning.startswith("[warn]       cost allocation tag Project: Project is inactive")
    assert "aws ce update-cost-allocation-tags-status" in out
    assert len(ce.requests) == 1


def test_a_placeholder_in_the_only_chat_channel_blocks_with_the_put_secret_value_command(ce, capsys):
    deploy(teams_value=PLACEHOLDER)
    ce.answers(ACTIVE)

    code, out, _ = run(capsys)

    assert code == 1
    [blocking] = lines_with(out, "blocking")
    assert blocking.startswith(
        f"[blocking]   chat secret: {TEAMS_SECRET} still holds the placeholder the stack created"
    )
    assert f"fix: aws secretsmanager put-secret-value --secret-id {TEAMS_SECRET} --secret-string 'https://...'" in out
    assert PLACEHOLDER not in out


def test_a_placeholder_beside_a_working_channel_is_a_warning_and_still_healthy(ce, capsys):
    deploy(slack=True)
    ce.answers(ACTIVE)

    code, out, _ = run(capsys)

    assert code == 0
    [warning] = lines_with(out, "warn")
    assert warning.startswith("[warn]       chat secret: finops-guard/it/finance-slack-webhook-url still holds the")
    assert "put-secret-value --secret-id finops-guard/it/finance-slack-webhook-url" in out
    assert "[ok]         chat secret: finops-guard/it/slack-webhook-url is set (https://hooks.slack.com/…)" in out
    assert "s3cr3t" not in out and PLACEHOLDER not in out


def test_an_ops_topic_nobody_subscribed_to_exits_1(ce, capsys):
    deploy(subscribed=False)
    ce.answers(ACTIVE)

    code, out, _ = run(capsys)

    assert code == 1
    assert lines_with(out, "blocking") == [
        "[blocking]   subscriptions: no confirmed subscription on finops-guard-it-ops-alarms: the page reaches nobody"
    ]
    assert out.splitlines()[-1] == "fix the blocking items, then run: finops-guard doctor --stage it"


def test_a_stage_not_deployed_here_exits_1_with_the_deploy_command(ce, capsys):
    code, out, _ = run(capsys)

    assert code == 1
    assert lines_with(out, "blocking") == [
        f"[blocking]   stack: stage it is not deployed in region {REGION} of account {ACCOUNT}"
    ]
    assert "fix: finops-guard preflight --stage it, then npx cdk deploy --all -c stage=it" in out
    assert ce.requests == []


def test_a_disabled_schedule_an_alarm_in_alarm_and_parked_failures_are_warnings(ce, capsys):
    deploy(disabled=("chargeback",))
    ce.answers(ACTIVE)
    boto3.client("cloudwatch").set_alarm_state(AlarmName="FinOpsGuard-it-Failures", StateValue="ALARM",
                                               StateReason="test")  # fmt: skip
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="finops-guard-it-failures")["QueueUrl"], MessageBody="{}")

    code, out, _ = run(capsys)

    assert code == 0
    assert [line.split(":")[0] for line in lines_with(out, "warn")] == [
        "[warn]       failure alarm", "[warn]       failure queue", "[warn]       schedules",
    ]  # fmt: skip
    assert "finops-guard-it-chargeback is DISABLED" in out
    assert "aws scheduler update-schedule --cli-input-json" in out
    assert "fix: finops-guard dlq list --stage it" in out


def test_json_prints_the_findings_as_a_list(ce, capsys):
    deploy(subscribed=False)
    ce.answers(ACTIVE)

    code, out, _ = run(capsys, "--json")

    findings = json.loads(out)
    assert code == 1
    assert isinstance(findings, list) and len(findings) == 12
    assert {f["status"] for f in findings} == {"ok", "blocking"}
    assert set(findings[0]) == {"item", "status", "detail", "fix"}


# --- what AWS refuses ---------------------------------------------------------------------------------------


def denied(service: str, method: str, times: int = 1, region: str = REGION):
    """A client that answers ``method`` with AccessDenied ``times`` times (and nothing else)."""
    client = boto3.client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    stub = Stubber(client)
    for _ in range(times):
        stub.add_client_error(method, service_error_code="AccessDeniedException", service_message="not authorized")
    stub.activate()
    return client


def test_an_access_denied_check_is_its_could_not_check_warning_not_a_failure(ce, capsys):
    deploy()
    ce.refuses()
    ce.others["scheduler"] = denied("scheduler", "list_schedules")

    code, out, _ = run(capsys)

    assert code == 0
    assert lines_with(out, "warn") == [
        "[warn]       schedules: could not check the stage's schedules (needs scheduler:ListSchedules)",
        "[warn]       cost explorer: could not check that Cost Explorer answers and the attribution tags are active "
        "(needs ce:ListCostAllocationTags)",
    ]
    assert "fix: grant scheduler:ListSchedules to the caller and run doctor again" in out


def test_a_secret_the_caller_may_not_read_is_a_warning_naming_get_secret_value(ce, capsys):
    deploy()
    ce.answers(ACTIVE)
    ce.others["secretsmanager"] = denied("secretsmanager", "get_secret_value", times=2)  # Teams, finance Teams

    code, out, _ = run(capsys)

    assert code == 0
    assert lines_with(out, "warn") == [
        f"[warn]       chat secret: could not check whether {name} holds a webhook URL "
        "(needs secretsmanager:GetSecretValue)"
        for name in (TEAMS_SECRET, FINANCE_SECRET)
    ]


# --- no AWS ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [({}, "finops-guard: no AWS region"), ({"AWS_REGION": REGION}, "finops-guard: no usable AWS credentials")],
    ids=["no-region", "no-credentials"],
)
def test_without_aws_doctor_says_so_in_one_line_and_exits_4(setting, expected, no_aws, monkeypatch, capsys):  # noqa: F811
    for name, value in setting.items():
        monkeypatch.setenv(name, value)

    code = cli.main(["doctor", "--stage", STAGE])

    captured = capsys.readouterr()
    assert code == 4
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith(expected), captured.err
    assert "Traceback" not in captured.err


def test_an_endpoint_that_does_not_answer_exits_4_naming_it(no_aws, monkeypatch, capsys):  # noqa: F811
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)

    code = cli.main(["doctor", "--stage", STAGE])

    err = capsys.readouterr().err
    assert code == 4
    assert err.splitlines() == [err.strip()] and "cannot reach http://127.0.0.1:1" in err
