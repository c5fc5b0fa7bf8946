"""Lambda layer code built on the developer's machine with pip: no Docker needed to synth."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

LAMBDA_PLATFORM = "manylinux2014_aarch64"  # matches Architecture.ARM_64


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Installs ``requirements.txt`` into ``<output>/python`` as wheels built for Lambda arm64."""

    def __init__(self, source_dir: Path, python_version: str, platform: str = LAMBDA_PLATFORM) -> None:
        self.source_dir = Path(source_dir)
        self.python_version = python_version
        self.platform = platform

    def pip_command(self, output_dir: str) -> list[str]:
        return [
            sys.executable, "-m", "pip", "install",
            "-r", str(self.source_dir / "requirements.txt"),
            "--target", str(Path(output_dir) / "python"),
            "--platform", self.platform,
            "--only-binary=:all:",
            "--python-version", self.python_version,
            "--implementation", "cp",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            self.pip_command(output_dir), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build the layer from {self.source_dir}/requirements.txt "
                f"(exit {result.returncode}):\n{result.stderr or result.stdout}"
            )
        # Console scripts are useless in a layer and only add size.
        shutil.rmtree(Path(output_dir) / "python" / "bin", ignore_errors=True)
        return True


def pip_layer_code(path: str | Path, python_version: str) -> lambda_.Code:
    """Layer code from ``<path>/requirements.txt``, bundled locally for Python ``python_version``.

    The asset hash covers the requirements file and these options, so pip runs again only when the
    pinned requirements change. Bundling is skipped for stacks excluded via ``aws:cdk:bundling-stacks``.
    """
    source_dir = Path(path)
    return lambda_.Code.from_asset(
        str(source_dir),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("local-bundling-only"),
            local=PipLayerBundler(source_dir, python_version),
        ),
    )
