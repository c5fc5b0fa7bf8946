"""Issue 19 in pure logic: the cost metric, credits/refunds/tax kept apart, the chosen breakdown, budget
bases, chargeback columns, and the emulated Cost Explorer that answers them (finops_guard.costs.mock_data)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from botocore.exceptions import ClientError
from finops_guard.core.periods import report_window
from finops_guard.core.settings import SettingsError
from finops_guard.costs.adapters.account_view import reads_organisation
from finops_guard.costs.aggregate import CostDataError, aggregate_pages
from finops_guard.costs.breakdown import Breakdown, default_breakdown, main_request, parse_breakdown
from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
from finops_guard.costs.budget_guard import evaluate
from finops_guard.costs.budgets import BudgetError, parse_budget
from finops_guard.costs.cards import charges as charge_cards
from finops_guard.costs.cards.budget_alert import facts as alert_facts
from finops_guard.costs.cards.chargeback import render_chargeback
from finops_guard.costs.chargeback import KINDS, Month, MonthCosts, build_chargeback, month_costs, to_csv
from finops_guard.costs.cost_metric import CostMetric, metric_amount, parse_metric
from finops_guard.costs.mock_data import (
    EC2,
    INSTANCE_TYPES,
    NET_DISCOUNT,
    REGIONS,
    SAVINGS_PLAN_SERVICE,
    Extras,
    SavingsPlan,
    synthetic_query_pages,
)
from finops_guard.costs.record_types import (
    CHARGE_KINDS,
    Charges,
    charge_amounts,
    charges_request,
    usage_only,
)
from finops_guard.costs.savings import daily_series
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import parse_dimension
from finops_guard.costs.weekly_report import compose
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 16, 7, tzinfo=UTC)
WINDOW = report_window(NOW)
AS_OF = WINDOW.as_of
TEAM = parse_dimension("tag:Team")
USAGE_ONLY = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund", "Tax"]}}}


class Emulated:
    """The emulated Cost Explorer as a cost source: answers every request, counts and keeps them."""

    def __init__(self, extras: Extras | None = None, accounts: dict[str, str] | None = None) -> None:
        self.extras, self.accounts = extras or Extras(), accounts
        self.requests = 0
        self.asked: list[dict[str, Any]] = []

    def query(self, request: dict[str, Any]):
        self.asked.append(request)
        for page in synthetic_query_pages(request, extras=self.extras, accounts=self.accounts):
            self.requests += 1
            yield page


def report_settings(**env: str) -> ReportSettings:
    return ReportSettings.from_env({"FINOPSGUARD_STAGE": "test", **{f"FINOPSGUARD_{k}": v for k, v in env.items()}})


# --- the metric -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "label"),
    [
        ("UnblendedCost", CostMetric.UNBLENDED, "unblended"),
        ("amortizedcost", CostMetric.AMORTIZED, "amortized"),
        (" NetAmortizedCost ", CostMetric.NET_AMORTIZED, "net amortized"),
        ("NETUNBLENDEDCOST", CostMetric.NET_UNBLENDED, "net unblended"),
    ],
)
def test_a_metric_is_read_in_any_case_and_named_in_words(text, metric, label):
    assert parse_metric(text) is metric and metric.label == label


@pytest.mark.parametrize("text", ["BlendedCost", "UsageQuantity", "amortised", ""])
def test_an_unknown_metric_is_refused_with_the_four_choices(text):
    with pytest.raises(ValueError, match="UnblendedCost, AmortizedCost, NetAmortizedCost, NetUnblendedCost"):
        parse_metric(text)


def test_the_settings_carry_the_metric_and_refuse_a_wrong_one_naming_the_variable():
    assert report_settings().cost_metric is CostMetric.UNBLENDED
    assert report_settings(COST_METRIC="AmortizedCost").cost_metric is CostMetric.AMORTIZED
    with pytest.raises(SettingsError, match="FINOPSGUARD_COST_METRIC: 'Blended' is not a cost metric"):
        report_settings(COST_METRIC="Blended")
    with pytest.raises(SettingsError, match="FINOPSGUARD_BREAKDOWN: 'COUNTRY' is not a breakdown"):
        report_settings(BREAKDOWN="COUNTRY")


def test_an_answer_in_another_metric_than_asked_is_refused_not_read_as_zero():
    assert metric_amount({"AmortizedCost": {"Amount": "1.5", "Unit": "EUR"}}, CostMetric.AMORTIZED) == (D("1.5"), "EUR")
    with pytest.raises(KeyError, match="no AmortizedCost .it has UnblendedCost"):
        metric_amount({"UnblendedCost": {"Amount": "1", "Unit": "USD"}}, CostMetric.AMORTIZED)


# --- record types ---------------------------------------------------------------------------------


def test_usage_only_excludes_credits_refunds_and_tax_inside_any_scope():
    account = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111111111111"]}}
    service = {"Dimensions": {"Key": "SERVICE", "Values": ["AWS Lambda"]}}
    assert usage_only() == USAGE_ONLY
    assert usage_only(account) == {"And": [account, USAGE_ONLY]}
    assert usage_only({"And": [account, service]}) == {"And": [account, service, USAGE_ONLY]}


def test_the_charges_request_is_monthly_by_record_type_for_the_three_kinds_only():
    request = charges_request(
        date(2026, 11, 1), date(2026, 11, 16), CostMetric.AMORTIZED, {"Type": "DIMENSION", "Key": "SERVICE"}
    )
    assert request == {
        "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-16"},
        "Granularity": "MONTHLY",
        "Metrics": ["AmortizedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        "Filter": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund", "Tax"]}},
    }


def test_charge_amounts_keep_the_three_kinds_apart_and_ignore_the_rest():
    def group(kind: str, service: str, amount: str) -> dict:
        return {"Keys": [kind, service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}

    page = {"ResultsByTime": [{"Groups": [group("Credit", "EC2", "-40"), group("Credit", "S3", "-2.5"),
                                          group("Refund", "EC2", "-7"), group("Tax", "Tax", "12"),
                                          group("Usage", "EC2", "999")]}]}  # fmt: skip
    amounts = charge_amounts([page], CostMetric.UNBLENDED)
    assert [amounts.kind_total(k) for k in CHARGE_KINDS] == [D("-42.5"), D("-7"), D("12")]
    assert amounts.kind_total("Credit", "EC2") == D("-40") and amounts.kind_total("Usage") == 0
    assert amounts.charges(D(1000), "USD").net == D("962.5")


def test_charges_in_two_currencies_are_refused():
    pages = [{"ResultsByTime": [{"Groups": [
        {"Keys": ["Credit"], "Metrics": {"UnblendedCost": {"Amount": "-1", "Unit": unit}}} for unit in ("USD", "EUR")
    ]}]}]  # fmt: skip
    with pytest.raises(CostDataError, match="mixed currencies"):
        charge_amounts(pages, CostMetric.UNBLENDED)


def test_by_record_type_the_main_answer_puts_credits_aside_month_to_date_and_never_in_spend():
    request = main_request(WINDOW.query_start, WINDOW.query_end, CostMetric.UNBLENDED, Breakdown.LINKED_ACCOUNT,
                           by_record_type=True)  # fmt: skip
    extras = Extras(refunds=((EC2, "111111111111", 3, D("-100")),), tax_rate=D("0.1"))
    aggregate = aggregate_pages(synthetic_query_pages(request, extras=extras), WINDOW, by_record_type=True)
    usage = aggregate_pages(
        synthetic_query_pages(main_request(WINDOW.query_start, WINDOW.query_end, CostMetric.UNBLENDED,
                                           Breakdown.LINKED_ACCOUNT), extras=extras), WINDOW)  # fmt: skip
    assert aggregate.daily == usage.daily  # the same usage either way
    days = WINDOW.elapsed_days
    assert aggregate.charges["Credit"] == D("-45.00") * days
    assert aggregate.charges["Refund"] == D("-100")
    assert aggregate.charges["Tax"] == (usage.spend(WINDOW.month_to_date.each_day()) * D("0.1"))
    assert not aggregate.services  # they come from the first attribution request


# --- the breakdown --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("organisation", "breakdown"),
    [(True, Breakdown.LINKED_ACCOUNT), (False, Breakdown.REGION), (None, Breakdown.LINKED_ACCOUNT)],
)
def test_the_default_breakdown_is_accounts_for_an_organisation_and_regions_for_one_account(organisation, breakdown):
    assert default_breakdown(organisation) is breakdown


def test_a_breakdown_is_read_in_any_case_and_titles_its_section():
    assert parse_breakdown("usage_type") is Breakdown.USAGE_TYPE
    assert [b.heading for b in Breakdown] == [
        "Top linked accounts", "Top regions", "Top usage types", "Top instance types"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="LINKED_ACCOUNT, REGION, USAGE_TYPE, INSTANCE_TYPE"):
        parse_breakdown("AZ")


def test_the_main_request_groups_by_service_or_record_type_then_the_breakdown():
    by_service = main_request(date(2026, 11, 1), date(2026, 11, 16), CostMetric.NET_UNBLENDED, Breakdown.REGION)
    assert by_service["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "REGION"}]
    assert by_service["Filter"] == USAGE_ONLY and by_service["Metrics"] == ["NetUnblendedCost"]
    by_type = main_request(date(2026, 11, 1), date(2026, 11, 16), CostMetric.UNBLENDED, Breakdown.INSTANCE_TYPE,
                           by_record_type=True)  # fmt: skip
    assert by_type["GroupBy"][0] == {"Type": "DIMENSION", "Key": "RECORD_TYPE"} and "Filter" not in by_type


class Organizations:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def describe_organization(self) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"Organization": {"MasterAccountId": self.answer}}


class Sts:
    def get_caller_identity(self) -> dict:
        return {"Account": "111111111111"}


def denied(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeOrganization")


@pytest.mark.parametrize(
    ("answer", "organisation"),
    [
        ("111111111111", True),  # the caller is the management account (or the payer role's session)
        ("999999999999", False),  # a member account: its Cost Explorer sees only itself
        (denied("AWSOrganizationsNotInUseException"), False),  # a standalone account
        (denied("AccessDeniedException"), None),  # cannot tell: the card keeps LINKED_ACCOUNT
    ],
)
def test_an_organisation_is_read_when_the_caller_is_its_management_account(answer, organisation):
    assert reads_organisation(Organizations(answer), Sts()) is organisation


# --- the weekly report ----------------------------------------------------------------------------


def card_facts(payload: dict) -> dict[str, str]:
    body = payload["attachments"][0]["content"]["body"]
    return {f["title"]: f["value"] for b in body if b["type"] == "FactSet" for f in b["facts"]}


def test_with_attribution_credits_ride_on_the_main_request_and_the_card_shows_them_with_the_metric():
    source = Emulated()
    report, messages = compose(report_settings(ATTRIBUTION_DIMENSIONS="tag:Team,tag:CostCenter",
                                               COST_METRIC="AmortizedCost"), source, now=NOW)  # fmt: skip
    assert source.requests == 3  # the organisation, Team, CostCenter: as before issue 19
    assert [r["GroupBy"][0]["Key"] for r in source.asked] == ["RECORD_TYPE", "Team", "CostCenter"]
    assert all(r["Metrics"] == ["AmortizedCost"] for r in source.asked)
    credits = D("-45.00") * WINDOW.elapsed_days
    assert report.charges == Charges(report.month_to_date, credits, D(0), D(0), "USD")
    assert report.top_services and report.top_services[0].name == EC2  # from the first attribution request
    facts = card_facts(messages[0].payload)
    assert facts["Cost metric"] == "amortized (AmortizedCost), usage only in the figures above"
    assert facts["Usage, credits, refunds, tax (month-to-date)"] == (
        f"Usage {money(report.month_to_date)} · Credits -$675.00 · Net {money(report.month_to_date + credits)}"
    )


def money(amount: D) -> str:
    from finops_guard.core.money import format_money

    return format_money(amount, "USD")


def test_without_attribution_credits_cost_one_more_request_and_services_come_from_the_main_one():
    source = Emulated()
    report, _ = compose(report_settings(), source, now=NOW, breakdown=Breakdown.REGION)
    assert source.requests == 2
    assert source.asked[0]["GroupBy"][0]["Key"] == "SERVICE" and source.asked[1]["Granularity"] == "MONTHLY"
    assert report.charges is not None and report.charges.credits == D("-675.00")
    assert report.top_services[0].name == EC2


@pytest.mark.parametrize("breakdown", list(Breakdown))
def test_the_chosen_breakdown_is_asked_for_ranked_and_titled_at_the_same_request_count(breakdown):
    source = Emulated()
    settings = report_settings(ATTRIBUTION_DIMENSIONS="tag:Team", BREAKDOWN=breakdown.value)
    report, messages = compose(settings, source, now=NOW)
    assert source.requests == 2 and source.asked[0]["GroupBy"][1] == {"Type": "DIMENSION", "Key": breakdown.value}
    names = [r.name for r in report.top_accounts if not r.name.startswith("Other")]
    of_kind = {
        Breakdown.LINKED_ACCOUNT: lambda name: name.isdigit() and len(name) == 12,
        Breakdown.REGION: lambda name: name in (*REGIONS, "global"),
        Breakdown.USAGE_TYPE: lambda name: name.endswith("-Usage") and ":" in name,
        Breakdown.INSTANCE_TYPE: lambda name: name in (*INSTANCE_TYPES, "NoInstanceType"),
    }[breakdown]
    assert names and all(of_kind(name) for name in names)
    teams = messages[0].payload["attachments"][0]["content"]["body"]
    assert f"{breakdown.heading} (MTD · week over week)" in [b.get("text") for b in teams]
    slack = compose(replace(settings, slack_secret_name="s"), Emulated(), now=NOW)[1][-1].payload
    assert any(f"*{breakdown.heading} (MTD · week over week)*" in json.dumps(b, ensure_ascii=False)
               for b in slack["blocks"])  # fmt: skip


def test_a_single_account_card_ranks_regions_and_names_no_account():
    single = {"111111111111": "prod-platform"}
    report, messages = compose(report_settings(), Emulated(accounts=single), now=NOW, breakdown=Breakdown.REGION)
    assert {r.name for r in report.top_accounts} <= {"us-east-1", "eu-west-1", "us-west-2", "global"}
    assert "Top linked accounts" not in json.dumps(messages[0].payload)


def test_routed_team_cards_name_their_metric_and_show_usage_only():
    from finops_guard.costs.teams import Routing, TeamRoute

    routing = Routing(TEAM, [TeamRoute("web", ("teams",))])
    settings = report_settings(
        ATTRIBUTION_DIMENSIONS="tag:Team", TEAM_DIMENSION="tag:Team", COST_METRIC="NetAmortizedCost"
    )
    source = Emulated()
    _, messages = compose(settings, source, now=NOW, routing=routing)
    assert source.requests == 2  # teams cost nothing more
    team = card_facts(messages[-1].payload)
    assert team["Cost metric"].startswith("net amortized (NetAmortizedCost)")
    assert not any(title.startswith("Usage, credits") for title in team)


def test_the_charges_line_skips_zero_kinds_and_always_says_net():
    assert charge_cards.charges_text(Charges(D("100"), currency="USD")) == (
        "Usage $100.00 · no credits, refunds or tax · Net $100.00"
    )
    assert charge_cards.charges_text(Charges(D("100"), D("-5000"), D(0), D("8.5"), "USD")) == (
        "Usage $100.00 · Credits -$5,000.00 · Tax $8.50 · Net -$4,891.50"
    )


# --- metrics in the emulated Cost Explorer ---------------------------------------------------------

PLAN_A = SavingsPlan(date(2026, 10, 20), upfront=D("36500"), monthly_fee=D("3000"))  # fee lands on Nov 1
PLAN_B = SavingsPlan(date(2026, 11, 10), upfront=D("36500"), monthly_fee=D("3000"))  # bought in the window
PLANS = Extras(credits=(), savings_plans=(PLAN_A, PLAN_B))


def daily(metric: CostMetric, extras: Extras) -> dict[date, D]:
    request = main_request(WINDOW.query_start, WINDOW.query_end, metric, Breakdown.LINKED_ACCOUNT)
    return aggregate_pages(synthetic_query_pages(request, extras=extras), WINDOW, metric).daily


def test_net_metrics_are_usage_after_the_discount_with_the_same_credits():
    gross, net = daily(CostMetric.UNBLENDED, Extras()), daily(CostMetric.NET_UNBLENDED, Extras())
    assert all(net[d] == gross[d] * (1 - NET_DISCOUNT) for d in gross)
    for metric in CostMetric:
        answer = synthetic_query_pages(charges_request(date(2026, 11, 1), date(2026, 11, 16), metric))
        assert charge_amounts(answer, metric).kind_total("Credit") == D("-675.00")


def test_amortized_spreads_the_savings_plan_purchase_and_its_monthly_fee():
    baseline = daily(CostMetric.UNBLENDED, Extras(credits=()))
    unblended, amortized = daily(CostMetric.UNBLENDED, PLANS), daily(CostMetric.AMORTIZED, PLANS)
    november = D(30)
    effective = D(36500) / 365 + D(3000) / november  # one plan's day: 100 + 100
    assert unblended[date(2026, 11, 10)] - baseline[date(2026, 11, 10)] == D(36500) + D(3000) * 21 / november
    assert unblended[date(2026, 11, 1)] - baseline[date(2026, 11, 1)] == D(3000)  # plan A's fee, on the 1st
    assert amortized[date(2026, 11, 10)] - baseline[date(2026, 11, 10)] == 2 * effective  # no spike
    assert amortized[date(2026, 11, 1)] - baseline[date(2026, 11, 1)] == effective  # the fee spread
    assert amortized[date(2026, 11, 9)] - baseline[date(2026, 11, 9)] == effective  # plan B not bought yet


def test_the_emulator_answers_savings_plan_charges_under_their_record_types():
    request = {"TimePeriod": {"Start": "2026-11-10", "End": "2026-11-11"}, "Granularity": "DAILY",
               "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "DIMENSION", "Key": "RECORD_TYPE"},
                                                        {"Type": "DIMENSION", "Key": "SERVICE"}]}  # fmt: skip
    groups = synthetic_query_pages(request, extras=PLANS)[0]["ResultsByTime"][0]["Groups"]
    keys = {tuple(g["Keys"]) for g in groups}
    assert {("SavingsPlanUpfrontFee", SAVINGS_PLAN_SERVICE), ("SavingsPlanRecurringFee", SAVINGS_PLAN_SERVICE),
            ("Usage", EC2)} <= keys  # fmt: skip
    request["Metrics"] = ["AmortizedCost"]
    groups = synthetic_query_pages(request, extras=PLANS)[0]["ResultsByTime"][0]["Groups"]
    assert ("SavingsPlanCoveredUsage", EC2) in {tuple(g["Keys"]) for g in groups}
    assert all(g["Keys"][1] != SAVINGS_PLAN_SERVICE for g in groups)


def test_the_emulator_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError, match="unsupported GroupBy"):
        synthetic_query_pages({**charges_request(date(2026, 11, 1), date(2026, 11, 2), CostMetric.UNBLENDED),
                               "GroupBy": [{"Type": "DIMENSION", "Key": "AZ"}]})  # fmt: skip


# --- budgets: the basis ---------------------------------------------------------------------------


def budget(**fields: Any):
    return parse_budget({"id": "org", "amount": "100000", "currency": "USD", **fields})


def test_a_budget_counts_usage_by_default_and_says_so_only_when_not():
    assert budget().basis == "usage" and "basis" not in budget().to_document()
    net = budget(basis="net")
    assert net.basis == "net" and net.to_document()["basis"] == "net"
    assert parse_budget(net.to_document()) == net


@pytest.mark.parametrize("value", ["gross", "", "NET", 1, ["net"]])
def test_an_unknown_basis_is_refused_naming_the_field(value):
    with pytest.raises(BudgetError) as raised:
        budget(basis=value)
    assert raised.value.field == "budget.basis"


def test_a_usage_budget_excludes_credits_and_a_net_one_counts_them_in_the_same_request_count():
    usage, net = budget(), budget(id="net", basis="net")
    queries = plan_queries([usage, net], AS_OF, 28, CostMetric.AMORTIZED)
    assert [q.basis for q in queries] == ["usage", "net"] and all(q.metric is CostMetric.AMORTIZED for q in queries)
    assert queries[0].request()["Filter"] == USAGE_ONLY and "Filter" not in queries[1].request()
    assert len(plan_queries([usage], AS_OF, 28)) == len(plan_queries([net], AS_OF, 28)) == 1
    actual = {}
    for query in queries:
        costs = collect_budget_costs(query, synthetic_query_pages(query.request()), AS_OF)
        actual.update({b: evaluate(c, AS_OF).actual for b, c in costs.items()})
    # The default credit is 45.00 a day; tax is 0 in the default emulated world.
    assert actual["net"] == actual["org"] - D("45.00") * AS_OF.day


def test_the_alert_card_names_the_metric_and_the_basis():
    from finops_guard.costs.budget_guard import Firing

    [query] = plan_queries([budget(basis="net")], AS_OF, 28, CostMetric.NET_AMORTIZED)
    status = evaluate(collect_budget_costs(query, synthetic_query_pages(query.request()), AS_OF)["org"], AS_OF)
    rows = dict(alert_facts(Firing(status, "actual", (D(50),))))
    assert rows["Cost metric"] == "net amortized (NetAmortizedCost) · net: after credits, refunds and tax"


# --- chargeback: a column per kind ---------------------------------------------------------------

OCTOBER = Month(2026, 10)


def month(charges: dict[str, dict[str, str]], rows: dict[tuple[str, str], str] | None = None) -> MonthCosts:
    rows = rows or {("web", "EC2"): "300", ("data", "EC2"): "100", ("", "S3"): "40"}
    return MonthCosts(TEAM, {k: D(v) for k, v in rows.items()}, "USD", False,
                      charges={s: {k: D(a) for k, a in kinds.items()} for s, kinds in charges.items()})  # fmt: skip


def test_proportional_credits_follow_the_untagged_rule_and_each_column_adds_up():
    chargeback = build_chargeback(month({"EC2": {"Credit": "-50"}, "Tax": {"Tax": "12.34"}}), OCTOBER,
                                  rule="proportional")  # fmt: skip
    lines = {(x.owner, x.service, x.line): x for x in chargeback.lines}
    assert lines[("web", "EC2", "untagged share")].credits == D("-37.50")  # 75 % of tagged usage
    assert lines[("data", "EC2", "untagged share")].credits == D("-12.50")
    assert lines[("web", "Tax", "untagged share")].tax + lines[("data", "Tax", "untagged share")].tax == D("12.34")
    assert [chargeback.kind_total(k) for k in KINDS] == [D("440.00"), D("-50.00"), D("0"), D("12.34")]
    assert chargeback.total == D("402.34")


def test_separate_keeps_credits_on_unallocated_lines():
    chargeback = build_chargeback(month({"EC2": {"Credit": "-50", "Refund": "-5"}}), OCTOBER, rule="separate")
    [unallocated] = [x for x in chargeback.lines if x.owner == "" and x.service == "EC2"]
    assert (unallocated.line, unallocated.usage, unallocated.credits, unallocated.refunds) == (
        "unallocated", D(0), D("-50.00"), D("-5.00")
    )  # fmt: skip


def test_the_csv_has_a_column_per_kind_the_net_and_the_metric():
    costs = replace(month({"EC2": {"Credit": "-50"}}), metric=CostMetric.AMORTIZED)
    text = to_csv(build_chargeback(costs, OCTOBER, rule="separate"))
    header, *rows = text.splitlines()
    assert header == "month,dimension,owner,service,line,usage,credits,refunds,tax,net,currency,cost_metric"
    assert "2026-10,tag:Team,,EC2,unallocated,0.00,-50.00,0.00,0.00,-50.00,USD,AmortizedCost" in rows


def test_the_chargeback_card_names_the_metric_and_shows_the_kinds_and_their_rule():
    chargeback = build_chargeback(month({"EC2": {"Credit": "-50"}}), OCTOBER, rule="proportional")
    payload = render_chargeback([(chargeback, "https://example.com/x")], "teams",
                                expires_at=NOW, timezone="UTC", complete=True)  # fmt: skip
    facts = card_facts(payload)
    assert facts["Cost metric"] == "unblended (UnblendedCost)"
    assert facts["Usage, credits, refunds, tax"] == "Usage $440.00 · Credits -$50.00 · Net $390.00"
    assert facts["Credits, refunds, tax rule"].startswith("no owner carries them: shared in proportion")
    assert facts["Untagged"] == "$40.00 (9.0 %)"  # of usage, not of the net; toward zero (format_percent)


def test_month_costs_read_the_metric_asked():
    group = {"Keys": ["Team$web", "EC2"], "Metrics": {"NetUnblendedCost": {"Amount": "3", "Unit": "USD"}}}
    page = {"ResultsByTime": [{"Groups": [group]}]}
    assert month_costs(TEAM, [page], CostMetric.NET_UNBLENDED).amounts == {("web", "EC2"): D(3)}
    with pytest.raises(KeyError):
        month_costs(TEAM, [page])


# --- any Cost Explorer-shaped page: never raises, money stays Decimal ------------------------------

amounts = st.decimals(min_value=D("-1e9"), max_value=D("1e9"), allow_nan=False, allow_infinity=False, places=10)
metrics = st.sampled_from(list(CostMetric))
record_types = st.sampled_from(["Usage", "Credit", "Refund", "Tax", "SavingsPlanUpfrontFee", "RIFee", "Support"])
keys = st.text(alphabet="abcdefgh$-_ 0123456789", max_size=12)


@st.composite
def pages(draw: Any) -> tuple[CostMetric, list[dict[str, Any]], str]:
    metric = draw(metrics)
    kind = draw(st.sampled_from(["service", "record", "tag"]))
    results = []
    for offset in draw(st.lists(st.integers(0, 40), max_size=6)):
        day = WINDOW.query_start + timedelta(days=offset)
        groups = []
        for _ in range(draw(st.integers(0, 6))):
            first = draw(record_types) if kind == "record" else (f"Team${draw(keys)}" if kind == "tag" else draw(keys))
            amount = draw(amounts)
            text = draw(st.sampled_from([str(amount), f"{amount:E}", f"{amount:f}"]))
            groups.append({"Keys": [first, draw(keys)], "Metrics": {metric.value: {"Amount": text, "Unit": "USD"}}})
        results.append({"TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                        "Total": {}, "Groups": groups, "Estimated": draw(st.booleans())})  # fmt: skip
    return metric, [{"ResultsByTime": results, "DimensionValueAttributes": []}], kind


def decimals_only(values: Any) -> bool:
    return all(isinstance(v, D) for v in values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pages())
def test_any_cost_explorer_shaped_page_is_read_without_raising_and_in_decimal(case):
    metric, answer, kind = case
    aggregate = aggregate_pages(answer, WINDOW, metric, by_record_type=kind == "record")
    assert decimals_only(aggregate.daily.values()) and decimals_only(aggregate.charges.values())
    assert decimals_only(t.month_to_date for t in aggregate.accounts.values())
    charges = charge_amounts(answer, metric)
    assert decimals_only(charges.kind_total(k) for k in CHARGE_KINDS)
    assert decimals_only(month_costs(TEAM, answer, metric).amounts.values())
    assert decimals_only(daily_series(answer, metric).daily.values())
    query = plan_queries([budget(scope={"tag": {"Team": ["a"]}})], AS_OF, 28, metric)[0]
    costs = collect_budget_costs(replace(query, group_by=query.group_by[:2]), answer, AS_OF)
    assert decimals_only(costs["org"].daily.values())
