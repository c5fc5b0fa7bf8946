"""Context validation: bad values stop synth with a message naming the key and the value."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from aws_cdk import App
from conftest import REPO_ROOT, cdk_json_context

from infra.config import (
    DEFAULTS,
    DUNNING_PLACEHOLDERS,
    ConfigError,
    CostFilter,
    DunningStep,
    DunningTemplate,
    FinOpsGuardConfig,
    load_config,
    unknown_keys,
)
from infra.stacks import create_stacks

pytestmark = pytest.mark.infra


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timezone", "Mars/Olympus"),
        ("timezone", ""),
        ("timezone", "../../etc/passwd"),
        ("currency", "XXQ"),
        ("currency", "usd"),
        ("topN", 0),
        ("topN", "11"),
        ("topN", "five"),
        ("topN", True),
        ("monthlyBudget", "-5"),
        ("monthlyBudget", -5),
        ("monthlyBudget", "0"),
        ("monthlyBudget", "lots"),
        ("monthlyBudget", "NaN"),
        ("stage", "Bad_Stage"),
        ("stage", "a-very-long-stage-name"),
        ("stage", ""),
        ("opsAlarmEmail", "nope"),
        ("opsAlarmEmail", "ops@localhost"),
        ("opsAlarmHttpsEndpoints", "http://events.pagerduty.com/integration/abc/enqueue"),
        ("opsAlarmHttpsEndpoints", "events.pagerduty.com/integration/abc/enqueue"),
        ("opsAlarmHttpsEndpoints", "https://"),
        ("opsAlarmHttpsEndpoints", "https://paging.example.com/a b"),
        ("opsAlarmHttpsEndpoints", "https://user:secret@paging.example.com/hook"),
        ("opsAlarmHttpsEndpoints", "https://paging.example.com/hook,"),
        ("opsAlarmHttpsEndpoints", '["https://paging.example.com/hook"'),
        ("opsAlarmHttpsEndpoints", [42]),
        ("opsAlarmHttpsEndpoints", {"url": "https://paging.example.com/hook"}),
        ("opsAlarmHttpsEndpoints", [f"https://paging.example.com/hook/{n}" for n in range(11)]),
        ("reportSchedule", "cron(0 8 * * MON)"),
        ("reportSchedule", "cron(0 8 * * MON *)"),
        ("reportSchedule", "every monday"),
        ("reportSchedule", "rate(0 days)"),
        ("slackEnabled", "maybe"),
        ("owner", ""),
        ("costCenter", "  "),
        ("costCenter", "fin<ops>"),
        ("budgetSchedule", "cron(0 9 * * *)"),
        ("budgetSchedule", "cron(0 9 * * * *)"),
        ("budgetSchedule", "daily at nine"),
        ("budgetSchedule", "rate(1 days)"),
        ("forecastInterval", "0.49"),
        ("forecastInterval", "1"),
        ("forecastInterval", 0.995),
        ("forecastInterval", "80%"),
        ("forecastInterval", "NaN"),
        ("forecastInterval", True),
        ("forecastInterval", ""),
        ("financeAlertEmail", "finance"),
        ("financeAlertEmail", "finance@localhost"),
        ("anomalyMinImpact", "-1"),
        ("anomalyMinImpact", "lots"),
        ("anomalyMinImpact", True),
        ("anomalyMinImpact", "Infinity"),
        ("anomalyRealertGrowth", "0"),
        ("anomalyRealertGrowth", "-0.5"),
        ("anomalyRealertGrowth", "10.01"),
        ("anomalyRealertGrowth", "50%"),
        ("anomalyThresholdAbsolute", "0"),
        ("anomalyThresholdAbsolute", "-100"),
        ("anomalyThresholdAbsolute", "a hundred"),
        ("anomalyThresholdPercent", "0"),
        ("anomalyThresholdPercent", "20%"),
        ("anomalyThresholdMatch", "either"),
        ("anomalyThresholdMatch", ""),
        ("anomalyServiceMonitor", "sometimes"),
        ("anomalyMonitorArns", "arn:aws:ce::123456789012:monitor/abc"),
        ("anomalyMonitorArns", "arn:aws:ce::12345:anomalymonitor/abc"),
        ("anomalyMonitorArns", '["arn:aws:ce::123456789012:anomalymonitor/abc"'),
        ("anomalyMonitorArns", {"arn": "x"}),
        ("anomalyLinkedAccounts", "12345678901"),
        ("anomalyLinkedAccounts", "111111111111,"),
        ("anomalyLinkedAccounts", [111111111111]),
        ("anomalyLinkedAccounts", ",".join(str(100000000000 + n) for n in range(11))),
        ("anomalyTag", "team"),
        ("anomalyTag", "=data"),
        ("anomalyTag", "team="),
        ("anomalyTag", "team=data,,ml"),
        ("anomalyTag", ["team=data"]),
        ("anomalyCostCategory", "Product"),
        ("anomalyCostCategory", "Product=" + "x" * 51),
        ("billingMonthlyThresholds", '{"USD": "5000"'),
        ("billingMonthlyThresholds", '["USD", "5000"]'),
        ("billingMonthlyThresholds", {"usd": "5000"}),
        ("billingMonthlyThresholds", {"XXQ": "5000"}),
        ("billingMonthlyThresholds", {"USD": "0"}),
        ("billingMonthlyThresholds", {"USD": "-5"}),
        ("billingMonthlyThresholds", {"USD": "lots"}),
        ("billingMonthlyThresholds", {"USD": None}),
        ("billingMonthlyThresholds", {"USD": True}),
        ("billingMonthlyThresholds", "USD=5000"),
        ("dunningSteps", ""),
        ("dunningSteps", "0:email,"),
        ("dunningSteps", "0-email"),
        ("dunningSteps", "0:fax"),
        ("dunningSteps", "-1:email"),
        ("dunningSteps", "61:email"),
        ("dunningSteps", "3:email,1:sms"),
        ("dunningSteps", "1:email,1:sms"),
        ("dunningSteps", "one:email"),
        ("dunningSteps", ["0:email"]),
        ("webhookMaxBodyBytes", "1023"),
        ("webhookMaxBodyBytes", 1048577),
        ("webhookMaxBodyBytes", "256k"),
        ("webhookMaxBodyBytes", True),
        ("billingApiRateLimit", "0"),
        ("billingApiRateLimit", -50),
        ("billingApiRateLimit", "10001"),
        ("billingApiRateLimit", "fifty"),
        ("billingApiBurstLimit", "0"),
        ("billingApiBurstLimit", 2.5),
        ("billingApiBurstLimit", "10001"),
        ("billingAdminRateLimit", "0"),
        ("billingAdminRateLimit", "10001"),
        ("billingAdminRateLimit", True),
        ("billingAdminBurstLimit", "-1"),
        ("billingAdminBurstLimit", "twenty"),
        ("billingAdminBurstLimit", 10001),
        ("dunningSenderEmail", "billing"),
        ("dunningSenderEmail", "billing@localhost"),
        ("dunningSenderEmail", 42),
        ("dunningTemplates", '{"email": {"subject": "s", "body": "b"}'),
        ("dunningTemplates", '["email"]'),
        ("dunningTemplates", {"fax": {"body": "b"}}),
        ("dunningTemplates", {"3:fax": {"body": "b"}}),
        ("dunningTemplates", {"2:email": {"subject": "s", "body": "b"}}),
        ("dunningTemplates", {"03:email": {"subject": "s", "body": "b"}}),
        ("dunningTemplates", {"email": {"body": "b"}}),
        ("dunningTemplates", {"email": {"subject": "s", "body": "b", "html": "<p>"}}),
        ("dunningTemplates", {"sms": {"subject": "s", "body": "b"}}),
        ("dunningTemplates", {"sms": "pay now"}),
        ("dunningTemplates", {"sms": {"body": ""}}),
        ("dunningTemplates", {"sms": {"body": 5}}),
        ("dunningTemplates", {"sms": {"body": "pay {total}"}}),
        ("dunningTemplates", {"email": {"subject": "{Amount}", "body": "b"}}),
        ("dunningTemplates", {"email": {"subject": "s", "body": "pay {amount:>10}"}}),
        ("dunningTemplates", {"email": {"subject": "s", "body": "pay {}"}}),
        ("dunningTemplates", {"email": {"subject": "s", "body": "pay {amount"}}),
        ("dunningTemplates", {"email": {"subject": "s", "body": "{{amount}}"}}),
        ("dunningTemplates", {"sms": {"body": "x" * 321}}),
        ("dunningSchedule", "hourly"),
        ("dunningSchedule", "rate(1 hours)"),
        ("dunningSchedule", "cron(0 * * * *)"),
        ("reconciliationSchedule", "cron(30 6 * * * *)"),
        ("reconciliationSchedule", "daily"),
        ("billingExportSchedule", "cron(0 6 * * MON *)"),
        ("billingExportSchedule", "rate(7 day)"),
        ("reconciliationVariancePercent", "0"),
        ("reconciliationVariancePercent", -1),
        ("reconciliationVariancePercent", "100.01"),
        ("reconciliationVariancePercent", "1%"),
        ("reconciliationVariancePercent", True),
        ("billingPortalReturnUrl", "http://billing.example.com"),
        ("billingPortalReturnUrl", "billing.example.com/account"),
        ("billingPortalReturnUrl", "https://"),
        ("billingPortalReturnUrl", "https://billing.example.com/a b"),
        ("invoiceDaysUntilDue", "-1"),
        ("invoiceDaysUntilDue", 366),
        ("invoiceDaysUntilDue", "thirty"),
        ("invoiceDaysUntilDue", 14.5),
        ("stripeApiBase", "127.0.0.1:12111"),
        ("stripeApiBase", "ftp://127.0.0.1"),
        ("stripeApiBase", "http://"),
        ("stripeApiBase", ["http://127.0.0.1:12111"]),
        ("attributionDimensions", "Team"),
        ("attributionDimensions", "tags:Team"),
        ("attributionDimensions", "tag:"),
        ("attributionDimensions", "tag:Team,"),
        ("attributionDimensions", "tag:Team|Lead"),
        ("attributionDimensions", "tag:" + "k" * 129),
        ("attributionDimensions", "costCategory:" + "c" * 51),
        ("attributionDimensions", "CostCategory:Project"),
        ("attributionDimensions", ["tag:Team", 5]),
        ("attributionDimensions", []),
        ("attributionDimensions", "[]"),
        ("attributionDimensions", "tag:A,tag:B,tag:C,tag:D"),
        ("attributionDimensions", '["tag:Team"'),
        ("attributionDimensions", {"tag": "Team"}),
        ("teamDimension", "Team"),
        ("teamDimension", "tag:Project"),
        ("teamDimension", "tag:team"),
        ("teamDimension", ["tag:Team"]),
        ("teamDimension", 5),
        ("chargebackUnallocated", "evenly"),
        ("chargebackUnallocated", ""),
        ("chargebackUnallocated", 1),
        ("chargebackSchedule", "monthly"),
        ("chargebackSchedule", "cron(0 9 1 * *)"),
        ("chargebackSchedule", "cron(0 9 1 * * *)"),
        ("chargebackSchedule", "rate(1 months)"),
        ("chargebackLinkExpiryMinutes", "0"),
        ("chargebackLinkExpiryMinutes", 721),
        ("chargebackLinkExpiryMinutes", "1h"),
        ("chargebackLinkExpiryMinutes", 1.5),
        ("chargebackLinkExpiryMinutes", True),
        ("savingsRecommendations", "maybe"),
        ("savingsRecommendations", 1),
        ("savingsRecommendations", ""),
        ("savingsPlansKpi", "sometimes"),
        ("savingsPlansKpi", ["true"]),
        ("dashboard", "maybe"),
        ("dashboard", 1),
        ("savingsSchedule", "daily"),
        ("savingsSchedule", "cron(30 5 * * *)"),
        ("savingsSchedule", "cron(30 5 * * * *)"),
        ("savingsSchedule", "rate(1 days)"),
    ],
)
def test_invalid_context_value_is_rejected_naming_key_and_value(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({key: value})

    message = str(raised.value)
    assert message.startswith(f"Invalid context '{key}': {value!r} ")
    assert raised.value.key == key


def test_unknown_time_zone_message_is_exact() -> None:
    with pytest.raises(ConfigError, match=r"^Invalid context 'timezone': 'Mars/Olympus' is not an IANA time zone$"):
        FinOpsGuardConfig.from_context({"timezone": "Mars/Olympus"})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_cli_strings_are_parsed_into_typed_values() -> None:
    config = FinOpsGuardConfig.from_context(
        {
            "topN": "7",
            "slackEnabled": "true",
            "monthlyBudget": "1500.50",
            "opsAlarmEmail": "null",
            "reportSchedule": "rate(1 day)",
            "timezone": "Europe/Madrid",
        }
    )

    assert config.top_n == 7
    assert config.slack_enabled is True
    assert config.monthly_budget == "1500.50"
    assert config.ops_alarm_email is None
    assert config.report_schedule == "rate(1 day)"
    assert config.timezone == "Europe/Madrid"


@pytest.mark.parametrize(("raw", "expected"), [(0.8, "0.8"), ("0.5", "0.5"), ("0.99", "0.99"), (" 0.95 ", "0.95")])
def test_forecast_interval_is_kept_as_a_decimal_string_within_its_bounds(raw: object, expected: str) -> None:
    assert FinOpsGuardConfig.from_context({"forecastInterval": raw}).forecast_interval == expected


def test_forecast_interval_message_states_the_accepted_range() -> None:
    with pytest.raises(
        ConfigError, match=r"^Invalid context 'forecastInterval': '1' must be a decimal from 0.5 to 0.99, e.g. 0.8$"
    ):
        FinOpsGuardConfig.from_context({"forecastInterval": "1"})


def test_budget_schedule_and_finance_email_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {"budgetSchedule": "  cron(30 7 ?  * MON-FRI *) ", "financeAlertEmail": "finance@example.com"}
    )

    assert config.budget_schedule == "cron(30 7 ? * MON-FRI *)"
    assert config.finance_alert_email == "finance@example.com"
    assert FinOpsGuardConfig.from_context({"financeAlertEmail": "null"}).finance_alert_email is None


def test_numeric_budget_from_cdk_json_is_kept_as_decimal_string() -> None:
    assert FinOpsGuardConfig.from_context({"monthlyBudget": 1234.5}).monthly_budget == "1234.5"


def test_config_is_frozen() -> None:
    config = FinOpsGuardConfig.from_context({})
    with pytest.raises(AttributeError):
        config.stage = "prod"  # type: ignore[misc]


def test_cdk_json_context_defaults_match_config_defaults() -> None:
    context = cdk_json_context()

    assert {key: context[key] for key in DEFAULTS} == DEFAULTS


def test_default_config_from_cdk_json() -> None:
    config = load_config(App(context=cdk_json_context()).node)

    assert config == FinOpsGuardConfig(
        stage="dev",
        report_schedule="cron(0 8 ? * MON *)",
        timezone="UTC",
        currency="USD",
        top_n=5,
        monthly_budget=None,
        ops_alarm_email=None,
        ops_alarm_https_endpoints=(),
        slack_enabled=False,
        owner="platform-team",
        cost_center="finops",
        budget_schedule="cron(0 9 * * ? *)",
        forecast_interval="0.8",
        finance_alert_email=None,
        anomaly_min_impact="0",
        anomaly_realert_growth="0.5",
        anomaly_threshold_absolute="100",
        anomaly_threshold_percent=None,
        anomaly_threshold_match="any",
        anomaly_service_monitor=True,
        anomaly_monitor_arns=(),
        anomaly_linked_accounts=(),
        anomaly_tag=None,
        anomaly_cost_category=None,
        billing_monthly_thresholds=(),
        dunning_steps=(DunningStep(0, "email"), DunningStep(1, "sms"), DunningStep(3, "email")),
        webhook_max_body_bytes=262144,
        billing_api_rate_limit=50,
        billing_api_burst_limit=100,
        billing_admin_rate_limit=10,
        billing_admin_burst_limit=20,
        dunning_sender_email=None,
        dunning_templates=(),
        dunning_schedule="rate(1 hour)",
        reconciliation_schedule="cron(30 6 * * ? *)",
        billing_export_schedule="cron(0 6 ? * MON *)",
        reconciliation_variance_percent="1",
        billing_portal_return_url=None,
        invoice_days_until_due=30,
        stripe_api_base=None,
        attribution_dimensions=("tag:Team", "tag:CostCenter"),
        team_dimension="tag:Team",
        chargeback_unallocated="proportional",
        chargeback_schedule="cron(0 9 1 * ? *)",
        chargeback_link_expiry_minutes=60,
        savings_recommendations=False,
        savings_plans_kpi=False,
        savings_schedule="cron(30 5 * * ? *)",
        dashboard=False,
    )


def test_billing_settings_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {
            "billingMonthlyThresholds": '{"USD": "5000", "EUR": 4000.5}',
            "dunningSteps": " 0:email , 2:SMS,60:email ",
            "webhookMaxBodyBytes": "1024",
            "billingApiRateLimit": "10",
            "billingApiBurstLimit": "10000",
            "billingAdminRateLimit": " 3 ",
            "billingAdminBurstLimit": "10000",
        }
    )

    assert config.billing_monthly_thresholds == (("EUR", "4000.5"), ("USD", "5000"))
    assert config.billing_thresholds_json == '{"EUR":"4000.5","USD":"5000"}'
    assert config.dunning_steps == (DunningStep(0, "email"), DunningStep(2, "sms"), DunningStep(60, "email"))
    assert config.dunning_steps_text == "0:email,2:sms,60:email"
    assert (config.webhook_max_body_bytes, config.billing_api_rate_limit, config.billing_api_burst_limit) == (
        1024,
        10,
        10000,
    )
    assert (config.billing_admin_rate_limit, config.billing_admin_burst_limit) == (3, 10000)


@pytest.mark.parametrize("raw", [{}, "{}", "", "null"])
def test_no_billing_thresholds_in_any_form_is_an_empty_json_object(raw: object) -> None:
    config = FinOpsGuardConfig.from_context({"billingMonthlyThresholds": raw})

    assert config.billing_monthly_thresholds == ()
    assert config.billing_thresholds_json == "{}"


def test_billing_thresholds_from_cdk_json_mapping_with_numbers() -> None:
    config = FinOpsGuardConfig.from_context({"billingMonthlyThresholds": {"USD": 5000, "EUR": "1500.50"}})

    assert config.billing_thresholds_json == '{"EUR":"1500.50","USD":"5000"}'


def test_dunning_steps_message_states_the_accepted_form() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^Invalid context 'dunningSteps': '3:email,1:sms' must be comma-separated DAY:CHANNEL steps with days "
            r"0-60 in ascending order and channels email or sms, e\.g\. 0:email,1:sms,3:email$"
        ),
    ):
        FinOpsGuardConfig.from_context({"dunningSteps": "3:email,1:sms"})


def test_billing_threshold_message_names_the_unknown_currency() -> None:
    with pytest.raises(ConfigError, match=r"holds 'XXQ', not an ISO 4217 currency code"):
        FinOpsGuardConfig.from_context({"billingMonthlyThresholds": '{"XXQ": "1"}'})


def test_anomaly_settings_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {
            "anomalyMinImpact": "25.5",
            "anomalyRealertGrowth": "10",
            "anomalyThresholdAbsolute": "null",
            "anomalyThresholdPercent": "12.5",
            "anomalyThresholdMatch": " ALL ",
            "anomalyServiceMonitor": "false",
            "anomalyMonitorArns": (
                '["arn:aws:ce::123456789012:anomalymonitor/abc-1", "arn:aws:ce::123456789012:anomalymonitor/abc-1"]'
            ),
            "anomalyLinkedAccounts": " 111111111111 , 022222222222",
            "anomalyTag": " team = data, ml ",
            "anomalyCostCategory": "Product=search",
        }
    )

    assert config.anomaly_min_impact == "25.5"
    assert config.anomaly_realert_growth == "10"
    assert config.anomaly_threshold_absolute is None
    assert config.anomaly_threshold_percent == "12.5"
    assert config.anomaly_threshold_match == "all"
    assert config.anomaly_service_monitor is False
    assert config.anomaly_monitor_arns == ("arn:aws:ce::123456789012:anomalymonitor/abc-1",)
    assert config.anomaly_linked_accounts == ("111111111111", "022222222222")
    assert config.anomaly_tag == CostFilter(key="team", values=("data", "ml"))
    assert config.anomaly_cost_category == CostFilter(key="Product", values=("search",))


@pytest.mark.parametrize(
    "raw",
    [
        ["111111111111", "222222222222"],
        '["111111111111", "222222222222"]',
        "111111111111,222222222222",
    ],
)
def test_lists_are_accepted_as_json_arrays_json_strings_or_comma_separated(raw: object) -> None:
    config = FinOpsGuardConfig.from_context({"anomalyLinkedAccounts": raw})

    assert config.anomaly_linked_accounts == ("111111111111", "222222222222")


@pytest.mark.parametrize("raw", [[], "", "null", "[]"])
def test_empty_lists_in_any_form_mean_none(raw: object) -> None:
    assert FinOpsGuardConfig.from_context({"anomalyMonitorArns": raw}).anomaly_monitor_arns == ()


def test_numeric_anomaly_thresholds_from_cdk_json_are_kept_as_decimal_strings() -> None:
    config = FinOpsGuardConfig.from_context({"anomalyThresholdAbsolute": 250, "anomalyThresholdPercent": 12.5})

    assert (config.anomaly_threshold_absolute, config.anomaly_threshold_percent) == ("250", "12.5")


def test_anomaly_subscription_without_any_threshold_is_rejected() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^Invalid context 'anomalyThresholdAbsolute': 'null' and anomalyThresholdPercent are both unset; "
            r"set at least one alert threshold$"
        ),
    ):
        FinOpsGuardConfig.from_context({"anomalyThresholdAbsolute": "null"})


def test_no_anomaly_monitor_at_all_is_rejected_naming_the_service_monitor_key() -> None:
    with pytest.raises(
        ConfigError, match=r"^Invalid context 'anomalyServiceMonitor': 'false' leaves no anomaly monitor"
    ):
        FinOpsGuardConfig.from_context({"anomalyServiceMonitor": "false"})


@pytest.mark.parametrize(
    "other",
    [
        {"anomalyMonitorArns": "arn:aws:ce::123456789012:anomalymonitor/abc"},
        {"anomalyLinkedAccounts": "111111111111"},
        {"anomalyTag": "team=data"},
        {"anomalyCostCategory": "Product=search"},
    ],
)
def test_any_other_monitor_lets_the_service_monitor_be_switched_off(other: dict[str, str]) -> None:
    config = FinOpsGuardConfig.from_context({"anomalyServiceMonitor": False, **other})

    assert config.anomaly_service_monitor is False


def test_linked_account_list_message_names_the_offending_item() -> None:
    with pytest.raises(ConfigError, match=r"holds '12345', not a quoted 12-digit AWS account id$"):
        FinOpsGuardConfig.from_context({"anomalyLinkedAccounts": "111111111111,12345"})


def test_invalid_context_fails_before_any_construct_is_created() -> None:
    app = App(context={**cdk_json_context(), "currency": "XXQ"})

    with pytest.raises(ConfigError, match="'currency': 'XXQ'"):
        create_stacks(app)

    assert app.node.children == []


def test_cdk_cli_synth_with_unknown_time_zone_fails_naming_the_key(tmp_path) -> None:
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.skip("node_modules/.bin/cdk is missing: run `make node` (npm install) first")
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not on PATH")
    env = {
        **os.environ,
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "AWS_CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }

    result = subprocess.run(
        [npx, "cdk", "synth", "--quiet", "-c", "timezone=Mars/Olympus", "-o", str(tmp_path / "cdk.out")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Invalid context 'timezone': 'Mars/Olympus' is not an IANA time zone" in output


# --- billing operations -----------------------------------------------------------------------


def test_billing_ops_settings_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {
            "dunningSenderEmail": "billing@example.com",
            "dunningSchedule": " rate(15  minutes) ",
            "reconciliationSchedule": "cron(0 5 * * ? *)",
            "billingExportSchedule": "cron(0 7 ? * FRI *)",
            "reconciliationVariancePercent": "0.25",
            "billingPortalReturnUrl": "https://billing.example.com/account?from=portal",
            "invoiceDaysUntilDue": "0",
            "stripeApiBase": "http://127.0.0.1:12111",
        }
    )

    assert config.dunning_sender_email == "billing@example.com"
    assert config.dunning_schedule == "rate(15 minutes)"
    assert config.reconciliation_schedule == "cron(0 5 * * ? *)"
    assert config.billing_export_schedule == "cron(0 7 ? * FRI *)"
    assert config.reconciliation_variance_percent == "0.25"
    assert config.billing_portal_return_url == "https://billing.example.com/account?from=portal"
    assert config.invoice_days_until_due == 0
    assert config.stripe_api_base == "http://127.0.0.1:12111"


@pytest.mark.parametrize(("raw", "expected"), [(100, "100"), ("100", "100"), (0.5, "0.5"), ("1", "1")])
def test_variance_percent_is_kept_as_a_decimal_string_up_to_100(raw: object, expected: str) -> None:
    assert FinOpsGuardConfig.from_context({"reconciliationVariancePercent": raw}).reconciliation_variance_percent == (
        expected
    )


@pytest.mark.parametrize("key", ["dunningSenderEmail", "dunningTemplates", "billingPortalReturnUrl", "stripeApiBase"])
@pytest.mark.parametrize("raw", [None, "null", ""])
def test_optional_billing_ops_settings_accept_null(key: str, raw: object) -> None:
    config = FinOpsGuardConfig.from_context({key: raw})

    assert (
        config.dunning_sender_email,
        config.dunning_templates,
        config.billing_portal_return_url,
        config.stripe_api_base,
    ) == (None, (), None, None)
    assert config.dunning_templates_json is None


@pytest.mark.parametrize("stripe_api_base", ["https://stripe-mock.internal:12112", "http://localhost:12111/v1"])
def test_stripe_api_base_takes_http_and_https(stripe_api_base: str) -> None:
    assert FinOpsGuardConfig.from_context({"stripeApiBase": stripe_api_base}).stripe_api_base == stripe_api_base


TEMPLATES = {
    "email": {
        "subject": "Invoice {invoice_number} is unpaid",
        "body": "Hi {customer_name}, {amount} was due {due_date}.",
    },
    "sms": {"body": "Day {day}: pay {amount} at {pay_link}"},
    "3:email": {"subject": "Reminder", "body": "Pay at {pay_link}"},
}


@pytest.mark.parametrize("raw", [TEMPLATES, json.dumps(TEMPLATES)])
def test_dunning_templates_from_cdk_json_or_cli_become_typed_templates(raw: object) -> None:
    config = FinOpsGuardConfig.from_context({"dunningTemplates": raw})

    assert config.dunning_templates == (
        DunningTemplate(key="3:email", subject="Reminder", body="Pay at {pay_link}"),
        DunningTemplate(
            key="email",
            subject="Invoice {invoice_number} is unpaid",
            body="Hi {customer_name}, {amount} was due {due_date}.",
        ),
        DunningTemplate(key="sms", body="Day {day}: pay {amount} at {pay_link}"),
    )
    assert json.loads(config.dunning_templates_json or "") == TEMPLATES


def test_dunning_template_with_an_unknown_placeholder_names_the_key_and_the_placeholder() -> None:
    raw = {"email": {"subject": "Invoice {invoice_no}", "body": "b"}}

    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({"dunningTemplates": raw})

    assert raised.value.key == "dunningTemplates"
    assert str(raised.value) == (
        f"Invalid context 'dunningTemplates': {raw!r} holds the unknown placeholder {{invoice_no}} in the subject "
        "of 'email'; allowed: {customer_name}, {amount}, {invoice_number}, {pay_link}, {due_date}, {day}"
    )


def test_dunning_template_for_a_step_that_does_not_exist_names_the_steps() -> None:
    with pytest.raises(
        ConfigError, match=r"holds '5:sms', which is no step of dunningSteps \(0:email, 1:sms, 3:email\)$"
    ):
        FinOpsGuardConfig.from_context({"dunningTemplates": {"5:sms": {"body": "pay"}}})


def test_dunning_template_steps_follow_the_configured_dunning_steps() -> None:
    config = FinOpsGuardConfig.from_context(
        {"dunningSteps": "0:email,5:sms", "dunningTemplates": {"5:sms": {"body": "pay {amount}"}}}
    )

    assert config.dunning_templates == (DunningTemplate(key="5:sms", body="pay {amount}"),)


def test_sms_template_of_exactly_320_characters_is_accepted_and_one_more_is_not() -> None:
    body = "{amount}" + "x" * 312

    assert (
        FinOpsGuardConfig.from_context({"dunningTemplates": {"sms": {"body": body}}}).dunning_templates[0].body == body
    )
    with pytest.raises(ConfigError, match=r"holds an SMS body for 'sms' of 321 characters; the limit is 320$"):
        FinOpsGuardConfig.from_context({"dunningTemplates": {"sms": {"body": body + "x"}}})


def test_every_allowed_placeholder_is_accepted() -> None:
    body = " ".join(f"{{{name}}}" for name in DUNNING_PLACEHOLDERS)

    config = FinOpsGuardConfig.from_context({"dunningTemplates": {"email": {"subject": body, "body": body}}})

    assert config.dunning_templates == (DunningTemplate(key="email", subject=body, body=body),)
    assert DUNNING_PLACEHOLDERS == ("customer_name", "amount", "invoice_number", "pay_link", "due_date", "day")


# --- ops alarm subscribers --------------------------------------------------------------------


PAGERDUTY = "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"
OPSGENIE = "https://api.opsgenie.com/v1/json/amazonsns?apiKey=0a1b2c3d"


@pytest.mark.parametrize(
    "raw",
    [
        [PAGERDUTY, OPSGENIE],
        json.dumps([PAGERDUTY, OPSGENIE]),
        f" {PAGERDUTY} , {OPSGENIE}",
        [PAGERDUTY, OPSGENIE, PAGERDUTY],
    ],
)
def test_ops_https_endpoints_from_cdk_json_or_cli_keep_their_order_once_each(raw: object) -> None:
    config = FinOpsGuardConfig.from_context({"opsAlarmHttpsEndpoints": raw})

    assert config.ops_alarm_https_endpoints == (PAGERDUTY, OPSGENIE)


@pytest.mark.parametrize("raw", [[], "[]", "", "null", None])
def test_no_ops_https_endpoints_in_any_form_means_none(raw: object) -> None:
    assert FinOpsGuardConfig.from_context({"opsAlarmHttpsEndpoints": raw}).ops_alarm_https_endpoints == ()


def test_ten_ops_https_endpoints_are_accepted_and_eleven_are_not() -> None:
    urls = [f"https://paging.example.com/hook/{n}" for n in range(11)]

    assert len(FinOpsGuardConfig.from_context({"opsAlarmHttpsEndpoints": urls[:10]}).ops_alarm_https_endpoints) == 10
    with pytest.raises(
        ConfigError, match=r"^Invalid context 'opsAlarmHttpsEndpoints': .* lists 11 endpoints; at most 10 are allowed$"
    ):
        FinOpsGuardConfig.from_context({"opsAlarmHttpsEndpoints": urls})


def test_plain_http_ops_endpoint_is_rejected_naming_the_key_and_the_url() -> None:
    raw = [PAGERDUTY, "http://paging.example.com/hook"]

    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({"opsAlarmHttpsEndpoints": raw})

    assert raised.value.key == "opsAlarmHttpsEndpoints"
    assert str(raised.value) == (
        f"Invalid context 'opsAlarmHttpsEndpoints': {raw!r} holds 'http://paging.example.com/hook', not an "
        "absolute https:// URL (alarms leave over TLS only)"
    )


# --- attribution and chargeback ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        ["tag:CostCenter", "tag:Team", "costCategory:Project"],
        '["tag:CostCenter", "tag:Team", "costCategory:Project"]',
        " tag:CostCenter , tag:Team,costCategory:Project",
        ["tag:CostCenter", "tag:Team", "tag:CostCenter", "costCategory:Project"],
    ],
)
def test_attribution_dimensions_from_cdk_json_or_cli_keep_their_order_once_each(raw: object) -> None:
    config = FinOpsGuardConfig.from_context({"attributionDimensions": raw})

    assert config.attribution_dimensions == ("tag:CostCenter", "tag:Team", "costCategory:Project")
    assert config.attribution_dimensions_text == "tag:CostCenter,tag:Team,costCategory:Project"


@pytest.mark.parametrize(
    "spec",
    ["tag:Team", "tag:cost-center", "tag:aws:createdBy", "tag:Team Name", "tag:a.b/c=d+e-f@g", "tag:" + "k" * 128,
     "costCategory:Project", "tag:Team|Lead", "tag:", "Team", "tags:Team", "tag:" + "k" * 129, "tag:Team,Lead"],
)  # fmt: skip
def test_attribution_dimensions_accept_exactly_what_the_functions_parse(spec: str) -> None:
    from finops_guard.costs.teams import TeamConfigError, parse_dimension

    try:
        parse_dimension(spec)
        parsed = True
    except TeamConfigError:
        parsed = False
    try:
        FinOpsGuardConfig.from_context({"attributionDimensions": [spec]})
        accepted = True
    except ConfigError:
        accepted = False

    assert accepted is parsed


def test_cost_category_name_longer_than_cost_explorer_allows_is_rejected_naming_the_dimension() -> None:
    spec = "costCategory:" + "c" * 51

    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({"attributionDimensions": ["tag:Team", spec]})

    assert raised.value.key == "attributionDimensions"
    assert f"holds {spec!r}, not tag:<tag key> or costCategory:<cost category name>" in str(raised.value)
    assert "a cost category name of at most 50 characters" in str(raised.value)


def test_four_attribution_dimensions_are_rejected_stating_the_limit() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^Invalid context 'attributionDimensions': 'tag:A,tag:B,tag:C,tag:D' lists 4 dimensions; give 1 to 3 "
            r"\(each is one more Cost Explorer request per weekly report and chargeback run\)"
        ),
    ):
        FinOpsGuardConfig.from_context({"attributionDimensions": "tag:A,tag:B,tag:C,tag:D"})


def test_team_dimension_defaults_to_the_first_attribution_dimension() -> None:
    config = FinOpsGuardConfig.from_context({"attributionDimensions": "costCategory:Project,tag:Team"})

    assert config.team_dimension == "costCategory:Project"


@pytest.mark.parametrize("raw", ["", "  ", "null", "None"])
def test_empty_or_null_team_dimension_switches_team_routing_off(raw: str) -> None:
    assert FinOpsGuardConfig.from_context({"teamDimension": raw}).team_dimension is None


def test_team_dimension_may_be_any_attribution_dimension() -> None:
    config = FinOpsGuardConfig.from_context({"teamDimension": " tag:CostCenter "})

    assert config.team_dimension == "tag:CostCenter"


def test_team_dimension_outside_the_attribution_dimensions_is_rejected_listing_them() -> None:
    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({"teamDimension": "tag:Project"})

    assert raised.value.key == "teamDimension"
    assert str(raised.value) == (
        "Invalid context 'teamDimension': 'tag:Project' must be one of attributionDimensions (tag:Team, "
        'tag:CostCenter), or "" or "null" to switch team routing off'
    )


def test_team_dimension_is_checked_against_the_configured_dimensions_not_the_defaults() -> None:
    with pytest.raises(ConfigError) as raised:
        FinOpsGuardConfig.from_context({"attributionDimensions": "tag:Project", "teamDimension": "tag:Team"})

    assert raised.value.key == "teamDimension"


def test_chargeback_settings_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {
            "chargebackUnallocated": " Separate ",
            "chargebackSchedule": " cron(0 6  1 * ? *) ",
            "chargebackLinkExpiryMinutes": "720",
        }
    )

    assert config.chargeback_unallocated == "separate"
    assert config.chargeback_schedule == "cron(0 6 1 * ? *)"
    assert config.chargeback_link_expiry_minutes == 720


@pytest.mark.parametrize(("raw", "minutes"), [(1, 1), ("1", 1), (720, 720)])
def test_chargeback_link_expiry_takes_one_minute_to_twelve_hours(raw: object, minutes: int) -> None:
    assert FinOpsGuardConfig.from_context({"chargebackLinkExpiryMinutes": raw}).chargeback_link_expiry_minutes == (
        minutes
    )


def test_unknown_unallocated_rule_message_states_both_rules() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^Invalid context 'chargebackUnallocated': 'evenly' must be 'proportional' \(untagged spend shared out "
            r"by each team's share of tagged spend\) or 'separate' \(kept as its own unallocated line\)$"
        ),
    ):
        FinOpsGuardConfig.from_context({"chargebackUnallocated": "evenly"})


# --- savings opportunities --------------------------------------------------------------------


def test_savings_sources_are_opt_in_and_refresh_daily_at_half_past_five() -> None:
    config = FinOpsGuardConfig.from_context({})

    assert (config.savings_recommendations, config.savings_plans_kpi) == (False, False)
    assert config.savings_schedule == "cron(30 5 * * ? *)"


def test_savings_settings_from_cli_strings() -> None:
    config = FinOpsGuardConfig.from_context(
        {"savingsRecommendations": " TRUE ", "savingsPlansKpi": "yes", "savingsSchedule": " rate(1  day) "}
    )

    assert (config.savings_recommendations, config.savings_plans_kpi) == (True, True)
    assert config.savings_schedule == "rate(1 day)"


def test_savings_switches_are_independent() -> None:
    config = FinOpsGuardConfig.from_context({"savingsRecommendations": "false", "savingsPlansKpi": True})

    assert (config.savings_recommendations, config.savings_plans_kpi) == (False, True)


def test_invalid_savings_schedule_fails_synth_before_any_construct_naming_the_key() -> None:
    app = App(context={**cdk_json_context(), "savingsRecommendations": "true", "savingsSchedule": "every day"})

    with pytest.raises(ConfigError, match=r"^Invalid context 'savingsSchedule': 'every day' is not an EventBridge"):
        create_stacks(app)

    assert app.node.children == []


# --- dashboards -------------------------------------------------------------------------------


def test_dashboards_are_opt_in() -> None:
    # $3 a month each beyond an account's first three: a FinOps tool does not add them unasked.
    assert FinOpsGuardConfig.from_context({}).dashboard is False
    assert cdk_json_context()["dashboard"] is False


@pytest.mark.parametrize(("raw", "expected"), [("true", True), (" YES ", True), (True, True), ("false", False)])
def test_dashboard_switch_from_cli_strings(raw: object, expected: bool) -> None:
    assert FinOpsGuardConfig.from_context({"dashboard": raw}).dashboard is expected


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("montlyBudget", "did you mean 'monthlyBudget'?"),
        ("timeZone", "did you mean 'timezone'?"),
        ("reportChannel", "see README, Context keys"),
    ],
)
def test_a_context_key_finops_guard_does_not_read_is_refused_with_a_suggestion(key: str, hint: str) -> None:
    app = App(context={**cdk_json_context(), key: "100", "aws:cdk:bundling-stacks": []})

    with pytest.raises(ConfigError, match=f"Invalid context '{key}': '100' is set, but") as error:
        create_stacks(app)

    assert hint in str(error.value)


def test_cdks_own_context_keys_are_not_mistaken_for_typos() -> None:
    keys = ["@aws-cdk/core:target-partitions", "aws:cdk:bundling-stacks", "acknowledged-issue-numbers",
            "availability-zones:account=111111111111:region=us-east-1", "cli-telemetry"]  # fmt: skip

    assert unknown_keys(keys) == []
    assert unknown_keys([*DEFAULTS, "montlyBudget"]) == ["montlyBudget"]
