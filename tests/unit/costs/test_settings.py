from decimal import Decimal

import pytest
from finops_guard.core.adapters.secrets import validate_webhook_url
from finops_guard.core.delivery import ChatConfigError
from finops_guard.core.settings import SettingsError
from finops_guard.costs.settings import ReportSettings


def test_defaults_need_no_environment():
    config = ReportSettings.from_env({})
    assert (config.stage, config.timezone, config.currency, config.top_n) == ("dev", "UTC", "USD", 5)
    assert config.monthly_budget is None and not config.use_mock_data


def test_values_are_parsed_and_normalised():
    config = ReportSettings.from_env(
        {
            "FINOPSGUARD_TIMEZONE": "Europe/Madrid",
            "FINOPSGUARD_CURRENCY": "eur",
            "FINOPSGUARD_TOP_N": "3",
            "FINOPSGUARD_MONTHLY_BUDGET": "12500.50",
            "FINOPSGUARD_USE_MOCK_DATA": "TRUE",
        }
    )
    assert config.currency == "EUR" and config.top_n == 3 and config.monthly_budget == Decimal("12500.50")
    assert config.use_mock_data


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FINOPSGUARD_TIMEZONE", "Mars/Olympus"),
        ("FINOPSGUARD_CURRENCY", "dollars"),
        ("FINOPSGUARD_TOP_N", "0"),
        ("FINOPSGUARD_TOP_N", "five"),
        ("FINOPSGUARD_MONTHLY_BUDGET", "-1"),
        ("FINOPSGUARD_MONTHLY_BUDGET", "lots"),
        ("FINOPSGUARD_MONTHLY_BUDGET", "Infinity"),
    ],
)
def test_invalid_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        ReportSettings.from_env({name: value})


def test_unconfigured_channel_is_a_clear_error():
    with pytest.raises(SettingsError, match="slack"):
        ReportSettings.from_env({}).secret_for("slack")


@pytest.mark.parametrize(
    "url", ["https://prod-12.westeurope.logic.azure.com/workflows/abc", "http://127.0.0.1:8080/hook"]
)
def test_https_and_loopback_webhooks_are_accepted(url):
    assert validate_webhook_url(url, secret_name="s", channel="teams") == url


@pytest.mark.parametrize("value", ["R4nd0mPlaceholderValue", "http://example.com/hook", "ftp://x/y", ""])
def test_placeholder_or_insecure_secret_is_refused_without_echoing_it(value):
    with pytest.raises(ChatConfigError) as error:
        validate_webhook_url(value, secret_name="finops-guard/dev/teams-webhook-url", channel="teams")
    assert "put-secret-value --secret-id finops-guard/dev/teams-webhook-url" in str(error.value)
    if value:
        assert value not in str(error.value)
