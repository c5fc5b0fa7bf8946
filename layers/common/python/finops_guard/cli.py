"""`finops-guard`: the operator's command line. Same library, same code paths as the Lambda functions.

  finops-guard report weekly --mock --dry-run --out card.json     render without posting
  finops-guard report weekly                                      build from Cost Explorer and post
  finops-guard report pending                                     list kept (undelivered) messages
  finops-guard report resend [--message-id ID ...]                re-send kept messages

Settings come from the same FINOPSGUARD_* variables as the function (see README); flags override.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from finops_guard.delivery import DeliveryFailed, deliver_all
from finops_guard.settings import ReportSettings, SettingsError


def _settings(args: argparse.Namespace) -> ReportSettings:
    config = ReportSettings.from_env(os.environ)
    overrides = {
        "stage": args.stage,
        "outbox_table": args.outbox_table,
        "teams_secret_name": args.teams_secret,
        "slack_secret_name": args.slack_secret,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v})
    if config.teams_secret_name is None:
        config = replace(config, teams_secret_name=f"finops-guard/{config.stage}/teams-webhook-url")
    if getattr(args, "mock", False):
        config = replace(config, use_mock_data=True)
    return config


def _now(args: argparse.Namespace) -> datetime:
    if not args.now:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_weekly(args: argparse.Namespace) -> int:
    from finops_guard import runtime
    from finops_guard.weekly_report import compose

    config = _settings(args)
    costs = runtime.cost_source(config)
    now = _now(args)
    report, messages = compose(config, costs, now=now)
    if args.dry_run:
        chosen = [m for m in messages if m.channel == args.channel] or messages[:1]
        text = json.dumps(chosen[0].payload, ensure_ascii=False, indent=2)
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
            print(f"{chosen[0].channel} payload for {report.report_id} written to {args.out} (nothing posted)")
        else:
            print(text)
        return 0
    result = deliver_all(messages, runtime.outbox(config.require("outbox_table")), runtime.webhook_poster(config), now)
    print(json.dumps({"delivered": result.delivered, "skipped": result.skipped, "failed": result.failed}, indent=2))
    return 1 if result.failed else 0


def cmd_pending(args: argparse.Namespace) -> int:
    from finops_guard import runtime

    config = _settings(args)
    kept = runtime.outbox(config.require("outbox_table")).undelivered()
    for item in kept:
        fields = [item.message.message_id, item.status, f"attempts={item.attempts}", item.updated_at]
        print("\t".join([*fields, item.last_error or ""]))
    if not kept:
        print("no undelivered messages")
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    from finops_guard import runtime

    config = _settings(args)
    box = runtime.outbox(config.require("outbox_table"))
    if args.message_id:
        found = [box.get(message_id) for message_id in args.message_id]
        missing = [m for m, k in zip(args.message_id, found, strict=True) if k is None]
        if missing:
            print(f"not in the outbox: {', '.join(missing)}", file=sys.stderr)
            return 2
        kept = [k for k in found if k is not None]
    else:
        kept = box.undelivered()
    if not kept:
        print("nothing to resend")
        return 0
    result = deliver_all([k.message for k in kept], box, runtime.webhook_poster(config), datetime.now(UTC))
    for message_id in result.delivered:
        print(f"delivered {message_id}")
    for message_id in result.skipped:
        print(f"skipped {message_id} (already delivered or being sent)")
    if result.failed:
        print(str(DeliveryFailed(result.failed)), file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-guard", description="FinOps Guard operator tool")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="weekly cost report").add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", help="stage name (default FINOPSGUARD_STAGE or dev)")
        p.add_argument("--outbox-table", help="outbox table name (stack output OutboxTableName)")
        p.add_argument(
            "--teams-secret", help="Teams webhook secret name (default finops-guard/<stage>/teams-webhook-url)"
        )
        p.add_argument("--slack-secret", help="Slack webhook secret name (Slack is off without it)")

    weekly = report.add_parser("weekly", help="build the weekly report (and post it unless --dry-run)")
    common(weekly)
    weekly.add_argument("--mock", action="store_true", help="deterministic synthetic cost data, no Cost Explorer")
    weekly.add_argument("--dry-run", action="store_true", help="write the payload instead of posting")
    weekly.add_argument("--out", help="with --dry-run: file to write the payload to (default stdout)")
    weekly.add_argument("--channel", choices=["teams", "slack"], default="teams", help="with --dry-run: which payload")
    weekly.add_argument("--now", help="pretend it is this ISO instant (default: now)")
    weekly.set_defaults(func=cmd_weekly)

    pending = report.add_parser("pending", help="list messages kept in the outbox, not delivered")
    common(pending)
    pending.set_defaults(func=cmd_pending)

    resend = report.add_parser("resend", help="re-send kept messages (all undelivered, or --message-id)")
    common(resend)
    resend.add_argument("--message-id", action="append", help="a message id (repeatable)")
    resend.set_defaults(func=cmd_resend)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as error:
        print(f"finops-guard: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
