"""finops_guard.adapters.account_facts against in-process moto, and botocore's Stubber (responses checked
against the service model) for what moto does not implement: Cost Explorer's GetAnomalyMonitors and
ListCostAllocationTags, SESv2 GetAccount, IAM SimulatePrincipalPolicy, CloudWatch DescribeAlarmHistory.
The Stubber also stands in for AccessDenied answers, which moto never gives."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from finops_guard import cli, cli_preflight
from finops_guard.adapters.account_facts import AccountFactsReader, AlarmPager, Clients
from finops_guard.preflight import (
    BLOCKING,
    OK,
    WARN,
    WILL_ADOPT,
    AccountFacts,
    AnomalyMonitor,
    ApiGatewayRole,
    AwsUnreachable,
    HistoryItem,
    Organization,
    PreflightConfig,
    RoleDecision,
    SesAccount,
    SesIdentity,
    Subscription,
    Unanswered,
    assess,
    named_resource_findings,
)
from moto import mock_aws

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
CONFIG = PreflightConfig(stage="it")
MONITOR_ARN = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/0a1b2c3d-1234-4ea0-84cc-918a97d736ef"
OURS = [{"Key": "Project", "Value": "FinOpsGuard"}, {"Key": "Environment", "Value": "it"}]


def stubbed(service: str, region: str = REGION):
    """A client that can never reach AWS, for a Stubber to answer."""
    return boto3.client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")


def reader(**stubs) -> AccountFactsReader:
    """Moto behind every service except the ``stubs`` given (service -> stubbed client)."""
    session = boto3.session.Session()  # not boto3's default session: it keeps the first credentials it saw
    return AccountFactsReader(
        Clients(make=lambda s, r: stubs.get(s) or session.client(s, region_name=r), region=REGION)
    )


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def deployer(aws, monkeypatch) -> str:
    """Calls made as an IAM user (moto answers the default test keys with an ARN no real caller has)."""
    iam = boto3.client("iam")
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    return f"arn:aws:iam::{ACCOUNT}:user/deployer"


def denied(service: str, method: str, code: str = "AccessDeniedException", region: str = REGION):
    client = stubbed(service, region)
    stub = Stubber(client)
    stub.add_client_error(method, service_error_code=code, service_message="not authorized", http_status_code=400)
    stub.activate()
    return client


# --- moto -------------------------------------------------------------------------------------------------


def test_the_caller_is_moto_s_account(aws):
    caller = reader().caller()

    assert (caller.account, caller.arn) == (ACCOUNT, f"arn:aws:sts::{ACCOUNT}:user/moto")


def test_no_stack_is_none(aws):
    assert reader().stack("FinOpsGuard-it-Billing") is None


def test_a_stack_owns_the_table_it_created(aws):
    table = {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": "finops-guard-it-billing-ledger", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}  # fmt: skip
    boto3.client("cloudformation").create_stack(
        StackName="FinOpsGuard-it-Billing", TemplateBody=json.dumps({"Resources": {"Ledger": table}})
    )
    facts = reader()

    stack = facts.stack("FinOpsGuard-it-Billing")
    ledger = facts.table("finops-guard-it-billing-ledger")

    assert stack.status == "CREATE_COMPLETE"
    assert "finops-guard-it-billing-ledger" in stack.owned
    assert ledger.status == "ACTIVE"
    resources = {"finops-guard-it-billing-ledger": ledger}
    findings = named_resource_findings(
        CONFIG, AccountFacts(facts.caller(), REGION, stacks={stack.name: stack}, resources=resources)
    )
    assert [f.detail for f in findings] == [
        "16 not there yet (the deploy creates them); 1 owned by FinOpsGuard-it-Billing"
    ]


def test_leftover_tables_and_secrets_carry_their_tags_and_deletion_date(aws):
    dynamodb, secrets = boto3.client("dynamodb"), boto3.client("secretsmanager")
    dynamodb.create_table(TableName="finops-guard-it-outbox", BillingMode="PAY_PER_REQUEST", Tags=OURS,
                          AttributeDefinitions=[{"AttributeName": "message_id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}])  # fmt: skip
    secrets.create_secret(Name="finops-guard/it/stripe-api-key", SecretString="rk_test_value", Tags=OURS)
    secrets.create_secret(Name="finops-guard/it/teams-webhook-url", SecretString="https://x", Tags=OURS)
    secrets.delete_secret(SecretId="finops-guard/it/teams-webhook-url", RecoveryWindowInDays=7)
    facts = reader()

    table = facts.table("finops-guard-it-outbox")
    key = facts.secret("finops-guard/it/stripe-api-key")
    deleted = facts.secret("finops-guard/it/teams-webhook-url")

    assert table.tags == {"Project": "FinOpsGuard", "Environment": "it"}
    assert (key.tags, key.deletion_date) == ({"Project": "FinOpsGuard", "Environment": "it"}, None)
    assert deleted.deletion_date == (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    assert facts.table("finops-guard-it-budgets") is None
    assert facts.secret("finops-guard/it/stripe-webhook-secret") is None
    assert "rk_test_value" not in repr((table, key, deleted))


def test_an_account_outside_an_organisation_is_its_own_payer(aws):
    facts = reader()
    assert facts.organization() == Organization(None)

    boto3.client("organizations").create_organization(FeatureSet="ALL")

    assert facts.organization() == Organization(ACCOUNT)


def test_the_api_gateway_logging_role_unset_dangling_and_existing(aws):
    facts, apigateway = reader(), boto3.client("apigateway")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/apigw-logs"
    assert facts.api_gateway_role() == ApiGatewayRole(None)

    apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role_arn}])
    assert facts.api_gateway_role() == ApiGatewayRole(role_arn, False)

    boto3.client("iam").create_role(RoleName="apigw-logs", AssumeRolePolicyDocument="{}")
    assert facts.api_gateway_role() == ApiGatewayRole(role_arn, True)


def test_the_bootstrap_version_parameter(aws):
    facts, ssm = reader(), boto3.client("ssm")
    assert facts.bootstrap_version() is None

    ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="27", Type="String")
    assert facts.bootstrap_version() == 27

    ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="latest", Type="String", Overwrite=True)
    gap = facts.bootstrap_version()
    assert (gap.action, gap.denied) == ("ssm:GetParameter", False)


# --- Stubber: what moto lacks -----------------------------------------------------------------------------


def test_anomaly_monitors_are_read_page_by_page_in_us_east_1():
    ce = stubbed("ce", "us-east-1")
    made: list[tuple[str, str]] = []
    facts = AccountFactsReader(Clients(make=lambda s, r: made.append((s, r)) or ce, region=REGION))
    with Stubber(ce) as stub:
        stub.add_response(
            "get_anomaly_monitors",
            {
                "AnomalyMonitors": [
                    {
                        "MonitorName": "Tags",
                        "MonitorArn": f"{MONITOR_ARN}0",
                        "MonitorType": "CUSTOM",
                        "MonitorSpecification": {"Tags": {"Key": "team", "Values": ["a"]}},
                    }
                ],
                "NextPageToken": "p2",
            },
            {},
        )
        stub.add_response("get_anomaly_monitors", {"AnomalyMonitors": [
            {"MonitorName": "Default-Services-Monitor", "MonitorArn": MONITOR_ARN, "MonitorType": "DIMENSIONAL",
             "MonitorDimension": "SERVICE", "CreationDate": "2021-05-25"}]}, {"NextPageToken": "p2"})  # fmt: skip

        monitors = facts.monitors()

    assert made == [("ce", "us-east-1")]
    assert monitors[1] == AnomalyMonitor(
        "Default-Services-Monitor", MONITOR_ARN, "DIMENSIONAL", "SERVICE", "2021-05-25"
    )
    assert monitors[0].dimension is None


def test_cost_allocation_tags_are_asked_for_the_attribution_keys():
    ce = stubbed("ce", "us-east-1")
    with Stubber(ce) as stub:
        stub.add_response(
            "list_cost_allocation_tags",
            {"CostAllocationTags": [{"TagKey": "Team", "Type": "UserDefined", "Status": "Inactive"}]},
            {"TagKeys": ["Team", "CostCenter"], "Type": "UserDefined"},
        )

        tags = reader(ce=ce).cost_allocation_tags(("Team", "CostCenter"))

    assert tags == {"Team": "Inactive"}


def test_ses_account_and_the_sender_identities():
    sesv2 = stubbed("sesv2")
    with Stubber(sesv2) as stub:
        stub.add_response("get_account", {"ProductionAccessEnabled": False, "SendingEnabled": True})
        stub.add_client_error("get_email_identity", "NotFoundException", http_status_code=404,
                              expected_params={"EmailIdentity": "billing@example.com"})  # fmt: skip
        stub.add_response("get_email_identity", {"IdentityType": "DOMAIN", "VerifiedForSendingStatus": True},
                          {"EmailIdentity": "example.com"})  # fmt: skip

        account, identities = reader(sesv2=sesv2).ses("billing@example.com")

    assert account == SesAccount(production_access=False, sending_enabled=True)
    assert identities == (SesIdentity("example.com", True),)


def test_the_policy_simulator_is_asked_for_the_assumed_role_with_its_path(aws):
    iam = stubbed("iam")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0a1b"
    caller = reader().caller()
    caller = type(caller)(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0a1b/jane")
    roles = [f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-role-{ACCOUNT}-{REGION}"
             for kind in ("deploy", "file-publishing", "lookup")]  # fmt: skip
    with Stubber(iam) as stub:
        role = {
            "Path": "/aws-reserved/sso.amazonaws.com/",
            "RoleName": "AWSReservedSSO_Admin_0a1b",
            "RoleId": "AROAEXAMPLEID00000000",
            "Arn": role_arn,
            "CreateDate": datetime(2024, 1, 1, tzinfo=UTC),
        }
        stub.add_response("get_role", {"Role": role}, {"RoleName": "AWSReservedSSO_Admin_0a1b"})
        results = [{"EvalActionName": "sts:AssumeRole", "EvalResourceName": arn, "EvalDecision": decision}
                   for arn, decision in zip(roles, ("allowed", "implicitDeny", "allowed"), strict=True)]  # fmt: skip
        stub.add_response("simulate_principal_policy", {"EvaluationResults": results[:2], "IsTruncated": True,
                          "Marker": "m2"}, {"PolicySourceArn": role_arn, "ActionNames": ["sts:AssumeRole"],
                          "ResourceArns": roles})  # fmt: skip
        stub.add_response("simulate_principal_policy", {"EvaluationResults": results[2:], "IsTruncated": False},
                          {"PolicySourceArn": role_arn, "ActionNames": ["sts:AssumeRole"], "ResourceArns": roles,
                           "Marker": "m2"})  # fmt: skip

        principal, decisions = reader(iam=iam).deploy_roles(caller, REGION)

    assert principal == role_arn
    assert decisions[1] == RoleDecision(roles[1], "implicitDeny")
    assert len(decisions) == 3


@pytest.mark.parametrize(
    ("service", "method", "read", "action"),
    [
        ("ce", "get_anomaly_monitors", lambda r: r.monitors(), "ce:GetAnomalyMonitors"),
        ("ce", "list_cost_allocation_tags", lambda r: r.cost_allocation_tags(("Team",)), "ce:ListCostAllocationTags"),
        ("cloudformation", "describe_stacks", lambda r: r.stack("FinOpsGuard-it"), "cloudformation:DescribeStacks"),
        ("organizations", "describe_organization", lambda r: r.organization(), "organizations:DescribeOrganization"),
        ("apigateway", "get_account", lambda r: r.api_gateway_role(), "apigateway:GET"),
        ("dynamodb", "describe_table", lambda r: r.table("finops-guard-it-outbox"), "dynamodb:DescribeTable"),
        ("secretsmanager", "describe_secret", lambda r: r.secret("finops-guard/it/stripe-api-key"),
         "secretsmanager:DescribeSecret"),
        ("ssm", "get_parameter", lambda r: r.bootstrap_version(), "ssm:GetParameter"),
        ("sesv2", "get_account", lambda r: r.ses("b@example.com")[0], "ses:GetAccount"),
    ],
)  # fmt: skip
def test_access_denied_becomes_a_fact_naming_the_action(service, method, read, action):
    client = denied(service, method, code="AccessDenied" if service == "cloudformation" else "AccessDeniedException",
                    region="us-east-1" if service == "ce" else REGION)  # fmt: skip

    gap = read(reader(**{service: client}))

    assert isinstance(gap, Unanswered)
    assert (gap.action, gap.denied) == (action, True)


def test_a_denied_simulation_is_a_fact_too(deployer):
    iam = stubbed("iam")
    with Stubber(iam) as stub:
        stub.add_client_error("simulate_principal_policy", "AccessDenied", http_status_code=403)
        caller = reader().caller()  # a user: nothing to look up first

        principal, decisions = reader(iam=iam).deploy_roles(caller, REGION)

    assert principal == deployer
    assert (decisions.action, decisions.denied) == ("iam:SimulatePrincipalPolicy", True)


def test_refused_credentials_make_aws_unreachable():
    sts = stubbed("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken", http_status_code=403)

        with pytest.raises(AwsUnreachable, match=r"AWS refused the credentials \(ExpiredToken\)"):
            reader(sts=sts).caller()


def test_an_endpoint_that_does_not_answer_makes_aws_unreachable(monkeypatch, tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
                        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    (tmp_path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    monkeypatch.chdir(tmp_path)

    code = cli.main(["preflight", "--stage", "it"])

    err = capsys.readouterr().err
    assert code == 4
    assert err.strip() == (
        f"finops-guard: cannot reach http://127.0.0.1:{port} (EndpointConnectionError): check the network or "
        "AWS_ENDPOINT_URL"
    )


# --- the whole preflight on moto and stubs ----------------------------------------------------------------


def test_preflight_end_to_end_reports_json(deployer, monkeypatch, tmp_path, capsys):
    """A leftover ledger to adopt, an existing services monitor, an unbootstrapped region, inactive tags."""
    boto3.client("dynamodb").create_table(
        TableName="finops-guard-it-billing-ledger", BillingMode="PAY_PER_REQUEST", Tags=OURS,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )  # fmt: skip
    ce, iam = stubbed("ce", "us-east-1"), stubbed("iam")
    ce_stub, iam_stub = Stubber(ce), Stubber(iam)
    services = {
        "MonitorName": "Default-Services-Monitor",
        "MonitorArn": MONITOR_ARN,
        "MonitorType": "DIMENSIONAL",
        "MonitorDimension": "SERVICE",
    }
    ce_stub.add_response("get_anomaly_monitors", {"AnomalyMonitors": [services]})
    ce_stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": []})
    results = [{"EvalActionName": "sts:AssumeRole", "EvalResourceName": f"arn:aws:iam::{ACCOUNT}:role/cdk-{k}",
                "EvalDecision": "allowed"} for k in ("a", "b", "c")]  # fmt: skip
    iam_stub.add_response("simulate_principal_policy", {"EvaluationResults": results, "IsTruncated": False})
    ce_stub.activate()
    iam_stub.activate()
    monkeypatch.setattr(cli_preflight, "facts_reader", lambda: reader(ce=ce, iam=iam))
    (tmp_path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    monkeypatch.chdir(tmp_path)

    code = cli.main(["preflight", "--stage", "it", "--json"])

    report = json.loads(capsys.readouterr().out)
    statuses = {f["item"]: f["status"] for f in report["findings"] if f["item"] != "named resources"}
    assert code == 1
    assert (report["account"], report["region"]) == (ACCOUNT, REGION)
    assert statuses == {
        "permissions": OK,
        "cdk bootstrap": BLOCKING,
        "region": WARN,
        "stack": OK,
        "services monitor": WILL_ADOPT,
        "custom monitors": OK,
        "api gateway logging role": OK,
        "cost allocation tag Team": WARN,
        "cost allocation tag CostCenter": WARN,
    }
    named = [f for f in report["findings"] if f["item"] == "named resources"]
    assert [f["status"] for f in named] == [OK, WILL_ADOPT]
    assert named[1]["fix"] == "npx cdk deploy --all -c stage=it --import-existing-resources"
    ce_stub.assert_no_pending_responses()


def test_gather_asks_nothing_of_ses_without_a_dunning_sender(deployer):
    ce = stubbed("ce", "us-east-1")
    with Stubber(ce) as stub:
        stub.add_response("get_anomaly_monitors", {"AnomalyMonitors": []})
        stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": [
            {"TagKey": "Team", "Type": "UserDefined", "Status": "Active"}]})  # fmt: skip
        iam = denied("iam", "simulate_principal_policy", code="AccessDenied")

        facts = reader(ce=ce, iam=iam).gather(CONFIG)

    assert (facts.ses_account, facts.ses_identities) == (None, ())
    findings = {f.item: f for f in assess(CONFIG, facts, datetime.now(UTC).date())}
    assert findings["permissions"].status == WARN
    assert "iam:SimulatePrincipalPolicy" in findings["permissions"].detail


# --- paging check -----------------------------------------------------------------------------------------


def test_the_pager_reads_and_sets_a_moto_alarm_and_lists_subscriptions(aws):
    sns, cloudwatch = boto3.client("sns"), boto3.client("cloudwatch")
    topic = sns.create_topic(Name="finops-guard-it-ops-alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    cloudwatch.put_metric_alarm(
        AlarmName="FinOpsGuard-it-Failures", Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=1, TreatMissingData="notBreaching",
        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic], OKActions=[topic],
    )  # fmt: skip
    pager = AlarmPager(Clients(make=lambda s, r: boto3.client(s, region_name=r), region=REGION))

    alarm = pager.alarm("FinOpsGuard-it-Failures")
    pager.set_alarm(alarm.name, "FinOps Guard paging check")

    assert (alarm.state, alarm.actions_enabled, alarm.alarm_actions, alarm.period_s) == ("OK", True, (topic,), 300)
    assert pager.alarm(alarm.name).state == "ALARM"
    assert isinstance(pager.state_updated_at(alarm.name), datetime)
    assert pager.alarm("nope") is None
    assert pager.subscriptions(topic) == (Subscription("email", "oncall@example.com", pending=False),)


def test_the_pager_reads_action_history_and_pending_subscriptions():
    cloudwatch, sns = stubbed("cloudwatch"), stubbed("sns")
    since = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:finops-guard-it-ops-alarms"
    with Stubber(cloudwatch) as cw_stub, Stubber(sns) as sns_stub:
        cw_stub.add_response("describe_alarm_history", {"AlarmHistoryItems": [{
            "AlarmName": "a", "Timestamp": since + timedelta(seconds=3), "HistoryItemType": "Action",
            "HistorySummary": f"Successfully executed action {topic}", "HistoryData": "{}"}]},
            {"AlarmName": "a", "HistoryItemType": "Action", "StartDate": since, "ScanBy": "TimestampDescending",
             "MaxRecords": 50})  # fmt: skip
        pending = {
            "SubscriptionArn": "PendingConfirmation",
            "Protocol": "https",
            "TopicArn": topic,
            "Endpoint": "https://events.pagerduty.com/integration/k/enqueue",
        }
        sns_stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [pending]}, {"TopicArn": topic})
        pager = AlarmPager(Clients(make=lambda s, r: {"cloudwatch": cloudwatch, "sns": sns}[s], region=REGION))

        items = pager.history("a", since)
        subscriptions = pager.subscriptions(topic)

    assert items == [HistoryItem(since + timedelta(seconds=3), f"Successfully executed action {topic}", "{}")]
    assert subscriptions[0].pending is True


def test_a_refused_set_alarm_state_is_a_fact_naming_the_action():
    cloudwatch = denied("cloudwatch", "set_alarm_state", code="AccessDenied")
    pager = AlarmPager(Clients(make=lambda s, r: cloudwatch, region=REGION))

    gap = pager.set_alarm("a", "FinOps Guard paging check")

    assert (gap.action, gap.denied) == ("cloudwatch:SetAlarmState", True)


def test_paging_check_end_to_end_with_a_failed_publish(aws, monkeypatch, capsys):
    """CloudWatch (stubbed) could not publish: the check says why and exits 1, after polling twice."""
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="finops-guard-it-ops-alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    cloudwatch = stubbed("cloudwatch")
    name, set_at = "FinOpsGuard-it-Failures", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    alarm = {"AlarmName": name, "StateValue": "OK", "ActionsEnabled": True, "AlarmActions": [topic], "Period": 300}
    stub = Stubber(cloudwatch)
    stub.add_response(
        "describe_alarms", {"MetricAlarms": [alarm]}, {"AlarmNames": [name], "AlarmTypes": ["MetricAlarm"]}
    )
    stub.add_response("set_alarm_state", {}, {"AlarmName": name, "StateValue": "ALARM",
                                              "StateReason": "FinOps Guard paging check"})  # fmt: skip
    stub.add_response("describe_alarms", {"MetricAlarms": [{**alarm, "StateValue": "ALARM",
                                                            "StateUpdatedTimestamp": set_at}]})  # fmt: skip
    stub.add_response("describe_alarm_history", {"AlarmHistoryItems": []})
    stub.add_response("describe_alarm_history", {"AlarmHistoryItems": [{
        "AlarmName": name, "Timestamp": set_at + timedelta(seconds=4), "HistoryItemType": "Action",
        "HistorySummary": f"Failed to execute action {topic}. Received error: \"CloudWatch Alarms is not authorized "
                          f"to perform: SNS:Publish on resource:{topic}\""}]})  # fmt: skip
    stub.activate()
    slept: list[float] = []
    clients = Clients(
        make=lambda s, r: cloudwatch if s == "cloudwatch" else boto3.client(s, region_name=r), region=REGION
    )
    monkeypatch.setattr(cli_preflight, "alarm_pager", lambda: AlarmPager(clients))
    monkeypatch.setattr(cli_preflight, "sleep", slept.append)
    monkeypatch.setattr(cli_preflight, "clock", lambda: sum(slept))

    code = cli.main(["paging-check", "--stage", "it"])

    out = capsys.readouterr().out
    assert code == 1
    assert slept == [5.0]
    assert "CloudWatch could not publish" in out
    assert "not authorized to perform: SNS:Publish" in out
    assert "[ok]         subscriptions: confirmed on finops-guard-it-ops-alarms: email oncall@example.com" in out
    stub.assert_no_pending_responses()
