"""`make demo`: the weekly report end to end on an embedded AWS, nothing leaves 127.0.0.1.

1. starts moto's ThreadedMotoServer and a chat webhook recorder on loopback;
2. creates what the stack creates (outbox table, Teams and Slack webhook secrets);
3. seeds Cost Explorer with a synthetic organisation (4 accounts, 34 services, a SageMaker
   spike in prod-data, the last day marked Estimated);
4. invokes functions/weekly_report/handler.py exactly as Lambda would (EventBridge Scheduler event);
5. writes what the chat endpoints received, plus an HTML preview of each card, under out/.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

from devtools.chat_recorder import ChatRecorder
from devtools.embedded_aws import EmbeddedAws
from devtools.lambda_runner import ROOT, FakeContext, load_handler

OUT = ROOT / "out"
STAGE = "demo"


def context_defaults() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def main() -> int:
    from finops_guard.mock_data import synthetic_pages
    from finops_guard.periods import report_window
    from finops_guard.preview import render_page, render_slack_html, render_teams_html

    OUT.mkdir(exist_ok=True)
    context = context_defaults()
    aws, chat = EmbeddedAws().start(), ChatRecorder().start()
    try:
        with aws.activated():
            table = aws.create_outbox_table(f"finops-guard-{STAGE}-outbox")
            teams_secret, slack_secret = (f"finops-guard/{STAGE}/{c}-webhook-url" for c in ("teams", "slack"))
            aws.put_secret(teams_secret, chat.url("/teams"))
            aws.put_secret(slack_secret, chat.url("/slack"))

            fired_at = datetime.now(UTC).replace(microsecond=0)
            window = report_window(fired_at)
            aws.seed_cost_and_usage(list(synthetic_pages(window.query_start, window.query_end)))

            os.environ.update(
                {
                    "FINOPSGUARD_STAGE": STAGE,
                    "FINOPSGUARD_TIMEZONE": context["timezone"],
                    "FINOPSGUARD_CURRENCY": context["currency"],
                    "FINOPSGUARD_TOP_N": str(context["topN"]),
                    "FINOPSGUARD_MONTHLY_BUDGET": str(context.get("monthlyBudget") or "75000"),
                    "FINOPSGUARD_TEAMS_SECRET_NAME": teams_secret,
                    "FINOPSGUARD_SLACK_SECRET_NAME": slack_secret,
                    "FINOPSGUARD_OUTBOX_TABLE": table,
                    "POWERTOOLS_SERVICE_NAME": "weekly-report",
                    "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                }
            )
            handler = load_handler("weekly_report")
            event = {"report": "weekly", "scheduled_time": fired_at.isoformat().replace("+00:00", "Z")}
            result = handler.lambda_handler(event, FakeContext(f"finops-guard-{STAGE}-weekly-report"))
    finally:
        chat.stop()
        aws.stop()

    received = {r.path.strip("/"): r.json() for r in chat.received}
    sections = []
    for channel, payload in sorted(received.items(), reverse=True):  # Teams first
        (OUT / f"{channel}-payload.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        render = render_teams_html if channel == "teams" else render_slack_html
        sections.append((f"{channel.title()} ({len(json.dumps(payload).encode()):,} bytes)", render(payload)))
        (OUT / f"{channel}-card.html").write_text(render_page(f"FinOps Guard {channel} card", sections[-1:]))
    (OUT / "weekly-report.html").write_text(render_page("FinOps Guard weekly report (demo)", sections))

    print()
    print(f"Weekly report {result['report_id']} for cost days up to {result['as_of']} (UTC)")
    print(f"  month-to-date: {result['month_to_date']} {result['currency']}")
    print(f"  Cost Explorer requests: {result['cost_explorer_requests']}")
    print(f"  delivered: {', '.join(result['delivered'])}")
    print("Written under out/:")
    for path in sorted(OUT.iterdir()):
        print(f"  {path.relative_to(ROOT)}")
    print(f"Open {OUT / 'weekly-report.html'} in a browser to see both cards.")
    return 0 if len(received) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
