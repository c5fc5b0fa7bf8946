"""Deploy-time custom resources (CloudFormation): adopt the account's services anomaly monitor and API
Gateway CloudWatch role when they exist, and open the weekly report's first deadline.

Every request gets an answer, SUCCESS or FAILED with a one-line reason: an unanswered custom resource
holds the stack for an hour. Decisions: finops_guard/core/deploy_setup.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from finops_guard.core.adapters.deploy_setup import (
    ApiGatewayAccountSettings,
    CloudWatchMetricSink,
    CostAnomalyMonitors,
    response_body,
    send_response,
)
from finops_guard.core.deploy_setup import Outcome, Ports, SetupError, failure_reason, handle, parse_request

if TYPE_CHECKING:  # a type only: Powertools' typing module is not loaded at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"finops_guard"})
PORTS = Ports(monitors=CostAnomalyMonitors(), api_gateway=ApiGatewayAccountSettings(), metrics=CloudWatchMetricSink())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome: Outcome | None = None
    reason = ""
    try:
        request = parse_request(event)
        outcome = handle(request, PORTS, datetime.now(UTC))
        reason = outcome.note
        logger.info("custom resource answered", extra={"type": request.resource_type, "note": outcome.note})
    except SetupError as error:
        reason = failure_reason(error)
        logger.error("custom resource refused", extra={"reason": reason})
    except Exception as error:  # noqa: BLE001 - any failure must reach CloudFormation as FAILED
        reason = failure_reason(error)
        logger.exception("custom resource failed", extra={"reason": reason})
    try:
        send_response(
            event if isinstance(event, dict) else {},
            response_body(event if isinstance(event, dict) else {}, outcome, reason),
        )
    except Exception:  # noqa: BLE001 - nothing else can reach CloudFormation; the log says why
        logger.exception("could not answer CloudFormation")
        return {"answered": False}
    return {"answered": True, "status": "SUCCESS" if outcome else "FAILED"}
