"""The AWS side of the `finops-guard` surface, on the embedded AWS (moto) and a dead endpoint on 127.0.0.1:
a stage that is not deployed, a missing bucket or object, an endpoint that does not answer, a port in use.
Each is one line on stderr, the documented exit code (1 not found, 2 bad input, 4 AWS unavailable), no
traceback, nothing written."""

from __future__ import annotations

import socket

import pytest
from finops_guard import cli
from finops_guard.billing import runtime as billing_runtime
from finops_guard.core import runtime as core_runtime
from finops_guard.costs import runtime as costs_runtime

from devtools.embedded_aws import REGION
from tests.conftest import ROOT
from tests.unit.test_cli_surface import LEAVES, NOT_AWS, REFUSED_BEFORE_AWS, files_in, one_error_line, required_argv


def clear_cached_clients() -> None:
    for module in (core_runtime, costs_runtime, billing_runtime):
        for factory in vars(module).values():
            if hasattr(factory, "cache_clear"):
                factory.cache_clear()


@pytest.fixture
def fresh(aws, monkeypatch, tmp_path):
    """The embedded AWS, clients made anew (and dropped again after the test), an empty working folder."""
    for name in ("FINOPSGUARD_STAGE", "FINOPSGUARD_CHARGEBACK_BUCKET", "FINOPSGUARD_ATTRIBUTION_DIMENSIONS"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    clear_cached_clients()
    yield folder
    clear_cached_clients()


def run(capsys, argv: list[str]) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, one_error_line(captured.err)


@pytest.mark.parametrize(
    ("argv", "kind", "name"),
    [
        (["budgets", "list"], "table", "finops-guard-ghost-budgets"),
        (["budgets", "show", "web"], "table", "finops-guard-ghost-budgets"),
        (["report", "pending"], "table", "finops-guard-ghost-outbox"),
        (["savings", "list"], "table", "finops-guard-ghost-recommendations"),
        (["teams", "list"], "table", "finops-guard-ghost-team-routes"),
        (["dlq", "list", "--function", "budget-guard"], "queue", "finops-guard-ghost-failures"),
        (["dlq", "discard", "--message-id", "m-1"], "queue", "finops-guard-ghost-failures"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_stage_that_is_not_deployed_names_what_is_missing_and_exits_1(argv, kind, name, fresh, capsys):
    code, line = run(capsys, [*argv, "--stage", "ghost"])

    assert code == 1
    assert line == (
        f"finops-guard: stage 'ghost' is not deployed here: no {kind} {name} in {REGION};"
        " deploy it (make deploy STAGE=ghost) or pass --stage"
    )
    assert files_in(fresh) == set()


def test_a_missing_bucket_is_named_and_exits_1(fresh, capsys):
    argv = ["chargeback", "link", "--month", "2026-10", "--dimension", "tag:Team", "--bucket", "no-such-bucket-fg"]

    code, line = run(capsys, argv)

    assert code == 1
    assert line.startswith(f"finops-guard: no bucket no-such-bucket-fg in {REGION}: check the name given")


def test_a_link_to_a_month_not_written_yet_is_refused_with_the_command_that_writes_it(aws, fresh, capsys):
    aws.client("s3").create_bucket(Bucket="fg-exports", CreateBucketConfiguration={"LocationConstraint": REGION})
    argv = ["chargeback", "link", "--month", "2026-10", "--dimension", "tag:Team", "--bucket", "fg-exports"]

    code, line = run(capsys, [*argv, "--stage", "test"])

    assert code == 1
    assert line == (
        "finops-guard: no chargeback/2026-10/tag-team.csv in bucket fg-exports: write the month first"
        " (finops-guard chargeback run --month 2026-10 --stage test)"
    )


def test_a_link_lives_as_long_as_asked_within_the_range_a_role_session_can_honour(aws, fresh, capsys):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fg-exports-links", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="fg-exports-links", Key="chargeback/2026-10/tag-team.csv", Body=b"team,cost\n")
    argv = ["chargeback", "link", "--month", "2026-10", "--dimension", "tag:Team", "--bucket", "fg-exports-links"]

    assert cli.main([*argv, "--minutes", "720"]) == 0
    assert "X-Amz-Expires=43200" in capsys.readouterr().out
    code, line = run(capsys, [*argv, "--minutes", "721"])
    assert code == 2
    assert "'721' is outside 1-720 (a link cannot outlive the signer's role session, 12 hours at most)" in line


ASKING_AWS = sorted(set(LEAVES) - NOT_AWS - set(REFUSED_BEFORE_AWS) | {("preflight",)})


@pytest.mark.parametrize("path", ASKING_AWS, ids=" ".join)
def test_every_subcommand_with_an_endpoint_that_does_not_answer_exits_4(path, fresh, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    (fresh.parent / "cdk.json").write_text((ROOT / "cdk.json").read_text())  # for preflight
    budget_file = tmp_path / "budgets.yaml"
    budget_file.write_text("budgets: []\n", encoding="utf-8")
    argv = required_argv(path, LEAVES[path], budget_file)
    if path == ("preflight",):
        argv += ["--context-file", str(fresh.parent / "cdk.json")]

    code, line = run(capsys, argv)

    assert code == 4, line
    assert "127.0.0.1:1" in line
    assert files_in(fresh) == set()


def test_a_port_in_use_is_one_line_and_exit_2_before_anything_starts(capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, line = run(capsys, ["local", "serve", "--port", str(port)])

    assert (code, line) == (2, f"finops-guard: port {port} is in use: pass another --port")
