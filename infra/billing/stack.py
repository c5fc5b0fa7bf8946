"""The billing stack ``FinOpsGuard-<stage>-Billing``: the Stripe webhook into the exactly-once ledger,
billing alerts to the finance chat, dunning, reconciliation, the invoice bot and the finance admin API.

Deploy it with the core (``npx cdk deploy FinOpsGuard-<stage>-Billing`` deploys the core first); it
needs nothing from the costs stack.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.billing.billing_api import BillingApi
from infra.billing.billing_jobs import BillingJobs
from infra.billing.monitoring import BillingMonitoring
from infra.config import FinOpsGuardConfig
from infra.core.deploy_setup import DeploySetup
from infra.core.layers import billing_deps_layer, layers_fingerprint
from infra.core.stack import import_core


class BillingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FinOpsGuardConfig, tags: dict[str, str]) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                f"FinOps Guard ({config.stage}) billing: Stripe webhook and ledger, billing alerts, dunning, "
                "reconciliation, invoice bot and finance admin API"
            ),
        )
        self.config = config
        core = self.core = import_core(self, config)
        # stripe ships in this stack only: someone without Stripe never deploys it.
        layers = core.layers.with_billing_deps(billing_deps_layer(self, config.stage))
        # Adopts the account's API Gateway CloudWatch logs role when it has one.
        self.setup = DeploySetup(
            self, "BillingSetup", stage=config.stage, product="billing", layers=layers, paging=core.paging, tags=tags
        )
        self.billing = BillingApi(
            self,
            "BillingApi",
            config=config,
            layers=layers,
            paging=core.paging,
            outbox_table=core.outbox_table,
            setup=self.setup,
        )
        self.billing_jobs = BillingJobs(
            self, "BillingJobs", config=config, layers=layers, paging=core.paging, billing=self.billing
        )
        self.monitoring = BillingMonitoring(
            self, "BillingMonitoring", config=config, billing=self.billing, billing_jobs=self.billing_jobs
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        # A new core layer changes this template, so the deploy re-reads the layer parameters.
        CfnOutput(self, "CoreLayersFingerprint", value=layers_fingerprint())
        billing, jobs = self.billing, self.billing_jobs
        CfnOutput(self, "StripeWebhookUrl", value=billing.webhook_url)
        CfnOutput(self, "StripeSecretName", value=billing.stripe_secret_name)
        CfnOutput(self, "FinanceTeamsSecretName", value=billing.finance_secrets.teams_name)
        CfnOutput(self, "LedgerTableName", value=billing.ledger_table.table_name)
        CfnOutput(self, "BillingAlertsTableName", value=billing.billing_alerts_table.table_name)
        CfnOutput(self, "DunningTableName", value=billing.dunning_table.table_name)
        CfnOutput(self, "StripeApiKeySecretName", value=jobs.stripe_api_key_secret_name)
        CfnOutput(self, "BillingExportBucketName", value=jobs.export_bucket.bucket_name)
        CfnOutput(self, "BillingAdminApiUrl", value=jobs.admin_api_url)
