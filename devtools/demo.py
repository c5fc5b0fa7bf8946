"""`make demo`: FinOps Guard end to end on an embedded AWS; nothing leaves 127.0.0.1.

1. starts moto's ThreadedMotoServer and a chat webhook recorder on loopback;
2. creates what the stack creates (outbox, budget tables, webhook secrets, finance topic, and an
   EventBridge rule that catches `Budget Exceeded`);
3. applies a budget file with the CLI: one budget whose forecast crosses 90 %, one whose actual
   spend crosses 100 % (with a hard limit), and two comfortable ones;
4. routes two teams to their own channels with `finops-guard teams add` (data: Teams, owns the
   prod-data account; web: Teams and Slack);
5. seeds Cost Explorer with a synthetic organisation (4 accounts, 34 services, a SageMaker spike in
   prod-data, the last day Estimated, some spend untagged) and runs the daily budget guard, then the
   weekly report, exactly as Lambda would (functions/*/handler.py with Scheduler events), then last
   month's chargeback (CSVs to a versioned bucket, fetched back through the pre-signed link); the
   organisation has a promotional credit, shown apart from usage on the card and in the CSVs, and is
   an organisation in the embedded AWS (its caller is the management account), so the card ranks
   linked accounts; then a single account (the organisation deleted) gets its own card, which ranks
   regions and shows its credit and tax;
   before the weekly report, two daily savings refreshes (Cost Optimization Hub answered by
   botocore's Stubber: it is not in moto) with one recommendation accepted and implemented 20 days
   ago in between, so the card shows open savings and that item's measured ROI;
6. the reports at every cadence (issue 22): the chargeback also posts last month's month-close
   report (provisional: Cost Explorer still estimates the month), then the budget guard runs on the
   demo's next two mornings with the daily digest on: a loud day (the SageMaker spike, the anomalies
   just forwarded; Cost Explorer has meanwhile finalised last month, so the same run posts the final
   month-close report once) and a quiet day (nothing moved: nothing posted, the log says so);
7. writes what Teams, Slack, e-mail and EventBridge received, plus HTML previews, under out/
   (`--out DIR` elsewhere: tests/integration/core/test_demo_cards_consistency.py reads every card).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from devtools.billing_ops_demo import run_billing_operations
from devtools.chat_recorder import ChatRecorder
from devtools.embedded_aws import EmbeddedAws
from devtools.lambda_runner import ROOT, FakeContext, load_handler
from devtools.local_serve import LocalBilling

OUT = ROOT / "out"
STAGE = "demo"
# The organisation's monthly budget: the stored "Whole organisation" budget and the card's gauge
# (monthlyBudget) name the same amount, so the card never shows two budgets for one scope.
ORG_MONTHLY_BUDGET = "250000"


def context_defaults() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def scoped_actual(scope: dict, as_of) -> Decimal:
    """Month-to-date spend of the synthetic organisation inside `scope` (to size the demo budgets)."""
    from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
    from finops_guard.costs.budget_guard import evaluate
    from finops_guard.costs.budgets import parse_budget
    from finops_guard.costs.mock_data import synthetic_query_pages

    budget = parse_budget({"id": "probe", "amount": "1", "currency": "USD", "scope": scope})
    query = plan_queries([budget], as_of)[0]
    costs = collect_budget_costs(query, synthetic_query_pages(query.request()), as_of)
    return evaluate(costs["probe"], as_of).actual


def demo_budgets(as_of) -> list[dict]:
    from finops_guard.costs.budget_costs import collect_budget_costs, plan_queries
    from finops_guard.costs.budget_guard import evaluate
    from finops_guard.costs.budgets import parse_budget
    from finops_guard.costs.mock_data import synthetic_query_pages

    compute = {"service": ["Amazon Elastic Compute Cloud - Compute"]}
    probe = parse_budget({"id": "probe", "amount": "1", "currency": "USD", "scope": compute})
    query = plan_queries([probe], as_of)[0]
    forecast = evaluate(collect_budget_costs(query, synthetic_query_pages(query.request()), as_of)["probe"], as_of)
    data_actual = scoped_actual({"account": ["222222222222"]}, as_of)
    web_month = scoped_actual({"tag": {"Team": ["web"]}}, as_of)
    whole = lambda value: str(value.quantize(Decimal("1")))  # noqa: E731
    return [
        {
            "id": "prod-compute",
            "name": "EC2 compute, all accounts",
            "scope": compute,
            "amount": whole(forecast.forecast.likely / Decimal("0.92")),  # forecast ~92 %
            "currency": "USD",
            "alert_on": ["forecasted"],
            "notify": ["teams", "slack"],
            "owner": "platform-team@example.com",
        },
        {
            "id": "data-platform",
            "name": "Data platform account",
            "scope": {"account": ["222222222222"]},
            "amount": whole(data_actual / Decimal("1.04")),  # actual ~104 %
            "currency": "USD",
            "alert_on": ["actual"],
            "notify": ["teams", "email"],
            "owner": "data-lead@example.com",
            "enforce_hard_limit": True,
        },
        {
            "id": "web-team",
            "name": "Team web (tag)",
            "scope": {"tag": {"Team": ["web"]}},
            "amount": whole(web_month * 8),  # a quarter is ~3 months: comfortably under
            "currency": "USD",
            "period": "quarterly",
        },
        {"id": "organisation", "name": "Whole organisation", "amount": ORG_MONTHLY_BUDGET, "currency": "USD"},
    ]


def main(argv: list[str] | None = None) -> int:
    from finops_guard import cli
    from finops_guard.core.formats import format_day, format_period
    from finops_guard.core.money import format_money
    from finops_guard.core.periods import report_window
    from finops_guard.core.preview import render_page, render_slack_html, render_teams_html
    from finops_guard.costs.budgets import parse_budgets
    from finops_guard.costs.cadence_runtime import cadence_settings

    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description="FinOps Guard end to end, locally")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the payloads and previews (out/)")
    out: Path = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    context = context_defaults()
    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    fired_at = datetime.now(UTC).replace(microsecond=0)
    window = report_window(fired_at)
    event = {"scheduled_time": fired_at.isoformat().replace("+00:00", "Z")}
    try:
        with aws.activated():
            outbox = aws.create_outbox_table(f"finops-guard-{STAGE}-outbox")
            budgets_table, alerts_table = aws.create_budget_tables(STAGE)
            topic, email_queue = aws.alert_topic_with_capture()
            events_queue = aws.budget_exceeded_capture()
            anomalies_table = aws.create_anomalies_table(STAGE)
            teams_secret, slack_secret = (f"finops-guard/{STAGE}/{c}-webhook-url" for c in ("teams", "slack"))
            aws.put_secret(teams_secret, chat.url("/teams"))
            aws.put_secret(slack_secret, chat.url("/slack"))
            routes_table = aws.create_team_routes_table(STAGE)
            export_bucket = aws.create_export_bucket(f"finops-guard-{STAGE}-exports")
            recommendations = aws.create_recommendations_table(STAGE)
            os.environ.update(
                {
                    "FINOPSGUARD_STAGE": STAGE,
                    "FINOPSGUARD_TIMEZONE": context["timezone"],
                    "FINOPSGUARD_CURRENCY": context["currency"],
                    "FINOPSGUARD_TOP_N": str(context["topN"]),
                    "FINOPSGUARD_MONTHLY_BUDGET": str(context.get("monthlyBudget") or ORG_MONTHLY_BUDGET),
                    "FINOPSGUARD_TEAMS_SECRET_NAME": teams_secret,
                    "FINOPSGUARD_SLACK_SECRET_NAME": slack_secret,
                    "FINOPSGUARD_OUTBOX_TABLE": outbox,
                    "FINOPSGUARD_BUDGETS_TABLE": budgets_table,
                    "FINOPSGUARD_BUDGET_ALERTS_TABLE": alerts_table,
                    "FINOPSGUARD_ALERT_TOPIC_ARN": topic,
                    "FINOPSGUARD_ANOMALIES_TABLE": anomalies_table,
                    # The synthetic organisation is tagged `Team` and `CostCenter`, some of it untagged.
                    "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": "tag:Team,tag:CostCenter",
                    "FINOPSGUARD_TEAM_DIMENSION": "tag:Team",
                    "FINOPSGUARD_TEAM_ROUTES_TABLE": routes_table,
                    "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": f"finops-guard/{STAGE}/team-webhooks",
                    "FINOPSGUARD_CHARGEBACK_BUCKET": export_bucket,
                    "FINOPSGUARD_RECOMMENDATIONS_TABLE": recommendations,
                    # A stage deployed three days ago: the card's Setup section says anomaly detection
                    # is still learning (the stack sets this from the services monitor's creation date).
                    "FINOPSGUARD_ANOMALY_MONITOR_SINCE": (fired_at.date() - timedelta(days=3)).isoformat(),
                    "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                }
            )

            print("== budgets apply out/budgets.json (the CLI, against the embedded table)")
            documents = demo_budgets(window.as_of)
            (out / "budgets.json").write_text(json.dumps({"budgets": documents}, indent=2) + "\n")
            cli.main(["budgets", "apply", str(out / "budgets.json")])

            print("== teams add data, teams add web (each team's own channels)")
            add_demo_teams(aws, chat)

            print("== daily budget guard")
            os.environ["POWERTOOLS_SERVICE_NAME"] = "budget-guard"
            aws.seed_budget_costs(parse_budgets(documents), window.as_of)
            guard = load_handler("budget_guard").lambda_handler(
                event, FakeContext(f"finops-guard-{STAGE}-budget-guard")
            )
            print(f"   fired: {', '.join(guard['fired'])}; Cost Explorer requests: {guard['cost_explorer_requests']}")
            alerts_received = len(chat.received)

            print("== savings refresh, savings accept + implement, savings refresh (ROI measured)")
            os.environ["POWERTOOLS_SERVICE_NAME"] = "savings-refresh"
            savings_lines = run_savings(aws, fired_at)

            print("== weekly report (an organisation: the card ranks linked accounts)")
            os.environ["POWERTOOLS_SERVICE_NAME"] = "weekly-report"
            aws.client("organizations").create_organization(FeatureSet="ALL")  # the caller manages it
            seed_weekly(aws, window)
            weekly = load_handler("weekly_report").lambda_handler(
                {"report": "weekly", **event}, FakeContext(f"finops-guard-{STAGE}-weekly-report")
            )
            emails = aws.drain(email_queue)
            exceeded = aws.drain(events_queue)
            weekly_received = len(chat.received)

            print("== monthly chargeback (last month, as on the 1st), and its month-close report")
            os.environ["POWERTOOLS_SERVICE_NAME"] = "chargeback"
            os.environ["FINOPSGUARD_MONTH_CLOSE_REPORT"] = "true"
            cadence_settings.cache_clear()  # read once per container: this one read it off
            chargeback, chargeback_files = run_chargeback(aws, chat, fired_at, context["timezone"], out,
                                                          budgets=parse_budgets(documents))  # fmt: skip
            chargeback_received = len(chat.received)

            print("== weekly report of a single account (no organisation: the card ranks regions)")
            single = run_single_account(aws, chat, event, window)
            single_received = len(chat.received)

            print("== cost anomaly alerts (SQS batches from the SNS topic and the EventBridge rule)")
            os.environ["POWERTOOLS_SERVICE_NAME"] = "anomaly-alerts"
            anomaly_steps = run_anomaly_stream(load_handler("anomaly_alerts"), chat)
            anomaly_received = len(chat.received)

            print("== Stripe: a month of signed webhook events over HTTP to the local endpoint")
            billing_summary, billing = replay_billing_month(aws, chat)
            billing_received = len(chat.received)

            print("== billing operations: dunning, reconciliation, invoice bot (loopback Stripe)")
            operations, dunning_sections = run_billing_operations(aws, billing)
            notify_new_billing_alerts(aws, billing)
            operations_received = len(chat.received)

            print("== the next two mornings: the budget guard with the daily digest (a loud day, a quiet day)")
            cadence = run_cadence_days(aws, fired_at, parse_budgets(documents), chargeback["month"])
            closes = [r for r in chat.received if _title(r).startswith("Month close")]
            archive = fetch_month_close_archive(closes, out)
    finally:
        chat.stop()
        aws.stop()

    def preview(received) -> tuple[str, str]:
        payload = received.json()
        render = render_teams_html if received.path.startswith("/teams") else render_slack_html
        return f"{CHANNEL_NAMES[received.path]} ({len(received.body):,} bytes)", render(payload)

    weekly_msgs, alert_msgs = chat.received[alerts_received:weekly_received], chat.received[:alerts_received]
    month_close_msgs = [r for r in chat.received if _title(r).startswith("Month close")]
    chargeback_msgs = [r for r in chat.received[weekly_received:chargeback_received] if r not in month_close_msgs]
    single_msgs = chat.received[chargeback_received:single_received]
    anomaly_msgs = chat.received[single_received:anomaly_received]
    billing_msgs = chat.received[anomaly_received:billing_received]
    operations_msgs = chat.received[billing_received:operations_received]
    digest_msgs = [r for r in chat.received[operations_received:] if _title(r).startswith("Daily cost digest")]
    (out / "billing-operations.html").write_text(
        render_page(
            "FinOps Guard billing operations: finance channel cards, dunning e-mails and SMS",
            [preview(r) for r in operations_msgs] + dunning_sections,
        )
    )
    (out / "billing-alerts.html").write_text(
        render_page("FinOps Guard finance channel: billing alerts", [preview(r) for r in billing_msgs])
    )
    (out / "anomalies.html").write_text(
        render_page("FinOps Guard cost anomaly alerts", [preview(r) for r in anomaly_msgs])
    )
    for name, messages in (
        ("weekly", weekly_msgs),
        ("alert", alert_msgs),
        ("anomaly", anomaly_msgs),
        ("chargeback", chargeback_msgs),
        ("billing", billing_msgs),
        ("billing-operations", operations_msgs),
        ("digest", digest_msgs),
        ("monthclose", month_close_msgs),
    ):
        for i, received in enumerate(messages, 1):
            channel = received.path.strip("/").replace("/", "-")
            (out / f"{name}-{i}-{channel}-payload.json").write_text(
                json.dumps(received.json(), ensure_ascii=False, indent=2) + "\n"
            )
    (out / "weekly-report.html").write_text(
        render_page("FinOps Guard weekly report", [preview(r) for r in weekly_msgs])
    )
    (out / "weekly-report-single-account.html").write_text(
        render_page("FinOps Guard weekly report, a single account", [preview(r) for r in single_msgs])
    )
    for i, received in enumerate(single_msgs, 1):
        channel = received.path.strip("/").replace("/", "-")
        (out / f"weekly-single-account-{i}-{channel}-payload.json").write_text(
            json.dumps(received.json(), ensure_ascii=False, indent=2) + "\n"
        )
    email_sections = [(f"E-mail via SNS: {m['Subject']}", f"<pre>{_escape(m['Message'])}</pre>") for m in emails]
    (out / "budget-alerts.html").write_text(
        render_page("FinOps Guard budget alerts", [preview(r) for r in alert_msgs] + email_sections)
    )
    (out / "budget-exceeded-events.json").write_text(json.dumps(exceeded, indent=2) + "\n")
    (out / "chargeback.html").write_text(
        render_page(
            f"FinOps Guard chargeback, {format_period(chargeback['month'])}",
            [preview(r) for r in chargeback_msgs]
            + [(f"{name} (first lines)", f"<pre>{_escape(head)}</pre>") for name, head in chargeback_files],
        )
    )

    (out / "daily-digest.html").write_text(
        render_page(
            "FinOps Guard daily digest: a loud day and a quiet day",
            [preview(r) for r in digest_msgs]
            + [(f"Quiet day, {format_day(day)}: nothing posted", f"<p>{_escape(line)}</p>") for day, line in
               cadence["quiet"]],
        )
    )  # fmt: skip
    (out / "month-close.html").write_text(
        render_page(
            f"FinOps Guard month-close report, {format_period(chargeback['month'])}",
            [preview(r) for r in month_close_msgs]
            + [(f"{name} (first lines)", f"<pre>{_escape(head)}</pre>") for name, head in archive],
        )
    )

    print()
    print(f"Weekly report {weekly['report_id']} for cost days up to {weekly['as_of']} (UTC)")
    print(f"  month-to-date: {format_money(Decimal(weekly['month_to_date']), weekly['currency'])}")
    print(f"  Cost Explorer requests: weekly report {weekly['cost_explorer_requests']}, "
          f"budget guard {guard['cost_explorer_requests']} for {guard['budgets']} budgets")  # fmt: skip
    print(f"  budget alerts: {len(alert_msgs)} chat messages, {len(emails)} e-mails, "
          f"{len(exceeded)} Budget Exceeded events")  # fmt: skip
    print(f"  team cards: {', '.join(CHANNEL_NAMES[r.path] for r in weekly_msgs if r.path not in DEFAULT_PATHS)}")
    print(f"  {_charges_line(weekly_msgs)}")
    print(f"  single account: {single['cost_explorer_requests']} Cost Explorer requests; {_charges_line(single_msgs)};"
          f" sections: {', '.join(_sections(single_msgs))}")  # fmt: skip
    totals = ", ".join(
        f"{dimension} {format_money(Decimal(total), chargeback['currency'])}"
        for dimension, total in chargeback["totals"].items()
    )
    print(f"  chargeback {format_period(chargeback['month'])}: {totals};")
    print(f"    {chargeback['cost_explorer_requests']} Cost Explorer requests; CSVs fetched through the card links")
    close = chargeback.get("month_close", {})
    print(f"    month-close {close.get('month')}: {close.get('action')} ({close.get('cost_explorer_requests')} more"
          " Cost Explorer requests: the 13-month history and the budgets; the untagged share reused)")  # fmt: skip
    print("\n".join(savings_lines))
    print("\n".join(cadence["lines"]))
    for step, outcome in anomaly_steps:
        print(f"  anomalies — {step}: {outcome}")
    print(billing_summary)
    print("\n".join(operations))
    print(f"Written under {out}/:")
    for path in sorted(out.iterdir()):
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"Open {out / 'weekly-report.html'}, {out / 'chargeback.html'}, {out / 'budget-alerts.html'},")
    print(f"{out / 'weekly-report-single-account.html'}, {out / 'anomalies.html'}, {out / 'daily-digest.html'},")
    print(f"{out / 'month-close.html'},")
    print(f"{out / 'billing-alerts.html'} and {out / 'billing-operations.html'} in a browser.")
    ok = (
        len(weekly_msgs) == 2 + 3  # default Teams and Slack; data's Teams, web's Teams and Slack
        and len(chargeback_msgs) == 2
        and len(chargeback_files) == 2
        and "Credits -$" in _charges_line(weekly_msgs)
        and len(single_msgs) == 1
        and any(section.startswith("Top regions (MTD · ") for section in _sections(single_msgs))
        and "Credits -$" in _charges_line(single_msgs)
        and all(",credits," in head.splitlines()[0] for _, head in chargeback_files)
        and alert_msgs
        and emails
        and len(exceeded) == 1
        and len(anomaly_msgs) == 8 + 3  # default channels; team data owns the SageMaker spike's account
        and billing_msgs
        and len(operations_msgs) >= 2
        and len(digest_msgs) >= 2  # the loud day: the default channels (and the teams that moved)
        and len(cadence["quiet"]) >= 1
        and len(month_close_msgs) in (2, 4)  # provisional (and final) in Teams and Slack
        and len(archive) == 2
    )
    return 0 if ok else 1


DEFAULT_PATHS = {"/teams", "/slack"}
CHANNEL_NAMES = {
    "/teams/solo": "Teams (a single account's own deployment)",
    "/teams": "Teams (default channel)",
    "/slack": "Slack (default channel)",
    "/teams/data": "Teams (team data)",
    "/teams/web": "Teams (team web)",
    "/slack/web": "Slack (team web)",
}
DEMO_TEAMS = {"data": ("/teams/data", None, ["222222222222"]), "web": ("/teams/web", "/slack/web", [])}


def add_demo_teams(aws: EmbeddedAws, chat: ChatRecorder) -> None:
    """The team webhooks secret as the stack creates it ({}), then `finops-guard teams add` as an
    operator would: each team's URLs into that secret, its route into the table."""
    from finops_guard import cli

    aws.put_secret(f"finops-guard/{STAGE}/team-webhooks", "{}")
    for team, (teams_path, slack_path, accounts) in DEMO_TEAMS.items():
        command = ["teams", "add", team, "--stage", STAGE]
        for channel, path in (("teams", teams_path), ("slack", slack_path)):
            if path:
                command += [f"--{channel}-url", chat.url(path)]
        for account in accounts:
            command += ["--account", account]
        cli.main(command)


def seed_weekly(aws: EmbeddedAws, window) -> None:
    """Cost Explorer's answers to the weekly report's requests: the organisation's (by RECORD_TYPE
    and linked account: usage, and the credit apart), then one per dimension (team, then CostCenter)."""
    from finops_guard.costs.attribution import attribution_request
    from finops_guard.costs.breakdown import Breakdown, main_request
    from finops_guard.costs.cost_metric import DEFAULT_METRIC
    from finops_guard.costs.mock_data import synthetic_query_pages
    from finops_guard.costs.teams import parse_dimensions

    main = main_request(window.query_start, window.query_end, DEFAULT_METRIC, Breakdown.LINKED_ACCOUNT,
                        by_record_type=True)  # fmt: skip
    aws.seed_cost_and_usage(synthetic_query_pages(main))
    for dimension in parse_dimensions(os.environ["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"].split(",")):
        request = attribution_request(dimension, window.query_start, window.query_end, "DAILY")
        aws.seed_cost_and_usage(synthetic_query_pages(request))


SINGLE_ACCOUNT = {"111111111111": "prod-platform"}


def run_single_account(aws: EmbeddedAws, chat: ChatRecorder, event: dict, window) -> dict:
    """One account, no organisation, no attribution, its own outbox and channel: the weekly report
    finds no organisation (organizations:DescribeOrganization), so its card ranks regions; usage by
    SERVICE and REGION, then the month's credits, refunds and tax (one more request)."""
    from decimal import Decimal

    from finops_guard.core.adapters import secrets
    from finops_guard.core.runtime import chat_settings
    from finops_guard.costs import runtime
    from finops_guard.costs.breakdown import Breakdown, main_request
    from finops_guard.costs.cost_metric import DEFAULT_METRIC
    from finops_guard.costs.mock_data import Extras, synthetic_query_pages
    from finops_guard.costs.record_types import charges_request

    organizations = aws.client("organizations")
    organizations.delete_organization()
    saved = dict(os.environ)
    secret = f"finops-guard/{STAGE}-solo/teams-webhook-url"
    aws.put_secret(secret, chat.url("/teams/solo"))
    for name in ("ATTRIBUTION_DIMENSIONS", "TEAM_DIMENSION", "TEAM_ROUTES_TABLE", "TEAM_WEBHOOKS_SECRET_NAME",
                 "BUDGETS_TABLE", "BUDGET_ALERTS_TABLE", "RECOMMENDATIONS_TABLE", "SLACK_SECRET_NAME",
                 "ANOMALY_MONITOR_SINCE"):  # fmt: skip
        os.environ.pop(f"FINOPSGUARD_{name}", None)
    os.environ.update(
        FINOPSGUARD_OUTBOX_TABLE=aws.create_outbox_table(f"finops-guard-{STAGE}-solo-outbox"),
        FINOPSGUARD_TEAMS_SECRET_NAME=secret,
        FINOPSGUARD_MONTHLY_BUDGET="30000",
    )
    extras = Extras(tax_rate=Decimal("0.08"))  # the account's promotional credit, and sales tax
    requests = [
        main_request(window.query_start, window.query_end, DEFAULT_METRIC, Breakdown.REGION),
        charges_request(window.month_to_date.first, window.query_end, DEFAULT_METRIC),
    ]
    for request in requests:
        aws.seed_cost_and_usage(synthetic_query_pages(request, accounts=SINGLE_ACCOUNT, extras=extras))
    caches = (runtime.settings, runtime._reads_organisation, runtime.outbox, chat_settings)
    for cached in caches:
        cached.cache_clear()
    secrets.clear_cache()
    try:
        return load_handler("weekly_report").lambda_handler(
            {"report": "weekly", **event}, FakeContext(f"finops-guard-{STAGE}-solo-weekly-report")
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for cached in caches:
            cached.cache_clear()
        secrets.clear_cache()


def _card_facts(received) -> dict[str, str]:
    body = received.json()["attachments"][0]["content"]["body"]
    return {f["title"]: f["value"] for b in body if b["type"] == "FactSet" for f in b["facts"]}


def _charges_line(messages) -> str:
    """The default Teams card's usage, credits, refunds, tax and net line."""
    teams = [r for r in messages if r.path in ("/teams", "/teams/solo")]
    facts = _card_facts(teams[0]) if teams else {}
    return next((v for k, v in facts.items() if k.startswith("Usage, credits")), "no charges line")


def _sections(messages) -> list[str]:
    teams = [r for r in messages if r.path in ("/teams", "/teams/solo")]
    body = teams[0].json()["attachments"][0]["content"]["body"] if teams else []
    return [b["text"] for b in body if b.get("weight") == "Bolder" and "week over week" in b.get("text", "")]


def run_chargeback(
    aws: EmbeddedAws, chat: ChatRecorder, fired_at: datetime, timezone: str, out: Path = OUT, budgets: Sequence = ()
):
    """The chargeback function for last month, then each CSV fetched through its link in the card. With
    the month-close report on, Cost Explorer also answers its requests (history, then `budgets`)."""
    import urllib.request

    from finops_guard.costs.chargeback import chargeback_request, month_before
    from finops_guard.costs.cost_metric import DEFAULT_METRIC
    from finops_guard.costs.mock_data import synthetic_query_pages
    from finops_guard.costs.record_types import charges_request
    from finops_guard.costs.teams import parse_dimensions

    month = month_before(fired_at, timezone)
    for dimension in parse_dimensions(os.environ["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"].split(",")):
        aws.seed_cost_and_usage(synthetic_query_pages(chargeback_request(dimension, month)))
    by_service = {"Type": "DIMENSION", "Key": "SERVICE"}  # the month's credits, refunds and tax
    aws.seed_cost_and_usage(synthetic_query_pages(charges_request(month.first, month.end, DEFAULT_METRIC, by_service)))
    if os.environ.get("FINOPSGUARD_MONTH_CLOSE_REPORT") == "true":
        aws.seed_cost_and_usage(month_close_pages(month, fired_at.date(), budgets, dimensions=False))
    before = len(chat.received)
    event = {"scheduled_time": fired_at.isoformat().replace("+00:00", "Z")}
    result = load_handler("chargeback").lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-chargeback"))
    card = next(r for r in chat.received[before:] if r.path == "/teams").json()
    files = []
    for action in card["attachments"][0]["content"]["actions"]:
        with urllib.request.urlopen(action["url"], timeout=10) as response:  # noqa: S310 - the loopback S3
            text = response.read().decode()
        name = action["url"].split("?")[0].rsplit("/", 1)[1]
        (out / f"chargeback-{result['month']}-{name}").write_text(text, encoding="utf-8", newline="")
        files.append((f"chargeback-{result['month']}-{name}", "".join(text.splitlines(keepends=True)[:12])))
    return result, files


def month_close_pages(month, today: date, budgets, *, dimensions: bool, final: bool = False) -> list[dict]:
    """Cost Explorer's answers to a month-close run, in its order: the 13-month history, the budgets as
    of the month's last day, then (when nothing is reused from the chargeback) each dimension."""
    from finops_guard.costs.budget_costs import plan_queries
    from finops_guard.costs.chargeback import chargeback_request
    from finops_guard.costs.mock_data import synthetic_query_pages
    from finops_guard.costs.month_close import history_request, last_day
    from finops_guard.costs.teams import parse_dimensions

    pages = synthetic_query_pages(history_request(month, today))
    pages += [p for q in plan_queries(budgets, last_day(month)) for p in synthetic_query_pages(q.request())]
    if dimensions:
        for dimension in parse_dimensions(os.environ["FINOPSGUARD_ATTRIBUTION_DIMENSIONS"].split(",")):
            pages += synthetic_query_pages(chargeback_request(dimension, month))
    if final:  # AWS finalised the invoice: nothing of the month estimated, and late credits took 0.5 % off
        for page in pages:
            for result in page["ResultsByTime"]:
                result["Estimated"] = False
                if result["TimePeriod"]["Start"].startswith(str(month)):
                    for metric in [g["Metrics"] for g in result.get("Groups", ())] + [result.get("Total", {})]:
                        if "UnblendedCost" in metric:
                            amount = Decimal(metric["UnblendedCost"]["Amount"]) * Decimal("0.995")
                            metric["UnblendedCost"]["Amount"] = str(amount)
    return pages


def steady_last_day(pages: list[dict]) -> list[dict]:
    """A day when nothing moved: each group's last day set to its average of the 7 days before."""
    results = [r for page in pages for r in page["ResultsByTime"]]
    last = max(r["TimePeriod"]["Start"] for r in results)
    days = sorted({r["TimePeriod"]["Start"] for r in results})
    week = set(days[-8:-1])
    sums: dict[tuple, Decimal] = {}
    for result in results:
        if result["TimePeriod"]["Start"] in week:
            for group in result.get("Groups", ()):
                key = tuple(group["Keys"])
                sums[key] = sums.get(key, Decimal(0)) + Decimal(group["Metrics"]["UnblendedCost"]["Amount"])
    for result in results:
        if result["TimePeriod"]["Start"] == last:
            for group in result.get("Groups", ()):
                average = sums.get(tuple(group["Keys"]), Decimal(0)) / 7
                group["Metrics"]["UnblendedCost"]["Amount"] = str(average.quantize(Decimal("0.0000000001")))
    return pages


def run_cadence_days(aws: EmbeddedAws, fired_at: datetime, budgets: list, month_text: str) -> dict:
    """The budget guard on the demo's next two mornings with the daily digest on for the default
    channels and every routed team, and the month-close's daily look at last month."""
    from finops_guard.costs import cadence_runtime, runtime
    from finops_guard.costs.budget_costs import plan_queries
    from finops_guard.costs.chargeback import Month
    from finops_guard.costs.mock_data import synthetic_query_pages
    from finops_guard.costs.month_close_run import closed_month

    os.environ.update({"POWERTOOLS_SERVICE_NAME": "budget-guard", "FINOPSGUARD_DAILY_DIGEST": '["default", "team:*"]',
                       "FINOPSGUARD_MONTH_CLOSE_REPORT": "true"})  # fmt: skip
    runtime.settings.cache_clear()
    cadence_runtime.cadence_settings.cache_clear()
    handler = load_handler("budget_guard")
    month = Month.parse(month_text)
    lines, quiet = [], []
    try:
        for offset, steady in ((1, False), (2, True)):
            at = fired_at + timedelta(days=offset)
            as_of = at.date() - timedelta(days=1)
            aws.forget_cost_and_usage()  # the same requests, answered as Cost Explorer would a day later
            pages = [p for q in plan_queries(budgets, as_of) for p in synthetic_query_pages(q.request())]
            aws.seed_cost_and_usage(steady_last_day(pages) if steady else pages)
            if not steady and closed_month(as_of) == month:
                aws.seed_cost_and_usage(month_close_pages(month, at.date(), budgets, dimensions=True, final=True))
            event = {"scheduled_time": at.isoformat().replace("+00:00", "Z")}
            result = handler.lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-budget-guard"))
            digest, close = result["digest"], result["month_close"]
            lines.append(
                f"  daily digest of {as_of}: posted for {', '.join(digest['posted']) or 'nobody'}"
                f"{'; quiet for ' + ', '.join(digest['quiet']) if digest['quiet'] else ''}"
                f"; Cost Explorer requests: the guard's own {result['cost_explorer_requests']}, the digest's 0"
            )
            lines.append(f"    month-close {close['month']}: {close['action']}"
                         f" ({close['cost_explorer_requests']} Cost Explorer requests)")  # fmt: skip
            if digest["quiet"]:
                logged = '"daily digest quiet: nothing to report, nothing posted"'
                quiet.append((as_of, f"Quiet for {', '.join(digest['quiet'])}: nothing posted; the guard logged"
                                     f" {logged} for each."))  # fmt: skip
    finally:
        for key in ("FINOPSGUARD_DAILY_DIGEST", "FINOPSGUARD_MONTH_CLOSE_REPORT"):
            os.environ.pop(key, None)
        cadence_runtime.cadence_settings.cache_clear()
    return {"lines": lines, "quiet": quiet}


def fetch_month_close_archive(messages: list, out: Path) -> list[tuple[str, str]]:
    """The last month-close card's archive (its HTML page and CSV), fetched through its links."""
    import urllib.request

    teams = [r for r in messages if r.path == "/teams"]
    if not teams:
        return []
    files = []
    for action in teams[-1].json()["attachments"][0]["content"]["actions"]:
        with urllib.request.urlopen(action["url"], timeout=10) as response:  # noqa: S310 - the loopback S3
            text = response.read().decode()
        month, name = action["url"].split("?")[0].split("/")[-2:]
        (out / f"{name.replace('month-close', f'month-close-{month}')}").write_text(text, encoding="utf-8",
                                                                                      newline="")  # fmt: skip
        if name.endswith(".csv"):
            files.append((f"month-close-{month}.csv", "".join(text.splitlines(keepends=True)[:14])))
        else:
            files.append((f"month-close-{month}.html", "the self-contained page, beside this one"))
    return files


def _title(received) -> str:
    payload = received.json()
    if "attachments" in payload:
        return str(payload["attachments"][0]["content"]["body"][0].get("text", ""))
    return str(payload.get("text", ""))


def run_savings(aws: EmbeddedAws, fired_at: datetime) -> list[str]:
    """Two daily refreshes around an operator accepting and implementing the web team's EC2
    rightsizing 20 days ago; Cost Explorer's answer for its ROI: EC2 in that account cost 14.00 a
    day before and 12.00 after."""
    from dataclasses import replace
    from datetime import timedelta

    from botocore.stub import Stubber
    from finops_guard import cli
    from finops_guard.core.money import format_money
    from finops_guard.costs import runtime
    from finops_guard.costs.mock_data import synthetic_query_pages
    from finops_guard.costs.savings import roi_request

    from devtools.hub_stub import fake_client, hub_page, stub_listing

    hub = fake_client("cost-optimization-hub")
    setattr(runtime, "cost_optimization_hub_client", lambda: hub)  # noqa: B010 - the handler's one seam
    handler = load_handler("savings_refresh")
    event = {"scheduled_time": fired_at.isoformat().replace("+00:00", "Z")}
    implemented_on = (fired_at - timedelta(days=20)).date()
    with Stubber(hub) as stubber:
        stub_listing(stubber, hub_page("page1"), hub_page("page2"))
        first = handler.lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-savings-refresh"))
        table = runtime.recommendations_table(os.environ["FINOPSGUARD_RECOMMENDATIONS_TABLE"])
        rightsizing = next(r for r in table.all() if r.team == "web" and r.action_type == "Rightsize")
        cli.main(["savings", "accept", rightsizing.rec_id, "--by", "ana@example.com"])
        cli.main(["savings", "implement", rightsizing.rec_id, "--on", implemented_on.isoformat(),
                  "--by", "ana@example.com"])  # fmt: skip
        pages = synthetic_query_pages(roi_request(replace(rightsizing, implemented_on=implemented_on)))
        for result in pages[0]["ResultsByTime"]:  # the demo's world: 14.00 a day before, 12.00 after
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            amount = "14.00" if day < implemented_on else ("13.00" if day == implemented_on else "12.00")
            result["Total"]["UnblendedCost"]["Amount"] = amount
        aws.seed_cost_and_usage(pages)
        stub_listing(stubber, hub_page("page1"), hub_page("page2"))
        second = handler.lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-savings-refresh"))
    measured = table.get(rightsizing.rec_id)
    roi = measured.roi if measured else None
    return [
        f"Savings: {first['listed']} recommendations listed ({first['cost_optimization_hub_requests']} Cost"
        f" Optimization Hub requests), {first['new']} new; one implemented on {implemented_on};",
        f"  ROI measured with {second['cost_explorer_requests']} Cost Explorer request: "
        f"{format_money(roi.monthly_saving, roi.currency) if roi else 'n/a'} a month realised"
        f" vs {format_money(rightsizing.estimated_monthly_savings, rightsizing.currency)} estimated",
    ]


def run_anomaly_stream(handler, chat: ChatRecorder) -> list[tuple[str, str]]:
    """Both shapes, a repeat, a grown repeat and a burst, as the SQS inbox would deliver them."""
    from devtools.sqs_events import sqs_event

    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    sns = json.loads((ROOT / "events" / "anomaly_sns_notification.json").read_text())
    sns["Timestamp"] = now
    event = json.loads((ROOT / "events" / "anomaly_eventbridge.json").read_text())
    event["time"] = now

    def grown(factor: str, **detail) -> str:
        copy = json.loads(json.dumps(event))
        impact = copy["detail"]["impact"]
        total = (Decimal(str(impact["totalImpact"])) * Decimal(factor)).quantize(Decimal("0.01"))
        expected = Decimal(str(impact["totalExpectedSpend"]))
        impact.update(
            totalImpact=float(total),  # the service sends JSON numbers; the function reads them as Decimal
            totalActualSpend=float(expected + total),
            totalImpactPercentage=float((total / expected * 100).quantize(Decimal("0.01"))),
        )
        copy["detail"].update(detail)
        return json.dumps(copy)

    burst = [
        grown("0.05", anomalyId=f"burst-{i:02d}", dimensionValue=service)
        for i, service in enumerate(["AWS Lambda", "Amazon DynamoDB", "Amazon CloudFront", "AWS Glue"] * 3)
    ]
    steps = [
        ("SNS notification", [json.dumps(sns)]),
        ("EventBridge event", [json.dumps(event)]),
        ("same anomaly again", [json.dumps(event)]),
        ("same anomaly, impact +60 %", [grown("1.6")]),
        ("burst of 12 in one batch", burst),
    ]
    results = []
    for label, bodies in steps:
        before = len(chat.received)
        outcome = handler.lambda_handler(sqs_event(bodies), FakeContext(f"finops-guard-{STAGE}-anomaly-alerts"))
        posted = chat.received[before:]
        titles = [p.json().get("text") or p.json()["attachments"][0]["content"]["body"][0]["text"] for p in posted]
        summary = f"posted to {len(posted)} channel(s): {titles[0]}" if posted else "recorded silently, nothing posted"
        if outcome["batchItemFailures"]:
            summary += f"; {len(outcome['batchItemFailures'])} record(s) back to SQS"
        results.append((label, summary))
    return results


def replay_billing_month(aws: EmbeddedAws, chat: ChatRecorder) -> tuple[str, LocalBilling]:
    """Sign each event as Stripe does, POST it to the local endpoint, then run the notifier on the
    alerts stream (finance cards to the chat recorder). Returns a printable summary."""
    import threading
    import urllib.error
    import urllib.request
    from collections import Counter, defaultdict

    from finops_guard.core.money import format_money, minor_units

    from devtools.billing_month import month_of_events
    from devtools.local_serve import make_server
    from devtools.stripe_events import sign

    billing = LocalBilling(aws)
    server = make_server(billing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook"
    outcomes: Counter[str] = Counter()
    try:
        for event in month_of_events():
            body = json.dumps(event, separators=(",", ":"))
            request = urllib.request.Request(  # noqa: S310 - loopback
                url, data=body.encode(), method="POST",
                headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                outcomes[json.loads(response.read())["outcome"]] += 1
        tampered = urllib.request.Request(url, data=b'{"id":"evt_forged"}', method="POST",  # noqa: S310
                                          headers={"Stripe-Signature": "t=1,v1=00"})  # fmt: skip
        try:
            urllib.request.urlopen(tampered, timeout=10)  # noqa: S310
        except urllib.error.HTTPError as error:
            outcomes[f"rejected {error.code}"] += 1
    finally:
        server.shutdown()
        server.server_close()

    os.environ["POWERTOOLS_SERVICE_NAME"] = "billing-notifier"
    records = aws.stream_records(billing.tables["alerts"])
    load_handler("billing_notifier").lambda_handler({"Records": records}, FakeContext("finops-guard-demo-notifier"))

    totals: dict[tuple[str, str], int] = defaultdict(int)
    kinds: Counter[str] = Counter()
    for entry in billing.ledger("2026-11"):
        totals[(entry["customer_id"]["S"], entry["currency"]["S"])] += int(entry["amount_minor"]["N"])
        kinds[entry["kind"]["S"]] += 1
    lines = ["Stripe billing, November 2026 (replayed through the webhook):"]
    lines.append("  deliveries: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
    lines.append("  ledger entries: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    for (customer, currency), minor in sorted(totals.items()):
        amount = Decimal(minor).scaleb(-minor_units(currency))
        lines.append(f"    {customer:20s} {format_money(amount, currency):>14s}  ({minor} minor units)")
    lines.append("  open billing alerts:")
    for alert in sorted(billing.open_alerts(), key=lambda a: a["alert_id"]["S"]):
        lines.append(f"    {alert['alert_id']['S']}")
    return "\n".join(lines), billing


def notify_new_billing_alerts(aws: EmbeddedAws, billing: LocalBilling) -> None:
    """The billing notifier on the alerts stream again: the reconciliation's ledger_mismatch card.
    Alerts carded before are skipped by the outbox (same message ids)."""
    os.environ["POWERTOOLS_SERVICE_NAME"] = "billing-notifier"
    records = aws.stream_records(billing.tables["alerts"])
    load_handler("billing_notifier").lambda_handler({"Records": records}, FakeContext("finops-guard-demo-notifier"))


def _escape(text: str) -> str:
    import html

    return html.escape(text)


if __name__ == "__main__":
    sys.exit(main())
