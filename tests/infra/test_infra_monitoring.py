"""Operations: every failure path of every function ends in the stage's failure queue, whose one
alarm pages the ops topic; the service-level alarms; the fixed alarm count (the product's own cost);
the paging-service subscriptions and the opt-in dashboards."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import (
    FULL_CONTEXT,
    REPO_ROOT,
    StackSynth,
    Synth,
    failure_queue_ref,
    function_of,
    joined_text,
    ops_topic_ref,
    ref,
    stage_of,
    synthesize,
    topic_id_of,
)
from policy_eval import ACCOUNT, OTHER_ACCOUNT, REGION, PolicyEvaluator, role, service

pytestmark = pytest.mark.infra

# The functions the dashboards graph (the setup functions, which run once per deploy, are not graphed).
COSTS_FUNCTIONS = ["weekly-report", "budget-guard", "anomaly-alerts", "chargeback", "savings-refresh"]
BILLING_FUNCTIONS = ["stripe-webhook", "billing-notifier", "dunning-sender", "reconciliation", "billing-admin"]
API_FUNCTIONS = {"stripe-webhook", "billing-admin"}
PAGERDUTY = "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"
OPSGENIE = "https://api.opsgenie.com/v1/json/amazonsns?apiKey=0a1b2c3d"
TLS = {"aws:SecureTransport": True}
# The alarms of each stack, with defaults and with every option on: each one costs $0.10 a month per
# metric, so a change here changes the fixed cost of a stage (README, Cost).
ALARMS_PER_STACK = {
    "core": ["Failures", "ChatDeliveryFailures"],
    "costs": ["weekly-report-NotPosted", "anomaly-alerts-ForwardingLatency"],
    "billing": [
        "billing-api-5xx",
        "billing-api-signature-failures",
        "invoice-latency-slo",
        "dunning-sender-StepsFailed",
        "dunning-sender-StepsStuck",
        "reconciliation-Mismatches",
    ],
}


@pytest.fixture(scope="module")
def dashboard_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-dashboard"), {**FULL_CONTEXT, "dashboard": True})


def in_core(synth: Synth, part: StackSynth) -> bool:
    return part is synth.core


def ops_topic(synth: Synth, part: StackSynth | None = None) -> dict[str, Any]:
    """The ops topic as ``part`` names it: a Ref in the core, the core's export in a product stack."""
    if part is None or in_core(synth, part):
        return ref(topic_id_of(synth, "ops-alarms"))
    return ops_topic_ref(synth)


def failure_queue_id(synth: Synth) -> str:
    [(lid, _)] = [
        (lid, q)
        for lid, q in synth.core.resources("AWS::SQS::Queue").items()
        if q["Properties"]["QueueName"] == f"finops-guard-{stage_of(synth)}-failures"
    ]
    return lid


def failure_queue(synth: Synth, part: StackSynth) -> dict[str, Any]:
    """The failure queue's ARN as ``part`` names it."""
    if in_core(synth, part):
        return {"Fn::GetAtt": [failure_queue_id(synth), "Arn"]}
    return failure_queue_ref(synth)


def functions(synth: Synth) -> list[tuple[StackSynth, str, dict[str, Any]]]:
    """Every Lambda function of every stack: ``(stack, logical id, properties)``."""
    return [
        (part, lid, function["Properties"])
        for part in synth.parts
        for lid, function in part.resources("AWS::Lambda::Function").items()
    ]


def alarms(synth: Synth | StackSynth) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
    }


def without_description(alarm: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in alarm.items() if key not in ("AlarmDescription", "Tags")}


def custom_metric_alarm(
    synth: Synth,
    name: str,
    *,
    metric: str,
    service: str,
    statistic: str,
    period: int,
    comparison: str,
    threshold: int,
    evaluation_periods: int = 1,
    missing: str = "notBreaching",
    part: StackSynth | None = None,
) -> dict[str, Any]:
    """The exact properties (description aside) of an alarm on one FinOpsGuard metric of a function."""
    topic = ops_topic(synth, part)
    return {
        "AlarmName": name,
        "Namespace": "FinOpsGuard",
        "MetricName": metric,
        "Dimensions": [{"Name": "service", "Value": service}],
        "Statistic": statistic,
        "Period": period,
        "EvaluationPeriods": evaluation_periods,
        "ComparisonOperator": comparison,
        "Threshold": threshold,
        "TreatMissingData": missing,
        "AlarmActions": [topic],
        "OKActions": [topic],
    }


def other_queue_arns(policies: PolicyEvaluator, synth: Synth) -> list[str]:
    """Every queue but the failure queue, and one of another account: where no failure record may go."""
    failures = failure_queue_id(synth)
    return [
        *(policies.arn(lid) for lid in synth.resources("AWS::SQS::Queue") if lid != failures),
        f"arn:aws:sqs:{REGION}:{OTHER_ACCOUNT}:finops-guard-{stage_of(synth)}-failures",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:finops-guard-prod-failures",
    ]


# --- every failure path ends in the failure queue ---------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_every_function_sends_its_failed_async_events_to_the_failure_queue(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    policies = PolicyEvaluator(synth.template_json)
    queue_arn = policies.arn(failure_queue_id(synth))
    found = functions(synth)
    assert len(found) == (11 if synth_name == "default_synth" else 12)  # savingsRecommendations adds one

    for part, function_id, properties in found:
        name = properties["FunctionName"]
        configs = [
            config
            for config in part.resources("AWS::Lambda::EventInvokeConfig").values()
            if config["Properties"]["FunctionName"] == ref(function_id)
        ]
        role_id = properties["Role"]["Fn::GetAtt"][0]
        [policy_id] = [
            lid for lid, p in part.resources("AWS::IAM::Policy").items() if ref(role_id) in p["Properties"]["Roles"]
        ]
        assert [c["Properties"] for c in configs] == [
            {
                "FunctionName": ref(function_id),
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Destination": failure_queue(synth, part)}},
            }
        ], name
        # Lambda checks that the role may send to the destination when it saves the config.
        assert configs[0]["DependsOn"] == [policy_id], name
        assert {
            "Sid": "ReportFailedEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": failure_queue(synth, part),
        } in part.template_json["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"], name

        sender = role(policies.arn(role_id))
        assert policies.template.resolve(failure_queue(synth, part)) == queue_arn
        outcome = policies.is_allowed(sender, "sqs:SendMessage", queue_arn, TLS)
        assert outcome, f"{name}: {outcome.reason}"
        assert not policies.is_allowed(sender, "sqs:SendMessage", queue_arn, {"aws:SecureTransport": False}), name
        for other in other_queue_arns(policies, synth):
            assert not policies.is_allowed(sender, "sqs:SendMessage", other, TLS), (name, other)


def test_every_event_source_mapping_fails_over_to_the_failure_queue(full_synth: Synth) -> None:
    policies = PolicyEvaluator(full_synth.template_json)
    queue_arn = policies.arn(failure_queue_id(full_synth))
    covered: dict[str, str] = {}

    for part in full_synth.parts:
        resources = part.template_json["Resources"]
        for lid, mapping in part.resources("AWS::Lambda::EventSourceMapping").items():
            properties = mapping["Properties"]
            function = resources[properties["FunctionName"]["Ref"]]["Properties"]
            source_id, attribute = properties["EventSourceArn"]["Fn::GetAtt"]
            source = resources[source_id]
            if source["Type"] == "AWS::SQS::Queue":
                # A message the function keeps failing goes back to the queue; the fifth receive parks it.
                assert attribute == "Arn"
                assert "DestinationConfig" not in properties, lid
                assert source["Properties"]["RedrivePolicy"] == {
                    "deadLetterTargetArn": failure_queue(full_synth, part),
                    "maxReceiveCount": 5,
                }
                covered[function["FunctionName"]] = "sqs redrive"
            else:
                assert (source["Type"], attribute) == ("AWS::DynamoDB::Table", "StreamArn"), lid
                assert properties["DestinationConfig"] == {
                    "OnFailure": {"Destination": failure_queue(full_synth, part)}
                }
                assert properties["BisectBatchOnFunctionError"] is True
                assert properties["MaximumRetryAttempts"] == 3
                # The mapping sends the failed batch's record with the function's role.
                sender = role(policies.arn(function["Role"]["Fn::GetAtt"][0]))
                assert policies.is_allowed(sender, "sqs:SendMessage", queue_arn, TLS), lid
                covered[function["FunctionName"]] = "stream on-failure destination"

    assert covered == {
        "finops-guard-qa-anomaly-alerts": "sqs redrive",
        "finops-guard-qa-billing-notifier": "stream on-failure destination",
    }


def test_api_backed_functions_are_also_covered_by_the_billing_api_5xx_alarm(full_synth: Synth) -> None:
    # A synchronous invoke has no on-failure destination: the API's 5xx alarm pages for those.
    billing = full_synth.billing
    api_id, _ = billing.only("AWS::ApiGateway::RestApi")
    stage_id, _ = billing.only("AWS::ApiGateway::Stage")
    invoked = {
        billing.template_json["Resources"][p["Properties"]["FunctionName"]["Fn::GetAtt"][0]]["Properties"][
            "FunctionName"
        ]
        for p in billing.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        and ref(api_id) in p["Properties"]["SourceArn"]["Fn::Join"][1]
    }
    api_name = billing.template_json["Resources"][api_id]["Properties"]["Name"]

    assert invoked == {f"finops-guard-qa-{short_name}" for short_name in API_FUNCTIONS}
    assert [p for p in full_synth.resources("AWS::Lambda::Permission").values()] == list(
        billing.resources("AWS::Lambda::Permission").values()
    )  # nothing else invokes a function synchronously through a resource policy
    assert without_description(alarms(billing)["FinOpsGuard-qa-billing-api-5xx"]) == {
        "AlarmName": "FinOpsGuard-qa-billing-api-5xx",
        "Namespace": "AWS/ApiGateway",
        "MetricName": "5XXError",
        "Dimensions": [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": ref(stage_id)}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ops_topic(full_synth, billing)],
        "OKActions": [ops_topic(full_synth, billing)],
    }


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_the_failures_alarm_pages_ops_for_every_message_in_the_failure_queue(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = stage_of(synth)
    queue_id = failure_queue_id(synth)
    core = synth.core

    alarm = alarms(core)[f"FinOpsGuard-{stage}-Failures"]

    assert without_description(alarm) == {
        "AlarmName": f"FinOpsGuard-{stage}-Failures",
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
        "Statistic": "Maximum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ops_topic(synth, core)],
        "OKActions": [ops_topic(synth, core)],
    }
    assert f"finops-guard dlq list --stage {stage}" in alarm["AlarmDescription"]
    # Kept longer than Lambda keeps an event (6 h) and than a weekend; exported for the product stacks.
    assert core.template_json["Resources"][queue_id]["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert core.template_json["Outputs"]["FailureQueueArn"] == {
        "Value": {"Fn::GetAtt": [queue_id, "Arn"]},
        "Export": {"Name": f"finops-guard-{stage}-failure-queue-arn"},
    }
    assert core.template_json["Outputs"]["OpsTopicArn"] == {
        "Value": ops_topic(synth, core),
        "Export": {"Name": f"finops-guard-{stage}-ops-topic-arn"},
    }


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_every_alarm_of_every_stack_pages_the_ops_topic_which_lets_it_publish(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = stage_of(synth)
    policies = PolicyEvaluator(synth.template_json)
    topic_arn = policies.topic_arn(topic_id_of(synth, "ops-alarms"))
    cloudwatch = service("cloudwatch.amazonaws.com")

    for part in synth.parts:
        for name, alarm in alarms(part).items():
            # The topic policy lets CloudWatch publish for FinOpsGuard-<stage>-* only.
            assert isinstance(name, str) and name.startswith(f"FinOpsGuard-{stage}-"), name
            assert alarm["AlarmActions"] == [ops_topic(synth, part)], name
            assert alarm["OKActions"] == [ops_topic(synth, part)], name
            assert "InsufficientDataActions" not in alarm, name
            assert "First:" in json.dumps(alarm["AlarmDescription"]), name
            assert policies.template.resolve(alarm["AlarmActions"][0]) == topic_arn
            context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": policies.alarm_arn(name)} | TLS
            outcome = policies.is_allowed(cloudwatch, "sns:Publish", topic_arn, context)
            assert outcome, f"{name}: {outcome.reason}"
    other_stage = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": policies.alarm_arn("FinOpsGuard-prod-Failures")}
    assert not policies.is_allowed(cloudwatch, "sns:Publish", topic_arn, other_stage | TLS)


# --- the fixed cost: alarms per stack ---------------------------------------------------------


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_each_stack_has_exactly_its_alarms(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    stage = stage_of(synth)

    found = {name: sorted(alarms(getattr(synth, name))) for name in ALARMS_PER_STACK}

    assert found == {
        name: sorted(f"FinOpsGuard-{stage}-{suffix}" for suffix in suffixes)
        for name, suffixes in ALARMS_PER_STACK.items()
    }
    assert {name: len(names) for name, names in found.items()} == {"core": 2, "costs": 2, "billing": 6}


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_no_alarm_watches_a_per_function_queue_or_function_metric(
    synth_name: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    queues = {q["Properties"]["QueueName"] for q in synth.resources("AWS::SQS::Queue").values()}
    stage = stage_of(synth)

    # The stage's failure queue and the anomaly inbox: no function has a dead-letter queue of its own.
    assert queues == {f"finops-guard-{stage}-failures", f"finops-guard-{stage}-anomaly-inbox"}
    assert [f["FunctionName"] for _, _, f in functions(synth) if "DeadLetterConfig" in f] == []
    for name, alarm in alarms(synth).items():
        dimensions = [d["Name"] for d in alarm.get("Dimensions", [])]
        assert "FunctionName" not in dimensions, name
        if "QueueName" in dimensions:
            assert alarm["Dimensions"] == [
                {"Name": "QueueName", "Value": {"Fn::GetAtt": [failure_queue_id(synth), "QueueName"]}}
            ], name


# --- service-level alarms ---------------------------------------------------------------------


def slo_alarms(synth: Synth) -> dict[str, tuple[StackSynth, dict[str, Any]]]:
    """The exact properties (description aside) of each service-level alarm and the stack it lives in."""
    costs, billing, core = synth.costs, synth.billing, synth.core
    stage_id, _ = billing.only("AWS::ApiGateway::Stage")
    billing_topic = ops_topic(synth, billing)
    return {
        "FinOpsGuard-qa-weekly-report-NotPosted": (
            costs,
            custom_metric_alarm(
                synth,
                "FinOpsGuard-qa-weekly-report-NotPosted",
                metric="WeeklyReportPosted",
                service="weekly-report",
                statistic="Sum",
                period=86400,
                comparison="LessThanThreshold",
                threshold=1,
                evaluation_periods=7,
                missing="breaching",
                part=costs,
            )
            | {"EvaluationWindow": {"WallClockWindow": {"Timezone": "Europe/Madrid"}}},
        ),
        "FinOpsGuard-qa-anomaly-alerts-ForwardingLatency": (
            costs,
            custom_metric_alarm(
                synth,
                "FinOpsGuard-qa-anomaly-alerts-ForwardingLatency",
                metric="AnomalyForwardingLatency",
                service="anomaly-alerts",
                statistic="Maximum",
                period=300,
                comparison="GreaterThanThreshold",
                threshold=300,
                part=costs,
            )
            | {"Unit": "Seconds"},
        ),
        "FinOpsGuard-qa-ChatDeliveryFailures": (
            core,
            {
                **custom_metric_alarm(
                    synth,
                    "FinOpsGuard-qa-ChatDeliveryFailures",
                    metric="ChatDeliveryFailures",
                    service="",
                    statistic="Sum",
                    period=3600,
                    comparison="GreaterThanOrEqualToThreshold",
                    threshold=1,
                    part=core,
                ),
                # One metric for the stage, whichever function failed to post (finops_guard.core.service_levels).
                "Dimensions": [{"Name": "stage", "Value": "qa"}],
            },
        ),
        "FinOpsGuard-qa-invoice-latency-slo": (
            billing,
            {
                "AlarmName": "FinOpsGuard-qa-invoice-latency-slo",
                "Metrics": [
                    {
                        "Id": "expr_1",
                        "Expression": "100 * FILL(within, 0) / confirmed",
                        "Label": "Bot invoices confirmed within 5 minutes (%)",
                        "ReturnData": True,
                    },
                    *(
                        {
                            "Id": metric_id,
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "FinOpsGuard",
                                    "MetricName": metric,
                                    "Dimensions": [{"Name": "service", "Value": "stripe-webhook"}],
                                },
                                "Period": 3600,
                                "Stat": "Sum",
                            },
                            "ReturnData": False,
                        }
                        for metric_id, metric in (
                            ("confirmed", "InvoicesConfirmed"),
                            ("within", "InvoicesConfirmedWithin5Min"),
                        )
                    ),
                ],
                "EvaluationPeriods": 1,
                "ComparisonOperator": "LessThanThreshold",
                "Threshold": 99,
                "TreatMissingData": "notBreaching",
                "AlarmActions": [billing_topic],
                "OKActions": [billing_topic],
            },
        ),
        "FinOpsGuard-qa-reconciliation-Mismatches": (
            billing,
            custom_metric_alarm(
                synth,
                "FinOpsGuard-qa-reconciliation-Mismatches",
                metric="ReconciliationMismatches",
                service="reconciliation",
                statistic="Maximum",
                period=86400,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=1,
                missing="ignore",
                part=billing,
            ),
        ),
        **{
            f"FinOpsGuard-qa-dunning-sender-{suffix}": (
                billing,
                custom_metric_alarm(
                    synth,
                    f"FinOpsGuard-qa-dunning-sender-{suffix}",
                    metric=metric,
                    service="dunning-sender",
                    statistic="Sum",
                    period=3600,
                    comparison="GreaterThanOrEqualToThreshold",
                    threshold=1,
                    part=billing,
                ),
            )
            for suffix, metric in (("StepsFailed", "DunningStepsFailed"), ("StepsStuck", "DunningStepsStuck"))
        },
        "FinOpsGuard-qa-billing-api-5xx": (
            billing,
            {
                "AlarmName": "FinOpsGuard-qa-billing-api-5xx",
                "Namespace": "AWS/ApiGateway",
                "MetricName": "5XXError",
                "Dimensions": [
                    {"Name": "ApiName", "Value": "finops-guard-qa-billing"},
                    {"Name": "Stage", "Value": ref(stage_id)},
                ],
                "Statistic": "Sum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1,
                "TreatMissingData": "notBreaching",
                "AlarmActions": [billing_topic],
                "OKActions": [billing_topic],
            },
        ),
        "FinOpsGuard-qa-billing-api-signature-failures": (
            billing,
            custom_metric_alarm(
                synth,
                "FinOpsGuard-qa-billing-api-signature-failures",
                metric="StripeSignatureFailures",
                service="stripe-webhook",
                statistic="Sum",
                period=300,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=10,
                part=billing,
            ),
        ),
    }


SLO_ALARMS = [
    "FinOpsGuard-qa-weekly-report-NotPosted",
    "FinOpsGuard-qa-anomaly-alerts-ForwardingLatency",
    "FinOpsGuard-qa-ChatDeliveryFailures",
    "FinOpsGuard-qa-invoice-latency-slo",
    "FinOpsGuard-qa-reconciliation-Mismatches",
    "FinOpsGuard-qa-dunning-sender-StepsFailed",
    "FinOpsGuard-qa-dunning-sender-StepsStuck",
    "FinOpsGuard-qa-billing-api-5xx",
    "FinOpsGuard-qa-billing-api-signature-failures",
]


@pytest.mark.parametrize("name", SLO_ALARMS)
def test_each_service_level_alarm_exists_in_its_stack_and_pages_ops(full_synth: Synth, name: str) -> None:
    part, expected = slo_alarms(full_synth)[name]

    assert without_description(alarms(part)[name]) == expected
    assert "First:" in json.dumps(alarms(part)[name]["AlarmDescription"])


def test_the_service_level_alarms_and_the_failures_alarm_are_every_alarm(full_synth: Synth) -> None:
    assert sorted(alarms(full_synth)) == sorted([*SLO_ALARMS, "FinOpsGuard-qa-Failures"])


def test_every_posting_function_emits_the_stage_chat_delivery_metric_the_alarm_watches(full_synth: Synth) -> None:
    # The metric carries the stage the function is told in FINOPSGUARD_STAGE; without it, nothing pages.
    posting = sorted(
        handler.parent.name.replace("_", "-")
        for handler in (REPO_ROOT / "functions").glob("*/handler.py")
        if re.search(r"\bcount_chat_delivery_failures\(", handler.read_text())
    )
    assert posting == sorted(
        ["weekly-report", "budget-guard", "anomaly-alerts", "chargeback", "billing-notifier", "billing-admin"]
    )

    for short_name in posting:
        environment = function_of(full_synth, short_name)[1]["Environment"]["Variables"]
        assert environment["FINOPSGUARD_STAGE"] == "qa", short_name


def test_the_chat_delivery_alarm_tells_on_call_where_the_messages_wait(full_synth: Synth) -> None:
    description = alarms(full_synth.core)["FinOpsGuard-qa-ChatDeliveryFailures"]["AlarmDescription"]

    assert "finops-guard-qa-outbox" in description
    assert "finops-guard report pending --stage qa" in description
    assert "finops-guard report resend --stage qa" in description


def test_weekly_report_deadline_pages_when_seven_complete_days_in_the_report_zone_had_no_post(
    full_synth: Synth,
) -> None:
    alarm = alarms(full_synth.costs)["FinOpsGuard-qa-weekly-report-NotPosted"]

    # Its whole expectation is in slo_alarms above; what makes it a seven-day deadline in the report's zone:
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("WeeklyReportPosted", "Sum", 86400)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (7, "breaching")
    assert alarm["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "Europe/Madrid"}}
    assert "DatapointsToAlarm" not in alarm  # all seven days


def test_a_new_stage_counts_its_deploy_as_the_first_weeks_post_so_the_deadline_starts_ok(
    default_synth: Synth,
) -> None:
    [(alarm_id, alarm)] = [
        (lid, r)
        for lid, r in default_synth.costs.resources("AWS::CloudWatch::Alarm").items()
        if r["Properties"]["AlarmName"] == "FinOpsGuard-dev-weekly-report-NotPosted"
    ]
    grace_id, grace = default_synth.costs.only("Custom::ReportDeadlineGrace")

    # The same series the alarm reads: one data point when the stack is created, before the alarm exists.
    assert {k: v for k, v in grace["Properties"].items() if k != "ServiceToken"} == {
        "Namespace": "FinOpsGuard",
        "MetricName": "WeeklyReportPosted",
        "Dimensions": {"service": "weekly-report"},
        "Timezone": "UTC",
    }
    assert alarm["Properties"]["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "UTC"}}
    assert (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"]) == (
        "FinOpsGuard",
        "WeeklyReportPosted",
    )
    assert alarm["Properties"]["Dimensions"] == [{"Name": "service", "Value": "weekly-report"}]
    assert grace_id in alarm["DependsOn"]


def test_weekly_report_deadline_fits_cloudwatchs_seven_day_evaluation_range(
    full_synth: Synth, default_synth: Synth
) -> None:
    for synth in (full_synth, default_synth):
        for name, alarm in alarms(synth).items():
            period = alarm.get("Period") or max(
                m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m
            )
            # PutMetricAlarm: at most 7 days, and at most 1 day for periods under an hour.
            limit = 7 * 86400 if period >= 3600 else 86400
            assert period * alarm["EvaluationPeriods"] <= limit, name
    default = alarms(default_synth)["FinOpsGuard-dev-weekly-report-NotPosted"]
    assert default["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "UTC"}}


def test_weekly_report_deadline_tells_on_call_how_to_post_the_report_now(full_synth: Synth) -> None:
    description = joined_text(alarms(full_synth)["FinOpsGuard-qa-weekly-report-NotPosted"]["AlarmDescription"])

    assert "Europe/Madrid" in description
    assert "cron(0 8 ? * MON *)" in description
    assert "schedule finops-guard-qa-weekly-report is ENABLED" in description
    assert (
        "aws lambda invoke --function-name finops-guard-qa-weekly-report --cli-binary-format raw-in-base64-out "
        '--payload \'{"report": "weekly"}\''
    ) in description


def test_reconciliation_mismatch_names_the_configured_variance(full_synth: Synth) -> None:
    description = alarms(full_synth.billing)["FinOpsGuard-qa-reconciliation-Mismatches"]["AlarmDescription"]

    assert "more than 2.5 %" in description  # reconciliationVariancePercent


# --- ops topic subscribers --------------------------------------------------------------------


def test_ops_topic_posts_to_each_configured_https_endpoint(full_synth: Synth) -> None:
    topic = ops_topic(full_synth)
    https = [
        s["Properties"]
        for s in full_synth.core.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "https"
    ]

    assert sorted(https, key=lambda s: s["Endpoint"]) == [
        {"Protocol": "https", "Endpoint": OPSGENIE, "TopicArn": topic},
        {"Protocol": "https", "Endpoint": PAGERDUTY, "TopicArn": topic},
    ]


def test_no_https_subscription_by_default(default_synth: Synth) -> None:
    protocols = [s["Properties"]["Protocol"] for s in default_synth.resources("AWS::SNS::Subscription").values()]

    assert "https" not in protocols


# --- dashboards (opt-in) ---------------------------------------------------------------------


def dashboard(part: StackSynth) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stack's dashboard properties and its body, json-decoded with placeholders for the tokens."""
    _, resource = part.only("AWS::CloudWatch::Dashboard")
    properties = resource["Properties"]
    return properties, json.loads(joined_text(properties["DashboardBody"]))


def widget_titled(body: dict[str, Any], title: str) -> dict[str, Any]:
    [widget] = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return widget["properties"]


def custom(metric: str, service: str, **options: Any) -> list[Any]:
    """A FinOpsGuard metric line as the dashboard JSON writes it."""
    return ["FinOpsGuard", metric, "service", service, options]


def products(synth: Synth) -> dict[str, StackSynth]:
    return {"Costs": synth.costs, "Billing": synth.billing}


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_no_dashboard_unless_asked_for(synth_name: str, request: pytest.FixtureRequest) -> None:
    # $3 a month each beyond an account's first three: more than a small stage's whole fixed cost.
    synth: Synth = request.getfixturevalue(synth_name)

    assert synth.resources("AWS::CloudWatch::Dashboard") == {}


def test_each_product_has_its_dashboard_named_after_the_stage_and_region(dashboard_synth: Synth) -> None:
    # Dashboards are global: the same stage deployed in a second region must not collide.
    assert dashboard_synth.core.resources("AWS::CloudWatch::Dashboard") == {}
    for product, part in products(dashboard_synth).items():
        assert dashboard(part)[0]["DashboardName"] == {
            "Fn::Join": ["", [f"FinOpsGuard-qa-{product}-", ref("AWS::Region")]]
        }


@pytest.mark.parametrize("product", ["Costs", "Billing"])
def test_dashboard_opens_on_two_weeks_and_keeps_each_widget_period(dashboard_synth: Synth, product: str) -> None:
    _, body = dashboard(products(dashboard_synth)[product])

    assert body["start"] == "-P14D"
    assert body["periodOverride"] == "inherit"


@pytest.mark.parametrize("product", ["Costs", "Billing"])
def test_dashboard_widgets_fit_the_24_column_grid_without_overlap(dashboard_synth: Synth, product: str) -> None:
    _, body = dashboard(products(dashboard_synth)[product])
    cells: set[tuple[int, int]] = set()

    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, widget["properties"]
        cells |= area


@pytest.mark.parametrize(
    ("product", "metrics", "function_names"),
    [
        (
            "Costs",
            ["MonthToDateSpend", "ForecastMonthEnd", "BudgetConsumptionPercent", "AnomaliesAlerted"],
            COSTS_FUNCTIONS,
        ),
        ("Billing", ["MonthlyRecurringRevenue", "FailedInvoices", "OpenBillingAlerts"], BILLING_FUNCTIONS),
    ],
)
def test_dashboard_body_names_every_kpi_metric_and_every_function_of_its_product(
    dashboard_synth: Synth, product: str, metrics: list[str], function_names: list[str]
) -> None:
    _, body = dashboard(products(dashboard_synth)[product])
    text = json.dumps(body)

    for metric in metrics:
        assert f'\\"{metric}\\"' in text or f'"{metric}"' in text, metric
    titles = {w["properties"].get("title") for w in body["widgets"]}
    graphed = sorted(
        t.removeprefix("finops-guard-qa-") for t in titles if t and re.fullmatch(r"finops-guard-qa-[a-z-]+", t)
    )
    assert graphed == sorted(function_names)


def function_environments(synth: Synth) -> dict[str, dict[str, Any]]:
    """Each function's environment variables by its name without the ``finops-guard-<stage>-`` prefix."""
    prefix = f"finops-guard-{stage_of(synth)}-"
    return {
        resource["Properties"]["FunctionName"].removeprefix(prefix): resource["Properties"]["Environment"]["Variables"]
        for resource in synth.resources("AWS::Lambda::Function").values()
    }


@pytest.mark.parametrize(
    ("synth_name", "expected"), [("default_synth", "off"), ("full_synth", "off"), ("dashboard_synth", "on")]
)
def test_kpi_metrics_are_sent_exactly_when_the_dashboards_that_read_them_are_deployed(
    synth_name: str, expected: str, request: pytest.FixtureRequest
) -> None:
    # Each custom metric costs $0.30 a month; without the dashboards nothing reads the KPI ones. The
    # variable is always explicit: a function without it would send them (the local default).
    synth: Synth = request.getfixturevalue(synth_name)
    environments = function_environments(synth)
    setup = {name for name in environments if name.endswith("-setup")}

    assert setup == {"costs-setup", "billing-setup"}
    assert {name: environments[name].get("FINOPSGUARD_KPI_METRICS") for name in environments.keys() - setup} == {
        name: expected for name in environments.keys() - setup
    }
    assert all("FINOPSGUARD_KPI_METRICS" not in environments[name] for name in setup)  # they send no KPI


def test_every_graphed_function_is_told_whether_to_send_kpi_metrics(full_synth: Synth) -> None:
    environments = function_environments(full_synth)

    assert sorted(name for name, variables in environments.items() if "FINOPSGUARD_KPI_METRICS" in variables) == sorted(
        [*COSTS_FUNCTIONS, *BILLING_FUNCTIONS]
    )


def test_spend_is_shown_as_single_values_and_a_daily_graph_in_the_report_currency(dashboard_synth: Synth) -> None:
    _, body = dashboard(dashboard_synth.costs)
    month_to_date = custom(
        "MonthToDateSpend", "weekly-report", label="Month-to-date spend (EUR)", period=86400, stat="Maximum"
    )
    forecast = custom(
        "ForecastMonthEnd", "weekly-report", label="Month-end forecast (EUR)", period=86400, stat="Maximum"
    )
    anomalies_week = custom(
        "AnomaliesAlerted", "anomaly-alerts", label="Anomalies alerted (7 days)", period=604800, stat="Sum"
    )

    single = widget_titled(body, "AWS spend this month")
    graph = widget_titled(body, "Month-to-date spend and month-end forecast (EUR, weekly report)")
    assert (single["view"], single["metrics"]) == ("singleValue", [month_to_date, forecast, anomalies_week])
    assert (graph["view"], graph["metrics"]) == ("timeSeries", [month_to_date, forecast])


@pytest.mark.parametrize(
    ("product", "title", "expression", "label"),
    [
        (
            "Costs",
            "Budget consumption (% of each budget, daily budget guard)",
            'SEARCH(\'{FinOpsGuard,budget,service} MetricName="BudgetConsumptionPercent" service="budget-guard"\', '
            "'Maximum', 86400)",
            "Budget ${PROP('Dim.budget')}",
        ),
        (
            "Billing",
            "Monthly recurring revenue by currency (daily reconciliation)",
            'SEARCH(\'{FinOpsGuard,currency,service} MetricName="MonthlyRecurringRevenue" '
            "service=\"reconciliation\"', 'Maximum', 86400)",
            "MRR ${PROP('Dim.currency')}",
        ),
    ],
)
def test_budgets_and_currencies_are_searched_because_they_are_data_not_known_at_synth(
    dashboard_synth: Synth, product: str, title: str, expression: str, label: str
) -> None:
    _, body = dashboard(products(dashboard_synth)[product])

    assert widget_titled(body, title)["metrics"] == [[{"label": label, "expression": expression, "period": 86400}]]


def test_budget_graph_marks_one_hundred_percent(dashboard_synth: Synth) -> None:
    _, body = dashboard(dashboard_synth.costs)
    widget = widget_titled(body, "Budget consumption (% of each budget, daily budget guard)")

    assert widget["annotations"] == {"horizontal": [{"value": 100, "label": "Budget", "yAxis": "left"}]}


def test_billing_counts_are_graphed_daily(dashboard_synth: Synth) -> None:
    _, body = dashboard(dashboard_synth.billing)
    widget = widget_titled(body, "Failed invoices and open billing alerts")

    assert (widget["view"], widget["metrics"]) == (
        "timeSeries",
        [
            custom("FailedInvoices", "reconciliation", label="Failed invoices", period=86400, stat="Maximum"),
            custom("OpenBillingAlerts", "reconciliation", label="Open billing alerts", period=86400, stat="Maximum"),
        ],
    )


@pytest.mark.parametrize("product", ["Costs", "Billing"])
def test_alarm_status_widget_lists_the_core_alarms_and_every_alarm_of_its_stack_once(
    dashboard_synth: Synth, product: str
) -> None:
    part = products(dashboard_synth)[product]
    _, body = dashboard(part)
    [widget] = [w["properties"] for w in body["widgets"] if w["type"] == "alarm"]
    core_alarm = "arn:<Ref:AWS::Partition>:cloudwatch:<Ref:AWS::Region>:<Ref:AWS::AccountId>:alarm:FinOpsGuard-qa-{}"

    assert len(widget["alarms"]) == len(set(widget["alarms"]))
    # The core's two alarms page for every function of the product, so its dashboard shows them too.
    assert widget["alarms"][:2] == [core_alarm.format("Failures"), core_alarm.format("ChatDeliveryFailures")]
    assert set(widget["alarms"][2:]) == {f"<GetAtt:{lid}.Arn>" for lid in part.resources("AWS::CloudWatch::Alarm")}
    assert widget["sortBy"] == "stateUpdatedTimestamp"


@pytest.mark.parametrize("short_name", COSTS_FUNCTIONS + BILLING_FUNCTIONS)
def test_every_function_has_a_health_graph(dashboard_synth: Synth, short_name: str) -> None:
    part = dashboard_synth.costs if short_name in COSTS_FUNCTIONS else dashboard_synth.billing
    _, body = dashboard(part)
    function_id, _ = function_of(dashboard_synth, short_name)
    function = f"<Ref:{function_id}>"

    widget = widget_titled(body, f"finops-guard-qa-{short_name}")

    assert widget["metrics"] == [
        [
            "AWS/Lambda",
            "Invocations",
            "FunctionName",
            function,
            {"label": "Invocations", "period": 3600, "stat": "Sum"},
        ],
        ["AWS/Lambda", "Errors", "FunctionName", function, {"label": "Errors", "period": 3600, "stat": "Sum"}],
        ["AWS/Lambda", "Throttles", "FunctionName", function, {"label": "Throttles", "period": 3600, "stat": "Sum"}],
        [
            "AWS/Lambda",
            "Duration",
            "FunctionName",
            function,
            {"label": "Duration p99 (ms)", "period": 3600, "stat": "p99", "yAxis": "right"},
        ],
    ]


def test_billing_api_health_graph_shows_requests_errors_and_latency(dashboard_synth: Synth) -> None:
    _, body = dashboard(dashboard_synth.billing)
    stage_id, _ = dashboard_synth.billing.only("AWS::ApiGateway::Stage")
    api = ["ApiName", "finops-guard-qa-billing", "Stage", f"<Ref:{stage_id}>"]

    widget = widget_titled(body, "finops-guard-qa-billing API")

    assert widget["metrics"] == [
        ["AWS/ApiGateway", "Count", *api, {"label": "Requests", "period": 3600, "stat": "Sum"}],
        ["AWS/ApiGateway", "4XXError", *api, {"label": "4xx", "period": 3600, "stat": "Sum"}],
        ["AWS/ApiGateway", "5XXError", *api, {"label": "5xx", "period": 3600, "stat": "Sum"}],
        [
            "AWS/ApiGateway",
            "Latency",
            *api,
            {"label": "Latency p99 (ms)", "period": 3600, "stat": "p99", "yAxis": "right"},
        ],
    ]


def test_service_level_graphs_show_each_slo_metric(dashboard_synth: Synth) -> None:
    _, costs = dashboard(dashboard_synth.costs)
    _, billing = dashboard(dashboard_synth.billing)
    chat = [
        [
            "FinOpsGuard",
            "ChatDeliveryFailures",
            "stage",
            "qa",
            {"label": "Failed deliveries", "period": 3600, "stat": "Sum"},
        ]
    ]

    invoices = widget_titled(billing, "Bot invoice delivery: latency p99 (s) and % within 5 minutes")
    assert invoices["metrics"][:2] == [
        custom("InvoiceDeliveryLatency", "stripe-webhook", label="Latency p99", period=3600, stat="p99"),
        [
            {
                "label": "Bot invoices confirmed within 5 minutes (%)",
                "expression": "100 * FILL(within, 0) / confirmed",
                "period": 3600,
                "yAxis": "right",
            }
        ],
    ]
    assert widget_titled(costs, "Cost anomaly forwarding latency (s)")["metrics"] == [
        custom("AnomalyForwardingLatency", "anomaly-alerts", label="p99", period=3600, stat="p99"),
        custom("AnomalyForwardingLatency", "anomaly-alerts", label="Maximum", period=3600, stat="Maximum"),
    ]
    # The same stage-wide series the chat delivery alarm watches, on both dashboards.
    for body in (costs, billing):
        assert widget_titled(body, "Chat delivery failures, every posting function (per hour)")["metrics"] == chat
    assert widget_titled(costs, "Weekly reports posted (per day)")["metrics"] == [
        custom("WeeklyReportPosted", "weekly-report", label="Posted", period=86400, stat="Sum")
    ]
    assert widget_titled(billing, "Reconciliation mismatches (per daily run)")["metrics"] == [
        custom(
            "ReconciliationMismatches",
            "reconciliation",
            label="Mismatching customer/currency pairs",
            period=86400,
            stat="Maximum",
        )
    ]
    assert widget_titled(billing, "Stripe signature failures (per hour)")["metrics"] == [
        custom("StripeSignatureFailures", "stripe-webhook", label="Signature failures", period=3600, stat="Sum")
    ]


def test_redrive_knows_every_function_the_stacks_deploy(full_synth: Synth) -> None:
    # `finops-guard dlq redrive` invokes only functions it knows by exact name (finops_guard.core.failures).
    from finops_guard.core.failures import FUNCTIONS

    prefix = f"finops-guard-{stage_of(full_synth)}-"
    deployed = {properties["FunctionName"].removeprefix(prefix) for _, _, properties in functions(full_synth)}

    assert deployed == set(FUNCTIONS)
