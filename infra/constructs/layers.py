"""Lambda layers: the shared finops_guard library and the third-party packages, kept apart by who needs them."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.constructs.bundling import pip_layer_code

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
_PYTHON_VERSION = "3.14"


class SharedLayers(Construct):
    """``common`` (domain + adapters), ``report_deps`` (Powertools, requests) and ``billing_deps`` (stripe).

    Only the functions that talk to Stripe take ``billing_deps`` (stripe-webhook, dunning-sender,
    reconciliation, billing-admin): the cost-reporting functions never ship or import stripe.
    """

    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.common = self._add_layer(
            "Common",
            name=f"finops-guard-{stage}-common",
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "layers" / "common"), exclude=["**/__pycache__", "**/*.pyc", "**/*.egg-info"]
            ),
            description="finops_guard shared library (domain logic and AWS/chat adapters)",
        )
        self.report_deps = self._add_layer(
            "ReportDeps",
            name=f"finops-guard-{stage}-report-deps",
            code=pip_layer_code(REPO_ROOT / "layers" / "report_deps", _PYTHON_VERSION),
            description="Third-party packages of the cost-reporting functions (layers/report_deps)",
        )
        self.billing_deps = self._add_layer(
            "BillingDeps",
            name=f"finops-guard-{stage}-billing-deps",
            code=pip_layer_code(REPO_ROOT / "layers" / "billing_deps", _PYTHON_VERSION),
            description="Third-party packages of the Stripe-facing billing functions only (layers/billing_deps)",
        )

    def _add_layer(self, construct_id: str, *, name: str, code: lambda_.Code, description: str):
        return lambda_.LayerVersion(
            self,
            construct_id,
            layer_version_name=name,
            code=code,
            description=description,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            # Keep old versions so a rollback can still resolve the layer it was deployed with.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
