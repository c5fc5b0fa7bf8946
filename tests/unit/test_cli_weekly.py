"""`finops-guard report weekly --mock --dry-run`: the card of the channel asked for, offline."""

from __future__ import annotations

import json

import pytest
from finops_guard import cli


@pytest.fixture(autouse=True)
def _no_deployment(monkeypatch):
    for name in ("FINOPSGUARD_SLACK_SECRET_NAME", "FINOPSGUARD_TEAMS_SECRET_NAME", "FINOPSGUARD_OUTBOX_TABLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("channel", "shape"), [("teams", "attachments"), ("slack", "blocks")])
def test_a_dry_run_writes_the_card_of_the_channel_asked_for_even_if_it_is_not_set_up(tmp_path, capsys, channel, shape):
    out = tmp_path / f"{channel}.json"

    assert cli.main(["report", "weekly", "--mock", "--dry-run", "--channel", channel, "--out", str(out)]) == 0

    assert shape in json.loads(out.read_text(encoding="utf-8"))
    assert capsys.readouterr().out.startswith(f"{channel} payload for weekly-report/")
