"""The policy evaluator the infra tests rely on, checked on small hand-written templates: it must be
able to say no."""

from __future__ import annotations

from typing import Any

import pytest
from policy_eval import (
    ACCOUNT,
    OTHER_ACCOUNT,
    Decision,
    PolicyEvaluator,
    Request,
    Template,
    Unsupported,
    role,
    service,
)

pytestmark = pytest.mark.infra

ROOT = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
TLS_ONLY = {
    "Sid": "TlsOnly",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:Publish",
    "Resource": {"Ref": "Topic"},
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
TLS = {"aws:SecureTransport": True}


def template(
    *,
    topic_statements: list[dict[str, Any]] | None = None,
    key_statements: list[dict[str, Any]] | None = None,
    role_statements: list[dict[str, Any]] | None = None,
    trust_statements: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A topic with its policy, a key, and a role with one identity policy."""
    document = {"Version": "2012-10-17"}
    return {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}},
            "TopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "Topic"}],
                    "PolicyDocument": document | {"Statement": topic_statements or [TLS_ONLY]},
                },
            },
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": document
                    | {
                        "Statement": key_statements
                        if key_statements is not None
                        else [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}]
                    }
                },
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "publisher",
                    "AssumeRolePolicyDocument": document
                    | {
                        "Statement": trust_statements
                        or [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "scheduler.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                            }
                        ]
                    },
                },
            },
            "RolePolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "publisher",
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": document
                    | {
                        "Statement": role_statements
                        or [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::elsewhere/*"}]
                    },
                },
            },
        }
    }


def evaluator(**kwargs: Any) -> PolicyEvaluator:
    return PolicyEvaluator(template(**kwargs))


def allow_service(name: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": name},
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
    } | ({"Condition": condition} if condition else {})


THIS_ACCOUNT = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
CLOUDWATCH = service("cloudwatch.amazonaws.com")


# --- intrinsics -------------------------------------------------------------------------------


def test_intrinsics_resolve_with_fixed_pseudo_parameters() -> None:
    t = Template(template())

    assert t.resolve({"Ref": "Topic"}) == f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"
    assert t.resolve({"Fn::GetAtt": ["Role", "Arn"]}) == f"arn:aws:iam::{ACCOUNT}:role/publisher"
    assert t.resolve(ROOT) == f"arn:aws:iam::{ACCOUNT}:root"
    assert t.resolve({"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${Topic.TopicName}"}) == (
        f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"
    )
    assert t.resolve({"Fn::Sub": ["${Name}-${!Literal}", {"Name": {"Ref": "Role"}}]}) == "publisher-${Literal}"


def test_an_intrinsic_it_does_not_model_raises() -> None:
    with pytest.raises(Unsupported, match="Fn::FindInMap"):
        Template(template()).resolve({"Fn::FindInMap": ["Topics", "alerts", "arn"]})


def exporting(export_name: str, value: Any) -> dict[str, Any]:
    """The test template plus an output exporting ``value`` as ``export_name`` (as a core stack does)."""
    return template() | {"Outputs": {"Exported": {"Value": value, "Export": {"Name": export_name}}}}


def test_an_import_resolves_to_the_value_its_export_names() -> None:
    t = Template(exporting("core-topic-arn", {"Ref": "Topic"}))

    assert t.resolve({"Fn::ImportValue": "core-topic-arn"}) == f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"
    assert t.resolve({"Fn::Join": [":", [{"Fn::ImportValue": "core-topic-arn"}, "x"]]}).endswith(":alerts:x")


def test_an_import_no_output_exports_raises() -> None:
    # Not an output without an Export: only exported values can be imported.
    t = Template(template() | {"Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}})

    with pytest.raises(Unsupported, match="Fn::ImportValue 'TopicArn'"):
        t.resolve({"Fn::ImportValue": "TopicArn"})


def test_a_role_may_use_an_imported_resource_its_identity_policy_names() -> None:
    imported_topic = {"Fn::ImportValue": "core-topic-arn"}
    statement = {"Effect": "Allow", "Action": "sns:Publish", "Resource": imported_topic}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    base = exporting("core-topic-arn", {"Ref": "Topic"})
    base["Resources"]["RolePolicy"]["Properties"]["PolicyDocument"] = document
    policies = PolicyEvaluator(base)
    publisher = role(policies.arn("Role"))

    assert policies.is_allowed(publisher, "sns:Publish", policies.topic_arn("Topic"), TLS)
    assert not policies.is_allowed(publisher, "sns:Publish", f"arn:aws:sns:eu-west-1:{ACCOUNT}:other", TLS)


def test_an_attribute_it_does_not_model_raises() -> None:
    with pytest.raises(Unsupported, match="Fn::GetAtt RoleId"):
        Template(template()).resolve({"Fn::GetAtt": ["Role", "RoleId"]})


# --- service principals against a resource policy ----------------------------------------------


def test_a_service_the_topic_policy_does_not_name_is_implicitly_denied() -> None:
    policies = evaluator()

    outcome = policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic"), TLS)

    assert outcome.decision is Decision.IMPLICIT_DENY


def test_explicit_deny_beats_an_allow() -> None:
    policies = evaluator(topic_statements=[TLS_ONLY, allow_service("cloudwatch.amazonaws.com")])
    topic = policies.topic_arn("Topic")

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, TLS)
    outcome = policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {"aws:SecureTransport": False})
    assert outcome.decision is Decision.EXPLICIT_DENY


def test_a_condition_fails_when_the_request_lacks_its_key() -> None:
    policies = evaluator(topic_statements=[allow_service("costalerts.amazonaws.com", THIS_ACCOUNT)])
    topic, costalerts = policies.topic_arn("Topic"), service("costalerts.amazonaws.com")

    assert policies.is_allowed(costalerts, "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT})
    assert not policies.is_allowed(costalerts, "sns:Publish", topic, {})
    assert not policies.is_allowed(costalerts, "sns:Publish", topic, {"aws:SourceAccount": OTHER_ACCOUNT})


def test_condition_keys_are_case_insensitive_and_values_are_not() -> None:
    policies = evaluator(
        topic_statements=[allow_service("costalerts.amazonaws.com", {"StringEquals": {"AWS:SourceAccount": "abc"}})]
    )
    topic, costalerts = policies.topic_arn("Topic"), service("costalerts.amazonaws.com")

    assert policies.is_allowed(costalerts, "sns:Publish", topic, {"aws:sourceaccount": "abc"})
    assert not policies.is_allowed(costalerts, "sns:Publish", topic, {"aws:SourceAccount": "ABC"})


def test_if_exists_holds_without_the_key_and_still_checks_a_present_one() -> None:
    condition = {"StringEqualsIfExists": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    policies = evaluator(topic_statements=[allow_service("cloudwatch.amazonaws.com", condition)])
    topic = policies.topic_arn("Topic")

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {})
    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT})
    assert not policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {"aws:SourceAccount": OTHER_ACCOUNT})


def test_a_negated_operator_holds_when_the_key_is_missing() -> None:
    deny_others = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
        "Condition": {"StringNotEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }
    policies = evaluator(topic_statements=[deny_others, allow_service("cloudwatch.amazonaws.com")])
    topic = policies.topic_arn("Topic")

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT})
    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {}).decision is Decision.EXPLICIT_DENY


def test_arn_like_matches_each_arn_part_on_its_own() -> None:
    alarms = {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:App-qa-*"}
    policies = evaluator(
        topic_statements=[allow_service("cloudwatch.amazonaws.com", {"ArnLike": {"aws:SourceArn": alarms}})]
    )
    topic = policies.topic_arn("Topic")

    def publish(alarm_arn: str) -> bool:
        return policies.is_allowed(CLOUDWATCH, "sns:Publish", topic, {"aws:SourceArn": alarm_arn}).allowed

    assert publish(f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:App-qa-Errors")
    assert publish(f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:App-qa-a:b")  # the last part may hold colons
    assert not publish(f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:App-prod-Errors")
    assert not publish(f"arn:aws:cloudwatch:eu-west-1:{OTHER_ACCOUNT}:alarm:App-qa-Errors")
    assert not publish(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:App-qa-Errors")
    assert not publish("App-qa-Errors")


def test_actions_match_case_insensitively_with_wildcards() -> None:
    statement = allow_service("cloudwatch.amazonaws.com") | {"Action": ["SNS:Pub?ish", "sqs:*"]}
    policies = evaluator(topic_statements=[statement])
    topic = policies.topic_arn("Topic")

    assert policies.is_allowed(CLOUDWATCH, "sns:publish", topic)
    assert not policies.is_allowed(CLOUDWATCH, "sns:Subscribe", topic)


def test_not_action_and_not_resource_invert_the_match() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "NotAction": "sns:Subscribe",
        "NotResource": "arn:aws:sns:*:*:other-*",
    }
    policies = evaluator(topic_statements=[statement])

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic"))
    assert not policies.is_allowed(CLOUDWATCH, "sns:Subscribe", policies.topic_arn("Topic"))


def test_resources_match_with_wildcards_case_sensitively() -> None:
    statement = allow_service("cloudwatch.amazonaws.com") | {"Resource": "arn:aws:sns:*:*:al?rts"}
    policies = evaluator(topic_statements=[statement])

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic"))
    statement["Resource"] = "arn:aws:sns:*:*:ALERTS"
    assert not evaluator(topic_statements=[statement]).is_allowed(
        CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic")
    )


def test_not_principal_deny_spares_the_named_principal_only() -> None:
    deny_all_but_cloudwatch = {
        "Effect": "Deny",
        "NotPrincipal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
    }
    allow_both = allow_service("cloudwatch.amazonaws.com") | {
        "Principal": {"Service": ["cloudwatch.amazonaws.com", "costalerts.amazonaws.com"]}
    }
    policies = evaluator(topic_statements=[deny_all_but_cloudwatch, allow_both])
    topic = policies.topic_arn("Topic")

    assert policies.is_allowed(CLOUDWATCH, "sns:Publish", topic)
    outcome = policies.is_allowed(service("costalerts.amazonaws.com"), "sns:Publish", topic)
    assert outcome.decision is Decision.EXPLICIT_DENY


@pytest.mark.parametrize("operator", ["NumericLessThan", "ForAnyValue:StringLike", "DateGreaterThan", "NullIfExists"])
def test_an_operator_it_does_not_model_raises_even_in_a_statement_that_does_not_apply(operator: str) -> None:
    unrelated = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Subscribe",
        "Resource": {"Ref": "Topic"},
        "Condition": {operator: {"aws:SourceAccount": "1"}},
    }
    policies = evaluator(topic_statements=[unrelated, allow_service("cloudwatch.amazonaws.com")])

    with pytest.raises(Unsupported, match="operator"):
        policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic"))


def test_an_element_it_does_not_model_raises() -> None:
    policies = evaluator(topic_statements=[allow_service("cloudwatch.amazonaws.com") | {"Effect": "Audit"}])

    with pytest.raises(Unsupported, match="Effect"):
        policies.is_allowed(CLOUDWATCH, "sns:Publish", policies.topic_arn("Topic"))


# --- roles of this account --------------------------------------------------------------------

PUBLISH = {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "Topic"}}
USE_KEY = {
    "Effect": "Allow",
    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": {"Fn::GetAtt": ["Key", "Arn"]},
}


def test_a_role_publishes_through_its_identity_policy_when_the_topic_policy_only_denies_plain_http() -> None:
    policies = evaluator(role_statements=[PUBLISH])
    publisher, topic = role(policies.arn("Role")), policies.topic_arn("Topic")

    assert policies.is_allowed(publisher, "sns:Publish", topic, TLS)
    outcome = policies.is_allowed(publisher, "sns:Publish", topic, {"aws:SecureTransport": False})
    assert outcome.decision is Decision.EXPLICIT_DENY


def test_a_role_without_an_identity_allow_is_implicitly_denied() -> None:
    policies = evaluator()

    outcome = policies.is_allowed(role(policies.arn("Role")), "sns:Publish", policies.topic_arn("Topic"), TLS)

    assert outcome.decision is Decision.IMPLICIT_DENY


def test_naming_the_account_in_a_resource_policy_only_delegates_to_identity_policies() -> None:
    allow_account = {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
    }
    policies = evaluator(topic_statements=[allow_account])

    assert not policies.is_allowed(role(policies.arn("Role")), "sns:Publish", policies.topic_arn("Topic"), TLS)


def test_a_resource_policy_naming_the_role_allows_it_without_an_identity_policy() -> None:
    allow_role = {
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
    }
    policies = evaluator(topic_statements=[allow_role])

    assert policies.is_allowed(role(policies.arn("Role")), "sns:Publish", policies.topic_arn("Topic"), TLS)


def test_an_identity_deny_beats_a_resource_allow() -> None:
    allow_role = {
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
        "Action": "sns:Publish",
        "Resource": {"Ref": "Topic"},
    }
    policies = evaluator(topic_statements=[allow_role], role_statements=[PUBLISH | {"Effect": "Deny"}])

    outcome = policies.is_allowed(role(policies.arn("Role")), "sns:Publish", policies.topic_arn("Topic"), TLS)

    assert outcome.decision is Decision.EXPLICIT_DENY


# --- SMS: a publish to a phone number ---------------------------------------------------------

PHONE = "+15555550100"
PUBLISH_ANYWHERE = {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
NO_SNS_ARN = {
    "Effect": "Deny",
    "Action": "sns:Publish",
    "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sns:*:*:*"]]},
}


def test_a_phone_number_is_allowed_by_resource_star_and_by_no_sns_arn_pattern() -> None:
    # IAM authorises an SMS against the number itself: "arn:aws:sns:*:*:*" does not cover it.
    sns_arns_only = evaluator(role_statements=[PUBLISH_ANYWHERE | {"Resource": NO_SNS_ARN["Resource"]}])
    anywhere = evaluator(role_statements=[PUBLISH_ANYWHERE])

    assert not sns_arns_only.is_allowed(role(sns_arns_only.arn("Role")), "sns:Publish", PHONE)
    assert anywhere.is_allowed(role(anywhere.arn("Role")), "sns:Publish", PHONE)


def test_a_deny_on_every_sns_arn_leaves_phone_numbers_and_refuses_every_topic() -> None:
    policies = evaluator(role_statements=[PUBLISH_ANYWHERE, NO_SNS_ARN])
    publisher = role(policies.arn("Role"))

    assert policies.is_allowed(publisher, "sns:Publish", PHONE)
    for topic in (policies.topic_arn("Topic"), f"arn:aws:sns:us-east-1:{OTHER_ACCOUNT}:anything"):
        assert policies.is_allowed(publisher, "sns:Publish", topic, TLS).decision is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(("action", "resource"), [("sns:Subscribe", PHONE), ("sns:Publish", "5555550100")])
def test_only_a_publish_to_an_e164_number_is_taken_for_an_sms(action: str, resource: str) -> None:
    policies = evaluator(role_statements=[PUBLISH_ANYWHERE])

    with pytest.raises(Unsupported, match="not an ARN"):
        policies.is_allowed(role(policies.arn("Role")), action, resource)


# --- KMS key policies -------------------------------------------------------------------------


def test_a_role_uses_a_key_when_the_key_policy_delegates_to_iam_and_its_identity_policy_allows() -> None:
    policies = evaluator(role_statements=[USE_KEY])

    assert policies.is_allowed(role(policies.arn("Role")), "kms:GenerateDataKey", policies.arn("Key"))


def test_an_identity_allow_is_not_enough_when_the_key_policy_does_not_delegate() -> None:
    only_cloudwatch = [
        {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}
    ]
    policies = evaluator(key_statements=only_cloudwatch, role_statements=[USE_KEY])

    outcome = policies.is_allowed(role(policies.arn("Role")), "kms:Decrypt", policies.arn("Key"))

    assert outcome.decision is Decision.IMPLICIT_DENY


def test_the_key_policy_delegation_alone_does_not_let_a_role_use_the_key() -> None:
    policies = evaluator(role_statements=[PUBLISH])

    assert not policies.is_allowed(role(policies.arn("Role")), "kms:Decrypt", policies.arn("Key"))


def test_a_service_needs_its_own_key_policy_statement_the_account_statement_does_not_cover_it() -> None:
    policies = evaluator()

    assert not policies.is_allowed(CLOUDWATCH, "kms:GenerateDataKey", policies.arn("Key"))

    with_cloudwatch = evaluator(
        key_statements=[
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            }
        ]
    )
    assert with_cloudwatch.is_allowed(CLOUDWATCH, "kms:GenerateDataKey", with_cloudwatch.arn("Key"))
    assert not with_cloudwatch.is_allowed(CLOUDWATCH, "kms:Encrypt", with_cloudwatch.arn("Key"))


# --- trust policies ---------------------------------------------------------------------------


def test_a_trust_policy_lets_only_its_service_of_this_account_assume_the_role() -> None:
    policies = evaluator()
    role_arn = policies.arn("Role")
    scheduler = service("scheduler.amazonaws.com")

    assert policies.is_allowed(scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": ACCOUNT})
    assert not policies.is_allowed(scheduler, "sts:AssumeRole", role_arn, {"aws:SourceAccount": OTHER_ACCOUNT})
    assert not policies.is_allowed(service("lambda.amazonaws.com"), "sts:AssumeRole", role_arn, {})


# --- role paths, event buses, requests across accounts -----------------------------------------------


def test_a_roles_path_is_part_of_its_arn() -> None:
    with_path = template()
    with_path["Resources"]["Role"]["Properties"]["Path"] = "/finops-guard/qa/payer-reader/"

    assert (
        Template(with_path).get_att("Role", "Arn")
        == f"arn:aws:iam::{ACCOUNT}:role/finops-guard/qa/payer-reader/publisher"
    )
    with_path["Resources"]["Role"]["Properties"]["Path"] = "no-slashes"
    with pytest.raises(Unsupported, match="role path"):
        Template(with_path).get_att("Role", "Arn")


def cross_account_trust(condition: dict[str, Any]) -> dict[str, Any]:
    """The resource account's template: a role trusting OTHER_ACCOUNT's roles under ``condition``."""
    trusted = {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}
    return template(
        trust_statements=[{"Effect": "Allow", "Principal": trusted, "Action": "sts:AssumeRole", "Condition": condition}]
    )


def caller_template(resource: str) -> PolicyEvaluator:
    """OTHER_ACCOUNT's template: its role ``publisher`` may assume ``resource``."""
    statements = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}]
    return PolicyEvaluator(Template(template(role_statements=statements), account=OTHER_ACCOUNT))


def test_across_accounts_both_the_trust_and_the_callers_identity_policy_must_allow() -> None:
    condition = {"StringEquals": {"sts:ExternalId": "e" * 32}}
    owner = PolicyEvaluator(cross_account_trust(condition))
    target = owner.arn("Role")
    caller = caller_template(target)
    principal = role(caller.arn("Role"))
    request = Request(principal, "sts:AssumeRole", target, {"sts:ExternalId": "e" * 32})

    assert owner.evaluate_cross_account(request, caller)
    assert not owner.evaluate_cross_account(Request(principal, "sts:AssumeRole", target, {}), caller)
    no_grant = caller_template(f"arn:aws:iam::{ACCOUNT}:role/another")
    assert not owner.evaluate_cross_account(request, no_grant)
    # The trust names the account: without that account's identity policies it allows nothing by itself.
    assert owner.evaluate(request).decision is Decision.IMPLICIT_DENY
    with pytest.raises(Unsupported, match="no role of the caller's template"):
        owner.evaluate_cross_account(Request(role(f"arn:aws:iam::{ACCOUNT}:role/x"), "sts:AssumeRole", target), caller)


def test_a_principal_arn_condition_narrows_an_account_trust_to_a_role_path() -> None:
    owner = PolicyEvaluator(
        cross_account_trust({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/readers/*"}})
    )
    target = owner.arn("Role")
    caller = caller_template(target)

    assert not owner.evaluate_cross_account(Request(role(caller.arn("Role")), "sts:AssumeRole", target), caller)
    on_path = template(role_statements=[{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}])
    on_path["Resources"]["Role"]["Properties"]["Path"] = "/readers/"
    reader = PolicyEvaluator(Template(on_path, account=OTHER_ACCOUNT))
    assert owner.evaluate_cross_account(Request(role(reader.arn("Role")), "sts:AssumeRole", target), reader)


def bus_template(condition: dict[str, Any], bus: str = "default") -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": "events:PutEvents",
        "Resource": f"arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/{bus}",
        "Condition": condition,
    }
    policy = {"Type": "AWS::Events::EventBusPolicy", "Properties": {"EventBusName": bus, "StatementId": "s",
                                                                      "Statement": statement}}  # fmt: skip
    base = template()
    base["Resources"]["BusPolicy"] = policy
    return base


def test_an_event_bus_policy_admits_the_named_rule_of_the_other_account_only() -> None:
    rule = f"arn:aws:events:us-east-1:{OTHER_ACCOUNT}:rule/forward"
    owner = PolicyEvaluator(bus_template({"ArnEquals": {"aws:SourceArn": rule}}))
    bus = f"arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/default"
    caller_statements = [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]
    caller = PolicyEvaluator(Template(template(role_statements=caller_statements), account=OTHER_ACCOUNT))
    sender = role(caller.arn("Role"))

    def put(resource: str, source_arn: str) -> Any:
        request = Request(sender, "events:PutEvents", resource, {"aws:SourceArn": source_arn})
        return owner.evaluate_cross_account(request, caller)

    assert put(bus, rule)
    assert not put(bus, rule.replace("forward", "other"))
    assert not put(bus.replace("default", "custom"), rule)  # no policy on that bus
    assert not put(bus.replace("eu-west-1", "us-east-1"), rule)  # the same name in another region
    with pytest.raises(Unsupported, match="events resource"):
        owner.is_allowed(sender, "events:PutRule", f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/forward")
