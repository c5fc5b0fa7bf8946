"""Budget and anomaly alerts routed to the channels of the teams they concern, in memory (no sockets)."""

import json
import logging
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.delivery import PostFailed
from finops_guard.costs.anomalies import AlertPolicy
from finops_guard.costs.anomaly_alerts import InboxRecord, forward_batch
from finops_guard.costs.budget_guard import run_budget_guard
from finops_guard.costs.cards.anomaly import render_anomalies
from finops_guard.costs.cards.budget_alert import render_alert, render_digest
from finops_guard.costs.teams import Routing, TeamRoute, parse_dimension, team_destination

from tests.unit.core.test_delivery import MemoryOutbox
from tests.unit.costs.test_anomalies import NOW as ANOMALY_NOW
from tests.unit.costs.test_anomalies import MemoryAnomalyStore, eb_body
from tests.unit.costs.test_budget_guard import AS_OF, NOW, Events, MemoryAlertStore, budget

WEB_DESTINATION, DATA_DESTINATION = team_destination("web"), team_destination("data")
WEB_ACCOUNT, DATA_ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222", "333333333333"
STEM = "budget-alert/b/2026-11/actual/90@1000"


def routing(*routes):
    return Routing(parse_dimension("tag:team"), routes)


WEB = TeamRoute("web", ("teams",), accounts=(WEB_ACCOUNT,))
DATA = TeamRoute("data", ("teams",), accounts=(DATA_ACCOUNT,))


class DestinationPoster:
    """Posts by destination: a team channel (its secret) or the deployment's channel; some may fail."""

    def __init__(self, failing=()):
        self.failing = set(failing)
        self.sent = []

    def post(self, message):
        if (message.secret_name or message.channel) in self.failing:
            raise PostFailed(f"{message.channel}: HTTP 500 after 4 attempts")
        self.sent.append(message)
        return 1

    @property
    def posted(self):
        return [m.message_id for m in self.sent]

    def to(self, secret_name):
        return [m for m in self.sent if m.secret_name == secret_name]


class TeamCosts:
    """Cost Explorer in memory: every cost line (account, service, team tag) costs `daily` a day."""

    LINES = [(WEB_ACCOUNT, "EC2", "web"), (DATA_ACCOUNT, "SageMaker", "data"), (OTHER_ACCOUNT, "S3", "ops")]

    def __init__(self, daily="62", extra_lines=()):
        self.daily, self.requests = D(daily), 0
        self.lines = [*self.LINES, *extra_lines]

    def query(self, request):
        self.requests += 1
        start = date.fromisoformat(request["TimePeriod"]["Start"])
        end = date.fromisoformat(request["TimePeriod"]["End"])
        groups = []
        for account, service, team in self.lines:
            values = {"LINKED_ACCOUNT": account, "SERVICE": service, "team": f"team${team}"}
            keys = [values[g["Key"]] for g in request["GroupBy"]]
            groups.append({"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": str(self.daily), "Unit": "USD"}}})
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        yield {
            "ResultsByTime": [
                {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()}, "Groups": groups}
                for d in days
            ]
        }


def guard(budgets, store, outbox, poster, team_routing, *, digest=False, costs=None):
    return run_budget_guard(
        budgets, now=NOW, costs=costs or TeamCosts(), store=store, outbox=outbox, poster=poster, events=Events(),
        render=render_alert, render_digest=render_digest if digest else None, timezone="UTC", routing=team_routing,
    )  # fmt: skip


@pytest.fixture
def world():
    return MemoryAlertStore(), MemoryOutbox()


def web_budget(**changes):
    return budget(alert_on=["actual"], scope={"tag": {"team": ["web"]}}, **changes)


# --- budgets -----------------------------------------------------------------------------------


def test_a_budget_scoped_on_a_team_tag_also_alerts_that_teams_channel(world):
    store, outbox = world
    poster = DestinationPoster()
    guard([web_budget()], store, outbox, poster, routing(WEB, DATA))
    assert AS_OF == date(2026, 11, 15)  # 15 days x 62 = 930 of 1000: 90 % crossed
    assert poster.posted == [f"{STEM}/teams", f"{STEM}/team/web/teams"]
    [team_message] = poster.to(WEB_DESTINATION)
    assert team_message.channel == "teams" and "crossed 90 %" in json.dumps(team_message.payload)
    record = store.records[("b", "2026-11#actual#90")]
    assert set(record.message_ids) == {f"{STEM}/teams", f"{STEM}/team/web/teams"} and record.delivered


def test_a_budget_scoped_on_an_account_alerts_the_team_whose_route_lists_it(world):
    store, outbox = world
    poster = DestinationPoster()
    guard([budget(alert_on=["actual"], scope={"account": [DATA_ACCOUNT]})], store, outbox, poster, routing(WEB, DATA))
    assert poster.posted == [f"{STEM}/teams", f"{STEM}/team/data/teams"]
    assert [m.message_id for m in poster.to(DATA_DESTINATION)] == [f"{STEM}/team/data/teams"]


def test_a_budget_whose_scope_names_no_routed_team_alerts_the_default_channel_only(world):
    store, outbox = world
    poster = DestinationPoster()
    guard([budget(alert_on=["actual"], scope={"tag": {"team": ["ops"]}})], store, outbox, poster, routing(WEB, DATA))
    assert poster.posted == [f"{STEM}/teams"] and poster.sent[0].secret_name is None
    assert store.records[("b", "2026-11#actual#90")].delivered


def test_team_channels_follow_the_teams_route_not_the_budgets_notify_list(world):
    store, outbox = world
    poster = DestinationPoster()
    web_everywhere = TeamRoute("web", ("teams", "slack"))
    guard([web_budget(notify=["email"])], store, outbox, poster, routing(web_everywhere))
    assert poster.posted == [f"{STEM}/email", f"{STEM}/team/web/teams", f"{STEM}/team/web/slack"]
    assert [(m.secret_name, m.channel) for m in poster.sent] == [
        (None, "email"),
        (WEB_DESTINATION, "teams"),
        (WEB_DESTINATION, "slack"),
    ]


def test_digests_are_built_per_destination_and_never_mix_teams(world):
    store, outbox = world
    poster = DestinationPoster()
    webs = [budget(f"web{i}", alert_on=["actual"], scope={"tag": {"team": ["web"]}}) for i in range(6)]
    datas = [budget(f"data{i}", alert_on=["actual"], scope={"tag": {"team": ["data"]}}) for i in range(2)]
    guard(webs + datas, store, outbox, poster, routing(WEB, DATA), digest=True)
    default = [m for m in poster.sent if m.secret_name is None]
    [web_digest] = poster.to(WEB_DESTINATION)
    assert [m.message_id.split("/")[0] for m in default] == ["budget-digest"]
    assert len(default[0].payload["attachments"][0]["content"]["body"][1]["facts"]) == 8 + 1  # + the cost metric
    assert web_digest.message_id.startswith("budget-digest/") and web_digest.message_id.endswith("/team/web/teams")
    assert len(web_digest.payload["attachments"][0]["content"]["body"][1]["facts"]) == 6 + 1
    assert sorted(m.message_id.split("/")[1] for m in poster.to(DATA_DESTINATION)) == ["data0", "data1"]
    assert all(r.delivered for r in store.records.values())


def test_redelivery_after_a_team_channel_failure_posts_only_the_team_message(world):
    store, outbox = world
    first = guard([web_budget()], store, outbox, DestinationPoster(failing=[WEB_DESTINATION]), routing(WEB))
    assert first.delivery.failed and not store.records[("b", "2026-11#actual#90")].delivered
    healthy = DestinationPoster()
    again = guard([web_budget()], store, outbox, healthy, routing(WEB))
    assert again.fired == [] and healthy.posted == [f"{STEM}/team/web/teams"]
    assert healthy.sent[0].secret_name == WEB_DESTINATION
    assert store.records[("b", "2026-11#actual#90")].delivered


def test_a_team_name_that_needs_quoting_still_parses_on_redelivery(world):
    store, outbox = world
    slashed = TeamRoute("data/ml", ("teams",))
    budgets = [budget(alert_on=["actual"], scope={"tag": {"team": ["data/ml"]}})]
    costs = TeamCosts(extra_lines=[("444444444444", "EMR", "data/ml")])
    guard(
        budgets, store, outbox, DestinationPoster(failing=[team_destination("data/ml")]), routing(slashed), costs=costs
    )
    healthy = DestinationPoster()
    guard(budgets, store, outbox, healthy, routing(slashed), costs=TeamCosts(extra_lines=costs.lines[3:]))
    assert healthy.posted == [f"{STEM}/team/data%2Fml/teams"] and healthy.sent[0].secret_name == team_destination(
        "data/ml"
    )


def test_a_team_message_whose_route_was_removed_is_dropped_and_logged_on_redelivery(world, caplog):
    store, outbox = world
    guard([web_budget()], store, outbox, DestinationPoster(failing=[WEB_DESTINATION]), routing(WEB))
    healthy = DestinationPoster()
    with caplog.at_level(logging.WARNING, logger="finops_guard.costs.budget_guard"):
        again = guard([web_budget()], store, outbox, healthy, routing(DATA))
    assert healthy.posted == [] and again.dropped == [f"{STEM}/team/web/teams"]
    assert store.records[("b", "2026-11#actual#90")].delivered
    assert "team channel no longer routed" in caplog.text


def test_while_routes_are_unreadable_a_team_message_keeps_its_record_waiting(world):
    store, outbox = world
    guard([web_budget()], store, outbox, DestinationPoster(failing=[WEB_DESTINATION]), routing(WEB))
    unknown = DestinationPoster()
    again = guard([web_budget()], store, outbox, unknown, Routing(parse_dimension("tag:team"), available=False))
    assert unknown.posted == [] and again.dropped == []
    assert not store.records[("b", "2026-11#actual#90")].delivered
    healthy = DestinationPoster()
    guard([web_budget()], store, outbox, healthy, routing(WEB))
    assert healthy.posted == [f"{STEM}/team/web/teams"]


# --- anomalies ---------------------------------------------------------------------------------


def anomaly(anomaly_id, account, impact=100, minor_account=None):
    causes = [{"service": "Amazon SageMaker", "linkedAccount": account, "impact": {"contribution": impact}}]
    if minor_account:
        causes.append({"service": "Amazon S3", "linkedAccount": minor_account, "impact": {"contribution": 1}})
    return eb_body(anomalyId=anomaly_id, impact={"totalImpact": impact}, rootCauses=causes)


def forward(bodies, store, outbox, poster, team_routing, now=ANOMALY_NOW):
    records = [InboxRecord(f"sqs-{i}", body) for i, body in enumerate(bodies)]
    return forward_batch(
        records, store=store, outbox=outbox, poster=poster, policy=AlertPolicy(), render=render_anomalies,
        channels=["teams"], clock=lambda: now, routing=team_routing,
    )  # fmt: skip


def headline(message):
    return message.payload["attachments"][0]["content"]["body"][0]["text"]


def digest_impacts(message):
    return [fact["value"].split(" ")[0] for fact in message.payload["attachments"][0]["content"]["body"][2]["facts"]]


@pytest.fixture
def inbox():
    return MemoryAnomalyStore(), MemoryOutbox()


def test_an_anomaly_whose_top_root_cause_is_in_a_teams_account_goes_to_that_team(inbox):
    store, outbox = inbox
    poster = DestinationPoster()
    outcome = forward([anomaly("a", DATA_ACCOUNT)], store, outbox, poster, routing(WEB, DATA))
    assert poster.posted == ["anomaly/a/100/teams", "anomaly/a/100/team/data/teams"]
    assert poster.sent[1].secret_name == DATA_DESTINATION and poster.sent[1].payload == poster.sent[0].payload
    assert outcome.retry == [] and store.items["a"]["delivered"]


def test_a_minor_root_cause_account_does_not_route_the_anomaly(inbox):
    store, outbox = inbox
    poster = DestinationPoster()
    forward([anomaly("a", OTHER_ACCOUNT, minor_account=WEB_ACCOUNT)], store, outbox, poster, routing(WEB))
    assert poster.posted == ["anomaly/a/100/teams"]


def test_two_teams_in_one_batch_each_get_one_message_with_only_their_anomalies(inbox):
    store, outbox = inbox
    poster = DestinationPoster()
    bodies = [anomaly("w1", WEB_ACCOUNT, 300), anomaly("d1", DATA_ACCOUNT, 200),
              anomaly("w2", WEB_ACCOUNT, 150), anomaly("o1", OTHER_ACCOUNT, 100)]  # fmt: skip
    forward(bodies, store, outbox, poster, routing(WEB, DATA))
    [default] = [m for m in poster.sent if m.secret_name is None]
    [web] = poster.to(WEB_DESTINATION)
    [data] = poster.to(DATA_DESTINATION)
    assert headline(default) == "4 cost anomalies, +$750.00"
    assert web.message_id.startswith("anomaly-digest/") and web.message_id.endswith("/team/web/teams")
    assert digest_impacts(web) == ["+$300.00", "+$150.00"]
    assert data.message_id == "anomaly/d1/200/team/data/teams" and "+$200.00" in headline(data)


def test_a_team_channel_failure_retries_the_batch_and_the_retry_posts_only_what_is_missing(inbox):
    store, outbox = inbox
    bodies = [anomaly("w1", WEB_ACCOUNT, 300), anomaly("d1", DATA_ACCOUNT, 200)]
    first = forward(bodies, store, outbox, DestinationPoster(failing=[WEB_DESTINATION]), routing(WEB, DATA))
    assert first.retry == ["sqs-0", "sqs-1"] and not store.items["w1"]["delivered"]
    assert first.latencies == []
    healthy = DestinationPoster()  # SQS brings both records back after the visibility timeout
    again = forward(bodies, store, outbox, healthy, routing(WEB, DATA), now=ANOMALY_NOW + timedelta(minutes=6))
    assert [s.outcome for s in again.sightings] == ["undelivered", "undelivered"]
    assert healthy.posted == ["anomaly/w1/300/team/web/teams"]
    assert again.retry == [] and store.items["w1"]["delivered"] and store.items["d1"]["delivered"]


def test_a_team_route_removed_before_the_retry_no_longer_holds_the_anomaly(inbox):
    store, outbox = inbox
    body = anomaly("w1", WEB_ACCOUNT)
    forward([body], store, outbox, DestinationPoster(failing=[WEB_DESTINATION]), routing(WEB))
    healthy = DestinationPoster()
    again = forward([body], store, outbox, healthy, routing(), now=ANOMALY_NOW + timedelta(minutes=6))
    assert healthy.posted == [] and again.retry == [] and store.items["w1"]["delivered"]
