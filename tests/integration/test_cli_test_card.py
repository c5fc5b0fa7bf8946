"""`finops-guard report test-card`: proof that a channel's webhook works before the first Monday."""

from __future__ import annotations

import json

import pytest
from finops_guard import cli
from finops_guard.core.adapters import secrets

from devtools.chat_recorder import Reply
from tests.integration.conftest import TEAMS_PATH, TEAMS_SECRET

pytestmark = pytest.mark.integration


def test_a_test_card_reaches_the_stages_channel_and_is_not_kept(deployed, capsys):
    code = cli.main(["report", "test-card", "--stage", "test"])

    out, err = capsys.readouterr()
    assert (code, err, out) == (0, "", "teams: test card posted (1 attempt); check the channel\n")
    [received] = deployed.chat.received
    assert received.path == TEAMS_PATH
    text = json.dumps(received.json(), ensure_ascii=False)
    assert "FinOps Guard test card · stage test" in text and "no cost figures" in text
    items = deployed.aws.client("dynamodb").scan(TableName=deployed.table)["Items"]
    assert items == []  # a test card is never kept for a redrive


def test_a_url_can_be_tried_before_it_is_stored(deployed, capsys):
    url = deployed.chat.url("/workflows/new-one")

    code = cli.main(["report", "test-card", "--stage", "test", "--url", url])

    assert code == 0
    assert [r.path for r in deployed.chat.received] == ["/workflows/new-one"]
    assert url not in capsys.readouterr().out  # a webhook URL is a credential


def test_a_url_of_the_wrong_service_is_refused_before_anything_is_sent(deployed, capsys):
    code = cli.main(["report", "test-card", "--url", "https://example.com/hook"])

    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("finops-guard: --url ")
    assert deployed.chat.received == []


def test_a_channel_not_set_up_yet_says_how_to_set_it_up(deployed, capsys):
    deployed.aws.client("secretsmanager").put_secret_value(SecretId=TEAMS_SECRET, SecretString="PLACEHOLDER")
    secrets.clear_cache()

    code = cli.main(["report", "test-card", "--stage", "test"])

    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert f"aws secretsmanager put-secret-value --secret-id {TEAMS_SECRET}" in err


def test_a_refused_card_is_one_line_and_exit_1(deployed, capsys):
    deployed.chat.then(Reply(404, body="workflow not found"))

    code = cli.main(["report", "test-card", "--stage", "test"])

    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("finops-guard: teams: not posted: ") and "404" in err
    assert "s3cr3t" not in err


def test_debug_shows_the_librarys_log_lines_too(deployed, capsys):
    deployed.chat.then(Reply(404, body="workflow not found"))

    code = cli.main(["report", "test-card", "--stage", "test", "--debug"])

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert any(line.startswith("finops-guard: debug: error finops_guard.core.adapters.chat: chat webhook rejected")
               for line in err), err  # fmt: skip
    assert err[-1].startswith("finops-guard: teams: not posted: ")
