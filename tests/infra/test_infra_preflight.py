"""`finops-guard preflight` checks what the synthesized stacks really create: every fixed-name resource that
outlives its stack, in the stack that creates it, the bootstrap version the cloud assembly requires, the
context keys as infra/config.py reads them, and the alarm `finops-guard paging-check` sets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from conftest import FULL_CONTEXT, Synth, cdk_json_context, logical_id, synthesize, topic_id_of
from finops_guard.preflight import (
    MIN_BOOTSTRAP_VERSION,
    PreflightConfig,
    default_paging_alarm,
    ops_topic_name,
    parse_config,
)

from infra.config import FinOpsGuardConfig

pytestmark = pytest.mark.infra

RETAINED = ("Retain", "RetainExceptOnCreate")
# A new version under the same name is how layers work: a leftover layer never collides.
NEVER_COLLIDES = ("AWS::Lambda::LayerVersion",)
# Properties that name something other than the resource itself.
NOT_PHYSICAL_NAMES = ("DisplayName", "MetricName", "IndexName", "AttributeName", "KeyName")


def fixed_names(resource: dict[str, Any]) -> list[str]:
    """The resource's static physical names (TableName, Name of a secret, BucketName, ...)."""
    return [
        value
        for key, value in resource.get("Properties", {}).items()
        if (key == "Name" or key.endswith("Name")) and key not in NOT_PHYSICAL_NAMES and isinstance(value, str)
    ]


def outliving(synth: Synth) -> dict[str, str]:
    """Fixed name -> resource type, for every resource a destroyed or failed stack can leave behind."""
    return {
        name: resource["Type"]
        for resource in synth.template_json["Resources"].values()
        if resource.get("DeletionPolicy") in RETAINED and resource["Type"] not in NEVER_COLLIDES
        for name in fixed_names(resource)
    }


def preflight_config(synth: Synth, context: dict[str, Any]) -> PreflightConfig:
    merged = {**cdk_json_context(), **context}
    return parse_config(synth.stack.config.stage, merged)


@pytest.fixture(params=["default", "full"])
def synth_and_context(request, default_synth, full_synth) -> tuple[Synth, dict[str, Any]]:
    return (default_synth, {}) if request.param == "default" else (full_synth, FULL_CONTEXT)


def test_preflight_checks_every_fixed_name_that_outlives_the_stack(synth_and_context):
    synth, context = synth_and_context
    checked = {r.name for r in preflight_config(synth, context).named_resources()}

    left_behind = outliving(synth)

    assert len(left_behind) >= 16, left_behind  # the tables and secrets at least: the test is not vacuous
    assert set(left_behind) - checked == set(), "preflight does not look for these leftovers"


def test_only_tables_are_auto_importable_and_secrets_take_the_cdk_import_path(synth_and_context):
    """CloudFormation auto-imports (ImportExistingResources) a type only when its primary identifier is a
    property the template sets: preflight offers --import-existing-resources for tables and `cdk import`
    for secrets. A new kind of leftover needs a decision here and in preflight."""
    synth, _ = synth_and_context

    auto_importable = {}
    for resource_type in set(outliving(synth).values()):
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
        primary = [p.removeprefix("/properties/") for p in schema["primaryIdentifier"]]
        read_only = {p.removeprefix("/properties/") for p in schema.get("readOnlyProperties", [])}
        auto_importable[resource_type] = not read_only.intersection(primary)

    assert auto_importable == {"AWS::DynamoDB::Table": True, "AWS::SecretsManager::Secret": False}


def test_no_resource_that_outlives_the_stack_gets_its_name_at_deploy_time(synth_and_context):
    """A name built from Refs would collide on a redeploy as well, and ImportExistingResources (static
    custom names only) could not adopt it: preflight would have nothing to offer."""
    synth, _ = synth_and_context

    built = [
        (logical, key)
        for logical, resource in synth.template_json["Resources"].items()
        if resource.get("DeletionPolicy") in RETAINED and resource["Type"] not in NEVER_COLLIDES
        for key, value in resource.get("Properties", {}).items()
        if (key == "Name" or key.endswith("Name")) and key not in NOT_PHYSICAL_NAMES and not isinstance(value, str)
    ]

    assert built == []


def test_preflight_checks_only_names_the_stack_creates(synth_and_context):
    synth, context = synth_and_context
    in_template = {name for resource in synth.template_json["Resources"].values() for name in fixed_names(resource)}

    for resource in preflight_config(synth, context).named_resources():
        assert resource.name in in_template, resource


def test_preflight_reads_the_context_as_infra_config_does(synth_and_context):
    synth, context = synth_and_context
    merged = {**cdk_json_context(), **context}
    infra = FinOpsGuardConfig.from_context({k: v for k, v in merged.items() if v is not None})

    ours = parse_config(infra.stage, merged)

    assert ours.slack_enabled == infra.slack_enabled
    assert ours.team_routing == (infra.team_dimension is not None)
    assert ours.anomaly_service_monitor == infra.anomaly_service_monitor
    assert ours.anomaly_monitor_arns == infra.anomaly_monitor_arns
    assert bool(ours.custom_monitor_keys) == infra.creates_custom_anomaly_monitors
    assert ours.dunning_sender_email == infra.dunning_sender_email
    assert ours.attribution_tag_keys == tuple(
        d.removeprefix("tag:") for d in infra.attribution_dimensions if d.startswith("tag:")
    )


def test_preflight_looks_for_each_name_in_the_stack_that_creates_it(synth_and_context):
    """Ownership and the `cdk import` of a leftover secret are per stack: preflight must know which."""
    synth, context = synth_and_context
    config = preflight_config(synth, context)
    creates = {
        name: part.stack.stack_name
        for part in synth.parts
        for resource in part.template_json["Resources"].values()
        for name in fixed_names(resource)
    }

    assert config.stack_names == tuple(stack.stack_name for stack in synth.stacks.all)
    assert {r.name: r.stack for r in config.named_resources()} == {
        r.name: creates[r.name] for r in config.named_resources()
    }


def test_team_routing_off_has_no_team_webhooks_secret_to_look_for(tmp_path):
    context = {**cdk_json_context(), "teamDimension": "null"}
    synth = synthesize(tmp_path, {"teamDimension": "null"})

    checked = {r.name for r in parse_config("dev", context).named_resources()}

    assert "finops-guard/dev/team-webhooks" not in checked
    assert set(outliving(synth)) - checked == set()
    assert "finops-guard/dev/team-webhooks" in {
        r.name for r in parse_config("dev", cdk_json_context()).named_resources()
    }


def _required_versions(node: Any) -> list[int]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("requiresBootstrapStackVersion", "minimumBootstrapStackVersion")]
        return [int(v) for v in found] + [n for v in node.values() for n in _required_versions(v)]
    if isinstance(node, list):
        return [n for v in node for n in _required_versions(v)]
    return []


def test_min_bootstrap_version_is_the_highest_the_cloud_assembly_requires(default_synth, full_synth):
    required = [
        version
        for synth in (default_synth, full_synth)
        for version in _required_versions(json.loads((synth.outdir / "manifest.json").read_text()))
    ]

    assert required, "the manifest names no bootstrap version"
    assert MIN_BOOTSTRAP_VERSION == max(required)


def test_the_paging_check_alarm_pages_the_ops_topic_and_returns_to_ok_by_itself(default_synth):
    stage = default_synth.stack.config.stage
    lid = logical_id(default_synth, "AWS::CloudWatch::Alarm", "AlarmName", default_paging_alarm(stage))
    alarm = default_synth.template_json["Resources"][lid]["Properties"]

    # The core's alarm: a stage with only one product deployed has it too.
    assert lid in default_synth.core.template_json["Resources"]
    topic = {"Ref": topic_id_of(default_synth, ops_topic_name(stage).removeprefix(f"finops-guard-{stage}-"))}

    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm.get("ActionsEnabled", True) is True
    assert topic in alarm["AlarmActions"]
    assert topic in alarm["OKActions"]
