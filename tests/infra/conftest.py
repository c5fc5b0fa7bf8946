"""Shared synth fixtures for the infra tests: each cloud assembly is built once per session."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # app.py/infra live at the repository root, not in a package
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.stack import FinOpsGuardStack, create_stack  # noqa: E402

# Every optional feature switched on, and values that differ from the cdk.json defaults.
FULL_CONTEXT = {
    "stage": "qa",
    "timezone": "Europe/Madrid",
    "currency": "EUR",
    "topN": "7",  # CLI -c values arrive as strings
    "monthlyBudget": "1500.50",
    "opsAlarmEmail": "oncall@example.com",
    "slackEnabled": "true",
    "owner": "cloud-platform",
    "costCenter": "cc-4711",
}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    app: App
    stack: FinOpsGuardStack
    outdir: Path
    template_json: dict[str, Any]

    @property
    def template(self) -> Template:
        return Template.from_json(self.template_json)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None, *, bundle: bool = False) -> Synth:
    """Synthesize the real app (cdk.json context + overrides) the way app.py does."""
    context = {**cdk_json_context(), **(overrides or {})}
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    app = App(context=context, outdir=str(outdir))
    stack = create_stack(app)
    assembly = app.synth()
    template_path = Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)
    return Synth(app, stack, outdir, json.loads(template_path.read_text()))


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def full_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-full"), FULL_CONTEXT)
