"""README's offline commands, run exactly as written, in a fresh folder, with no AWS configuration at
all: a command that needed AWS would fail (exit 4), and a README line that drifted from the CLI would
fail argparse (exit 2)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

MARKER = "<!-- offline-commands:"


def offline_commands(readme: str) -> list[str]:
    """Every line of each ```bash block that follows the marker, comments dropped."""
    commands: list[str] = []
    lines = readme.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(MARKER):
            continue
        assert lines[index + 1].startswith("```"), "the marker must sit right above a code block"
        for body in lines[index + 2 :]:
            if body.startswith("```"):
                break
            command = body.split(" #", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


COMMANDS = offline_commands((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_has_offline_commands_and_they_are_all_finops_guard():
    assert len(COMMANDS) >= 4
    assert all(shlex.split(c)[0] == "finops-guard" for c in COMMANDS)


def run(command: str, folder: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    tool = Path(sys.executable).with_name("finops-guard")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FINOPSGUARD_"))}
    environment.update({
        "HOME": str(folder), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })  # fmt: skip
    return subprocess.run([str(tool), *argv[1:]], cwd=folder, env=environment, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess[str]]]:
    folder = tmp_path_factory.mktemp("readme")
    return folder, {command: run(command, folder) for command in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_offline_command_runs_as_written_without_aws(command, ran):
    _, results = ran
    result = results[command]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_teams_and_slack_cards_are_what_readme_says(ran):
    folder, _ = ran
    teams = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    slack = json.loads((folder / "slack.json").read_text(encoding="utf-8"))
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "blocks" in slack and "attachments" not in slack
