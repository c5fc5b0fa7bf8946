"""Lambda assets built on the developer's machine: no Docker needed to synth.

Every asset ships bytecode for the runtime's Python (infra/core/bytecode.py): pip-installed layers,
the shared library layer and each function's code. Their asset hash is the hash of what is shipped
(``AssetHashType.OUTPUT``), and the build is deterministic, so an unchanged build keeps its hash and
deploys nothing, while a change of the bytecode (another runtime version) is a new asset.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.core.bytecode import compile_tree, interpreter_for

LAMBDA_PLATFORM = "manylinux2014_aarch64"  # matches Architecture.ARM_64
# Where Lambda puts the code: a function's package in /var/task, every layer's folder under /opt.
FUNCTION_ROOT = "/var/task"
LAYER_ROOT = "/opt"
# Never part of an asset: caches of whatever Python ran in the checkout, and install metadata of `pip -e`.
NOT_SHIPPED = ("__pycache__", "*.pyc", "*.pyo", "*.egg-info")


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Installs ``requirements.txt`` into ``<output>/python`` as wheels built for Lambda arm64, then
    compiles it for the runtime's Python."""

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
            "--no-compile",  # pip would compile with this interpreter (3.11), whose bytecode Lambda ignores
            "--disable-pip-version-check",
            "--quiet",
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        interpreter = interpreter_for(self.python_version)  # before pip: a missing one fails at once
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
        compile_tree(Path(output_dir), runs_from=LAYER_ROOT, interpreter=interpreter)
        return True


@jsii.implements(ILocalBundling)
class CompiledCopyBundler:
    """Copies a folder of our own code (without caches) and compiles it for the runtime's Python, as
    the code at ``runs_from`` on Lambda."""

    def __init__(self, source_dir: Path, python_version: str, runs_from: str) -> None:
        self.source_dir = Path(source_dir)
        self.python_version = python_version
        self.runs_from = runs_from

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        interpreter = interpreter_for(self.python_version)
        shutil.copytree(self.source_dir, output_dir, ignore=shutil.ignore_patterns(*NOT_SHIPPED), dirs_exist_ok=True)
        compile_tree(Path(output_dir), runs_from=self.runs_from, interpreter=interpreter)
        return True


def _bundled(source_dir: Path, bundler: ILocalBundling) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("local-bundling-only"),
            local=bundler,
        ),
    )


def pip_layer_code(path: str | Path, python_version: str) -> lambda_.Code:
    """Layer code from ``<path>/requirements.txt``, bundled locally for Python ``python_version``.

    Bundling is skipped for stacks excluded via ``aws:cdk:bundling-stacks`` (the infra tests)."""
    source_dir = Path(path)
    return _bundled(source_dir, PipLayerBundler(source_dir, python_version))


def library_layer_code(path: str | Path, python_version: str) -> lambda_.Code:
    """A layer of our own code (``<path>/python/...``), compiled for Python ``python_version``."""
    source_dir = Path(path)
    return _bundled(source_dir, CompiledCopyBundler(source_dir, python_version, LAYER_ROOT))


def function_code(path: str | Path, python_version: str) -> lambda_.Code:
    """A function's folder (its handler.py), compiled for Python ``python_version``."""
    source_dir = Path(path)
    return _bundled(source_dir, CompiledCopyBundler(source_dir, python_version, FUNCTION_ROOT))
