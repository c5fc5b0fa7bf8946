"""The app really bundles, as `cdk synth` and `cdk deploy` do: pip installs arm64 wheels for the runtime's
Python from PyPI, and every asset (layers and function code) ships bytecode that the runtime uses
(slow: two bundled synths; network)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, Synth, synthesize

from infra.core.bundling import CompiledCopyBundler, PipLayerBundler
from infra.core.bytecode import (
    UNCHECKED_HASH_FLAGS,
    BytecodeBuildFailed,
    BytecodeInterpreterMissing,
    Interpreter,
    compile_tree,
    interpreter_for,
    verify_tree,
)
from infra.core.layers import PYTHON_VERSION, RUNTIME

pytestmark = [pytest.mark.infra, pytest.mark.bundling]

# What the runtime's interpreter finds in each shipped module (run by that interpreter itself).
_INSPECT = """
import importlib.util, json, marshal, sys
from pathlib import Path
report = {}
for root, runs_from in json.loads(sys.argv[1]):
    root = Path(root)
    for source in sorted(root.rglob("*.py")):
        pyc = source.parent / "__pycache__" / (source.stem + "." + sys.implementation.cache_tag + ".pyc")
        data = pyc.read_bytes()
        code = marshal.loads(data[16:])
        report[str(source)] = {
            "magic": data[:4] == importlib.util.MAGIC_NUMBER,
            "flags": int.from_bytes(data[4:8], "little"),
            "source_hash": data[8:16] == importlib.util.source_hash(source.read_bytes()),
            "filename": code.co_filename == runs_from + "/" + source.relative_to(root).as_posix(),
        }
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def runtime_python() -> Interpreter:
    return interpreter_for(PYTHON_VERSION)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-bundled"), bundle=True)


@pytest.fixture(scope="module")
def bundled_again(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-bundled-again"), bundle=True)


def assets(synth: Synth) -> dict[str, Path]:
    """Each function's and layer's staged asset folder, by stack and construct path
    (``Core/Layers/Common``), from the stacks' asset manifests."""
    found = {}
    for part in synth.parts:
        stack = part.stack.stack_name
        manifest = json.loads((synth.outdir / f"{stack}.assets.json").read_text())
        for asset in manifest["files"].values():
            if asset["source"].get("packaging") == "zip":
                name = f"{stack.rsplit('-', 1)[1]}/{asset['displayName'].removesuffix('/Code')}"
                found[name] = synth.outdir / asset["source"]["path"]
    return found


def layer_paths(synth: Synth) -> set[str]:
    return {path for path in assets(synth) if path.endswith(("/Layers/Common", "/Layers/ReportDeps", "/BillingDeps"))}


def layer(synth: Synth, name: str) -> Path:
    return assets(synth)[name] / "python"


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- what the layers hold ------------------------------------------------------------------------


def test_the_runtime_is_the_python_the_bytecode_is_compiled_by(runtime_python: Interpreter) -> None:
    assert RUNTIME.name == f"python{PYTHON_VERSION}" == "python3.13"
    assert runtime_python.version == PYTHON_VERSION
    assert runtime_python.cache_tag == "cpython-313"


def test_report_deps_layer_holds_powertools_urllib3_and_tzdata_and_neither_requests_nor_stripe(bundled: Synth) -> None:
    report_deps = layer(bundled, "Core/Layers/ReportDeps")

    assert sorted(p.name for p in report_deps.glob("*.dist-info")) == [
        "aws_lambda_powertools-3.37.0.dist-info",
        "jmespath-1.1.0.dist-info",
        "typing_extensions-4.16.0.dist-info",
        "tzdata-2026.6.dist-info",
        "urllib3-2.8.0.dist-info",
    ]
    assert not (report_deps / "requests").exists()
    assert not (report_deps / "stripe").exists()
    assert not (report_deps / "bin").exists()


def test_billing_deps_layer_holds_stripe_and_its_http_stack(bundled: Synth) -> None:
    billing_deps = layer(bundled, "Billing/BillingDeps")

    assert (billing_deps / "stripe" / "__init__.py").is_file()
    assert (billing_deps / "requests" / "__init__.py").is_file()
    assert not (billing_deps / "bin").exists()


def test_native_wheels_target_lambda_arm64_python_3_13(bundled: Synth) -> None:
    extensions = [p.name for p in layer(bundled, "Billing/BillingDeps").rglob("*.so")]

    assert extensions, "expected at least one compiled wheel (charset_normalizer)"
    assert all("cpython-313-aarch64-linux-gnu" in name for name in extensions), extensions


def test_packages_in_both_layers_have_the_same_versions(bundled: Synth) -> None:
    # The billing functions stack both layers; Lambda overlays them in /opt, so one package in two versions
    # would leave a mix of both versions' files.
    def versions(folder: Path) -> dict[str, str]:
        return dict(p.name.removesuffix(".dist-info").rsplit("-", 1) for p in folder.glob("*.dist-info"))

    report = versions(layer(bundled, "Core/Layers/ReportDeps"))
    billing = versions(layer(bundled, "Billing/BillingDeps"))
    shared = report.keys() & billing.keys()

    assert shared == {"typing_extensions", "urllib3"}
    assert {name: report[name] for name in shared} == {name: billing[name] for name in shared}


# --- the bytecode ---------------------------------------------------------------------------------


def test_a_function_asset_is_its_handler_and_that_handlers_bytecode_only(bundled: Synth) -> None:
    code = assets(bundled)["Costs/Anomalies/AnomalyAlerts/Function"]

    assert sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()) == [
        "__pycache__/handler.cpython-313.pyc",
        "handler.py",
    ]


def test_the_library_layer_ships_every_module_with_its_bytecode_and_no_install_metadata(bundled: Synth) -> None:
    library = layer(bundled, "Core/Layers/Common")
    sources = sorted(p.relative_to(library) for p in library.rglob("*.py"))
    expected = sorted(p.relative_to(REPO_ROOT / "layers/common/python") for p in
                      (REPO_ROOT / "layers/common/python/finops_guard").rglob("*.py"))  # fmt: skip

    assert sources == expected
    assert sorted(p.name for p in library.iterdir()) == ["finops_guard"]  # no finops_guard.egg-info


def test_every_shipped_module_has_unchecked_hash_bytecode_of_the_runtimes_python(
    bundled: Synth, runtime_python: Interpreter
) -> None:
    layers = layer_paths(bundled)
    assert len(layers) == 3
    folders = [(str(folder), "/opt" if path in layers else "/var/task") for path, folder in assets(bundled).items()]
    done = subprocess.run([runtime_python.executable, "-I", "-S", "-B", "-c", _INSPECT, json.dumps(folders)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(done.stdout)

    assert len(report) > 2000  # stripe alone has over a thousand modules
    assert [source for source, found in report.items() if not found["magic"]] == []
    assert {found["flags"] for found in report.values()} == {UNCHECKED_HASH_FLAGS}
    assert [source for source, found in report.items() if not found["source_hash"]] == []
    # Tracebacks name the file where it is on Lambda, not the build folder.
    assert [source for source, found in report.items() if not found["filename"]] == []


def test_no_asset_holds_bytecode_the_runtime_would_not_load(bundled: Synth) -> None:
    for path, folder in assets(bundled).items():
        stray = [p for p in folder.rglob("*.pyc") if not p.name.endswith(".cpython-313.pyc")]
        outside = [p for p in folder.rglob("*.pyc") if p.parent.name != "__pycache__"]
        assert (stray, outside) == ([], []), path


def test_identical_builds_give_identical_assets_and_asset_hashes(bundled: Synth, bundled_again: Synth) -> None:
    first, second = assets(bundled), assets(bundled_again)

    # The asset hash is the hash of the output (AssetHashType.OUTPUT), and it names the S3 object.
    assert {path: folder.name for path, folder in first.items()} == {
        path: folder.name for path, folder in second.items()
    }
    for path, folder in first.items():
        assert tree_digest(folder) == tree_digest(second[path]), path
    keys = sorted(json.dumps(r["Properties"].get("Code") or r["Properties"]["Content"])
                  for r in [*bundled.resources("AWS::Lambda::Function").values(),
                            *bundled.resources("AWS::Lambda::LayerVersion").values()])  # fmt: skip
    keys_again = sorted(json.dumps(r["Properties"].get("Code") or r["Properties"]["Content"])
                        for r in [*bundled_again.resources("AWS::Lambda::Function").values(),
                                  *bundled_again.resources("AWS::Lambda::LayerVersion").values()])  # fmt: skip
    assert keys == keys_again


# --- failing loudly -------------------------------------------------------------------------------


def test_no_interpreter_of_the_runtimes_version_fails_the_build_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINOPSGUARD_RUNTIME_PYTHON", sys.executable)  # 3.11: the wrong version
    bundler = CompiledCopyBundler(REPO_ROOT / "functions" / "weekly_report", "3.99", "/var/task")

    with pytest.raises(BytecodeInterpreterMissing, match=r"Lambda runs Python 3\.99.*pyenv install 3\.99"):
        bundler.try_bundle(str(tmp_path))
    with pytest.raises(BytecodeInterpreterMissing):
        PipLayerBundler(REPO_ROOT / "layers" / "report_deps", "3.99").try_bundle(str(tmp_path / "layer"))
    assert list(tmp_path.iterdir()) == []  # nothing was built


def test_bytecode_of_another_python_is_refused(tmp_path: Path, runtime_python: Interpreter) -> None:
    (tmp_path / "handler.py").write_text("VALUE = 1\n")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(tmp_path)],
                   check=True)  # fmt: skip
    (tmp_path / "__pycache__" / "handler.cpython-311.pyc").rename(
        tmp_path / "__pycache__" / f"handler.{runtime_python.cache_tag}.pyc"
    )

    with pytest.raises(BytecodeBuildFailed, match="handler.py"):
        verify_tree(tmp_path, runtime_python)


def test_a_module_that_does_not_compile_fails_the_build(tmp_path: Path, runtime_python: Interpreter) -> None:
    (tmp_path / "handler.py").write_text("def broken(:\n")

    with pytest.raises(BytecodeBuildFailed, match="could not compile"):
        compile_tree(tmp_path, runs_from="/var/task", interpreter=runtime_python)
