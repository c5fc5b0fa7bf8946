"""Monthly chargeback: untagged allocation, largest-remainder rounding, CSV, month rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from finops_guard.core.money import largest_remainder, round_to_total
from finops_guard.costs.chargeback import (
    Month,
    MonthCosts,
    build_chargeback,
    chargeback_request,
    month_before,
    month_complete,
    month_costs,
    object_key,
    to_csv,
)
from finops_guard.costs.teams import parse_dimension

TEAM = parse_dimension("tag:Team")
OCTOBER = Month(2026, 10)


def costs(rows: dict[tuple[str, str], str], currency: str = "USD") -> MonthCosts:
    return MonthCosts(TEAM, {k: Decimal(v) for k, v in rows.items()}, currency, estimated=False)


def test_largest_remainder_gives_missing_units_to_largest_fractions_then_earlier_quota():
    assert largest_remainder([Decimal("1.5"), Decimal("1.5"), Decimal("1.0")], 4) == [2, 1, 1]
    assert largest_remainder([Decimal("0.2"), Decimal("0.7"), Decimal("0.1")], 1) == [0, 1, 0]


def test_largest_remainder_refuses_an_unreachable_total():
    with pytest.raises(ValueError, match="cannot reach"):
        largest_remainder([Decimal("1.2")], 5)


def test_thirds_rounded_to_total_keep_every_cent():
    third = Decimal(100) / 3
    rounded = round_to_total([third, third, third], "USD")
    assert sum(rounded) == Decimal("100.00")
    assert sorted(rounded) == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]


def test_rounding_to_total_respects_zero_and_three_decimal_currencies():
    assert sum(round_to_total([Decimal("0.5"), Decimal("0.5"), Decimal("0.5")], "JPY")) == Decimal(2)
    kwd = round_to_total([Decimal("1.0005"), Decimal("1.0005")], "KWD")
    assert sum(kwd) == Decimal("2.001") and all(a.as_tuple().exponent == -3 for a in kwd)


def test_proportional_rule_shares_untagged_cost_by_tagged_spend():
    # web has 300 of 400 tagged (75 %), data 100 (25 %); 40.00 of untagged S3 goes 30.00 / 10.00.
    chargeback = build_chargeback(
        costs({("web", "EC2"): "300", ("data", "EC2"): "100", ("", "S3"): "40"}), OCTOBER, rule="proportional"
    )
    shares = {(line.owner, line.service): line.amount for line in chargeback.lines if line.line == "untagged share"}
    assert shares == {("web", "S3"): Decimal("30.00"), ("data", "S3"): Decimal("10.00")}
    assert chargeback.total == Decimal("440.00")


def test_proportional_shares_sum_exactly_to_the_untagged_amount_of_each_service():
    # Three equal owners and an untagged amount of 1.00: 0.333... each; largest remainder gives one the extra cent.
    rows = {("a", "EC2"): "10", ("b", "EC2"): "10", ("c", "EC2"): "10", ("", "S3"): "1.00", ("", "VPC"): "0.02"}
    chargeback = build_chargeback(costs(rows), OCTOBER, rule="proportional")
    for service, untagged in (("S3", Decimal("1.00")), ("VPC", Decimal("0.02"))):
        shares = [line.amount for line in chargeback.lines if line.service == service]
        assert sum(shares) == untagged
    assert [(line.owner, line.amount) for line in chargeback.lines if line.service == "S3"] == [
        ("a", Decimal("0.34")), ("b", Decimal("0.33")), ("c", Decimal("0.33"))
    ]  # fmt: skip


def test_lines_add_up_to_the_month_total_rounded_once():
    # Sub-cent amounts from Cost Explorer: naive per-line rounding would give 0.00 + 0.00 + 0.00.
    rows = {("a", "S1"): "0.004", ("a", "S2"): "0.004", ("b", "S1"): "0.004", ("", "S3"): "0.0049"}
    chargeback = build_chargeback(costs(rows), OCTOBER, rule="proportional")
    assert chargeback.total == Decimal("0.02")  # 0.0169 rounded once


def test_separate_rule_keeps_untagged_cost_on_unallocated_lines():
    chargeback = build_chargeback(costs({("web", "EC2"): "300", ("", "S3"): "40"}), OCTOBER, rule="separate")
    assert [(line.owner, line.service, line.line, line.amount) for line in chargeback.lines] == [
        ("web", "EC2", "tagged", Decimal("300.00")),
        ("", "S3", "unallocated", Decimal("40.00")),
    ]


def test_without_positive_tagged_spend_untagged_cost_stays_unallocated():
    chargeback = build_chargeback(costs({("web", "EC2"): "-5", ("", "S3"): "40"}), OCTOBER, rule="proportional")
    assert {line.line for line in chargeback.lines if line.service == "S3"} == {"unallocated"}


def test_a_credit_only_owner_carries_no_untagged_cost():
    rows = {("web", "EC2"): "100", ("refunds", "EC2"): "-20", ("", "S3"): "10"}
    chargeback = build_chargeback(costs(rows), OCTOBER, rule="proportional")
    assert [(line.owner, line.amount) for line in chargeback.lines if line.service == "S3"] == [
        ("web", Decimal("10.00"))
    ]


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="proportional, separate"):
        build_chargeback(costs({}), OCTOBER, rule="evenly")


def test_csv_content_is_exact():
    rows = {("web", "Amazon EC2"): "300.004", ("data", "Amazon S3, Glacier"): "100", ("", "AWS Config"): "40"}
    text = to_csv(build_chargeback(costs(rows), OCTOBER, rule="proportional"))
    assert text == (
        "month,dimension,owner,service,line,usage,credits,refunds,tax,net,currency,cost_metric\r\n"
        "2026-10,tag:Team,data,AWS Config,untagged share,10.00,0.00,0.00,0.00,10.00,USD,UnblendedCost\r\n"
        '2026-10,tag:Team,data,"Amazon S3, Glacier",tagged,100.00,0.00,0.00,0.00,100.00,USD,UnblendedCost\r\n'
        "2026-10,tag:Team,web,AWS Config,untagged share,30.00,0.00,0.00,0.00,30.00,USD,UnblendedCost\r\n"
        "2026-10,tag:Team,web,Amazon EC2,tagged,300.00,0.00,0.00,0.00,300.00,USD,UnblendedCost\r\n"
    )


def test_csv_uses_the_currency_minor_units():
    text = to_csv(build_chargeback(costs({("web", "EC2"): "1234.5"}, "JPY"), OCTOBER, rule="separate"))
    assert text.splitlines()[1] == "2026-10,tag:Team,web,EC2,tagged,1234,0,0,0,1234,JPY,UnblendedCost"


def test_month_costs_read_monthly_pages_with_untagged_and_estimated():
    def group(team: str, service: str, amount: str) -> dict:
        return {"Keys": [f"Team${team}", service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}

    period = {"Start": "2026-10-01", "End": "2026-11-01"}
    page = {"ResultsByTime": [{"TimePeriod": period, "Estimated": True,
                               "Groups": [group("web", "EC2", "1.5"), group("", "S3", "2")]}]}  # fmt: skip
    read = month_costs(TEAM, [page])
    assert read.amounts == {("web", "EC2"): Decimal("1.5"), ("", "S3"): Decimal(2)}
    assert read.estimated and read.currency == "USD"


def test_chargeback_request_covers_the_month_with_an_exclusive_end():
    request = chargeback_request(TEAM, Month(2026, 12))
    assert request["TimePeriod"] == {"Start": "2026-12-01", "End": "2027-01-01"}
    assert request["Granularity"] == "MONTHLY"
    assert request["GroupBy"] == [{"Type": "TAG", "Key": "Team"}, {"Type": "DIMENSION", "Key": "SERVICE"}]


@pytest.mark.parametrize(
    ("now", "timezone", "expected"),
    [
        (datetime(2026, 11, 1, 8, 0, tzinfo=UTC), "Europe/Madrid", Month(2026, 10)),
        (datetime(2027, 1, 1, 8, 0, tzinfo=UTC), "UTC", Month(2026, 12)),
        # 20:00 UTC on 30 November is already 1 December in Auckland: the month billed is November.
        (datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "Pacific/Auckland", Month(2026, 11)),
    ],
)
def test_the_month_billed_is_the_one_before_the_local_date(now, timezone, expected):
    assert month_before(now, timezone) == expected


def test_a_month_whose_last_utc_day_has_not_ended_is_not_complete():
    november = Month(2026, 11)
    assert not month_complete(november, datetime(2026, 11, 30, 20, 0, tzinfo=UTC))
    assert month_complete(november, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))


def test_month_parsing_rejects_what_is_not_a_month():
    assert Month.parse("2026-02").end == date(2026, 3, 1)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("2026-13")


def test_object_keys_name_month_and_dimension():
    assert object_key(OCTOBER, TEAM) == "chargeback/2026-10/tag-team.csv"
    assert (
        object_key(OCTOBER, parse_dimension("costCategory:Cost Center"))
        == "chargeback/2026-10/costcategory-cost-center.csv"
    )
