"""An embedded AWS: moto's ThreadedMotoServer on 127.0.0.1, with helpers to seed what FinOps Guard reads."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from contextlib import contextmanager
from typing import Any

import boto3

REGION = "eu-west-1"


class EmbeddedAws:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
        self._server.start()
        self._one_request_at_a_time()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def _one_request_at_a_time(self) -> None:
        """DynamoDB checks and applies a conditional write as one step; moto's threaded server does
        not lock its backends, so two concurrent conditional writes could both pass its check. Serving
        one request at a time gives the handlers DynamoDB's per-request atomicity (the concurrency
        tests rely on it); requests are short, so nothing waits long."""
        wsgi_server = self._server._server  # werkzeug's server; its request handlers read `.app`
        assert wsgi_server is not None
        app, lock = wsgi_server.app, threading.Lock()

        def atomic(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            with lock:
                return list(app(environ, start_response))

        wsgi_server.app = atomic

    def stop(self) -> None:
        self._server.stop()

    def environ(self) -> dict[str, str]:
        """Variables that point boto3 (and so the handlers, unchanged) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's fixed fake credentials
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    @contextmanager
    def activated(self):
        saved = {k: os.environ.get(k) for k in self.environ()}
        os.environ.update(self.environ())
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106
        )

    def _post(self, path: str, body: dict[str, Any] | None = None) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback moto endpoint
            f"{self.endpoint}{path}", data=json.dumps(body or {}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def reset(self) -> None:
        self._post("/moto-api/reset")

    def seed_cost_and_usage(self, pages: list[dict[str, Any]], account_id: str | None = None) -> None:
        """Queue GetCostAndUsage answers: each distinct request takes the next page. ``account_id``: the
        account whose Cost Explorer answers (moto's default account unless given; a request signed with an
        assumed role's credentials is answered by the role's account)."""
        body: dict[str, Any] = {"results": pages} | ({"account_id": account_id} if account_id else {})
        self._post("/moto-api/static/ce/cost-and-usage-results", body)

    def forget_cost_and_usage(self, account: str = "123456789012") -> None:
        """Forget the answers moto gave (it answers a request it has seen with the same answer again):
        Cost Explorer a few days later, when the same request's answer has changed (an estimated month
        finalised). The server runs in this process, so its backend is at hand."""
        from moto.ce.models import ce_backends

        backend = ce_backends[account]["global"]
        backend.cost_usage_results.clear()
        backend.cost_usage_results_queue.clear()

    def create_outbox_table(self, name: str = "finops-guard-outbox") -> str:
        """Same key schema as the CDK outbox table."""
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "message_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def create_budget_tables(self, stage: str = "test") -> tuple[str, str]:
        """The budgets and budget-alerts tables, with the CDK key schemas."""
        budgets, alerts = f"finops-guard-{stage}-budgets", f"finops-guard-{stage}-budget-alerts"
        dynamodb = self.client("dynamodb")
        for name, (pk, sk) in ((budgets, ("pk", "budget_id")), (alerts, ("budget_id", "alert_key"))):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": pk, "AttributeType": "S"},
                    {"AttributeName": sk, "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        return budgets, alerts

    def create_team_routes_table(self, stage: str = "test") -> str:
        """The team routes table, with the CDK key schema (pk, sk)."""
        return self._pk_sk_table(f"finops-guard-{stage}-team-routes")

    def create_recommendations_table(self, stage: str = "test") -> str:
        """The savings recommendations table, with the CDK key schema (pk, sk)."""
        return self._pk_sk_table(f"finops-guard-{stage}-recommendations")

    def _pk_sk_table(self, name: str) -> str:
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def create_export_bucket(self, name: str = "finops-guard-test-exports") -> str:
        """A versioned bucket, as the stack's export buckets are."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def create_anomalies_table(self, stage: str = "test") -> str:
        name = f"finops-guard-{stage}-anomalies"
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "anomaly_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "anomaly_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def create_billing_tables(self, stage: str = "test") -> dict[str, str]:
        """The billing tables with the CDK key schemas, indexes and the alerts stream."""
        specs = {
            "events": ("stripe-events", "event_id", None, []),
            "ledger": ("billing-ledger", "customer_id", "entry_key", [("by-month", "month", "entry_key")]),
            "objects": ("billing-objects", "object_id", None, [("by-type", "object_type", "object_id")]),
            "alerts": ("billing-alerts", "alert_id", None, [("by-status", "status", "opened_at")]),
            "dunning": ("dunning", "invoice_id", "step", [("by-due", "status", "due_at")]),
            "invoice_requests": ("invoice-requests", "request_id", None, []),
        }
        dynamodb = self.client("dynamodb")
        names = {}
        for role, (suffix, pk, sk, indexes) in specs.items():
            name = f"finops-guard-{stage}-{suffix}"
            keys = [{"AttributeName": pk, "KeyType": "HASH"}] + (
                [{"AttributeName": sk, "KeyType": "RANGE"}] if sk else []
            )
            attributes = {pk, *([sk] if sk else []), *(a for _, *pair in indexes for a in pair)}
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": keys,
                "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if indexes:
                request["GlobalSecondaryIndexes"] = [
                    {
                        "IndexName": index,
                        "KeySchema": [
                            {"AttributeName": h, "KeyType": "HASH"},
                            {"AttributeName": r, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for index, h, r in indexes
                ]
            if role == "alerts":
                request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            dynamodb.create_table(**request)
            names[role] = name
        return names

    def stream_records(self, table: str) -> list[dict[str, Any]]:
        """Every record of a table's DynamoDB stream so far, as Lambda's event source would pass them."""
        streams = self.client("dynamodbstreams")
        arn = self.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator)
                records.extend(page["Records"])
                iterator = page.get("NextShardIterator") if page["Records"] else None
        return [{**r, "eventSourceARN": arn} for r in records]

    def capture_queue(self, name: str) -> tuple[str, str]:
        """An SQS queue to observe what is published (SNS subscription or EventBridge target)."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def alert_topic_with_capture(self, name: str = "finance-alerts") -> tuple[str, str]:
        """An SNS topic (for budget e-mails) whose messages land in a queue; returns (topic ARN, queue URL)."""
        topic = self.client("sns").create_topic(Name=name)["TopicArn"]
        url, arn = self.capture_queue(f"{name}-capture")
        self.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return topic, url

    def budget_exceeded_capture(self) -> str:
        """An EventBridge rule on the default bus for `Budget Exceeded`, delivering to a queue."""
        url, arn = self.capture_queue("budget-exceeded-capture")
        events = self.client("events")
        events.put_rule(
            Name="budget-exceeded",
            EventPattern=json.dumps({"source": ["finops.guard"], "detail-type": ["Budget Exceeded"]}),
        )
        events.put_targets(Rule="budget-exceeded", Targets=[{"Id": "capture", "Arn": arn}])
        return url

    def seed_budget_costs(
        self,
        budgets: Any,
        as_of: Any,
        *,
        scale: dict[str, Any] | None = None,
        metric: Any = None,
        extras: Any = None,
    ) -> int:
        """Queue synthetic answers for exactly the requests the guard will make, in its order, in
        `metric` (a CostMetric; default unblended), with `extras` (mock_data.Extras) when given."""
        from finops_guard.costs.budget_costs import plan_queries
        from finops_guard.costs.cost_metric import DEFAULT_METRIC
        from finops_guard.costs.mock_data import DEFAULT_EXTRAS, synthetic_query_pages

        pages = [
            page
            for query in plan_queries(budgets, as_of, metric=metric or DEFAULT_METRIC)
            for page in synthetic_query_pages(query.request(), scale=scale, extras=extras or DEFAULT_EXTRAS)
        ]
        self.seed_cost_and_usage(pages)
        return len(pages)

    def put_secret(self, name: str, value: str) -> str:
        return self.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
