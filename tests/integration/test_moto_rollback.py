"""The benchmark's item-level rollback keeps moto's transaction semantics: all or nothing."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models

from devtools.moto_rollback import item_level_rollback

pytestmark = pytest.mark.integration


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        for name, keys in (("plain", ["pk"]), ("ranged", ["pk", "sk"])):
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        client.put_item(TableName="plain", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        client.put_item(TableName="ranged", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        yield client


def items(client, table):
    return sorted(client.scan(TableName=table)["Items"], key=str)


def test_a_cancelled_transaction_restores_updated_and_removes_put_items(dynamodb):
    before = {t: items(dynamodb, t) for t in ("plain", "ranged")}
    with item_level_rollback(), pytest.raises(ClientError) as error:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {"Update": {"TableName": "ranged", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET n = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                {"Put": {"TableName": "plain", "Item": {"pk": {"S": "b"}}}},
                {"ConditionCheck": {"TableName": "plain", "Key": {"pk": {"S": "missing"}},
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )  # fmt: skip
    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert {t: items(dynamodb, t) for t in ("plain", "ranged")} == before


def test_a_committed_transaction_is_kept_and_the_patch_is_undone(dynamodb):
    original = models.DynamoDBBackend.transact_write_items
    with item_level_rollback():
        assert models.DynamoDBBackend.transact_write_items is not original
        dynamodb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "plain", "Item": {"pk": {"S": "b"}},
                                    "ConditionExpression": "attribute_not_exists(pk)"}}]
        )  # fmt: skip
    assert models.DynamoDBBackend.transact_write_items is original
    assert models.copy.deepcopy.__module__ == "copy"
    assert [i["pk"]["S"] for i in items(dynamodb, "plain")] == ["a", "b"]
