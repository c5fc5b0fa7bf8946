"""What `--stage` means to the CLI: the settings of that stage's deployed function.

A CLI command stands in for one function of the stage (the report commands for the weekly report,
`chargeback` for the chargeback job, `invoice create` for the billing admin API) and reads the same
FINOPSGUARD_* settings that function runs with: its environment, read from Lambda with
lambda:GetFunctionConfiguration on `finops-guard-<stage>-<function>`. The stack writes no extra
parameter for this (the function's configuration is the one source of truth, and costs nothing), and
no value there is secret: the functions' environments hold names and settings, secrets stay in
Secrets Manager.

Where each setting comes from, first match wins:
1. a flag of the command (`--outbox-table`, `--teams-secret`, ...);
2. a FINOPSGUARD_* variable of the shell: the way to point the CLI at tables of your own (DynamoDB
   Local, moto). Where it differs from the deployed value, a warning says so, because a card built
   with the shell's time zone or budget is not the card the schedule posts;
3. the deployed function's environment;
4. the names the stack gives every stage (finops-guard-<stage>-outbox, ...).

A stage with no such function in this account and region (not deployed, another region) goes on with
the shell's values and the default names, quietly: the first table it touches then reports the stage
as not deployed, in the command's one error line. A caller without lambda:GetFunctionConfiguration
gets one warning naming the action, and the same fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import CLIENT_CONFIG
from finops_guard.core.settings import PREFIX

STAGE_VARIABLE = PREFIX + "STAGE"
# Shell variables that say where and how to run rather than what the deployment is: never warned about.
NOT_SETTINGS = frozenset({STAGE_VARIABLE, PREFIX + "USE_MOCK_DATA", PREFIX + "KPI_METRICS"})


def function_name(stage: str, function: str) -> str:
    return f"finops-guard-{stage}-{function}"


@dataclass(frozen=True)
class Resolved:
    """The FINOPSGUARD_* environment a command runs with, and where it came from."""

    stage: str
    environment: dict[str, str]
    source: str  # "deployed finops-guard-prod-weekly-report" | "shell" | "defaults"
    warnings: tuple[str, ...] = field(default=())
    deployed: dict[str, str] = field(default_factory=dict)  # the function's own FINOPSGUARD_* values only


def shell_settings(shell: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in shell.items() if k.startswith(PREFIX) and v.strip()}


def merge(
    stage: str,
    function: str,
    deployed: Mapping[str, str] | None,
    shell: Mapping[str, str],
    *,
    unreadable: str | None = None,
) -> Resolved:
    """Pure: the shell's FINOPSGUARD_* values over the deployed ones (each difference warned), the
    stage last. `deployed` None: the function was not found; `unreadable`: why it could not be read."""
    name = function_name(stage, function)
    own = shell_settings(shell)
    configured = {k for k in own if k not in NOT_SETTINGS}
    warnings: list[str] = []
    if deployed is None:
        if unreadable is not None:
            warnings.append(
                f"cannot read the settings of {name} ({unreadable}): using FINOPSGUARD_* variables and default names"
            )
        return Resolved(stage, {**own, STAGE_VARIABLE: stage}, "shell" if configured else "defaults", tuple(warnings))
    base = {k: v for k, v in deployed.items() if k.startswith(PREFIX)}
    for key in sorted(configured):
        if key in base and base[key] != own[key]:
            warnings.append(f"{key} from the shell overrides the value {name} runs with; unset it to use that one")
    merged = {**base, **own, STAGE_VARIABLE: stage}
    return Resolved(stage, merged, f"deployed {name}", tuple(warnings), deployed=base)


def deployed_environment(stage: str, function: str, client: Any | None = None) -> Mapping[str, str] | None:
    """The function's environment variables; None when the stage has no such function here.

    Raises ClientError (AccessDenied included) and botocore's errors (no region, no credentials, no
    answer) to the caller: `resolve` turns AccessDenied into a warning, the CLI the rest into its line."""
    if client is None:
        import boto3

        client = boto3.client("lambda", config=CLIENT_CONFIG)
    try:
        answer = client.get_function_configuration(FunctionName=function_name(stage, function))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    variables = answer.get("Environment", {}).get("Variables", {})
    return {str(k): str(v) for k, v in variables.items()}


DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def resolve(
    stage: str,
    function: str,
    shell: Mapping[str, str],
    *,
    reader: Callable[[str, str], Mapping[str, str] | None] = deployed_environment,
) -> Resolved:
    """The environment the CLI runs `function`'s code with, for `stage` (see the module docstring)."""
    try:
        deployed = reader(stage, function)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in DENIED:
            raise
        return merge(stage, function, None, shell, unreadable="needs lambda:GetFunctionConfiguration")
    return merge(stage, function, deployed, shell)
