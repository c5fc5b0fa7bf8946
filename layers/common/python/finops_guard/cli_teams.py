"""`finops-guard teams ...` and `finops-guard chargeback ...`: team routes and monthly chargeback.

  finops-guard teams add web --teams-url 'https://...' [--slack-url 'https://...'] --account 111111111111
  finops-guard teams list | remove web
  finops-guard chargeback run [--month 2026-10] [--dry-run --out DIR]     CSVs to S3, card to chat
  finops-guard chargeback link --month 2026-10 [--dimension tag:Team] [--minutes 1-720]   a fresh link

The routes table defaults to finops-guard-<stage>-team-routes. Every team's webhook URLs are in one
secret, finops-guard/<stage>/team-webhooks (the stack creates it holding {}): a JSON object
{"<team>": {"teams": "https://...", "slack": "https://..."}}, one URL per channel. `teams add`
validates the URLs and writes them there and the route (which only names the team's channels and
accounts) to the table; `teams list` never shows a URL.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from finops_guard import cli_stage
from finops_guard.cli_errors import JSON_HELP, CliError, month, output_folder, stage_name, whole_number
from finops_guard.core.money import format_money
from finops_guard.core.settings import SettingsError
from finops_guard.costs.settings import ReportSettings
from finops_guard.costs.teams import (
    ROUTE_CHANNELS,
    TeamConfigError,
    TeamRoute,
    TeamWebhooksError,
    parse_dimension,
    parse_route,
    parse_team,
    team_webhooks_secret_name,
    webhook_url_problem,
)

if TYPE_CHECKING:
    from finops_guard.costs.adapters.team_webhooks import TeamWebhooksSecret
    from finops_guard.costs.teams import TeamWebhooks


# The CLI signs with the operator's credentials: an SSO or assumed-role session lasts 12 hours at most,
# and a pre-signed link dies with it. The stack's chargebackLinkExpiryMinutes has the same range.
LINK_MINUTES_MAX = 720


def _config(args: argparse.Namespace, function: str = cli_stage.WEEKLY_REPORT) -> ReportSettings:
    """As the stage's deployed `function` runs (the weekly report routes teams; the chargeback job
    writes the CSVs), flags on top, the stack's names where neither says."""
    offline = bool(getattr(args, "mock", False) and getattr(args, "dry_run", False))
    config = ReportSettings.from_env(cli_stage.environment(args, function, offline=offline))
    stage = config.stage
    routes_table = getattr(args, "table", None) or config.team_routes_table or f"finops-guard-{stage}-team-routes"
    defaults: dict[str, Any] = {
        "stage": stage,
        "team_routes_table": routes_table,
        "team_webhooks_secret_name": getattr(args, "secret", None)
        or config.team_webhooks_secret_name
        or team_webhooks_secret_name(stage),
        "outbox_table": config.outbox_table or f"finops-guard-{stage}-outbox",
        "teams_secret_name": config.teams_secret_name or f"finops-guard/{stage}/teams-webhook-url",
        "chargeback_bucket": getattr(args, "bucket", None) or config.chargeback_bucket,
    }
    if getattr(args, "mock", False):
        defaults["use_mock_data"] = True
    return replace(config, **defaults)


def _webhooks_secret(config: ReportSettings) -> TeamWebhooksSecret:
    from finops_guard.costs.adapters.team_webhooks import TeamWebhooksSecret

    return TeamWebhooksSecret(config.require("team_webhooks_secret_name"))


def _read_webhooks(secret: TeamWebhooksSecret, stage: str) -> TeamWebhooks | None:
    """The map, or None after one line on stderr saying what is wrong with the secret and what to do."""
    name = secret.secret_name
    try:
        return secret.read()
    except TeamWebhooksError as error:
        print(
            f"finops-guard: team webhooks secret '{name}' {error}; nothing was changed. Fix its value"
            f" (aws secretsmanager get-secret-value --secret-id {name}), or start again from an empty map:"
            f" aws secretsmanager put-secret-value --secret-id {name} --secret-string '{{}}'",
            file=sys.stderr,
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        print(
            f"finops-guard: team webhooks secret '{name}' does not exist: deploy stage {stage!r}"
            " with team routing on (teamDimension not empty), or pass --secret NAME",
            file=sys.stderr,
        )
    return None


def _stored_route(table: Any, team: str) -> TeamRoute | None:
    try:
        return table.get(team)
    except (TeamConfigError, ValueError, KeyError):
        return None  # a route that no longer validates: `teams add` writes a valid one over it


def cmd_teams_add(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    team = parse_team(args.team)
    urls = {channel: url for channel in ROUTE_CHANNELS if (url := getattr(args, f"{channel}_url")) is not None}
    if not urls:
        raise TeamConfigError("give the team's webhook URL: --teams-url 'https://...' and/or --slack-url 'https://...'")
    for channel, url in urls.items():
        problem = webhook_url_problem(url, channel)
        if problem is not None:
            raise TeamConfigError(f"--{channel}-url {problem}")
    config = _config(args)  # the deployed settings: only once the input is known good
    secret = _webhooks_secret(config)
    webhooks = _read_webhooks(secret, config.stage)
    if webhooks is None:
        return 1
    table = runtime.team_routes_table(config.require("team_routes_table"))
    stored = _stored_route(table, team)
    # An update: the URLs given are set, the team's other channel (and accounts, unless given) kept.
    channels = {*urls, *(stored.channels if stored else ())}
    accounts = args.account if args.account is not None else list(stored.accounts if stored else ())
    route = parse_route({"team": team, "channels": [c for c in ROUTE_CHANNELS if c in channels], "accounts": accounts})
    kept = {c: u for c, u in webhooks.urls.get(team, {}).items() if c in route.channels}
    # The URL first: a route never names a channel whose URL this command failed to write.
    secret.write(webhooks.with_team(team, {**kept, **urls}))
    table.put(route, datetime.now(UTC))
    missing = [c for c in route.channels if c not in kept and c not in urls]
    print(
        f"{'updated' if stored else 'added'} team {route.team!r}: {', '.join(route.channels)}"
        + (f"; accounts {', '.join(route.accounts)}" if route.accounts else "")
        + (f"; no URL yet for {', '.join(missing)} (give --{missing[0]}-url)" if missing else "")
    )
    return 0


def cmd_teams_list(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    config = _config(args)
    routes, invalid = runtime.team_routes_table(config.require("team_routes_table")).load()
    webhooks = _read_webhooks(_webhooks_secret(config), config.stage)

    def status(team: str, channel: str) -> str:  # whether a URL is set: never the URL
        return webhooks.status(team, channel) if webhooks else "unknown"

    if args.json:
        import json

        listed = [{**route.to_document(), "webhooks": {c: status(route.team, c) for c in route.channels}}
                  for route in routes]  # fmt: skip
        print(json.dumps(listed, indent=2, ensure_ascii=False))
    else:
        for route in routes:
            channels = " ".join(f"{channel}={status(route.team, channel)}" for channel in route.channels)
            print("\t".join([route.team, channels, ",".join(route.accounts) or "-"]))
        if not routes:
            print("no team routes")
    for problem in invalid:
        print(f"invalid: {problem}", file=sys.stderr)
    return 1 if invalid or webhooks is None else 0


def cmd_teams_remove(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    config = _config(args)
    secret = _webhooks_secret(config)
    webhooks = _read_webhooks(secret, config.stage)
    if webhooks is None:
        return 1
    in_secret = args.team in webhooks.document
    if in_secret:  # the URLs are credentials: removed first
        secret.write(webhooks.without_team(args.team))
    routed = runtime.team_routes_table(config.require("team_routes_table")).remove(args.team)
    if not routed and not in_secret:
        print(f"finops-guard: no route for team {args.team!r} (see finops-guard teams list)", file=sys.stderr)
        return 1
    print(f"removed team {args.team!r}: its cards and alerts go to the default channel only")
    return 0


def cmd_chargeback_run(args: argparse.Namespace) -> int:
    import json

    from finops_guard.costs import runtime
    from finops_guard.costs.chargeback import Month, month_before, object_key, to_csv
    from finops_guard.costs.monthly_chargeback import compute, run_chargeback

    dimensions = tuple(parse_dimension(d) for d in args.dimension or ())  # bad input before any AWS call
    config = _config(args, cli_stage.CHARGEBACK)
    if dimensions:
        team = config.team_dimension if config.team_dimension in dimensions else None
        config = replace(config, attribution_dimensions=dimensions, team_dimension=team)
    now = datetime.now(UTC)
    month = Month.parse(args.month) if args.month else month_before(now, config.timezone)
    costs = runtime.cost_source(config)
    if args.dry_run:
        out: Path | None = args.out
        for chargeback in compute(config, month, costs):
            text = to_csv(chargeback)
            if out is None:
                print(text, end="")
                continue
            path = out / object_key(month, chargeback.dimension).removeprefix("chargeback/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")
            print(f"{path}: {len(chargeback.lines)} lines, total {format_money(chargeback.total, chargeback.currency)}")
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

    config = _config(args, cli_stage.CHARGEBACK)
    dimensions = [parse_dimension(args.dimension)] if args.dimension else list(config.attribution_dimensions)
    if not dimensions:
        raise SettingsError("give --dimension (e.g. tag:Team) or set FINOPSGUARD_ATTRIBUTION_DIMENSIONS")
    bucket = runtime.export_bucket(config.require("chargeback_bucket"))
    keys = [object_key(Month.parse(args.month), dimension) for dimension in dimensions]
    missing = [key for key in keys if not bucket.has(key)]
    if missing:
        raise CliError(
            f"no {', '.join(missing)} in bucket {bucket.bucket}: write the month first"
            f" (finops-guard chargeback run --month {args.month} --stage {config.stage})"
        )
    for key in keys:
        print(f"{key}\t{bucket.download_link(key, None, args.minutes * 60)}")
    return 0


def register(commands: Any) -> None:
    """Add `teams` and `chargeback` to the `finops-guard` parser."""

    def stage(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
        p.add_argument("--table", help="team routes table (default finops-guard-<stage>-team-routes)")
        p.add_argument("--secret", help="team webhooks secret (default finops-guard/<stage>/team-webhooks)")

    teams = commands.add_parser(
        "teams", help="team routes: each team's own channel (URLs in finops-guard/<stage>/team-webhooks)"
    ).add_subparsers(dest="action", required=True)
    add = teams.add_parser(
        "add",
        help="add a team, or update it: the URLs given are set, its other channel and accounts kept",
    )
    stage(add)
    add.add_argument("team", help="the team's tag value, exactly as tagged (tags are case-sensitive)")
    add.add_argument(
        "--teams-url",
        help="the team's Teams Workflows webhook URL (https://...logic.azure.com/..., "
        "...powerautomate.com, ...environment.api.powerplatform.com or ...webhook.office.com)",
    )
    add.add_argument("--slack-url", help="the team's Slack incoming webhook URL (https://hooks.slack.com/...)")
    add.add_argument(
        "--account", action="append", help="an account the team owns, for anomaly routing (repeatable; replaces)"
    )
    add.set_defaults(func=cmd_teams_add)
    listing = teams.add_parser("list", help="list team routes and which channels have a URL (never the URLs)")
    stage(listing)
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(func=cmd_teams_list)
    remove = teams.add_parser("remove", help="remove a team's route and its URLs")
    stage(remove)
    remove.add_argument("team")
    remove.set_defaults(func=cmd_teams_remove)

    chargeback = commands.add_parser("chargeback", help="monthly chargeback CSVs").add_subparsers(
        dest="action", required=True
    )
    run = chargeback.add_parser("run", help="compute a month, write the CSVs to S3 and announce them")
    run.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
    run.add_argument("--month", type=month, help="YYYY-MM (default: last month in the report time zone)")
    run.add_argument("--bucket", help="export bucket (default FINOPSGUARD_CHARGEBACK_BUCKET; stack output)")
    run.add_argument(
        "--dimension", action="append", help="e.g. tag:Team, repeatable (default: the stage's attribution dimensions)"
    )
    run.add_argument("--mock", action="store_true", help="synthetic cost data, no Cost Explorer")
    run.add_argument("--dry-run", action="store_true", help="write the CSVs locally (--out DIR) or print them")
    run.add_argument("--out", type=output_folder, help="with --dry-run: an existing folder for the CSVs")
    run.set_defaults(func=cmd_chargeback_run)
    link = chargeback.add_parser("link", help="a new pre-signed download link for a month's CSV")
    link.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
    link.add_argument("--month", type=month, required=True, help="YYYY-MM")
    link.add_argument("--dimension", help="e.g. tag:Team (default: every attribution dimension)")
    link.add_argument("--bucket", help="export bucket (default FINOPSGUARD_CHARGEBACK_BUCKET; stack output)")
    link.add_argument(
        "--minutes",
        type=whole_number(1, LINK_MINUTES_MAX, "a link cannot outlive the signer's role session, 12 hours at most"),
        default=60,
        help=f"link lifetime, 1-{LINK_MINUTES_MAX} (default 60; the stack's chargebackLinkExpiryMinutes range)",
    )
    link.set_defaults(func=cmd_chargeback_link)
