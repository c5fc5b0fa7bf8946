"""The simulated month: what the stacks create on the embedded AWS (under the templates' names),
each function's environment resolved to those resources, and the month's clock."""

from __future__ import annotations

import json
import re
import secrets as secrets_module
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.selfcost.lambdas import Invocation, Lambdas
from devtools.selfcost.metering import metric_hours, metric_months
from devtools.selfcost.schedules import runs_in_month
from devtools.selfcost.template import STAGE, FunctionFacts, ScheduleFacts, TemplateFacts

TARGET_USD = Decimal("0.50")
MONTH = (2026, 11)
MONITOR_SINCE = date(2026, 6, 1)  # the AWS-services anomaly monitor's start, long before the month
SAMPLE_GROUPS = 14  # customer groups (72 events each) that really go through the webhook


@dataclass(frozen=True)
class Scale:
    """How much of the month runs: every day (`days` None) or the first `days`; `sample_groups` of the
    Stripe customer groups go through the webhook; `init_runs` fresh interpreters time each INIT (0:
    the one that also writes the bytecode cache); `reconciliations` of them run on the full ledger."""

    days: int | None
    sample_groups: int
    init_runs: int
    reconciliations: int


FULL = Scale(days=None, sample_groups=SAMPLE_GROUPS, init_runs=3, reconciliations=3)
# Day 1 has the chargeback, day 2 (a Monday) the weekly report and export, day 3 the first anomaly.
SMOKE = Scale(days=3, sample_groups=2, init_runs=0, reconciliations=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Deployment:
    """What the stacks create, on the embedded AWS under the templates' names, and each function's
    environment from the template with its references resolved to the embedded resources."""

    def __init__(self, aws: Any, facts: TemplateFacts, chat_url: Callable[[str], str]) -> None:
        self.aws = aws
        self.facts = facts
        self.tables = aws.create_billing_tables(STAGE)
        self.outbox = aws.create_outbox_table(f"finops-guard-{STAGE}-outbox")
        self.budgets_table, self.alerts_table = aws.create_budget_tables(STAGE)
        self.anomalies_table = aws.create_anomalies_table(STAGE)
        self.team_routes_table = aws.create_team_routes_table(STAGE)  # empty until `finops-guard teams add`
        self.topic_arns = {name: aws.client("sns").create_topic(Name=name)["TopicArn"] for name in facts.topics}
        self.buckets: dict[str, str] = {}  # the template's logical id -> its embedded bucket
        self.chat_url = chat_url
        secrets = {str(p["Properties"]["Name"]): p["Properties"] for p in facts.resources.values()
                   if p["Type"] == "AWS::SecretsManager::Secret"}  # fmt: skip
        self.secret_names = list(secrets)
        for name, props in secrets.items():
            if "SecretString" in props:  # created holding a value (the team webhooks map: {})
                value = str(props["SecretString"])
            elif name.endswith("-webhook-url"):
                value = chat_url("/finance" if "/finance-" in name else "/teams")
            elif name.endswith("stripe-webhook-secret"):
                from devtools.stripe_events import TEST_SECRET

                value = TEST_SECRET
            else:  # the API key: CDK's generated placeholder until an operator puts an rk_ key
                value = secrets_module.token_urlsafe(24)
            aws.put_secret(name, value)
        self.environments = {name: self.environment_of(f) for name, f in facts.functions.items()}

    def _resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        resource = self.facts.resources[target]
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            return str(props["TableName"])
        if resource["Type"] == "AWS::SNS::Topic":
            return str(self.topic_arns[props["TopicName"]])
        if resource["Type"] == "AWS::S3::Bucket":
            return self._bucket(target)
        if resource["Type"] == "Custom::AnomalyServicesMonitor" and "Fn::GetAtt" in value:
            # What the deploy-setup function answers: the monitor's ARN, its start (before the month: the
            # model is done learning, as in a month of steady use).
            return {"MonitorArn": f"arn:aws:ce::123456789012:anomalymonitor/{target.lower()}",
                    "Since": MONITOR_SINCE.isoformat()}[value["Fn::GetAtt"][1]]  # fmt: skip
        raise ValueError(f"cannot resolve {value} ({resource['Type']})")

    def _bucket(self, logical_id: str) -> str:
        """One embedded bucket per template bucket a function names (export, chargeback), versioned
        like the template's, named after the construct (`...-attributionchargebackbucket`)."""
        if logical_id not in self.buckets:
            construct = re.sub(r"[0-9A-F]{8}$", "", logical_id).lower()
            self.buckets[logical_id] = self.aws.create_export_bucket(f"finops-guard-{STAGE}-{construct}"[:63])
        return self.buckets[logical_id]

    def environment_of(self, function: FunctionFacts) -> dict[str, str]:
        return {key: self._resolve(value) for key, value in function.environment.items()}

    def route_teams(self, teams: Sequence[str], now: datetime) -> list[str]:
        """What `finops-guard teams add <team> --teams-url ...` leaves: the team's Teams webhook URL in
        the team webhooks secret (one secret for every team, in the template) and a route by the team
        tag alone (no accounts). Returns the teams routed."""
        from finops_guard.costs.adapters.team_routes import TeamRoutesTable
        from finops_guard.costs.teams import TeamRoute, team_webhooks_secret_name

        routes = TeamRoutesTable(self.team_routes_table, self.aws.client("dynamodb"))
        webhooks = {team: {"teams": self.chat_url(f"/teams/{team}")} for team in teams}
        self.aws.client("secretsmanager").put_secret_value(SecretId=team_webhooks_secret_name(STAGE),
                                                           SecretString=json.dumps(webhooks))  # fmt: skip
        for team in teams:
            routes.put(TeamRoute(team, ("teams",)), now)
        return list(teams)


def scheduled_event(schedule: ScheduleFacts, at: datetime) -> dict[str, Any]:
    return dict(json.loads(schedule.payload.replace("<aws.scheduler.scheduled-time>", _iso(at))))


class Simulation:
    def __init__(
        self, aws: Any, facts: TemplateFacts, deployment: Deployment, lambdas: Lambdas, days: int | None = None
    ) -> None:
        self.aws = aws
        self.facts = facts
        self.deployment = deployment
        self.lambdas = lambdas
        self.month_start = datetime(MONTH[0], MONTH[1], 1, tzinfo=UTC)
        self.days = days  # None: the whole month; else its first `days` days (the smoke run)

    def within(self, at: datetime) -> bool:
        return self.days is None or at < self.month_start + timedelta(days=self.days)

    def runs(self, schedule: ScheduleFacts) -> list[datetime]:
        return [at for at in runs_in_month(schedule.expression, schedule.timezone, *MONTH) if self.within(at)]


def usage_counts(records: Iterable[Invocation], extra: Mapping[str, Decimal] | None = None) -> dict[str, Decimal]:
    """Weighted units of a scenario's invocations; custom metrics by the hours they were sent in."""
    records = list(records)
    counts: defaultdict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        for key, quantity in record.units.items():
            counts[key] += Decimal(quantity) * record.weight
    counts["cloudwatch.metric"] = metric_months(metric_hours((r.metrics, r.hours) for r in records))
    for key, quantity in (extra or {}).items():
        counts[key] += quantity
    return {key: Decimal(value) for key, value in counts.items() if value}
