"""`finops-guard local serve`: the Stripe webhook endpoint on 127.0.0.1 over the embedded AWS.

    finops-guard local serve --port 8787 --secret whsec_...        # the secret `stripe listen` prints
    stripe listen --forward-to http://127.0.0.1:8787/stripe/webhook

POST /stripe/webhook runs functions/stripe_webhook/handler.py exactly as API Gateway would call it;
other methods answer 405. GET /ledger?month=YYYY-MM and GET /alerts show what was recorded.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.embedded_aws import EmbeddedAws
from devtools.lambda_runner import FakeContext, load_handler
from devtools.stripe_events import TEST_SECRET, api_gateway_event

STAGE = "local"


class LocalBilling:
    """The embedded AWS with the billing tables and signing secret, and the handlers wired to it."""

    def __init__(self, aws: EmbeddedAws, secret: str = TEST_SECRET, thresholds: dict[str, str] | None = None) -> None:
        self.aws = aws
        self.tables = aws.create_billing_tables(STAGE)
        secret_name = f"finops-guard/{STAGE}/stripe-webhook-secret"
        aws.put_secret(secret_name, secret)
        os.environ.update(
            {
                "FINOPSGUARD_STRIPE_SECRET_NAME": secret_name,
                "FINOPSGUARD_STRIPE_PREVIOUS_SECRET_NAME": f"{secret_name}-previous",
                "FINOPSGUARD_STRIPE_EVENTS_TABLE": self.tables["events"],
                "FINOPSGUARD_LEDGER_TABLE": self.tables["ledger"],
                "FINOPSGUARD_BILLING_OBJECTS_TABLE": self.tables["objects"],
                "FINOPSGUARD_BILLING_ALERTS_TABLE": self.tables["alerts"],
                "FINOPSGUARD_DUNNING_TABLE": self.tables["dunning"],
                "FINOPSGUARD_INVOICE_REQUESTS_TABLE": self.tables["invoice_requests"],
                "FINOPSGUARD_BILLING_THRESHOLDS": json.dumps(
                    thresholds or {"USD": "1000", "EUR": "1000", "JPY": "150000"}
                ),
                "POWERTOOLS_METRICS_NAMESPACE": "FinOpsGuard",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "stripe-webhook",
            }
        )
        from finops_guard.billing import runtime

        runtime.billing_settings.cache_clear()
        runtime.billing_store.cache_clear()
        self.handler = load_handler("stripe_webhook")
        self._lock = threading.Lock()

    def webhook(self, body: str, headers: dict[str, str], method: str = "POST") -> tuple[int, str]:
        if method != "POST":
            return 405, json.dumps({"message": "method not allowed"})
        signature = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        request = api_gateway_event(body, signature=signature, method=method)
        reply = self.handler.lambda_handler(request, FakeContext(f"finops-guard-{STAGE}-stripe-webhook", timeout_s=15))
        return reply["statusCode"], reply["body"]

    def ledger(self, month: str) -> list[dict[str, Any]]:
        from finops_guard.billing import runtime

        return runtime.billing_store().ledger_for_month(month)

    def open_alerts(self) -> list[dict[str, Any]]:
        from finops_guard.billing import runtime

        return runtime.billing_store().open_alerts()


def make_server(billing: LocalBilling, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (port 0 = any free port) in front of the webhook handler."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            if self.path.rstrip("/") != "/stripe/webhook":
                self._reply(404, '{"message": "not found"}')
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8", "replace")
            self._reply(*billing.webhook(body, dict(self.headers)))

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/ledger"):
                month = self.path.partition("month=")[2][:7]
                self._reply(200, json.dumps(billing.ledger(month), default=str))
            elif self.path.startswith("/alerts"):
                self._reply(200, json.dumps(billing.open_alerts(), default=str))
            else:
                self._reply(405, '{"message": "method not allowed"}')

        def _not_allowed(self) -> None:
            self._reply(405, '{"message": "method not allowed"}')

        do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def serve(port: int, secret: str) -> None:
    aws = EmbeddedAws().start()
    with aws.activated():
        server = make_server(LocalBilling(aws, secret), port)
        print(f"Stripe webhook endpoint: http://127.0.0.1:{port}/stripe/webhook (embedded AWS at {aws.endpoint})")
        print(f"  stripe listen --forward-to http://127.0.0.1:{port}/stripe/webhook")
        print("  GET /ledger?month=YYYY-MM, GET /alerts; Ctrl-C to stop")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            aws.stop()
