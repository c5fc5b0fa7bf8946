"""Cross-principal paths, proven by evaluating the synthesized policies (moto enforces none of them).

Each test asks the evaluator in ``policy_eval`` whether one documented request is allowed: CloudWatch
publishing an alarm to the ops topic, Cost Anomaly Detection publishing to its topic, SNS and
EventBridge delivering into the anomaly inbox, functions publishing to the topics they are configured
with and parking failed events, S3 delivering access logs, EventBridge Scheduler and API Gateway
invoking functions.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest
from conftest import Synth, arn_of, function_of, logical_id, queue_id_of, ref, tls_only_publish_deny, topic_id_of
from policy_eval import ACCOUNT, OTHER_ACCOUNT, REGION, Decision, PolicyEvaluator, Principal, role, service

pytestmark = pytest.mark.infra

TLS = {"aws:SecureTransport": True}
PLAIN_HTTP = {"aws:SecureTransport": False}
CLOUDWATCH = service("cloudwatch.amazonaws.com")
COST_ANOMALY_DETECTION = service("costalerts.amazonaws.com")
DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
TOPICS = ("ops-alarms", "finance-alerts", "cost-anomalies")


@pytest.fixture(scope="module")
def policies(full_synth: Synth) -> PolicyEvaluator:
    return PolicyEvaluator(full_synth.template_json)


def key_id_of(synth: Synth, topic_id: str) -> str:
    return synth.template_json["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]


def alarms_paging(synth: Synth, topic_id: str) -> dict[str, dict[str, Any]]:
    """Alarms with any action (alarm, OK, insufficient data) on the topic, by logical id."""
    return {
        lid: alarm["Properties"]
        for lid, alarm in synth.resources("AWS::CloudWatch::Alarm").items()
        if any(
            ref(topic_id) in alarm["Properties"].get(actions, [])
            for actions in ("AlarmActions", "OKActions", "InsufficientDataActions")
        )
    }


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
    alarms = alarms_paging(synth, topic_id_of(synth, "ops-alarms"))

    assert len(alarms) > 40
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


def test_cloudwatch_may_publish_every_alarm_to_the_ops_topic_and_use_its_key(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    topic_id = topic_id_of(full_synth, "ops-alarms")
    topic, key = policies.topic_arn(topic_id), policies.arn(key_id_of(full_synth, topic_id))
    refused = {}

    for alarm in alarms_paging(full_synth, topic_id).values():
        context = alarm_context(policies, alarm["AlarmName"])
        for action, resource in [("sns:Publish", topic), *((a, key) for a in DATA_KEY_ACTIONS)]:
            outcome = policies.is_allowed(CLOUDWATCH, action, resource, context)
            if not outcome:
                refused[f"{alarm['AlarmName']} {action}"] = outcome.reason

    assert refused == {}


def published_by(account: str, alarm: str, *, arn_account: str | None = None, region: str = REGION) -> dict[str, Any]:
    arn = f"arn:aws:cloudwatch:{region}:{arn_account or account}:alarm:{alarm}"
    return {"aws:SourceAccount": account, "aws:SourceArn": arn}


WEEKLY_ERRORS = "FinOpsGuard-qa-weekly-report-Errors"


@pytest.mark.parametrize(
    ("case", "context", "decision"),
    [
        (
            "another account's alarm of the same name",
            published_by(OTHER_ACCOUNT, WEEKLY_ERRORS) | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "this account's alarm, claimed for another account",
            published_by(OTHER_ACCOUNT, WEEKLY_ERRORS, arn_account=ACCOUNT) | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "another stage's alarm",
            published_by(ACCOUNT, "FinOpsGuard-prod-weekly-report-Errors") | TLS,
            Decision.IMPLICIT_DENY,
        ),
        (
            "an alarm of another region",
            published_by(ACCOUNT, WEEKLY_ERRORS, region="us-east-1") | TLS,
            Decision.IMPLICIT_DENY,
        ),
        ("a request naming no alarm", TLS, Decision.IMPLICIT_DENY),
        (
            "this stage's alarm over plain HTTP",
            published_by(ACCOUNT, WEEKLY_ERRORS) | PLAIN_HTTP,
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
    context = alarm_context(policies, WEEKLY_ERRORS)

    for short_name in ("finance-alerts", "cost-anomalies"):
        topic = policies.topic_arn(topic_id_of(full_synth, short_name))
        assert not policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, context), short_name


@pytest.mark.parametrize(
    ("case", "context"),
    [
        ("another account's alarm of the same name", {"account": OTHER_ACCOUNT}),
        ("this account's alarm, claimed for another account", {"account": OTHER_ACCOUNT, "arn_account": ACCOUNT}),
        ("a request naming no account", None),
    ],
)
@pytest.mark.parametrize("action", DATA_KEY_ACTIONS)
def test_cloudwatch_may_use_the_ops_key_for_this_account_only(
    full_synth: Synth, policies: PolicyEvaluator, action: str, case: str, context: dict[str, Any] | None
) -> None:
    # aws:SourceAccount on the key statement too (the confused-deputy guard). No AWS page documents
    # that CloudWatch's KMS calls carry it: `finops-guard paging-check` proves it on the real account.
    key = policies.arn(key_id_of(full_synth, topic_id_of(full_synth, "ops-alarms")))
    request_context = published_by(alarm=WEEKLY_ERRORS, **context) if context else {}

    assert policies.is_allowed(CLOUDWATCH, action, key, published_by(ACCOUNT, WEEKLY_ERRORS))
    assert not policies.is_allowed(CLOUDWATCH, action, key, request_context), case


def test_another_stages_alarm_of_this_account_passes_the_key_but_not_the_topic(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    # The key encrypts this topic only, so naming the account is enough there; the topic names the stage.
    topic_id = topic_id_of(full_synth, "ops-alarms")
    key = policies.arn(key_id_of(full_synth, topic_id))
    context = published_by(ACCOUNT, "FinOpsGuard-prod-weekly-report-Errors") | TLS

    assert policies.is_allowed(CLOUDWATCH, "kms:GenerateDataKey", key, context)
    assert not policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn(topic_id), context)


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


@pytest.mark.parametrize("action", DATA_KEY_ACTIONS)
def test_cost_anomaly_detection_may_use_the_anomaly_key_without_any_context_key(
    full_synth: Synth, policies: PolicyEvaluator, action: str
) -> None:
    # The documented key statement for a service publishing to an encrypted topic carries no
    # condition: if the service's KMS calls lack aws:SourceAccount, a condition would drop every alert.
    key = policies.arn(key_id_of(full_synth, topic_id_of(full_synth, "cost-anomalies")))

    assert policies.is_allowed(COST_ANOMALY_DETECTION, action, key, {})


def test_cost_anomaly_detection_may_use_no_other_topic(full_synth: Synth, policies: PolicyEvaluator) -> None:
    context = {"aws:SourceAccount": ACCOUNT} | TLS

    for short_name in ("ops-alarms", "finance-alerts"):
        topic_id = topic_id_of(full_synth, short_name)
        assert not policies.is_allowed(COST_ANOMALY_DETECTION, "sns:Publish", policies.topic_arn(topic_id), context)
        assert not policies.is_allowed(
            COST_ANOMALY_DETECTION, "kms:GenerateDataKey", policies.arn(key_id_of(full_synth, topic_id))
        )


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


def functions_configured_with_a_topic(synth: Synth) -> dict[str, tuple[str, str]]:
    """Functions whose environment holds a topic's ARN: ``{function name: (role id, topic id)}``."""
    topics = {topic_id_of(synth, short_name) for short_name in TOPICS}
    found = {}
    for function in synth.resources("AWS::Lambda::Function").values():
        properties = function["Properties"]
        for value in properties.get("Environment", {}).get("Variables", {}).values():
            if isinstance(value, dict) and value.get("Ref") in topics:
                found[properties["FunctionName"]] = (properties["Role"]["Fn::GetAtt"][0], value["Ref"])
    return found


def test_the_budget_guard_is_the_one_function_that_publishes_to_a_topic(full_synth: Synth) -> None:
    # Nothing in layers/common/python/finops_guard publishes to the ops or anomaly topic; only the budget
    # guard mails the finance topic (FINOPSGUARD_ALERT_TOPIC_ARN). A new publisher lands here.
    guard_role = function_of(full_synth, "budget-guard")[1]["Role"]["Fn::GetAtt"][0]

    assert functions_configured_with_a_topic(full_synth) == {
        "finops-guard-qa-budget-guard": (guard_role, topic_id_of(full_synth, "finance-alerts"))
    }


def test_every_function_configured_with_a_topic_may_publish_to_it_and_use_its_key(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    refused = {}
    for name, (role_id, topic_id) in functions_configured_with_a_topic(full_synth).items():
        publisher = role(policies.arn(role_id))
        requests = [("sns:Publish", policies.topic_arn(topic_id))]
        requests += [(action, policies.arn(key_id_of(full_synth, topic_id))) for action in DATA_KEY_ACTIONS]
        for action, resource in requests:
            outcome = policies.is_allowed(publisher, action, resource, TLS)
            if not outcome:
                refused[f"{name} {action}"] = outcome.reason

    assert functions_configured_with_a_topic(full_synth)
    assert refused == {}


def test_no_function_role_may_publish_to_a_topic_it_is_not_configured_with(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    # Publishing to an encrypted topic takes sns:Publish and the topic key's data key.
    configured = set(functions_configured_with_a_topic(full_synth).values())
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in full_synth.resources("AWS::Lambda::Function").values()}
    unexpected = []

    for role_id in sorted(roles):
        publisher = role(policies.arn(role_id))
        for short_name in TOPICS:
            topic_id = topic_id_of(full_synth, short_name)
            key = policies.arn(key_id_of(full_synth, topic_id))
            publishes = policies.is_allowed(publisher, "sns:Publish", policies.topic_arn(topic_id), TLS)
            if publishes and policies.is_allowed(publisher, "kms:GenerateDataKey", key):
                if (role_id, topic_id) not in configured:
                    unexpected.append((role_id, short_name))

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
    assert len(schedules) == 7
    refused = {}

    for lid, schedule in schedules.items():
        target = schedule["Properties"]["Target"]
        role_arn = policies.arn(target["RoleArn"]["Fn::GetAtt"][0])
        checks = [
            (scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": ACCOUNT}),
            (role(role_arn), "lambda:InvokeFunction", policies.arn(target["Arn"]["Fn::GetAtt"][0]), TLS),
            (role(role_arn), "sqs:SendMessage", policies.arn(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]), TLS),
        ]
        for principal, action, resource, context in checks:
            outcome = policies.is_allowed(principal, action, resource, context)
            if not outcome:
                refused[f"{lid} {action}"] = outcome.reason
        assert not policies.is_allowed(scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": OTHER_ACCOUNT})

    assert refused == {}


def test_every_function_with_a_dead_letter_queue_may_park_failed_async_events_in_it(
    full_synth: Synth, policies: PolicyEvaluator
) -> None:
    refused = {}
    functions = [f["Properties"] for f in full_synth.resources("AWS::Lambda::Function").values()]
    with_dlq = [properties for properties in functions if "DeadLetterConfig" in properties]
    assert len(with_dlq) >= 10  # every MonitoredFunction
    for properties in with_dlq:
        dlq = policies.arn(properties["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0])
        outcome = policies.is_allowed(
            role(policies.arn(properties["Role"]["Fn::GetAtt"][0])), "sqs:SendMessage", dlq, TLS
        )
        if not outcome:
            refused[properties["FunctionName"]] = outcome.reason

    assert refused == {}


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
