"""A Stripe-compatible API on 127.0.0.1 for the tests, the bench and `make demo`.

It speaks what stripe-python sends (form-encoded bodies in bracket notation, Bearer key, Idempotency-Key)
and answers JSON shaped from Stripe's own fixtures (devtools/stripe_fixtures.json), for the calls
FinOps Guard makes: invoices (create, items, finalize, send, pay, retrieve, list with cursor
pagination), billing portal sessions, and customers. State lives in memory.

Like Stripe: a POST replayed with an Idempotency-Key seen before (same path, same params) gets the first
answer back without touching state or emitting events again; the same key with other params is an
idempotency_error. Results are not stored for requests refused before "the endpoint started" (missing
or invalid parameters, unknown ids, a wrong key, injected faults), so a retry after those runs for real;
refusals due to an object's state and card declines are stored and replayed, as on Stripe.

Events (invoice.created, .finalized, .sent, .paid, .payment_failed) go to the `on_event` callbacks
once the reply is produced and state committed, before its bytes are written: when a stripe call
returns, its events have been delivered. Callbacks of concurrent requests may run concurrently; a
callback may call the fake again. An exception in a callback is kept in `callback_errors`, not raised.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from finops_guard.core.money import ISO_4217

from devtools import stripe_events

log = logging.getLogger(__name__)

ACCOUNT = "acct_fake"
DEFAULT_LIMIT, MAX_LIMIT = 10, 100
DEFAULT_DAYS_UNTIL_DUE = 30
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
REQUEST_TIMEOUT_S = 30  # an idle or stuck client connection never holds a server thread longer
_ID_CHARS = string.ascii_letters + string.digits

# Parameters Stripe accepts on each endpoint (anything else is `parameter_unknown`, as on Stripe).
_INVOICE_CREATE = frozenset(
    "account_tax_ids application_fee_amount auto_advance automatic_tax automatically_finalizes_at collection_method "
    "currency custom_fields customer customer_account days_until_due default_payment_method default_source "
    "default_tax_rates description discounts due_date effective_at expand footer from_invoice issuer metadata "
    "number on_behalf_of payment_settings pending_invoice_items_behavior rendering shipping_cost shipping_details "
    "statement_descriptor subscription transfer_data".split()
)
_ITEM_CREATE = frozenset(
    "amount currency customer customer_account description discountable discounts expand invoice metadata period "
    "price_data pricing quantity subscription tax_behavior tax_code tax_rates unit_amount_decimal".split()
)
_INVOICE_LIST = frozenset(
    "collection_method created customer customer_account due_date ending_before expand limit starting_after status "
    "subscription".split()
)
_PORTAL_CREATE = frozenset(
    "configuration customer customer_account expand flow_data locale on_behalf_of return_url".split()
)
_CUSTOMER_CREATE = frozenset(
    "address balance description email expand invoice_prefix invoice_settings metadata name phone "
    "preferred_locales shipping tax_exempt".split()
)
_PAY = frozenset("expand forgive mandate off_session paid_out_of_band payment_method source".split())
_FINALIZE = frozenset(("auto_advance", "expand"))
_EXPAND_ONLY = frozenset(("expand",))


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int


class StripeFakeError(Exception):
    """An error answer in Stripe's shape. `stored`: kept for idempotent replays (the endpoint ran)."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
        extra: dict[str, Any] | None = None,
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.stored = stored
        self.events = events or []
        self.body = {"error": {"type": error_type, "code": code, "message": message, "param": param, **(extra or {})}}


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeFakeError:
    """A refusal of the request's parameters: Stripe stores no idempotent result for those."""
    return StripeFakeError(400, "invalid_request_error", message, code=code, param=param, stored=False)


def _state_error(message: str, *, param: str | None = None, code: str | None = None) -> StripeFakeError:
    """A refusal because of the object's state: the endpoint ran, the answer is replayed."""
    return StripeFakeError(400, "invalid_request_error", message, code=code, param=param)


def _missing(kind: str, object_id: str, param: str) -> StripeFakeError:
    # Not stored for replays: creating the missing object and retrying with the same key then works.
    return StripeFakeError(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param,
        stored=False,
    )  # fmt: skip


def _fault(status: int) -> StripeFakeError:
    if status == 401:
        return StripeFakeError(401, "invalid_request_error", "Invalid API Key provided", stored=False)
    if status == 402:
        return StripeFakeError(402, "card_error", "Your card was declined.", code="card_declined", stored=False)
    if status == 409:
        return StripeFakeError(409, "invalid_request_error", "This object cannot be accessed right now "
                               "because another API request or Stripe process is currently accessing it.",
                               code="lock_timeout", stored=False)  # fmt: skip
    if status == 429:
        return StripeFakeError(429, "invalid_request_error", "Request rate limit exceeded.", code="rate_limit",
                               stored=False)  # fmt: skip
    if status >= 500:
        return StripeFakeError(status, "api_error", "An unknown error occurred (injected by the fake).", stored=False)
    return _invalid("Injected failure.")


# --- request parsing ------------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_params(text: str) -> dict[str, Any]:
    """Stripe's form encoding into nested values: `metadata[k]=v` -> {"metadata": {"k": "v"}},
    `expand[0]=a` or `expand[]=a` -> {"expand": ["a"]}, `created[gte]=1` -> {"created": {"gte": "1"}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))] if match else [key]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1]
        node[str(len(node)) if last == "" else last] = value
    return {key: _listify(value, key == "metadata") for key, value in root.items()}


def _listify(value: Any, is_metadata: bool) -> Any:
    if not isinstance(value, dict):
        return value
    nested = {key: _listify(item, is_metadata=False) for key, item in value.items()}
    if not is_metadata and nested and all(key.isdigit() for key in nested):
        return [nested[key] for key in sorted(nested, key=int)]
    return nested


def _allowed(params: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise _invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise _invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
    if not isinstance(value, str):
        raise _invalid(f"Invalid string: {name}", param=name, code="parameter_invalid_string")
    return value


def _integer(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise _invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")


def _boolean(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return bool(value == "true")
    raise _invalid(f"Invalid boolean: {value}", param=param)


def _currency(value: str, param: str = "currency") -> str:
    if value.upper() not in ISO_4217:
        raise _invalid(f"Invalid currency: {value}.", param=param)
    return value.lower()


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    value = params.get("metadata")
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid("Invalid metadata: must be a hash of strings", param="metadata")
    return {key: item for key, item in value.items() if item != ""}


# --- object templates -----------------------------------------------------------------------------


@cache
def _shared_fixtures() -> dict[str, Any]:
    path = stripe_events.SHARED_FIXTURES
    return json.loads(path.read_text())["resources"] if path.exists() else {}


def _fixture(name: str) -> dict[str, Any]:
    found = stripe_events.fixtures().get(name) or _shared_fixtures().get(name)
    if found is None:
        raise LookupError(
            f"Stripe fixture {name!r} missing: add it to stripe_events.FIXTURE_NAMES and run "
            "`python -m devtools.stripe_events --refresh-fixtures`"
        )
    return copy.deepcopy(found)


def new_id(prefix: str) -> str:
    return f"{prefix}_1{''.join(secrets.choice(_ID_CHARS) for _ in range(23))}"


def hosted_invoice_url(invoice_id: str) -> str:
    return f"https://invoice.stripe.com/i/{ACCOUNT}/{invoice_id}"


def invoice_pdf_url(invoice_id: str) -> str:
    return f"https://pay.stripe.com/invoice/{ACCOUNT}/{invoice_id}/pdf"


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Stored:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str


Route = Callable[[re.Match[str], dict[str, Any]], tuple[int, dict[str, Any], list[dict[str, Any]]]]


class StripeFake:
    api_key: str = "sk_test_finops_guard_fake"

    def __init__(self, *, now: Callable[[], int] | None = None) -> None:
        self._now = now or time.time
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.invoices: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.invoice_items: dict[str, dict[str, Any]] = {}
        self.requests: list[FakeRequest] = []
        self.events: list[dict[str, Any]] = []
        self.callback_errors: list[BaseException] = []
        self._callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._idempotency: dict[str, _Stored] = {}
        self._replays = 0
        self._faults: list[int] = []
        self._declines: dict[str, str] = {}
        self._numbers = 0
        self._days_until_due: dict[str, int] = {}
        self._routes: list[tuple[str, re.Pattern[str], Route]] = [
            ("POST", re.compile(r"/v1/invoices"), self._create_invoice),
            ("GET", re.compile(r"/v1/invoices"), self._list_invoices),
            ("GET", re.compile(r"/v1/invoices/(?P<id>[^/]+)"), self._retrieve_invoice),
            ("POST", re.compile(r"/v1/invoices/(?P<id>[^/]+)/finalize"), self._finalize_invoice),
            ("POST", re.compile(r"/v1/invoices/(?P<id>[^/]+)/send"), self._send_invoice),
            ("POST", re.compile(r"/v1/invoices/(?P<id>[^/]+)/pay"), self._pay_invoice),
            ("POST", re.compile(r"/v1/invoiceitems"), self._create_invoice_item),
            ("POST", re.compile(r"/v1/billing_portal/sessions"), self._create_portal_session),
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("GET", re.compile(r"/v1/customers/(?P<id>[^/]+)"), self._retrieve_customer),
        ]

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> StripeFake:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StripeFake:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- seeding and scripting ----------------------------------------------------------------------

    def add_customer(
        self,
        customer_id: str | None = None,
        *,
        email: str | None = None,
        name: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            customer = self._new_customer(customer_id or new_id("cus"), email=email, name=name, phone=phone)
            return copy.deepcopy(customer)

    def add_invoice(
        self,
        *,
        customer: str,
        currency: str,
        amount_minor: int,
        status: str = "paid",
        created: int | None = None,
        due_date: int | None = None,
        invoice_id: str | None = None,
        lines: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Seed an invoice as if it had lived its life already (no request, no event).

        `lines`: overrides merged onto Stripe's line template, e.g. {"amount": 4900, "description": ...};
        {"kind": "subscription"} makes a subscription line (parent subscription_item_details), otherwise a
        one-off item line. Their amounts must add up to `amount_minor`; one line may leave its amount out.
        """
        if status not in INVOICE_STATUSES:
            raise ValueError(f"status {status!r} is not one of {INVOICE_STATUSES}")
        with self._lock:
            if customer not in self.customers:
                self._new_customer(customer)
            at = int(self._now()) if created is None else created
            invoice = self._new_invoice(
                invoice_id or new_id("in"), customer, currency.lower(), created=at, collection="send_invoice"
            )
            for line in _seed_lines(lines, amount_minor):
                kind = line.pop("kind", "booking_fee")
                self._append_line(invoice, int(line.pop("amount")), kind=kind, overrides=line)
            if status != "draft":
                self._number(invoice, at)
                invoice["due_date"] = due_date if due_date is not None else at + DEFAULT_DAYS_UNTIL_DUE * 86400
            else:
                invoice["due_date"] = due_date
            transitions = invoice["status_transitions"]
            invoice["status"] = status
            if status == "paid":
                self._mark_paid(invoice, at, attempted=True)
            elif status == "void":
                transitions["voided_at"] = at
                invoice["amount_remaining"] = 0
            elif status == "uncollectible":
                transitions["marked_uncollectible_at"] = at
            self.invoices[invoice["id"]] = invoice
            return copy.deepcopy(invoice)

    def decline_next_payment(self, invoice_id: str, code: str = "card_declined") -> None:
        """The next /pay of this invoice answers 402 card_error with this `code` (decline_code alike)."""
        with self._lock:
            self._declines[invoice_id] = code

    def fail_next(self, count: int, status: int = 500) -> None:
        """The next `count` requests, whatever they are, answer `status` with a Stripe error body."""
        with self._lock:
            self._faults.extend([status] * count)

    def on_event(self, callback: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def idempotent_replays(self) -> int:
        with self._lock:
            return self._replays

    # --- HTTP ---------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: str, headers: dict[str, str]) -> _Reply:
        """One request to a reply, state committed (and events recorded) under the lock."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        params = parse_params(split.query if method in ("GET", "DELETE") else body)
        key = headers.get("idempotency-key") or None
        request_id = new_id("req")
        with self._lock:
            reply = self._dispatch(method, path, params, headers, key, request_id)
            self.requests.append(FakeRequest(method, path, params, key, reply.status))
            self.events.extend(reply.events)
        return reply

    def deliver(self, events: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for stripe_event in events:
            for callback in callbacks:
                try:
                    callback(copy.deepcopy(stripe_event))
                except Exception as error:  # a broken callback must not break the API
                    log.exception("stripe fake: on_event callback failed for %s", stripe_event.get("type"))
                    with self._lock:
                        self.callback_errors.append(error)

    def _dispatch(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str], key: str | None, rid: str
    ) -> _Reply:
        base_headers = {"Request-Id": rid}
        if key:
            base_headers["Idempotency-Key"] = key
        if self._faults:
            return _error_reply(_fault(self._faults.pop(0)), base_headers)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error_reply(_fault(401), base_headers)
        replaying = method == "POST" and key is not None
        if replaying and key in self._idempotency:
            stored = self._idempotency[key]
            if (stored.method, stored.path, stored.params) != (method, path, params):
                error = StripeFakeError(
                    400,
                    "idempotency_error",
                    f"Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    stored=False,
                )
                return _error_reply(error, base_headers)
            self._replays += 1
            headers_out = {"Request-Id": stored.request_id, "Idempotency-Key": key, "Idempotent-Replayed": "true"}
            return _Reply(stored.status, stored.body, headers_out)
        try:
            status, body, events = self._route(method, path, params)
            reply = _Reply(status, _json(body), base_headers, events)
            stored_ok = True
        except StripeFakeError as error:
            reply = _error_reply(error, base_headers)
            reply.events = error.events
            stored_ok = error.stored
        if replaying and stored_ok and key is not None:
            self._idempotency[key] = _Stored(method, path, copy.deepcopy(params), reply.status, reply.body, rid)
        for stripe_event in reply.events:
            stripe_event["request"] = {"id": rid, "idempotency_key": key}
        return reply

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], list[dict]]:
        for route_method, pattern, route in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return route(match, params)
        raise StripeFakeError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).", stored=False
        )

    # --- customers ----------------------------------------------------------------------------------

    def _new_customer(
        self, customer_id: str, *, email: str | None = None, name: str | None = None, phone: str | None = None
    ) -> dict[str, Any]:
        customer = _fixture("customer")
        customer.update(
            id=customer_id,
            created=int(self._now()),
            currency=None,
            discount=None,
            email=email,
            name=name,
            phone=phone,
            invoice_prefix="FG",
            livemode=False,
            metadata={},
            shipping=None,
        )
        self.customers[customer_id] = customer
        return customer

    def _customer(self, customer_id: str, param: str = "customer") -> dict[str, Any]:
        customer = self.customers.get(customer_id)
        if customer is None:
            raise _missing("customer", customer_id, param)
        return customer

    def _create_customer(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _CUSTOMER_CREATE)
        customer = self._new_customer(
            new_id("cus"), email=params.get("email"), name=params.get("name"), phone=params.get("phone")
        )
        customer["metadata"] = _metadata(params)
        customer["description"] = params.get("description")
        return 200, customer, []

    def _retrieve_customer(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _EXPAND_ONLY)
        return 200, self._customer(match["id"], "id"), []

    # --- invoices -----------------------------------------------------------------------------------

    def _new_invoice(self, invoice_id: str, customer_id: str, currency: str, *, created: int, collection: str) -> dict:
        customer = self.customers[customer_id]
        invoice = _fixture("invoice")
        invoice.update(
            id=invoice_id,
            account_name="FinOps Guard (Stripe fake)",
            amount_due=0,
            amount_overpaid=0,
            amount_paid=0,
            amount_remaining=0,
            attempt_count=0,
            attempted=False,
            auto_advance=False,
            automatically_finalizes_at=None,
            billing_reason="manual",
            collection_method=collection,
            created=created,
            currency=currency,
            customer=customer_id,
            customer_address=customer.get("address"),
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            customer_phone=customer.get("phone"),
            customer_shipping=None,
            description=None,
            due_date=None,
            effective_at=None,
            from_invoice=None,
            hosted_invoice_url=None,
            invoice_pdf=None,
            last_finalization_error=None,
            livemode=False,
            metadata={},
            next_payment_attempt=None,
            number=None,
            parent=None,
            payment_settings={"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
            period_end=created,
            period_start=created,
            shipping_cost=None,
            shipping_details=None,
            status="draft",
            status_transitions={"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                "voided_at": None},
            subtotal=0,
            subtotal_excluding_tax=0,
            total=0,
            total_excluding_tax=0,
            total_taxes=[],
            webhooks_delivered_at=None,
        )  # fmt: skip
        invoice["lines"] = {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"}
        if customer.get("currency") is None:
            customer["currency"] = currency
        return invoice

    def _append_line(
        self,
        invoice: dict[str, Any],
        amount: int,
        *,
        kind: str = "booking_fee",
        item_id: str | None = None,
        description: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        line = _fixture("invoice")["lines"]["data"][0]
        at = invoice["created"]
        parent: dict[str, Any]
        if kind == "subscription":
            parent = {"type": "subscription_item_details", "invoice_item_details": None,
                      "subscription_item_details": {"invoice_item": None, "proration": False,
                                                    "proration_details": {"credited_items": None},
                                                    "subscription": None, "subscription_item": None}}  # fmt: skip
        else:
            parent = {"type": "invoice_item_details", "subscription_item_details": None,
                      "invoice_item_details": {"invoice_item": item_id, "proration": False,
                                               "proration_details": {"credited_items": None},
                                               "subscription": None}}  # fmt: skip
        line.update(
            id=new_id("il"),
            amount=amount,
            currency=invoice["currency"],
            description=description,
            discount_amounts=[],
            discounts=[],
            invoice=invoice["id"],
            livemode=False,
            metadata={},
            parent=parent,
            period={"start": at, "end": at},
            pretax_credit_amounts=[],
            pricing={"type": "price_details", "price_details": None, "unit_amount_decimal": str(amount)},
            quantity=1,
            subtotal=amount,
            taxes=[],
        )
        line.update(overrides or {})
        invoice["lines"]["data"].append(line)
        self._total(invoice)
        return line

    @staticmethod
    def _total(invoice: dict[str, Any]) -> None:
        total = sum(int(line["amount"]) for line in invoice["lines"]["data"])
        invoice.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
                       amount_due=total, amount_remaining=total - int(invoice["amount_paid"]))  # fmt: skip

    def _number(self, invoice: dict[str, Any], at: int) -> None:
        self._numbers += 1
        invoice["number"] = f"FG-{self._numbers:04d}"
        invoice["effective_at"] = at
        invoice["status_transitions"]["finalized_at"] = at
        invoice["hosted_invoice_url"] = hosted_invoice_url(invoice["id"])
        invoice["invoice_pdf"] = invoice_pdf_url(invoice["id"])

    @staticmethod
    def _mark_paid(invoice: dict[str, Any], at: int, *, attempted: bool) -> None:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None)
        if attempted:
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
        invoice["status_transitions"]["paid_at"] = at

    def _invoice(self, invoice_id: str, param: str = "id") -> dict[str, Any]:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise _missing("invoice", invoice_id, param)
        return invoice

    def _event(self, event_type: str, invoice: dict[str, Any]) -> dict[str, Any]:
        return stripe_events.event(event_type, copy.deepcopy(invoice), event_id=new_id("evt"), created=int(self._now()))

    def _create_invoice(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _INVOICE_CREATE)
        customer = _required(params, "customer")
        collection = params.get("collection_method", "charge_automatically")
        if collection not in ("charge_automatically", "send_invoice"):
            raise _invalid(f"Invalid collection_method: {collection}", param="collection_method")
        days = _integer(params["days_until_due"], "days_until_due") if "days_until_due" in params else None
        due_date = _integer(params["due_date"], "due_date") if "due_date" in params else None
        if collection == "charge_automatically" and (days is not None or due_date is not None):
            raise _invalid("Invoices with collection_method=charge_automatically cannot have a due date.",
                           param="days_until_due" if days is not None else "due_date")  # fmt: skip
        if days is not None and due_date is not None:
            raise _invalid("You may only specify one of these parameters: days_until_due, due_date.",
                           param="days_until_due", code="parameters_exclusive")  # fmt: skip
        behavior = params.get("pending_invoice_items_behavior", "exclude")
        if behavior not in ("exclude", "include"):
            raise _invalid(
                f"Invalid pending_invoice_items_behavior: {behavior}", param="pending_invoice_items_behavior"
            )
        auto_advance = _boolean(params["auto_advance"], "auto_advance") if "auto_advance" in params else False
        metadata = _metadata(params)
        record = self._customer(customer)
        currency = _currency(params["currency"]) if "currency" in params else (record.get("currency") or "usd")
        now = int(self._now())
        invoice = self._new_invoice(new_id("in"), customer, currency, created=now, collection=collection)
        invoice.update(auto_advance=auto_advance, description=params.get("description"), metadata=metadata)
        if auto_advance:
            invoice["automatically_finalizes_at"] = now + 3600
        if collection == "send_invoice":
            invoice["due_date"] = due_date
            self._days_until_due[invoice["id"]] = DEFAULT_DAYS_UNTIL_DUE if days is None else days
        self.invoices[invoice["id"]] = invoice
        return 200, _public(invoice), [self._event("invoice.created", _public(invoice))]

    def _create_invoice_item(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _ITEM_CREATE)
        customer = _required(params, "customer")
        if "invoice" not in params:
            raise _invalid("The fake supports invoice items on a draft invoice only: pass `invoice`.", param="invoice")
        invoice_id = _required(params, "invoice")
        amount = _integer(_required(params, "amount"), "amount")
        currency = _currency(_required(params, "currency"))
        metadata = _metadata(params)
        self._customer(customer)
        invoice = self._invoice(invoice_id, "invoice")
        if invoice["customer"] != customer:
            raise _invalid(f"The invoice '{invoice_id}' belongs to another customer.", param="invoice")
        if currency != invoice["currency"]:
            raise _invalid(f"The currency of the invoice item ({currency}) must match the invoice currency "
                           f"({invoice['currency']}).", param="currency")  # fmt: skip
        if invoice["status"] != "draft":
            raise _state_error(f"You can only add invoice items to draft invoices; invoice '{invoice_id}' is "
                               f"{invoice['status']}.", param="invoice", code="invoice_not_editable")  # fmt: skip
        now = int(self._now())
        item = _fixture("invoiceitem")
        item.update(
            id=new_id("ii"),
            amount=amount,
            currency=currency,
            customer=customer,
            date=now,
            description=params.get("description"),
            discounts=[],
            invoice=invoice_id,
            livemode=False,
            metadata=metadata,
            net_amount=amount,
            parent=None,
            period={"start": now, "end": now},
            pricing={"type": "price_details", "price_details": None, "unit_amount_decimal": str(amount)},
            proration=False,
            quantity=1,
            quantity_decimal="1",
        )
        self.invoice_items[item["id"]] = item
        self._append_line(invoice, amount, item_id=item["id"], description=item["description"],
                          overrides={"metadata": dict(metadata)})  # fmt: skip
        return 200, item, []

    def _finalize_invoice(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _FINALIZE)
        auto_advance = _boolean(params["auto_advance"], "auto_advance") if "auto_advance" in params else None
        invoice = self._invoice(match["id"])
        if invoice["status"] != "draft":
            raise _state_error("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
        now = int(self._now())
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        invoice["status"] = "open"
        invoice["automatically_finalizes_at"] = None
        self._number(invoice, now)
        self._total(invoice)
        days = self._days_until_due.pop(invoice["id"], DEFAULT_DAYS_UNTIL_DUE)
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = invoice["created"] + days * 86400
        events = [self._event("invoice.finalized", invoice)]
        if invoice["amount_due"] <= 0:  # Stripe settles a zero-due invoice at finalization, auto_advance or not
            self._mark_paid(invoice, now, attempted=False)
            events.append(self._event("invoice.paid", invoice))
        return 200, _public(invoice), events

    def _send_invoice(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _EXPAND_ONLY)
        invoice = self._invoice(match["id"])
        if invoice["collection_method"] != "send_invoice":
            raise _state_error("You can only manually send an invoice if its collection method is 'send_invoice'.")
        if invoice["status"] != "open":
            raise _state_error(f"You can only send an open invoice; invoice '{invoice['id']}' is {invoice['status']}.")
        invoice["webhooks_delivered_at"] = invoice["webhooks_delivered_at"] or int(self._now())
        return 200, _public(invoice), [self._event("invoice.sent", invoice)]

    def _pay_invoice(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _PAY)
        out_of_band = "paid_out_of_band" in params and _boolean(params["paid_out_of_band"], "paid_out_of_band")
        invoice = self._invoice(match["id"])
        if invoice["status"] == "paid":
            raise _state_error("Invoice is already paid")
        if invoice["status"] not in ("open", "uncollectible"):
            raise _state_error(f"You cannot pay this invoice because it is {invoice['status']}.")
        now = int(self._now())
        decline = None if out_of_band else self._declines.pop(invoice["id"], None)
        if decline is not None:
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
            raise StripeFakeError(
                402,
                "card_error",
                "Your card was declined.",
                code=decline,
                extra={"decline_code": "generic_decline" if decline == "card_declined" else decline,
                       "charge": new_id("ch"), "doc_url": f"https://stripe.com/docs/error-codes/{decline}"},
                events=[self._event("invoice.payment_failed", invoice)],
            )  # fmt: skip
        self._mark_paid(invoice, now, attempted=not out_of_band)
        return 200, _public(invoice), [self._event("invoice.paid", invoice)]

    def _retrieve_invoice(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _EXPAND_ONLY)
        return 200, _public(self._invoice(match["id"])), []

    def _list_invoices(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _INVOICE_LIST)
        limit = _integer(params.get("limit", str(DEFAULT_LIMIT)), "limit")
        if not 1 <= limit <= MAX_LIMIT:
            raise _invalid(f"Invalid limit: must be between 1 and {MAX_LIMIT}", param="limit")
        created = _range(params.get("created"), "created")
        due = _range(params.get("due_date"), "due_date")
        status = params.get("status")
        if status is not None and status not in INVOICE_STATUSES:
            raise _invalid(f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}", param="status")

        def wanted(invoice: dict[str, Any]) -> bool:
            return (
                created(invoice["created"])
                and (due is _any_time or (invoice["due_date"] is not None and due(invoice["due_date"])))
                and params.get("customer") in (None, invoice["customer"])
                and status in (None, invoice["status"])
                and params.get("collection_method") in (None, invoice["collection_method"])
            )

        chosen = [invoice for invoice in self.invoices.values() if wanted(invoice)]
        chosen.sort(key=lambda invoice: (invoice["created"], invoice["id"]), reverse=True)
        if "starting_after" in params:
            cursor = self._invoice(_required(params, "starting_after"), "starting_after")
            chosen = [i for i in chosen if (i["created"], i["id"]) < (cursor["created"], cursor["id"])]
            page, has_more = chosen[:limit], len(chosen) > limit
        elif "ending_before" in params:
            cursor = self._invoice(_required(params, "ending_before"), "ending_before")
            chosen = [i for i in chosen if (i["created"], i["id"]) > (cursor["created"], cursor["id"])]
            page, has_more = chosen[-limit:], len(chosen) > limit
        else:
            page, has_more = chosen[:limit], len(chosen) > limit
        body = {"object": "list", "url": "/v1/invoices", "has_more": has_more, "data": [_public(i) for i in page]}
        return 200, body, []

    # --- billing portal -----------------------------------------------------------------------------

    def _create_portal_session(self, match: re.Match[str], params: dict[str, Any]) -> tuple[int, dict, list[dict]]:
        _allowed(params, _PORTAL_CREATE)
        customer = _required(params, "customer")
        self._customer(customer)
        session = _fixture("billing_portal.session")
        session.update(
            id=new_id("bps"),
            configuration="bpc_fake_default",
            created=int(self._now()),
            customer=customer,
            flow=None,
            livemode=False,
            locale=params.get("locale"),
            on_behalf_of=None,
            return_url=params.get("return_url"),
            url=f"https://billing.stripe.com/p/session/test_{secrets.token_urlsafe(24)}",
        )
        return 200, session, []


# --- helpers --------------------------------------------------------------------------------------


def _any_time(value: int) -> bool:
    return True


def _range(value: Any, param: str) -> Callable[[int], bool]:
    """`created=123` or `created[gte|gt|lte|lt]=...` as a predicate on epoch seconds."""
    if value is None:
        return _any_time
    if isinstance(value, str):
        exact = _integer(value, param)
        return lambda at: at == exact
    if not isinstance(value, dict):
        raise _invalid(f"Invalid {param}: must be an integer or a hash", param=param)
    bounds = {op: _integer(bound, f"{param}[{op}]") for op, bound in value.items()}
    unknown = set(bounds) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise _invalid(f"Received unknown parameter: {param}[{sorted(unknown)[0]}]", param=param,
                       code="parameter_unknown")  # fmt: skip
    return lambda at: (
        ("gt" not in bounds or at > bounds["gt"])
        and ("gte" not in bounds or at >= bounds["gte"])
        and ("lt" not in bounds or at < bounds["lt"])
        and ("lte" not in bounds or at <= bounds["lte"])
    )


def _seed_lines(lines: list[dict[str, Any]] | None, amount_minor: int) -> list[dict[str, Any]]:
    given = [dict(line) for line in (lines or [{}])]
    missing = [line for line in given if "amount" not in line]
    if len(missing) > 1:
        raise ValueError("at most one seeded line may leave its amount out")
    if missing:
        missing[0]["amount"] = amount_minor - sum(int(line["amount"]) for line in given if "amount" in line)
    if sum(int(line["amount"]) for line in given) != amount_minor:
        raise ValueError(f"seeded lines add up to {sum(int(line['amount']) for line in given)}, not {amount_minor}")
    return given


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy for a reply or an event, so later changes to the stored object do not leak into it."""
    return copy.deepcopy(obj)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _error_reply(error: StripeFakeError, headers: dict[str, str]) -> _Reply:
    return _Reply(error.status, _json(error.body), dict(headers))


def _handler_class(fake: StripeFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as stripe-python's requests session expects
        timeout = REQUEST_TIMEOUT_S
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                reply = fake.handle(method, self.path, body, headers)
            except Exception:  # a bug in the fake: answer like Stripe's 500, keep serving
                log.exception("stripe fake: %s %s failed", method, self.path)
                reply = _error_reply(_fault(500), {})
            fake.deliver(reply.events)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Stripe-Version", stripe_events.API_VERSION)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler
