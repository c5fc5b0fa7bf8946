"""The cost product's month (scenario A, C with the opt-in savings, D with the opt-in daily digest and
month-close report): weekly reports with attribution, the daily budget guard, the monthly chargeback
and anomaly alerts at their scheduled times, Cost Explorer answered from the synthetic organisation."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from devtools.lambda_runner import ROOT
from devtools.selfcost.lambdas import Invocation
from devtools.selfcost.simulation import MONTH, Simulation, _iso, scheduled_event
from devtools.selfcost.template import ScheduleFacts, TemplateFacts, merge_templates, synthesize_templates

ACCOUNT = "111111111111"


def _one_account() -> dict[str, str]:
    from finops_guard.costs.mock_data import ACCOUNTS

    return {ACCOUNT: ACCOUNTS[ACCOUNT]}


def budget_documents(as_of: date) -> list[dict[str, Any]]:
    """Five budgets over two scope kinds (the account, four services), sized against the synthetic
    account's own month so that thresholds cross during the month, as they would in use."""
    from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
    from finops_guard.costs.budget_guard import evaluate
    from finops_guard.costs.budgets import parse_budget
    from finops_guard.costs.mock_data import SERVICES, synthetic_query_pages

    def month_actual(scope: dict[str, Any]) -> Decimal:
        probe = parse_budget({"id": "probe", "amount": "1", "currency": "USD", "scope": scope})
        query = plan_queries([probe], as_of)[0]
        costs = collect_budget_costs(query, synthetic_query_pages(query.request(), accounts=_one_account()), as_of)
        return evaluate(costs["probe"], as_of).actual

    plans: list[tuple[str, dict[str, Any], Decimal, dict[str, Any]]] = [
        ("account", {"account": [ACCOUNT]}, Decimal("0.95"),
         {"notify": ["teams", "email"], "enforce_hard_limit": True}),
        ("compute", {"service": [SERVICES[0][0]]}, Decimal("1.10"), {"notify": ["teams"]}),
        ("database", {"service": [SERVICES[1][0]]}, Decimal("1.40"), {"notify": ["teams"]}),
        ("storage", {"service": [SERVICES[2][0]]}, Decimal("3"), {"notify": ["teams"]}),
        ("kubernetes", {"service": [SERVICES[3][0]]}, Decimal("0.85"), {"notify": ["teams", "email"]}),
    ]  # fmt: skip
    return [
        {"id": budget_id, "amount": str((month_actual(scope) * factor).quantize(Decimal(1))), "currency": "USD",
         "scope": scope, **extra}
        for budget_id, scope, factor, extra in plans
    ]  # fmt: skip


def anomaly_bodies(anomaly_id: str, impact: Decimal, when: datetime) -> list[str]:
    """The same anomaly as Cost Anomaly Detection sends it both ways (SNS notification, EventBridge
    event): in us-east-1 the subscription and the rule both deliver to the inbox."""
    sns = json.loads((ROOT / "events" / "anomaly_sns_notification.json").read_text())
    bridge = json.loads((ROOT / "events" / "anomaly_eventbridge.json").read_text())
    message = json.loads(sns["Message"])
    for detail in (message, bridge["detail"]):
        detail["anomalyId"] = anomaly_id
        detail["impact"]["totalImpact"] = float(impact)
        detail["impact"]["maxImpact"] = float(impact)
        detail["rootCauses"] = [dict(r, linkedAccount=ACCOUNT) for r in detail["rootCauses"]]
    sns["Message"] = json.dumps(message)
    sns["Timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    bridge["time"] = _iso(when)
    return [json.dumps(sns), json.dumps(bridge)]


Answer = tuple[Any, Callable[[], list[dict[str, Any]]]]  # (the request, or a key naming it; its pages)


class CostAnswers:
    """GetCostAndUsage answers on the embedded AWS. moto answers a request body it has not seen with
    the next queued page and one it has seen with the same answer again, so each distinct request is
    queued once, in the order the handler asks, just before the run that asks it (later
    configurations of the same month are answered from moto's memory). A queued page nobody asked
    for would answer the next new request instead: `check` reports and drops it."""

    def __init__(self, aws: Any, queued: Callable[[], list[Any]] | None = None) -> None:
        self.aws = aws
        self.queued = queued or _moto_cost_and_usage_queue
        self.seeded: set[str] = set()
        self.problems: list[str] = []

    def seed(self, answers: Iterable[Answer]) -> None:
        pages: list[dict[str, Any]] = []
        for request, answer in answers:
            key = json.dumps(request, sort_keys=True, default=str)
            if key not in self.seeded:
                self.seeded.add(key)
                pages += answer()
        if pages:
            self.aws.seed_cost_and_usage(pages)

    def forget(self) -> None:
        """Cost Explorer's answers changed (a month finalised): forget every answer moto remembers, and
        that anything was seeded, so each request is answered afresh from here on."""
        self.aws.forget_cost_and_usage()
        self.seeded.clear()

    def check(self, run: str) -> None:
        queue = self.queued()
        if queue:
            self.problems.append(f"{run}: {len(queue)} seeded Cost Explorer answer(s) never asked for")
            queue.clear()


def _moto_cost_and_usage_queue(account: str = "123456789012") -> list[Any]:
    """The embedded Cost Explorer's queue of seeded answers (moto runs in this process)."""
    from moto.ce.models import ce_backends

    queue: list[Any] = ce_backends[account]["global"].cost_usage_results_queue
    return queue


def _synthetic(request: dict[str, Any]) -> Answer:
    from finops_guard.costs.mock_data import synthetic_query_pages

    return request, partial(synthetic_query_pages, request, accounts=_one_account())


def attribution_dimensions(env: Mapping[str, str]) -> tuple[Any, ...]:
    """The AttributionDimensions a function's environment configures, in order."""
    from finops_guard.costs.teams import parse_dimensions

    specs = [d for d in env.get("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "").split(",") if d.strip()]
    return tuple(parse_dimensions(specs))


def weekly_answers(at: datetime, dimensions: Sequence[Any]) -> list[Answer]:
    """The weekly report's requests in its order: the organisation's costs (by RECORD_TYPE and the
    breakdown, REGION for this single account, with dimensions; else by SERVICE, and then the
    month's credits, refunds and tax), then one per dimension."""
    from finops_guard.core.periods import report_window
    from finops_guard.costs.attribution import attribution_request
    from finops_guard.costs.breakdown import Breakdown, main_request
    from finops_guard.costs.cost_metric import DEFAULT_METRIC
    from finops_guard.costs.record_types import charges_request

    window = report_window(at)
    main = main_request(window.query_start, window.query_end, DEFAULT_METRIC, Breakdown.REGION,
                        by_record_type=bool(dimensions))  # fmt: skip
    charges = [] if dimensions else [_synthetic(charges_request(window.month_to_date.first, window.query_end,
                                                                DEFAULT_METRIC))]  # fmt: skip
    return [_synthetic(main), *charges] + [
        _synthetic(attribution_request(d, window.query_start, window.query_end, "DAILY")) for d in dimensions
    ]


def chargeback_answers(at: datetime, dimensions: Sequence[Any], timezone: str) -> list[Answer]:
    """The chargeback's requests: last month, one per dimension, then its credits, refunds and tax."""
    from finops_guard.costs.chargeback import chargeback_request, month_before
    from finops_guard.costs.cost_metric import DEFAULT_METRIC
    from finops_guard.costs.record_types import charges_request

    month = month_before(at, timezone)
    service = {"Type": "DIMENSION", "Key": "SERVICE"}
    return [_synthetic(chargeback_request(d, month)) for d in dimensions] + [
        _synthetic(charges_request(month.first, month.end, DEFAULT_METRIC, service))
    ]


# Attribution switched off (not deployable: attributionDimensions takes 1 to 3): the weekly report
# without its attribution requests, and no team routing in the posting functions.
NO_ATTRIBUTION = dict.fromkeys(
    ("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", "FINOPSGUARD_TEAM_DIMENSION", "FINOPSGUARD_TEAM_ROUTES_TABLE",
     "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME"), "")  # fmt: skip
NO_ATTRIBUTION_LABEL = "A-no-attribution"
ROUTED_TEAMS = ("platform", "data")  # scenario B: two of the synthetic org's Team tag values get a channel


FINAL_DAY = 4  # scenario D: AWS finalises last month's invoice on the 4th (usually within the first days)


def month_close_answers(at: datetime, budgets: Sequence[Any], env: Mapping[str, str], *, reused: bool) -> list[Answer]:
    """The month-close's requests for last month, in its order: the 13-month history, the budgets as of
    the month's last day, and (when nothing is reused from the chargeback) one per dimension. Once the
    month is final (`at` on FINAL_DAY or later), nothing is marked estimated."""
    from finops_guard.costs.budget_costs import plan_queries
    from finops_guard.costs.chargeback import Month, chargeback_request
    from finops_guard.costs.month_close import add_months, history_request, last_day

    month = add_months(Month(at.year, at.month), -1)
    requests = [history_request(month, at.date())]
    requests += [q.request() for q in plan_queries(budgets, last_day(month))]
    if not reused:
        requests += [chargeback_request(d, month) for d in attribution_dimensions(env)]
    final = at.day >= FINAL_DAY
    return [(r, partial(_final_pages, r) if final else _synthetic(r)[1]) for r in requests]


def _final_pages(request: dict[str, Any]) -> list[dict[str, Any]]:
    from finops_guard.costs.mock_data import synthetic_query_pages

    pages = synthetic_query_pages(request, accounts=_one_account())
    for page in pages:
        for result in page["ResultsByTime"]:
            result["Estimated"] = False
    return pages


def run_reports(
    sim: Simulation,
    answers: CostAnswers,
    *,
    overrides: Mapping[str, str] | None = None,
    chargeback: bool = True,
    function_overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Invocation]:
    """Weekly reports, the daily budget guard, the monthly chargeback (the 1st, last month) and
    anomaly alerts, at their scheduled times. `overrides`: environment changes for all of them;
    `function_overrides`: for one function each (scenario D's digest and month-close settings)."""
    from finops_guard.costs.adapters.budget_store import BudgetTable
    from finops_guard.costs.budget_costs import plan_queries
    from finops_guard.costs.budgets import parse_budgets

    from devtools.sqs_events import sqs_event

    aws, start = sim.aws, sim.month_start
    documents = budget_documents(date(MONTH[0], MONTH[1], 28))
    budgets = parse_budgets(documents)
    BudgetTable(sim.deployment.budgets_table, aws.client("dynamodb")).put_many(budgets, now=start)
    first = len(sim.lambdas.records)
    scheduled = ("weekly-report", "budget-guard", *(("chargeback",) if chargeback else ()))
    jobs: list[tuple[datetime, str, ScheduleFacts | None, Any]] = []
    for spec in sim.facts.schedules:
        if spec.function in scheduled:
            jobs += [(at, spec.function, spec, None) for at in sim.runs(spec)]
    sightings = [  # (day, hour, anomaly, impact): four anomalies, one grows by 60 %, one is seen again unchanged
        (3, 7, "a1", Decimal(150)), (8, 14, "a2", Decimal(420)), (12, 6, "a2", Decimal(672)),
        (12, 20, "a3", Decimal(230)), (19, 9, "a3", Decimal(230)), (25, 11, "a4", Decimal(980)),
    ]  # fmt: skip
    for day, hour, anomaly, impact in sightings:
        seen = datetime(MONTH[0], MONTH[1], day, hour, tzinfo=UTC)
        if sim.within(seen):
            jobs.append((seen, "anomaly-alerts", None, (anomaly, impact)))
    anomaly_topic_encrypted = any(t.encrypted for name, t in sim.facts.topics.items() if "anomal" in name)
    finalised = False
    for at, function, schedule, detail in sorted(jobs, key=lambda job: job[0]):
        run_overrides = {**(overrides or {}), **(function_overrides or {}).get(function, {})}
        env = {**sim.lambdas.environments[function], **run_overrides}
        month_close = env.get("FINOPSGUARD_MONTH_CLOSE_REPORT") == "true"
        extra = {"scheduler.invocation": Decimal(1)}
        if function == "weekly-report":
            answers.seed(weekly_answers(at, attribution_dimensions(env)))
        elif function == "budget-guard":
            if month_close and at.day >= FINAL_DAY and not finalised:  # the same requests now answer final
                answers.forget()
                finalised = True
            answers.seed(_synthetic(q.request()) for q in plan_queries(budgets, at.date() - timedelta(days=1)))
            if month_close and at.day > 1:  # the daily look at last month: what it may ask, in its order
                answers.seed(month_close_answers(at, budgets, env, reused=False))
        elif function == "chargeback":
            dimensions = attribution_dimensions(env)
            answers.seed(chargeback_answers(at, dimensions, env["FINOPSGUARD_TIMEZONE"]))
            if month_close:
                answers.seed(month_close_answers(at, budgets, env, reused=True))
                extra["s3.get"] = Decimal(2)  # assumption: the month-close HTML and CSV opened once each
            extra["s3.get"] = extra.get("s3.get", Decimal(0)) + len(dimensions)  # each CSV downloaded once
        if schedule is not None:
            sim.lambdas.invoke_async(function, scheduled_event(schedule, at), at=at, extra=extra, env=run_overrides)
            answers.check(f"{function} {_iso(at)}")
            continue
        anomaly, impact = detail
        bodies = anomaly_bodies(f"{anomaly}-e1b2c3d4-5f60-4718-8a9b", impact, at)
        # Delivery to the inbox: SNS publish by Cost Anomaly Detection (billed to the topic owner; a
        # customer managed key on the topic would be asked for a data key), SNS->SQS and EventBridge->SQS
        # sends, and the poller's one delete.
        extra = {"sns.publish": Decimal(1), "sqs.request": Decimal(len(bodies) + 1)}
        if anomaly_topic_encrypted:
            extra["kms.request"] = Decimal(1)
        sim.lambdas.invoke("anomaly-alerts", sqs_event(bodies), at=at, cold=True, extra=extra, env=overrides)
    return sim.lambdas.records[first:]


def clear_report_state(sim: Simulation) -> None:
    """Forget what the report functions remember (messages kept in the outbox, budget thresholds
    alerted, anomalies seen), so the next configuration's month starts as a fresh deployment's
    would. Harness requests: not counted."""
    dynamodb = sim.aws.client("dynamodb")
    deployment = sim.deployment
    for table in (deployment.outbox, deployment.alerts_table, deployment.anomalies_table):
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
        deletes = [{"DeleteRequest": {"Key": {k: item[k] for k in keys}}} for item in items]
        for i in range(0, len(deletes), 25):
            batch: dict[str, Any] = {table: deletes[i : i + 25]}
            while batch:
                batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


SAVINGS_FUNCTION = "savings-refresh"
SAVINGS_CONTEXT = {"savingsRecommendations": True, "savingsPlansKpi": True}  # both opt-in, off by default
# The second synthesis also turns the opt-in dashboards on: they change no function, and so price.
# Scenario D: the daily digest (every chat channel; no team is routed in A) and the month-close report.
REPORTS_CONTEXT = {"dailyDigest": True, "monthCloseReport": True}  # both opt-in, off by default
REPORT_FUNCTIONS = ("budget-guard", "chargeback")
OPT_IN_CONTEXT = {**SAVINGS_CONTEXT, **REPORTS_CONTEXT, "dashboard": True}
# Cost Explorer's Savings Plans answers (moto has none): 62 % of eligible spend covered, 97 % used.
SAVINGS_PLANS_ANSWERS: dict[str, dict[str, Any]] = {
    "GetSavingsPlansCoverage": {"SavingsPlansCoverages": [{
        "Attributes": {}, "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-16"},
        "Coverage": {"SpendCoveredBySavingsPlans": "620.5", "OnDemandCost": "379.5", "TotalCost": "1000",
                     "CoveragePercentage": "62.05"}}]},
    "GetSavingsPlansUtilization": {"SavingsPlansUtilizationsByTime": [], "Total": {
        "Utilization": {"TotalCommitment": "640", "UsedCommitment": "620.5", "UnusedCommitment": "19.5",
                        "UtilizationPercentage": "96.95"},
        "Savings": {"NetSavings": "210.25", "OnDemandCostEquivalent": "850.25"}}},
}  # fmt: skip


def opted_in_templates() -> tuple[dict[str, dict[str, Any]] | None, str]:
    """Each stack's template synthesized with OPT_IN_CONTEXT, or None and why it could not be."""
    try:
        return synthesize_templates(OPT_IN_CONTEXT), ""
    except Exception as error:  # noqa: BLE001 - scenario C is optional: skipped, saying why
        return None, f"synthesis failed: {type(error).__name__}: {error}"[:300]


def facts_of(templates: Mapping[str, Mapping[str, Any]] | None) -> TemplateFacts | None:
    """What the simulation runs: the stacks' templates merged."""
    return None if templates is None else TemplateFacts.from_template(merge_templates(templates))


def report_overrides(
    deployment: Any, opted_in: TemplateFacts | None, environments: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Scenario D's environment changes per function: what the opted-in template sets on the budget guard
    and the chargeback for the reports, without what it sets for the other opt-ins (savings, dashboards)."""
    if opted_in is None:
        return {}
    others = ("FINOPSGUARD_KPI_METRICS", "FINOPSGUARD_RECOMMENDATIONS_TABLE")
    out = {}
    for function in REPORT_FUNCTIONS:
        opted = deployment.environment_of(opted_in.functions[function])
        out[function] = {k: v for k, v in opted.items() if environments[function].get(k) != v and k not in others}
    return out


def with_savings_refresh(
    facts: TemplateFacts, opted_in: TemplateFacts | None
) -> tuple[TemplateFacts, ScheduleFacts | None]:
    """`facts` plus the savings refresh function (and the resources its environment names) of the
    template synthesized with SAVINGS_CONTEXT, and its schedule; no schedule when there is none."""
    if opted_in is None:
        return facts, None
    schedule = next((s for s in opted_in.schedules if s.function == SAVINGS_FUNCTION), None)
    if SAVINGS_FUNCTION not in opted_in.functions or schedule is None:
        return facts, None
    functions = {**facts.functions, SAVINGS_FUNCTION: opted_in.functions[SAVINGS_FUNCTION]}
    return replace(facts, functions=functions, resources={**opted_in.resources, **facts.resources}), schedule


@contextmanager
def savings_plans_answered() -> Iterator[None]:
    """Cost Explorer clients created meanwhile answer GetSavingsPlansCoverage/-Utilization from
    SAVINGS_PLANS_ANSWERS, the way botocore's Stubber answers (no HTTP; the meter still counts them)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    original = botocore.session.Session.create_client

    def answer(model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        return AWSResponse("", 200, {}, None), copy.deepcopy(SAVINGS_PLANS_ANSWERS[model.name])

    def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        if client.meta.service_model.service_name == "ce":
            for operation in SAVINGS_PLANS_ANSWERS:
                client.meta.events.register(f"before-call.cost-explorer.{operation}", answer)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield
    finally:
        botocore.session.Session.create_client = original


def run_savings(
    sim: Simulation, answers: CostAnswers, schedule: ScheduleFacts, weekly_overrides: Mapping[str, str]
) -> list[Invocation]:
    """Scenario C's runs: the daily savings refresh (Cost Optimization Hub answered by botocore's
    Stubber with the two documented sample pages: 4 recommendations) and the weekly reports with
    `weekly_overrides` (reading the recommendations table and the Savings Plans KPI). On the 3rd an
    operator accepts and implements one item (CLI requests, not counted): its ROI costs one request
    14 days later."""
    from botocore.stub import Stubber
    from finops_guard.costs import runtime
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable
    from finops_guard.costs.savings import (
        ACCEPTED,
        IMPLEMENTED,
        change_status,
        roi_due,
        roi_request,
        roi_unmeasurable_reason,
    )

    from devtools.hub_stub import fake_client, hub_page, stub_listing

    table_name = sim.lambdas.environments[SAVINGS_FUNCTION]["FINOPSGUARD_RECOMMENDATIONS_TABLE"]
    weekly = next(s for s in sim.facts.schedules if s.function == "weekly-report")
    jobs = [(at, SAVINGS_FUNCTION, schedule) for at in sim.runs(schedule)]
    jobs += [(at, "weekly-report", weekly) for at in sim.runs(weekly)]
    pages = [hub_page("page1"), hub_page("page2")]
    table = RecommendationsTable(table_name, sim.aws.client("dynamodb"))
    hub = fake_client("cost-optimization-hub")  # created under the meter: its requests are counted
    first = len(sim.lambdas.records)
    implemented: str | None = None
    original = runtime.cost_optimization_hub_client
    runtime.cost_optimization_hub_client = lambda: hub  # type: ignore[assignment]
    try:
        with Stubber(hub) as stubber, savings_plans_answered():
            for at, function, spec in sorted(jobs, key=lambda job: job[0]):
                overrides = weekly_overrides if function == "weekly-report" else {}
                env = {**sim.lambdas.environments[function], **overrides}
                if function == "weekly-report":
                    answers.seed(weekly_answers(at, attribution_dimensions(env)))
                else:
                    stub_listing(stubber, *pages)
                    rec = table.get(implemented) if implemented else None
                    if rec is not None and roi_due(rec, at.date() - timedelta(days=1)):
                        answers.seed([_synthetic(roi_request(rec))])
                sim.lambdas.invoke_async(function, scheduled_event(spec, at), at=at,
                                         extra={"scheduler.invocation": Decimal(1)}, env=overrides)  # fmt: skip
                answers.check(f"{function} {_iso(at)}")
                try:
                    stubber.assert_no_pending_responses()
                except AssertionError:  # they would answer the next run's listing: stop here, say so
                    answers.problems.append(f"{function} {_iso(at)}: Cost Optimization Hub pages left unread")
                    break
                if function == SAVINGS_FUNCTION and implemented is None and at.day >= 3:
                    implemented = next(r.rec_id for r in table.all() if roi_unmeasurable_reason(r) is None)
                    change_status(table, implemented, ACCEPTED, now=at + timedelta(hours=3), by="cli:bench")
                    change_status(table, implemented, IMPLEMENTED, now=at + timedelta(hours=4), by="cli:bench",
                                  implemented_on=at.date())  # fmt: skip
    finally:
        runtime.cost_optimization_hub_client = original
    return sim.lambdas.records[first:]
