"""Every function's cold import has a budget: what its handler loads beyond `import boto3`.

`make bench` times the imports the way Lambda runs them (devtools/bench_lambda.py: every function
<= 1.5 x `import boto3`, the weekly report and the Stripe webhook <= 1.3 x). Timing is too noisy for a
test on a shared machine; the modules loaded are not. So each function's count of modules loaded
beyond boto3's is guarded here, with what no function may load at all. A new import that breaks a
budget is a choice: measure what it costs (`python -m devtools.bench_lambda --importtime weekly-report`),
load it where it is used if not every run needs it, or raise the budget here and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Modules loaded by `import handler` after `import boto3` (finops_guard, Powertools, stdlib), as measured
# when the budgets were set, plus 2. Powertools alone is 42 of them in every function. Raised when the
# cards took one style: the billing notifier shows instants in the stage's time zone (zoneinfo, formats:
# +5); the chargeback card and the savings refresh share the cards' one forecast (outlook, statistics:
# +4, +3). Every cost function that reads Cost Explorer creates its client through the payer-role factory
# (costs/adapters/payer_account.py: +1). Issue 19: each one reads amounts in the deployment's cost metric
# and keeps credits, refunds and tax apart in every request (cost_metric, record_types: +2); the cards of
# the weekly report, the budget guard and the chargeback name them (cards/charges.py: +1); only the weekly
# report loads the breakdown (breakdown.py: +1). Each of these is small and used on every run. The
# forecast names a step's day in the cards' style (core.formats: +1 for the savings refresh). Issue 22:
# the budget guard and the chargeback ask whether the daily digest and the month-close are on
# (cadence_runtime, cadence_settings: +2 for the guard; the chargeback's budget held them); the tap, the
# digest and the month-close load only when one is on.
BUDGETS = {
    "anomaly_alerts": 78,
    "billing_admin": 72,
    "billing_notifier": 72,
    "budget_guard": 92,
    "chargeback": 91,
    "deploy_setup": 58,
    "dunning_sender": 65,
    "reconciliation": 72,
    "savings_refresh": 87,
    "stripe_webhook": 66,
    "weekly_report": 93,
}
COST_FUNCTIONS = ("anomaly_alerts", "budget_guard", "chargeback", "savings_refresh", "weekly_report")
# requests and its stack (the chat poster uses urllib3, which botocore loads anyway); stripe (loaded by
# the billing functions when they call Stripe); what only a type annotation or an error message needs.
NEVER_AT_COLD_START = (
    "requests",
    "charset_normalizer",
    "idna",
    "http.cookiejar",
    "stripe",
    "difflib",
    "aws_lambda_powertools.utilities.typing",
)

_LOADED = """
import json, sys
sys.path[:0] = [sys.argv[1], "layers/common/python"]
import boto3
before = set(sys.modules)
import handler
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_every_function_has_a_budget() -> None:
    assert sorted(BUDGETS) == sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "handler.py").is_file())


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """What each handler loads beyond boto3, each in a fresh interpreter."""
    found = {}
    for function in BUDGETS:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))}
        env["POWERTOOLS_SERVICE_NAME"] = function
        done = subprocess.run([sys.executable, "-c", _LOADED, f"functions/{function}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        found[function] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("function", sorted(BUDGETS))
def test_a_functions_cold_import_stays_within_its_budget(function: str, loaded: dict[str, list[str]]) -> None:
    modules = loaded[function]

    assert len(modules) <= BUDGETS[function], f"{function} loads {len(modules)} modules beyond boto3: {modules}"


@pytest.mark.parametrize("function", sorted(BUDGETS))
def test_no_function_loads_requests_stripe_or_type_only_modules_at_cold_start(
    function: str, loaded: dict[str, list[str]]
) -> None:
    assert [m for m in loaded[function] if m.startswith(NEVER_AT_COLD_START)] == []


@pytest.mark.parametrize("function", COST_FUNCTIONS)
def test_no_cost_function_loads_billing_code(function: str, loaded: dict[str, list[str]]) -> None:
    assert [m for m in loaded[function] if m.startswith("finops_guard.billing")] == []


def test_the_weekly_report_loads_neither_the_slack_card_nor_the_synthetic_data() -> None:
    # Slack is off by default, and synthetic data is the client smoke test's: loaded when used.
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "weekly_report"}
    done = subprocess.run([sys.executable, "-c", _LOADED, "functions/weekly_report"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    modules = json.loads(done.stdout)

    assert "finops_guard.costs.cards.teams" in modules
    assert "finops_guard.costs.cards.slack" not in modules
    assert "finops_guard.costs.mock_data" not in modules


@pytest.mark.parametrize("function", ["budget_guard", "chargeback", "anomaly_alerts", "savings_refresh"])
def test_only_the_weekly_report_loads_the_report_and_its_attribution(
    function: str, loaded: dict[str, list[str]]
) -> None:
    assert not {"finops_guard.costs.report", "finops_guard.costs.attribution"} & set(loaded[function])
