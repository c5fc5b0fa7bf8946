"""One test per function: its failure, whichever way it is invoked, reaches the ops topic.

Each case follows the whole path through the synthesized templates, evaluating the policies on the way
(moto enforces none): the function's failed event -> the stage's failure queue (its role may send there)
-> the core's Failures alarm on that queue -> the ops topic, which lets that alarm publish. A function
also invoked another way adds that entry's path: the anomaly inbox's redrive, the billing stream's
on-failure destination, the billing API's 5xx alarm for a synchronous call.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import (
    StackSynth,
    Synth,
    assert_parks_failed_async_events,
    failure_queue_ref,
    function_of,
    logical_id,
    ops_topic_ref,
    ref,
    role_id_of,
    stage_of,
    topic_id_of,
)
from finops_guard.core.failures import FUNCTIONS
from policy_eval import ACCOUNT, PolicyEvaluator, role, service

pytestmark = pytest.mark.infra

TLS = {"aws:SecureTransport": True}
# How each function is invoked besides asynchronously (schedules, custom resources, a manual invoke).
ALSO_INVOKED_BY = {
    "anomaly-alerts": "sqs",  # the anomaly inbox
    "billing-notifier": "stream",  # the billing alerts table's stream
    "stripe-webhook": "api",  # POST /stripe/webhook
    "billing-admin": "api",  # the finance admin routes
}


def part_of(synth: Synth, short_name: str) -> StackSynth:
    function_id, _ = function_of(synth, short_name)
    [part] = [part for part in synth.parts if function_id in part.template_json["Resources"]]
    return part


def alarm_named(synth: Synth, name: str) -> tuple[StackSynth, dict[str, Any]]:
    [(part, alarm)] = [
        (part, alarm["Properties"])
        for part in synth.parts
        for alarm in part.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"] == name
    ]
    return part, alarm


def assert_pages_ops(synth: Synth, policies: PolicyEvaluator, alarm_name: str) -> None:
    """The alarm notifies the ops topic (as its stack names it), and the topic lets it publish."""
    part, alarm = alarm_named(synth, alarm_name)
    topic = ops_topic_ref(synth) if part is not synth.core else ref(topic_id_of(synth, "ops-alarms"))
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    topic_arn = policies.topic_arn(topic_id_of(synth, "ops-alarms"))
    context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": policies.alarm_arn(alarm_name)} | TLS
    outcome = policies.is_allowed(service("cloudwatch.amazonaws.com"), "sns:Publish", topic_arn, context)
    assert outcome, f"{alarm_name}: {outcome.reason}"


def mapping_of(part: StackSynth, function_id: str) -> dict[str, Any]:
    [mapping] = [
        m["Properties"]
        for m in part.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == ref(function_id)
    ]
    return mapping


@pytest.mark.parametrize("short_name", sorted(FUNCTIONS))
def test_a_failure_of_the_function_pages_the_ops_topic(full_synth: Synth, short_name: str) -> None:
    synth, stage = full_synth, stage_of(full_synth)
    policies = PolicyEvaluator(synth.template_json)
    part = part_of(synth, short_name)
    function_id, _ = function_of(synth, short_name)
    queue_id = logical_id(synth, "AWS::SQS::Queue", "QueueName", f"finops-guard-{stage}-failures")
    queue_arn = policies.arn(queue_id)
    sender = role(policies.arn(role_id_of(synth, short_name)))

    # Its failed asynchronous event: two retries, then Lambda's record in the failure queue.
    assert_parks_failed_async_events(synth, part, short_name)
    assert policies.template.resolve(failure_queue_ref(synth)) == queue_arn
    outcome = policies.is_allowed(sender, "sqs:SendMessage", queue_arn, TLS)
    assert outcome, outcome.reason

    # The failure queue's alarm pages.
    _, failures = alarm_named(synth, f"FinOpsGuard-{stage}-Failures")
    assert (failures["Namespace"], failures["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert failures["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert (failures["ComparisonOperator"], failures["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert_pages_ops(synth, policies, f"FinOpsGuard-{stage}-Failures")

    # Its other way in, if any.
    other = ALSO_INVOKED_BY.get(short_name)
    if other == "sqs":
        mapping = mapping_of(part, function_id)
        source_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
        redrive = part.template_json["Resources"][source_id]["Properties"]["RedrivePolicy"]
        assert redrive == {"deadLetterTargetArn": failure_queue_ref(synth), "maxReceiveCount": 5}
    elif other == "stream":
        mapping = mapping_of(part, function_id)
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": failure_queue_ref(synth)}}
    elif other == "api":
        _, api = alarm_named(synth, f"FinOpsGuard-{stage}-billing-api-5xx")
        assert (api["Namespace"], api["MetricName"], api["Threshold"]) == ("AWS/ApiGateway", "5XXError", 1)
        assert_pages_ops(synth, policies, f"FinOpsGuard-{stage}-billing-api-5xx")
    else:  # no other trigger that could fail unseen
        mappings = part.resources("AWS::Lambda::EventSourceMapping").values()
        assert all(m["Properties"]["FunctionName"] != ref(function_id) for m in mappings)
