"""The anomaly function against moto (DynamoDB, Secrets Manager) and loopback chat endpoints,
fed SQS batches exactly as the inbox queue delivers them."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from finops_guard.core.adapters import chat as chat_adapter
from finops_guard.core.adapters import secrets
from finops_guard.costs import runtime

from devtools.chat_recorder import ChatRecorder, Reply
from devtools.sqs_events import sqs_event
from tests.conftest import load_event, load_handler
from tests.integration.conftest import TEAMS_PATH, TEAMS_SECRET, FakeContext, emitted_metrics, logged_by

pytestmark = pytest.mark.integration
SNS = load_event("anomaly_sns_notification.json")
EVENT = load_event("anomaly_eventbridge.json")


def fresh(event: dict, **detail) -> str:
    """The sample event, published just now (so latency is realistic), with detail changes."""
    event = json.loads(json.dumps(event))
    event["time"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    event["detail"].update(detail)
    return json.dumps(event)


def fresh_sns(**message) -> str:
    envelope = dict(SNS)
    envelope["Timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    envelope["Message"] = json.dumps({**json.loads(SNS["Message"]), **message})
    return json.dumps(envelope)


@pytest.fixture
def anomalies(deployed, monkeypatch):
    table = deployed.aws.create_anomalies_table()
    monkeypatch.setenv("FINOPSGUARD_ANOMALIES_TABLE", table)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "anomaly-alerts")
    runtime.settings.cache_clear()
    runtime.anomaly_table.cache_clear()
    deployed.anomalies_table = table
    return deployed


def invoke(deployed, bodies: list[str]) -> dict:
    handler = load_handler("anomaly_alerts")
    return handler.lambda_handler(sqs_event(bodies), FakeContext("finops-guard-test-anomaly-alerts"))


def posted(deployed) -> list[dict]:
    return [r.json()["attachments"][0]["content"] for r in deployed.chat.received]


def stored(deployed, anomaly_id: str) -> dict:
    client = deployed.aws.client("dynamodb")
    return client.get_item(TableName=deployed.anomalies_table, Key={"anomaly_id": {"S": anomaly_id}})["Item"]


def test_sns_and_eventbridge_shapes_both_reach_teams(anomalies):
    assert invoke(anomalies, [fresh_sns()]) == {"batchItemFailures": []}
    assert invoke(anomalies, [fresh(EVENT)]) == {"batchItemFailures": []}
    titles = [card["body"][0]["text"] for card in posted(anomalies)]
    assert titles == [
        "Cost anomaly: Amazon Elastic Compute Cloud - Compute +$151.00 (13 %)",
        "Cost anomaly: Amazon SageMaker +$2,421.77 (6,115 %)",
    ]
    logs = anomalies.logs.getvalue()
    assert '"AnomalyForwardingLatency"' not in logs  # metrics are EMF on stdout, not log lines
    item = stored(anomalies, EVENT["detail"]["anomalyId"])
    assert item["status"]["S"] == "alerted" and item["delivered"]["BOOL"] is True
    assert item["impact_alerted"]["N"] == "2421.77" and item["sightings"]["N"] == "1"


def test_a_repeat_is_recorded_silently_and_a_grown_repeat_alerts_as_updated(anomalies):
    invoke(anomalies, [fresh(EVENT)])
    invoke(anomalies, [fresh(EVENT, impact={**EVENT["detail"]["impact"], "totalImpact": 2600})])
    assert len(anomalies.chat.received) == 1
    grown = {**EVENT["detail"]["impact"], "totalImpact": 3700.5, "totalImpactPercentage": 9344.7}
    invoke(anomalies, [fresh(EVENT, impact=grown)])
    cards = posted(anomalies)
    assert len(cards) == 2 and cards[1]["body"][0]["text"].startswith(
        "Cost anomaly updated: Amazon SageMaker +$3,700.50"
    )
    item = stored(anomalies, EVENT["detail"]["anomalyId"])
    assert [h["M"]["impact"]["N"] for h in item["impact_history"]["L"]] == ["2421.77", "2600", "3700.5"]
    assert item["first_seen"]["S"] <= item["last_seen"]["S"]


def test_anomalies_below_the_configured_minimum_are_not_sent(anomalies, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_ANOMALY_MIN_IMPACT", "500")
    runtime.settings.cache_clear()
    invoke(anomalies, [fresh_sns()])  # 151 < 500
    assert anomalies.chat.received == []
    assert stored(anomalies, json.loads(SNS["Message"])["anomalyId"])["status"]["S"] == "below-threshold"


def test_malformed_records_go_back_to_sqs_and_the_rest_is_delivered(anomalies):
    bodies = ["{not json", json.dumps({"Type": "Notification", "MessageId": "m-1", "Message": "[]"}), fresh(EVENT)]
    event = sqs_event(bodies)
    handler = load_handler("anomaly_alerts")
    result = handler.lambda_handler(event, FakeContext("anomalies"))
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == [event["Records"][0]["messageId"], event["Records"][1]["messageId"]]
    assert len(anomalies.chat.received) == 1
    logs = anomalies.logs.getvalue()
    assert "malformed anomaly message" in logs and event["Records"][0]["messageId"] in logs


def test_a_batch_of_fifty_becomes_one_digest(anomalies):
    bodies = [fresh(EVENT, anomalyId=f"burst-{i:02d}", impact={"totalImpact": 100 + i}) for i in range(50)]
    assert invoke(anomalies, bodies) == {"batchItemFailures": []}
    cards = posted(anomalies)
    assert len(cards) == 1 and cards[0]["body"][0]["text"] == "50 cost anomalies, +$6,225.00"


def test_burst_against_a_sink_that_throttles_above_4_per_second_loses_nothing(anomalies, monkeypatch):
    """Ten batches of five arrive at once, as if in ten containers (so no shared pacing; more
    concurrency than the inbox allows): each becomes a digest, the sink answers 429 past
    4 requests/s, and every 429 is retried after its Retry-After until delivered."""
    sink = ChatRecorder(limit_per_second=4).start()
    try:
        anomalies.aws.client("secretsmanager").put_secret_value(
            SecretId=TEAMS_SECRET, SecretString=sink.url(TEAMS_PATH)
        )
        secrets.clear_cache()
        monkeypatch.setattr(chat_adapter, "_sleep", chat_adapter.time.sleep)  # real waiting: a real rate
        monkeypatch.setattr(chat_adapter, "MIN_INTERVAL_S", {})  # separate containers share no pacer
        batches = [
            [fresh(EVENT, anomalyId=f"burst-{b}-{i}", impact={"totalImpact": 100 + i}) for i in range(5)]
            for b in range(10)
        ]
        results, errors = [], []

        def run(bodies):
            try:
                results.append(invoke(anomalies, bodies))
            except Exception as error:  # pragma: no cover - surfaced below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(bodies,)) for bodies in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == [] and all(r == {"batchItemFailures": []} for r in results)
        assert len(sink.received) == 10  # one digest per batch, none lost, none twice
        mentioned = [
            f["title"] for r in sink.received for f in r.json()["attachments"][0]["content"]["body"][2]["facts"]
        ]
        assert len(mentioned) == 50
        assert sink.throttled >= 6  # the sink really pushed back, and nothing was dropped for it
    finally:
        sink.stop()


def test_an_undelivered_alert_is_retried_by_sqs_then_resent_once(anomalies):
    anomalies.chat.then(*[Reply(500)] * 4)
    event = sqs_event([fresh(EVENT)])
    handler = load_handler("anomaly_alerts")
    first = handler.lambda_handler(event, FakeContext("anomalies"))
    assert first == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert stored(anomalies, EVENT["detail"]["anomalyId"])["delivered"]["BOOL"] is False
    # SQS makes the record visible again after the visibility timeout (6 min): age the alert.
    client = anomalies.aws.client("dynamodb")
    earlier = (datetime.now(UTC) - timedelta(minutes=7)).isoformat(timespec="seconds")
    client.update_item(
        TableName=anomalies.anomalies_table,
        Key={"anomaly_id": {"S": EVENT["detail"]["anomalyId"]}},
        UpdateExpression="SET alerted_at = :t",
        ExpressionAttributeValues={":t": {"S": earlier}},
    )
    again = handler.lambda_handler(event, FakeContext("anomalies"))
    assert again == {"batchItemFailures": []}
    assert len(anomalies.chat.received) == 5 and anomalies.chat.received[4].json() == anomalies.chat.received[0].json()
    assert stored(anomalies, EVENT["detail"]["anomalyId"])["delivered"]["BOOL"] is True


def test_with_kpi_metrics_off_only_the_latency_alarms_metric_is_sent_and_the_counts_are_logged(
    anomalies, capsys, monkeypatch
):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    capsys.readouterr()
    with logged_by("anomaly_alerts") as logged:
        assert invoke(anomalies, [fresh(EVENT)]) == {"batchItemFailures": []}

    assert emitted_metrics(capsys.readouterr().out) == {"AnomalyForwardingLatency"}
    line = logged.extra_of("anomaly batch forwarded")
    assert (line["records"], line["alerted"]) == (1, [f"{EVENT['detail']['anomalyId']}:new"])


def test_with_kpi_metrics_off_a_malformed_message_is_still_counted(anomalies, capsys, monkeypatch):
    monkeypatch.setenv("FINOPSGUARD_KPI_METRICS", "off")
    capsys.readouterr()
    invoke(anomalies, ["{not json"])

    assert emitted_metrics(capsys.readouterr().out) == {"MalformedAnomalyMessages"}
