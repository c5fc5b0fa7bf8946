"""The one way FinOps Guard keeps state in DynamoDB: on-demand, point-in-time recovery, encrypted,
retained when the stack is deleted (ledgers, budgets and alert history outlive a redeploy); and the
one way it keeps files in S3: private, TLS only, encrypted, versioned, access-logged, retained.

Retained means RetainExceptOnCreate: a deploy that fails while creating the stack removes what it
created (plain Retain would keep the fixed-name tables and block every retry with "already exists"),
while a deleted stack leaves its data behind. After `cdk destroy`, a redeploy adopts the kept tables
with `cdk deploy --import-existing-resources` (`finops-guard preflight` says when).

Tables that hold money or history also have DynamoDB deletion protection: nobody deletes them, not
CloudFormation either. A failed first create therefore cannot remove them: its rollback ends in
ROLLBACK_FAILED with those (empty) tables kept; the stack is then deleted and the retry adopts them,
exactly as after a destroy (README, Deploy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
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
    deletion_protection: bool,
) -> dynamodb.Table:
    """String keys; `ttl_attribute` lets DynamoDB expire items that carry it (epoch seconds);
    `stream` turns on a DynamoDB stream with that view of each changed item. `deletion_protection`
    (required, so each table states it): the table holds money or history that nothing else can
    rebuild, so DynamoDB refuses to delete it until someone turns the protection off."""
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
        deletion_protection=deletion_protection,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
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


def access_log_bucket(scope: Construct, construct_id: str, *, expire_after: Duration) -> s3.Bucket:
    """A bucket for S3 server access logs, which expire ``expire_after`` their delivery."""
    # S3 server access logging writes to its target only with SSE-S3 default encryption (not SSE-KMS).
    # cdk-nag's S1 exempts a log target bucket: logging it to itself would log its own deliveries.
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=expire_after)],
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


def report_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    access_logs_prefix: str,
    noncurrent_rule_id: str,
    keep_noncurrent: Duration,
) -> s3.Bucket:
    """A bucket of reports (CSV exports): overwriting or re-running keeps the earlier version for
    ``keep_noncurrent``; current versions are kept until someone deletes them."""
    # SSE-S3 rather than a customer managed KMS key: the reports hold amounts and ids, no card data,
    # access is already limited by IAM, the bucket policy and the public access block, and a CMK would
    # add a monthly key fee and a kms:Decrypt grant for every reader (and for every pre-signed link).
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=[
            s3.LifecycleRule(id=noncurrent_rule_id, noncurrent_version_expiration=keep_noncurrent),
        ],
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


def use_outbox_statement(outbox_table: dynamodb.ITable) -> iam.PolicyStatement:
    """What every posting function needs of the chat outbox: its claim, delivered and failed marks
    are all UpdateItem. Reading kept messages back (get, scan) is the operator CLI's job."""
    return iam.PolicyStatement(sid="UseOutbox", actions=["dynamodb:UpdateItem"], resources=[outbox_table.table_arn])
