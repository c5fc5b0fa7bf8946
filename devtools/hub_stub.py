"""Cost Optimization Hub without AWS: moto does not implement it, so botocore's Stubber answers,
validating every response against the service model.

The pages in events/ are the service's JSON wire output (timestamps as epoch seconds); `hub_page`
turns one into exactly what boto3 returns, with botocore's own response parser.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session
from botocore.parsers import create_parser
from botocore.stub import Stubber

from devtools.lambda_runner import ROOT

EVENTS = ROOT / "events"


def hub_page(name: str, **changes: Any) -> dict[str, Any]:
    """events/cost_optimization_hub_list_recommendations_<name>.json, parsed as botocore parses it."""
    body = json.loads((EVENTS / f"cost_optimization_hub_list_recommendations_{name}.json").read_text())
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    model = botocore.session.get_session().get_service_model("cost-optimization-hub")
    shape = model.operation_model("ListRecommendations").output_shape
    parsed = create_parser("json").parse({"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}, shape)
    parsed.pop("ResponseMetadata")
    return parsed


def stub_listing(stubber: Stubber, *pages: dict[str, Any]) -> None:
    """Queue one listing: each page is expected with the nextToken the previous page gave."""
    from finops_guard.costs.adapters.cost_optimization_hub import PAGE_SIZE

    token = None
    for page in pages:
        expected = {"maxResults": PAGE_SIZE, **({"nextToken": token} if token else {})}
        stubber.add_response("list_recommendations", page, expected)
        token = page.get("nextToken")


def fake_client(service: str) -> Any:
    """A client that can never reach AWS (dummy credentials); meant to sit behind a Stubber."""
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")  # fmt: skip  # noqa: S106
