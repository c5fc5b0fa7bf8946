"""Stripe webhooks into a billing ledger: the signing secret, six billing tables, the REST API Stripe
posts to, the webhook function behind it, and the notifier that tells finance about billing alerts.

Stripe -> API Gateway POST /stripe/webhook -> stripe-webhook (verifies Stripe-Signature, records the
event once, updates ledger, objects, alerts and dunning, confirms bot invoices) -> billing-alerts stream
-> billing-notifier -> finance chat through the shared outbox.

The same REST API also carries the IAM-authorised finance admin routes; infra/billing_jobs.py
adds them with the function behind them.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Acknowledgment, ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import FinOpsGuardConfig
from infra.core.deploy_setup import DeploySetup
from infra.core.layers import Layers
from infra.core.monitored_function import (
    ALARM_PERIOD,
    METRICS_NAMESPACE,
    MonitoredFunction,
    MonitoredFunctionProps,
    function_code,
)
from infra.core.paging import Paging
from infra.core.secrets import WebhookSecrets, add_webhook_secrets, placeholder_secret
from infra.core.storage import GlobalIndex, state_table, use_outbox_statement

WEBHOOK_TIMEOUT = Duration.seconds(15)
WEBHOOK_MEMORY_MB = 512
NOTIFIER_TIMEOUT = Duration.seconds(60)
NOTIFIER_MEMORY_MB = 256
API_STAGE = "v1"
WEBHOOK_PATH = "/stripe/webhook"
SIGNATURE_HEADER = "method.request.header.Stripe-Signature"
# The notifier's stream trigger: small batches, a bad record is isolated by bisection and retried.
STREAM_BATCH_SIZE = 10
STREAM_RETRY_ATTEMPTS = 3
# 4xx above this in 5 minutes is more than a mis-rolled secret: someone is probing the endpoint.
# 10 forged or stale signatures in 5 minutes are no clock skew or stray replay: someone is probing the
# webhook, or Stripe's own deliveries are refused because the signing secret was rolled but not put.
SIGNATURE_FAILURE_SPIKE = 10
# Every access log line is one JSON object; all values quoted, so "-" (no value) stays valid JSON.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "requestTime": "$context.requestTime",
    "integrationLatency": "$context.integrationLatency",
}


@jsii.implements(lambda_.IEventSourceDlq)
class _FailureQueueDestination:
    """The failure queue as a stream mapping's on-failure destination. Not SqsDlq, whose grant adds two
    queue reads Lambda never makes: the role's ReportFailedEvents statement (sqs:SendMessage) is all it needs."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


class BillingApi(Construct):
    """Exposes ``stripe_secret`` (and its ``stripe_secret_name``, ``stripe_previous_secret_name``),
    ``finance_secrets``, ``outbox_table``, the tables (``stripe_events_table``, ``ledger_table``,
    ``billing_objects_table``, ``billing_alerts_table``, ``dunning_table``, ``invoice_requests_table``),
    ``stripe_webhook`` and ``billing_notifier`` (monitored functions), ``api``, ``access_logs``,
    ``webhook_url`` and ``api_alarms``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FinOpsGuardConfig,
        layers: Layers,
        paging: Paging,
        outbox_table: dynamodb.ITable,
        setup: DeploySetup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.outbox_table = outbox_table
        self.paging = paging
        self.stripe_secret_name = f"finops-guard/{config.stage}/stripe-webhook-secret"
        # Created by operators while rolling the signing secret, never by the stack: see _add_stripe_secret.
        self.stripe_previous_secret_name = f"{self.stripe_secret_name}-previous"
        self.stripe_secret = self._add_stripe_secret()
        self.finance_secrets = self._add_finance_secrets()
        self._add_tables()
        self.stripe_webhook = self._add_stripe_webhook(layers, paging)
        self._grant_stripe_webhook()
        self.access_logs = self._add_access_logs()
        self.api = self._add_api()
        self.logs_role_setting = self._add_logs_role_setting(setup)
        self.webhook_url = self.api.url_for_path(WEBHOOK_PATH)
        self.api_alarms = self._add_api_alarms()
        self.billing_notifier = self._add_billing_notifier(layers, paging)
        self._add_alert_stream_trigger()
        self._grant_billing_notifier()

    # --- secrets and tables ---------------------------------------------------------------------

    def _add_stripe_secret(self) -> secretsmanager.Secret:
        name, previous = self.stripe_secret_name, self.stripe_previous_secret_name
        return placeholder_secret(
            self,
            "StripeWebhookSecret",
            name=name,
            description=(
                "Stripe webhook signing secret (whsec_...) of the FinOps Guard billing endpoint. After the first "
                f"deploy run: aws secretsmanager put-secret-value --secret-id {name} --secret-string 'whsec_...'. "
                f"While rolling it in Stripe, keep the old value in {previous} until Stripe stops using it."
            ),
            no_rotation_reason=(
                "Stripe issues webhook signing secrets (whsec_) itself: the Dashboard rolls an endpoint's "
                "secret, and through the API a new one only comes with a recreated endpoint, which needs a "
                "Stripe API key with webhook write access that FinOps Guard deliberately never holds. Operators "
                f"rotate by rolling the secret in Stripe, copying the old value to {previous} and putting the new "
                "value here with put-secret-value."
            ),
        )

    def _add_finance_secrets(self) -> WebhookSecrets:
        return add_webhook_secrets(
            self,
            stage=self.config.stage,
            slack_enabled=self.config.slack_enabled,
            purpose="FinOps Guard billing alerts to finance",
            name_prefix="finance-",
            id_prefix="Finance",
        )

    def _table_name(self, name: str) -> str:
        return f"finops-guard-{self.config.stage}-{name}"

    def _add_tables(self) -> None:
        # Every billing table is protected from deletion: money (ledger, invoices, subscriptions) and the
        # records that keep things at most once (Stripe events booked, dunning steps sent, bot invoices
        # created), none of which Stripe can give back after its 30 days of events.
        # No TTL: the processed-event record is what makes a redelivered Stripe event a no-op, forever.
        self.stripe_events_table = state_table(
            self,
            "StripeEventsTable",
            table_name=self._table_name("stripe-events"),
            partition_key="event_id",
            deletion_protection=True,
        )
        self.ledger_table = state_table(
            self,
            "LedgerTable",
            table_name=self._table_name("billing-ledger"),
            partition_key="customer_id",
            sort_key="entry_key",
            global_indexes=[GlobalIndex("by-month", partition_key="month", sort_key="entry_key")],
            deletion_protection=True,
        )
        # by-type: reconciliation and the finance summary list invoices and subscriptions without a scan.
        self.billing_objects_table = state_table(
            self,
            "BillingObjectsTable",
            table_name=self._table_name("billing-objects"),
            partition_key="object_id",
            global_indexes=[GlobalIndex("by-type", partition_key="object_type", sort_key="object_id")],
            deletion_protection=True,
        )
        self.billing_alerts_table = state_table(
            self,
            "BillingAlertsTable",
            table_name=self._table_name("billing-alerts"),
            partition_key="alert_id",
            global_indexes=[GlobalIndex("by-status", partition_key="status", sort_key="opened_at")],
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            deletion_protection=True,
        )
        self.dunning_table = state_table(
            self,
            "DunningTable",
            table_name=self._table_name("dunning"),
            partition_key="invoice_id",
            sort_key="step",
            global_indexes=[GlobalIndex("by-due", partition_key="status", sort_key="due_at")],
            deletion_protection=True,
        )
        # The invoice bot's records: billing-admin writes them, the webhook confirms them when Stripe
        # reports the invoice sent or finalized.
        self.invoice_requests_table = state_table(
            self,
            "InvoiceRequestsTable",
            table_name=self._table_name("invoice-requests"),
            partition_key="request_id",
            deletion_protection=True,
        )

    # --- Stripe webhook function ----------------------------------------------------------------

    def _webhook_environment(self) -> dict[str, str]:
        config = self.config
        return {
            "FINOPSGUARD_STAGE": config.stage,
            "FINOPSGUARD_STRIPE_SECRET_NAME": self.stripe_secret_name,
            "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": self.stripe_previous_secret_name,
            "FINOPSGUARD_STRIPE_EVENTS_TABLE": self.stripe_events_table.table_name,
            "FINOPSGUARD_LEDGER_TABLE": self.ledger_table.table_name,
            "FINOPSGUARD_BILLING_OBJECTS_TABLE": self.billing_objects_table.table_name,
            "FINOPSGUARD_BILLING_ALERTS_TABLE": self.billing_alerts_table.table_name,
            "FINOPSGUARD_DUNNING_TABLE": self.dunning_table.table_name,
            "FINOPSGUARD_INVOICE_REQUESTS_TABLE": self.invoice_requests_table.table_name,
            "FINOPSGUARD_BILLING_THRESHOLDS": config.billing_thresholds_json,
            "FINOPSGUARD_DUNNING_STEPS": config.dunning_steps_text,
            "FINOPSGUARD_MAX_BODY_BYTES": str(config.webhook_max_body_bytes),
        }

    def _add_stripe_webhook(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        stage = self.config.stage
        # API Gateway invokes it synchronously: an error is a 5xx (the API's alarm pages), Lambda never
        # retries, and Stripe itself redelivers the event until it gets a 2xx.
        return MonitoredFunction(
            self,
            "StripeWebhook",
            props=MonitoredFunctionProps(
                stage=stage,
                name="stripe-webhook",
                description="Verifies Stripe webhook events and records them in the billing ledger",
                code=function_code("stripe_webhook"),
                timeout=WEBHOOK_TIMEOUT,
                memory_size=WEBHOOK_MEMORY_MB,
                environment=self._webhook_environment(),
                layers=[layers.common, layers.report_deps, layers.stripe()],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _previous_secret_arn(self) -> str:
        # Secrets Manager appends "-" and six random characters to every secret's ARN.
        return Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{self.stripe_previous_secret_name}-??????",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _grant_stripe_webhook(self) -> None:
        # Explicit statements rather than grant_* helpers, which add actions this function never uses.
        # A TransactWriteItems call is authorised by the Put/Update action of each item in it.
        for statement in (
            iam.PolicyStatement(
                sid="ReadStripeSigningSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.stripe_secret.secret_arn, self._previous_secret_arn()],
            ),
            # A conditional put records each Stripe event id exactly once.
            iam.PolicyStatement(
                sid="RecordStripeEvents",
                actions=["dynamodb:PutItem"],
                resources=[self.stripe_events_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="WriteLedger",
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"],
                resources=[self.ledger_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="TrackBillingObjects",
                actions=["dynamodb:UpdateItem", "dynamodb:GetItem"],
                resources=[self.billing_objects_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="RaiseBillingAlerts",
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.billing_alerts_table.table_arn],
            ),
            # Query: settling a paid invoice finds its pending steps to cancel them.
            iam.PolicyStatement(
                sid="ScheduleDunning",
                actions=["dynamodb:Query", "dynamodb:UpdateItem"],
                resources=[self.dunning_table.table_arn],
            ),
            # invoice.sent / invoice.finalized of a bot invoice marks its request confirmed (conditional update).
            iam.PolicyStatement(
                sid="ConfirmBotInvoices",
                actions=["dynamodb:UpdateItem"],
                resources=[self.invoice_requests_table.table_arn],
            ),
        ):
            self.stripe_webhook.add_to_role_policy(statement)

    # --- REST API -------------------------------------------------------------------------------

    def _add_access_logs(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    def _add_api(self) -> apigateway.RestApi:
        config = self.config
        api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=f"finops-guard-{config.stage}-billing",
            description=(
                "FinOps Guard billing: receives Stripe webhook events for the billing ledger and serves the "
                "IAM-authorised finance admin API (invoices, summary, alerts, portal sessions, ledger export)"
            ),
            endpoint_configuration=apigateway.EndpointConfiguration(types=[apigateway.EndpointType.REGIONAL]),
            # Execution and access logging need the account's API Gateway CloudWatch role, one setting per
            # account and region that other APIs may rely on: _add_logs_role_setting adopts it when set.
            cloud_watch_role=False,
            # API Gateway applies a stage's limits to each method on its own, and every API of the account
            # in the region shares one account-level quota (10,000 requests/s, burst 5,000 by default). The
            # public webhook gets its own limit, sized for Stripe's deliveries; every other method (the
            # SigV4 finance admin routes, the webhook's 405 answer) the stage default.
            deploy_options=apigateway.StageOptions(
                stage_name=API_STAGE,
                throttling_rate_limit=config.billing_admin_rate_limit,
                throttling_burst_limit=config.billing_admin_burst_limit,
                method_options={
                    # A method's override replaces the stage's settings for it: logging and metrics repeated.
                    f"{WEBHOOK_PATH}/POST": apigateway.MethodDeploymentOptions(
                        throttling_rate_limit=config.billing_api_rate_limit,
                        throttling_burst_limit=config.billing_api_burst_limit,
                        logging_level=apigateway.MethodLoggingLevel.ERROR,
                        data_trace_enabled=False,
                        metrics_enabled=True,
                    )
                },
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(
                    json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))
                ),
            ),
        )
        # StripeWebhookUrl (the full URL) replaces the base-URL output RestApi adds by itself.
        api.node.try_remove_child("Endpoint")
        webhook = api.root.add_resource("stripe").add_resource("webhook")
        self._add_webhook_post(api, webhook)
        self._add_method_not_allowed(webhook)
        self._acknowledge_api_findings(api)
        return api

    def _add_webhook_post(self, api: apigateway.RestApi, webhook: apigateway.Resource) -> None:
        # A delivery without the signature header gets 400 from API Gateway and never reaches Lambda.
        validator = api.add_request_validator(
            "SignatureHeaderValidator",
            request_validator_name="stripe-signature-header",
            validate_request_parameters=True,
            validate_request_body=False,
        )
        webhook.add_method(
            "POST",
            apigateway.LambdaIntegration(self.stripe_webhook.function, proxy=True, allow_test_invoke=False),
            request_parameters={SIGNATURE_HEADER: True},
            request_validator=validator,
        )

    def _add_method_not_allowed(self, webhook: apigateway.Resource) -> None:
        # ANY matches every method POST (the more specific method) does not: answer 405 without Lambda.
        webhook.add_method(
            "ANY",
            apigateway.MockIntegration(
                request_templates={"application/json": '{"statusCode": 405}'},
                integration_responses=[
                    apigateway.IntegrationResponse(
                        status_code="405",
                        response_parameters={"method.response.header.Allow": "'POST'"},
                        response_templates={"application/json": '{"message": "method not allowed"}'},
                    )
                ],
            ),
            method_responses=[
                apigateway.MethodResponse(status_code="405", response_parameters={"method.response.header.Allow": True})
            ],
        )

    def _acknowledge_api_findings(self, api: apigateway.RestApi) -> None:
        unauthenticated = (
            "Stripe cannot sign its webhook deliveries with SigV4 or present Cognito tokens or API keys. "
            "The webhook function authenticates every POST by verifying the Stripe-Signature HMAC over the "
            "raw body with the signing secret and rejects unsigned, stale or forged events; ANY only "
            "answers 405 from a mock integration."
        )
        for method in (api.root.resource_for_path(WEBHOOK_PATH).node.find_child(m) for m in ("POST", "ANY")):
            Validations.of(method).acknowledge(
                Acknowledgment(id="AwsSolutions-APIG4", reason=unauthenticated),
                Acknowledgment(id="AwsSolutions-COG4", reason=unauthenticated),
            )
        Validations.of(api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason=(
                    "The request validator checks parameters only (the Stripe-Signature header is required). "
                    "The webhook body is not validated by API Gateway: the function verifies the signature over "
                    "the exact raw bytes and parses the event itself, and a gateway model of Stripe's evolving "
                    "event shapes would reject deliveries Stripe then retries for days. The finance admin routes "
                    "are SigV4-signed by IAM principals and billing-admin validates each JSON body in one place "
                    "(400 naming the field), so a duplicate gateway model could only drift from it."
                ),
            )
        )
        Validations.of(api.deployment_stage).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason=(
                    "No WAF web ACL on this small billing API: a web ACL adds a monthly fee per ACL and rule plus "
                    "a per-request charge, the stage already throttles requests, and every request is "
                    "authenticated, by its Stripe signature (webhook) or by IAM SigV4 (finance admin routes). "
                    "Customers who run WAF attach their own policy to the stage."
                ),
            )
        )

    def _add_logs_role_setting(self, setup: DeploySetup) -> CustomResource:
        """API Gateway's account-wide CloudWatch Logs role, adopted when the account already names a role
        that exists (a central team's, another stage's); FinOps Guard's own role only where none is set.
        ``AWS::ApiGateway::Account`` would overwrite the account's setting, and two stages would fight over it."""
        role = iam.Role(
            self,
            "LogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway's CloudWatch Logs role for this account and region (set by FinOps Guard)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
            ],
        )
        # Once set, the account setting may serve other APIs too: the role outlives this stack, and a
        # redeploy adopts it. A failed first create removes it (RetainExceptOnCreate).
        role.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason=(
                    "AmazonAPIGatewayPushToCloudWatchLogs is the managed policy AWS documents for the "
                    "account-level API Gateway CloudWatch role. API Gateway uses that one role for the "
                    "execution logs of every REST API in the account and region, in log groups it names "
                    "itself, so it cannot be scoped to this stack."
                ),
            )
        )
        setting = setup.api_gateway_cloudwatch_role(self, "LogsRoleSetting", role=role)
        # The stage turns logging on: the account must name a logs role first.
        self.api.deployment_stage.node.add_dependency(setting)
        return setting

    def _add_api_alarms(self) -> list[cloudwatch.Alarm]:
        stage = self.config.stage
        api_name = f"finops-guard-{stage}-billing"
        function_name = self.stripe_webhook.function_name
        access_logs_hint = f"open the access log group {self.access_logs.log_group_name} in CloudWatch Logs Insights"
        stage_metrics = self.api.deployment_stage
        return [
            self._api_alarm(
                "5xx",
                stage_metrics.metric_server_error(period=ALARM_PERIOD, statistic="Sum"),
                threshold=1,
                description=(
                    f"The billing API {api_name} answered 5xx in the last 5 minutes. First: {access_logs_hint} and "
                    "look at resourcePath. /stripe/webhook: Stripe did not get its events acknowledged (it retries "
                    f"them for up to three days); read the ERROR lines in the log group of {function_name} (an error, "
                    "a timeout or a throttle), and after the fix resend failed events from the Stripe Dashboard. "
                    f"/invoices or /billing/...: read the log group of finops-guard-{stage}-billing-admin; the "
                    "finance caller got the error and may retry."
                ),
            ),
            self._api_alarm(
                "signature-failures",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name="StripeSignatureFailures",
                    # Powertools Metrics adds the service name as the "service" dimension to every metric.
                    dimensions_map={"service": self.stripe_webhook.short_name},
                    statistic="Sum",
                    period=ALARM_PERIOD,
                ),
                threshold=SIGNATURE_FAILURE_SPIKE,
                description=(
                    f"{SIGNATURE_FAILURE_SPIKE} or more webhook requests in 5 minutes failed Stripe signature "
                    f"verification in {function_name} (forged signature or timestamp outside the tolerance): "
                    "someone is posting forged events, or the signing secret was rolled in Stripe and not put into "
                    f"{self.stripe_secret_name}. First: in the Stripe Dashboard (Developers > Webhooks > this "
                    "endpoint) look for failed deliveries. If Stripe's deliveries fail, put the endpoint's current "
                    f"whsec_ value into {self.stripe_secret_name} (the old one into "
                    f"{self.stripe_previous_secret_name} while Stripe still signs with it) and resend the failed "
                    f"events. If they do not, the requests are not Stripe's: {access_logs_hint} and look at ip."
                ),
            ),
        ]

    def _api_alarm(
        self, name: str, metric: cloudwatch.IMetric, *, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"Api{name.replace('-', ' ').title().replace(' ', '')}Alarm",
            alarm_name=f"FinOpsGuard-{self.config.stage}-billing-api-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return self.paging.page(alarm)

    # --- billing notifier -----------------------------------------------------------------------

    def _notifier_environment(self) -> dict[str, str]:
        config = self.config
        return {
            **config.report_environment(),
            **self.finance_secrets.environment(),
            "FINOPSGUARD_OUTBOX_TABLE": self.outbox_table.table_name,
        }

    def _add_billing_notifier(self, layers: Layers, paging: Paging) -> MonitoredFunction:
        return MonitoredFunction(
            self,
            "BillingNotifier",
            props=MonitoredFunctionProps(
                stage=self.config.stage,
                name="billing-notifier",
                description="Posts new and changed billing alerts to the finance chat",
                code=function_code("billing_notifier"),
                timeout=NOTIFIER_TIMEOUT,
                memory_size=NOTIFIER_MEMORY_MB,
                environment=self._notifier_environment(),
                layers=[layers.common, layers.report_deps],
                paging=paging,
                kpi_metrics=self.config.dashboard,
            ),
        )

    def _add_alert_stream_trigger(self) -> None:
        notifier = self.billing_notifier
        notifier.function.add_event_source(
            event_sources.DynamoEventSource(
                self.billing_alerts_table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=STREAM_BATCH_SIZE,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                # A batch that fails every retry is recorded in the stage's failure queue (it pages).
                on_failure=_FailureQueueDestination(notifier.failure_queue),
            )
        )
        # The event source grants stream reads on this table's stream only, plus dynamodb:ListStreams.
        Validations.of(notifier.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Only dynamodb:ListStreams uses Resource '*': it has no resource-level permissions, and Lambda "
                    "documents it among the permissions a DynamoDB stream trigger needs. It lists stream ARNs and "
                    "reads no data; DescribeStream, GetShardIterator and GetRecords are scoped to the "
                    "billing-alerts table's stream."
                ),
            )
        )

    def _grant_billing_notifier(self) -> None:
        for statement in (
            self.finance_secrets.read_statement("ReadFinanceWebhookSecrets"),
            use_outbox_statement(self.outbox_table),
        ):
            self.billing_notifier.add_to_role_policy(statement)
