"""The cost-reporting code must neither ship nor import stripe (billing has its own layer)."""

import ast
import os
import subprocess
import sys

from tests.conftest import ROOT

REPORT_CODE = [ROOT / "functions" / "weekly_report", ROOT / "layers" / "common" / "python" / "finops_guard"]


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


# The modules allowed to import stripe, used only by the billing functions: signature verification,
# and the one Stripe API adapter.
STRIPE_MODULES = {
    ROOT / "layers" / "common" / "python" / "finops_guard" / "billing" / "stripe_webhook.py",
    ROOT / "layers" / "common" / "python" / "finops_guard" / "billing" / "adapters" / "stripe_api.py",
}


def test_only_the_billing_adapter_imports_stripe():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in REPORT_CODE
        for path in folder.rglob("*.py")
        if path not in STRIPE_MODULES and any(name.split(".")[0] == "stripe" for name in imported_modules(path))
    ]
    assert offenders == []


def test_no_cost_reporting_function_loads_the_billing_modules():
    for function in ("weekly_report", "budget_guard", "anomaly_alerts"):
        code = (
            f"import sys; sys.path[:0] = ['functions/{function}', 'layers/common/python'];"
            "import handler; print([m for m in sys.modules if m.split('.')[0] == 'stripe'"
            " or m in ('finops_guard.billing.stripe_webhook', 'finops_guard.billing.stripe_ledger')])"
        )
        env = {**os.environ, "POWERTOOLS_SERVICE_NAME": function}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env
        )
        assert out.stdout.strip() == "[]", function


def test_report_layer_does_not_ship_stripe():
    requirements = (ROOT / "layers" / "report_deps" / "requirements.txt").read_text().lower()
    assert "stripe" not in [line.split("==")[0].strip() for line in requirements.splitlines()]
    assert "stripe" in (ROOT / "layers" / "billing_deps" / "requirements.txt").read_text()


def test_importing_the_report_handler_loads_no_stripe_module():
    code = (
        "import sys; sys.path[:0] = ['functions/weekly_report', 'layers/common/python'];"
        "import handler; print(any(m == 'stripe' or m.startswith('stripe.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_report_handler_does_not_load_other_functions_code_at_import():
    """Cold start: adapters only other functions use are imported lazily (see finops_guard.costs.runtime)."""
    code = (
        "import sys; sys.path[:0] = ['functions/weekly_report', 'layers/common/python'];"
        "import handler; print(sorted(m for m in sys.modules if m.startswith('finops_guard')))"
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "weekly-report"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    loaded = set(eval(out.stdout))  # noqa: S307 - our own subprocess printing a list literal
    assert not loaded & {
        "finops_guard.costs.adapters.anomaly_store",
        "finops_guard.core.adapters.notify",
        "finops_guard.costs.budget_guard",
        "finops_guard.costs.anomaly_alerts",
        "finops_guard.cli",
        "finops_guard.core.preview",
    }
