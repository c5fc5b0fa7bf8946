"""The report_deps and billing_deps layers really bundle: pip installs arm64/cp314 wheels from PyPI (slow, network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import BundlingOptions, DockerImage
from conftest import REPO_ROOT

from infra.core.bundling import PipLayerBundler

pytestmark = [pytest.mark.infra, pytest.mark.bundling]


def bundle(tmp_path_factory: pytest.TempPathFactory, folder: str) -> Path:
    output_dir = tmp_path_factory.mktemp(f"{folder}-layer")
    bundler = PipLayerBundler(REPO_ROOT / "layers" / folder, python_version="3.14")

    bundled = bundler.try_bundle(
        str(output_dir), BundlingOptions(image=DockerImage.from_registry("local-bundling-only"))
    )

    assert bundled is True
    return output_dir / "python"


@pytest.fixture(scope="module")
def report_deps_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle(tmp_path_factory, "report_deps")


@pytest.fixture(scope="module")
def billing_deps_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle(tmp_path_factory, "billing_deps")


def test_report_deps_layer_contains_powertools_and_requests(report_deps_layer: Path) -> None:
    assert (report_deps_layer / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (report_deps_layer / "requests" / "__init__.py").is_file()


def test_report_deps_layer_never_contains_stripe(report_deps_layer: Path) -> None:
    assert not (report_deps_layer / "stripe").exists()
    assert not list(report_deps_layer.glob("stripe-*.dist-info"))


def test_report_deps_layer_native_wheels_target_lambda_arm64_python_3_14(report_deps_layer: Path) -> None:
    extensions = [p.name for p in report_deps_layer.rglob("*.so")]

    assert extensions, "expected at least one compiled wheel (charset_normalizer)"
    assert all("cpython-314-aarch64-linux-gnu" in name for name in extensions), extensions


def test_report_deps_layer_has_no_bytecode_or_console_scripts(report_deps_layer: Path) -> None:
    assert not list(report_deps_layer.rglob("*.pyc"))
    assert not (report_deps_layer / "bin").exists()


def test_billing_deps_layer_contains_stripe_without_bytecode_or_console_scripts(billing_deps_layer: Path) -> None:
    assert (billing_deps_layer / "stripe" / "__init__.py").is_file()
    assert not list(billing_deps_layer.rglob("*.pyc"))
    assert not (billing_deps_layer / "bin").exists()


def test_packages_in_both_layers_have_the_same_versions(report_deps_layer: Path, billing_deps_layer: Path) -> None:
    # The webhook function stacks both layers; Lambda overlays them in /opt, so one package in two versions
    # would leave a mix of both versions' files.
    def versions(layer: Path) -> dict[str, str]:
        return dict(p.name.removesuffix(".dist-info").rsplit("-", 1) for p in layer.glob("*.dist-info"))

    report, billing = versions(report_deps_layer), versions(billing_deps_layer)
    shared = report.keys() & billing.keys()

    assert "requests" in shared
    assert {name: report[name] for name in shared} == {name: billing[name] for name in shared}
