"""Bytecode for the Lambda runtime's Python, compiled when an asset is bundled.

Lambda's ``/var/task`` and ``/opt`` are read-only: a module shipped without a matching ``.pyc`` is
compiled from source at every cold start, and Lambda bills the INIT phase. So every bundled module
(function code and layers) ships ``__pycache__/<name>.cpython-3NN.pyc``, compiled by an interpreter of
the runtime's exact minor version (CPython ignores a ``.pyc`` whose magic number is not its own):

- unchecked-hash pycs (PEP 552): used as they are, without reading the source or comparing its time (a
  timestamp pyc records the build machine's file time, which the asset zip does not carry to Lambda:
  it would be judged stale and ignored);
- compiled deterministically (sorted walk, one process, a fixed hash seed, the path the code has on
  Lambda as its file name), so identical sources give identical bytes and an unchanged asset hash;
- sources kept beside them, so tracebacks still show the lines.

No interpreter of that version, no build: bytecode of another version would be shipped and ignored.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Where an interpreter for the runtime's version may be named explicitly (a path).
INTERPRETER_VARIABLE = "FINOPSGUARD_RUNTIME_PYTHON"
# PEP 552 flags word: bit 0 hash-based, bit 1 check_source. Unchecked hash: 0b01.
UNCHECKED_HASH_FLAGS = 0b01

_PROBE = "import importlib.util, sys; print('%d.%d' % sys.version_info[:2]); print(importlib.util.MAGIC_NUMBER.hex())"

# Compiles one folder tree, given as argv: root, the folder it is on Lambda, the expected magic.
_COMPILE = """
import compileall, importlib.util, py_compile, sys
root, runs_from, magic = sys.argv[1:4]
assert importlib.util.MAGIC_NUMBER.hex() == magic, "interpreter changed under the build"
ok = compileall.compile_dir(
    root, ddir=runs_from, quiet=1, workers=1, optimize=0,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
sys.exit(0 if ok else 1)
"""


class BytecodeInterpreterMissing(RuntimeError):
    """No interpreter of the Lambda runtime's Python version on this machine."""


class BytecodeBuildFailed(RuntimeError):
    """A bundled module did not compile, or a compiled one is not what the runtime would load."""


@dataclass(frozen=True)
class Interpreter:
    executable: str
    version: str  # "3.13"
    magic: bytes  # importlib.util.MAGIC_NUMBER of that interpreter

    @property
    def cache_tag(self) -> str:
        return "cpython-" + self.version.replace(".", "")


def _candidates(version: str) -> list[str]:
    found = [os.environ.get(INTERPRETER_VARIABLE, ""), shutil.which(f"python{version}") or ""]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        found.append(sys.executable)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        # Newest patch release first: "3.13.10" sorts after "3.13.9".
        installs = sorted(
            Path(root, "versions").glob(f"{version}.*"),
            key=lambda p: [int(part) if part.isdigit() else -1 for part in p.name.split(".")],
            reverse=True,
        )
        found += [str(path / "bin" / f"python{version}") for path in installs]
    return [path for path in dict.fromkeys(found) if path and os.access(path, os.X_OK)]


def probe(executable: str) -> Interpreter | None:
    """The version and magic number an executable really has (not what its name says)."""
    try:
        done = subprocess.run(  # noqa: S603 - a fixed probe, no shell
            [executable, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    return Interpreter(executable, lines[0], bytes.fromhex(lines[1]))


@functools.cache
def interpreter_for(version: str) -> Interpreter:
    """An interpreter of Python ``version`` ("3.13"): $FINOPSGUARD_RUNTIME_PYTHON, python3.13 on the PATH,
    this interpreter, or a pyenv install. Raises BytecodeInterpreterMissing if there is none."""
    tried = []
    for executable in _candidates(version):
        found = probe(executable)
        if found is not None and found.version == version:
            return found
        tried.append(f"{executable} ({found.version if found else 'does not run'})")
    raise BytecodeInterpreterMissing(
        f"Lambda runs Python {version}, and its bytecode can only be compiled by Python {version}; none was "
        f"found (tried ${INTERPRETER_VARIABLE}, python{version} on the PATH and pyenv"
        + (f": {', '.join(tried)}" if tried else "")
        + f"). Install it (pyenv install {version}) or set {INTERPRETER_VARIABLE} to one. Refusing to ship "
        "bytecode that Lambda would ignore."
    )


def compile_tree(root: Path, *, runs_from: str, interpreter: Interpreter) -> int:
    """Compiles every ``.py`` under ``root`` next to it, as the code at ``runs_from`` on Lambda (the
    name tracebacks show), and checks each result. Returns the number of modules compiled."""
    env = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}  # nothing else: no PYTHONPYCACHEPREFIX, no PYTHONPATH
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [interpreter.executable, "-s", "-S", "-P", "-c", _COMPILE, str(root), runs_from, interpreter.magic.hex()],
        capture_output=True, text=True, env=env, cwd=root, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BytecodeBuildFailed(
            f"Python {interpreter.version} could not compile {root}:\n{(done.stdout + done.stderr).strip()[-4000:]}"
        )
    return len(verify_tree(root, interpreter))


def verify_tree(root: Path, interpreter: Interpreter) -> list[Path]:
    """The ``.pyc`` of every ``.py`` under ``root``; raises unless each one exists, carries the
    interpreter's magic number and is an unchecked-hash pyc."""
    compiled, wrong = [], []
    for source in sorted(root.rglob("*.py")):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{interpreter.cache_tag}.pyc"
        header = pyc.read_bytes()[:8] if pyc.is_file() else b""
        if header[:4] != interpreter.magic or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            wrong.append(source.relative_to(root))
        compiled.append(pyc)
    if wrong:
        raise BytecodeBuildFailed(
            f"{len(wrong)} module(s) under {root} have no unchecked-hash Python {interpreter.version} bytecode: "
            + ", ".join(map(str, wrong[:10]))
        )
    return compiled
