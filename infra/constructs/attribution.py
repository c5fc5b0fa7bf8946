"""Cost attribution: the team routes table, team routing for the posting functions, and the monthly
chargeback (function, schedule and the bucket its CSVs are kept in).

EventBridge Scheduler (the 1st, report time zone) -> chargeback -> Cost Explorer (one request per
attribution dimension) -> chargeback/<YYYY-MM>/<dimension>.csv in the chargeback bucket -> a card with
pre-signed links in the default chat, through the shared outbox.

Team routing: weekly report, budget guard and anomaly alerts read the routes (``finops-guard teams
add|list|remove`` writes them) and post a team's cards with that team's webhook secret, which operators
create under ``finops-guard/<stage>/teams/``: the only team secrets these functions may read.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct
from finops_guard.costs.teams import team_secret_prefix

from infra.config import FinOpsGuardConfig
from infra.constructs.cost_reports import allow_cost_and_usage_reads
from infra.constructs.layers import SharedLayers
from infra.constructs.monitored_function import MonitoredFunction, MonitoredFunctionProps, function_code
from infra.constructs.schedules import FunctionSchedule, add_function_schedule
from infra.constructs.secrets import WebhookSecrets
from infra.constructs.storage import access_log_bucket, report_bucket, state_table, use_outbox_statement

CHARGEBACK_FUNCTION = "chargeback"
# One Cost Explorer request per dimension (at most three), each maybe a few pages, then the chat post
# with its retries: minutes at most, once a month.
CHARGEBACK_TIMEOUT = Duration.seconds(300)
CHARGEBACK_MEMORY_MB = 256
CHARGEBACK_PREFIX = "chargeback/"
# A chargeback month that is re-run (late credits, a tag fixed after the fact) keeps the CSV first
# published as a noncurrent version for 13 months: through the next annual budget round and a yearly
# audit, which is when finance asks "what did we charge back then?". Current versions never expire:
# they are the record of what each team was charged, a few KiB a month.
CHARGEBACK_NONCURRENT_DAYS = 400
ACCESS_LOG_DAYS = 400


class Attribution(Construct):
    """Exposes ``team_routes_table``, ``team_secret_prefix``, ``access_log_bucket``, ``chargeback_bucket``,
    ``chargeback`` (a monitored function, and its ``function``) and ``schedule``.

    ``allow_team_routing(fn)`` lets a posting function attribute spend and reach each team's channel;
    ``allow_team_assignment(fn)`` only lets a function tell which team owns what (no team secrets).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: SharedLayers,
        alarm_topic: sns.ITopic,
        webhook_secrets: WebhookSecrets,
        outbox_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.webhook_secrets = webhook_secrets
        self.outbox_table = outbox_table
        self.team_secret_prefix = team_secret_prefix(config.stage)
        # Kept even with team routing off: `finops-guard teams add` can prepare routes before it is on.
        self.team_routes_table = self._add_team_routes_table()
        self.access_log_bucket = access_log_bucket(
            self, "ChargebackAccessLogs", expire_after=Duration.days(ACCESS_LOG_DAYS)
        )
        self.chargeback_bucket = self._add_chargeback_bucket()
        self.chargeback = self._add_chargeback(layers, alarm_topic)
        self.function = self.chargeback.function
        self._grant_chargeback()
        self.schedule = self._add_schedule()

    @property
    def routing_enabled(self) -> bool:
        return self.config.team_dimension is not None

    def allow_team_assignment(self, reader: MonitoredFunction) -> None:
        """Let ``reader`` tell which team a cost or resource belongs to: the attribution dimensions and,
        with team routing on, the team settings and a Query of the team routes (which team owns which
        accounts). Nothing to post with: no team webhook secret."""
        config = self.config
        reader.function.add_environment("FINOPSGUARD_ATTRIBUTION_DIMENSIONS", config.attribution_dimensions_text)
        if config.team_dimension is None:
            return
        for name, value in self._routing_environment().items():
            reader.function.add_environment(name, value)
        reader.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTeamRoutes",
                actions=["dynamodb:Query"],
                resources=[self.team_routes_table.table_arn],
            )
        )

    def allow_team_routing(self, poster: MonitoredFunction) -> None:
        """Let ``poster`` group spend by the attribution dimensions and, with team routing on, read the
        team routes and post to each team's own channel (its webhook secret under the team prefix).

        The dimensions are set even with routing off: the weekly card's attribution KPIs use them.
        """
        self.allow_team_assignment(poster)
        if self.config.team_dimension is None:
            return
        poster.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTeamWebhookSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.team_secrets_arn],
            )
        )
        Validations.of(poster.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{self._team_secrets_arn_pattern}]",
                reason=(
                    "Team webhook secrets are created by operators, one per team channel, after deploy "
                    "(finops-guard teams add names them), so their names cannot be listed in the template. "
                    f"The wildcard allows secretsmanager:GetSecretValue only, on secrets named "
                    f"{self.team_secret_prefix}* in this account and region; routes naming a secret "
                    "elsewhere are refused by the CLI and skipped by the functions."
                ),
            )
        )

    @property
    def team_secrets_arn(self) -> str:
        """``arn:<partition>:secretsmanager:<region>:<account>:secret:finops-guard/<stage>/teams/*``."""
        return Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{self.team_secret_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    @property
    def _team_secrets_arn_pattern(self) -> str:
        """The team secrets ARN the way cdk-nag names it in a finding."""
        return f"arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{self.team_secret_prefix}*"

    def _routing_environment(self) -> dict[str, str]:
        assert self.config.team_dimension is not None
        return {
            "FINOPSGUARD_TEAM_DIMENSION": self.config.team_dimension,
            "FINOPSGUARD_TEAM_ROUTES_TABLE": self.team_routes_table.table_name,
            "FINOPSGUARD_TEAM_SECRET_PREFIX": self.team_secret_prefix,
        }

    def _add_team_routes_table(self) -> dynamodb.Table:
        # pk is always "ROUTE" and sk the team: one Query lists every route, no Scan.
        return state_table(
            self,
            "TeamRoutesTable",
            table_name=f"finops-guard-{self.config.stage}-team-routes",
            partition_key="pk",
            sort_key="sk",
            deletion_protection=False,  # configuration: `finops-guard teams add` writes it again
        )

    def _add_chargeback_bucket(self) -> s3.Bucket:
        return report_bucket(
            self,
            "ChargebackBucket",
            access_logs=self.access_log_bucket,
            access_logs_prefix="chargeback-bucket/",
            noncurrent_rule_id="expire-superseded-chargebacks",
            keep_noncurrent=Duration.days(CHARGEBACK_NONCURRENT_DAYS),
        )

    def _chargeback_environment(self) -> dict[str, str]:
        config = self.config
        environment = {
            **config.report_environment(),
            **self.webhook_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
            "FINOPSGUARD_ATTRIBUTION_DIMENSIONS": config.attribution_dimensions_text,
            "FINOPSGUARD_CHARGEBACK_BUCKET": self.chargeback_bucket.bucket_name,
            "FINOPSGUARD_CHARGEBACK_UNALLOCATED": config.chargeback_unallocated,
            "FINOPSGUARD_CHARGEBACK_LINK_EXPIRY_MINUTES": str(config.chargeback_link_expiry_minutes),
        }
        if config.team_dimension is not None:
            environment["FINOPSGUARD_TEAM_DIMENSION"] = config.team_dimension
        return environment

    def _add_chargeback(self, layers: SharedLayers, alarm_topic: sns.ITopic) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "Chargeback",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name=CHARGEBACK_FUNCTION,
                description="Writes last month's chargeback CSVs per team and cost center and announces them in chat",
                code=function_code("chargeback"),
                timeout=CHARGEBACK_TIMEOUT,
                memory_size=CHARGEBACK_MEMORY_MB,
                environment=self._chargeback_environment(),
                layers=[layers.common, layers.report_deps],
                alarm_topic=alarm_topic,
                slow_calls="Cost Explorer pages, S3 PutObject, webhook",
                redrive_hint=(
                    "invoke the function with the message body (a retried run never announces twice), or "
                    'with {"month": "YYYY-MM"} for the month the message names, and delete the message'
                ),
            ),
        )

    def _grant_chargeback(self) -> None:
        chargeback, bucket = self.chargeback, self.chargeback_bucket
        allow_cost_and_usage_reads(
            chargeback, scoped_to="log group, DLQ, webhook secrets, outbox table and the chargeback objects"
        )
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        for statement in (
            self.webhook_secrets.read_statement(),
            use_outbox_statement(self.outbox_table),
            # PutObject writes the month's CSV; the card's pre-signed link names the version just written,
            # and S3 authorises a GET of a version as s3:GetObjectVersion of the signer (this role).
            iam.PolicyStatement(
                sid="PublishChargebacks",
                actions=["s3:PutObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(f"{CHARGEBACK_PREFIX}*")],
            ),
        ):
            chargeback.add_to_role_policy(statement)
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        bucket_id = Stack.of(self).get_logical_id(cfn_bucket)
        Validations.of(chargeback.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{CHARGEBACK_PREFIX}*]",
                reason=(
                    f"The chargeback writes one object per month and attribution dimension under "
                    f"{CHARGEBACK_PREFIX}<YYYY-MM>/, named at run time, so the keys cannot be listed in advance. "
                    "The prefix wildcard allows only s3:PutObject and s3:GetObjectVersion (which the pre-signed "
                    "link of the version just written needs), in this stack's chargeback bucket only; the "
                    "function cannot list or delete objects."
                ),
            )
        )

    def _add_schedule(self) -> scheduler.Schedule:
        config = self.config
        return add_function_schedule(
            self,
            self.chargeback,
            FunctionSchedule(
                construct_prefix="Chargeback",
                schedule_name=f"finops-guard-{config.stage}-chargeback",
                purpose="the monthly chargeback",
                expression=config.chargeback_schedule,
                timezone=config.timezone,
                payload={"job": "chargeback"},
            ),
        )
