"""The invoice bot: request validation, idempotency keys from our record, resuming, replaying."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from finops_guard.billing.invoice_bot import (
    InvoiceRequest,
    InvoiceRequestError,
    RequestConflict,
    invoice_confirmation,
    issue_invoice,
    parse_invoice_request,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BODY = {"request_id": "req-2026-11-20-0001", "customer": "cus_NffrFeUfNV2Hib", "currency": "usd",
        "amount": "1250.00", "description": "Consulting, November"}  # fmt: skip


class Store:
    def __init__(self):
        self.records = {}

    def begin(self, request, requested_by, now):
        return self.records.setdefault(
            request.request_id,
            {"request_id": request.request_id, "status": "requested", "customer": request.customer,
             "amount_minor": request.amount_minor, "currency": request.currency,
             "description": request.description, "requested_epoch": int(now.timestamp())},
        )  # fmt: skip

    def progress(self, request_id, status, attributes):
        self.records[request_id].update(status=status, **{k: v for k, v in attributes.items() if v is not None})

    def forget(self, request_id):
        self.records.pop(request_id, None)


class Api:
    """Answers like Stripe, including idempotent replays by key."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.by_key = {}
        self.fail_on = fail_on

    def _answer(self, step, key, result):
        self.calls.append((step, key))
        if self.fail_on == step:
            self.fail_on = None
            raise TimeoutError(step)
        return self.by_key.setdefault(key, result)

    def create_invoice(self, **kwargs):
        self.metadata = kwargs["metadata"]
        return self._answer("create", kwargs["idempotency_key"], {"id": f"in_{len(self.by_key) + 1}"})

    def add_invoice_item(self, **kwargs):
        self.item = kwargs
        return self._answer("item", kwargs["idempotency_key"], {"id": "ii_1"})

    def finalize_invoice(self, invoice, *, idempotency_key):
        return self._answer("finalize", idempotency_key, links(invoice))

    def send_invoice(self, invoice, *, idempotency_key):
        return self._answer("send", idempotency_key, links(invoice))


def links(invoice):
    return {
        "id": invoice,
        "number": "FG-0001",
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice}",
        "invoice_pdf": f"https://pay.stripe.com/{invoice}/pdf",
    }


def issue(request, api, store):
    return issue_invoice(request, api=api, store=store, requested_by="arn:aws:iam::1:user/fin", days_until_due=30,
                         now=NOW)  # fmt: skip


def test_an_invoice_is_created_itemised_finalized_and_sent_with_keys_from_the_request():
    api, store = Api(), Store()
    issued = issue(parse_invoice_request(BODY), api, store)
    rid = "req-2026-11-20-0001"
    assert api.calls == [
        (step, f"finops-guard:invoice:{rid}:{step}") for step in ("create", "item", "finalize", "send")
    ]
    assert api.item["amount_minor"] == 125000 and api.item["currency"] == "USD" and api.item["invoice"] == "in_1"
    assert api.metadata == {"finops_guard_request_id": rid, "finops_guard_requested_at": str(int(NOW.timestamp()))}
    assert (issued.invoice_id, issued.number, issued.amount, issued.replayed) == ("in_1", "FG-0001", "$1,250.00", False)
    assert issued.invoice_pdf == "https://pay.stripe.com/in_1/pdf" and store.records[rid]["status"] == "sent"


def test_a_completed_request_is_answered_from_the_record_without_calling_stripe():
    api, store = Api(), Store()
    issue(parse_invoice_request(BODY), api, store)
    again = issue(parse_invoice_request(BODY), api, store)
    assert again.replayed and again.invoice_id == "in_1" and len(api.calls) == 4


def test_a_retry_after_a_crash_resumes_with_the_same_keys_and_one_invoice():
    api, store = Api(fail_on="finalize"), Store()
    with pytest.raises(TimeoutError):
        issue(parse_invoice_request(BODY), api, store)
    assert store.records["req-2026-11-20-0001"]["status"] == "item_added"
    issued = issue(parse_invoice_request(BODY), api, store)
    assert issued.invoice_id == "in_1"
    assert [step for step, _ in api.calls] == ["create", "item", "finalize", "finalize", "send"]
    assert len({key for step, key in api.calls if step == "finalize"}) == 1


def test_a_failed_create_keeps_no_record():
    api, store = Api(fail_on="create"), Store()
    with pytest.raises(TimeoutError):
        issue(parse_invoice_request(BODY), api, store)
    assert store.records == {}


def test_a_request_id_reused_for_another_invoice_is_a_conflict():
    api, store = Api(), Store()
    issue(parse_invoice_request(BODY), api, store)
    with pytest.raises(RequestConflict):
        issue(parse_invoice_request({**BODY, "amount": "99.00"}), api, store)
    assert len(api.calls) == 4


@pytest.mark.parametrize(
    ("changes", "amount_minor"),
    [({"currency": "JPY", "amount": "1500"}, 1500), ({"currency": "KWD", "amount": "12.345"}, 12345),
     ({"amount": None, "amount_minor": 999}, 999), ({"amount": "10"}, 1000)],
)  # fmt: skip
def test_amounts_become_minor_units_of_the_currency(changes, amount_minor):
    assert parse_invoice_request({**BODY, **changes}).amount_minor == amount_minor


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"request_id": None}, "request_id"),
        ({"request_id": "short"}, "request_id"),
        ({"customer": "acme"}, "customer must be a Stripe customer id"),
        ({"currency": "XXY"}, "currency must be an ISO 4217 code"),
        ({"description": ""}, "description is required"),
        ({"amount": "12.345"}, "more than 2 decimal places for USD"),
        ({"currency": "JPY", "amount": "10.5"}, "more than 0 decimal places for JPY"),
        ({"amount": 12.5}, "amount must be a string"),
        ({"amount": "-5"}, "greater than zero"),
        ({"amount": "lots"}, "amount is required"),
        ({"amount": None, "amount_minor": True}, "amount_minor must be a positive integer"),
    ],
)
def test_malformed_requests_are_refused_naming_the_field(changes, message):
    with pytest.raises(InvoiceRequestError, match=message):
        parse_invoice_request({**BODY, **changes})


def test_the_idempotency_key_header_names_the_request_when_the_body_does_not():
    request = parse_invoice_request({**BODY, "request_id": None}, request_id="hdr-key-0000001")
    assert request == InvoiceRequest("hdr-key-0000001", "cus_NffrFeUfNV2Hib", 125000, "USD", "Consulting, November")


def test_delivery_is_confirmed_by_invoice_sent_or_by_finalized_for_automatic_charges():
    mine = {"metadata": {"finops_guard_request_id": "req-1"}, "collection_method": "send_invoice"}
    assert invoice_confirmation(mine, "invoice.sent") == "req-1"
    assert invoice_confirmation(mine, "invoice.finalized") is None
    automatic = {**mine, "collection_method": "charge_automatically"}
    assert invoice_confirmation(automatic, "invoice.finalized") == "req-1"
    assert invoice_confirmation({"metadata": {}}, "invoice.sent") is None
