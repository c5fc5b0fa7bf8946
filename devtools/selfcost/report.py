"""The self-cost printout: each scenario's bill, each stack's fixed charges, the deployments judged."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from devtools.selfcost.lambdas import WEBHOOK_IDLE_TIMEOUT_S
from devtools.selfcost.prices import HOURS_PER_BILLING_MONTH, PRICES, usd
from devtools.selfcost.scenarios_costs import NO_ATTRIBUTION_LABEL
from devtools.selfcost.simulation import SMOKE


def _qty(text: str) -> str:
    value = Decimal(text)
    if value >= 100:
        return f"{value.quantize(Decimal(1)):,}"
    if value >= 1:
        return f"{value.quantize(Decimal('0.01')):,}"
    return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"


def _table(bill: Mapping[str, Any]) -> list[str]:
    lines = [f"    {'line item':62s} {'count':>12s} {'unit':>18s} {'unit price':>14s} {'monthly':>10s}"]
    for line in bill["lines"]:
        price = Decimal(line["unit_price"])
        lines.append(
            f"    {line['service'] + ': ' + line['item']:62.62s} {_qty(line['quantity']):>12s} {line['unit']:>18.18s}"
            f" {'$' + format(price.normalize(), 'f'):>14s} {usd(Decimal(line['usd'])):>10s}"
        )
        if line["note"]:
            lines.append(f"      ({line['note']})")
    return lines


def _scenario_details(scenario: Mapping[str, Any]) -> list[str]:
    metric_price = PRICES["cloudwatch.metric"].unit_price
    functions = ", ".join(
        f"{name} {Decimal(row['invocations']):,.0f}"
        + (f" ({Decimal(row['cold']):,.0f} cold)" if 0 < Decimal(row["cold"]) < Decimal(row["invocations"]) else "")
        for name, row in scenario["functions"].items()
    )
    metrics = ", ".join(
        f"{name} {row['metrics']} x {Decimal(row['metric_months']) * HOURS_PER_BILLING_MONTH / int(row['metrics']):.0f}"
        f" h = {usd(Decimal(row['metric_months']) * metric_price)}"
        for name, row in sorted(scenario["metrics"].items(), key=lambda kv: -Decimal(kv[1]["metric_months"]))
    )
    calls = sorted(scenario["calls"].items(), key=lambda kv: -Decimal(kv[1]))
    requests = ", ".join(f"{name} {Decimal(n):,.0f}" for name, n in calls)
    lines = [
        f"    invocations/month: {functions} (scheduled runs, notifier, anomaly and admin calls start cold)",
        f"    custom metrics (metrics x hours sent, of 730): {metrics}",
        f"    AWS requests counted, per month: {requests}",
    ]
    if scenario["errors"]:
        lines.append(f"    failed invocations, as the code behaves: {'; '.join(scenario['errors'])}")
    if scenario.get("unpriced"):
        lines.append(f"    requests with no price in PRICES (not in the total): {scenario['unpriced']}")
    return lines


ASSUMPTIONS = (
    "durations are this 2-core machine's (Lambda at 256-512 MB has a fraction of a vCPU: expect several times the"
    " GB-s, still cents); INIT = a fresh interpreter importing handler.py",
    "containers: every scheduled run, notifier batch, anomaly batch and admin call starts cold; the webhook's"
    f" environment is reclaimed after {WEBHOOK_IDLE_TIMEOUT_S // 60} idle minutes (arrival times of the full"
    " month; one environment, overlaps ignored); warm invocations reuse the cached secrets",
    "anomalies arrive twice (SNS subscription and EventBridge rule both deliver in us-east-1); SMS to US numbers;"
    " scenario B sets dunningSenderEmail (an operator using dunning would)",
    "DynamoDB units from the items' sizes: writes the larger of old/new item per KB (x2 in transactions, plus"
    " index writes), reads per 4 KB of items read (half when eventually consistent); storage = the month's data",
    "custom metrics are prorated by the hour they are sent in, one per namespace + name + dimensions (the stage-level"
    " ChatDeliveryFailures once, whoever sends it); free tiers are account-wide, so the targets are judged on list"
    " prices",
    "each chargeback CSV is downloaded once through its card's pre-signed link (one S3 GET), in D the month-close"
    " HTML and CSV too; in D AWS finalises last month's invoice on the 4th; scenario B's two teams"
    " are routed by their Team tag alone (no accounts), their webhook URLs in the one team webhooks secret",
    "a failed asynchronous event is retried as its EventInvokeConfig says, then sent to the core's failure queue"
    " (one SQS request)",
)
NOT_COUNTED = (
    "Stripe's own fees (not AWS)",
    "alarm notifications to the ops topic (SNS e-mail only with opsAlarmEmail; none fire in these scenarios)",
    "KMS requests AWS services make with AWS managed keys (Secrets Manager, DynamoDB); SQS-managed SSE is free",
    "DynamoDB items a Query filtered out (none of the code's queries filter); Lambda's DynamoDB stream reads (free)",
    "a US SMS origination identity (toll-free or 10DLC number and registration), which is outside the stack",
    "data transfer of Stripe API calls and SES/SNS deliveries; API Gateway execution logs (ERROR level only)",
    "S3 server access logs of the export and chargeback buckets (delivered free; a few KB stored)",
    "the operator's own CLI requests (teams add, savings accept/implement, report resend)",
)


def bill_changes(base: Mapping[str, Any], other: Mapping[str, Any], top: int = 5) -> list[str]:
    """The lines of `other` that differ from `base` most in money, e.g. 'Cost Explorer +20 request
    +$0.2000' (bills as _bill_json writes them)."""
    before = {line["key"]: line for line in base["lines"]}
    after = {line["key"]: line for line in other["lines"]}
    changes = []
    for key in dict.fromkeys([*before, *after]):
        money = Decimal(after[key]["usd"] if key in after else 0) - Decimal(before[key]["usd"] if key in before else 0)
        count = Decimal(after[key]["quantity"] if key in after else 0) - Decimal(
            before[key]["quantity"] if key in before else 0
        )
        if money or count:
            changes.append((money, count, key))
    changes.sort(key=lambda change: (-abs(change[0]), -abs(change[1])))

    def signed(value: Decimal, text: str) -> str:
        return ("-" if value < 0 else "+") + text

    return [
        f"{PRICES[key].service} {signed(count, _qty(str(abs(count))))} {PRICES[key].unit}"
        f" {signed(money, usd(abs(money)))}"
        for money, count, key in changes[:top]
    ]


def _variant_lines(figures: Mapping[str, Any]) -> list[str]:
    """A without attribution and C (A + savings), each against A."""
    scenarios, out = figures["scenarios"], []
    a = scenarios["A"]
    bare = scenarios.get(NO_ATTRIBUTION_LABEL)
    if bare is not None:
        price = Decimal(a["usd"]) - Decimal(bare["usd"])
        dimensions = figures.get("attribution", {}).get("dimensions", "")
        out += [
            f"  A without attribution (what-if: attribution dimensions and team routing emptied, no chargeback;"
            f" not deployable, attributionDimensions takes 1 to 3): usage {usd(Decimal(bare['usd']))}",
            f"    attribution with its defaults ({dimensions or 'the default dimensions'}) costs"
            f" {usd(price)} a month: " + ", ".join(bill_changes(bare, a)),
        ]
    savings, facts = scenarios.get("C"), figures.get("savings", {})
    if savings is not None:
        schedule = facts.get("schedule", ["?", 0])
        more_fixed = Decimal(facts.get("more_fixed_usd", 0))
        out += [
            f"  C = A + savings recommendations (opt-in: {', '.join(facts.get('context', {}))} on): usage"
            f" {usd(Decimal(savings['usd']))}, {usd(Decimal(savings['usd']) - Decimal(a['usd']))} more than A: "
            + ", ".join(bill_changes(a, savings)),
            f"    and {usd(more_fixed)} more fixed a month ({facts.get('more_alarms', '?')} more alarms):"
            f" savings refresh {facts.get('memory_mb', '?')} MB, {schedule[0]} = {schedule[1]} runs, Cost"
            " Optimization Hub answered by botocore's Stubber (2 pages, 4 items; the API is free), one item"
            " implemented on the 3rd (its ROI measured once); weekly report with"
            f" {', '.join(facts.get('weekly_report_env', []))}",
        ]
        out += ["    " + line.strip() for line in _scenario_details(savings)[2:3]]
    elif facts.get("skipped"):
        out.append(f"  C (A + savings recommendations, {facts.get('context')}) not measured: {facts['skipped']}")
    cadence, reports = scenarios.get("D"), figures.get("reports", {})
    if cadence is not None:
        posted = reports.get("posted", {})
        digests = posted.get("digests", {})
        out += [
            f"  D = A + the daily digest and the month-close report (opt-in: {', '.join(reports.get('context', {}))}"
            f" on; no function, schedule or alarm of their own, so no fixed charge): usage"
            f" {usd(Decimal(cadence['usd']))}, {usd(Decimal(cadence['usd']) - Decimal(a['usd']))} more than A: "
            + ", ".join(bill_changes(a, cadence)),
            f"    digests: {digests.get('posted', 0)} days posted, {digests.get('quiet', 0)} quiet (the guard's own"
            " requests, none more); month-close: "
            + "; ".join(posted.get("month_close", []))
            + " (the synthetic days mark only their last day estimated, so the guard's pages call October"
            " final from the 2nd and one history request a day disagrees until the 4th; Cost Explorer's"
            " real pages keep the month estimated, and those days cost nothing), then nothing more",
        ]
    return out


def fixed_lines(figures: Mapping[str, Any]) -> list[str]:
    """Each stack's fixed monthly charges: stack | fixed items | fixed $/month, then each stack's lines
    (which alarms, which polling), what has no fixed charge, and the opt-in dashboards."""
    stacks = figures["fixed"]
    width = max([len(s["items"]) for s in stacks.values()] + [len("fixed items")])
    out = ["  Fixed monthly charges per stack, counted from each synthesized template (list prices, no free tier):",
           f"    {'stack':8s} | {'fixed items':{width}s} | fixed $/month"]  # fmt: skip
    for name, stack in stacks.items():
        out.append(f"    {name:8s} | {stack['items']:{width}s} | {usd(Decimal(stack['usd']))}")
    for name, stack in stacks.items():
        for line in stack["lines"]:
            out.append(f"    {name}: {line['service']} {line['item']} x {_qty(line['quantity'])} ="
                       f" {usd(Decimal(line['usd']))}" + (f" ({line['note']})" if line["note"] else ""))  # fmt: skip
    out.append("    not counted (no fixed monthly charge of their own; billed by use or free): " + "; ".join(
        f"{name}: " + ", ".join(f"{n} {kind.removeprefix('AWS::')}" for kind, n in stack["not_counted"].items())
        for name, stack in stacks.items()))  # fmt: skip
    dashboards = {s: Decimal(n) for s, n in figures.get("opt_in_dashboards", {}).items() if Decimal(n)}
    if dashboards:
        price = PRICES["cloudwatch.dashboard"].unit_price
        out.append("    opt-in dashboards (context dashboard: true): " + ", ".join(
            f"{s} +{usd(n * price, 2)}" for s, n in dashboards.items())
            + " a month (an account's first three dashboards are free; counted at list price)")  # fmt: skip
    return out


def deployment_lines(figures: Mapping[str, Any]) -> list[str]:
    out = ["  Deployments against their targets (fixed: the sum of their stacks'; usage: the scenario's):"]
    for n, d in enumerate(figures["deployments"]):
        target = f" (target <= ${Decimal(d['usage_target']):.2f})" if d["usage_target"] else " (reported)"
        verdict = "not judged (smoke run)" if d["met"] is None else ("MET" if d["met"] else "MISSED")
        total = Decimal(d["fixed_usd"]) + Decimal(d["usage_usd"])
        out.append(f"    ({'ab'[n]}) {d['label']} [{' + '.join(d['stacks'])}]: fixed {usd(Decimal(d['fixed_usd']), 2)}"
                   f" (target <= ${Decimal(d['fixed_target']):.2f}) + usage {usd(Decimal(d['usage_usd']))} (scenario"
                   f" {d['scenario']}){target} = {usd(total, 2)} a month -- {verdict}: {d['reason']}")  # fmt: skip
    return out


def report(figures: Mapping[str, Any]) -> list[str]:
    stripe = figures["stripe"]
    schedules = figures["template"]["schedules"]
    attribution = figures.get("attribution", {})
    routed = attribution.get("routed_teams", [])
    deploy_time = figures["template"].get("deploy_time", [])
    out = [
        f"Self-cost: the deployment's own AWS bill for {figures['month']} at us-east-1 list prices"
        " (devtools/selfcost/):",
        "  every AWS request the handlers made on the embedded AWS, counted by a botocore hook and converted to",
        "  billable units; memory and schedules from the three synthesized stacks"
        f" ({figures['executed_invocations']:,} invocations executed in {figures['seconds']['total']} s; schedules: "
        + ", ".join(f"{name} {expr} = {n}" for name, (expr, n) in schedules.items())
        + (f"; run only at deploy time: {', '.join(deploy_time)}" if deploy_time else "") + ")",
    ]  # fmt: skip
    titles = {
        "A": "Scenario A (core + costs): one account, no Stripe, cdk.json defaults (attribution by tag:Team and"
             " tag:CostCenter, no team routed yet) -- 5 weekly reports, 30 budget-guard runs over 5 budgets"
             " (2 scope kinds), 6 anomaly sightings, the chargeback on the 1st",
        "B": f"Scenario B (everything): A's reports with {len(routed)} teams routed to their own channels"
             f" ({', '.join(routed)}: {attribution.get('team_cards_posted', '?')} team cards posted)"
             f" + {stripe['events_full']:,} Stripe events/month ({stripe['groups']} customer"
             f" groups of devtools.billing_month; {stripe['events_sampled']:,} events through the webhook, weighted x"
             f"{stripe['scale']}), the notifier, 720 dunning runs ({stripe['dunning_busy_runs_sampled']} with due"
             f" steps, ~{Decimal(stripe['dunning_busy_runs_month']):.0f} a month), 30 reconciliations (3 executed x 10)"
             " and 5 exports on the ledger replicated to full size, 20 admin calls (9 executed, weighted)",
    }  # fmt: skip
    for label in ("A", "B"):
        scenario = figures["scenarios"][label]
        out.append(f"  {titles[label]}")
        out += _table(scenario)
        out.append(f"    usage total {usd(Decimal(scenario['usd']))} at list price"
                   f" ({usd(Decimal(scenario['usd_after_free_tier']))} if the free tier covered it)")  # fmt: skip
        out += _scenario_details(scenario)
        if label == "A":
            out += _variant_lines(figures)
            idle = figures["scenarios"].get("billing-idle")
            if idle is not None:
                top = sorted(idle["lines"], key=lambda line: -Decimal(line["usd"]))[:3]
                biggest = ", ".join(f"{line['service']} {usd(Decimal(line['usd']))}" for line in top)
                out.append(
                    "  The billing stack deployed with no Stripe traffic (720 dunning runs: 72 executed x 10;"
                    f" 30 reconciliations; 5 exports): usage {usd(Decimal(idle['usd']))} ({biggest})"
                )
    out += fixed_lines(figures)
    if figures.get("harness_problems"):
        out.append("  HARNESS PROBLEMS (figures may be off): " + "; ".join(figures["harness_problems"][:5]))
    out.append("  assumptions: " + "; ".join(ASSUMPTIONS))
    out.append("  not counted: " + "; ".join(NOT_COUNTED))
    if figures.get("smoke"):
        out.insert(0, f"SMOKE RUN (the first {SMOKE.days} days, {stripe['sample_groups']} sampled customer groups): "
                      f"the code paths of the month, not its bill; correct: {figures['correct']}")  # fmt: skip
    out += deployment_lines(figures)
    return out
