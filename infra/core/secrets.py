"""Secrets the stack creates with a generated placeholder: operators put the real value after deploy,
so no webhook URL or signing secret ever enters the template."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


def placeholder_secret(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    description: str,
    no_rotation_reason: str,
    empty_json_object: bool = False,
) -> secretsmanager.Secret:
    """Secret ``name``, kept when the stack is deleted (not when its first create fails: RetainExceptOnCreate);
    ``no_rotation_reason`` acknowledges AwsSolutions-SMG4.

    The placeholder is a generated random string, or with ``empty_json_object`` the JSON ``{}`` (a map
    operators fill later; the template holds only ``{}``, and since that never changes, a stack update
    never overwrites what was put): the real value is put with put-secret-value.
    """
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        secret_name=name,
        description=description,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        secret_object_value={} if empty_json_object else None,
    )
    Validations.of(secret).acknowledge(Acknowledgment(id="AwsSolutions-SMG4", reason=no_rotation_reason))
    return secret


@dataclass(frozen=True)
class WebhookSecrets:
    """The chat webhook secrets of one audience (Slack only when slackEnabled)."""

    teams: secretsmanager.ISecret
    teams_name: str
    slack: secretsmanager.ISecret | None = None
    slack_name: str | None = None

    @property
    def all(self) -> list[secretsmanager.ISecret]:
        return [s for s in (self.teams, self.slack) if s is not None]

    @property
    def names(self) -> list[str]:
        return [name for name in (self.teams_name, self.slack_name) if name is not None]

    def environment(self) -> dict[str, str]:
        """Secret names (never values) in the variables finops_guard.core.settings reads."""
        environment = {"FINOPSGUARD_TEAMS_SECRET_NAME": self.teams_name}
        if self.slack_name is not None:
            environment["FINOPSGUARD_SLACK_SECRET_NAME"] = self.slack_name
        return environment

    def read_statement(self, sid: str = "ReadWebhookSecrets") -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=["secretsmanager:GetSecretValue"],
            resources=[secret.secret_arn for secret in self.all],
        )


def add_webhook_secrets(
    scope: Construct,
    *,
    stage: str,
    slack_enabled: bool,
    purpose: str,
    name_prefix: str = "",
    id_prefix: str = "",
) -> WebhookSecrets:
    """``finops-guard/<stage>/<name_prefix>teams-webhook-url`` (and ``...slack-webhook-url``).

    ``purpose`` completes "<product> incoming webhook URL for ..." in each secret's description.
    """

    def add(product: str, channel: str) -> tuple[secretsmanager.Secret, str]:
        name = f"finops-guard/{stage}/{name_prefix}{channel}-webhook-url"
        secret = placeholder_secret(
            scope,
            f"{id_prefix}{channel.capitalize()}WebhookSecret",
            name=name,
            description=(
                f"{product} incoming webhook URL for {purpose}. After the first deploy run: "
                f"aws secretsmanager put-secret-value --secret-id {name} --secret-string '<webhook url>'"
            ),
            no_rotation_reason=(
                f"The secret holds a {product} incoming webhook URL issued by {product}; there is no API "
                "to mint a new one, so a rotation Lambda cannot exist. Operators rotate it by hand "
                "(new webhook in the channel, then put-secret-value) when it leaks or is revoked."
            ),
        )
        return secret, name

    teams, teams_name = add("Microsoft Teams", "teams")
    if not slack_enabled:
        return WebhookSecrets(teams=teams, teams_name=teams_name)
    slack, slack_name = add("Slack", "slack")
    return WebhookSecrets(teams=teams, teams_name=teams_name, slack=slack, slack_name=slack_name)
