"""What tests/integration/costs/test_first_days.py and tests/integration/billing/test_first_days.py
share: a chat webhook secret still holding the placeholder `cdk deploy` leaves in it, and the reader of
what a run printed and logged."""

from __future__ import annotations

import json
from collections import Counter

from tests.integration.conftest import TEAMS_SECRET

PLACEHOLDER = "q7#Vb2!placeholder-from-GenerateSecretString"  # what the stack's secret holds after deploy


class Output:
    """What a run printed and logged: the EMF metric documents (what CloudWatch alarms read) and the
    log lines (Powertools JSON; a handler module loaded after the fixture logs to stdout only)."""

    def __init__(self, deployment, capsys) -> None:
        printed = capsys.readouterr().out
        self.text = printed + deployment.logs.getvalue()
        self.documents = []
        for line in self.text.splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                self.documents.append(document)

    @property
    def metrics(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for document in (d for d in self.documents if "_aws" in d):
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
        return totals

    def lines(self, level: str) -> list[dict]:
        return [d for d in self.documents if d.get("level") == level]

    @property
    def setup_warnings(self) -> list[dict]:
        """One per secret per run (a line captured twice, on stdout and in the log, counts once)."""
        found = {line["message"]: line for line in self.lines("WARNING") if "not set up yet" in line["message"]}
        return list(found.values())


def placeholder(deployment, secret: str = TEAMS_SECRET) -> None:
    deployment.aws.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=PLACEHOLDER)
