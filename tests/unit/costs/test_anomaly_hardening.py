"""Issue 15, anomaly batches: one bad record never breaks the batch. Each family of bad input (amounts
out of range or not finite, non-string or mis-shaped ids, accounts and dates, names too long or not
UTF-8, pathological nesting in the SQS body or the SNS Message string) is refused alone as
malformed (reported for retry, so it reaches the DLQ after 5 receives), and the good anomalies
beside it are delivered once. Both AWS shapes. In-memory ports; the property test at the end
generates mixed batches (1,000 cases)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from decimal import Decimal as D

import pytest
from finops_guard.core.cards import MAX_PAYLOAD_BYTES, payload_bytes
from finops_guard.costs.anomalies import AlertPolicy, MalformedAnomaly, Sighting, parse_message
from finops_guard.costs.anomaly_alerts import InboxRecord, forward_batch, inbox_records
from finops_guard.costs.cards.anomaly import render_anomalies
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, load_event
from tests.unit.core.test_delivery import MemoryOutbox
from tests.unit.costs.test_anomalies import NOW, MemoryAnomalyStore

SNS = load_event("anomaly_sns_notification.json")
EVENT = load_event("anomaly_eventbridge.json")
RAW = "__raw_json__"  # replaced by raw JSON text json.dumps cannot write (1e400, NaN, 40 digits)


def sns(raw: str | None = None, envelope: dict | None = None, **message) -> str:
    """The SNS sample with changes to its Message (and envelope); RAW in a value becomes `raw`."""
    inner = json.dumps({**json.loads(SNS["Message"]), **message})
    if raw is not None:
        inner = inner.replace(json.dumps(RAW), raw)
    return json.dumps({**SNS, "Message": inner, **(envelope or {})})


def eb(raw: str | None = None, envelope: dict | None = None, **detail) -> str:
    event = json.loads(json.dumps(EVENT))
    event["detail"].update(detail)
    event.update(envelope or {})
    text = json.dumps(event)
    return text if raw is None else text.replace(json.dumps(RAW), raw)


def impact(**changes) -> dict:
    return {"totalImpact": 10, "totalImpactPercentage": 5, "totalExpectedSpend": 200, "totalActualSpend": 210,
            **changes}  # fmt: skip


class RecordingPoster:
    """Posts as the webhook adapter would encode them (UTF-8 JSON), recording each message's channel
    and the anomalies in it (read from the render wrapper below)."""

    def __init__(self, rendered: dict[str, list[str]]):
        self.rendered = rendered
        self.posted: list[tuple[str, list[str]]] = []

    def post(self, message):
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        assert payload_bytes(message.payload) <= MAX_PAYLOAD_BYTES and body
        self.posted.append((message.channel, self.rendered[json.dumps(message.payload, sort_keys=True)]))
        return 1


def forward(bodies, store=None, poster=None, channels=("teams", "slack")):
    rendered: dict[str, list[str]] = {}

    def render(sightings, channel):
        payload = render_anomalies(sightings, channel)
        rendered[json.dumps(payload, sort_keys=True)] = [s.anomaly.anomaly_id for s in sightings]
        return payload

    store = store or MemoryAnomalyStore()
    poster = poster or RecordingPoster(rendered)
    poster.rendered = rendered
    records = [InboxRecord(f"sqs-{i}", body) for i, body in enumerate(bodies)]
    outcome = forward_batch(records, store=store, outbox=MemoryOutbox(), poster=poster, policy=AlertPolicy(),
                            render=render, channels=list(channels), clock=lambda: NOW)  # fmt: skip
    return outcome, poster


def delivered(poster, channel="teams") -> Counter:
    return Counter(
        anomaly_id for posted_channel, ids in poster.posted if posted_channel == channel for anomaly_id in ids
    )


GOOD = [eb(anomalyId="good-eb"), sns(anomalyId="good-sns")]


def assert_refused_alone(bad: str, problem: str) -> None:
    """Given the bad record between two good ones (one per shape), when the batch is forwarded, then
    only the bad record is malformed and retried, and each good anomaly is posted once per channel."""
    outcome, poster = forward([GOOD[0], bad, GOOD[1]])
    assert outcome.retry == ["sqs-1"] and [m[0] for m in outcome.malformed] == ["sqs-1"]
    assert problem in outcome.malformed[0][1]
    for channel in ("teams", "slack"):
        assert delivered(poster, channel) == Counter({"good-eb": 1, "good-sns": 1})


# --- amounts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1e400", "out of range"),
        ("1234567890123456789012345678901234567890", "out of range"),  # 40 digits
        ("1" * 4301, "not JSON"),  # longer than Python's int() takes
        ("1e999999999999", "out of range"),  # an exponent past Decimal's own limit
        ("NaN", "not JSON"),
        ("Infinity", "not JSON"),
        ("-Infinity", "not JSON"),
        ('"NaN"', "not a number"),
        ('"1e5"', "not a number"),
        ('"١٢٣"', "not a number"),  # Decimal() reads Arabic-Indic digits as 123
        ("true", "not a number"),
        ("1000000000000", "out of range"),  # 1e12: the first amount refused
        ("-1000000000000", "out of range"),
    ],
)
@pytest.mark.parametrize("shape", ["sns", "eventbridge"])
def test_an_impact_out_of_range_or_not_finite_is_refused_alone_and_the_rest_is_delivered(shape, raw, problem):
    build = sns if shape == "sns" else eb
    assert_refused_alone(build(raw, anomalyId="bad", impact=impact(totalImpact=RAW)), problem)


@pytest.mark.parametrize("field", ["totalImpactPercentage", "totalExpectedSpend", "totalActualSpend"])
@pytest.mark.parametrize("raw", ["1e30", "NaN", '"lots"', "[1]"])
def test_a_percentage_or_spend_out_of_range_is_refused_alone(field, raw):
    problem = "not JSON" if raw == "NaN" else ("out of range" if raw == "1e30" else "not a number")
    assert_refused_alone(eb(raw, anomalyId="bad", impact=impact(**{field: RAW})), problem)


def test_a_root_cause_contribution_out_of_range_is_refused_alone():
    causes = [{"service": "Amazon S3", "linkedAccount": "111111111111", "impact": {"contribution": RAW}}]
    assert_refused_alone(sns("1e400", anomalyId="bad", rootCauses=causes), "out of range")


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("0.30000000000000004", "0.300000"),  # a float artefact, rounded half-even to 6 places
        ("1E+3", "1000"),  # one spelling per number: stored items and message ids
        ("1.5e-7", "0.000000"),
        ("0.0000025", "0.000002"),
        ("999999999999.999999", "999999999999.999999"),  # the largest accepted
        ("151.0", "151.0"),  # what Cost Anomaly Detection sends is kept as sent
        ('"151.25"', "151.25"),  # a decimal string reads the same
    ],
)
def test_amounts_are_rounded_to_six_places_and_always_print_without_an_exponent(raw, kept):
    anomaly = parse_message(eb(raw, impact=impact(totalImpact=RAW)))
    assert str(anomaly.total_impact) == kept
    card = json.dumps(render_anomalies([_sighting(anomaly)], "teams"), ensure_ascii=False)
    assert "E+" not in card and "E-" not in card


def _sighting(anomaly):
    return Sighting(anomaly, "new", anomaly.total_impact)


def test_the_largest_accepted_anomaly_renders_cards_within_the_payload_limit():
    big = "9" * 12 + ".999999"
    cause = {"service": "S" * 256, "region": "r" * 256, "linkedAccount": "111111111111",
             "linkedAccountName": "n" * 256, "usageType": "u" * 256, "impact": {"contribution": RAW}}  # fmt: skip
    causes = [cause] * 10
    anomalies = [
        parse_message(
            eb(
                big,
                anomalyId=f"big-{i}",
                impact=impact(totalImpact=RAW),
                dimensionValue="s" * 256,
                accountName="a" * 256,
                monitorName="m" * 1024,
                rootCauses=causes,
            )
        )  # fmt: skip
        for i in range(50)
    ]
    sightings = [_sighting(a) for a in anomalies]
    for channel in ("teams", "slack"):
        assert payload_bytes(render_anomalies(sightings[:1], channel)) <= MAX_PAYLOAD_BYTES
        assert payload_bytes(render_anomalies(sightings, channel)) <= MAX_PAYLOAD_BYTES


# --- ids, accounts, dates, names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"anomalyId": 12345}, "no anomalyId"),
        ({"anomalyId": ["a"]}, "no anomalyId"),
        ({"anomalyId": "a" * 129}, "anomalyId is malformed"),  # DynamoDB keys hold 2,048 bytes; ids are UUIDs
        ({"anomalyId": "a" * 100_000}, "anomalyId is malformed"),
        ({"anomalyId": "a/b"}, "anomalyId is malformed"),
        ({"anomalyId": "bad", "accountId": 123456789012}, "account is malformed"),
        ({"anomalyId": "bad", "accountId": "12345"}, "account is malformed"),
        ({"anomalyId": "bad", "accountId": "١٢٣٤٥٦٧٨٩٠١٢"}, "account is malformed"),  # Arabic-Indic digits
        ({"anomalyId": "bad", "anomalyStartDate": 20261114}, "anomalyStartDate is not a date"),
        ({"anomalyId": "bad", "anomalyStartDate": "2026-13-45"}, "anomalyStartDate is not a date"),
        ({"anomalyId": "bad", "anomalyEndDate": "٢٠٢٦-١١-١٥"}, "anomalyEndDate is not a date"),
        ({"anomalyId": "bad", "anomalyEndDate": "2026-11-15T99:00:00Z"}, "anomalyEndDate is not a date"),
        ({"anomalyId": "bad", "anomalyEndDate": "2026-11-15x00:00:00Z"}, "anomalyEndDate is not a date"),
        ({"anomalyId": "bad", "dimensionalValue": {"name": "EC2"}}, "dimensionValue is not a string"),
        ({"anomalyId": "bad", "dimensionalValue": "x" * 257}, "dimensionValue is not a name of at most 256"),
        ({"anomalyId": "bad", "monitorName": 7}, "monitorName is not a string"),
        ({"anomalyId": "bad", "anomalyDetailsLink": "h" * 2049}, "anomalyDetailsLink is not a name"),
    ],
)
def test_ids_accounts_dates_and_names_not_of_their_shape_are_refused_alone(changes, problem):
    assert_refused_alone(sns(**changes), problem)


@pytest.mark.parametrize(
    ("envelope", "problem"),
    [
        ({"account": 123456789012}, "account is malformed"),
        ({"account": "not-an-account"}, "account is malformed"),
        ({"time": 1795286400}, "no publish time"),
        ({"time": "２０２６-11-16T06:42:11Z"}, "bad publish time"),  # full-width digits
        ({"time": "2026-11-16é06:42:11Z"}, "bad publish time"),  # fromisoformat takes any one separator
        ({"id": ["7c3e9f2a"]}, "message id is malformed"),
    ],
)
def test_eventbridge_envelopes_with_odd_accounts_times_or_ids_are_refused_alone(envelope, problem):
    # The top root cause names the account when there is one; without causes the envelope's is used.
    assert_refused_alone(eb(envelope=envelope, anomalyId="bad", rootCauses=[]), problem)


@pytest.mark.parametrize(
    ("envelope", "problem"),
    [
        ({"MessageId": 42}, "message id is malformed"),
        ({"Timestamp": None}, "no publish time"),
        ({"Message": {"anomalyId": "bad"}}, "SNS Message is refused: not a JSON string"),
        ({"Message": None}, "SNS Message is refused: not a JSON string"),
    ],
)
def test_sns_envelopes_with_odd_ids_times_or_messages_are_refused_alone(envelope, problem):
    assert_refused_alone(json.dumps({**json.loads(sns(anomalyId="bad")), **envelope}), problem)


def test_a_name_with_a_lone_surrogate_is_refused_alone_instead_of_failing_the_post():
    # json.dumps writes "\ud800" as an escape; the webhook adapter's UTF-8 encode would raise on it.
    assert_refused_alone(eb(anomalyId="bad", dimensionValue="EC2 \ud800"), "not valid UTF-8 text")
    assert_refused_alone(sns(anomalyId="bad", monitorName="m\udfff"), "not valid UTF-8 text")


@pytest.mark.parametrize(
    ("causes", "problem"),
    [
        ("Amazon EC2", "rootCauses is not a list"),
        ([1, 2], "a root cause is not an object"),
        ([{"impact": 5}], "a root cause's impact is not an object"),
        ([{"linkedAccount": 111111111111}], "rootCauses.linkedAccount is malformed"),
        ([{"service": ["EC2"]}], "rootCauses.service is not a string"),
    ],
)
def test_root_causes_that_are_not_a_list_of_well_formed_objects_are_refused_alone(causes, problem):
    assert_refused_alone(eb(anomalyId="bad", rootCauses=causes), problem)


def test_only_the_ten_largest_root_causes_are_kept():
    causes = [{"service": f"s{i}", "impact": {"contribution": i}} for i in range(40)]
    kept = parse_message(eb(rootCauses=causes)).root_causes
    assert [c.service for c in kept] == [f"s{i}" for i in range(39, 29, -1)]


# --- nesting and size -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("[" * 200_000 + "]" * 200_000, "body is refused: nested deeper than 16 levels"),
        ("[" * 200_000, "body is not JSON"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, "body is refused: nested deeper than 16 levels"),
        (eb(anomalyId="bad", extra=json.loads("[" * 20 + "]" * 20)), "body is refused: nested deeper"),
        (sns("[" * 5_000 + "]" * 5_000, anomalyId="bad", extra=RAW), "SNS Message is refused: nested deeper"),
        ("x" * 1_048_577, "body is refused: longer than"),
        ('{"Type": "Notification", "x": "\ud800"}', "body is refused: not valid UTF-8 text"),
    ],
)
def test_pathological_nesting_in_the_sqs_body_or_the_sns_message_is_refused_alone(bad, problem):
    assert_refused_alone(bad, problem)


def test_brackets_inside_strings_are_text_not_nesting():
    bracketed = sns('"' + "[" * 5_000 + '"', anomalyId="bracketed", extra=RAW)
    outcome, poster = forward([GOOD[0], bracketed, GOOD[1]])
    assert outcome.retry == [] and delivered(poster) == Counter({"good-eb": 1, "good-sns": 1, "bracketed": 1})


def test_nesting_up_to_16_levels_is_read_and_17_is_refused():
    # The event nests its detail 2 deep; an extra field adds its own levels.
    at_the_limit = eb(anomalyId="deep-16", extra=json.loads("[" * 14 + "]" * 14))
    outcome, poster = forward([at_the_limit, eb(anomalyId="deep-17", extra=json.loads("[" * 15 + "]" * 15))])
    assert outcome.retry == ["sqs-1"] and "nested deeper than 16 levels" in outcome.malformed[0][1]
    assert delivered(poster) == Counter({"deep-16": 1})


def test_a_record_body_that_is_not_a_string_is_refused_alone():
    event = {"Records": [{"messageId": "m-0", "body": GOOD[0]}, {"messageId": "m-1", "body": {"x": 1}},
                         {"messageId": "m-2", "body": GOOD[1]}]}  # fmt: skip
    records = inbox_records(event)
    outcome = forward_batch(records, store=MemoryAnomalyStore(), outbox=MemoryOutbox(),
                            poster=RecordingPoster({}), policy=AlertPolicy(), render=lambda s, c: {"n": len(s)},
                            channels=[], clock=lambda: NOW)  # fmt: skip
    assert outcome.retry == ["m-1"] and len(outcome.sightings) == 2


def test_records_without_a_string_message_id_are_left_out_rather_than_failing_the_batch():
    event = {
        "Records": [{"body": GOOD[0]}, {"messageId": 7, "body": GOOD[0]}, "x", {"messageId": "m-3", "body": GOOD[1]}]
    }
    assert inbox_records(event) == [InboxRecord("m-3", GOOD[1])]
    assert inbox_records({"Records": "x"}) == [] and inbox_records([]) == []


# --- store faults ---------------------------------------------------------------------------------


class FlakyStore(MemoryAnomalyStore):
    def __init__(self, failing: str):
        super().__init__()
        self.failing = failing

    def record(self, anomaly, policy, now):
        if anomaly.anomaly_id == self.failing:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return super().record(anomaly, policy, now)


def test_a_store_fault_on_one_record_retries_that_record_and_delivers_the_others():
    outcome, poster = forward([GOOD[0], sns(anomalyId="flaky"), GOOD[1]], store=FlakyStore("flaky"))
    assert outcome.retry == ["sqs-1"] and outcome.malformed == []
    assert delivered(poster) == Counter({"good-eb": 1, "good-sns": 1})


# --- cold import ----------------------------------------------------------------------------------


def test_the_anomaly_function_loads_neither_cards_nor_admin_api_nor_billing_code_at_import():
    code = (
        "import sys; sys.path[:0] = ['functions/anomaly_alerts', 'layers/common/python'];"
        "import handler; print(sorted(m for m in sys.modules if m.startswith('finops_guard')))"
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "anomaly-alerts"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    loaded = set(eval(out.stdout))  # noqa: S307 - our own subprocess printing a list literal
    assert "finops_guard.core.bounded_json" in loaded  # the one module the hardening added
    assert "finops_guard.costs.cards.anomaly" not in loaded  # loaded with the first alert: repeats render nothing
    assert not [m for m in loaded if m.startswith("finops_guard.billing")]  # no admin API, invoice bot or Stripe code


# --- property: mixed batches ----------------------------------------------------------------------

NAMES = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
ACCOUNTS = st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}")
AMOUNTS = st.decimals(min_value=0, max_value=D("999999999999.999999"), places=6, allow_nan=False)
DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def amount_text(value: D, style: int) -> str:
    """The same number written as a JSON number in one of the ways a serializer may write it."""
    if style == 0:
        return str(value)
    if style == 1:
        return f"{value:E}"  # 1.5E+3
    return f"{value:.6f}"


@st.composite
def good_record(draw, anomaly_id: str) -> str:
    shape = draw(st.sampled_from(["sns", "eventbridge"]))
    total = draw(AMOUNTS)
    style = draw(st.integers(0, 2))
    day = draw(DAYS)
    causes = draw(st.lists(st.fixed_dictionaries(
        {"service": NAMES, "linkedAccount": ACCOUNTS, "region": st.sampled_from(["us-east-1", "eu-west-1"]),
         "impact": st.fixed_dictionaries({"contribution": st.integers(0, 10**6)})}), max_size=4))  # fmt: skip
    fields = {
        "anomalyId": anomaly_id,
        "impact": {
            "totalImpact": RAW,
            "totalImpactPercentage": draw(st.none() | st.integers(0, 10**9)),
            "totalExpectedSpend": draw(st.none() | st.integers(0, 10**9)),
        },  # fmt: skip
        "anomalyStartDate": f"{day.isoformat()}T00:00:00Z",
        "anomalyEndDate": day.isoformat(),
        "rootCauses": causes,
        "monitorName": draw(st.none() | NAMES),
    }
    if shape == "sns":
        return sns(amount_text(total, style), dimensionalValue=draw(NAMES), accountId=draw(ACCOUNTS), **fields)
    return eb(amount_text(total, style), dimensionValue=draw(NAMES), accountName=draw(NAMES), **fields)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD_RECORDS = [
    lambda i, n: eb("1e400", anomalyId=i, impact=impact(totalImpact=RAW)),
    lambda i, n: sns(str(10**39 + n), anomalyId=i, impact=impact(totalImpact=RAW)),
    lambda i, n: sns("1e30", anomalyId=i, impact=impact(totalImpactPercentage=RAW)),
    lambda i, n: eb(["NaN", "Infinity", "-Infinity"][n % 3], anomalyId=i, impact=impact(totalExpectedSpend=RAW)),
    lambda i, n: eb(anomalyId=n),
    lambda i, n: sns(anomalyId=i * 30),  # over 128 characters
    lambda i, n: sns(anomalyId=i, accountId=n),
    lambda i, n: eb(anomalyId=i, anomalyStartDate=n),
    lambda i, n: eb(anomalyId=i, dimensionValue="x" * (257 + n)),
    lambda i, n: eb(anomalyId=i, accountName="\ud800" * (1 + n % 3)),
    lambda i, n: deep(17 + n),
    lambda i, n: sns(deep(17 + n), anomalyId=i, extra=RAW),
    lambda i, n: eb(anomalyId=i, rootCauses=[n]),
    lambda i, n: json.dumps({**json.loads(sns(anomalyId=i)), "Message": [n]}),
    lambda i, n: json.dumps({**json.loads(eb(anomalyId=i)), "time": n}),
    lambda i, n: "{" * (n + 1),
]


@st.composite
def batches(draw):
    """1-8 records, good and bad in any order. Good ones have fresh anomaly ids (some repeated, as
    Cost Anomaly Detection re-publishes); each bad one carries exactly one defect."""
    size = draw(st.integers(1, 8))
    records, good_ids, bad = [], [], []
    for position in range(size):
        if draw(st.booleans()):
            reuse = good_ids and draw(st.booleans())
            anomaly_id = draw(st.sampled_from(good_ids)) if reuse else f"good-{position}"
            records.append(draw(good_record(anomaly_id)))
            good_ids.append(anomaly_id)
        else:
            make = draw(st.sampled_from(BAD_RECORDS))
            records.append(make(f"bad-{position}", draw(st.integers(0, 3000))))
            bad.append(f"sqs-{position}")
    return records, set(good_ids), bad


# The issue's own cases beside a good anomaly of each shape, always run first.
ISSUE_BATCHES = [
    ([GOOD[0], make("bad-1", 0), GOOD[1]], {"good-eb", "good-sns"}, ["sqs-1"])
    for make in (BAD_RECORDS[0], BAD_RECORDS[1], BAD_RECORDS[2], BAD_RECORDS[4], BAD_RECORDS[5], BAD_RECORDS[6],
                 BAD_RECORDS[7], BAD_RECORDS[10], BAD_RECORDS[11])
]  # fmt: skip


def with_issue_batches(test):
    for case in ISSUE_BATCHES:
        test = example(batch=case)(test)
    return test


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=batches())
@with_issue_batches
def test_a_mixed_batch_reports_exactly_its_bad_records_and_delivers_each_good_anomaly_once(batch):
    bodies, good_ids, bad = batch
    outcome, poster = forward(bodies)  # never raises
    assert outcome.retry == bad and [record_id for record_id, _ in outcome.malformed] == bad
    for channel in ("teams", "slack"):
        assert delivered(poster, channel) == Counter({anomaly_id: 1 for anomaly_id in good_ids})


def test_a_batch_redelivered_with_its_bad_record_posts_nothing_twice():
    store = MemoryAnomalyStore()
    bad = eb("1e400", anomalyId="bad", impact=impact(totalImpact=RAW))
    first_outcome, first = forward([GOOD[0], bad, GOOD[1]], store=store)
    again, second = forward([GOOD[0], bad, GOOD[1]], store=store)  # SQS redelivers the failed record's batch
    assert first_outcome.retry == again.retry == ["sqs-1"]
    assert len(first.posted) == 2 and second.posted == []
    assert [s.outcome for s in again.sightings] == ["silent", "silent"]


def test_malformed_anomaly_is_the_only_exception_parse_message_raises():
    for bad in (None, 5, b"{}", "[]", "{}", '{"Type": "Notification"}'):
        with pytest.raises(MalformedAnomaly):
            parse_message(bad)  # type: ignore[arg-type]
