"""The stage a CLI command acts on, and the settings it runs with (finops_guard/adapters/deployment.py).

`--stage` (validated), else FINOPSGUARD_STAGE (validated the same way), else `dev`. The settings are
the deployed function's, read once per command; the shell's FINOPSGUARD_* variables override them,
each difference warned. `offline=True` (a `--mock --dry-run` render) reads nothing from AWS.
"""

from __future__ import annotations

import argparse
import os
import sys

from finops_guard.adapters import deployment
from finops_guard.cli_errors import EXIT_BAD_INPUT, CliError, stage_name

DEFAULT_STAGE = "dev"
STAGE_HELP = "the deployed stage; its settings are read from its functions (default FINOPSGUARD_STAGE or dev)"

# Which deployed function each family of commands stands in for: its environment is theirs.
WEEKLY_REPORT = "weekly-report"  # report, outbox, budgets, teams, savings: the weekly report reads them all
CHARGEBACK = "chargeback"
BILLING_ADMIN = "billing-admin"


def stage_of(args: argparse.Namespace | None) -> str:
    flag = getattr(args, "stage", None) if args is not None else None
    if flag:
        return str(flag)
    shell = os.environ.get(deployment.STAGE_VARIABLE, "").strip()
    if not shell:
        return DEFAULT_STAGE
    try:
        return stage_name(shell)
    except argparse.ArgumentTypeError as error:
        message = f"{deployment.STAGE_VARIABLE}={error}; fix or unset it, or pass --stage"
        raise CliError(message, EXIT_BAD_INPUT) from None


def environment(args: argparse.Namespace, function: str, *, offline: bool = False) -> dict[str, str]:
    """The FINOPSGUARD_* environment `function` runs with on the stage, the shell's values on top."""
    return _resolved(args, function, offline).environment


def deployed(args: argparse.Namespace, function: str) -> dict[str, str]:
    """Only the deployed function's own values (empty when it is not deployed): for a setting whose
    shell variable means something else, e.g. the finance channel's secret, which the billing admin
    function calls FINOPSGUARD_TEAMS_SECRET_NAME like the cost channel's."""
    return _resolved(args, function, False).deployed


def _resolved(args: argparse.Namespace, function: str, offline: bool) -> deployment.Resolved:
    cache: dict[str, deployment.Resolved] = args.__dict__.setdefault("_environments", {})
    if function in cache:
        return cache[function]
    stage = stage_of(args)
    if offline:
        found = deployment.Resolved(stage, {**deployment.shell_settings(os.environ), deployment.STAGE_VARIABLE: stage},
                                    "shell")  # fmt: skip
    else:
        found = deployment.resolve(stage, function, os.environ)
        for warning in found.warnings:
            print(f"finops-guard: warning: {warning}", file=sys.stderr)
    cache[function] = found
    return found
