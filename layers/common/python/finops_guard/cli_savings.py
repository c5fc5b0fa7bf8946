"""`finops-guard savings`: what happened to each savings recommendation, recorded by the people doing it.

  finops-guard savings list [--status open,accepted|all] [--team web]   largest estimate first
  finops-guard savings show REC_ID                                      the item, its history and ROI
  finops-guard savings accept REC_ID [--reason TEXT]
  finops-guard savings implement REC_ID [--on 2026-11-03]               default: today (UTC)
  finops-guard savings dismiss REC_ID --reason TEXT
  finops-guard savings reopen REC_ID [--reason TEXT]                    accepted or dismissed -> open

Table: --table, else FINOPSGUARD_RECOMMENDATIONS_TABLE, else finops-guard-<stage>-recommendations;
set AWS_ENDPOINT_URL to work against a local table. Exit codes: 0 done, 1 no such recommendation or
changed meanwhile (nothing written), 2 refused by the status rules or a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from finops_guard import cli_stage
from finops_guard.cli_errors import JSON_HELP, day, stage_name
from finops_guard.core.money import format_money
from finops_guard.costs.savings import (
    ACCEPTED,
    ACTIVE,
    DISMISSED,
    IMPLEMENTED,
    OPEN,
    STATUSES,
    RecommendationNotFound,
    StatusConflict,
    TransitionRefused,
    by_status,
    change_status,
)

if TYPE_CHECKING:
    from finops_guard.costs.adapters.recommendations_store import RecommendationsTable


def _table(args: argparse.Namespace) -> RecommendationsTable:
    from finops_guard.costs import runtime

    env = cli_stage.environment(args, cli_stage.WEEKLY_REPORT)  # the weekly report reads the savings table
    stage = cli_stage.stage_of(args)
    name = args.table or env.get("FINOPSGUARD_RECOMMENDATIONS_TABLE") or f"finops-guard-{stage}-recommendations"
    return runtime.recommendations_table(name)


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or 'operator'}"


def cmd_list(args: argparse.Namespace) -> int:
    wanted = STATUSES if args.status == "all" else tuple(s.strip() for s in args.status.split(",") if s.strip())
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        print(f"finops-guard: --status {unknown[0]!r}: use {', '.join(STATUSES)} or all", file=sys.stderr)
        return 2
    recs = [r for r in by_status(_table(args).all(), wanted) if args.team is None or r.team == args.team]
    if args.json:
        print(json.dumps([r.to_document() for r in recs], indent=2, ensure_ascii=False))
        return 0
    for r in recs:
        money = format_money(r.estimated_monthly_savings, r.currency)
        print("\t".join([r.rec_id, r.status, f"{money}/month", r.effort_label, r.summary, r.resource_label,
                         r.account_id, r.team or "-"]))  # fmt: skip
    if not recs:
        print(f"no recommendations ({', '.join(wanted)})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    rec = _table(args).get(args.id)
    if rec is None:
        print(f"finops-guard: {RecommendationNotFound(args.id)}", file=sys.stderr)
        return 1
    print(json.dumps(rec.to_document(), indent=2, ensure_ascii=False))
    return 0


def _move(args: argparse.Namespace, to: str, implemented_on: date | None = None) -> int:
    try:
        rec = change_status(_table(args), args.id, to, now=datetime.now(UTC), by=args.by or _operator(),
                            reason=args.reason, implemented_on=implemented_on)  # fmt: skip
    except (RecommendationNotFound, StatusConflict) as error:
        print(f"finops-guard: {error}", file=sys.stderr)
        return 1
    except TransitionRefused as error:
        print(f"finops-guard: refused: {error}", file=sys.stderr)
        return 2
    extra = f" on {rec.implemented_on}" if to == IMPLEMENTED else ""
    print(f"{rec.rec_id}: {rec.history[-1].from_status} -> {rec.status}{extra} ({rec.summary})")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    return _move(args, ACCEPTED)


def cmd_dismiss(args: argparse.Namespace) -> int:
    return _move(args, DISMISSED)


def cmd_reopen(args: argparse.Namespace) -> int:
    return _move(args, OPEN)


def cmd_implement(args: argparse.Namespace) -> int:
    implemented_on: date = args.on or datetime.now(UTC).date()  # parsed strictly by cli_errors.day
    return _move(args, IMPLEMENTED, implemented_on)


def register(commands: Any) -> None:
    """Add `savings ...` to the `finops-guard` parser's subcommands (cli.build_parser)."""
    savings = commands.add_parser("savings", help="savings recommendations and what was done with them")
    actions = savings.add_subparsers(dest="action", required=True)

    def table_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
        p.add_argument("--table", help="recommendations table (default finops-guard-<stage>-recommendations)")

    listing = actions.add_parser("list", help="recommendations, largest estimated saving first")
    table_args(listing)
    listing.add_argument("--status", default=",".join(ACTIVE), help="comma-separated statuses, or all")
    listing.add_argument("--team", help="only this team's recommendations")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one recommendation with its history and ROI")
    table_args(show)
    show.add_argument("id")
    show.set_defaults(func=cmd_show)

    for name, func, text in (
        ("accept", cmd_accept, "open -> accepted: someone will do it"),
        ("implement", cmd_implement, "accepted -> implemented, recording the day it was done"),
        ("dismiss", cmd_dismiss, "open or accepted -> dismissed, with a reason"),
        ("reopen", cmd_reopen, "accepted or dismissed -> open"),
    ):
        sub = actions.add_parser(name, help=text)
        table_args(sub)
        sub.add_argument("id")
        sub.add_argument("--reason", required=name == "dismiss", help="why (required to dismiss)")
        sub.add_argument("--by", help="who (default cli:$USER)")
        if name == "implement":
            sub.add_argument("--on", type=day, help="UTC day the change was made, YYYY-MM-DD (default today)")
        sub.set_defaults(func=func)
