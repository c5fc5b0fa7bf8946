"""The month measured end to end (`python -m devtools.selfcost`, `--json` for make bench, `--smoke`):
synthesis, the scenarios on the embedded AWS, the bills, and the deployments judged."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.selfcost import __doc__ as PACKAGE_DOC
from devtools.selfcost.dynamodb import MotoTables, storage_counts, table_storage
from devtools.selfcost.lambdas import Invocation, Lambdas, measure_init_ms
from devtools.selfcost.metering import AwsMeter
from devtools.selfcost.prices import HOURS_PER_BILLING_MONTH, PRICES, Bill, bill_json, usd
from devtools.selfcost.report import report
from devtools.selfcost.scenarios_billing import is_billing_table, run_idle_billing, run_stripe_month
from devtools.selfcost.scenarios_costs import (
    NO_ATTRIBUTION,
    NO_ATTRIBUTION_LABEL,
    REPORTS_CONTEXT,
    ROUTED_TEAMS,
    SAVINGS_CONTEXT,
    SAVINGS_FUNCTION,
    CostAnswers,
    clear_report_state,
    facts_of,
    opted_in_templates,
    report_overrides,
    run_reports,
    run_savings,
    with_savings_refresh,
)
from devtools.selfcost.schedules import runs_in_month
from devtools.selfcost.simulation import FULL, MONTH, SMOKE, TARGET_USD, Deployment, Scale, Simulation, usage_counts
from devtools.selfcost.template import PRODUCTS, STAGE, StackFixed, synthesize_templates

STAGE_LEVEL = "stage-level"  # a metric no function owns (no service dimension)
# The deployments judged: (label, stacks, scenario whose usage they carry, fixed target, usage target).
DEPLOYMENTS: tuple[tuple[str, tuple[str, ...], str, Decimal, Decimal | None], ...] = (
    ("core + costs, cdk.json defaults (attribution on, savings off)", ("Core", "Costs"), "A", Decimal("1.50"),
     TARGET_USD),
    ("everything (core + costs + billing), scenario B's traffic", PRODUCTS, "B", Decimal("3.50"), None),
)  # fmt: skip


def _summary(records: Sequence[Invocation]) -> dict[str, Any]:
    by_function: dict[str, dict[str, Any]] = {}
    calls: defaultdict[str, Decimal] = defaultdict(Decimal)
    for r in records:
        row = by_function.setdefault(r.function, {"invocations": Decimal(0), "cold": Decimal(0), "errors": Decimal(0),
                                                  "gb_s": Decimal(0), "executed": 0})  # fmt: skip
        row["invocations"] += r.weight
        row["cold"] += r.weight if r.cold else 0
        row["errors"] += r.weight if r.error else 0
        row["gb_s"] += r.units["lambda.gb_second"] * r.weight
        row["executed"] += 1
        for name, n in r.calls.items():
            calls[name] += Decimal(n) * r.weight
    errors = sorted({f"{r.function}: {r.error}" for r in records if r.error})
    hours: dict[Any, set[int]] = defaultdict(set)
    owners: dict[Any, tuple[str, str]] = {}  # billed metric -> (who sends it, its label)
    for r in records:
        for metric in r.metrics:
            hours[metric.billed].update(r.hours)
            label = metric.name + "".join(f"[{k}={v}]" for k, v in metric.dimensions if k != "service")
            owners[metric.billed] = (STAGE_LEVEL if metric.shared else metric.function, label)
    metrics: dict[str, dict[str, str]] = {}
    metric_hours: dict[str, dict[str, int]] = defaultdict(dict)
    for billed, seen in hours.items():
        owner, label = owners[billed]
        metric_hours[owner][label] = len(seen)
        row = metrics.setdefault(owner, {"metrics": "0", "metric_months": "0"})
        row["metrics"] = str(int(row["metrics"]) + 1)
        row["metric_months"] = str(Decimal(row["metric_months"]) + Decimal(len(seen)) / HOURS_PER_BILLING_MONTH)
    return {
        "metrics": {
            k: {"metrics": v["metrics"], "metric_months": str(Decimal(v["metric_months"]).quantize(Decimal("0.001")))}
            for k, v in sorted(metrics.items())
        },
        "functions": {
            k: {kk: str(v.quantize(Decimal("0.001"))) if isinstance(v, Decimal) else v for kk, v in row.items()}
            for k, row in sorted(by_function.items())
        },  # fmt: skip
        "metric_hours": {k: dict(sorted(v.items())) for k, v in sorted(metric_hours.items())},
        "calls": {k: str(Decimal(v).quantize(Decimal("0.1"))) for k, v in sorted(calls.items())},
        "errors": errors[:5],
    }


def _cadence_posts(records: Sequence[Invocation]) -> dict[str, Any]:
    """What scenario D's reports did: digests posted and quiet days, month-close actions, by day."""
    digests = {"posted": 0, "quiet": 0}
    closes: list[str] = []
    for record in records:
        answer = record.result if isinstance(record.result, dict) else {}
        digest = answer.get("digest")
        if digest:
            digests["posted" if digest["posted"] else "quiet"] += 1
        close = answer.get("month_close")
        quiet_actions = ("waiting for the chargeback", "no month closing", "final report already posted")
        if close and not close["action"].startswith(quiet_actions):
            n = close["cost_explorer_requests"]
            closes.append(f"{record.at:%d %b}: {close['action']} ({n} request{'s' if n != 1 else ''})")
    return {"digests": digests, "month_close": closes}


def judge(fixed: Mapping[str, Mapping[str, Any]], scenarios: Mapping[str, Mapping[str, Any]],
          judged: bool) -> list[dict[str, Any]]:  # fmt: skip
    """Each deployment's fixed charges (the sum of its stacks') and usage against its targets: MET or
    MISSED with the reason (None when not judged: a smoke run)."""
    out = []
    for label, stacks, scenario, fixed_target, usage_target in DEPLOYMENTS:
        fixed_usd = sum((Decimal(fixed[s]["usd"]) for s in stacks), Decimal(0))
        usage_usd = Decimal(scenarios[scenario]["usd"])
        reasons, met = [], True
        for what, value, target, detail in (
            ("fixed", fixed_usd, fixed_target, ", ".join(f"{s} {usd(Decimal(fixed[s]['usd']), 2)}" for s in stacks)),
            (
                "usage",
                usage_usd,
                usage_target,
                ", ".join(
                    f"{line['service']} {usd(Decimal(line['usd']), 2)}"
                    for line in sorted(scenarios[scenario]["lines"], key=lambda line: -Decimal(line["usd"]))
                    if Decimal(line["usd"]) >= Decimal("0.005")
                ),
            ),  # the lines that make it
        ):
            if target is None:
                continue
            ok = value <= target
            met &= ok
            reasons.append(f"{what} ${value:.2f} {'<=' if ok else '>'} ${target:.2f}" + (f" ({detail})" if detail and
                                                                                        not ok else ""))  # fmt: skip
        out.append({"label": label, "stacks": list(stacks), "scenario": scenario, "fixed_usd": str(fixed_usd),
                    "fixed_target": str(fixed_target), "usage_usd": str(usage_usd),
                    "usage_target": None if usage_target is None else str(usage_target),
                    "met": met if judged else None, "reason": "; ".join(reasons)})  # fmt: skip
    return out


def measure(scale: Scale = FULL) -> dict[str, Any]:
    """Every scenario's monthly bill (money as decimal strings), each stack's fixed charges, the
    deployments judged, and what they were computed from."""
    for key in [k for k in os.environ if k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))]:
        del os.environ[key]
    started = time.perf_counter()
    templates = synthesize_templates()
    facts = facts_of(templates)
    assert facts is not None
    fixed = {stack: StackFixed.from_template(stack, template) for stack, template in templates.items()}
    opted_templates, not_synthesized = opted_in_templates()
    opted_in = facts_of(opted_templates)
    opted_fixed = {s: StackFixed.from_template(s, t) for s, t in (opted_templates or {}).items()}
    synth_s = time.perf_counter() - started

    from devtools.chat_recorder import ChatRecorder
    from devtools.embedded_aws import EmbeddedAws
    from devtools.moto_rollback import item_level_rollback
    from devtools.stripe_fake import StripeFake

    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    meter = AwsMeter(MotoTables(), facts.topics)
    month_start = datetime(MONTH[0], MONTH[1], 1, tzinfo=UTC)

    def chat_bytes() -> int:
        return sum(len(r.body) + len(r.path) + 16 + sum(len(k) + len(v) + 4 for k, v in r.headers.items())
                   for r in chat.received)  # fmt: skip

    fake = StripeFake(now=lambda: int(month_start.timestamp()) + 29 * 86400).start()
    stripe_events: list[dict[str, Any]] = []
    fake.on_event(stripe_events.append)

    def take_events() -> list[dict[str, Any]]:
        taken = list(stripe_events)
        stripe_events.clear()
        return taken

    try:
        with aws.activated(), meter.installed(), item_level_rollback():
            sim_facts, savings_schedule = with_savings_refresh(facts, opted_in)
            aws.create_recommendations_table(STAGE)
            deployment = Deployment(aws, sim_facts, chat.url)
            aws.client("ses").verify_email_identity(EmailAddress="billing@finops-guard.example")
            env = {name: {**e, "FINOPSGUARD_STRIPE_API_BASE": fake.base_url}
                   for name, e in deployment.environments.items()}  # fmt: skip
            savings_weekly: dict[str, str] = {}
            if opted_in is not None and savings_schedule is not None:
                opted_weekly = deployment.environment_of(opted_in.functions["weekly-report"])
                savings_weekly = {k: v for k, v in opted_weekly.items() if env["weekly-report"].get(k) != v}
            init_ms = measure_init_ms(sim_facts.functions, env, runs=scale.init_runs)
            lambdas = Lambdas(sim_facts, env, init_ms, meter, chat_bytes, month_start)
            sim = Simulation(aws, sim_facts, deployment, lambdas, days=scale.days)
            answers = CostAnswers(aws)
            t0 = time.perf_counter()
            reports = run_reports(sim, answers)
            idle = run_idle_billing(sim)
            report_storage = table_storage(aws)
            t1 = time.perf_counter()
            clear_report_state(sim)
            bare = run_reports(sim, answers, overrides=NO_ATTRIBUTION, chargeback=False)
            t2 = time.perf_counter()
            clear_report_state(sim)
            savings: list[Invocation] = []
            if savings_schedule is not None:
                savings = run_savings(sim, answers, savings_schedule, savings_weekly)
            savings_storage = table_storage(aws)
            t3 = time.perf_counter()
            clear_report_state(sim)
            cadence_env = report_overrides(deployment, opted_in, env)
            cadence: list[Invocation] = []
            if cadence_env:
                cadence = run_reports(sim, answers, function_overrides=cadence_env)
                clear_report_state(sim)
            t35 = time.perf_counter()
            deployment.route_teams(ROUTED_TEAMS, month_start - timedelta(days=1))
            team_posts_before = sum(1 for r in chat.received if r.path.startswith("/teams/"))
            routed = run_reports(sim, answers)
            team_posts = sum(1 for r in chat.received if r.path.startswith("/teams/")) - team_posts_before
            routed_storage = table_storage(aws)
            # Scenario B's deployment: the real restricted key and a verified dunning sender.
            key_name = next(n for n in deployment.secret_names if n.endswith("stripe-api-key"))
            aws.client("secretsmanager").put_secret_value(SecretId=key_name, SecretString=fake.api_key)
            for name in ("dunning-sender", "reconciliation", "billing-admin"):
                env[name]["FINOPSGUARD_DUNNING_SENDER_EMAIL"] = "billing@finops-guard.example"
            billing, stripe_figures = run_stripe_month(sim, fake, take_events, scale.sample_groups,
                                                       scale.reconciliations)  # fmt: skip
            t4 = time.perf_counter()
    finally:
        fake.stop()
        chat.stop()
        aws.stop()
    savings_facts: dict[str, Any] = {"context": dict(SAVINGS_CONTEXT)}
    if opted_in is None or savings_schedule is None:
        savings_facts["skipped"] = not_synthesized or f"that template has no {SAVINGS_FUNCTION} schedule"
    else:
        no_dashboards = {s: {k: v for k, v in f.counts.items() if k != "cloudwatch.dashboard"}
                         for s, f in opted_fixed.items()}  # fmt: skip
        more = sum((Bill.from_counts(c).usd for c in no_dashboards.values()), Decimal(0)) - sum(
            (f.bill.usd for f in fixed.values()), Decimal(0)
        )
        more_alarms = sum(len(f.alarms) for f in opted_fixed.values()) - sum(len(f.alarms) for f in fixed.values())
        savings_facts.update(
            weekly_report_env=sorted(savings_weekly),
            more_fixed_usd=str(more),
            more_alarms=more_alarms,
            memory_mb=opted_in.functions[SAVINGS_FUNCTION].memory_mb,
            schedule=[savings_schedule.expression, len(runs_in_month(savings_schedule.expression,
                                                                     savings_schedule.timezone, *MONTH))],
        )  # fmt: skip
    recommendations = {k: v for k, v in savings_storage.items() if k.endswith("-recommendations")}
    costs_sizes = {k: v for k, v in report_storage.items() if not is_billing_table(k)}
    idle_sizes = {k: v for k, v in report_storage.items() if is_billing_table(k)}
    c_sizes = {**costs_sizes, **recommendations}
    b_sizes = {**{k: v for k, v in routed_storage.items() if not is_billing_table(k)},
               **{k: v for k, v in stripe_figures["storage"].items() if is_billing_table(k)}}  # fmt: skip
    weekly_less = [r for r in reports if r.function != "weekly-report"]  # C replaces A's weekly reports
    scenarios = {}
    for label, records, sizes in (("A", reports, costs_sizes),
                                  (NO_ATTRIBUTION_LABEL, bare, costs_sizes),
                                  *([("C", weekly_less + savings, c_sizes)] if savings else []),
                                  *([("D", cadence, costs_sizes)] if cadence else []),
                                  ("billing-idle", idle, idle_sizes),
                                  ("B", routed + billing, b_sizes)):  # fmt: skip
        counts = usage_counts(records, storage_counts(sizes, facts.pitr_tables))
        unpriced = {k: str(v) for k, v in counts.items() if k not in PRICES}  # a service this table has no price for
        bill = Bill.from_counts({k: v for k, v in counts.items() if k in PRICES})
        scenarios[label] = {**bill_json(bill), **_summary(records), "unpriced": unpriced}
    stacks = {stack: f.to_json() for stack, f in fixed.items()}
    deployments = judge(stacks, scenarios, judged=scale == FULL)
    return {
        "month": f"{MONTH[0]}-{MONTH[1]:02d}",
        "target_usd": str(TARGET_USD),
        "scenarios": scenarios,
        "fixed": stacks,
        "opt_in_dashboards": {s: str(f.bill.quantity("cloudwatch.dashboard")) for s, f in opted_fixed.items()},
        "deployments": deployments,
        "met": scale == FULL and all(d["met"] for d in deployments),
        "template": {"memory_mb": {n: f.memory_mb for n, f in facts.functions.items()},
                     "schedules": {s.function: [s.expression, len(sim.runs(s))] for s in facts.schedules},
                     "deploy_time": list(facts.deploy_time), "init_ms": init_ms},
        "attribution": {"dimensions": env["weekly-report"].get("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", ""),
                        "routed_teams": list(ROUTED_TEAMS), "team_cards_posted": team_posts},
        "savings": savings_facts,
        "reports": {"context": dict(REPORTS_CONTEXT), "env": {f: sorted(e) for f, e in cadence_env.items()},
                    "posted": _cadence_posts(cadence)},
        "harness_problems": answers.problems,
        # Every scenario ran, priced every request, the harness answered every Cost Explorer request, and
        # every stack's fixed charges were counted.
        "correct": not answers.problems and bool(savings) and bool(cadence) and set(stacks) == set(PRODUCTS)
                   and all(s["usd"] != "0" and not s["unpriced"] for s in scenarios.values()),
        "smoke": scale != FULL,
        "stripe": {k: v for k, v in stripe_figures.items() if k != "storage"},
        "seconds": {"synth": round(synth_s, 1), "scenario_a": round(t1 - t0, 1),
                    "a_without_attribution": round(t2 - t1, 1), "scenario_c": round(t3 - t2, 1),
                    "scenario_d": round(t35 - t3, 1),
                    "scenario_b": round(t4 - t35, 1), "total": round(time.perf_counter() - started, 1)},
        "executed_invocations": len(lambdas.records),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(PACKAGE_DOC or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line (for make bench)")
    parser.add_argument("--smoke", action="store_true", help="the first days only: does the bench still run?")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    figures = measure(SMOKE if args.smoke else FULL)
    if args.json:
        print(json.dumps(figures, default=str))
    else:
        print("\n".join(report(figures)))
    if args.smoke:
        return 0 if figures["correct"] else 1
    return 0 if figures["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
