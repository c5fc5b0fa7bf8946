"""Cold import the way Lambda runs it: every function's handler from the assets `cdk synth` bundled.

For each function of the synthesized app (every optional one switched on), a fresh interpreter of the
runtime's Python version imports the handler with:
- the function's code folder first on the path, as /var/task, and its layers' python folders merged
  in the function's layer order into one folder, as /opt/python;
- then the runtime's own boto3 (the pinned version, precompiled, as the managed runtime has it);
- nothing else: `-I -S` (no site-packages, no PYTHONPATH, no current folder), and `-B` with
  PYTHONDONTWRITEBYTECODE=1, so no bytecode is written: a module shipped without a matching .pyc is
  compiled from source in every run, as on Lambda's read-only file system;
against `import boto3` under the same conditions, interleaved in the same run. Each run also reports
which modules it had to compile (none, once the assets carry bytecode) and any module loaded from
outside those folders (none: nothing of the checkout leaks in).

`python -m devtools.bench_lambda [--smoke] [--runs N] [--cdk-out DIR] [--json]`: synthesizes into
.bench/lambda/cdk.out unless an existing cloud assembly is named. `--importtime <function>`: what each
module costs that function's cold import beyond boto3's (`-X importtime`, the same setup, medians).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devtools.lambda_runner import ROOT
from infra.core.bytecode import Interpreter, interpreter_for

WORK = ROOT / ".bench" / "lambda"
TARGET_RATIO = 1.5
# The two functions on the hot path of a person waiting (the Monday card, Stripe's webhook timeout).
STRICT_TARGETS = {"weekly-report": 1.3, "stripe-webhook": 1.3}
SMOKE_FUNCTIONS = ("weekly-report", "stripe-webhook")
# Every optional function deployed, so that every function is measured.
SYNTH_CONTEXT = {"savingsRecommendations": "true"}
SYNTH_TIMEOUT_S = 600

_CHILD = """
import importlib.util, json, os, sys, time
paths, runtime, module = json.loads(sys.argv[1])
sys.path[0:0] = paths
sys.path.append(runtime)
started, cpu = time.perf_counter(), time.process_time()
__import__(module)
ms, cpu_ms = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
shipped = tuple(os.path.join(p, "") for p in paths)
elsewhere = (os.path.join(runtime, ""), os.path.join(sys.base_prefix, "lib", "python%d.%d" % sys.version_info[:2], ""))
ours, from_source, outside = 0, [], []
for name, loaded in sorted(sys.modules.items()):
    path = getattr(loaded, "__file__", None)
    if not path:
        continue
    if not path.startswith(shipped):
        if not path.startswith(elsewhere):
            outside.append(name)
        continue
    if not path.endswith(".py"):
        continue  # an extension module
    ours += 1
    cached = getattr(loaded, "__cached__", None)
    with open(cached, "rb") if cached and os.path.exists(cached) else open(os.devnull, "rb") as pyc:
        if pyc.read(4) != importlib.util.MAGIC_NUMBER:
            from_source.append(name)
print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "modules": ours, "from_source": from_source, "outside": outside}))
"""


@dataclass(frozen=True)
class LambdaFunction:
    name: str  # the short name: weekly-report
    code: Path  # its asset folder: /var/task
    layers: tuple[Path, ...]  # its layers' asset folders, in the function's order
    module: str  # the handler's module
    environment: dict[str, str]
    python: str  # the runtime's version: "3.13"


@dataclass
class Measured:
    name: str
    median_ms: float  # wall time
    median_cpu_ms: float
    ratio: float  # of the CPU times: what is judged
    wall_ratio: float
    target: float
    modules: int
    from_source: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return self.ratio <= self.target

    @property
    def clean(self) -> bool:
        """Every module of its code and layers came from shipped bytecode, and nothing came from anywhere
        but them, the runtime's boto3 and the standard library."""
        return not self.from_source and not self.outside


@dataclass
class Figures:
    runtime: str  # the functions' runtime: "3.13"
    python: str  # the interpreter's full version: "3.13.0"
    boto3_version: str
    runs: int
    boto3_ms: float
    boto3_cpu_ms: float
    functions: list[Measured]
    assets: list[tuple[str, int, int, int | None, int | None]]  # name, bytes, pyc bytes, zipped, zipped pyc

    @property
    def met(self) -> bool:
        return all(f.met for f in self.functions)

    @property
    def correct(self) -> bool:
        return bool(self.functions) and all(f.clean for f in self.functions)


def synthesize(outdir: Path) -> None:
    """`cdk synth` with bundling into ``outdir``, as `make synth` runs it."""
    shutil.rmtree(outdir, ignore_errors=True)
    context = [arg for key, value in SYNTH_CONTEXT.items() for arg in ("-c", f"{key}={value}")]
    env = dict(
        os.environ,
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_CDK_DISABLE_VERSION_CHECK="1",
    )
    done = subprocess.run(
        ["npx", "cdk", "synth", "--quiet", *context, "-o", str(outdir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cdk synth failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")


def functions_in(assembly: Path) -> list[LambdaFunction]:
    """Every function of the cloud assembly with its code and layer asset folders. A product stack
    names the core's layers by SSM parameter (/finops-guard/<stage>/layers/<layer>): resolved here to
    the core's layer of that name, as CloudFormation resolves it when it deploys."""
    templates = [json.loads(path.read_text()) for path in sorted(assembly.glob("*.template.json"))]
    layer_assets = {
        resource["Properties"]["LayerName"]: assembly / resource["Metadata"]["aws:asset:path"]
        for template in templates
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    }
    found = []
    for template in templates:
        resources, parameters = template["Resources"], template.get("Parameters", {})

        def layer(reference: dict[str, str], resources: Any = resources, parameters: Any = parameters) -> Path:
            logical_id = reference["Ref"]
            if logical_id in resources:
                return layer_assets[resources[logical_id]["Properties"]["LayerName"]]
            _, product, stage, _, name = parameters[logical_id]["Default"].split("/")
            return layer_assets[f"{product}-{stage}-{name}"]

        for resource in resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            properties = resource["Properties"]
            variables = properties.get("Environment", {}).get("Variables", {})
            found.append(
                LambdaFunction(
                    name=variables.get("POWERTOOLS_SERVICE_NAME") or properties["FunctionName"],
                    code=assembly / resource["Metadata"]["aws:asset:path"],
                    layers=tuple(layer(reference) for reference in properties.get("Layers", [])),
                    module=properties["Handler"].rsplit(".", 1)[0],
                    environment={k: v for k, v in variables.items() if isinstance(v, str)},
                    python=properties["Runtime"].removeprefix("python"),
                )
            )
    return sorted(found, key=lambda function: function.name)


def boto3_pin() -> str:
    """The boto3 version the project pins (requirements-dev.txt), standing in for the runtime's."""
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.strip().startswith("boto3=="):
            return line.split("==", 1)[1].strip()
    raise RuntimeError("requirements-dev.txt pins no boto3")


def runtime_site(interpreter: Interpreter, version: str) -> Path:
    """boto3 and its dependencies for the runtime's Python, with bytecode, as the managed runtime ships
    them (built once, then reused)."""
    site = WORK / f"runtime-python{interpreter.version}-boto3-{version}"
    if (site / ".complete").is_file():
        return site
    shutil.rmtree(site, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", f"boto3=={version}", "--target", str(site), "--only-binary=:all:",
         "--python-version", interpreter.version, "--implementation", "cp", "--no-compile", "--quiet",
         "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    subprocess.run([interpreter.executable, "-I", "-m", "compileall", "-q", str(site)], check=True, capture_output=True)
    (site / ".complete").write_text(f"boto3=={version} python{interpreter.version}\n")
    return site


def opt_python(layers: Sequence[Path]) -> Path:
    """The layers merged into one folder, in order (a later one's files win), as Lambda extracts them
    into /opt; built once per combination of layers."""
    folder = WORK / "opt" / "-".join(path.name.removeprefix("asset.")[:12] for path in layers)
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        for layer in layers:
            shutil.copytree(layer, folder, dirs_exist_ok=True)
        (folder / ".complete").write_text("\n".join(str(layer) for layer in layers) + "\n")
    return folder / "python"


def import_once(interpreter: Interpreter, paths: Sequence[Path], runtime: Path, module: str,
                environment: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    env = {
        **environment,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    argument = json.dumps([[str(path) for path in paths], str(runtime), module])
    done = subprocess.run(
        [interpreter.executable, "-I", "-S", "-B", "-c", _CHILD, argument],
        env=env, cwd=WORK, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} from {paths[:1]} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def asset_sizes(assembly: Path, function_list: Sequence[LambdaFunction],
                zipped: bool) -> list[tuple[str, int, int, int | None, int | None]]:  # fmt: skip
    """Bytes of each distinct asset and of its bytecode, unzipped and (when ``zipped``) deflated as in
    the uploaded zip."""
    named: dict[Path, str] = {}
    layers = layer_names(assembly)
    for function in function_list:
        for layer in function.layers:
            named.setdefault(layer, f"layer {layers[layer]}")
    for function in function_list:
        named.setdefault(function.code, f"function {function.name}")
    sizes = []
    for folder, name in named.items():
        files = [path for path in sorted(folder.rglob("*")) if path.is_file()]
        total = sum(path.stat().st_size for path in files)
        pyc = sum(path.stat().st_size for path in files if path.suffix == ".pyc")
        packed = packed_pyc = None
        if zipped:
            deflated = {path: _deflated_size(path.read_bytes()) for path in files}
            packed = sum(deflated.values())
            packed_pyc = sum(size for path, size in deflated.items() if path.suffix == ".pyc")
        sizes.append((name, total, pyc, packed, packed_pyc))
    return sizes


def _deflated_size(data: bytes) -> int:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # a zip entry's raw deflate
    return len(compressor.compress(data) + compressor.flush())


def layer_names(assembly: Path) -> dict[Path, str]:
    names = {}
    for path in assembly.glob("*.template.json"):
        for resource in json.loads(path.read_text())["Resources"].values():
            if resource["Type"] == "AWS::Lambda::LayerVersion":
                names[assembly / resource["Metadata"]["aws:asset:path"]] = resource["Properties"]["LayerName"]
    return names


def measure(runs: int, *, assembly: Path | None = None, only: Sequence[str] | None = None,
            zipped_sizes: bool = False) -> Figures:  # fmt: skip
    WORK.mkdir(parents=True, exist_ok=True)
    if assembly is None:
        assembly = WORK / "cdk.out"
        synthesize(assembly)
    assembly = assembly.resolve()
    shutil.rmtree(WORK / "opt", ignore_errors=True)  # merged from this assembly's layers only
    chosen = [f for f in functions_in(assembly) if only is None or f.name in only]
    runtimes = sorted({f.python for f in chosen})
    if len(runtimes) != 1:
        raise RuntimeError(f"expected the functions of {assembly} on one Python runtime, found {runtimes or 'none'}")
    interpreter = interpreter_for(runtimes[0])
    version = boto3_pin()
    runtime = runtime_site(interpreter, version)
    opts = {f.name: opt_python(f.layers) for f in chosen}
    boto3_runs: list[dict[str, Any]] = []
    samples: dict[str, list[dict[str, Any]]] = {f.name: [] for f in chosen}
    for _ in range(runs):  # interleaved, so machine noise hits all alike
        boto3_runs.append(import_once(interpreter, [], runtime, "boto3", {}))
        for function in chosen:
            paths = [function.code, opts[function.name]] if function.layers else [function.code]
            sample = import_once(interpreter, paths, runtime, function.module, function.environment)
            samples[function.name].append(sample)
    boto3_ms = statistics.median(run["ms"] for run in boto3_runs)
    boto3_cpu_ms = statistics.median(run["cpu_ms"] for run in boto3_runs)
    measured = []
    for function in chosen:
        runs_of = samples[function.name]
        median = statistics.median(run["ms"] for run in runs_of)
        median_cpu = statistics.median(run["cpu_ms"] for run in runs_of)
        measured.append(
            Measured(
                name=function.name,
                median_ms=median,
                median_cpu_ms=median_cpu,
                ratio=median_cpu / boto3_cpu_ms,
                wall_ratio=median / boto3_ms,
                target=STRICT_TARGETS.get(function.name, TARGET_RATIO),
                modules=max(run["modules"] for run in runs_of),
                from_source=sorted({name for run in runs_of for name in run["from_source"]}),
                outside=sorted({name for run in runs_of for name in run["outside"]}),
            )
        )
    sizes = asset_sizes(assembly, chosen, zipped_sizes)
    python = subprocess.run([interpreter.executable, "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return Figures(runtimes[0], python, version, runs, boto3_ms, boto3_cpu_ms, measured, sizes)


def import_profile(name: str, runs: int, assembly: Path) -> list[tuple[float, float, int, str]]:
    """`python -X importtime` of one function's handler the Lambda way, after `import boto3` (whose
    modules are not counted): (cumulative ms, self ms, depth, module), medians of ``runs``, costliest first."""
    [function] = [f for f in functions_in(assembly.resolve()) if f.name == name]
    interpreter = interpreter_for(function.python)
    runtime = runtime_site(interpreter, boto3_pin())
    paths = [str(function.code), str(opt_python(function.layers))]
    code = (f"import sys; sys.path[0:0] = {paths!r}; sys.path.append({str(runtime)!r});"
            f" import boto3; import {function.module}")  # fmt: skip
    selfs: dict[tuple[int, str], list[int]] = {}
    totals: dict[tuple[int, str], list[int]] = {}
    for _ in range(runs):
        done = subprocess.run([interpreter.executable, "-I", "-S", "-B", "-X", "importtime", "-c", code],
                              env={**function.environment, "AWS_REGION": "us-east-1"}, cwd=WORK,
                              capture_output=True, text=True, check=True)  # fmt: skip
        after_boto3 = False
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
                continue
            own, cumulative, label = line.removeprefix("import time:").split("|", 2)
            depth, module = (len(label) - len(label.lstrip()) - 1) // 2, label.strip()
            if after_boto3:
                selfs.setdefault((depth, module), []).append(int(own))
                totals.setdefault((depth, module), []).append(int(cumulative))
            after_boto3 |= module == "boto3" and depth == 0
    rows = [(statistics.median(totals[key]) / 1000, statistics.median(selfs[key]) / 1000, *key) for key in totals]
    return sorted(rows, reverse=True)


def report(figures: Figures, smoke: bool) -> list[str]:
    lines = [
        f"cold import the Lambda way: Python {figures.python} (the runtime's {figures.runtime}), each handler from"
        " the assets of `cdk synth` (code as /var/task, its layers as /opt/python), -I -S -B: no bytecode"
        f" written; median of {figures.runs} fresh interpreters, interleaved; judged on CPU time (this machine is"
        " shared: wall time also counts waiting for a core), wall time beside it:",
        f"  import boto3 ({figures.boto3_version}, precompiled, as the runtime has it)"
        f"  CPU {figures.boto3_cpu_ms:6.1f} ms   wall {figures.boto3_ms:6.1f} ms",
    ]
    for f in figures.functions:
        verdict = "not judged (smoke run)" if smoke else ("met" if f.met else "NOT MET")
        shipped = "all from shipped bytecode" if not f.from_source else f"{len(f.from_source)} compiled from source"
        lines.append(
            f"  {f.name:17s} CPU {f.median_cpu_ms:6.1f} ms = {f.ratio:.2f} x boto3 (target <= {f.target}) {verdict};"
            f"  wall {f.median_ms:6.1f} ms = {f.wall_ratio:.2f} x; {f.modules} modules from its code and layers,"
            f" {shipped}" + (f"; loaded from outside them: {', '.join(f.outside[:5])}" if f.outside else "")
        )
    lines.append("  bytecode in the assets (.pyc bytes of the asset's total; deflated as uploaded, where measured):")
    for name, total, pyc, packed, packed_pyc in figures.assets:
        zipped = ""
        if packed is not None and packed_pyc is not None:
            zipped = f"; zipped {packed_pyc / 1e6:.2f} of {packed / 1e6:.2f} MB"
        lines.append(f"    {name:34s} {pyc / 1e6:6.2f} of {total / 1e6:6.2f} MB{zipped}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    smoke = "--smoke" in args
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else (1 if smoke else 15)
    assembly = Path(args[args.index("--cdk-out") + 1]) if "--cdk-out" in args else None
    if "--importtime" in args:
        name = args[args.index("--importtime") + 1]
        for cumulative, own, depth, module in import_profile(name, runs, assembly or WORK / "cdk.out")[:60]:
            print(f"{cumulative:7.1f} {own:6.1f}  {'  ' * depth}{module}")
        return 0
    figures = measure(runs, assembly=assembly, only=SMOKE_FUNCTIONS if smoke else None, zipped_sizes=not smoke)
    if "--json" in args:
        print(json.dumps(asdict(figures)))
    else:
        print("\n".join(report(figures, smoke)))
    return 0 if figures.correct and (smoke or figures.met) else 1


if __name__ == "__main__":
    sys.exit(main())
