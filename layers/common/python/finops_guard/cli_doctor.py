"""`finops-guard doctor`: is a deployed stage healthy? Read-only.

  finops-guard doctor [--stage prod] [--json]

Looks at the stage's stacks (FinOpsGuard-<stage>-Core, -Costs, -Billing) in the account and region of the
usual AWS configuration (AWS_PROFILE, AWS_REGION, ...; AWS_ENDPOINT_URL honoured), and checks what each
deployed stack's product needs to work: someone confirmed on the ops topic, the failure alarm paging it
(and its state), the failure queue's depth, the chat webhook secrets holding a URL rather than their
placeholder, the schedules enabled, Cost Explorer answering and the attribution tags active. Each item
is ok, warn or blocking, with the fix as commands; --json prints the findings as a JSON list.

Actions it calls, all read-only (grant them to whoever runs doctor):
sts:GetCallerIdentity, cloudformation:DescribeStacks, secretsmanager:GetSecretValue (the chat webhook
secrets only: the value is compared with the placeholder and never printed; a URL is shown as its
scheme and host), lambda:GetFunctionConfiguration (finops-guard-<stage>-weekly-report, whose
FINOPSGUARD_ATTRIBUTION_DIMENSIONS names the tag keys), ce:ListCostAllocationTags, scheduler:ListSchedules,
sns:ListSubscriptionsByTopic, cloudwatch:DescribeAlarms, sqs:GetQueueUrl, sqs:GetQueueAttributes.

Cost: each Cost Explorer API request costs $0.01; doctor makes exactly one (ListCostAllocationTags, in
us-east-1) when the costs stack is deployed, none otherwise. The other calls are free.

Exit codes (finops_guard/cli_errors.py): 0 healthy (warnings allowed), 1 something blocking, 2 bad
input, 4 AWS unavailable (no credentials, no region, or the endpoint does not answer). A read the caller
may not make is its check's "could not check (needs <action>)" warning, not a failure.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from finops_guard import cli_stage
from finops_guard.cli_errors import EXIT_FAILED, EXIT_OK, stage_name
from finops_guard.cli_preflight import print_findings
from finops_guard.doctor import DoctorFacts, assess, stack_names, summary
from finops_guard.preflight import Finding, exit_code

EPILOG = (
    "exit codes: 0 healthy (warnings allowed), 1 something blocking, 2 bad input, "
    "4 AWS unavailable (no credentials, no region, endpoint not answering)"
)


def now() -> datetime:
    return datetime.now(UTC)


def health_reader() -> Any:
    """Where the facts come from (tests replace it)."""
    from finops_guard.adapters.deployment_health import DeploymentHealthReader

    return DeploymentHealthReader()


def print_report(stage: str, facts: DoctorFacts, findings: Sequence[Finding]) -> None:
    print(
        f"FinOps Guard doctor for stage {stage} ({', '.join(stack_names(stage))}): account {facts.caller.account}, "
        f"region {facts.region}, as {facts.caller.arn}"
    )
    print_findings(findings)
    print(summary(findings))
    if exit_code(findings):
        print(f"fix the blocking items, then run: finops-guard doctor --stage {stage}")
    else:
        print("healthy" + (" (see the warnings)" if any(f.status != "ok" for f in findings) else ""))


def cmd_doctor(args: argparse.Namespace) -> int:
    stage = cli_stage.stage_of(args)
    facts = health_reader().gather(stage)  # AwsUnreachable: cli.main's boundary makes it exit 4
    findings = assess(stage, facts, now())
    if args.json:
        print(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        print_report(stage, facts, findings)
    return EXIT_FAILED if exit_code(findings) else EXIT_OK


def register(commands: Any) -> None:
    """Add `doctor` to the `finops-guard` parser's subcommands (cli.build_parser)."""
    doctor = commands.add_parser(
        "doctor",
        help="check, read-only, that a deployed stage is healthy: ok / warn / blocking, with fixes",
        description=(
            "Read-only health check of a deployed stage (AWS_PROFILE / AWS_REGION): paging, failure queue, chat "
            "secrets, schedules, Cost Explorer and cost allocation tags. One Cost Explorer request ($0.01)."
        ),
        epilog=EPILOG,
    )
    doctor.add_argument("--stage", type=stage_name, help="the deployed stage (default FINOPSGUARD_STAGE or dev)")
    doctor.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    doctor.set_defaults(func=cmd_doctor)
