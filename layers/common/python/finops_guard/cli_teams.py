"""`finops-guard teams ...` and `finops-guard chargeback ...`: team routes and monthly chargeback.

  finops-guard teams add web --teams-secret finops-guard/prod/teams/web --account 111111111111
  finops-guard teams list | remove web
  finops-guard chargeback run [--month 2026-10] [--dry-run --out DIR]     CSVs to S3, card to chat
  finops-guard chargeback link --month 2026-10 [--dimension tag:Team]     a fresh download link

The routes table defaults to finops-guard-<stage>-team-routes. Team webhook secrets must live under
finops-guard/<stage>/teams/ (the functions may read nothing else); `teams add` checks they exist.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finops_guard.core.settings import SettingsError
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import parse_dimension, parse_route, team_secret_prefix


def _config(args: argparse.Namespace) -> ReportSettings:
    config = ReportSettings.from_env(os.environ)
    stage = getattr(args, "stage", None) or config.stage
    routes_table = getattr(args, "table", None) or config.team_routes_table or f"finops-guard-{stage}-team-routes"
    defaults: dict[str, Any] = {
        "stage": stage,
        "team_routes_table": routes_table,
        "team_secret_prefix": config.team_secret_prefix or team_secret_prefix(stage),
        "outbox_table": config.outbox_table or f"finops-guard-{stage}-outbox",
        "teams_secret_name": config.teams_secret_name or f"finops-guard/{stage}/teams-webhook-url",
        "chargeback_bucket": getattr(args, "bucket", None) or config.chargeback_bucket,
    }
    if getattr(args, "mock", False):
        defaults["use_mock_data"] = True
    return replace(config, **defaults)


def cmd_teams_add(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    config = _config(args)
    document: dict[str, Any] = {"team": args.team, "teams_secret": args.teams_secret,
                                "slack_secret": args.slack_secret, "accounts": args.account or []}  # fmt: skip
    route = parse_route(document, config.team_secret_prefix)
    if not args.no_check:
        from finops_guard.core.adapters.secrets import secret_exists

        missing = [secret for _, secret in route.destinations() if not secret_exists(secret)]
        if missing:
            for secret in missing:
                print(
                    f"secret {secret!r} does not exist; create it with the webhook URL first:\n"
                    f"  aws secretsmanager create-secret --name {secret} --secret-string 'https://...'",
                    file=sys.stderr,
                )
            return 2
    table = runtime.team_routes_table(config.require("team_routes_table"))
    replaced = table.get(route.team) is not None
    table.put(route, datetime.now(UTC))
    channels = ", ".join(channel for channel, _ in route.destinations())
    print(f"{'updated' if replaced else 'added'} team {route.team!r}: {channels}"
          + (f"; accounts {', '.join(route.accounts)}" if route.accounts else ""))  # fmt: skip
    return 0


def cmd_teams_list(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    routes, invalid = runtime.team_routes_table(_config(args).require("team_routes_table")).load()
    for route in routes:
        destinations = " ".join(f"{channel}={secret}" for channel, secret in route.destinations())
        print("\t".join([route.team, destinations, ",".join(route.accounts) or "-"]))
    for problem in invalid:
        print(f"invalid: {problem}", file=sys.stderr)
    if not routes:
        print("no team routes")
    return 1 if invalid else 0


def cmd_teams_remove(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    if not runtime.team_routes_table(_config(args).require("team_routes_table")).remove(args.team):
        print(f"no route for team {args.team!r}", file=sys.stderr)
        return 1
    print(f"removed team {args.team!r}: its cards and alerts go to the default channel only")
    return 0


def cmd_chargeback_run(args: argparse.Namespace) -> int:
    import json

    from finops_guard.costs import runtime
    from finops_guard.costs.chargeback import Month, month_before, object_key, to_csv
    from finops_guard.costs.monthly_chargeback import compute, run_chargeback

    config = _config(args)
    now = datetime.now(UTC)
    month = Month.parse(args.month) if args.month else month_before(now, config.timezone)
    costs = runtime.cost_source(config)
    if args.dry_run:
        out = Path(args.out) if args.out else None
        for chargeback in compute(config, month, costs):
            text = to_csv(chargeback)
            if out is None:
                print(text, end="")
                continue
            path = out / object_key(month, chargeback.dimension).removeprefix("chargeback/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")
            print(f"{path}: {len(chargeback.lines)} lines, total {chargeback.total} {chargeback.currency}")
        return 0
    outcome = run_chargeback(
        config,
        month=month,
        now=now,
        run_id=f"manual-{now:%Y%m%dT%H%M%SZ}",
        costs=costs,
        store=runtime.export_bucket(config.require("chargeback_bucket")),
        outbox=runtime.outbox(config.require("outbox_table")),
        poster=runtime.webhook_poster(config),
    )
    summary = {
        "month": str(month),
        "objects": [p.key for p in outcome.published],
        "delivered": outcome.delivery.delivered,
    }
    print(json.dumps(summary, indent=2))
    return 0


def cmd_chargeback_link(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime
    from finops_guard.costs.chargeback import Month, object_key

    config = _config(args)
    dimensions = [parse_dimension(args.dimension)] if args.dimension else list(config.attribution_dimensions)
    if not dimensions:
        raise SettingsError("give --dimension (e.g. tag:Team) or set FINOPSGUARD_ATTRIBUTION_DIMENSIONS")
    bucket = runtime.export_bucket(config.require("chargeback_bucket"))
    for dimension in dimensions:
        key = object_key(Month.parse(args.month), dimension)
        print(f"{key}\t{bucket.download_link(key, None, args.minutes * 60)}")
    return 0


def register(commands: Any) -> None:
    """Add `teams` and `chargeback` to the `finops-guard` parser."""

    def stage(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", help="stage name (default FINOPSGUARD_STAGE or dev)")
        p.add_argument("--table", help="team routes table (default finops-guard-<stage>-team-routes)")

    teams = commands.add_parser("teams", help="team routes: each team's own channel").add_subparsers(
        dest="action", required=True
    )
    add = teams.add_parser("add", help="add or replace a team's route")
    stage(add)
    add.add_argument("team", help="the team's tag value, exactly as tagged (tags are case-sensitive)")
    add.add_argument(
        "--teams-secret", help="secret holding the team's Teams webhook URL (finops-guard/<stage>/teams/...)"
    )
    add.add_argument(
        "--slack-secret", help="secret holding the team's Slack webhook URL (finops-guard/<stage>/teams/...)"
    )
    add.add_argument("--account", action="append", help="an account the team owns, for anomaly routing (repeatable)")
    add.add_argument("--no-check", action="store_true", help="do not check that the secrets exist")
    add.set_defaults(func=cmd_teams_add)
    listing = teams.add_parser("list", help="list team routes")
    stage(listing)
    listing.set_defaults(func=cmd_teams_list)
    remove = teams.add_parser("remove", help="remove a team's route")
    stage(remove)
    remove.add_argument("team")
    remove.set_defaults(func=cmd_teams_remove)

    chargeback = commands.add_parser("chargeback", help="monthly chargeback CSVs").add_subparsers(
        dest="action", required=True
    )
    run = chargeback.add_parser("run", help="compute a month, write the CSVs to S3 and announce them")
    run.add_argument("--stage", help="stage name (default FINOPSGUARD_STAGE or dev)")
    run.add_argument("--month", help="YYYY-MM (default: last month in the report time zone)")
    run.add_argument("--bucket", help="export bucket (default FINOPSGUARD_CHARGEBACK_BUCKET; stack output)")
    run.add_argument("--mock", action="store_true", help="synthetic cost data, no Cost Explorer")
    run.add_argument("--dry-run", action="store_true", help="write the CSVs locally (--out DIR) or print them")
    run.add_argument("--out", help="with --dry-run: a folder for the CSVs")
    run.set_defaults(func=cmd_chargeback_run)
    link = chargeback.add_parser("link", help="a new pre-signed download link for a month's CSV")
    link.add_argument("--stage", help="stage name (default FINOPSGUARD_STAGE or dev)")
    link.add_argument("--month", required=True, help="YYYY-MM")
    link.add_argument("--dimension", help="e.g. tag:Team (default: every attribution dimension)")
    link.add_argument("--bucket", help="export bucket (default FINOPSGUARD_CHARGEBACK_BUCKET; stack output)")
    link.add_argument("--minutes", type=int, default=60, help="link lifetime (default 60)")
    link.set_defaults(func=cmd_chargeback_link)
