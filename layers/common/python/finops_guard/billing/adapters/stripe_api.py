"""Every Stripe API call FinOps Guard makes, through one StripeClient.

The secret key (sk_... or a restricted rk_...) comes from Secrets Manager as a plain string and is
read on first use, cached while warm. `api_base` points the client at a Stripe-compatible server
(tests, `make demo`); production leaves it unset and talks to api.stripe.com.

Every call that creates or moves money or documents takes an idempotency key the caller derives
from its own record (an invoice request id, an alert's retry number), never a random one: a Lambda
retry of the same work replays Stripe's first answer instead of charging or invoicing twice.
Results are plain dicts. Stripe's 4xx answers become `StripeRequestError` (the caller's fault or
the object's state; not worth retrying), a declined payment `StripeCardError`; connection errors,
429 and 5xx are retried by the stripe library (max_network_retries), then `StripeUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

NETWORK_RETRIES = 2
TIMEOUT_S = 20
PAGE_SIZE = 100


class StripeRequestError(RuntimeError):
    """Stripe refused the request (4xx): unknown id, wrong state, invalid parameter."""

    def __init__(self, message: str, *, status: int | None, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class StripeCardError(StripeRequestError):
    """The payment was declined (card_declined, insufficient_funds, ...)."""


class StripeUnavailable(RuntimeError):
    """Stripe could not be reached or answered 5xx/429 after the library's retries: try again later."""


class StripeApi:
    def __init__(
        self,
        api_key: Callable[[], str],
        *,
        api_base: str | None = None,
        client: Any | None = None,
        refresh_key: Callable[[], str] | None = None,
    ) -> None:
        self._api_key = api_key
        self._refresh_key = refresh_key  # reads the key again (not from a cache) after Stripe refused it
        self._api_base = api_base
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import stripe

            bases = {"api": self._api_base} if self._api_base else None
            self._client = stripe.StripeClient(
                self._api_key(),
                base_addresses=bases,  # type: ignore[arg-type]
                max_network_retries=NETWORK_RETRIES,
                http_client=stripe.RequestsClient(timeout=TIMEOUT_S),
            )
        return self._client

    # --- invoices ---------------------------------------------------------------------------------

    def create_invoice(
        self,
        *,
        customer: str,
        currency: str,
        description: str,
        days_until_due: int,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """A draft invoice that is e-mailed to the customer (collection_method=send_invoice)."""
        params = {
            "customer": customer,
            "currency": currency.lower(),
            "description": description,
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "auto_advance": False,  # we finalize and send it ourselves, now
            "pending_invoice_items_behavior": "exclude",
            "metadata": dict(metadata),
        }
        return self._call(lambda: self.client.v1.invoices.create(params, {"idempotency_key": idempotency_key}))

    def add_invoice_item(
        self,
        *,
        invoice: str,
        customer: str,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        params = {
            "invoice": invoice,
            "customer": customer,
            "amount": amount_minor,
            "currency": currency.lower(),
            "description": description,
        }
        return self._call(lambda: self.client.v1.invoice_items.create(params, {"idempotency_key": idempotency_key}))

    def finalize_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            lambda: self.client.v1.invoices.finalize_invoice(
                invoice, {"auto_advance": False}, {"idempotency_key": idempotency_key}
            )
        )

    def send_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            lambda: self.client.v1.invoices.send_invoice(invoice, None, {"idempotency_key": idempotency_key})
        )

    def pay_invoice(self, invoice: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._call(lambda: self.client.v1.invoices.pay(invoice, None, {"idempotency_key": idempotency_key}))

    def retrieve_invoice(self, invoice: str) -> dict[str, Any]:
        return self._call(lambda: self.client.v1.invoices.retrieve(invoice))

    def list_invoices(self, *, created_gte: int) -> Iterator[dict[str, Any]]:
        """Every invoice created at or after `created_gte` (epoch seconds), all pages, newest first."""
        page = self._call_raw(
            lambda: self.client.v1.invoices.list({"created": {"gte": created_gte}, "limit": PAGE_SIZE})
        )
        invoices = iter(page.auto_paging_iter())  # fetches the next page when one runs out: map its errors too
        while (invoice := self._call_raw(lambda: next(invoices, None))) is not None:
            yield invoice.to_dict()

    # --- customers --------------------------------------------------------------------------------

    def create_portal_session(self, *, customer: str, return_url: str) -> dict[str, Any]:
        # A portal session is a short-lived link, not money or a document: no idempotency key needed.
        params = {"customer": customer, "return_url": return_url}
        return self._call(lambda: self.client.v1.billing_portal.sessions.create(params))

    # --- errors -----------------------------------------------------------------------------------

    def _call(self, request: Callable[[], Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call_raw(request).to_dict()
        return result

    def _call_raw(self, request: Callable[[], Any]) -> Any:
        import stripe

        try:
            return request()
        except stripe.CardError as error:
            raise StripeCardError(_message(error), status=error.http_status, code=error.code) from None
        except stripe.AuthenticationError as error:
            self._client = None  # the key was rolled: the next call builds a client with the key read again
            if self._refresh_key is not None:
                self._api_key = self._refresh_key
            raise StripeRequestError(_message(error), status=error.http_status, code=error.code) from None
        except (stripe.InvalidRequestError, stripe.IdempotencyError, stripe.PermissionError) as error:
            raise StripeRequestError(_message(error), status=error.http_status, code=error.code) from None
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
            raise StripeUnavailable(f"Stripe unavailable: {type(error).__name__} {error.http_status or ''}") from None


def _message(error: Any) -> str:
    """Stripe's own message (never contains the key), without the request id noise."""
    return str(getattr(error, "user_message", None) or getattr(error, "_message", None) or type(error).__name__)


def invoice_link(invoice: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(hosted invoice page, PDF) of a finalized invoice."""
    return invoice.get("hosted_invoice_url"), invoice.get("invoice_pdf")


def read_stripe_api_key(secret_name: str, *, refresh: bool = False) -> str:
    """The Stripe secret key, a plain string (sk_... or rk_...), cached for the container's life and
    read again after Stripe refuses it (a rolled key). Never logged."""
    from finops_guard.core.adapters.secrets import secret_text

    text = secret_text(secret_name, refresh=refresh) or ""
    if not text.startswith(("sk_", "rk_")):
        raise StripeRequestError(
            f"Stripe API key secret '{secret_name}' does not hold an sk_/rk_ key yet: put-secret-value it",
            status=None,
            code="api_key_missing",
        )
    return text
