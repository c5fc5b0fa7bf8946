"""Cross-principal paths, proven by evaluating the synthesized policies (moto enforces none of them).

Each test asks the evaluator in ``policy_eval`` whether one documented request is allowed: CloudWatch
publishing an alarm to the ops topic, Cost Anomaly Detection publishing to its topic, SNS and
EventBridge delivering into the anomaly inbox, functions publishing to the topics they are configured
with and reporting failed events to the stage's failure queue, S3 delivering access logs, EventBridge
Scheduler and API Gateway invoking functions.

The evaluator reads the merged template of the three stacks, so a product stack's Fn::ImportValue
resolves to what the core exports (the ops topic, the failure queue).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from conftest import (
    Synth,
    arn_of,
    function_of,
    joined_text,
    logical_id,
    ops_topic_ref,
    queue_id_of,
    ref,
    tls_only_publish_deny,
    topic_id_of,
)
from policy_eval import ACCOUNT, OTHER_ACCOUNT, REGION, Decision, PolicyEvaluator, Principal, role, service

pytestmark = pytest.mark.infra

TLS = {"aws:SecureTransport": True}
PLAIN_HTTP = {"aws:SecureTransport": False}
CLOUDWATCH = service("cloudwatch.amazonaws.com")
COST_ANOMALY_DETECTION = service("costalerts.amazonaws.com")
TOPICS = ("ops-alarms", "finance-alerts", "cost-anomalies")


@pytest.fixture(scope="module")
def policies(full_synth: Synth) -> PolicyEvaluator:
    return PolicyEvaluator(full_synth.template_json)


def ops_topic_refs(synth: Synth) -> list[dict[str, str]]:
    """How a stack names the ops topic: a Ref in the core, the core's export elsewhere."""
    return [
        ref(topic_id_of(synth, "ops-alarms")),
        ops_topic_ref(synth),
    ]


def alarms_paging(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarms of any stack with any action (alarm, OK, insufficient data) on the ops topic, by logical id."""
    topic = ops_topic_refs(synth)
    return {
        lid: alarm["Properties"]
        for lid, alarm in synth.resources("AWS::CloudWatch::Alarm").items()
        if any(
            action in topic
            for actions in ("AlarmActions", "OKActions", "InsufficientDataActions")
            for action in alarm["Properties"].get(actions, [])
        )
    }


def failure_queue_id(synth: Synth) -> str:
    return queue_id_of(synth, "failures")


def alarm_context(policies: PolicyEvaluator, alarm_name: str, account: str = ACCOUNT) -> dict[str, Any]:
    """What CloudWatch sends with an alarm's publish: the alarm's account and ARN."""
    return {"aws:SourceAccount": account, "aws:SourceArn": policies.alarm_arn(alarm_name, account=account)} | TLS


# --- the ops topic: CloudWatch alarms ---------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_every_alarm_paging_the_ops_topic_is_named_for_this_stage(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    # The topic policy lets CloudWatch publish only for FinOpsGuard-<stage>-*: an alarm named otherwise
    # would deploy cleanly and never page.
    synth: Synth = request.getfixturevalue(synth_name)
    pattern = f"FinOpsGuard-{synth.stack.config.stage}-*"
    alarms = alarms_paging(synth)

    assert set(alarms) == set(synth.resources("AWS::CloudWatch::Alarm"))  # every alarm of the three stacks
    assert len(alarms) == 10  # exact per stack: test_infra_monitoring.py
    names = {lid: properties.get("AlarmName") for lid, properties in alarms.items()}
    # A name CloudFormation generates (no AlarmName) or builds from tokens would not be checked here.
    assert {
        lid: name for lid, name in names.items() if not (isinstance(name, str) and fnmatchcase(name, pattern))
    } == {}


def test_ops_topic_policy_allows_this_stages_alarms_of_this_account_over_tls_only(full_synth: Synth) -> None:
    topic = ref(topic_id_of(full_synth, "ops-alarms"))
    [policy] = [
        p["Properties"]
        for p in full_synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [topic]
    ]

    assert policy["PolicyDocument"]["Statement"] == [
        tls_only_publish_deny(topic),
        {
            "Sid": "AllowCloudWatchAlarmsToPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":cloudwatch:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":alarm:FinOpsGuard-qa-*",
                            ],
                        ]
                    }
                },
            },
        },
    ]


def test_cloudwatch_may_publish_every_alarm_of_every_stack_to_the_ops_topic(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    topic = policies.topic_arn(topic_id_of(full_synth, "ops-alarms"))
    refused = {}

    for alarm in alarms_paging(full_synth).values():
        outcome = policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, alarm_context(policies, alarm["AlarmName"]))
        if not outcome:
            refused[alarm["AlarmName"]] = outcome.reason

    assert {
        policies.template.resolve(a) for alarm in alarms_paging(full_synth).values() for a in alarm["AlarmActions"]
    } == {topic}
    assert refused == {}


def test_the_ops_topic_is_unencrypted_so_alarms_need_no_key(full_synth: Synth) -> None:
    # CloudWatch can publish to an encrypted topic only with a customer managed key whose policy lets it
    # in; the alarms carry no secrets, so the topic takes none and no stack holds a key.
    topic = full_synth.template_json["Resources"][topic_id_of(full_synth, "ops-alarms")]["Properties"]

    assert "KmsMasterKeyId" not in topic
    assert full_synth.resources("AWS::KMS::Key") == {}


def published_by(account: str, alarm: str, *, arn_account: str | None = None, region: str = REGION) -> dict[str, Any]:
    arn = f"arn:aws:cloudwatch:{region}:{arn_account or account}:alarm:{alarm}"
    return {"aws:SourceAccount": account, "aws:SourceArn": arn}


FAILURES_ALARM = "FinOpsGuard-qa-Failures"


@pytest.mark.parametrize(
    ("case", "context", "decision"),
    [
        (
            "another account's alarm of the same name",
            published_by(OTHER_ACCOUNT, FAILURES_ALARM) | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "this account's alarm, claimed for another account",
            published_by(OTHER_ACCOUNT, FAILURES_ALARM, arn_account=ACCOUNT) | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "another stage's alarm",
            published_by(ACCOUNT, "FinOpsGuard-prod-Failures") | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "an alarm of another region",
            published_by(ACCOUNT, FAILURES_ALARM, region="us-east-1") | TLS,
            Decision.IMPLICIT_DENY,
        ),
        ("a request naming no alarm", TLS, Decision.IMPLICIT_DENY),
        (
            "this stage's alarm over plain HTTP",
            published_by(ACCOUNT, FAILURES_ALARM) | PLAIN_HTTP,
            Decision.EXPLICIT_DENY,
        ),
    ],
)
def test_cloudwatch_may_not_publish_to_the_ops_topic_for_anything_else(
    full_synth: Synth, policies: PolicyEvaluator, case: str, context: dict[str, Any], decision: Decision
) -> None:
    topic = policies.topic_arn(topic_id_of(full_synth, "ops-alarms"))

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, context).decision is decision, case


def test_only_the_ops_topic_takes_cloudwatch_alarms(full_synth: Synth, policies: PolicyEvaluator) -> None:
    context = alarm_context(policies, FAILURES_ALARM)

    for short_name in ("finance-alerts", "cost-anomalies"):
        topic = policies.topic_arn(topic_id_of(full_synth, short_name))
        assert not policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, context), short_name


# --- the anomaly topic: Cost Anomaly Detection -----------------------------------------------


def test_cost_anomaly_detection_may_publish_to_its_topic_for_this_account_only(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    topic = policies.topic_arn(topic_id_of(full_synth, "cost-anomalies"))

    assert policies.is_allowed(COST_ANOMALY_DETECTION, "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT} | TLS)
    assert not policies.is_allowed(
        COST_ANOMALY_DETECTION, "sns:Publish", topic, {"aws:SourceAccount": OTHER_ACCOUNT} | TLS
    )
    assert not policies.is_allowed(COST_ANOMALY_DETECTION, "sns:Publish", topic, TLS)
    outcome = policies.is_allowed(
        COST_ANOMALY_DETECTION, "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT} | PLAIN_HTTP
    )
    assert outcome.decision is Decision.EXPLICIT_DENY


def test_the_anomaly_topic_is_unencrypted_so_cost_anomaly_detection_needs_no_key(full_synth: Synth) -> None:
    # Like CloudWatch, Cost Anomaly Detection publishes to an encrypted topic only through a customer
    # managed key; an anomaly notice carries no secret.
    topic = full_synth.template_json["Resources"][topic_id_of(full_synth, "cost-anomalies")]["Properties"]

    assert "KmsMasterKeyId" not in topic


def test_cost_anomaly_detection_may_use_no_other_topic(full_synth: Synth, policies: PolicyEvaluator) -> None:
    context = {"aws:SourceAccount": ACCOUNT} | TLS

    for short_name in ("ops-alarms", "finance-alerts"):
        topic_id = topic_id_of(full_synth, short_name)
        assert not policies.is_allowed(COST_ANOMALY_DETECTION, "sns:Publish", policies.topic_arn(topic_id), context)


# --- the anomaly inbox: SNS and EventBridge deliveries ----------------------------------------


def anomaly_rule_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::Events::Rule", "Name", f"finops-guard-{synth.stack.config.stage}-anomaly-detected")


def test_the_anomaly_topic_and_the_anomaly_rule_deliver_into_the_inbox(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    inbox_id = queue_id_of(full_synth, "anomaly-inbox")
    inbox = policies.arn(inbox_id)
    topic_id = topic_id_of(full_synth, "cost-anomalies")
    rule_id = anomaly_rule_id(full_synth)
    # The deliveries these statements are for exist: the topic's SQS subscription, the rule's target.
    assert any(
        s["Properties"]
        == {"Endpoint": arn_of(inbox_id), "Protocol": "sqs", "RawMessageDelivery": False, "TopicArn": ref(topic_id)}
        for s in full_synth.resources("AWS::SNS::Subscription").values()
    )
    assert [t["Arn"] for t in full_synth.template_json["Resources"][rule_id]["Properties"]["Targets"]] == [
        arn_of(inbox_id)
    ]

    from_topic = {"aws:SourceArn": policies.topic_arn(topic_id), "aws:SourceAccount": ACCOUNT} | TLS
    from_rule = {"aws:SourceArn": policies.arn(rule_id), "aws:SourceAccount": ACCOUNT} | TLS
    assert policies.is_allowed(service("sns.amazonaws.com"), "sqs:SendMessage", inbox, from_topic)
    assert policies.is_allowed(service("events.amazonaws.com"), "sqs:SendMessage", inbox, from_rule)


@pytest.mark.parametrize(
    ("principal", "source_arn"),
    [
        (service("sns.amazonaws.com"), "arn:aws:sns:{region}:{account}:finops-guard-qa-ops-alarms"),
        (service("sns.amazonaws.com"), "arn:aws:sns:{region}:{other}:finops-guard-qa-cost-anomalies"),
        (service("events.amazonaws.com"), "arn:aws:events:{region}:{account}:rule/another-rule"),
        (service("events.amazonaws.com"), "arn:aws:events:{region}:{other}:rule/finops-guard-qa-anomaly-detected"),
        (service("sns.amazonaws.com"), "arn:aws:events:{region}:{account}:rule/finops-guard-qa-anomaly-detected"),
    ],
)
def test_nothing_else_delivers_into_the_inbox(
    full_synth: Synth, policies: PolicyEvaluator, principal: Principal, source_arn: str
) -> None:
    inbox = policies.arn(queue_id_of(full_synth, "anomaly-inbox"))
    context = {"aws:SourceArn": source_arn.format(region=REGION, account=ACCOUNT, other=OTHER_ACCOUNT)} | TLS

    assert not policies.is_allowed(principal, "sqs:SendMessage", inbox, context)


def test_the_inbox_refuses_deliveries_over_plain_http(full_synth: Synth, policies: PolicyEvaluator) -> None:
    inbox = policies.arn(queue_id_of(full_synth, "anomaly-inbox"))
    context = {"aws:SourceArn": policies.topic_arn(topic_id_of(full_synth, "cost-anomalies"))} | PLAIN_HTTP

    outcome = policies.is_allowed(service("sns.amazonaws.com"), "sqs:SendMessage", inbox, context)

    assert outcome.decision is Decision.EXPLICIT_DENY


# --- functions publishing to the topics -------------------------------------------------------


def functions_configured_with_a_topic(synth: Synth, policies: PolicyEvaluator) -> dict[str, tuple[str, str]]:
    """Functions whose environment holds a topic's ARN (a Ref, or an import of the core's):
    ``{function name: (role id, topic id)}``."""
    topics = {
        policies.topic_arn(topic_id_of(synth, short_name)): topic_id_of(synth, short_name) for short_name in TOPICS
    }
    found = {}
    for function in synth.resources("AWS::Lambda::Function").values():
        properties = function["Properties"]
        for value in properties.get("Environment", {}).get("Variables", {}).values():
            if isinstance(value, dict) and set(value) <= {"Ref", "Fn::ImportValue"}:
                topic = topics.get(policies.template.resolve(value))
            else:
                topic = None
            if topic:
                found[properties["FunctionName"]] = (properties["Role"]["Fn::GetAtt"][0], topic)
    return found


def test_the_budget_guard_is_the_one_function_that_publishes_to_a_topic(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    # Nothing in layers/common/python/finops_guard publishes to the ops or anomaly topic; only the budget
    # guard mails the finance topic (FINOPSGUARD_ALERT_TOPIC_ARN). A new publisher lands here.
    guard_role = function_of(full_synth, "budget-guard")[1]["Role"]["Fn::GetAtt"][0]

    assert functions_configured_with_a_topic(full_synth, policies) == {
        "finops-guard-qa-budget-guard": (guard_role, topic_id_of(full_synth, "finance-alerts"))
    }


def test_every_function_configured_with_a_topic_may_publish_to_it(full_synth: Synth, policies: PolicyEvaluator) -> None:
    refused = {}
    for name, (role_id, topic_id) in functions_configured_with_a_topic(full_synth, policies).items():
        outcome = policies.is_allowed(role(policies.arn(role_id)), "sns:Publish", policies.topic_arn(topic_id), TLS)
        if not outcome:
            refused[name] = outcome.reason

    assert functions_configured_with_a_topic(full_synth, policies)
    assert refused == {}


def test_the_finance_topic_uses_the_aws_managed_sns_key_so_its_publisher_needs_no_kms_grant(
    full_synth: Synth,
) -> None:
    # alias/aws/sns lets every principal of the account use it through SNS: the budget guard's sns:Publish
    # is the whole grant, and no role holds a kms: statement.
    topic = full_synth.template_json["Resources"][topic_id_of(full_synth, "finance-alerts")]["Properties"]
    kms_statements = [
        (lid, statement.get("Sid"))
        for lid, policy in full_synth.resources("AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("kms:") for action in _as_list(statement["Action"]))
    ]

    assert topic["KmsMasterKeyId"] == {
        "Fn::Join": [
            "",
            ["arn:", ref("AWS::Partition"), ":kms:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":alias/aws/sns"],
        ]
    }
    assert kms_statements == []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_function_role_may_publish_to_a_topic_it_is_not_configured_with(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    configured = set(functions_configured_with_a_topic(full_synth, policies).values())
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in full_synth.resources("AWS::Lambda::Function").values()}
    unexpected = []

    for role_id in sorted(roles):
        publisher = role(policies.arn(role_id))
        for short_name in TOPICS:
            topic_id = topic_id_of(full_synth, short_name)
            if policies.is_allowed(publisher, "sns:Publish", policies.topic_arn(topic_id), TLS):
                if (role_id, topic_id) not in configured:
                    unexpected.append((role_id, short_name))

    assert len(roles) == 12  # every function of the two product stacks
    assert unexpected == []


# --- the dunning sender: SMS to phone numbers, nothing else -----------------------------------

PHONE_NUMBER = "+15555550100"  # IAM authorises an SMS against the number itself (see policy_eval)


def dunning_sender(full_synth: Synth, policies: PolicyEvaluator) -> Principal:
    return role(policies.arn(function_of(full_synth, "dunning-sender")[1]["Role"]["Fn::GetAtt"][0]))


def test_the_dunning_sender_may_text_a_phone_number(full_synth: Synth, policies: PolicyEvaluator) -> None:
    outcome = policies.is_allowed(dunning_sender(full_synth, policies), "sns:Publish", PHONE_NUMBER, TLS)

    assert outcome.allowed, outcome.reason


@pytest.mark.parametrize(
    "target",
    [
        *TOPICS,  # the stack's own topics, by short name
        f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-elses-topic",
        f"arn:aws:sns:us-east-1:{OTHER_ACCOUNT}:exfiltration",
        f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/mobile-app/0a1b2c3d-0000-4000-8000-000000000000",
    ],
)
def test_the_dunning_sender_may_publish_to_no_topic_or_endpoint(
    full_synth: Synth, policies: PolicyEvaluator, target: str
) -> None:
    resource = policies.topic_arn(topic_id_of(full_synth, target)) if target in TOPICS else target

    outcome = policies.is_allowed(dunning_sender(full_synth, policies), "sns:Publish", resource, TLS)

    assert outcome.decision is Decision.EXPLICIT_DENY, outcome.reason


# --- S3 server access logs --------------------------------------------------------------------


def logged_buckets(synth: Synth) -> list[tuple[str, str, str]]:
    """``(source bucket id, log bucket id, log prefix)`` for every bucket that writes access logs."""
    return [
        (lid, bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]["Ref"], prefix)
        for lid, bucket in synth.resources("AWS::S3::Bucket").items()
        if (prefix := bucket["Properties"].get("LoggingConfiguration", {}).get("LogFilePrefix"))
    ]


def test_s3_may_deliver_each_buckets_access_logs_under_its_prefix_only(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    logging_service = service("logging.s3.amazonaws.com")
    buckets = logged_buckets(full_synth)
    assert len(buckets) == 2  # the chargeback and the ledger export buckets

    for source_id, log_bucket_id, prefix in buckets:
        log_objects = f"{policies.arn(log_bucket_id)}/{prefix}2026-01-01-00-00-00-0123456789ABCDEF"
        from_source = {"aws:SourceArn": policies.arn(source_id), "aws:SourceAccount": ACCOUNT} | TLS
        assert policies.is_allowed(logging_service, "s3:PutObject", log_objects, from_source), source_id

        other = f"arn:aws:s3:::{OTHER_ACCOUNT}-bucket"
        assert not policies.is_allowed(
            logging_service, "s3:PutObject", log_objects, from_source | {"aws:SourceArn": other}
        )
        assert not policies.is_allowed(
            logging_service, "s3:PutObject", log_objects, from_source | {"aws:SourceAccount": OTHER_ACCOUNT}
        )
        elsewhere = f"{policies.arn(log_bucket_id)}/another-prefix/object"
        assert not policies.is_allowed(logging_service, "s3:PutObject", elsewhere, from_source)


# --- EventBridge Scheduler --------------------------------------------------------------------


def test_every_schedule_may_assume_its_role_invoke_its_function_and_park_failed_events(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    scheduler = service("scheduler.amazonaws.com")
    schedules = full_synth.resources("AWS::Scheduler::Schedule")
    failures = policies.arn(failure_queue_id(full_synth))
    assert len(schedules) == 7
    refused = {}

    for lid, schedule in schedules.items():
        target = schedule["Properties"]["Target"]
        role_arn = policies.arn(target["RoleArn"]["Fn::GetAtt"][0])
        assert policies.template.resolve(target["DeadLetterConfig"]["Arn"]) == failures, lid
        checks = [
            (scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": ACCOUNT}),
            (role(role_arn), "lambda:InvokeFunction", policies.arn(target["Arn"]["Fn::GetAtt"][0]), TLS),
            (role(role_arn), "sqs:SendMessage", failures, TLS),
        ]
        for principal, action, resource, context in checks:
            outcome = policies.is_allowed(principal, action, resource, context)
            if not outcome:
                refused[f"{lid} {action}"] = outcome.reason
        assert not policies.is_allowed(scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": OTHER_ACCOUNT})

    assert refused == {}


def test_only_the_failure_paths_may_send_to_the_failure_queue(full_synth: Synth, policies: PolicyEvaluator) -> None:
    # Each function's role (Lambda's on-failure destination and the stream mapping send with it) and each
    # schedule's role; no other role of the stages' stacks. (Test_infra_monitoring follows each function's
    # path to the queue.)
    failures = policies.arn(failure_queue_id(full_synth))
    function_roles = {
        f["Properties"]["Role"]["Fn::GetAtt"][0] for f in full_synth.resources("AWS::Lambda::Function").values()
    }
    schedule_roles = {
        s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        for s in full_synth.resources("AWS::Scheduler::Schedule").values()
    }

    roles = full_synth.resources("AWS::IAM::Role")
    # The one role with a managed policy, which the evaluator does not read: API Gateway's, for its logs.
    managed = {
        lid: r["Properties"]["ManagedPolicyArns"] for lid, r in roles.items() if "ManagedPolicyArns" in r["Properties"]
    }
    assert [joined_text(arn) for [arn] in managed.values()] == [
        "arn:<Ref:AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ]

    senders = {
        lid
        for lid in roles
        if lid not in managed and policies.is_allowed(role(policies.arn(lid)), "sqs:SendMessage", failures, TLS)
    }

    assert senders == function_roles | schedule_roles
    assert not policies.is_allowed(role(policies.arn(next(iter(senders)))), "sqs:SendMessage", failures, PLAIN_HTTP)
    assert not policies.is_allowed(service("sns.amazonaws.com"), "sqs:SendMessage", failures, TLS)


# --- API Gateway ------------------------------------------------------------------------------


def test_api_gateway_may_invoke_each_function_through_its_own_routes_only(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    api_gateway = service("apigateway.amazonaws.com")
    permissions = full_synth.resources("AWS::Lambda::Permission")
    assert permissions

    for lid, permission in permissions.items():
        properties = permission["Properties"]
        function = policies.arn(properties["FunctionName"]["Fn::GetAtt"][0])
        route = policies.template.resolve(properties["SourceArn"]).replace("*", "in_1234")  # {id} in the path
        assert properties["Principal"] == "apigateway.amazonaws.com", lid
        assert policies.is_allowed(api_gateway, "lambda:InvokeFunction", function, {"aws:SourceArn": route}), lid

        another_api = route.replace(policies.template.ref(api_id(full_synth)), "otherapi42")
        assert not policies.is_allowed(api_gateway, "lambda:InvokeFunction", function, {"aws:SourceArn": another_api})
        assert not policies.is_allowed(api_gateway, "lambda:InvokeFunction", function, {})


def api_id(synth: Synth) -> str:
    return logical_id(synth, "AWS::ApiGateway::RestApi", "Name", f"finops-guard-{synth.stack.config.stage}-billing")
