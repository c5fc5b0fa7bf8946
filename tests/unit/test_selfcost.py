"""The self-cost bench's arithmetic (devtools/selfcost/): prices, unit conversions, bills from
counts, schedules, the container model, the templates' reading, each stack's fixed charges and the
deployments judged. Pure: no AWS, no sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from devtools.selfcost import (
    dynamodb,
    lambdas,
    metering,
    prices,
    report,
    run,
    scenarios_costs,
    schedules,
    simulation,
    template,
)

DEFAULT_DIMENSIONS = {"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter"}
FINANCE_TOPIC = "arn:aws:sns:us-east-1:123456789012:finops-guard-dev-finance-alerts"


# --- the price table ---------------------------------------------------------------------------------


def test_every_service_the_issue_names_has_a_decimal_list_price_with_its_source():
    for service, keys in prices.ISSUE_SERVICES.items():
        for key in keys:
            price = prices.PRICES[key]
            assert isinstance(price.usd, Decimal) and isinstance(price.per, Decimal), key
            assert price.usd > 0 and price.per > 0, key
            assert price.source, f"{service}: {key} names no source"


def test_every_price_is_decimal_and_its_free_tier_is_labelled():
    for key, price in prices.PRICES.items():
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
    assert prices.PRICES[key].unit_price == Decimal(unit_price)


# --- bills are counts x prices ---------------------------------------------------------------------------


def test_a_bill_is_each_count_times_its_unit_price():
    bill = prices.Bill.from_counts({"ce.request": Decimal(35), "lambda.request": Decimal(856)})

    assert bill.usd == Decimal("0.35") + Decimal(856) * Decimal("0.0000002")
    assert [line.key for line in bill.lines] == ["ce.request", "lambda.request"]


@pytest.mark.parametrize("key", sorted(prices.PRICES))
def test_changing_one_count_changes_the_bill_by_that_count_times_its_price(key):
    counts = {"ce.request": Decimal(30), "dynamodb.wru": Decimal(5000), key: Decimal(12)}
    before = prices.Bill.from_counts(counts).usd

    after = prices.Bill.from_counts({**counts, key: counts[key] + 7}).usd

    assert after - before == 7 * prices.PRICES[key].unit_price


def test_zero_counts_make_no_line_and_unknown_services_are_refused():
    assert prices.Bill.from_counts({"ce.request": Decimal(0)}).lines == ()
    with pytest.raises(KeyError, match="no price"):
        prices.Bill.from_counts({"route53.query": Decimal(1)})


def test_the_free_tier_is_subtracted_once_per_price_across_lines():
    lines = (
        prices.BillLine("lambda.request", Decimal(600_000)),
        prices.BillLine("lambda.request", Decimal(600_000)),
        prices.BillLine("ce.request", Decimal(10)),
    )
    bill = prices.Bill(lines)

    assert bill.usd == Decimal(1_200_000) * Decimal("0.0000002") + Decimal("0.10")
    assert bill.usd_after_free_tier == Decimal(200_000) * Decimal("0.0000002") + Decimal("0.10")


def test_money_stays_decimal_from_bill_to_json_and_back():
    bill = prices.Bill.from_counts({"ce.request": Decimal(35), "sns.sms_us": Decimal(3)})

    written = json.loads(json.dumps(prices.bill_json(bill)))

    assert isinstance(bill.usd, Decimal)
    assert Decimal(written["usd"]) == bill.usd == Decimal("0.35") + 3 * Decimal("0.00581")
    assert sum(Decimal(line["usd"]) for line in written["lines"]) == bill.usd
    assert prices.usd(Decimal("0.36743"), 4) == "$0.3674"


# --- DynamoDB request units from item sizes --------------------------------------------------------------


def test_item_size_counts_attribute_names_and_values():
    assert dynamodb.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert dynamodb.item_size({"n": {"N": "12.5"}}) == 1 + 3  # 3 significant digits: 2 bytes + 1
    assert dynamodb.item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 3 + 3
    assert dynamodb.item_size({"l": {"L": [{"S": "x"}]}}) == 1 + 3 + 1 + 1
    assert dynamodb.item_size({"m": {"M": {"a": {"S": "bc"}}}}) == 1 + 3 + 1 + 1 + 2
    assert dynamodb.item_size({"b": {"B": b"\x00\x01"}, "ss": {"SS": ["ab", "c"]}}) == 1 + 2 + 2 + 3
    assert dynamodb.item_size(None) == 0


def test_number_size_counts_significant_digits_only():
    assert dynamodb.number_size("100") == 2
    assert dynamodb.number_size("-0.0012") == 2
    assert dynamodb.number_size("12345") == 4
    assert dynamodb.number_size("0") == 2


def test_writes_cost_one_unit_per_started_kilobyte_and_double_in_a_transaction():
    assert dynamodb.write_units(0) == 1
    assert dynamodb.write_units(1024) == 1
    assert dynamodb.write_units(1025) == 2
    assert dynamodb.write_units(1025, transactional=True) == 4


def test_an_update_is_charged_on_the_larger_of_the_old_and_new_item():
    small = {"pk": {"S": "a"}}
    large = {"pk": {"S": "a"}, "blob": {"S": "x" * 1500}}

    assert dynamodb.write_request_units(dynamodb.ItemWrite(large, small)) == 2
    assert dynamodb.write_request_units(dynamodb.ItemWrite(small, large)) == 2
    assert dynamodb.write_request_units(dynamodb.ItemWrite(small, None)) == 1  # a delete


def test_an_index_write_is_added_when_the_item_carries_the_index_keys_and_two_when_they_change():
    keys = (("status", "due_at"),)
    pending = {"pk": {"S": "a"}, "status": {"S": "pending"}, "due_at": {"S": "2026-11-02"}}
    sent = {**pending, "status": {"S": "sent"}}
    unindexed = {"pk": {"S": "a"}}

    assert dynamodb.write_request_units(dynamodb.ItemWrite(None, unindexed, index_keys=keys)) == 1
    assert dynamodb.write_request_units(dynamodb.ItemWrite(None, pending, index_keys=keys)) == 2
    assert dynamodb.write_request_units(dynamodb.ItemWrite(pending, pending, index_keys=keys)) == 2
    assert dynamodb.write_request_units(dynamodb.ItemWrite(pending, sent, index_keys=keys)) == 3  # index delete + put
    assert dynamodb.write_request_units(dynamodb.ItemWrite(pending, sent, transactional=True, index_keys=keys)) == 4


def test_a_failed_condition_is_charged_on_the_existing_item_and_writes_no_index():
    existing = {"pk": {"S": "a"}, "status": {"S": "open"}, "pad": {"S": "y" * 2000}}
    write = dynamodb.ItemWrite(existing, existing, index_keys=(("status",),), failed=True)

    assert dynamodb.write_request_units(write) == 2


def test_reads_cost_one_unit_per_started_4_kb_and_half_when_eventually_consistent():
    assert dynamodb.read_units(0, consistent=True) == 1
    assert dynamodb.read_units(4096, consistent=True) == 1
    assert dynamodb.read_units(4097, consistent=True) == 2
    assert dynamodb.read_units(4097, consistent=False) == 1
    assert dynamodb.read_units(100, consistent=False) == Decimal("0.5")
    assert dynamodb.read_units(4097, consistent=False, transactional=True) == 4


# --- Lambda, SMS, logs, metrics ----------------------------------------------------------------------------


def test_lambda_duration_is_rounded_up_to_the_millisecond_and_priced_per_gb_second():
    assert lambdas.billed_ms(0.0123) == 13
    assert lambdas.billed_ms(0.012) == 12
    assert lambdas.billed_ms(0.0000001) == 1
    assert lambdas.gb_seconds(512, 13) == Decimal("0.0065")
    assert lambdas.gb_seconds(256, 1000) == Decimal("0.25")


def test_an_sms_is_billed_per_part():
    assert metering.sms_parts("a" * 160) == 1
    assert metering.sms_parts("a" * 161) == 2
    assert metering.sms_parts("a" * 306) == 2
    assert metering.sms_parts("a" * 307) == 3
    assert metering.sms_parts("€" * 80) == 1  # extended GSM characters count twice
    assert metering.sms_parts("ł" * 70) == 1  # outside GSM-7: UCS-2, 70 per message
    assert metering.sms_parts("ł" * 71) == 2


def test_log_ingestion_meters_each_event_plus_26_bytes():
    assert metering.log_ingest_bytes(["abc", "é"]) == 3 + 26 + 2 + 26


def test_custom_metrics_are_prorated_by_the_hours_they_are_sent_in():
    assert metering.metric_months({"dunning": range(730)}) == 1
    assert metering.metric_months({"a": [1, 1, 2], "b": [5]}) == Decimal(3) / 730


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

    found = metering.emf_metrics([line, '{"level": "INFO", "message": "not a metric"}', line], "budget-guard")

    assert found == {
        metering.MetricId(
            "budget-guard", "BudgetConsumptionPercent", (("budget", "compute"), ("service", "budget-guard"))
        )
    }


def test_the_stage_level_metric_is_one_metric_whoever_sends_it_and_a_function_metric_is_its_own():
    def line(dimensions: list[str], **values: str) -> str:
        directive = {
            "Namespace": "FinOpsGuard",
            "Dimensions": [dimensions],
            "Metrics": [{"Name": "ChatDeliveryFailures"}],
        }
        return json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive]}, **values,
                           "ChatDeliveryFailures": [1]})  # fmt: skip

    stage = [line(["stage"], stage="dev")]
    own = [line(["service"], service="x")]
    emf = metering.emf_metrics
    sent = [(emf(stage, "weekly-report"), [5]), (emf(stage, "budget-guard"), [5, 6]),
            (emf(own, "weekly-report"), [5]), (emf(own, "budget-guard"), [5])]  # fmt: skip

    hours = metering.metric_hours(sent)

    assert metering.metric_months(hours) == Decimal(2 + 1 + 1) / 730  # one stage metric (2 h), two own ones
    assert all(m.shared for m in metering.emf_metrics(stage, "x")) and not any(m.shared for m in sent[2][0])


# --- requests to units -------------------------------------------------------------------------------------


def test_a_publish_to_an_encrypted_topic_counts_the_request_its_email_deliveries_and_a_kms_request():
    topics = {
        "finops-guard-dev-finance-alerts": template.TopicFacts("finops-guard-dev-finance-alerts", True, {"email": 2})
    }

    units = metering.request_units("sns", "Publish", {"TopicArn": FINANCE_TOPIC, "Message": "over budget"}, topics)

    assert units == {"sns.publish": 1, "sns.email": 2, "kms.request": 1}


def test_an_sms_counts_its_parts_and_the_carrier_fee_of_each():
    units = metering.request_units("sns", "Publish", {"PhoneNumber": "+15555550123", "Message": "x" * 200}, {})

    assert units == {"sns.sms_us": 2, "sns.sms_us_carrier": 2}


def test_an_email_counts_every_recipient_and_put_events_every_entry():
    destination = {"ToAddresses": ["a@x.example", "b@x.example"], "CcAddresses": ["c@x.example"]}

    assert metering.request_units("sesv2", "SendEmail", {"Destination": destination}, {}) == {"ses.email": 3}
    assert metering.request_units("events", "PutEvents", {"Entries": [{"Detail": "{}"}] * 2}, {}) == {
        "events.custom": 2
    }
    assert metering.request_units("ce", "GetCostAndUsage", {}, {}) == {"ce.request": 1}
    assert metering.request_units("secretsmanager", "GetSecretValue", {}, {}) == {"secretsmanager.api_call": 1}
    assert metering.request_units("route53", "ListHostedZones", {}, {}) == {"unpriced.route53.ListHostedZones": 1}


def test_a_chargeback_csv_costs_a_put_and_its_bytes_stored_and_a_download_a_get():
    csv = b"month,dimension,value,service,line,amount,currency\r\n" * 20
    params = {"Bucket": "b", "Key": "chargeback/2026-10/tag-team.csv", "Body": csv}

    put = metering.request_units("s3", "PutObject", params, {})

    assert put == {"s3.put": 1, "s3.storage": Decimal(len(csv)) / prices.GIB}
    assert metering.request_units("s3", "GetObject", {"Bucket": "b", "Key": "k"}, {}) == {"s3.get": 1}


def test_a_cost_optimization_hub_page_is_counted_and_priced_at_zero():
    units = metering.request_units("cost-optimization-hub", "ListRecommendations", {"maxResults": 1000}, {})

    assert units == {"costoptimizationhub.request": 1}
    assert prices.Bill.from_counts({"costoptimizationhub.request": Decimal(60)}).usd == 0


# --- Cost Explorer answers ----------------------------------------------------------------------------------


class _SeededAws:
    def __init__(self) -> None:
        self.seeded: list[list[dict]] = []

    def seed_cost_and_usage(self, pages: list[dict]) -> None:
        self.seeded.append(pages)


def test_each_distinct_request_is_answered_once_in_the_order_it_is_asked():
    aws = _SeededAws()
    answers = scenarios_costs.CostAnswers(aws)
    first, second = {"TimePeriod": {"Start": "2026-11-01"}}, {"TimePeriod": {"Start": "2026-11-02"}}

    answers.seed([(first, lambda: [{"page": 1}]), (second, lambda: [{"page": 2}])])
    answers.seed([(second, lambda: [{"page": "again"}]), (first, lambda: [{"page": "again"}])])

    assert aws.seeded == [[{"page": 1}, {"page": 2}]]  # moto answers a body it has seen from memory


def test_a_seeded_answer_nobody_asked_for_is_reported_and_dropped():
    queue = [{"ResultsByTime": []}]  # what the embedded Cost Explorer still holds after the run
    answers = scenarios_costs.CostAnswers(_SeededAws(), queued=lambda: queue)

    answers.check("weekly-report 2026-11-02T08:00:00Z")

    assert answers.problems == ["weekly-report 2026-11-02T08:00:00Z: 1 seeded Cost Explorer answer(s) never asked for"]
    assert queue == []


def test_the_attribution_dimensions_are_read_from_the_environment_in_order():
    dimensions = scenarios_costs.attribution_dimensions(
        {"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,costCategory:Env"}
    )

    assert [d.spec() for d in dimensions] == ["tag:Team", "costCategory:Env"]
    assert scenarios_costs.attribution_dimensions({"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": ""}) == ()


def test_the_weekly_report_is_answered_for_the_organisation_then_for_each_dimension():
    dimensions = scenarios_costs.attribution_dimensions(
        {"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter"}
    )

    requests = [
        request for request, _ in scenarios_costs.weekly_answers(datetime(2026, 11, 9, 8, tzinfo=UTC), dimensions)
    ]

    # The organisation's request carries credits, refunds and tax by RECORD_TYPE: no request more.
    assert requests[0]["GroupBy"] == [
        {"Type": "DIMENSION", "Key": "RECORD_TYPE"},
        {"Type": "DIMENSION", "Key": "REGION"},
    ]
    assert [r["GroupBy"] for r in requests[1:]] == [
        [{"Type": "TAG", "Key": "Team"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        [{"Type": "TAG", "Key": "CostCenter"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    ]
    assert {r["Granularity"] for r in requests[1:]} == {"DAILY"}


def test_without_dimensions_the_weekly_report_is_answered_for_its_credits_refunds_and_tax_too():
    requests = [request for request, _ in scenarios_costs.weekly_answers(datetime(2026, 11, 9, 8, tzinfo=UTC), ())]

    assert [r["GroupBy"][0]["Key"] for r in requests] == ["SERVICE", "RECORD_TYPE"]
    assert requests[1]["Granularity"] == "MONTHLY"


def test_the_chargeback_on_the_first_is_answered_for_last_month_once_per_dimension():
    dimensions = scenarios_costs.attribution_dimensions(
        {"FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter"}
    )

    answers = scenarios_costs.chargeback_answers(datetime(2026, 11, 1, 9, tzinfo=UTC), dimensions, "UTC")

    # One per dimension, then the month's credits, refunds and tax by service.
    assert [request["TimePeriod"] for request, _ in answers] == [{"Start": "2026-10-01", "End": "2026-11-01"}] * 3
    assert [request["GroupBy"][0]["Key"] for request, _ in answers] == ["Team", "CostCenter", "RECORD_TYPE"]


# --- schedules and containers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "runs"),
    [("cron(0 8 ? * MON *)", 5), ("cron(0 9 * * ? *)", 30), ("rate(1 hour)", 720), ("cron(30 6 * * ? *)", 30),
     ("cron(0 6 ? * MON-FRI *)", 21), ("rate(30 minutes)", 1440)],
)  # fmt: skip
def test_schedules_expand_to_their_runs_in_november_2026(expression, runs):
    assert len(schedules.runs_in_month(expression, "UTC", 2026, 11)) == runs


def test_a_cron_runs_at_its_hour_in_its_time_zone():
    mondays = schedules.runs_in_month("cron(0 8 ? * MON *)", "Europe/Madrid", 2026, 11)

    assert mondays[0] == datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert [m.day for m in mondays] == [2, 9, 16, 23, 30]


@pytest.mark.parametrize("expression", ["cron(0 8 ? * 2#1 *)", "cron(0 8 L * ? *)", "at(2026-11-01T00:00:00)"])
def test_schedule_expressions_it_cannot_expand_are_refused(expression):
    with pytest.raises(ValueError, match="unsupported"):
        schedules.runs_in_month(expression, "UTC", 2026, 11)


def test_a_request_after_a_gap_longer_than_the_idle_timeout_starts_cold():
    assert lambdas.cold_starts([0, 100, 800, 1000, 1601], idle_timeout_s=600) == [True, False, True, False, True]


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
    facts = template.TemplateFacts.from_template(_template())

    function = facts.functions["weekly-report"]
    assert (function.memory_mb, function.timeout_s, function.retry_attempts) == (256, 120, 1)
    [schedule] = facts.schedules
    assert (schedule.function, schedule.expression) == ("weekly-report", "rate(1 day)")
    event = simulation.scheduled_event(schedule, datetime(2026, 11, 2, 8, tzinfo=UTC))
    assert event == {"scheduled_time": "2026-11-02T08:00:00Z"}
    assert facts.topics["finops-guard-dev-ops"] == template.TopicFacts("finops-guard-dev-ops", True, {"email": 1})
    assert facts.pitr_tables == ("finops-guard-dev-outbox",)


def test_each_stack_s_fixed_charges_are_counted_from_its_template_at_list_price():
    fixed = template.StackFixed.from_template("Costs", _template())

    assert fixed.counts == {
        "secretsmanager.secret": 2,
        "kms.key": 1,
        "cloudwatch.alarm": 3,  # the metric-math alarm counts each of its two metrics
        "cloudwatch.dashboard": 1,
        "sqs.request": 657_000,  # five pollers x one 20 s long poll each x 730 h, for the one SQS source
    }
    assert fixed.bill.usd == 2 * Decimal("0.40") + 1 + 3 * Decimal("0.10") + 3 + 657_000 * Decimal("0.0000004")
    assert fixed.items() == "2 alarms (3 metrics), 1 dashboard, 1 KMS key, 2 secrets, SQS idle polling"
    assert fixed.not_counted["AWS::Lambda::Function"] == 1 and "AWS::CloudWatch::Alarm" not in fixed.not_counted
    assert "first three dashboards are free" in fixed.notes["cloudwatch.dashboard"]


def test_a_composite_alarm_costs_fifty_cents_and_a_stream_source_polls_for_free():
    resources = {
        "Composite": {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmRule": "ALARM(a)"}},
        "Stream": {"Type": "AWS::Lambda::EventSourceMapping",
                   "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]}}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
    }  # fmt: skip

    fixed = template.StackFixed.from_template("Billing", {"Resources": resources})

    assert fixed.counts == {"cloudwatch.composite_alarm": 1}
    assert fixed.bill.usd == Decimal("0.50")


def test_an_sqs_source_imported_from_another_stack_is_polled_all_month():
    resources = {
        "Esm": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"EventSourceArn": {"Fn::ImportValue": "finops-guard-dev-inbox-queue-arn"}},
        }
    }

    assert template.sqs_pollers({"Resources": resources}) == 1
    assert template.idle_polls_per_month(1) * prices.PRICES["sqs.request"].unit_price == Decimal("0.2628")


def test_the_simulation_reads_the_stacks_merged_and_refuses_a_logical_id_in_two_stacks():
    core = {"Resources": {"FailureQueue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}

    merged = template.merge_templates({"Core": core, "Costs": _template()})

    assert set(merged["Resources"]) == {"FailureQueue", *_template()["Resources"]}
    with pytest.raises(ValueError, match="FailureQueue"):
        template.merge_templates({"Core": core, "Billing": core})


def test_a_function_that_answers_custom_resources_runs_at_deploy_time_only():
    resources = _template()["Resources"]
    resources["Setup"] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": "finops-guard-dev-costs-setup",
            "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": "deploy-setup"}},
        },
    }
    resources["Monitor"] = {"Type": "Custom::AnomalyServicesMonitor",
                            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Setup", "Arn"]}}}  # fmt: skip

    facts = template.TemplateFacts.from_template({"Resources": resources})

    assert set(facts.functions) == {"weekly-report"} and facts.deploy_time == ("costs-setup",)
    assert facts.functions["weekly-report"].handler_dir == "weekly_report"


def test_a_topic_on_the_aws_managed_sns_key_costs_no_kms_requests():
    alias = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":kms:us-east-1:1:alias/aws/sns"]]}
    properties = {"TopicName": "finops-guard-dev-finance-alerts", "KmsMasterKeyId": alias}
    resources = {"Finance": {"Type": "AWS::SNS::Topic", "Properties": properties}}

    facts = template.TemplateFacts.from_template({"Resources": resources})

    assert facts.topics["finops-guard-dev-finance-alerts"].encrypted is False


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
    facts = template.TemplateFacts.from_template(_template())
    opted_in = template.TemplateFacts.from_template(_with_savings_refresh())

    merged, schedule = scenarios_costs.with_savings_refresh(facts, opted_in)

    assert set(merged.functions) == {"weekly-report", "savings-refresh"}
    assert merged.functions["savings-refresh"].memory_mb == 256
    assert "Recs" in merged.resources  # its environment's references resolve
    assert schedule is not None
    assert (schedule.function, schedule.expression) == ("savings-refresh", "cron(30 5 * * ? *)")
    assert merged.schedules == facts.schedules  # the default scenarios keep the default schedules


def test_without_a_savings_refresh_in_the_opted_in_template_scenario_c_has_no_schedule():
    facts = template.TemplateFacts.from_template(_template())

    assert scenarios_costs.with_savings_refresh(facts, facts) == (facts, None)
    assert scenarios_costs.with_savings_refresh(facts, None) == (facts, None)


# --- the printout ------------------------------------------------------------------------------------------


def _figures(usage_a: dict[str, Decimal], smoke: bool = False) -> dict:
    def scenario(counts: dict[str, Decimal]) -> dict:
        bill = prices.Bill.from_counts(counts)
        return {**prices.bill_json(bill), "unpriced": {}, "errors": [],
                "functions": {"weekly-report": {"invocations": "5", "cold": "5"}},
                "metrics": {"weekly-report": {"metrics": "2", "metric_months": "0.0137"}},
                "calls": {"ce.GetCostAndUsage": "5"}}  # fmt: skip

    core = {"Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": "Failures"}},
                          "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}}}}  # fmt: skip
    fixed = {"Core": template.StackFixed.from_template("Core", core).to_json(),
             "Costs": template.StackFixed.from_template("Costs", core).to_json(),
             "Billing": template.StackFixed.from_template("Billing", _template()).to_json()}  # fmt: skip
    bare = {**usage_a, "ce.request": usage_a["ce.request"] - 12}
    scenarios = {"A": scenario(usage_a), scenarios_costs.NO_ATTRIBUTION_LABEL: scenario(bare),
                 "billing-idle": scenario({"lambda.request": Decimal(800)}),
                 "B": scenario({**usage_a, "apigateway.request": Decimal(10_000)})}  # fmt: skip
    return {
        "month": "2026-11", "target_usd": "0.50", "executed_invocations": 5, "seconds": {"total": 1.0},
        "template": {"schedules": {"weekly-report": ["cron(0 8 ? * MON *)", 5]}, "deploy_time": ["costs-setup"]},
        "stripe": {"events_full": 10008, "groups": 139, "events_sampled": 1008, "scale": "9.93", "sample_groups": 2,
                   "dunning_busy_runs_sampled": 45, "dunning_busy_runs_month": "446.8"},
        "attribution": {"dimensions": "tag:Team,tag:CostCenter", "routed_teams": ["platform", "data"]},
        "savings": {"context": scenarios_costs.SAVINGS_CONTEXT, "skipped": "synthesis failed: RuntimeError: no"},
        "scenarios": scenarios, "fixed": fixed, "opt_in_dashboards": {"Costs": "1", "Billing": "1"},
        "deployments": run.judge(fixed, scenarios, judged=not smoke), "smoke": smoke, "correct": True,
    }  # fmt: skip


def test_each_stack_s_fixed_items_and_monthly_charge_are_a_row_of_the_table():
    lines = report.report(_figures({"ce.request": Decimal(35)}))

    assert "    Core     | 1 alarm, 1 secret" in "\n".join(lines)
    [billing] = [line for line in lines if line.startswith("    Billing  |")]
    assert billing.endswith("| $5.3628")
    [opt_in] = [line for line in lines if "opt-in dashboards" in line]
    assert "Costs +$3.00, Billing +$3.00" in opt_in and "first three dashboards are free" in opt_in
    [not_counted] = [line for line in lines if line.startswith("    not counted (no fixed monthly charge")]
    assert "Billing: 1 DynamoDB::Table, 1 Lambda::EventInvokeConfig" in not_counted


def test_core_and_costs_are_judged_on_fixed_and_scenario_a_usage_and_everything_on_fixed_only():
    met = report.report(_figures({"ce.request": Decimal(35)}))
    missed = report.report(_figures({"ce.request": Decimal(35), "cloudwatch.metric": Decimal(4)}))

    assert met[-2].startswith("    (a) core + costs") and met[-2].endswith(
        "= $1.35 a month -- MET: fixed $1.00 <= $1.50; usage $0.35 <= $0.50"
    )
    reason = "fixed $1.00 <= $1.50; usage $1.55 > $0.50 (CloudWatch $1.20, Cost Explorer $0.35)"
    assert missed[-2].endswith(f"-- MISSED: {reason}")
    assert missed[-1].startswith("    (b) everything")
    assert missed[-1].endswith("-- MISSED: fixed $6.36 > $3.50 (Core $0.50, Costs $0.50, Billing $5.36)")


def test_a_smoke_run_judges_no_deployment():
    lines = report.report(_figures({"ce.request": Decimal(35)}, smoke=True))

    assert lines[-2].endswith("-- not judged (smoke run): fixed $1.00 <= $1.50; usage $0.35 <= $0.50")
    assert lines[0].startswith("SMOKE RUN (the first 3 days, 2 sampled customer groups)")


def test_the_price_of_attribution_is_a_and_the_same_month_without_it():
    lines = report.report(_figures({"ce.request": Decimal(47), "s3.put": Decimal(2)}))

    [price] = [line for line in lines if "attribution with its defaults" in line]
    assert "(tag:Team,tag:CostCenter) costs $0.1200 a month: Cost Explorer +12.00 request +$0.1200" in price


def test_a_skipped_scenario_c_says_why():
    lines = report.report(_figures({"ce.request": Decimal(35)}))

    [skipped] = [line for line in lines if line.startswith("  C (A + savings recommendations")]
    assert skipped.endswith("not measured: synthesis failed: RuntimeError: no")


def test_bill_changes_list_the_lines_that_moved_most_in_money_first_with_their_signs():
    base = prices.bill_json(prices.Bill.from_counts({"ce.request": Decimal(35), "lambda.request": Decimal(800)}))
    other = prices.bill_json(prices.Bill.from_counts({"ce.request": Decimal(47), "s3.put": Decimal(2)}))

    assert report.bill_changes(base, other) == [
        "Cost Explorer +12.00 request +$0.1200",
        "Lambda -800 request -$0.0002",
        "S3 +2.00 request +$0.0000",
    ]
