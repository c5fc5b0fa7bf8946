"""Operations: every function pages the one ops topic, the service-level alarms, the paging-service
subscriptions and the FinOpsGuard-<stage> dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    Synth,
    dlq_id_of,
    function_of,
    joined_text,
    ref,
    topic_id_of,
)

pytestmark = pytest.mark.infra

FUNCTIONS = [
    "weekly-report",
    "budget-guard",
    "anomaly-alerts",
    "chargeback",
    "savings-refresh",
    "stripe-webhook",
    "billing-notifier",
    "dunning-sender",
    "reconciliation",
    "billing-admin",
]
# (function, the chat it posts to, the webhook secrets its alarm names) in the full (Slack) context
CHAT_POSTERS = [
    ("weekly-report", "team", ["finops-guard/qa/teams-webhook-url", "finops-guard/qa/slack-webhook-url"]),
    ("budget-guard", "team", ["finops-guard/qa/teams-webhook-url", "finops-guard/qa/slack-webhook-url"]),
    ("anomaly-alerts", "team", ["finops-guard/qa/teams-webhook-url", "finops-guard/qa/slack-webhook-url"]),
    ("chargeback", "team", ["finops-guard/qa/teams-webhook-url", "finops-guard/qa/slack-webhook-url"]),
    (
        "billing-notifier",
        "finance",
        ["finops-guard/qa/finance-teams-webhook-url", "finops-guard/qa/finance-slack-webhook-url"],
    ),
    (
        "billing-admin",
        "finance",
        ["finops-guard/qa/finance-teams-webhook-url", "finops-guard/qa/finance-slack-webhook-url"],
    ),
]
PAGERDUTY = "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"
OPSGENIE = "https://api.opsgenie.com/v1/json/amazonsns?apiKey=0a1b2c3d"


def ops_topic(synth: Synth) -> dict[str, str]:
    return ref(topic_id_of(synth, "ops-alarms"))


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
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
) -> dict[str, Any]:
    """The exact properties (description aside) of an alarm on one FinOpsGuard metric."""
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
        "AlarmActions": [ops_topic(synth)],
        "OKActions": [ops_topic(synth)],
    }


def dashboard(synth: Synth) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashboard's properties and its body, json-decoded with placeholders for the tokens."""
    _, resource = synth.only("AWS::CloudWatch::Dashboard")
    properties = resource["Properties"]
    return properties, json.loads(joined_text(properties["DashboardBody"]))


def widget_titled(body: dict[str, Any], title: str) -> dict[str, Any]:
    [widget] = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return widget["properties"]


def custom(metric: str, service: str, **options: Any) -> list[Any]:
    """A FinOpsGuard metric line as the dashboard JSON writes it."""
    return ["FinOpsGuard", metric, "service", service, options]


# --- paging on every failure ------------------------------------------------------------------


@pytest.mark.parametrize("short_name", FUNCTIONS)
def test_every_function_has_the_four_standard_alarms_paging_ops(full_synth: Synth, short_name: str) -> None:
    function_id, _ = function_of(full_synth, short_name)
    found = alarms(full_synth)

    for suffix, metric in (("Errors", "Errors"), ("Throttles", "Throttles"), ("Duration", "Duration")):
        alarm = found[f"FinOpsGuard-qa-{short_name}-{suffix}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": ref(function_id)}]
    dead_letters = found[f"FinOpsGuard-qa-{short_name}-DeadLetters"]
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id_of(full_synth, short_name), "QueueName"]}}
    ]
    for suffix in ("Errors", "Throttles", "Duration", "DeadLetters"):
        alarm = found[f"FinOpsGuard-qa-{short_name}-{suffix}"]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [ops_topic(full_synth)]
        assert "First:" in json.dumps(alarm["AlarmDescription"])


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_every_alarm_pages_the_one_ops_topic_with_a_first_step(synth_name: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(synth_name)

    for name, alarm in alarms(synth).items():
        assert name.startswith(f"FinOpsGuard-{synth.stack.config.stage}-")
        assert alarm["AlarmActions"] == [ops_topic(synth)], name
        assert alarm["OKActions"] == [ops_topic(synth)], name
        assert "First:" in json.dumps(alarm["AlarmDescription"]), name


def test_billing_api_pages_on_every_5xx_and_on_probing(full_synth: Synth) -> None:
    found = alarms(full_synth)

    assert found["FinOpsGuard-qa-billing-api-5xx"]["MetricName"] == "5XXError"
    assert found["FinOpsGuard-qa-billing-api-5xx"]["Threshold"] == 1
    assert found["FinOpsGuard-qa-billing-api-4xx-spike"]["Threshold"] == 20
    assert found["FinOpsGuard-qa-billing-api-signature-failures"]["Threshold"] == 10  # exact: test_infra_billing.py


# --- service-level alarms ---------------------------------------------------------------------


def test_weekly_report_deadline_pages_when_seven_complete_days_in_the_report_zone_had_no_post(
    full_synth: Synth,
) -> None:
    alarm = alarms(full_synth)["FinOpsGuard-qa-weekly-report-NotPosted"]

    assert without_description(alarm) == {
        **custom_metric_alarm(
            full_synth,
            "FinOpsGuard-qa-weekly-report-NotPosted",
            metric="WeeklyReportPosted",
            service="weekly-report",
            statistic="Sum",
            period=86400,
            comparison="LessThanThreshold",
            threshold=1,
            evaluation_periods=7,
            missing="breaching",
        ),
        "EvaluationWindow": {"WallClockWindow": {"Timezone": "Europe/Madrid"}},
    }
    assert "DatapointsToAlarm" not in alarm  # all seven days


def test_a_new_stage_counts_its_deploy_as_the_first_weeks_post_so_the_deadline_starts_ok(
    default_synth: Synth,
) -> None:
    [(alarm_id, alarm)] = [
        (lid, r)
        for lid, r in default_synth.resources("AWS::CloudWatch::Alarm").items()
        if r["Properties"]["AlarmName"] == "FinOpsGuard-dev-weekly-report-NotPosted"
    ]
    grace_id, grace = default_synth.only("Custom::ReportDeadlineGrace")

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


@pytest.mark.parametrize(("short_name", "channel", "secrets"), CHAT_POSTERS)
def test_chat_delivery_failure_pages_ops_per_posting_function(
    full_synth: Synth, short_name: str, channel: str, secrets: list[str]
) -> None:
    name = f"FinOpsGuard-qa-{short_name}-ChatDeliveryFailures"
    alarm = alarms(full_synth)[name]

    assert without_description(alarm) == custom_metric_alarm(
        full_synth,
        name,
        metric="ChatDeliveryFailures",
        service=short_name,
        statistic="Sum",
        period=3600,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
    )
    description = alarm["AlarmDescription"]
    assert f"to the {channel} chat" in description
    assert " and ".join(secrets) in description
    assert "finops-guard report pending --stage qa" in description


def test_only_the_six_posting_functions_have_a_chat_delivery_alarm(full_synth: Synth) -> None:
    chat_alarms = sorted(name for name in alarms(full_synth) if name.endswith("-ChatDeliveryFailures"))

    assert chat_alarms == sorted(f"FinOpsGuard-qa-{short_name}-ChatDeliveryFailures" for short_name, *_ in CHAT_POSTERS)


def test_reconciliation_mismatch_pages_until_a_clean_run(full_synth: Synth) -> None:
    alarm = alarms(full_synth)["FinOpsGuard-qa-reconciliation-Mismatches"]

    assert without_description(alarm) == custom_metric_alarm(
        full_synth,
        "FinOpsGuard-qa-reconciliation-Mismatches",
        metric="ReconciliationMismatches",
        service="reconciliation",
        statistic="Maximum",
        period=86400,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        missing="ignore",
    )
    assert "more than 2.5 %" in alarm["AlarmDescription"]  # reconciliationVariancePercent
    assert "First:" in alarm["AlarmDescription"]


# --- ops topic subscribers --------------------------------------------------------------------


def test_ops_topic_posts_to_each_configured_https_endpoint(full_synth: Synth) -> None:
    topic = ops_topic(full_synth)
    https = [
        s["Properties"]
        for s in full_synth.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "https"
    ]

    assert sorted(https, key=lambda s: s["Endpoint"]) == [
        {"Protocol": "https", "Endpoint": OPSGENIE, "TopicArn": topic},
        {"Protocol": "https", "Endpoint": PAGERDUTY, "TopicArn": topic},
    ]


def test_no_https_subscription_by_default(default_synth: Synth) -> None:
    protocols = [s["Properties"]["Protocol"] for s in default_synth.resources("AWS::SNS::Subscription").values()]

    assert "https" not in protocols


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_is_named_after_the_stage_and_region(full_synth: Synth, default_synth: Synth) -> None:
    # Dashboards are global: the same stage deployed in a second region must not collide.
    assert dashboard(full_synth)[0]["DashboardName"] == {"Fn::Join": ["", ["FinOpsGuard-qa-", ref("AWS::Region")]]}
    assert dashboard(default_synth)[0]["DashboardName"] == {"Fn::Join": ["", ["FinOpsGuard-dev-", ref("AWS::Region")]]}


def test_dashboard_opens_on_two_weeks_and_keeps_each_widget_period(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)

    assert body["start"] == "-P14D"
    assert body["periodOverride"] == "inherit"


def test_dashboard_widgets_fit_the_24_column_grid_without_overlap(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
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


def test_dashboard_body_names_every_kpi_metric_and_every_function(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    text = json.dumps(body)

    for metric in (
        "MonthToDateSpend",
        "ForecastMonthEnd",
        "BudgetConsumptionPercent",
        "AnomaliesAlerted",
        "MonthlyRecurringRevenue",
        "FailedInvoices",
        "OpenBillingAlerts",
    ):
        assert f'\\"{metric}\\"' in text or f'"{metric}"' in text, metric
    for short_name in FUNCTIONS:
        assert f"finops-guard-qa-{short_name}" in text, short_name


def test_default_dashboard_graphs_every_function_but_the_savings_refresh(default_synth: Synth) -> None:
    """savingsRecommendations is off by default: the recommendations table exists, its refresh does not."""
    _, body = dashboard(default_synth)
    titles = {w["properties"].get("title") for w in body["widgets"]}

    assert [name for name in FUNCTIONS if f"finops-guard-dev-{name}" not in titles] == ["savings-refresh"]
    assert "savings-refresh" not in json.dumps(body)


def test_spend_is_shown_as_single_values_and_a_daily_graph_in_the_report_currency(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    month_to_date = custom(
        "MonthToDateSpend", "weekly-report", label="Month-to-date spend (EUR)", period=86400, stat="Maximum"
    )
    forecast = custom(
        "ForecastMonthEnd", "weekly-report", label="Month-end forecast (EUR)", period=86400, stat="Maximum"
    )

    single = widget_titled(body, "AWS spend this month")
    graph = widget_titled(body, "Month-to-date spend and month-end forecast (EUR, weekly report)")
    assert (single["view"], single["metrics"]) == ("singleValue", [month_to_date, forecast])
    assert (graph["view"], graph["metrics"]) == ("timeSeries", [month_to_date, forecast])


@pytest.mark.parametrize(
    ("title", "expression", "label"),
    [
        (
            "Budget consumption (% of each budget, daily budget guard)",
            'SEARCH(\'{FinOpsGuard,budget,service} MetricName="BudgetConsumptionPercent" service="budget-guard"\', '
            "'Maximum', 86400)",
            "Budget ${PROP('Dim.budget')}",
        ),
        (
            "Monthly recurring revenue by currency (daily reconciliation)",
            'SEARCH(\'{FinOpsGuard,currency,service} MetricName="MonthlyRecurringRevenue" '
            "service=\"reconciliation\"', 'Maximum', 86400)",
            "MRR ${PROP('Dim.currency')}",
        ),
    ],
)
def test_budgets_and_currencies_are_searched_because_they_are_data_not_known_at_synth(
    full_synth: Synth, title: str, expression: str, label: str
) -> None:
    _, body = dashboard(full_synth)

    assert widget_titled(body, title)["metrics"] == [[{"label": label, "expression": expression, "period": 86400}]]


def test_budget_graph_marks_one_hundred_percent(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    widget = widget_titled(body, "Budget consumption (% of each budget, daily budget guard)")

    assert widget["annotations"] == {"horizontal": [{"value": 100, "label": "Budget", "yAxis": "left"}]}


def test_anomalies_of_the_week_and_billing_counts_are_single_values(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    widget = widget_titled(body, "Anomalies and billing")

    assert (widget["view"], widget["metrics"]) == (
        "singleValue",
        [
            custom("AnomaliesAlerted", "anomaly-alerts", label="Anomalies alerted (7 days)", period=604800, stat="Sum"),
            custom("FailedInvoices", "reconciliation", label="Failed invoices", period=86400, stat="Maximum"),
            custom("OpenBillingAlerts", "reconciliation", label="Open billing alerts", period=86400, stat="Maximum"),
        ],
    )


def test_alarm_status_widget_lists_every_alarm_of_the_stack_once(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    [widget] = [w["properties"] for w in body["widgets"] if w["type"] == "alarm"]

    assert len(widget["alarms"]) == len(set(widget["alarms"]))
    assert set(widget["alarms"]) == {f"<GetAtt:{lid}.Arn>" for lid in full_synth.resources("AWS::CloudWatch::Alarm")}
    assert widget["sortBy"] == "stateUpdatedTimestamp"


@pytest.mark.parametrize("short_name", FUNCTIONS)
def test_every_function_has_a_health_graph(full_synth: Synth, short_name: str) -> None:
    _, body = dashboard(full_synth)
    function_id, _ = function_of(full_synth, short_name)
    function = f"<Ref:{function_id}>"
    dlq = f"<GetAtt:{dlq_id_of(full_synth, short_name)}.QueueName>"

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
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            dlq,
            {"label": "DLQ messages", "period": 3600, "stat": "Maximum"},
        ],
        [
            "AWS/Lambda",
            "Duration",
            "FunctionName",
            function,
            {"label": "Duration p99 (ms)", "period": 3600, "stat": "p99", "yAxis": "right"},
        ],
    ]


def test_billing_api_health_graph_shows_requests_errors_and_latency(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)
    stage_id, _ = full_synth.only("AWS::ApiGateway::Stage")
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


def test_service_level_graphs_show_each_slo_metric(full_synth: Synth) -> None:
    _, body = dashboard(full_synth)

    invoices = widget_titled(body, "Bot invoice delivery: latency p99 (s) and % within 5 minutes")
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
    assert widget_titled(body, "Cost anomaly forwarding latency (s)")["metrics"] == [
        custom("AnomalyForwardingLatency", "anomaly-alerts", label="p99", period=3600, stat="p99"),
        custom("AnomalyForwardingLatency", "anomaly-alerts", label="Maximum", period=3600, stat="Maximum"),
    ]
    assert widget_titled(body, "Chat delivery failures (per hour)")["metrics"] == [
        custom("ChatDeliveryFailures", short_name, label=short_name, period=3600, stat="Sum")
        for short_name, *_ in CHAT_POSTERS
    ]
    assert widget_titled(body, "Weekly reports posted (per day)")["metrics"] == [
        custom("WeeklyReportPosted", "weekly-report", label="Posted", period=86400, stat="Sum")
    ]
    assert widget_titled(body, "Reconciliation mismatches (per daily run)")["metrics"] == [
        custom(
            "ReconciliationMismatches",
            "reconciliation",
            label="Mismatching customer/currency pairs",
            period=86400,
            stat="Maximum",
        )
    ]
    assert widget_titled(body, "Stripe signature failures (per hour)")["metrics"] == [
        custom("StripeSignatureFailures", "stripe-webhook", label="Signature failures", period=3600, stat="Sum")
    ]
