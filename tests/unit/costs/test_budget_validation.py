"""Budget files are refused, all or nothing, with one line naming the budget and the field (issue 17)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from finops_guard.costs.budgets import MAX_AMOUNT, BudgetError, load_budget_file, parse_budget, parse_budgets
from finops_guard.costs.mock_data import SERVICES
from finops_guard.costs.service_names import ALIASES, KNOWN_SERVICES, cost_explorer_name_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_event

VALID = {"id": "prod-compute", "amount": "20000", "currency": "USD"}


def budget(**changes):
    return parse_budget({**VALID, **changes})


def refusal(**changes) -> BudgetError:
    with pytest.raises(BudgetError) as error:
        budget(**changes)
    return error.value


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["1e400", "1E3", "2.5e+3", "NaN", "Infinity", "-inf", "sNaN", "1,500", "0x10", D("1E+3")]
)
def test_amounts_that_are_not_plain_decimals_are_refused(amount):
    error = refusal(amount=amount)
    assert error.field == "budget.amount"
    assert "not a plain decimal number" in str(error) or "not a number" in str(error)


@pytest.mark.parametrize("amount", [float("inf"), float("nan"), 1e16])
def test_float_amounts_that_are_not_finite_or_print_with_an_exponent_are_refused(amount):
    assert refusal(amount=amount).field == "budget.amount"


def test_amounts_of_ten_to_the_twelve_or_more_are_refused_and_just_below_is_accepted():
    assert "below 1,000,000,000,000 (10^12)" in str(refusal(amount=str(MAX_AMOUNT)))
    assert "too large" in str(refusal(amount=10**5000))
    assert budget(amount="999999999999.99").amount == D("999999999999.99")


@pytest.mark.parametrize(
    ("currency", "accepted", "refused", "says"),
    [
        ("USD", "100.05", "100.005", "USD amounts take at most 2 decimal places"),
        ("JPY", "100", "100.5", "JPY amounts take whole numbers"),
        ("KWD", "100.005", "100.0005", "KWD amounts take at most 3 decimal places"),
    ],
)
def test_amounts_finer_than_the_currency_minor_unit_are_refused(currency, accepted, refused, says):
    assert budget(currency=currency, amount=accepted).amount == D(accepted)
    error = refusal(currency=currency, amount=refused)
    assert error.field == "budget.amount" and says in str(error)


def test_trailing_zeros_do_not_count_as_decimal_places():
    assert budget(currency="JPY", amount="1500.00").amount == D(1500)


# --- currency --------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", [None, ""])
def test_a_missing_currency_says_which_field_and_what_to_write(currency):
    document = {"id": "a", "amount": "10"} if currency is None else {"id": "a", "amount": "10", "currency": ""}
    with pytest.raises(BudgetError) as error:
        parse_budget(document)
    assert str(error.value) == (
        "budget.currency: is required; write the ISO 4217 code of the amount, such as USD, EUR or JPY"
    )
    assert "None" not in str(error.value)


def test_an_unknown_currency_says_what_to_write():
    assert "'EURO' is not an ISO 4217 currency code; write three letters" in str(refusal(currency="EURO"))


# --- service names ---------------------------------------------------------------------------


def test_a_service_alias_is_refused_with_the_cost_explorer_name():
    error = refusal(scope={"service": ["Amazon EC2"]})
    assert str(error) == (
        "budget.scope.service: 'Amazon EC2' is not a Cost Explorer service name; "
        "did you mean 'Amazon Elastic Compute Cloud - Compute'?"
    )


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("Amazon S3", "Amazon Simple Storage Service"),
        ("CloudWatch", "AmazonCloudWatch"),
        ("Amazon EBS", "EC2 - Other"),
        ("amazon simple storage service", "Amazon Simple Storage Service"),  # Cost Explorer is case-sensitive
    ],
)
def test_other_aliases_and_other_capitals_name_the_service_to_write(written, meant):
    assert f"did you mean {meant!r}" in str(refusal(scope={"service": [written]}))


def test_an_unknown_service_name_is_accepted_with_a_warning_naming_the_budget_and_field():
    warnings: list[str] = []
    b = parse_budget({**VALID, "scope": {"service": ["Amazon Brand New Service"]}}, "budgets[3]", warn=warnings.append)
    assert b.scope[0].values == ("Amazon Brand New Service",)
    assert len(warnings) == 1 and warnings[0].startswith("budgets[3].scope.service: 'Amazon Brand New Service'")
    assert "\n" not in warnings[0]


def test_a_misspelt_service_warning_suggests_the_closest_known_name():
    warnings: list[str] = []
    parse_budget({**VALID, "scope": {"service": ["Amazon Simple Storage Servise"]}}, warn=warnings.append)
    assert "did you mean 'Amazon Simple Storage Service'?" in warnings[0]


def test_known_service_names_pass_without_a_warning():
    warnings: list[str] = []
    parse_budget({**VALID, "scope": {"service": sorted(KNOWN_SERVICES)}}, warn=warnings.append)
    assert warnings == []


def test_every_service_the_demo_and_the_sample_events_use_is_known():
    page = load_event("ce_get_cost_and_usage_page.json")
    sampled = {group["Keys"][0] for result in page["ResultsByTime"] for group in result["Groups"]}
    assert {name for name, _ in SERVICES} | sampled <= KNOWN_SERVICES


def test_no_alias_is_itself_a_known_name_and_every_alias_points_at_one():
    assert not set(ALIASES) & KNOWN_SERVICES
    assert set(ALIASES.values()) <= KNOWN_SERVICES
    assert all(cost_explorer_name_for(name) is None for name in KNOWN_SERVICES)


# --- repeated keys ---------------------------------------------------------------------------


def test_a_repeated_yaml_key_is_refused_naming_the_budget_the_key_and_both_lines():
    text = "budgets:\n  - id: a\n    currency: USD\n  - id: b\n    amount: 100\n    currency: USD\n    amount: 200\n"
    with pytest.raises(BudgetError) as error:
        load_budget_file(text, "budgets.yaml")
    assert error.value.field == "budgets[1].amount"
    assert "appears twice in one mapping (lines 5 and 7)" in str(error.value)


def test_a_repeated_key_in_a_yaml_flow_mapping_is_refused():
    with pytest.raises(BudgetError, match=r"budgets\[0\]\.amount: appears twice .*both on line 1"):
        load_budget_file("[{id: a, amount: 1, currency: USD, amount: 2}]", "b.yml")


def test_a_yaml_merge_key_may_be_overridden():
    text = "defaults: &d {currency: USD, amount: 5}\nbudgets:\n  - <<: *d\n    id: a\n    amount: 100\n"
    assert load_budget_file(text, "b.yaml")[0].amount == D(100)


def test_a_repeated_json_key_is_refused_naming_the_budget_the_key_and_both_lines():
    text = (
        '{"budgets": [\n {"id": "a", "amount": "1", "currency": "USD"},\n {"id": "b", "amount": "1",\n'
        '  "scope": {"tag": {"team": ["x"], "team": ["y"]}}, "currency": "USD"}]}'
    )
    with pytest.raises(BudgetError) as error:
        load_budget_file(text, "b.json")
    assert error.value.field == "budgets[1].scope.tag.team"
    assert "both on line 4" in str(error.value)


# --- files, all or nothing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "says"),
    [
        ("budgets: [{id: a, amount: !!python/object/apply:os.system [ls]}]", "b.yaml", "b.yaml line 1"),
        ("budgets:\n  - id: a\n   amount: 1\n", "b.yaml", "b.yaml line 3, column 4"),
        ('{"budgets": [', "b.json", "b.json line 1, column 14"),
        ('[{"id": "a", "amount": NaN, "currency": "USD"}]', "b.json", "NaN is not a JSON number"),
        ("[" * 100_000, "b.json", "nested too deep"),
        ("- " * 10_000 + "x", "b.yaml", "nested too deep"),
    ],
)
def test_unreadable_files_are_one_budget_error_of_one_line(text, name, says):
    with pytest.raises(BudgetError) as error:
        load_budget_file(text, name)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_one_invalid_budget_refuses_the_whole_file():
    documents = [VALID, {**VALID, "id": "b", "amount": "1e400"}]
    with pytest.raises(BudgetError, match=r"budgets\[1\]\.amount"):
        load_budget_file(json.dumps({"budgets": documents}), "b.json")


def test_errors_are_one_short_line_whatever_the_value():
    error = refusal(name=["x" * 10_000, {"deep": [[["\n"]]]}])
    assert error.field == "budget.name" and "\n" not in str(error) and len(str(error)) < 200


# --- property: nothing but BudgetError -------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=20)
    | st.sampled_from(["USD", "JPY", "KWD", "1e400", "100.005", "Amazon EC2", "prod", "monthly", "1" * 5000])
)
FIELD_NAMES = ["id", "name", "scope", "period", "amount", "currency", "thresholds", "alert_on", "notify", "owner"]
KEYS = st.sampled_from([*FIELD_NAMES, "enforce_hard_limit", "service", "tag", "budgets"]) | st.text(max_size=8)
JSON_LIKE = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6), max_leaves=30
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_LIKE)
def test_no_budget_document_raises_anything_but_budget_error(document):
    for parse in (lambda: parse_budget(document, warn=lambda _: None), lambda: parse_budgets([document, document])):
        try:
            parse()
        except BudgetError as error:
            assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_LIKE, st.sampled_from(["b.yaml", "b.json"]))
def test_no_budget_file_raises_anything_but_budget_error(document, name):
    text = json.dumps(document, default=str)  # JSON is YAML too, nearly: both readers get odd input
    try:
        load_budget_file(text, name)
    except BudgetError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["b.yaml", "b.json"]))
def test_no_text_raises_anything_but_budget_error(text, name):
    try:
        load_budget_file(text, name)
    except BudgetError as error:
        assert "\n" not in str(error)
