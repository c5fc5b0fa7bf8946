"""The report_deps layer really bundles: pip installs arm64/cp314 wheels from PyPI (slow, network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import BundlingOptions, DockerImage
from conftest import REPO_ROOT

from infra.constructs.bundling import PipLayerBundler

pytestmark = [pytest.mark.infra, pytest.mark.bundling]


@pytest.fixture(scope="module")
def report_deps_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output_dir = tmp_path_factory.mktemp("report-deps-layer")
    bundler = PipLayerBundler(REPO_ROOT / "layers" / "report_deps", python_version="3.14")

    bundled = bundler.try_bundle(
        str(output_dir), BundlingOptions(image=DockerImage.from_registry("local-bundling-only"))
    )

    assert bundled is True
    return output_dir / "python"


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
