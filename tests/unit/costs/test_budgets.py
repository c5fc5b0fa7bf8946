import json
from decimal import Decimal as D

import pytest
from finops_guard.costs.budgets import BudgetError, load_budget_file, parse_budget, parse_budgets

VALID = {"id": "prod-compute", "amount": "20000", "currency": "USD"}


def budget(**changes):
    return parse_budget({**VALID, **changes})


def test_defaults_are_monthly_teams_both_kinds_and_the_four_seed_thresholds():
    b = budget()
    assert (b.period, b.notify, b.alert_on) == ("monthly", ("teams",), ("actual", "forecasted"))
    assert b.thresholds == (D(50), D(75), D(90), D(100))
    assert b.scope == () and b.describe_scope() == "whole account / organisation"
    assert b.cost_explorer_filter() is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "-5"}, "budget.amount", "greater than zero"),
        ({"amount": 0}, "budget.amount", "greater than zero"),
        ({"amount": "lots"}, "budget.amount", "not a number"),
        ({"currency": "XXQ"}, "budget.currency", "ISO 4217"),
        ({"scope": {"region": ["eu-west-1"]}}, "budget.scope.region", "unknown scope kind 'region'"),
        ({"thresholds": [0, 50]}, "budget.thresholds", "outside 1..1000"),
        ({"thresholds": [50, 1001]}, "budget.thresholds", "outside 1..1000"),
        ({"thresholds": []}, "budget.thresholds", "non-empty"),
        ({"period": "weekly"}, "budget.period", "monthly, quarterly, annual"),
        ({"alert_on": ["maybe"]}, "budget.alert_on", "unknown value 'maybe'"),
        ({"notify": ["pager"]}, "budget.notify", "unknown value 'pager'"),
        ({"scope": {"account": ["12345"]}}, "budget.scope.account", "12-digit"),
        ({"id": "Prod Compute"}, "budget.id", "a-z"),
        ({"colour": "red"}, "budget.colour", "unknown field"),
        ({"enforce_hard_limit": "yes"}, "budget.enforce_hard_limit", "true or false"),
    ],
)
def test_invalid_budgets_are_refused_naming_the_field(changes, field, message):
    with pytest.raises(BudgetError) as error:
        budget(**changes)
    assert error.value.field == field and message in str(error.value)


def test_missing_amount_is_refused():
    with pytest.raises(BudgetError, match="budget.amount: is required"):
        parse_budget({"id": "x", "currency": "USD"})


def test_file_errors_point_at_the_budget_by_index():
    with pytest.raises(BudgetError, match=r"budgets\[1\]\.currency"):
        parse_budgets([VALID, {**VALID, "id": "b", "currency": "EURO"}])


def test_duplicate_ids_are_refused():
    with pytest.raises(BudgetError, match=r"budgets\[1\]\.id: 'prod-compute' appears twice"):
        parse_budgets([VALID, VALID])


def test_scope_kinds_combine_with_and_values_with_or():
    b = budget(
        scope={
            "account": ["111111111111", "222222222222"],
            "service": "Amazon Simple Storage Service",
            "tag": {"team": ["web", "data"]},
        }
    )
    assert b.cost_explorer_filter() == {
        "And": [
            {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111111111111", "222222222222"]}},
            {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Simple Storage Service"]}},
            {"Tags": {"Key": "team", "Values": ["data", "web"], "MatchOptions": ["EQUALS"]}},
        ]
    }


def test_cost_category_scope_uses_cost_categories_expression():
    b = budget(scope={"cost_category": ["Environment=prod"]})
    assert b.cost_explorer_filter() == {
        "CostCategories": {"Key": "Environment", "Values": ["prod"], "MatchOptions": ["EQUALS"]}
    }
    assert b.describe_scope() == "cost category Environment=prod"


def test_equal_budgets_have_one_canonical_document_whatever_the_spelling():
    a = budget(amount=20000.0, thresholds=[100, 50.0, "75", 90])
    b = budget(amount="20000", thresholds=["50", "75", "90", "100"])
    assert a.canonical_json() == b.canonical_json()
    assert parse_budget(json.loads(a.canonical_json())) == a


def test_float_amounts_are_read_as_their_decimal_text():
    assert budget(amount=0.1).amount == D("0.1")


def test_yaml_and_json_files_load_the_same_budgets():
    yaml_text = """
budgets:
  - id: web
    amount: 1500.50
    currency: EUR
    period: quarterly
    scope:
      tag: {team: [web]}
    notify: [teams, email]
"""
    json_text = json.dumps(
        [{"id": "web", "amount": "1500.50", "currency": "EUR", "period": "quarterly",
          "scope": {"tag": {"team": ["web"]}}, "notify": ["teams", "email"]}]
    )  # fmt: skip
    assert load_budget_file(yaml_text, "b.yaml") == load_budget_file(json_text, "b.json")
    assert load_budget_file(yaml_text, "b.yml")[0].amount == D("1500.5")


def test_a_file_without_a_list_is_refused():
    with pytest.raises(BudgetError, match="expected a list of budgets"):
        load_budget_file('{"budget": {}}', "x.json")
