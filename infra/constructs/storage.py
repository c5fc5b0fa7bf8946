"""The one way FinOps Guard keeps state in DynamoDB: on-demand, point-in-time recovery, encrypted,
retained when the stack is deleted (ledgers, budgets and alert history outlive a redeploy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct


@dataclass(frozen=True)
class GlobalIndex:
    """A global secondary index with string keys that projects every attribute."""

    name: str
    partition_key: str
    sort_key: str | None = None


def state_table(
    scope: Construct,
    construct_id: str,
    *,
    table_name: str,
    partition_key: str,
    sort_key: str | None = None,
    ttl_attribute: str | None = None,
    global_indexes: Sequence[GlobalIndex] = (),
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """String keys; `ttl_attribute` lets DynamoDB expire items that carry it (epoch seconds);
    `stream` turns on a DynamoDB stream with that view of each changed item."""
    table = dynamodb.Table(
        scope,
        construct_id,
        table_name=table_name,
        partition_key=_string_attribute(partition_key),
        sort_key=_string_attribute(sort_key) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=ttl_attribute,
        stream=stream,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for index in global_indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_string_attribute(index.partition_key),
            sort_key=_string_attribute(index.sort_key) if index.sort_key else None,
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


def _string_attribute(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
