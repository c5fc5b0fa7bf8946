"""Answer one AWS operation moto does not implement (Cost Explorer's ListCostAllocationTags), while
every other operation of the same client still goes to moto.

botocore's Stubber answers every operation of a client, so it cannot sit on the client the handler
also uses for GetCostAndUsage. This answers only `method`, validating each answer against the service
model as the Stubber does (botocore itself validates the request), and records the requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class OperationStub:
    def __init__(self, client: Any, method: str, answer: Answer) -> None:
        self.client = client
        self.operation = client.meta.method_to_api_mapping[method]
        self.output_shape = client.meta.service_model.operation_model(self.operation).output_shape
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self._id = f"operation-stub-{id(self)}"

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def _respond(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        response = self.answer(self.requests[-1])
        validate_parameters(response, self.output_shape)
        return AWSResponse(None, 200, {}, None), response

    def __enter__(self) -> OperationStub:
        events = self.client.meta.events
        events.register(f"before-parameter-build.*.{self.operation}", self._record, unique_id=f"{self._id}-params")
        events.register_first(f"before-call.*.{self.operation}", self._respond, unique_id=f"{self._id}-call")
        return self

    def __exit__(self, *_: Any) -> None:
        events = self.client.meta.events
        events.unregister(f"before-parameter-build.*.{self.operation}", unique_id=f"{self._id}-params")
        events.unregister(f"before-call.*.{self.operation}", unique_id=f"{self._id}-call")


def cost_allocation_tags(statuses: dict[str, str]) -> Answer:
    """ListCostAllocationTags as Cost Explorer answers it: the asked keys Billing knows, with their status."""

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        asked = request.get("TagKeys") or list(statuses)
        known = [k for k in asked if k in statuses]
        return {"CostAllocationTags": [{"TagKey": k, "Type": "UserDefined", "Status": statuses[k]} for k in known]}

    return answer
