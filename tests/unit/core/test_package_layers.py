"""Two products on one foundation: core never imports a half, and neither half imports the other.

Every import of every module counts, also the lazy ones inside functions and under TYPE_CHECKING.
Only the top-level front doors (cli*, preflight, adapters/account_facts) may import both halves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "layers" / "common" / "python" / "finops_guard"
HALVES = ("costs", "billing")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved; `from a import b`
    counts as `a.b` so a submodule imported by name is seen."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> str | None:
    """core, costs, billing, top (the front doors), or None for anything outside finops_guard."""
    parts = module.split(".")
    if parts[0] != "finops_guard":
        return None
    if len(parts) > 1 and parts[1] in ("core", *HALVES):
        return parts[1]
    return "top" if len(parts) > 1 else None


def forbidden(importer: str, imported: str) -> bool:
    if importer == "core":
        return imported in ("top", *HALVES)
    if importer in HALVES:
        return imported == "top" or (imported in HALVES and imported != importer)
    return False


def violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        importer = layer_of(module_name(path, root))
        for line, imported in imports_of(path, root):
            target = layer_of(imported)
            if importer and target and forbidden(importer, target):
                found.append(f"{path.relative_to(root.parent)}:{line} ({importer}) imports {imported} ({target})")
    return found


def test_core_imports_no_half_and_no_half_imports_the_other():
    assert violations() == []


def test_every_module_belongs_to_a_layer_and_the_front_doors_are_few():
    top = sorted(module_name(p) for p in PACKAGE.rglob("*.py") if layer_of(module_name(p)) == "top")
    assert top == [
        "finops_guard.adapters",
        "finops_guard.adapters.account_facts",
        "finops_guard.adapters.deployment",
        "finops_guard.adapters.deployment_health",
        "finops_guard.cli",
        "finops_guard.cli_doctor",
        "finops_guard.cli_errors",
        "finops_guard.cli_preflight",
        "finops_guard.cli_savings",
        "finops_guard.cli_stage",
        "finops_guard.cli_teams",
        "finops_guard.doctor",
        "finops_guard.preflight",
    ]


@pytest.mark.parametrize(
    ("where", "statement", "layer"),
    [
        ("core/money.py", "from finops_guard.costs.kpis import ratio", "costs"),
        ("core/delivery.py", "    from finops_guard.billing import runtime  # lazy", "billing"),
        ("costs/report.py", "from finops_guard.billing.invoice_bot import IssuedInvoice", "billing"),
        ("billing/dunning.py", "import finops_guard.costs.teams", "costs"),
        ("billing/api.py", "from ..costs import settings", "costs"),
        ("costs/kpis.py", "from finops_guard import cli", "top"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path, where, statement, layer):
    """The check can fail: a copy of the package with one bad import (also a lazy or relative one)."""
    copy = tmp_path / "finops_guard"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    bad = copy / where
    body = statement if not statement.startswith(" ") else f"def _lazy():\n{statement}\n"
    bad.write_text(bad.read_text() + "\n" + body + "\n")
    found = violations(copy)
    assert len(found) == 1 and found[0].endswith(f"({layer})")
