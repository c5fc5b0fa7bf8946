import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.cards import MAX_PAYLOAD_BYTES, payload_bytes
from finops_guard.core.delivery import PostFailed
from finops_guard.costs.anomalies import AlertPolicy, MalformedAnomaly, Sighting, alert_message_id, parse_message
from finops_guard.costs.anomaly_alerts import InboxRecord, forward_batch
from finops_guard.costs.cards.anomaly import render_anomalies

from tests.conftest import load_event
from tests.unit.core.test_delivery import MemoryOutbox, ScriptedPoster

SNS = load_event("anomaly_sns_notification.json")
EVENT = load_event("anomaly_eventbridge.json")


def sns_body(**changes):
    envelope = dict(SNS)
    message = {**json.loads(envelope["Message"]), **changes}
    envelope["Message"] = json.dumps(message)
    return json.dumps(envelope)


def eb_body(**changes):
    event = json.loads(json.dumps(EVENT))
    event["detail"].update(changes)
    return json.dumps(event)


def test_sns_shape_normalises_to_the_model():
    a = parse_message(json.dumps(SNS))
    assert (a.source, a.anomaly_id, a.message_id) == ("sns", "a9f8e7d6-c5b4-4a39-8271-605f4e3d2c1b", SNS["MessageId"])
    assert a.service == "Amazon Elastic Compute Cloud - Compute"
    assert (a.account_id, a.account_name, a.region) == ("111111111111", "prod-platform", "us-east-1")
    assert a.usage_type == "BoxUsage:c6i.4xlarge"
    assert a.total_impact == D("151.0") and a.impact_percentage == D("13.13")
    assert (a.expected_spend, a.actual_spend) == (D("1150.0"), D("1301.0"))
    assert a.published_at == datetime(2026, 11, 16, 6, 40, 2, 512000, tzinfo=UTC)


def test_eventbridge_shape_normalises_to_the_same_model():
    a = parse_message(json.dumps(EVENT))
    assert (a.source, a.message_id, a.service) == ("eventbridge", EVENT["id"], "Amazon SageMaker")
    assert (a.account_id, a.account_name) == ("222222222222", "prod-data")
    assert a.total_impact == D("2421.77")  # exact decimal, never a float
    assert [c.contribution for c in a.root_causes] == [D("2210.15"), D("151.02"), D("38.4"), D("22.2")]
    assert a.published_at == datetime(2026, 11, 16, 6, 42, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": "world"}', "neither an SNS notification"),
        (json.dumps({**SNS, "Message": "{broken"}), "SNS Message is not JSON"),
        (sns_body(anomalyId=None), "no anomalyId"),
        (eb_body(impact={"maxImpact": 3}), "no impact.totalImpact"),
        (json.dumps({**EVENT, "time": "yesterday"}), "bad publish time"),
    ],
)
def test_malformed_messages_are_refused_with_their_id(body, problem):
    with pytest.raises(MalformedAnomaly, match=problem) as error:
        parse_message(body, "sqs-1")
    assert error.value.message_id


def test_alert_policy():
    policy = AlertPolicy(min_impact=D(100), realert_growth=D("0.5"))
    assert policy.next_alert_at(D(200)) == D(300)
    assert not policy.alertable(parse_message(eb_body(impact={"totalImpact": 99.99})))
    assert policy.alertable(parse_message(eb_body(impact={"totalImpact": 100})))


def test_message_ids_are_stable_for_the_same_alerts_in_any_order():
    a = Sighting(parse_message(eb_body(anomalyId="a")), "new", D(5))
    b = Sighting(parse_message(eb_body(anomalyId="b")), "new", D(7))
    assert alert_message_id([a], "teams") == "anomaly/a/5/teams"
    assert alert_message_id([a, b], "teams") == alert_message_id([b, a], "teams")
    assert alert_message_id([a, b], "teams") != alert_message_id([a, Sighting(b.anomaly, "updated", D(11))], "teams")


def card(payload):
    return payload["attachments"][0]["content"]


def test_single_card_shows_everything_an_on_call_needs():
    sighting = Sighting(parse_message(json.dumps(EVENT)), "new", D("2421.77"))
    content = card(render_anomalies([sighting], "teams"))
    text = json.dumps(content, ensure_ascii=False)
    assert content["body"][0]["text"] == "Cost anomaly: Amazon SageMaker +$2,421.77 (6,115 %)"
    for expected in ("prod-data (222222222222)", "eu-west-1", "EU-ml.p3.8xlarge-Training", "$39.60 → $2,461.37",
                     "12–15 Nov 2026"):  # fmt: skip
        assert expected in text
    causes = content["body"][3]["facts"]
    assert [c["title"] for c in causes] == ["1. Amazon SageMaker", "2. Amazon SageMaker", "3. Amazon SageMaker"]
    assert causes[0]["value"].startswith("$2,210.15")
    assert content["actions"][0]["url"] == EVENT["detail"]["anomalyDetailsLink"]


def test_updated_card_says_updated_and_untrusted_links_are_replaced():
    sighting = Sighting(parse_message(eb_body(anomalyDetailsLink="https://evil.example/x")), "updated", D(1))
    content = card(render_anomalies([sighting], "teams"))
    assert content["body"][0]["text"].startswith("Cost anomaly updated:")
    assert content["actions"][0]["url"].startswith("https://console.aws.amazon.com/cost-management/")


def test_digest_of_fifty_stays_small_and_lists_the_largest():
    sightings = [
        Sighting(parse_message(eb_body(anomalyId=f"id-{i}", impact={"totalImpact": 10 + i})), "new", D(10 + i))
        for i in range(50)
    ]
    sightings.sort(key=lambda s: -s.anomaly.total_impact)
    payload = render_anomalies(sightings, "teams")
    assert payload_bytes(payload) < MAX_PAYLOAD_BYTES
    content = card(payload)
    assert content["body"][0]["text"] == "50 cost anomalies, +$1,725.00"
    assert content["body"][2]["facts"][0]["value"].startswith("+$59.00")
    assert content["body"][2]["facts"][-1] == {"title": "…", "value": "40 more, +$1,180.00 together"}
    slack = render_anomalies(sightings, "slack")
    assert slack["text"] == "50 cost anomalies, +$1,725.00" and "…and 40 more" in slack["blocks"][1]["text"]["text"]


class MemoryAnomalyStore:
    """The contract of AnomalyTable.record, in memory."""

    def __init__(self):
        self.items = {}

    def record(self, anomaly, policy, now):
        item = self.items.setdefault(anomaly.anomaly_id, {"history": []})
        item["history"].append(anomaly.total_impact)
        if policy.alertable(anomaly) and ("alerted" not in item or item["realert_at"] <= anomaly.total_impact):
            outcome = "updated" if "alerted" in item else "new"
            item.update(alerted=anomaly.total_impact, realert_at=policy.next_alert_at(anomaly.total_impact),
                        delivered=False, at=now)  # fmt: skip
            return Sighting(anomaly, outcome, anomaly.total_impact)
        if "alerted" not in item:
            return Sighting(anomaly, "below-threshold")
        if not item["delivered"] and now - item["at"] >= timedelta(minutes=5):
            return Sighting(anomaly, "undelivered", item["alerted"])
        return Sighting(anomaly, "silent")

    def mark_delivered(self, anomaly_id, impact):
        if self.items[anomaly_id]["alerted"] == impact:
            self.items[anomaly_id]["delivered"] = True


NOW = datetime(2026, 11, 16, 6, 45, tzinfo=UTC)


DEFAULT_POLICY = AlertPolicy()


def forward(bodies, store, poster=None, policy=DEFAULT_POLICY, now=NOW, outbox=None):
    records = [InboxRecord(f"sqs-{i}", body) for i, body in enumerate(bodies)]
    return forward_batch(
        records, store=store, outbox=outbox or MemoryOutbox(), poster=poster or ScriptedPoster({}), policy=policy,
        render=render_anomalies, channels=["teams"], clock=lambda: now,
    )  # fmt: skip


def test_first_sighting_alerts_repeat_is_silent_growth_re_alerts_as_updated():
    store, poster = MemoryAnomalyStore(), ScriptedPoster({})
    assert [s.outcome for s in forward([eb_body()], store, poster).sightings] == ["new"]
    assert [s.outcome for s in forward([eb_body()], store, poster).sightings] == ["silent"]
    small_growth = eb_body(impact={"totalImpact": 3000})  # +24 %
    assert [s.outcome for s in forward([small_growth], store, poster).sightings] == ["silent"]
    big_growth = eb_body(impact={"totalImpact": 3632.66})  # exactly +50 % of 2421.77 (rounded up)
    assert [s.outcome for s in forward([big_growth], store, poster).sightings] == ["updated"]
    assert len(poster.posted) == 2
    assert store.items[EVENT["detail"]["anomalyId"]]["history"] == [D("2421.77"), D("2421.77"), D(3000), D("3632.66")]


def test_anomalies_below_the_minimum_are_recorded_and_alert_once_they_grow_past_it():
    store, policy = MemoryAnomalyStore(), AlertPolicy(min_impact=D(500))
    assert forward([sns_body()], store, policy=policy).sightings[0].outcome == "below-threshold"
    grown = sns_body(impact={"totalImpact": 600, "totalImpactPercentage": 40})
    assert forward([grown], store, policy=policy).sightings[0].outcome == "new"


def test_several_anomalies_in_one_batch_become_one_digest():
    store, poster = MemoryAnomalyStore(), ScriptedPoster({})
    bodies = [eb_body(anomalyId=f"id-{i}") for i in range(5)] + [eb_body(anomalyId="id-0")]
    outcome = forward(bodies, store, poster)
    assert len(outcome.alerted) == 5 and len(poster.posted) == 1
    assert poster.posted[0].startswith("anomaly-digest/")
    assert outcome.latencies == [D("169.0")] * 5  # published 06:42:11, posted 06:45:00


def test_malformed_records_are_reported_for_retry_and_do_not_block_the_rest():
    store, poster = MemoryAnomalyStore(), ScriptedPoster({})
    outcome = forward(["{oops", eb_body()], store, poster)
    assert outcome.retry == ["sqs-0"] and outcome.malformed[0][0] == "sqs-0"
    assert len(poster.posted) == 1


def test_undelivered_alert_is_retried_and_resent_later_not_re_decided():
    store, outbox = MemoryAnomalyStore(), MemoryOutbox()
    failing = ScriptedPoster({"teams": PostFailed("teams: HTTP 500 after 4 attempts")})
    first = forward([eb_body()], store, failing, outbox=outbox)
    assert first.retry == ["sqs-0"]
    soon = forward([eb_body()], store, ScriptedPoster({}), outbox=outbox, now=NOW + timedelta(minutes=1))
    assert soon.sightings[0].outcome == "silent"  # may still be in flight elsewhere
    healthy = ScriptedPoster({})
    later = forward([eb_body()], store, healthy, outbox=outbox, now=NOW + timedelta(minutes=6))
    assert later.sightings[0].outcome == "undelivered" and healthy.posted == [first.delivery.failed[0][0]]
    assert later.retry == [] and store.items[EVENT["detail"]["anomalyId"]]["delivered"]
