"""Lambda layers: the shared finops_guard library and the third-party packages, kept apart by who needs them.

The core stack publishes ``common`` and ``report_deps``, and writes each version's ARN to an SSM
parameter; a product stack reads the parameter when it deploys. Not a CloudFormation export: a new
layer version changes the ARN, and an export that another stack imports cannot change, so every
code change would block the core's deploy. ``billing_deps`` (stripe) lives in the billing stack:
someone without Stripe never ships it.

CloudFormation resolves an SSM parameter only when it updates the stack, and skips a stack whose
template did not change: each product stack therefore outputs ``layers_fingerprint()``, a hash of the
layers' sources, so a new layer changes its template and the deploy moves its functions to it."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.core import REPO_ROOT
from infra.core.bundling import library_layer_code, pip_layer_code

# 3.13, not 3.14: the assets ship bytecode, which only an interpreter of the runtime's exact minor
# version can compile, and the build machines have CPython 3.11-3.13 (infra/core/bytecode.py).
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = RUNTIME.name.removeprefix("python")  # "3.13": wheels and bytecode for exactly this
RUNTIME_CHOICE = (
    "Python 3.13, one minor version behind Lambda's newest, on purpose: every asset ships bytecode compiled "
    "by the runtime's exact Python version, so that no cold start compiles our modules from source, and the "
    "build machines have CPython 3.13 but not 3.14 (infra/core/bytecode.py). CPython 3.13 has security "
    "support until October 2029; moving up is one constant once the build machines have 3.14."
)


def acknowledge_runtime(function: lambda_.Function) -> None:
    """cdk-nag's AwsSolutions-L1 (not the newest runtime), acknowledged for the reason above."""
    Validations.of(function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_CHOICE))


@dataclass(frozen=True)
class Layers:
    """The layers a function can take. ``billing_deps`` exists in the billing stack only."""

    common: lambda_.ILayerVersion
    report_deps: lambda_.ILayerVersion
    billing_deps: lambda_.ILayerVersion | None = None

    def with_billing_deps(self, layer: lambda_.ILayerVersion) -> Layers:
        return Layers(common=self.common, report_deps=self.report_deps, billing_deps=layer)

    def stripe(self) -> lambda_.ILayerVersion:
        assert self.billing_deps is not None, "billing_deps is created by the billing stack"
        return self.billing_deps


def layer_parameter_name(stage: str, layer: str) -> str:
    return f"/finops-guard/{stage}/layers/{layer}"


def _new_layer(scope: Construct, construct_id: str, *, name: str, code: lambda_.Code, description: str):
    return lambda_.LayerVersion(
        scope,
        construct_id,
        layer_version_name=name,
        code=code,
        description=description,
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        # Keep old versions: a function still deployed with one (or a rollback) can resolve it.
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


class SharedLayers(Construct):
    """``common`` (domain + adapters) and ``report_deps`` (Powertools, urllib3, tzdata), with their SSM parameters."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.common = _new_layer(
            self,
            "Common",
            name=f"finops-guard-{stage}-common",
            code=library_layer_code(REPO_ROOT / "layers" / "common", PYTHON_VERSION),
            description="finops_guard shared library (domain logic and AWS/chat adapters)",
        )
        self.report_deps = _new_layer(
            self,
            "ReportDeps",
            name=f"finops-guard-{stage}-report-deps",
            code=pip_layer_code(REPO_ROOT / "layers" / "report_deps", PYTHON_VERSION),
            description="Third-party packages of every function but stripe (layers/report_deps)",
        )
        self.parameters = [
            ssm.StringParameter(
                self,
                f"{layer}Parameter",
                parameter_name=layer_parameter_name(stage, layer),
                string_value=version.layer_version_arn,
                description=f"The current version of the finops-guard-{stage} {layer} layer, for the product stacks",
            )
            for layer, version in (("common", self.common), ("report-deps", self.report_deps))
        ]
        self.layers = Layers(common=self.common, report_deps=self.report_deps)


def imported_layers(scope: Construct, stage: str) -> Layers:
    """The core's layers as a product stack sees them: resolved from SSM when the product stack deploys."""
    common, report = (
        lambda_.LayerVersion.from_layer_version_arn(
            scope,
            construct_id,
            ssm.StringParameter.value_for_string_parameter(scope, layer_parameter_name(stage, layer)),
        )
        for construct_id, layer in (("CommonLayer", "common"), ("ReportDepsLayer", "report-deps"))
    )
    return Layers(common=common, report_deps=report)


def billing_deps_layer(scope: Construct, stage: str) -> lambda_.LayerVersion:
    """stripe and its dependencies, for the Stripe-facing functions of the billing stack only."""
    return _new_layer(
        scope,
        "BillingDeps",
        name=f"finops-guard-{stage}-billing-deps",
        code=pip_layer_code(REPO_ROOT / "layers" / "billing_deps", PYTHON_VERSION),
        description="Third-party packages of the Stripe-facing billing functions only (layers/billing_deps)",
    )


@functools.cache  # one value per synth, the same in every product stack
def layers_fingerprint() -> str:
    """A short hash of what the core's layers are built from: the library's files and the requirements."""
    library = REPO_ROOT / "layers" / "common"
    sources = [
        path
        for path in library.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not any(p.endswith(".egg-info") for p in path.parts)
    ]
    sources += (REPO_ROOT / "layers" / "report_deps").glob("*.txt")
    digest = hashlib.sha256()
    for path in sorted(sources):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
