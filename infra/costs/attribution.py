"""Cost attribution: the team routes table, team routing for the posting functions, and the monthly
chargeback (function, schedule and the bucket its CSVs are kept in).

EventBridge Scheduler (the 1st, report time zone) -> chargeback -> Cost Explorer (one request per
attribution dimension) -> chargeback/<YYYY-MM>/<dimension>.csv in the chargeback bucket -> a card with
pre-signed links in the default chat, through the shared outbox.

Team routing: weekly report, budget guard and anomaly alerts read the routes (``finops-guard teams
add|list|remove`` writes them) and post a team's cards to the URL the team webhooks secret
``finops-guard/<stage>/team-webhooks`` holds for it (one JSON map for every team, created here holding
``{}``; ``teams add`` fills it): the only team secret these functions may read.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from finops_guard.costs.teams import team_webhooks_secret_name

from infra.config import FinOpsGuardConfig
from infra.core.layers import Layers
from infra.core.monitored_function import MonitoredFunction, MonitoredFunctionProps, function_code
from infra.core.paging import Paging
from infra.core.schedules import FunctionSchedule, add_function_schedule
from infra.core.secrets import WebhookSecrets, placeholder_secret
from infra.core.storage import access_log_bucket, report_bucket, state_table, use_outbox_statement
from infra.costs.cost_reports import allow_cost_and_usage_reads
from infra.costs.payer_reads import assume_payer_role, reads_payer_costs

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
    """Exposes ``team_routes_table``, ``team_webhooks`` (the team webhooks secret, None with team routing
    off) and its ``team_webhooks_secret_name``, ``access_log_bucket``, ``chargeback_bucket``,
    ``chargeback`` (a monitored function, and its ``function``) and ``schedule``.

    ``allow_team_routing(fn)`` lets a posting function attribute spend and reach each team's channel;
    ``allow_team_assignment(fn)`` only lets a function tell which team owns what (no team secret).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        webhook_secrets: WebhookSecrets,
        outbox_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.webhook_secrets = webhook_secrets
        self.outbox_table = outbox_table
        self.team_webhooks_secret_name = team_webhooks_secret_name(config.stage)
        # Kept even with team routing off: `finops-guard teams add` can prepare routes before it is on.
        self.team_routes_table = self._add_team_routes_table()
        # $0.40 a month whatever the number of teams: only when routing can use it.
        self.team_webhooks = self._add_team_webhooks() if self.routing_enabled else None
        self.access_log_bucket = access_log_bucket(
            self, "ChargebackAccessLogs", expire_after=Duration.days(ACCESS_LOG_DAYS)
        )
        self.chargeback_bucket = self._add_chargeback_bucket()
        self.chargeback = self._add_chargeback(layers, paging)
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
        team routes and post to each team's own channel (GetSecretValue on the team webhooks secret only).

        The dimensions are set even with routing off: the weekly card's attribution KPIs use them.
        """
        self.allow_team_assignment(poster)
        if self.team_webhooks is None:
            return
        poster.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTeamWebhookSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.team_webhooks.secret_arn],
            )
        )

    def _add_team_webhooks(self) -> secretsmanager.Secret:
        name = self.team_webhooks_secret_name
        return placeholder_secret(
            self,
            "TeamWebhooksSecret",
            name=name,
            description=(
                'Every routed team\'s chat webhook URLs, a JSON map {"<team>": {"teams": "https://...", '
                '"slack": "https://..."}}. Created holding {}; fill it with: finops-guard teams add <team> '
                f"--stage {self.config.stage} --teams-url 'https://...' [--slack-url 'https://...']"
            ),
            no_rotation_reason=(
                "The secret holds Microsoft Teams and Slack incoming webhook URLs issued by those services; "
                "there is no API to mint new ones, so a rotation Lambda cannot exist. Operators replace a "
                "team's URL by hand (a new webhook in the channel, then finops-guard teams add) when it leaks "
                "or is revoked."
            ),
            empty_json_object=True,
        )

    def _routing_environment(self) -> dict[str, str]:
        assert self.config.team_dimension is not None
        return {
            "FINOPSGUARD_TEAM_DIMENSION": self.config.team_dimension,
            "FINOPSGUARD_TEAM_ROUTES_TABLE": self.team_routes_table.table_name,
            "FINOPSGUARD_TEAM_WEBHOOKS_SECRET_NAME": self.team_webhooks_secret_name,
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
            **config.cost_metric_environment(),
        }
        if config.team_dimension is not None:
            environment["FINOPSGUARD_TEAM_DIMENSION"] = config.team_dimension
        return environment

    def _add_chargeback(self, layers: Layers, paging: Paging) -> MonitoredFunction:
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
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _grant_chargeback(self) -> None:
        chargeback, bucket = self.chargeback, self.chargeback_bucket
        if reads_payer_costs(self.config):
            assume_payer_role(chargeback, self.config)
        else:
            allow_cost_and_usage_reads(
                chargeback,
                scoped_to="log group, failure queue, webhook secrets, outbox table and the chargeback objects",
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
