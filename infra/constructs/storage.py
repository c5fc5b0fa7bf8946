"""The one way FinOps Guard keeps state in DynamoDB: on-demand, point-in-time recovery, encrypted,
retained when the stack is deleted (ledgers, budgets and alert history outlive a redeploy)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct


def state_table(
    scope: Construct,
    construct_id: str,
    *,
    table_name: str,
    partition_key: str,
    sort_key: str | None = None,
    ttl_attribute: str | None = None,
) -> dynamodb.Table:
    """String keys; `ttl_attribute` lets DynamoDB expire items that carry it (epoch seconds)."""
    return dynamodb.Table(
        scope,
        construct_id,
        table_name=table_name,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=ttl_attribute,
        removal_policy=RemovalPolicy.RETAIN,
    )
