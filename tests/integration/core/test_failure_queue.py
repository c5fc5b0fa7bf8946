"""`finops-guard dlq` over the stage's one failure queue (moto): every shape is listed with where it
came from and what redrive will do; redrive invokes this stage's functions or returns anomaly
messages to the inbox, deletes a message only once that was accepted, and leaves the rest visible."""

from __future__ import annotations

import json

import pytest
from finops_guard import cli
from finops_guard.core.adapters import dead_letters

from tests.conftest import EVENTS

pytestmark = pytest.mark.integration

QUEUE = "finops-guard-test-failures"
INBOX = "finops-guard-test-anomaly-inbox"


def for_stage(text: str, stage: str = "test") -> str:
    """The samples name stage prod; the embedded deployment is stage `test`."""
    return text.replace("finops-guard-prod-", f"finops-guard-{stage}-")


@pytest.fixture
def failures(deployed):
    """The failure queue holding one message of each shape, plus two that must never be redriven."""
    sqs = deployed.aws.client("sqs")
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    inbox_url = sqs.create_queue(QueueName=INBOX)["QueueUrl"]
    record = json.loads(for_stage((EVENTS / "failure_lambda_destination.json").read_text()))
    record["requestContext"]["functionArn"] = record["requestContext"]["functionArn"].replace(
        "weekly-report", "budget-guard"
    )
    scheduled = json.loads(for_stage((EVENTS / "failure_scheduler_dead_letter.json").read_text()))
    other_stage = (EVENTS / "failure_lambda_destination.json").read_text().replace("-prod-", "-qa-")
    bodies = {
        "destination": (json.dumps(record), {}),
        "schedule": (scheduled["Body"], scheduled["MessageAttributes"]),
        "anomaly": (for_stage((EVENTS / "anomaly_sns_notification.json").read_text()), {}),
        "stream": (for_stage((EVENTS / "failure_stream_batch.json").read_text()), {}),
        "unrecognised": ('{"scheduled_time": "2026-11-16T09:00:00Z"}', {}),
        "other-stage": (other_stage, {}),
    }
    ids = {}
    for name, (body, attributes) in bodies.items():
        ids[name] = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)["MessageId"]
    return {"sqs": sqs, "url": url, "inbox_url": inbox_url, "ids": ids, "record": record, "bodies": bodies}


@pytest.fixture
def invoked(monkeypatch):
    """Lambda's Invoke (moto would need Docker to run a function): records each call; the weekly
    report's is throttled, as Lambda refuses an event it cannot queue."""
    calls: list[tuple[str, dict]] = []

    def invoke(self, function_name, payload):
        if function_name.endswith("-weekly-report"):
            raise RuntimeError("TooManyRequestsException: Rate Exceeded.")
        calls.append((function_name, json.loads(payload)))

    monkeypatch.setattr(dead_letters.AsyncInvoker, "invoke", invoke)
    return calls


def visible(failures) -> dict[str, str]:
    """Message id -> body of what is in the queue now (receiving with visibility 0 leaves it there)."""
    found = {}
    for _ in range(5):
        reply = failures["sqs"].receive_message(QueueUrl=failures["url"], MaxNumberOfMessages=10, VisibilityTimeout=0)
        found.update({m["MessageId"]: m["Body"] for m in reply.get("Messages", [])})
    return found


def lines_by_id(text: str) -> dict[str, list[str]]:
    return {line.split("\t")[0]: line.split("\t") for line in text.splitlines() if "\t" in line}


def test_list_shows_each_failure_its_source_error_and_redrive_and_leaves_it_in_the_queue(failures, capsys):
    assert cli.main(["dlq", "list", "--stage", "test"]) == 0

    out = capsys.readouterr().out
    rows, ids = lines_by_id(out), failures["ids"]
    assert rows[ids["destination"]][1:4] == [
        "2026-11-16T07:06:41Z",
        "budget-guard",
        "RetriesExhausted after 3 attempt(s): DeliveryFailed: 1 message(s) not delivered: "
        "weekly-report/2026-W47/teams (HTTP 503 after 4 attempts)",
    ]
    assert rows[ids["destination"]][4] == "invoke finops-guard-test-budget-guard (async) with the event"
    assert rows[ids["schedule"]][2:] == [
        "schedule finops-guard-test-weekly-report",
        "AWS.Scheduler.Lambda.TooManyRequestsException: Rate Exceeded. (Service: Lambda, Status Code: 429) "
        "(retries 185)",
        "invoke finops-guard-test-weekly-report (async) with the event",
    ]
    assert rows[ids["anomaly"]][2] == "anomaly inbox" and rows[ids["anomaly"]][4] == f"send it back to {INBOX}"
    assert rows[ids["stream"]][2] == "stream batch" and rows[ids["stream"]][4].startswith("keep it: not redrivable")
    assert rows[ids["unrecognised"]][2] == "unrecognised" and rows[ids["unrecognised"]][4].startswith("keep it")
    assert rows[ids["other-stage"]][4] == (
        "keep it: refused: finops-guard-qa-weekly-report is not a function of stage test"
    )
    assert out.splitlines()[-1] == f"6 message(s) in {QUEUE}"
    assert set(visible(failures)) == set(ids.values())


def test_list_for_one_function_shows_only_its_failures(failures, capsys):
    assert cli.main(["dlq", "list", "--stage", "test", "--function", "anomaly-alerts"]) == 0

    out = capsys.readouterr().out
    assert list(lines_by_id(out)) == [failures["ids"]["anomaly"]]
    assert out.splitlines()[-1] == f"1 message(s) for anomaly-alerts in {QUEUE} (5 other)"


def test_redrive_sends_each_back_deletes_only_what_was_accepted_and_keeps_the_rest_visible(failures, invoked, capsys):
    assert cli.main(["dlq", "redrive", "--stage", "test"]) == 1

    captured = capsys.readouterr()
    ids = failures["ids"]
    # The destination record: its function, again, with the original event.
    assert invoked == [("finops-guard-test-budget-guard", failures["record"]["requestPayload"])]
    # The poison anomaly message: back in the inbox, byte for byte.
    inbox = failures["sqs"].receive_message(QueueUrl=failures["inbox_url"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in inbox] == [failures["bodies"]["anomaly"][0]]
    # Kept, and visible again at once: the throttled schedule, the stream batch, the unrecognised
    # message and the other stage's record (never invoked).
    assert set(visible(failures)) == {ids["schedule"], ids["stream"], ids["unrecognised"], ids["other-stage"]}
    assert captured.out.splitlines()[-1] == "2 redriven, 4 kept"
    errors = captured.err.splitlines()
    assert f"kept {ids['schedule']}: RuntimeError: TooManyRequestsException: Rate Exceeded." in errors
    [stream_line] = [line for line in errors if line.startswith(f"kept {ids['stream']}:")]
    assert (
        "24 h" in stream_line and f"finops-guard dlq discard --stage test --message-id {ids['stream']}" in stream_line
    )
    assert any(line.startswith(f"kept {ids['other-stage']}: refused: finops-guard-qa-weekly-report") for line in errors)


def test_redrive_for_one_function_touches_no_other_message(failures, invoked, capsys):
    assert cli.main(["dlq", "redrive", "--stage", "test", "--function", "budget-guard"]) == 0

    assert capsys.readouterr().out.splitlines()[-1] == "1 redriven, 0 kept"
    assert invoked == [("finops-guard-test-budget-guard", failures["record"]["requestPayload"])]
    assert set(visible(failures)) == set(failures["ids"].values()) - {failures["ids"]["destination"]}


def test_a_dry_run_redrives_nothing_and_deletes_nothing(failures, invoked, capsys):
    assert cli.main(["dlq", "redrive", "--stage", "test", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert (
        f"{failures['ids']['destination']}: would invoke finops-guard-test-budget-guard (async) with the event" in out
    )
    assert invoked == [] and set(visible(failures)) == set(failures["ids"].values())


def test_discard_deletes_a_message_handled_by_hand_and_an_unknown_id_exits_1(failures, capsys):
    stream = failures["ids"]["stream"]

    assert cli.main(["dlq", "discard", "--stage", "test", "--message-id", stream]) == 0
    assert cli.main(["dlq", "discard", "--stage", "test", "--message-id", stream]) == 1

    captured = capsys.readouterr()
    assert captured.out.strip() == f"discarded {stream}"
    assert captured.err.strip() == f"not in {QUEUE}: {stream}"
    assert set(visible(failures)) == set(failures["ids"].values()) - {stream}


def test_an_empty_queue_lists_nothing_and_redrives_nothing(deployed, invoked, capsys):
    deployed.aws.client("sqs").create_queue(QueueName=QUEUE)

    assert cli.main(["dlq", "list", "--stage", "test"]) == 0
    assert cli.main(["dlq", "redrive", "--stage", "test"]) == 0

    assert capsys.readouterr().out.splitlines() == [f"0 message(s) in {QUEUE}", "0 redriven, 0 kept"]


def test_a_stage_without_a_failure_queue_is_one_line_and_exit_1(deployed, capsys):
    assert cli.main(["dlq", "list", "--stage", "nowhere"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("finops-guard: ") and err.count("\n") == 1
