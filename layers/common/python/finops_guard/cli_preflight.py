"""`finops-guard preflight` and `finops-guard paging-check`: before and right after the first deploy.

  finops-guard preflight --stage prod [-c key=value ...] [--context-file cdk.json] [--json]
  finops-guard paging-check --stage prod [--alarm NAME] [--wait 60]

preflight makes read-only calls in the account and region of the usual AWS configuration (AWS_PROFILE,
AWS_REGION, ...; AWS_ENDPOINT_URL honoured) and reports each item as ok, will-adopt, warn or blocking,
with the fix as commands. The configuration is cdk.json's "context" (./cdk.json, or --context-file)
overridden by -c key=value, as `cdk deploy` reads it. Actions it calls, all read-only:
sts:GetCallerIdentity, cloudformation:DescribeStacks, cloudformation:ListStackResources,
ce:GetAnomalyMonitors, ce:ListCostAllocationTags, organizations:DescribeOrganization, apigateway:GET,
iam:GetRole, iam:SimulatePrincipalPolicy, dynamodb:DescribeTable, dynamodb:ListTagsOfResource,
secretsmanager:DescribeSecret (never a secret's value), ses:GetAccount, ses:GetEmailIdentity,
ssm:GetParameter.

paging-check puts one alarm (default FinOpsGuard-<stage>-Failures, the core's failure queue alarm: a
5-minute alarm that returns to OK by itself while the queue is empty) into ALARM, waits at most --wait
seconds for CloudWatch's action history to show the publish to the ops topic, and lists who is
subscribed to that topic.

Exit codes (both commands): 0 nothing blocking (paging-check: the page left CloudWatch and someone
confirmed is subscribed), 1 something blocking, 2 bad input, 4 AWS unreachable (no credentials, no
region, or the endpoint does not answer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finops_guard.preflight import (
    BLOCKING,
    OK,
    PAGING_REASON,
    STATUSES,
    WILL_ADOPT,
    AccountFacts,
    AwsUnreachable,
    Finding,
    PreflightConfig,
    PreflightInputError,
    Unanswered,
    assess,
    default_paging_alarm,
    exit_code,
    load_context,
    paging_findings,
    paging_precheck,
    paging_topic,
    parse_config,
    parse_stage,
    redact_endpoint,
    state_update_floor,
    wait_for_action,
)

EXIT_OK, EXIT_BLOCKING, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 0, 1, 2, 4
WAIT_MAX_S = 600.0
EPILOG = (
    "exit codes: 0 nothing blocking, 1 something blocking, 2 bad input, "
    "4 AWS unreachable (no credentials, no region, endpoint not answering)"
)

# Injectable for tests: where facts come from, and the paging check's clocks.
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def now() -> datetime:
    return datetime.now(UTC)


def facts_reader() -> Any:
    from finops_guard.adapters.account_facts import AccountFactsReader

    return AccountFactsReader()


def alarm_pager() -> Any:
    from finops_guard.adapters.account_facts import AlarmPager

    return AlarmPager()


def _fail(message: str, code: int) -> int:
    print(f"finops-guard: {message}", file=sys.stderr)
    return code


def read_config(stage: str, context_file: str | None, pairs: Sequence[str]) -> PreflightConfig:
    """The stage checked, cdk.json's context read and the -c pairs applied; PreflightInputError otherwise."""
    checked = parse_stage(stage)
    path = Path(context_file or "cdk.json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if context_file:
            raise PreflightInputError(f"--context-file {context_file}: no such file") from None
        raise PreflightInputError(
            f"no cdk.json in {Path.cwd()}: run from the FinOps Guard checkout, or give --context-file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PreflightInputError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    return parse_config(checked, load_context(text, str(path)), pairs)


def print_findings(findings: Sequence[Finding]) -> None:
    for finding in findings:
        print(f"{'[' + finding.status + ']':<13}{finding.item}: {finding.detail}")
        if finding.fix:
            print(f"{'':<13}fix: {finding.fix}")


def report_json(config: PreflightConfig, facts: AccountFacts, findings: Sequence[Finding]) -> dict[str, Any]:
    counts = Counter(f.status for f in findings)
    return {
        "stage": config.stage,
        "stacks": list(config.stack_names),
        "account": facts.caller.account,
        "region": facts.region,
        "caller": facts.caller.arn,
        "counts": {status: counts.get(status, 0) for status in STATUSES},
        "exit_code": exit_code(findings),
        "findings": [f.to_json() for f in findings],
    }


def cmd_preflight(args: argparse.Namespace) -> int:
    try:
        config = read_config(args.stage, args.context_file, args.context or [])
    except PreflightInputError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    try:
        facts = facts_reader().gather(config)
    except AwsUnreachable as error:
        return _fail(str(error), EXIT_UNREACHABLE)
    findings = assess(config, facts, now().date())
    code = exit_code(findings)
    if args.json:
        print(json.dumps(report_json(config, facts, findings), indent=2))
        return code
    print(
        f"FinOps Guard preflight for {', '.join(config.stack_names)}: account {facts.caller.account}, "
        f"region {facts.region}, as {facts.caller.arn}"
    )
    print_findings(findings)
    counts = Counter(f.status for f in findings)
    print(", ".join(f"{counts.get(s, 0)} {s}" for s in reversed(STATUSES)))
    if code:
        print("fix the blocking items, then run preflight again")
    else:
        adopt = any(f.status == WILL_ADOPT and f.item == "named resources" for f in findings)
        print(f"nothing blocking; deploy: {config.deploy_command(*(['--import-existing-resources'] if adopt else []))}")
    return code


def _wait_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= WAIT_MAX_S:
        raise PreflightInputError(f"--wait {text!r}: give seconds from 1 to {WAIT_MAX_S:g}")
    return seconds


def cmd_paging_check(args: argparse.Namespace) -> int:
    try:
        stage = parse_stage(args.stage)
        wait_s = _wait_seconds(args.wait)
    except PreflightInputError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    name = args.alarm or default_paging_alarm(stage)
    pager = alarm_pager()
    try:
        alarm = pager.alarm(name)
    except AwsUnreachable as error:
        return _fail(str(error), EXIT_UNREACHABLE)
    if isinstance(alarm, Unanswered):
        print_findings([_unchecked("alarm", alarm, f"aws cloudwatch describe-alarms --alarm-names {name}")])
        return EXIT_BLOCKING
    problem = paging_precheck(stage, name, alarm)
    if problem is not None or alarm is None:
        print_findings([problem] if problem else [])
        return EXIT_BLOCKING
    before = now()
    refused = pager.set_alarm(name, PAGING_REASON)
    if isinstance(refused, Unanswered):
        command = f"aws cloudwatch set-alarm-state --alarm-name {name} --state-value ALARM --state-reason test"
        print_findings([_unchecked("alarm", refused, command)])
        return EXIT_BLOCKING
    since = state_update_floor(pager.state_updated_at(name), before)
    print(f"{name} set to ALARM ({PAGING_REASON!r}); waiting up to {wait_s:g} s for CloudWatch to page ...")
    results = wait_for_action(lambda: pager.history(name, since), since, wait_s, clock, sleep)
    topic = paging_topic(stage, alarm)
    subscriptions = pager.subscriptions(topic) if topic else ()
    findings = paging_findings(stage, alarm, results, wait_s, subscriptions)
    print_findings(findings)
    proven = any(f.item == "alarm action" and f.status == OK for f in findings)
    confirmed = [] if isinstance(subscriptions, Unanswered) else [s for s in subscriptions if not s.pending]
    whom = ", ".join(f"{s.protocol} {redact_endpoint(s.protocol, s.endpoint)}" for s in confirmed) or "its subscribers"
    if proven:
        print(f"Now confirm the page arrived at {whom}.")
    else:
        print("No page left CloudWatch: fix the blocking items above and run paging-check again.")
    period = f"within {alarm.period_s} s" if alarm.period_s else "at its next evaluation"
    print(f"{name} returns to OK by itself {period} (its next evaluation), which sends an OK notification too.")
    return EXIT_BLOCKING if exit_code(findings) or not proven else EXIT_OK


def _unchecked(item: str, gap: Unanswered, by_hand: str) -> Finding:
    """A paging check that could not be made: blocking, since nothing was proven."""
    who = "the caller may not call" if gap.denied else "no answer from"
    return Finding(item, BLOCKING, f"{who} {gap.action} ({gap.reason})", f"grant {gap.action}, or by hand: {by_hand}")


def register(commands: Any) -> None:
    """Add `preflight` and `paging-check` to the `finops-guard` parser's subcommands (cli.build_parser)."""
    preflight = commands.add_parser(
        "preflight",
        help="read-only checks of the target account before a deploy: ok / will-adopt / warn / blocking, with fixes",
        description="Read-only checks of the target account (AWS_PROFILE / AWS_REGION) before `cdk deploy`.",
        epilog=EPILOG,
    )
    preflight.add_argument("--stage", required=True, help="the stage to deploy ([a-z0-9-], at most 16)")
    preflight.add_argument(
        "-c",
        "--context",
        action="append",
        metavar="KEY=VALUE",
        help="a context value, as given to cdk deploy (repeatable); overrides --context-file",
    )
    preflight.add_argument("--context-file", help='the cdk.json whose "context" to read (default ./cdk.json)')
    preflight.add_argument("--json", action="store_true", help="print the findings as JSON")
    preflight.set_defaults(func=cmd_preflight)

    paging = commands.add_parser(
        "paging-check",
        help="after a deploy: set one alarm to ALARM and prove CloudWatch paged the ops topic's subscribers",
        description="Sets one alarm to ALARM (it returns to OK by itself) and checks that the page left CloudWatch.",
        epilog=EPILOG,
    )
    paging.add_argument("--stage", required=True, help="the deployed stage")
    paging.add_argument("--alarm", help="alarm to set (default FinOpsGuard-<stage>-Failures)")
    paging.add_argument(
        "--wait", default="60", help=f"seconds to wait for the alarm action (default 60, at most {WAIT_MAX_S:g})"
    )
    paging.set_defaults(func=cmd_paging_check)
