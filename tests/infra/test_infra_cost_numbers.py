"""Issue 19's context keys: costMetric reaches every function that reads Cost Explorer amounts, the
breakdown only the weekly report, and only an undecided breakdown grants organizations:DescribeOrganization."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Synth, function_of, policy_statements_of_role, role_id_of

from infra.config import DEFAULTS, ConfigError, FinOpsGuardConfig

pytestmark = pytest.mark.infra

READERS = ("weekly-report", "budget-guard", "chargeback")  # and savings-refresh, when enabled (full_synth)
ORGANISATION_CHECK = {
    "Sid": "ReadOrganisationShape",
    "Effect": "Allow",
    "Action": "organizations:DescribeOrganization",
    "Resource": "*",
}


def variables_of(synth: Synth, short_name: str) -> dict[str, Any]:
    return function_of(synth, short_name)[1]["Environment"]["Variables"]


def config(**context: Any) -> FinOpsGuardConfig:
    return FinOpsGuardConfig.from_context(context)


@pytest.mark.parametrize("short_name", READERS)
def test_by_default_every_cost_reader_reads_unblended_cost(default_synth: Synth, short_name: str) -> None:
    assert variables_of(default_synth, short_name)["FINOPSGUARD_COST_METRIC"] == "UnblendedCost"


@pytest.mark.parametrize("short_name", (*READERS, "savings-refresh"))
def test_the_chosen_metric_reaches_every_cost_reader_in_cost_explorers_spelling(
    full_synth: Synth, short_name: str
) -> None:
    assert variables_of(full_synth, short_name)["FINOPSGUARD_COST_METRIC"] == "NetAmortizedCost"


@pytest.mark.parametrize("synth_name", ["default_synth", "full_synth"])
def test_the_anomaly_forwarder_gets_no_metric_it_could_not_use(synth_name: str, request: pytest.FixtureRequest) -> None:
    variables = variables_of(request.getfixturevalue(synth_name), "anomaly-alerts")
    assert "FINOPSGUARD_COST_METRIC" not in variables and "FINOPSGUARD_BREAKDOWN" not in variables


def test_the_chosen_breakdown_reaches_the_weekly_report_only(full_synth: Synth) -> None:
    assert variables_of(full_synth, "weekly-report")["FINOPSGUARD_BREAKDOWN"] == "USAGE_TYPE"
    for short_name in ("budget-guard", "chargeback", "savings-refresh", "anomaly-alerts"):
        assert "FINOPSGUARD_BREAKDOWN" not in variables_of(full_synth, short_name)


def test_an_undecided_breakdown_lets_the_weekly_report_ask_whether_it_reads_an_organisation(
    default_synth: Synth,
) -> None:
    assert "FINOPSGUARD_BREAKDOWN" not in variables_of(default_synth, "weekly-report")
    statements = policy_statements_of_role(default_synth, role_id_of(default_synth, "weekly-report"))
    assert ORGANISATION_CHECK in statements
    for short_name in ("budget-guard", "chargeback", "anomaly-alerts"):
        assert ORGANISATION_CHECK not in policy_statements_of_role(default_synth, role_id_of(default_synth, short_name))


def test_a_chosen_breakdown_grants_no_organizations_action(full_synth: Synth) -> None:
    statements = policy_statements_of_role(full_synth, role_id_of(full_synth, "weekly-report"))
    assert not [s for s in statements if "organizations:" in str(s["Action"])]


@pytest.mark.parametrize(
    ("value", "metric"),
    [
        ("UnblendedCost", "UnblendedCost"),
        ("amortizedcost", "AmortizedCost"),
        (" NetUnblendedCost ", "NetUnblendedCost"),
    ],
)
def test_cost_metric_takes_cost_explorers_names_in_any_case(value: str, metric: str) -> None:
    assert config(costMetric=value).cost_metric == metric


@pytest.mark.parametrize("value", ["Amortised", "BlendedCost", "", "UsageQuantity", 5, None])
def test_an_unknown_cost_metric_stops_synth_naming_the_key_and_the_choices(value: Any) -> None:
    context = {"costMetric": value} if value is not None else {"costMetric": "null"}
    with pytest.raises(ConfigError) as raised:
        config(**context)
    assert raised.value.key == "costMetric"
    assert str(raised.value).startswith("Invalid context 'costMetric': ")
    if isinstance(value, str):
        assert "UnblendedCost, AmortizedCost, NetAmortizedCost, NetUnblendedCost" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "breakdown"),
    [
        (None, None),
        ("null", None),
        ("auto", None),
        ("", None),
        ("region", "REGION"),
        ("INSTANCE_TYPE", "INSTANCE_TYPE"),
    ],
)
def test_breakdown_is_a_dimension_or_undecided(value: Any, breakdown: str | None) -> None:
    context = {} if value is None else {"breakdown": value}
    assert config(**context).breakdown == breakdown


@pytest.mark.parametrize("value", ["COUNTRY", "SERVICE", "tag:Team", 3, True])
def test_an_unknown_breakdown_stops_synth_naming_the_key(value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        config(breakdown=value)
    assert raised.value.key == "breakdown"
    assert str(raised.value).startswith(f"Invalid context 'breakdown': {value!r} ")


def test_the_defaults_are_unblended_and_undecided() -> None:
    assert (DEFAULTS["costMetric"], DEFAULTS["breakdown"]) == ("UnblendedCost", None)
    assert (config().cost_metric, config().breakdown) == ("UnblendedCost", None)
