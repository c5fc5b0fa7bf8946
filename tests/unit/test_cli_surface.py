"""The whole `finops-guard` surface with bad input: one line on stderr, the documented exit code, no
traceback, nothing written. Subcommands are enumerated from the parser, so a new one is covered too.

Exit codes (finops_guard/cli_errors.py): 0 done, 1 not found or failed, 2 bad input, 4 AWS unavailable,
70 internal error, 130 interrupted, 141 stdout closed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from finops_guard import cli, cli_errors
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

AWS_ENVIRONMENT = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
)  # fmt: skip
# Commands that never reach AWS with the arguments below, or start servers: covered by their own tests.
NOT_AWS = {("local", "serve")}
# Commands that, given only their required arguments, refuse them (exit 2) before asking AWS anything.
REFUSED_BEFORE_AWS = {
    ("preflight",): "no cdk.json",
    ("teams", "add"): "give the team's webhook URL",
}
# chargeback run and link read the bucket and the dimensions from the deployed chargeback function
# (cli_stage): without AWS they cannot know them, so they say AWS is unavailable like the rest.
# A value for each required argument, by dest: valid enough to get past argparse.
REQUIRED_VALUES = {
    "id": "web", "team": "web", "amount": "100", "currency": "USD", "customer": "cus_NffrFeUfNV2Hib",
    "description": "x", "message_id": "m-1", "month": "2026-10", "stage": "test", "reason": "because",
}  # fmt: skip


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
        return
    for name, sub in subcommands[0].choices.items():
        yield from leaf_commands(sub, (*path, name))


LEAVES = dict(leaf_commands(cli.build_parser()))


def required_argv(path: tuple[str, ...], parser: argparse.ArgumentParser, budget_file: Path) -> list[str]:
    argv = list(path)
    for action in parser._actions:
        if not action.option_strings and action.dest != "help":
            argv.append(str(budget_file) if action.dest == "file" else REQUIRED_VALUES[action.dest])
        elif action.required:
            argv += [action.option_strings[-1], REQUIRED_VALUES[action.dest]]
    return argv


def typed_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options parsed by a strict `type=` (a date, month, port, stage, function, output path)."""
    return [a.option_strings[-1] for a in parser._actions if a.option_strings and a.type not in (None, str, int)]


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No credentials, no region anywhere botocore looks; no instance metadata: no socket is opened."""
    for name in AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path.parent / f"{tmp_path.name}-no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path.parent / f"{tmp_path.name}-no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in [n for n in os.environ if n.startswith("FINOPSGUARD_")]:
        monkeypatch.delenv(name)
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # read the environment above afresh
    from finops_guard.costs import runtime

    for factory in vars(runtime).values():
        if hasattr(factory, "cache_clear"):
            factory.cache_clear()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory; a test asserts it stays as it was."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run(capsys, argv: list[str]) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("finops-guard: "), err
    return lines[0]


# --- every subcommand ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_subcommand_refuses_an_unknown_option_in_one_line_with_exit_2(path, capsys, workdir, tmp_path):
    budget_file = tmp_path / "budgets.yaml"

    code, err = run(capsys, [*required_argv(path, LEAVES[path], budget_file), "--no-such-option"])

    assert code == 2
    assert "unrecognized arguments: --no-such-option" in one_error_line(err)
    assert files_in(workdir) == set()


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_subcommand_missing_a_required_argument_or_with_a_bad_typed_value_exits_2(path, capsys, workdir):
    parser = LEAVES[path]
    required = [a for a in parser._actions if a.required or (not a.option_strings and a.dest != "help")]
    cases = [[*path]] if required else []
    cases += [[*path, option, "2026-13-45/../\x7f"] for option in typed_options(parser)]
    for argv in cases:
        code, err = run(capsys, argv)
        assert code == 2, argv
        one_error_line(err)
    assert files_in(workdir) == set()


@pytest.mark.parametrize("path", sorted(set(LEAVES) - NOT_AWS), ids=" ".join)
@pytest.mark.parametrize(
    ("setting", "expected"),
    # Without a region, a command whose first client is pinned to us-east-1 (Cost Explorer) meets the
    # missing credentials first: both are true, both are AWS being unavailable (exit 4).
    [
        ({}, ("no AWS region", "no usable AWS credentials")),
        ({"AWS_REGION": "eu-west-1"}, ("no usable AWS credentials",)),
    ],
    ids=["no-region", "no-credentials"],
)
def test_every_subcommand_without_aws_says_so_in_one_line(path, setting, expected, capsys, workdir, no_aws,
                                                          monkeypatch, tmp_path):  # fmt: skip
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    budget_file = tmp_path / "budgets.yaml"
    budget_file.write_text("budgets: []\n", encoding="utf-8")

    code, err = run(capsys, required_argv(path, LEAVES[path], budget_file))

    line = one_error_line(err)
    if path in REFUSED_BEFORE_AWS:
        assert (code, REFUSED_BEFORE_AWS[path] in line) == (2, True), line
    else:
        assert (code, any(text in line for text in expected)) == (4, True), line
    assert files_in(workdir) == set()


# --- arguments ------------------------------------------------------------------------------------


INVOICE = ["invoice", "create", "--customer", "cus_NffrFeUfNV2Hib", "--amount", "10", "--currency", "USD",
           "--description", "x"]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["report", "weekly", "--mock", "--dry-run", "--now", "2026-02-30"], "'2026-02-30' is not a real date"),
        (["report", "weekly", "--mock", "--dry-run", "--now", "yesterday"], "is not a real date"),
        (["chargeback", "run", "--mock", "--dry-run", "--month", "2026-13"], "'2026-13' is not a month YYYY-MM"),
        (["chargeback", "link", "--month", "2026-1"], "'2026-1' is not a month YYYY-MM"),
        (["savings", "implement", "r-1", "--on", "2026-02-30"], "is not a real day YYYY-MM-DD"),
        (["chargeback", "link", "--month", "2026-10", "--minutes", "0"], "'0' is outside 1-720 (a link cannot"),
        (["chargeback", "link", "--month", "2026-10", "--minutes", "-5"], "'-5' is outside 1-720"),
        (["chargeback", "link", "--month", "2026-10", "--minutes", "10080"], "'10080' is outside 1-720"),
        (["chargeback", "link", "--month", "2026-10", "--minutes", "1h"], "'1h' is not a whole number (1-720)"),
        ([*INVOICE, "--days-until-due", "-3"], "'-3' is outside 0-365 (the stack's invoiceDaysUntilDue range"),
        ([*INVOICE, "--days-until-due", "366"], "'366' is outside 0-365"),
        (["local", "serve", "--port", "0"], "'0' is not a TCP port (1-65535)"),
        (["local", "serve", "--port", "65536"], "'65536' is not a TCP port"),
        (["local", "serve", "--port", "http"], "'http' is not a TCP port"),
        (["dlq", "list", "--function", "no-such-function"], "unknown function 'no-such-function': one of"),
        (["dlq", "redrive", "--function", "Weekly-Report"], "unknown function 'Weekly-Report'"),
        (["budgets", "list", "--stage", "Prod EU"], "use 1-16 lowercase letters"),
        (["report", "weekly", "--mock", "--dry-run", "--out", "no-such/card.json"], "no folder 'no-such'"),
        (["report", "weekly", "--mock", "--dry-run", "--out", "."], "'.' is a folder"),
        (["chargeback", "run", "--mock", "--dry-run", "--out", "no-such-folder"], "'no-such-folder' does not exist"),
        ([], "the following arguments are required: command"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it_and_exit_2(argv, named, capsys, workdir):
    code, err = run(capsys, argv)

    assert code == 2
    assert named in one_error_line(err)
    assert files_in(workdir) == set()


def test_the_cli_ranges_are_the_stacks_context_ranges():
    from finops_guard import cli_teams

    from infra import config

    assert cli_teams.LINK_MINUTES_MAX == config.CHARGEBACK_LINK_MINUTES_MAX == 720  # 12 h: a role session's maximum
    assert cli.DAYS_UNTIL_DUE_MAX == config.INVOICE_DAYS_UNTIL_DUE_MAX


# --- files -----------------------------------------------------------------------------------------

BAD_FILES = {
    "latin1.yaml": ("budgets:\n  - id: caf\xe9\n".encode("latin-1"), "is not UTF-8 (byte 0xe9 on line 2"),
    "utf16.json": ('{"budgets": []}'.encode("utf-16"), "is UTF-16: save it as UTF-8"),
    "broken.yaml": (b"budgets: [\n  - id: web\n", "not valid YAML"),
    "broken.json": (b'{"budgets": [', "not valid JSON"),
    "tabs.yaml": (b"budgets:\n\t- id: web\n", "not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_budget_file_that_cannot_be_read_is_one_line_naming_it_and_exit_2(name, capsys, workdir, tmp_path):
    content, problem = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)

    code, err = run(capsys, ["budgets", "apply", str(path), "--stage", "test"])

    assert code == 2
    line = one_error_line(err)
    assert problem in line and name in line
    assert files_in(workdir) == set()


def test_a_yaml_python_tag_is_refused_and_never_constructed(capsys, workdir, tmp_path):
    marker = tmp_path / "constructed"
    path = tmp_path / "budgets.yaml"
    path.write_text(
        f"budgets:\n  - !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    )

    code, err = run(capsys, ["budgets", "apply", str(path), "--stage", "test"])

    assert code == 2
    assert "python/object/apply" in one_error_line(err)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("target", "problem"), [("missing.yaml", "no such budget file"), (".", "is a folder")], ids=["missing", "folder"]
)
def test_a_budget_file_that_is_missing_or_a_folder_is_one_line_and_exit_2(target, problem, capsys, workdir):
    code, err = run(capsys, ["budgets", "apply", target])

    assert code == 2
    assert problem in one_error_line(err)


# --- the boundary ----------------------------------------------------------------------------------


def failing_with(monkeypatch, error: BaseException) -> None:
    def command(args):
        raise error

    monkeypatch.setattr(cli, "cmd_budgets_list", command)


def test_an_unexpected_error_is_an_internal_error_line_and_exit_70(monkeypatch, capsys):
    failing_with(monkeypatch, ZeroDivisionError("division by zero"))

    code, err = run(capsys, ["budgets", "list"])

    assert code == 70
    assert one_error_line(err) == (
        "finops-guard: internal error: ZeroDivisionError: division by zero; rerun with --debug and report it"
    )


@pytest.mark.parametrize("argv", [["--debug", "budgets", "list"], ["budgets", "list", "--debug"]])
def test_debug_shows_the_traceback_then_the_line(argv, monkeypatch, capsys):
    failing_with(monkeypatch, ZeroDivisionError("division by zero"))

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == 70
    assert err.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in err
    assert err.splitlines()[-1].startswith("finops-guard: internal error: ZeroDivisionError")


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    failing_with(monkeypatch, KeyboardInterrupt())

    code, err = run(capsys, ["budgets", "list"])

    assert (code, one_error_line(err)) == (130, "finops-guard: interrupted")


def test_a_closed_stdout_ends_quietly_with_141(monkeypatch, capsys):
    failing_with(monkeypatch, BrokenPipeError(32, "Broken pipe"))

    code, err = run(capsys, ["budgets", "list"])

    assert (code, err) == (141, "")


def test_a_pipe_closed_by_the_reader_leaves_stderr_empty(workdir):
    """As `finops-guard ... | head -1`, with the reader gone before the first write."""
    command = [sys.executable, "-c", "import sys; from finops_guard.cli import main; sys.exit(main())",
               "report", "weekly", "--mock", "--dry-run", "--now", "2026-11-16T07:00:00Z"]  # fmt: skip
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, cwd=workdir, timeout=60, check=False)
    finally:
        os.close(writer)

    assert (done.returncode, done.stderr.decode()) == (141, "")


def test_version_is_the_package_version(capsys):
    code = cli.main(["--version"])

    assert (code, capsys.readouterr().out) == (0, f"finops-guard {cli.version()}\n")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cli.FALLBACK_VERSION == pyproject["project"]["version"]


def test_help_still_exits_0(capsys):
    assert cli.main(["budgets", "apply", "--help"]) == 0
    assert "usage: finops-guard budgets apply" in capsys.readouterr().out


# --- any argv ----------------------------------------------------------------------------------------

OPTION_WORDS = sorted(
    {o for parser in LEAVES.values() for a in parser._actions for o in a.option_strings} - {"-h", "--help", "--debug"}
)
TOKENS = st.one_of(
    st.sampled_from(OPTION_WORDS),
    st.sampled_from(["2026-10", "2026-13", "2026-02-30", "0", "-1", "65536", "web", "test", ".", "..", "", "--"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(set(LEAVES) - NOT_AWS)), rest=st.lists(TOKENS, max_size=6))
def test_any_argv_of_printable_strings_never_shows_a_traceback(path, rest, capsys, no_aws, workdir):
    assume(not any(len(token) > 3 and "--debug".startswith(token) for token in rest))  # --debug, abbreviated
    code = cli.main([*path, *rest])

    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code in (0, 1, 2, 4), captured.err
    if code:
        assert len(captured.err.splitlines()) == 1, captured.err
        assert code != 1, captured.err  # offline, nothing is found or fails: it is bad input or no AWS


# --- AWS answers, as the boundary words them -----------------------------------------------------------


def client_error(code: str, message: str = "", status: int = 400, operation: str = "Scan") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)  # fmt: skip


def test_access_denied_is_a_failure_naming_the_missing_permission_not_unavailable():
    denied = client_error(
        "AccessDeniedException",
        "User: arn:aws:iam::111111111111:user/ana is not authorized to perform: dynamodb:Scan on resource: "
        "arn:aws:dynamodb:eu-west-1:111111111111:table/finops-guard-prod-budgets",
    )

    message, code = cli_errors.describe(denied, "prod")

    assert code == 1
    assert message.startswith("AWS denied dynamodb:Scan")
    assert "grant dynamodb:Scan to the caller's IAM role or user" in message


@pytest.mark.parametrize(
    ("code", "status"),
    [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 500)],
)
def test_throttling_or_a_5xx_past_the_retries_is_aws_unavailable(code, status):
    message, exit_code = cli_errors.describe(client_error(code, status=status), "prod")

    assert exit_code == 4
    assert "wait a minute and run the command again" in message


def test_refused_credentials_are_aws_unavailable():
    message, code = cli_errors.describe(client_error("ExpiredTokenException", "expired"), "prod")

    assert (code, message) == (4, "AWS refused the credentials (ExpiredTokenException): refresh them (aws sso login, "
                                   "or new keys)")  # fmt: skip
