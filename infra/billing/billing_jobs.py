"""Billing operations on top of the Stripe ledger: the Stripe API key, the ledger export bucket, three
functions that call Stripe, their schedules, the finance admin routes and two alarms.

EventBridge Scheduler -> dunning-sender (hourly: due dunning steps -> SES e-mail / SNS SMS)
                      -> reconciliation (daily: Stripe invoices vs ledger -> ledger_mismatch alerts)
                      -> billing-admin {"action": "weekly_export"} (ledger CSV -> export bucket)
SigV4-signed caller -> API Gateway /invoices, /billing/... -> billing-admin (invoice bot, summary,
                       alert retry/resend, portal sessions, CSV export) -> finance chat via the outbox
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, ArnFormat, Aws, Duration, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.billing.billing_api import BillingApi
from infra.config import FinOpsGuardConfig
from infra.core.layers import Layers
from infra.core.monitored_function import (
    METRICS_NAMESPACE,
    MonitoredFunction,
    MonitoredFunctionProps,
    function_code,
)
from infra.core.paging import Paging
from infra.core.schedules import FunctionSchedule, add_function_schedule
from infra.core.secrets import placeholder_secret
from infra.core.storage import access_log_bucket, report_bucket, use_outbox_statement

DUNNING_TIMEOUT = Duration.seconds(120)
DUNNING_MEMORY_MB = 256
RECONCILIATION_TIMEOUT = Duration.seconds(300)
RECONCILIATION_MEMORY_MB = 512
# API Gateway ends a REST integration after 29 s: billing-admin must answer within it.
ADMIN_TIMEOUT = Duration.seconds(29)
ADMIN_MEMORY_MB = 512
# Reconciliation compares the last 30 days (the settings cap it at 30: Stripe list pages stay few).
RECONCILIATION_DAYS = 30
# Ledger exports are kept 13 months after being overwritten, long enough for a yearly audit.
EXPORT_NONCURRENT_DAYS = 400
ACCESS_LOG_DAYS = 400
EXPORT_PREFIX = "ledger/"
# The invoice-bot SLO: 99 % of bot invoices are confirmed by Stripe within 5 minutes, per hour.
INVOICE_SLO_PERIOD = Duration.hours(1)
INVOICE_SLO_PERCENT = 99
DUNNING_ALARM_PERIOD = Duration.hours(1)
# Dunning and reconciliation work on UTC times (due_at, ledger months), whatever the report time zone.
UTC = "UTC"
# The finance admin routes: (path, HTTP method). Every one is SigV4 (IAM) and proxies to billing-admin.
ADMIN_ROUTES = (
    ("/invoices", "POST"),
    ("/billing/summary", "GET"),
    ("/billing/alerts/{id}/retry", "POST"),
    ("/billing/alerts/{id}/resend", "POST"),
    ("/billing/portal-session", "POST"),
    ("/billing/export.csv", "GET"),
)


class BillingJobs(Construct):
    """Exposes ``stripe_api_key_secret`` (and its ``stripe_api_key_secret_name``), ``export_bucket``,
    ``access_log_bucket``, ``dunning_sender``, ``reconciliation`` and ``billing_admin`` (monitored
    functions), ``schedules``, ``admin_methods``, ``admin_api_url`` and ``alarms``.

    Uses the billing state of ``billing`` (its tables, finance secrets, outbox and REST API).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        billing: BillingApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.billing = billing
        self.paging = paging
        self.stripe_api_key_secret_name = f"finops-guard/{config.stage}/stripe-api-key"
        self.stripe_api_key_secret = self._add_stripe_api_key_secret()
        self.access_log_bucket = self._add_access_log_bucket()
        self.export_bucket = self._add_export_bucket()
        self.dunning_sender = self._add_dunning_sender(layers, paging)
        self.reconciliation = self._add_reconciliation(layers, paging)
        self.billing_admin = self._add_billing_admin(layers, paging)
        self._grant_dunning_sender()
        self._grant_reconciliation()
        self._grant_billing_admin()
        self.schedules = self._add_schedules()
        self.admin_methods = self._add_admin_routes()
        self.admin_api_url = billing.api.url
        self.alarms = self._add_alarms()

    # --- secret and buckets ---------------------------------------------------------------------

    def _add_stripe_api_key_secret(self) -> secretsmanager.Secret:
        name = self.stripe_api_key_secret_name
        return placeholder_secret(
            self,
            "StripeApiKeySecret",
            name=name,
            description=(
                "Stripe restricted API key (rk_...) of FinOps Guard billing operations, plain string. Create it "
                "in the Stripe Dashboard with write access to Invoices, Invoice Items and Customer portal and "
                "read access to Customers, nothing else. After the first deploy run: aws secretsmanager "
                f"put-secret-value --secret-id {name} --secret-string 'rk_...'"
            ),
            no_rotation_reason=(
                "Stripe issues API keys itself and offers no API to create or roll a restricted key, so a "
                "rotation Lambda cannot exist. Operators rotate by rolling the key in the Stripe Dashboard "
                "(Developers > API keys > Roll key, optionally keeping the old one valid for a while) and "
                "putting the new value here with put-secret-value; warm functions read it again within 5 minutes."
            ),
        )

    def _add_access_log_bucket(self) -> s3.Bucket:
        return access_log_bucket(self, "ExportAccessLogs", expire_after=Duration.days(ACCESS_LOG_DAYS))

    def _add_export_bucket(self) -> s3.Bucket:
        return report_bucket(
            self,
            "ExportBucket",
            access_logs=self.access_log_bucket,
            access_logs_prefix="export-bucket/",
            noncurrent_rule_id="expire-overwritten-exports",
            keep_noncurrent=Duration.days(EXPORT_NONCURRENT_DAYS),
        )

    # --- functions ------------------------------------------------------------------------------

    def _stripe_environment(self) -> dict[str, str]:
        """What every billing operations function reads (finops_guard.billing.settings.BillingOpsSettings)."""
        config, billing = self.config, self.billing
        environment = {
            "FINOPSGUARD_STAGE": config.stage,
            "FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME": self.stripe_api_key_secret_name,
        }
        if config.stripe_api_base is not None:
            environment["FINOPSGUARD_STRIPE_API_BASE"] = config.stripe_api_base
        return {
            **environment,
            "FINOPSGUARD_LEDGER_TABLE": billing.ledger_table.table_name,
            "FINOPSGUARD_BILLING_OBJECTS_TABLE": billing.billing_objects_table.table_name,
            "FINOPSGUARD_BILLING_ALERTS_TABLE": billing.billing_alerts_table.table_name,
            "FINOPSGUARD_DUNNING_TABLE": billing.dunning_table.table_name,
        }

    def _dunning_environment(self) -> dict[str, str]:
        config = self.config
        environment = self._stripe_environment()
        if config.dunning_sender_email is not None:
            environment["FINOPSGUARD_DUNNING_SENDER_EMAIL"] = config.dunning_sender_email
        if config.dunning_templates_json is not None:
            environment["FINOPSGUARD_DUNNING_TEMPLATES"] = config.dunning_templates_json
        return environment

    def _reconciliation_environment(self) -> dict[str, str]:
        return {
            **self._stripe_environment(),
            "FINOPSGUARD_VARIANCE_PERCENT": self.config.reconciliation_variance_percent,
            "FINOPSGUARD_RECONCILIATION_DAYS": str(RECONCILIATION_DAYS),
        }

    def _admin_environment(self) -> dict[str, str]:
        config, billing = self.config, self.billing
        environment = {
            **self._stripe_environment(),
            "FINOPSGUARD_INVOICE_REQUESTS_TABLE": billing.invoice_requests_table.table_name,
            "FINOPSGUARD_EXPORT_BUCKET": self.export_bucket.bucket_name,
            "FINOPSGUARD_INVOICE_DAYS_UNTIL_DUE": str(config.invoice_days_until_due),
            # The finance chat, exactly as billing-notifier posts to it.
            **config.report_environment(),
            **billing.finance_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": billing.outbox_table.table_name,
        }
        if config.billing_portal_return_url is not None:
            environment["FINOPSGUARD_PORTAL_RETURN_URL"] = config.billing_portal_return_url
        return environment

    def _function(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        folder: str,
        timeout: Duration,
        memory_size: int,
        environment: Mapping[str, str],
        layers: Layers,
        paging: Paging,
    ) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            construct_id,
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name=name,
                description=description,
                code=function_code(folder),
                timeout=timeout,
                memory_size=memory_size,
                environment=environment,
                layers=[layers.common, layers.report_deps, layers.stripe()],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _add_dunning_sender(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return self._function(
            "DunningSender",
            name="dunning-sender",
            description="Sends the due dunning reminders of unpaid invoices by e-mail (SES) and SMS (SNS)",
            folder="dunning_sender",
            timeout=DUNNING_TIMEOUT,
            memory_size=DUNNING_MEMORY_MB,
            environment=self._dunning_environment(),
            layers=layers,
            paging=paging,
        )

    def _add_reconciliation(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return self._function(
            "Reconciliation",
            name="reconciliation",
            description="Compares Stripe invoices of the last 30 days with the billing ledger and raises mismatches",
            folder="reconciliation",
            timeout=RECONCILIATION_TIMEOUT,
            memory_size=RECONCILIATION_MEMORY_MB,
            environment=self._reconciliation_environment(),
            layers=layers,
            paging=paging,
        )

    def _add_billing_admin(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return self._function(
            "BillingAdmin",
            name="billing-admin",
            description="Finance admin API (invoice bot, summary, alert retry and resend, portal) and ledger export",
            folder="billing_admin",
            timeout=ADMIN_TIMEOUT,
            memory_size=ADMIN_MEMORY_MB,
            environment=self._admin_environment(),
            layers=layers,
            paging=paging,
        )

    # --- permissions ----------------------------------------------------------------------------

    def _read_stripe_api_key(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="ReadStripeApiKey",
            actions=["secretsmanager:GetSecretValue"],
            resources=[self.stripe_api_key_secret.secret_arn],
        )

    @staticmethod
    def _index_arn(table_arn: str, index: str) -> str:
        return f"{table_arn}/index/{index}"

    def _ses_identity_arn(self, identity: str) -> str:
        return Stack.of(self).format_arn(
            service="ses", resource="identity", resource_name=identity, arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )

    def _grant_dunning_sender(self) -> None:
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        dunning = self.billing.dunning_table
        statements = [
            self._read_stripe_api_key(),
            iam.PolicyStatement(
                sid="FindDueSteps",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(dunning.table_arn, "by-due")],
            ),
            # Claiming a step (pending -> sending) and recording its outcome are conditional updates.
            iam.PolicyStatement(
                sid="UpdateDunningSteps",
                actions=["dynamodb:UpdateItem"],
                resources=[dunning.table_arn],
            ),
        ]
        sender = self.config.dunning_sender_email
        if sender is not None:
            # SES authorises a send against the address identity or its domain identity, whichever is verified.
            domain = sender.rsplit("@", 1)[1]
            statements.append(
                iam.PolicyStatement(
                    sid="SendDunningEmails",
                    actions=["ses:SendEmail"],
                    resources=[self._ses_identity_arn(sender), self._ses_identity_arn(domain)],
                )
            )
        # IAM authorises a publish to a phone number against the number itself ("+15555550100"), which
        # no ARN pattern matches: only "*" allows it. The Deny takes every topic and platform endpoint
        # (they all have sns ARNs) back out of that "*", so SMS is all that remains.
        statements += [
            iam.PolicyStatement(sid="SendDunningSms", actions=["sns:Publish"], resources=["*"]),
            iam.PolicyStatement(
                sid="PublishNowhereButPhoneNumbers",
                effect=iam.Effect.DENY,
                actions=["sns:Publish"],
                resources=[f"arn:{Aws.PARTITION}:sns:*:*:*"],
            ),
        ]
        for statement in statements:
            self.dunning_sender.add_to_role_policy(statement)
        Validations.of(self.dunning_sender.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Only sns:Publish uses Resource '*': an SMS published straight to a phone number has no "
                    "SNS resource ARN, and SNS offers no condition key on the phone number, so IAM cannot "
                    "narrow it. An explicit Deny of sns:Publish on every SNS ARN (topics, platform endpoints, "
                    "in any account) leaves only phone numbers; every other statement is scoped to this "
                    "stack's secret, dunning table and SES identities."
                ),
            )
        )

    def _grant_reconciliation(self) -> None:
        billing = self.billing
        for statement in (
            self._read_stripe_api_key(),
            iam.PolicyStatement(
                sid="ReadLedgerMonths",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.ledger_table.table_arn, "by-month")],
            ),
            # The run's summary (last reconciled window and counts) is kept as a billing object.
            iam.PolicyStatement(
                sid="RecordReconciliationRuns",
                actions=["dynamodb:PutItem"],
                resources=[billing.billing_objects_table.table_arn],
            ),
            # Mismatches open (or resolve) ledger_mismatch alerts; the notifier posts them from the stream.
            iam.PolicyStatement(
                sid="RaiseLedgerMismatches",
                actions=["dynamodb:UpdateItem"],
                resources=[billing.billing_alerts_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="ListOpenAlerts",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.billing_alerts_table.table_arn, "by-status")],
            ),
            # The daily billing KPIs: monthly recurring revenue from the subscriptions it lists by type.
            iam.PolicyStatement(
                sid="ListSubscriptions",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.billing_objects_table.table_arn, "by-type")],
            ),
        ):
            self.reconciliation.add_to_role_policy(statement)

    def _grant_billing_admin(self) -> None:
        billing = self.billing
        for statement in (
            self._read_stripe_api_key(),
            billing.finance_secrets.read_statement("ReadFinanceWebhookSecrets"),
            use_outbox_statement(billing.outbox_table),
            iam.PolicyStatement(
                sid="ReadLedgerMonths",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.ledger_table.table_arn, "by-month")],
            ),
            iam.PolicyStatement(
                sid="ReadBillingObjects",
                actions=["dynamodb:GetItem"],
                resources=[billing.billing_objects_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="ListBillingObjectsByType",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.billing_objects_table.table_arn, "by-type")],
            ),
            iam.PolicyStatement(
                sid="RetryAndResendAlerts",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[billing.billing_alerts_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="ListOpenAlerts",
                actions=["dynamodb:Query"],
                resources=[self._index_arn(billing.billing_alerts_table.table_arn, "by-status")],
            ),
            # DeleteItem: a request whose Stripe invoice create failed is dropped (conditional delete),
            # so a retry with the same Idempotency-Key starts over.
            iam.PolicyStatement(
                sid="TrackInvoiceRequests",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[billing.invoice_requests_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="WriteLedgerExports",
                actions=["s3:PutObject"],
                resources=[self.export_bucket.arn_for_objects(f"{EXPORT_PREFIX}*")],
            ),
        ):
            self.billing_admin.add_to_role_policy(statement)
        cfn_bucket = self.export_bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        bucket_id = Stack.of(self).get_logical_id(cfn_bucket)
        Validations.of(self.billing_admin.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{EXPORT_PREFIX}*]",
                reason=(
                    f"The weekly ledger export writes one new object per run under {EXPORT_PREFIX}, named at run "
                    "time, so the key cannot be named in advance. The prefix wildcard "
                    "allows s3:PutObject only, in this stack's export bucket only; the function cannot read, "
                    "list or delete exports."
                ),
            )
        )

    # --- schedules ------------------------------------------------------------------------------

    def _add_schedules(self) -> list[scheduler.Schedule]:
        config, prefix = self.config, f"finops-guard-{self.config.stage}"
        specs = (
            (
                self.dunning_sender,
                FunctionSchedule(
                    construct_prefix="DunningSender",
                    schedule_name=f"{prefix}-dunning-sender",
                    purpose="the dunning sender",
                    expression=config.dunning_schedule,
                    timezone=UTC,
                    payload={"action": "send_due_steps"},
                ),
            ),
            (
                self.reconciliation,
                FunctionSchedule(
                    construct_prefix="Reconciliation",
                    schedule_name=f"{prefix}-reconciliation",
                    purpose="the daily Stripe ledger reconciliation",
                    expression=config.reconciliation_schedule,
                    timezone=UTC,
                    payload={"action": "reconcile"},
                ),
            ),
            (
                self.billing_admin,
                FunctionSchedule(
                    construct_prefix="BillingExport",
                    schedule_name=f"{prefix}-billing-export",
                    purpose="the weekly ledger export",
                    expression=config.billing_export_schedule,
                    timezone=config.timezone,
                    payload={"action": "weekly_export"},
                ),
            ),
        )
        return [add_function_schedule(self, target, spec) for target, spec in specs]

    # --- finance admin routes -------------------------------------------------------------------

    def _add_admin_routes(self) -> list[apigateway.Method]:
        api = self.billing.api
        integration = apigateway.LambdaIntegration(self.billing_admin.function, proxy=True, allow_test_invoke=False)
        methods = []
        for path, http_method in ADMIN_ROUTES:
            resource = api.root.resource_for_path(path)
            methods.append(
                resource.add_method(http_method, integration, authorization_type=apigateway.AuthorizationType.IAM)
            )
        reason = (
            "The finance admin routes are called by finance tools and operators with AWS credentials: every "
            "request is SigV4-signed and API Gateway checks execute-api:Invoke against the caller's IAM "
            "policies before billing-admin runs. The stack has no end-user sign-in, so a Cognito user pool "
            "would add a second identity store for the same few internal callers."
        )
        for method in methods:
            Validations.of(method).acknowledge(Acknowledgment(id="AwsSolutions-COG4", reason=reason))
        return methods

    # --- alarms ---------------------------------------------------------------------------------

    def _custom_metric(self, metric_name: str, service: str, period: Duration) -> cloudwatch.Metric:
        # Powertools Metrics adds the service name as the "service" dimension to every metric.
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": service},
            statistic="Sum",
            period=period,
        )

    def invoice_slo_ratio(self) -> cloudwatch.MathExpression:
        """The invoice-bot SLI: percent of the bot invoices Stripe confirmed in an hour that were
        confirmed within 5 minutes of the request (the alarm's metric, and a dashboard line)."""
        # FILL: an hour in which invoices were confirmed but none within 5 minutes has no
        # InvoicesConfirmedWithin5Min data point; it counts as 0 %, not as missing.
        return cloudwatch.MathExpression(
            expression="100 * FILL(within, 0) / confirmed",
            using_metrics={
                "confirmed": self._custom_metric("InvoicesConfirmed", "stripe-webhook", INVOICE_SLO_PERIOD),
                "within": self._custom_metric("InvoicesConfirmedWithin5Min", "stripe-webhook", INVOICE_SLO_PERIOD),
            },
            period=INVOICE_SLO_PERIOD,
            label="Bot invoices confirmed within 5 minutes (%)",
        )

    def _add_alarms(self) -> list[cloudwatch.Alarm]:
        stage = self.config.stage
        webhook, admin = self.billing.stripe_webhook, self.billing_admin
        latency = self.invoice_slo_ratio()
        latency_alarm = cloudwatch.Alarm(
            self,
            "InvoiceLatencySloAlarm",
            alarm_name=f"FinOpsGuard-{stage}-invoice-latency-slo",
            alarm_description=(
                f"Fewer than {INVOICE_SLO_PERCENT} % of the bot invoices Stripe confirmed in the last hour were "
                "confirmed within 5 minutes of the request (SLO). First: check the FinOpsGuard-"
                f"{stage}-billing-api-5xx alarm and the Stripe status page, then open "
                f"the log groups of {admin.function_name} and {webhook.function_name} in CloudWatch Logs "
                "Insights and find the slow or retried invoice requests."
            ),
            metric=latency,
            threshold=INVOICE_SLO_PERCENT,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            # No confirmed invoice in an hour makes the ratio missing: nothing was measured, nothing
            # breached. A failing bot shows up in the billing API's 5xx alarm instead.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.paging.page(latency_alarm)
        sender = self.dunning_sender
        dunning_alarm = sender.add_alarm(
            "StepsFailed",
            self._custom_metric("DunningStepsFailed", "dunning-sender", DUNNING_ALARM_PERIOD),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=(
                f"{sender.function_name} could not send at least one dunning reminder in the last hour (the "
                f"step is marked failed in {self.billing.dunning_table.table_name}). First: "
                f"open the log group {sender.log_group.log_group_name} in CloudWatch Logs Insights and read the "
                "ERROR lines (SES identity not verified or in the sandbox, SMS spend limit, invalid address or "
                "phone number), then contact the customer of each failed invoice by hand."
            ),
        )
        stuck_alarm = sender.add_alarm(
            "StepsStuck",
            self._custom_metric("DunningStepsStuck", "dunning-sender", DUNNING_ALARM_PERIOD),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=(
                f"A dunning step in {self.billing.dunning_table.table_name} was claimed more than 15 minutes ago "
                "and never marked sent or failed: the run that claimed it died between claim and send, so the "
                "customer may or may not have the reminder (steps are sent at most once, never retried). First: "
                f"find the step in the ERROR line of {sender.log_group.log_group_name} ('claimed but never "
                "confirmed sent'), check SES/SNS delivery for it, then set its status to sent or failed by hand."
            ),
        )
        return [latency_alarm, dunning_alarm, stuck_alarm]
