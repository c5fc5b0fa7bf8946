"""The self-cost bench's arithmetic (devtools/bench_selfcost.py): prices, unit conversions, bills
from counts, schedules, the container model and the template reading. Pure: no AWS, no sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from devtools import bench_selfcost as sc

FINANCE_TOPIC = "arn:aws:sns:us-east-1:123456789012:finops-guard-dev-finance-alerts"


# --- the price table ---------------------------------------------------------------------------------


def test_every_service_the_issue_names_has_a_decimal_list_price_with_its_source():
    for service, keys in sc.ISSUE_SERVICES.items():
        for key in keys:
            price = sc.PRICES[key]
            assert isinstance(price.usd, Decimal) and isinstance(price.per, Decimal), key
            assert price.usd > 0 and price.per > 0, key
            assert price.source, f"{service}: {key} names no source"


def test_every_price_is_decimal_and_its_free_tier_is_labelled():
    for key, price in sc.PRICES.items():
        assert isinstance(price.unit_price, Decimal), key
        assert isinstance(price.free_per_month, Decimal), key
        assert (price.free_per_month > 0) == bool(price.free_tier), key


@pytest.mark.parametrize(
    ("key", "unit_price"),
    [
        ("ce.request", "0.01"),
        ("lambda.request", "0.0000002"),
        ("lambda.gb_second", "0.0000133334"),
        ("dynamodb.wru", "0.000000625"),
        ("dynamodb.rru", "0.000000125"),
        ("secretsmanager.api_call", "0.000005"),
        ("secretsmanager.secret", "0.40"),
        ("apigateway.request", "0.0000035"),
        ("sns.email", "0.00002"),
        ("ses.email", "0.0001"),
        ("sqs.request", "0.0000004"),
        ("scheduler.invocation", "0.000001"),
        ("logs.ingest", "0.50"),
        ("cloudwatch.metric", "0.30"),
        ("cloudwatch.alarm", "0.10"),
        ("cloudwatch.dashboard", "3.00"),
        ("kms.key", "1.00"),
        ("kms.request", "0.000003"),
        ("s3.put", "0.000005"),
        ("s3.get", "0.0000004"),
        ("s3.storage", "0.023"),
        ("costoptimizationhub.request", "0"),
    ],
)
def test_unit_prices_are_the_published_list_prices(key, unit_price):
    assert sc.PRICES[key].unit_price == Decimal(unit_price)


# --- bills are counts x prices ---------------------------------------------------------------------------


def test_a_bill_is_each_count_times_its_unit_price():
    bill = sc.Bill.from_counts({"ce.request": Decimal(35), "lambda.request": Decimal(856)})

    assert bill.usd == Decimal("0.35") + Decimal(856) * Decimal("0.0000002")
    assert [line.key for line in bill.lines] == ["ce.request", "lambda.request"]


@pytest.mark.parametrize("key", sorted(sc.PRICES))
def test_changing_one_count_changes_the_bill_by_that_count_times_its_price(key):
    counts = {"ce.request": Decimal(30), "dynamodb.wru": Decimal(5000), key: Decimal(12)}
    before = sc.Bill.from_counts(counts).usd

    after = sc.Bill.from_counts({**counts, key: counts[key] + 7}).usd

    assert after - before == 7 * sc.PRICES[key].unit_price


def test_zero_counts_make_no_line_and_unknown_services_are_refused():
    assert sc.Bill.from_counts({"ce.request": Decimal(0)}).lines == ()
    with pytest.raises(KeyError, match="no price"):
        sc.Bill.from_counts({"route53.query": Decimal(1)})


def test_the_free_tier_is_subtracted_once_per_price_across_lines():
    lines = (
        sc.BillLine("lambda.request", Decimal(600_000)),
        sc.BillLine("lambda.request", Decimal(600_000)),
        sc.BillLine("ce.request", Decimal(10)),
    )
    bill = sc.Bill(lines)

    assert bill.usd == Decimal(1_200_000) * Decimal("0.0000002") + Decimal("0.10")
    assert bill.usd_after_free_tier == Decimal(200_000) * Decimal("0.0000002") + Decimal("0.10")


def test_money_stays_decimal_from_bill_to_json_and_back():
    bill = sc.Bill.from_counts({"ce.request": Decimal(35), "sns.sms_us": Decimal(3)})

    written = json.loads(json.dumps(sc._bill_json(bill)))

    assert isinstance(bill.usd, Decimal)
    assert Decimal(written["usd"]) == bill.usd == Decimal("0.35") + 3 * Decimal("0.00581")
    assert sum(Decimal(line["usd"]) for line in written["lines"]) == bill.usd
    assert sc.usd(Decimal("0.36743"), 4) == "$0.3674"


# --- DynamoDB request units from item sizes --------------------------------------------------------------


def test_item_size_counts_attribute_names_and_values():
    assert sc.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert sc.item_size({"n": {"N": "12.5"}}) == 1 + 3  # 3 significant digits: 2 bytes + 1
    assert sc.item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 3 + 3
    assert sc.item_size({"l": {"L": [{"S": "x"}]}}) == 1 + 3 + 1 + 1
    assert sc.item_size({"m": {"M": {"a": {"S": "bc"}}}}) == 1 + 3 + 1 + 1 + 2
    assert sc.item_size({"b": {"B": b"\x00\x01"}, "ss": {"SS": ["ab", "c"]}}) == 1 + 2 + 2 + 3
    assert sc.item_size(None) == 0


def test_number_size_counts_significant_digits_only():
    assert sc.number_size("100") == 2
    assert sc.number_size("-0.0012") == 2
    assert sc.number_size("12345") == 4
    assert sc.number_size("0") == 2


def test_writes_cost_one_unit_per_started_kilobyte_and_double_in_a_transaction():
    assert sc.write_units(0) == 1
    assert sc.write_units(1024) == 1
    assert sc.write_units(1025) == 2
    assert sc.write_units(1025, transactional=True) == 4


def test_an_update_is_charged_on_the_larger_of_the_old_and_new_item():
    small = {"pk": {"S": "a"}}
    large = {"pk": {"S": "a"}, "blob": {"S": "x" * 1500}}

    assert sc.write_request_units(sc.ItemWrite(large, small)) == 2
    assert sc.write_request_units(sc.ItemWrite(small, large)) == 2
    assert sc.write_request_units(sc.ItemWrite(small, None)) == 1  # a delete


def test_an_index_write_is_added_when_the_item_carries_the_index_keys_and_two_when_they_change():
    keys = (("status", "due_at"),)
    pending = {"pk": {"S": "a"}, "status": {"S": "pending"}, "due_at": {"S": "2026-11-02"}}
    sent = {**pending, "status": {"S": "sent"}}
    unindexed = {"pk": {"S": "a"}}

    assert sc.write_request_units(sc.ItemWrite(None, unindexed, index_keys=keys)) == 1
    assert sc.write_request_units(sc.ItemWrite(None, pending, index_keys=keys)) == 2
    assert sc.write_request_units(sc.ItemWrite(pending, pending, index_keys=keys)) == 2
    assert sc.write_request_units(sc.ItemWrite(pending, sent, index_keys=keys)) == 3  # index delete + put
    assert sc.write_request_units(sc.ItemWrite(pending, sent, transactional=True, index_keys=keys)) == 4


def test_a_failed_condition_is_charged_on_the_existing_item_and_writes_no_index():
    existing = {"pk": {"S": "a"}, "status": {"S": "open"}, "pad": {"S": "y" * 2000}}
    write = sc.ItemWrite(existing, existing, index_keys=(("status",),), failed=True)

    assert sc.write_request_units(write) == 2


def test_reads_cost_one_unit_per_started_4_kb_and_half_when_eventually_consistent():
    assert sc.read_units(0, consistent=True) == 1
    assert sc.read_units(4096, consistent=True) == 1
    assert sc.read_units(4097, consistent=True) == 2
    assert sc.read_units(4097, consistent=False) == 1
    assert sc.read_units(100, consistent=False) == Decimal("0.5")
    assert sc.read_units(4097, consistent=False, transactional=True) == 4


# --- Lambda, SMS, logs, metrics ----------------------------------------------------------------------------


def test_lambda_duration_is_rounded_up_to_the_millisecond_and_priced_per_gb_second():
    assert sc.billed_ms(0.0123) == 13
    assert sc.billed_ms(0.012) == 12
    assert sc.billed_ms(0.0000001) == 1
    assert sc.gb_seconds(512, 13) == Decimal("0.0065")
    assert sc.gb_seconds(256, 1000) == Decimal("0.25")


def test_an_sms_is_billed_per_part():
    assert sc.sms_parts("a" * 160) == 1
    assert sc.sms_parts("a" * 161) == 2
    assert sc.sms_parts("a" * 306) == 2
    assert sc.sms_parts("a" * 307) == 3
    assert sc.sms_parts("€" * 80) == 1  # extended GSM characters count twice
    assert sc.sms_parts("ł" * 70) == 1  # outside GSM-7: UCS-2, 70 per message
    assert sc.sms_parts("ł" * 71) == 2


def test_log_ingestion_meters_each_event_plus_26_bytes():
    assert sc.log_ingest_bytes(["abc", "é"]) == 3 + 26 + 2 + 26


def test_custom_metrics_are_prorated_by_the_hours_they_are_sent_in():
    assert sc.metric_months({"dunning": range(730)}) == 1
    assert sc.metric_months({"a": [1, 1, 2], "b": [5]}) == Decimal(3) / 730


def test_emf_metrics_are_told_apart_by_name_and_dimensions():
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "FinOpsGuard",
                        "Dimensions": [["service", "budget"]],
                        "Metrics": [{"Name": "BudgetConsumptionPercent"}],
                    }
                ],
            },
            "service": "whatever-the-instance-said",
            "budget": "compute",
            "BudgetConsumptionPercent": [91.0],
        }
    )

    found = sc.emf_metrics([line, '{"level": "INFO", "message": "not a metric"}', line], "budget-guard")

    assert found == {
        sc.MetricId("budget-guard", "BudgetConsumptionPercent", (("budget", "compute"), ("service", "budget-guard")))
    }


# --- requests to units -------------------------------------------------------------------------------------


def test_a_publish_to_an_encrypted_topic_counts_the_request_its_email_deliveries_and_a_kms_request():
    topics = {"finops-guard-dev-finance-alerts": sc.TopicFacts("finops-guard-dev-finance-alerts", True, {"email": 2})}

    units = sc.request_units("sns", "Publish", {"TopicArn": FINANCE_TOPIC, "Message": "over budget"}, topics)

    assert units == {"sns.publish": 1, "sns.email": 2, "kms.request": 1}


def test_an_sms_counts_its_parts_and_the_carrier_fee_of_each():
    units = sc.request_units("sns", "Publish", {"PhoneNumber": "+15555550123", "Message": "x" * 200}, {})

    assert units == {"sns.sms_us": 2, "sns.sms_us_carrier": 2}


def test_an_email_counts_every_recipient_and_put_events_every_entry():
    destination = {"ToAddresses": ["a@x.example", "b@x.example"], "CcAddresses": ["c@x.example"]}

    assert sc.request_units("sesv2", "SendEmail", {"Destination": destination}, {}) == {"ses.email": 3}
    assert sc.request_units("events", "PutEvents", {"Entries": [{"Detail": "{}"}] * 2}, {}) == {"events.custom": 2}
    assert sc.request_units("ce", "GetCostAndUsage", {}, {}) == {"ce.request": 1}
    assert sc.request_units("secretsmanager", "GetSecretValue", {}, {}) == {"secretsmanager.api_call": 1}
    assert sc.request_units("route53", "ListHostedZones", {}, {}) == {"unpriced.route53.ListHostedZones": 1}


def test_a_chargeback_csv_costs_a_put_and_its_bytes_stored_and_a_download_a_get():
    csv = b"month,dimension,value,service,line,amount,currency\r\n" * 20
    params = {"Bucket": "b", "Key": "chargeback/2026-10/tag-team.csv", "Body": csv}

    put = sc.request_units("s3", "PutObject", params, {})

    assert put == {"s3.put": 1, "s3.storage": Decimal(len(csv)) / sc.GIB}
    assert sc.request_units("s3", "GetObject", {"Bucket": "b", "Key": "k"}, {}) == {"s3.get": 1}


def test_a_cost_optimization_hub_page_is_counted_and_priced_at_zero():
    units = sc.request_units("cost-optimization-hub", "ListRecommendations", {"maxResults": 1000}, {})

    assert units == {"costoptimizationhub.request": 1}
    assert sc.Bill.from_counts({"costoptimizationhub.request": Decimal(60)}).usd == 0


# --- Cost Explorer answers ----------------------------------------------------------------------------------


class _SeededAws:
    def __init__(self) -> None:
        self.seeded: list[list[dict]] = []

    def seed_cost_and_usage(self, pages: list[dict]) -> None:
        self.seeded.append(pages)


def test_each_distinct_request_is_answered_once_in_the_order_it_is_asked():
    aws = _SeededAws()
    answers = sc.CostAnswers(aws)
    first, second = {"TimePeriod": {"Start": "2026-11-01"}}, {"TimePeriod": {"Start": "2026-11-02"}}

    answers.seed([(first, lambda: [{"page": 1}]), (second, lambda: [{"page": 2}])])
    answers.seed([(second, lambda: [{"page": "again"}]), (first, lambda: [{"page": "again"}])])

    assert aws.seeded == [[{"page": 1}, {"page": 2}]]  # moto answers a body it has seen from memory


def test_a_seeded_answer_nobody_asked_for_is_reported_and_dropped():
    queue = [{"ResultsByTime": []}]  # what the embedded Cost Explorer still holds after the run
    answers = sc.CostAnswers(_SeededAws(), queued=lambda: queue)

    answers.check("weekly-report 2026-11-02T08:00:00Z")

    assert answers.problems == ["weekly-report 2026-11-02T08:00:00Z: 1 seeded Cost Explorer answer(s) never asked for"]
    assert queue == []


def test_the_attribution_dimensions_are_read_from_the_environment_in_order():
    dimensions = sc.attribution_dimensions({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,costCategory:Env"})

    assert [d.spec() for d in dimensions] == ["tag:Team", "costCategory:Env"]
    assert sc.attribution_dimensions({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": ""}) == ()


def test_the_weekly_report_is_answered_for_the_organisation_then_for_each_dimension():
    dimensions = sc.attribution_dimensions({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter"})

    requests = [request for request, _ in sc.weekly_answers(datetime(2026, 11, 9, 8, tzinfo=UTC), dimensions)]

    assert requests[0][0] == "weekly"
    assert [r["GroupBy"] for r in requests[1:]] == [
        [{"Type": "TAG", "Key": "Team"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        [{"Type": "TAG", "Key": "CostCenter"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    ]
    assert {r["Granularity"] for r in requests[1:]} == {"DAILY"}


def test_the_chargeback_on_the_first_is_answered_for_last_month_once_per_dimension():
    dimensions = sc.attribution_dimensions({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter"})

    answers = sc.chargeback_answers(datetime(2026, 11, 1, 9, tzinfo=UTC), dimensions, "UTC")

    assert [request["TimePeriod"] for request, _ in answers] == [{"Start": "2026-10-01", "End": "2026-11-01"}] * 2
    assert [request["GroupBy"][0]["Key"] for request, _ in answers] == ["Team", "CostCenter"]


# --- schedules and containers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "runs"),
    [("cron(0 8 ? * MON *)", 5), ("cron(0 9 * * ? *)", 30), ("rate(1 hour)", 720), ("cron(30 6 * * ? *)", 30),
     ("cron(0 6 ? * MON-FRI *)", 21), ("rate(30 minutes)", 1440)],
)  # fmt: skip
def test_schedules_expand_to_their_runs_in_november_2026(expression, runs):
    assert len(sc.runs_in_month(expression, "UTC", 2026, 11)) == runs


def test_a_cron_runs_at_its_hour_in_its_time_zone():
    mondays = sc.runs_in_month("cron(0 8 ? * MON *)", "Europe/Madrid", 2026, 11)

    assert mondays[0] == datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert [m.day for m in mondays] == [2, 9, 16, 23, 30]


@pytest.mark.parametrize("expression", ["cron(0 8 ? * 2#1 *)", "cron(0 8 L * ? *)", "at(2026-11-01T00:00:00)"])
def test_schedule_expressions_it_cannot_expand_are_refused(expression):
    with pytest.raises(ValueError, match="unsupported"):
        sc.runs_in_month(expression, "UTC", 2026, 11)


def test_a_request_after_a_gap_longer_than_the_idle_timeout_starts_cold():
    assert sc.cold_starts([0, 100, 800, 1000, 1601], idle_timeout_s=600) == [True, False, True, False, True]


# --- the template ------------------------------------------------------------------------------------------


def _template() -> dict:
    metric = {"Namespace": "FinOpsGuard", "MetricName": "X"}
    return {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function",
                   "Properties": {"FunctionName": "finops-guard-dev-weekly-report", "MemorySize": 256, "Timeout": 120,
                                  "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": "weekly-report"}}}},
            "FnEic": {"Type": "AWS::Lambda::EventInvokeConfig",
                      "Properties": {"FunctionName": {"Ref": "Fn"}, "MaximumRetryAttempts": 1}},
            "Sched": {"Type": "AWS::Scheduler::Schedule",
                      "Properties": {"Name": "finops-guard-dev-weekly-report", "ScheduleExpression": "rate(1 day)",
                                     "ScheduleExpressionTimezone": "UTC",
                                     "Target": {"Arn": {"Fn::GetAtt": ["Fn", "Arn"]},
                                                "Input": '{"scheduled_time":"<aws.scheduler.scheduled-time>"}'}}},
            "S1": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "a"}},
            "S2": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "b"}},
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Topic": {"Type": "AWS::SNS::Topic",
                      "Properties": {"TopicName": "finops-guard-dev-ops", "KmsMasterKeyId": {"Ref": "Key"}}},
            "Sub": {"Type": "AWS::SNS::Subscription",
                    "Properties": {"TopicArn": {"Ref": "Topic"}, "Protocol": "email", "Endpoint": "ops@x.example"}},
            "Simple": {"Type": "AWS::CloudWatch::Alarm", "Properties": {**metric, "Period": 300}},
            "Math": {"Type": "AWS::CloudWatch::Alarm",
                     "Properties": {"Metrics": [{"Id": "a", "MetricStat": {"Metric": metric}},
                                                {"Id": "b", "MetricStat": {"Metric": metric}},
                                                {"Id": "e", "Expression": "a / b"}]}},
            "Dash": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Esm": {"Type": "AWS::Lambda::EventSourceMapping",
                    "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}, "FunctionName": {"Ref": "Fn"}}},
            "Table": {"Type": "AWS::DynamoDB::Table",
                      "Properties": {"TableName": "finops-guard-dev-outbox",
                                     "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}},
        }
    }  # fmt: skip


def test_the_template_gives_memory_retries_schedules_and_topics():
    facts = sc.TemplateFacts.from_template(_template())

    function = facts.functions["weekly-report"]
    assert (function.memory_mb, function.timeout_s, function.retry_attempts) == (256, 120, 1)
    [schedule] = facts.schedules
    assert (schedule.function, schedule.expression) == ("weekly-report", "rate(1 day)")
    event = sc.scheduled_event(schedule, datetime(2026, 11, 2, 8, tzinfo=UTC))
    assert event == {"scheduled_time": "2026-11-02T08:00:00Z"}
    assert facts.topics["finops-guard-dev-ops"] == sc.TopicFacts("finops-guard-dev-ops", True, {"email": 1})
    assert facts.pitr_tables == ("finops-guard-dev-outbox",)


def test_fixed_charges_are_counted_from_the_template_resources():
    fixed = sc.TemplateFacts.from_template(_template()).fixed_counts(hours_in_month=720)

    assert fixed == {
        "secretsmanager.secret": 2,
        "kms.key": 1,
        "cloudwatch.alarm": 3,  # the metric-math alarm counts each of its two metrics
        "cloudwatch.dashboard": 1,
        "sqs.request": 5 * 720 * 3600 // 20,  # five pollers long-polling the one queue all month
    }
    bill = sc.Bill.from_counts(fixed)
    assert bill.usd == 2 * Decimal("0.40") + 1 + 3 * Decimal("0.10") + 3 + 648_000 * Decimal("0.0000004")


def _with_savings_refresh() -> dict:
    template = _template()
    resources = template["Resources"]
    resources["Refresh"] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": "finops-guard-dev-savings-refresh",
            "MemorySize": 256,
            "Environment": {"Variables": {"FINOPSGUARD_RECOMMENDATIONS_TABLE": {"Ref": "Recs"}}},
        },
    }
    resources["Recs"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {"TableName": "finops-guard-dev-recommendations"},
    }
    resources["RefreshSchedule"] = {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Name": "finops-guard-dev-savings-refresh",
            "ScheduleExpression": "cron(30 5 * * ? *)",
            "Target": {"Arn": {"Fn::GetAtt": ["Refresh", "Arn"]}},
        },
    }
    return template  # fmt: skip


def test_scenario_c_takes_the_savings_refresh_and_its_schedule_from_the_opted_in_template():
    facts = sc.TemplateFacts.from_template(_template())
    opted_in = sc.TemplateFacts.from_template(_with_savings_refresh())

    merged, schedule = sc.with_savings_refresh(facts, opted_in)

    assert set(merged.functions) == {"weekly-report", "savings-refresh"}
    assert merged.functions["savings-refresh"].memory_mb == 256
    assert "Recs" in merged.resources  # its environment's references resolve
    assert schedule is not None
    assert (schedule.function, schedule.expression) == ("savings-refresh", "cron(30 5 * * ? *)")
    assert merged.schedules == facts.schedules  # the default scenarios keep the default schedules


def test_without_a_savings_refresh_in_the_opted_in_template_scenario_c_has_no_schedule():
    facts = sc.TemplateFacts.from_template(_template())

    assert sc.with_savings_refresh(facts, facts) == (facts, None)
    assert sc.with_savings_refresh(facts, None) == (facts, None)


# --- the printout ------------------------------------------------------------------------------------------


def _figures(usage_a: dict[str, Decimal]) -> dict:
    def scenario(counts: dict[str, Decimal]) -> dict:
        bill = sc.Bill.from_counts(counts)
        return {**sc._bill_json(bill), "met": bill.usd < sc.TARGET_USD, "unpriced": {}, "errors": [],
                "functions": {"weekly-report": {"invocations": "5", "cold": "5"}},
                "metrics": {"weekly-report": {"metrics": "2", "metric_months": "0.0137"}},
                "calls": {"ce.GetCostAndUsage": "5"}}  # fmt: skip

    fixed = sc.Bill.from_counts({"kms.key": Decimal(3)})
    bare = {**usage_a, "ce.request": usage_a["ce.request"] - 12}
    secrets = sc._bill_json(
        sc.Bill.from_counts(
            {"secretsmanager.secret": Decimal(2)}, {"secretsmanager.secret": "2 routed teams' webhook secrets"}
        )
    )
    return {
        "month": "2026-11", "target_usd": "0.50", "executed_invocations": 5, "seconds": {"total": 1.0},
        "template": {"schedules": {"weekly-report": ["cron(0 8 ? * MON *)", 5]}},
        "stripe": {"events_full": 10008, "groups": 139, "events_sampled": 1008, "scale": "9.93",
                   "dunning_busy_runs_sampled": 45, "dunning_busy_runs_month": "446.8"},
        "attribution": {"dimensions": "tag:Team,tag:CostCenter", "routed_teams": ["platform", "data"]},
        "savings": {"context": sc.SAVINGS_CONTEXT, "skipped": "synthesis failed: RuntimeError: no"},
        "scenarios": {"A": scenario(usage_a), sc.NO_ATTRIBUTION_LABEL: scenario(bare),
                      "B": {**scenario({**usage_a, "apigateway.request": Decimal(10_000)}), "team_secrets": secrets}},
        "fixed": sc._bill_json(fixed),
    }  # fmt: skip


def test_the_verdict_is_judged_on_scenario_a_usage_only_and_names_the_fixed_charges():
    met = sc.report(_figures({"ce.request": Decimal(35)}))
    missed = sc.report(_figures({"ce.request": Decimal(35), "cloudwatch.metric": Decimal(4)}))

    assert met[-1].endswith("$3.00) are reported beside it") and "$0.3500 -- met" in met[-1]
    assert "$1.5500 -- NOT MET" in missed[-1]
    assert any("Scenario A: usage $0.35 + fixed $3.00 = $3.35 a month" in line for line in met)


def test_the_price_of_attribution_is_a_and_the_same_month_without_it():
    lines = sc.report(_figures({"ce.request": Decimal(47), "s3.put": Decimal(2)}))

    [price] = [line for line in lines if "attribution with its defaults" in line]
    assert "(tag:Team,tag:CostCenter) costs $0.1200 a month: Cost Explorer +12.00 request +$0.1200" in price


def test_scenario_b_adds_the_routed_teams_webhook_secrets_to_its_monthly_total():
    lines = sc.report(_figures({"ce.request": Decimal(35)}))

    [total] = [line for line in lines if line.startswith("  Scenario B: usage")]
    assert total.endswith("+ fixed $3.00 + 2 routed teams' webhook secrets $0.80 = $4.19 a month")


def test_a_skipped_scenario_c_says_why():
    lines = sc.report(_figures({"ce.request": Decimal(35)}))

    [skipped] = [line for line in lines if line.startswith("  C (A + savings recommendations")]
    assert skipped.endswith("not measured: synthesis failed: RuntimeError: no")


def test_bill_changes_list_the_lines_that_moved_most_in_money_first_with_their_signs():
    base = sc._bill_json(sc.Bill.from_counts({"ce.request": Decimal(35), "lambda.request": Decimal(800)}))
    other = sc._bill_json(sc.Bill.from_counts({"ce.request": Decimal(47), "s3.put": Decimal(2)}))

    assert sc.bill_changes(base, other) == [
        "Cost Explorer +12.00 request +$0.1200",
        "Lambda -800 request -$0.0002",
        "S3 +2.00 request +$0.0000",
    ]
