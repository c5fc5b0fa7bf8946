"""StripeApi (our only door to Stripe) through stripe-python against the loopback Stripe fake."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import stripe
import stripe._http_client
from finops_guard.billing import ledger_rules as billing
from finops_guard.billing import stripe_webhook
from finops_guard.billing.adapters.stripe_api import (
    StripeApi,
    StripeCardError,
    StripeRequestError,
    StripeUnavailable,
    invoice_link,
)

from devtools import stripe_events
from devtools.stripe_fake import StripeFake, parse_params

pytestmark = [pytest.mark.integration, pytest.mark.allow_hosts(["127.0.0.1"])]

NOW = 1794873600  # 2026-11-17T00:00:00Z
DAY = 86400
CUSTOMER = "cus_QXg1o8vcGmoR32"


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> int:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def fake(clock):
    with StripeFake(now=clock) as server:
        server.add_customer(CUSTOMER, email="billing@example.com", name="Example GmbH")
        yield server


@pytest.fixture
def api(fake) -> StripeApi:
    return StripeApi(lambda: fake.api_key, api_base=fake.base_url)


@pytest.fixture
def quick_retries(monkeypatch):
    """stripe-python sleeps at least 0.5 s before a retry; the retry logic is what we test, not the wait."""
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe._http_client.HTTPClient, "MAX_DELAY", 0.01)


def draft(api: StripeApi, currency: str = "usd", key: str = "req-1#create", **changes) -> dict:
    params = {"customer": CUSTOMER, "currency": currency, "description": "Booking fees, October 2026",
              "days_until_due": 14, "metadata": {"request_id": "req-1"}, "idempotency_key": key, **changes}  # fmt: skip
    return api.create_invoice(**params)


def open_invoice(api: StripeApi, amount_minor: int = 6150, currency: str = "usd") -> dict:
    invoice = draft(api, currency)
    api.add_invoice_item(invoice=invoice["id"], customer=CUSTOMER, amount_minor=amount_minor, currency=currency,
                         description="Booking fees", idempotency_key="req-1#item-0")  # fmt: skip
    return api.finalize_invoice(invoice["id"], idempotency_key="req-1#finalize")


@pytest.mark.parametrize(
    ("currency", "amounts", "total"),
    [("JPY", [1200, 34], 1234), ("KWD", [12345, 5], 12350), ("USD", [4900, 1250], 6150)],
)
def test_invoice_round_trip_keeps_minor_units(fake, api, clock, currency, amounts, total):
    created = draft(api, currency)
    items = [
        api.add_invoice_item(invoice=created["id"], customer=CUSTOMER, amount_minor=amount, currency=currency,
                             description=f"Line {n}", idempotency_key=f"req-1#item-{n}")
        for n, amount in enumerate(amounts)
    ]  # fmt: skip
    clock.at = NOW + 60
    finalized = api.finalize_invoice(created["id"], idempotency_key="req-1#finalize")
    sent = api.send_invoice(created["id"], idempotency_key="req-1#send")

    assert (created["status"], created["currency"], created["amount_due"]) == ("draft", currency.lower(), 0)
    assert (created["collection_method"], created["metadata"]) == ("send_invoice", {"request_id": "req-1"})
    assert [(i["object"], i["amount"], i["currency"], i["invoice"]) for i in items] == [
        ("invoiceitem", amount, currency.lower(), created["id"]) for amount in amounts
    ]
    assert [line["amount"] for line in finalized["lines"]["data"]] == amounts
    assert (finalized["status"], finalized["amount_due"], finalized["total"], finalized["amount_paid"]) == (
        "open", total, total, 0)  # fmt: skip
    assert finalized["number"] == "FG-0001"
    assert finalized["due_date"] == NOW + 14 * DAY
    assert finalized["status_transitions"]["finalized_at"] == NOW + 60
    assert invoice_link(sent) == (
        f"https://invoice.stripe.com/i/acct_fake/{created['id']}",
        f"https://pay.stripe.com/invoice/acct_fake/{created['id']}/pdf",
    )
    assert api.retrieve_invoice(created["id"]) == sent
    assert sent["amount_due"] == fake.invoices[created["id"]]["amount_due"] == total
    # stripe-python hydrates Stripe's decimal strings into Decimal: never a float.
    assert [line["pricing"]["unit_amount_decimal"] for line in sent["lines"]["data"]] == [Decimal(a) for a in amounts]


def test_lifecycle_emits_stripe_events_in_order(fake, api):
    events: list[dict] = []
    fake.on_event(events.append)

    invoice = open_invoice(api)
    api.send_invoice(invoice["id"], idempotency_key="req-1#send")
    api.pay_invoice(invoice["id"], idempotency_key="req-1#pay-1")

    assert [e["type"] for e in events] == ["invoice.created", "invoice.finalized", "invoice.sent", "invoice.paid"]
    assert all(e["id"].startswith("evt_") and e["object"] == "event" and e["livemode"] is False for e in events)
    assert {e["api_version"] for e in events} == {stripe_events.API_VERSION}
    assert [e["request"]["idempotency_key"] for e in events] == [
        "req-1#create", "req-1#finalize", "req-1#send", "req-1#pay-1"]  # fmt: skip
    assert [e["data"]["object"]["status"] for e in events] == ["draft", "open", "open", "paid"]
    assert events == fake.events


def test_same_idempotency_key_creates_one_invoice(fake, api):
    events: list[dict] = []
    fake.on_event(events.append)

    first = draft(api)
    second = draft(api)

    assert second == first
    assert list(fake.invoices) == [first["id"]]
    assert fake.idempotent_replays() == 1
    assert [e["type"] for e in events] == ["invoice.created"]


def test_same_key_with_other_parameters_is_refused(fake, api):
    first = draft(api)

    with pytest.raises(StripeRequestError) as refused:
        draft(api, description="Something else")

    assert refused.value.status == 400
    assert "Keys for idempotent requests" in str(refused.value)
    assert list(fake.invoices) == [first["id"]]
    assert fake.idempotent_replays() == 0


def test_concurrent_retries_of_one_key_create_one_invoice(fake, api):
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: draft(api)["id"], range(16)))

    assert len(set(ids)) == 1
    assert list(fake.invoices) == ids[:1]
    assert fake.idempotent_replays() == 15


def test_concurrent_invoices_get_distinct_numbers(fake, api):
    def issue(n: int) -> str:
        invoice = draft(api, key=f"req-{n}#create")
        api.add_invoice_item(invoice=invoice["id"], customer=CUSTOMER, amount_minor=100 + n, currency="usd",
                             description="Booking fees", idempotency_key=f"req-{n}#item-0")  # fmt: skip
        return str(api.finalize_invoice(invoice["id"], idempotency_key=f"req-{n}#finalize")["number"])

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(issue, range(16)))

    assert sorted(numbers) == [f"FG-{n:04d}" for n in range(1, 17)]
    assert sorted(i["amount_due"] for i in fake.invoices.values()) == [100 + n for n in range(16)]


def test_stripe_api_sends_exactly_the_callers_idempotency_keys(fake, api):
    invoice = open_invoice(api)
    api.send_invoice(invoice["id"], idempotency_key="req-1#send")
    api.retrieve_invoice(invoice["id"])

    assert [(r.method, r.path, r.idempotency_key) for r in fake.requests] == [
        ("POST", "/v1/invoices", "req-1#create"),
        ("POST", "/v1/invoiceitems", "req-1#item-0"),
        ("POST", f"/v1/invoices/{invoice['id']}/finalize", "req-1#finalize"),
        ("POST", f"/v1/invoices/{invoice['id']}/send", "req-1#send"),
        ("GET", f"/v1/invoices/{invoice['id']}", None),
    ]
    assert fake.requests[0].params == {
        "customer": CUSTOMER, "currency": "usd", "description": "Booking fees, October 2026",
        "collection_method": "send_invoice", "days_until_due": "14", "auto_advance": "false",
        "pending_invoice_items_behavior": "exclude", "metadata": {"request_id": "req-1"},
    }  # fmt: skip
    assert fake.requests[2].params == {"auto_advance": "false"}


def test_list_walks_every_page(fake, api):
    seeded = [
        fake.add_invoice(customer=f"cus_{n % 7}", currency="jpy", amount_minor=1000 + n, created=NOW - n % 50)
        for n in range(250)
    ]

    listed = list(api.list_invoices(created_gte=NOW - DAY))

    assert len(listed) == 250
    assert {i["id"] for i in listed} == {i["id"] for i in seeded}
    assert [(i["created"], i["id"]) for i in listed] == sorted(((i["created"], i["id"]) for i in seeded), reverse=True)
    pages = [r for r in fake.requests if r.method == "GET"]
    assert [(r.path, r.status) for r in pages] == [("/v1/invoices", 200)] * 3
    assert [r.params.get("starting_after") for r in pages] == [None, listed[99]["id"], listed[199]["id"]]
    assert {r.params["limit"] for r in pages} == {"100"}
    assert {str(r.params["created"]) for r in pages} == {str({"gte": str(NOW - DAY)})}


def test_list_failing_on_a_later_page_raises_stripe_unavailable(fake, api, quick_retries):
    for n in range(150):
        fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=n, created=NOW - n)
    walk = api.list_invoices(created_gte=NOW - DAY)
    first_page = [next(walk) for _ in range(100)]
    fake.fail_next(3, 503)

    with pytest.raises(StripeUnavailable):
        next(walk)

    assert len(first_page) == 100


def test_list_keeps_invoices_created_at_or_after_the_bound(fake, api):
    old = fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=100, created=NOW - 3 * DAY)
    edge = fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=200, created=NOW - DAY)
    new = fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=300, created=NOW)

    listed = list(api.list_invoices(created_gte=NOW - DAY))

    assert [i["id"] for i in listed] == [new["id"], edge["id"]]
    assert old["id"] not in {i["id"] for i in listed}
    assert [i["amount_due"] for i in listed] == [300, 200]


def test_seeded_invoices_are_shaped_like_their_status(fake, api):
    paid = fake.add_invoice(customer=CUSTOMER, currency="kwd", amount_minor=12350, status="paid",
                            lines=[{"amount": 12000, "kind": "subscription"}, {"description": "Bookings"}])  # fmt: skip
    open_ = fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=500, status="open", due_date=NOW + DAY)
    drafted = fake.add_invoice(customer=CUSTOMER, currency="usd", amount_minor=700, status="draft")

    got = {i["id"]: i for i in (api.retrieve_invoice(x["id"]) for x in (paid, open_, drafted))}

    assert [(line["amount"], billing.line_kind(line)) for line in got[paid["id"]]["lines"]["data"]] == [
        (12000, "subscription"), (350, "booking_fee")]  # fmt: skip
    assert [(i["status"], i["amount_due"], i["amount_paid"], i["amount_remaining"]) for i in got.values()] == [
        ("paid", 12350, 12350, 0), ("open", 500, 0, 500), ("draft", 700, 0, 700)]  # fmt: skip
    assert got[paid["id"]]["status_transitions"]["paid_at"] == NOW
    assert got[open_["id"]]["due_date"] == NOW + DAY
    assert invoice_link(got[open_["id"]])[0] == f"https://invoice.stripe.com/i/acct_fake/{open_['id']}"
    assert invoice_link(got[drafted["id"]]) == (None, None)


def test_unknown_invoice_is_resource_missing(api):
    with pytest.raises(StripeRequestError) as missing:
        api.retrieve_invoice("in_doesnotexist")

    assert (missing.value.status, missing.value.code) == (404, "resource_missing")
    assert not isinstance(missing.value, StripeCardError)


def test_invoice_for_unknown_customer_is_resource_missing(fake, api):
    with pytest.raises(StripeRequestError) as missing:
        api.create_invoice(customer="cus_nobody", currency="usd", description="x", days_until_due=30, metadata={},
                           idempotency_key="req-2#create")  # fmt: skip

    assert (missing.value.status, missing.value.code) == (404, "resource_missing")
    assert fake.invoices == {}


def test_item_on_a_finalized_invoice_is_refused(fake, api):
    invoice = open_invoice(api, amount_minor=1000)

    with pytest.raises(StripeRequestError) as refused:
        api.add_invoice_item(invoice=invoice["id"], customer=CUSTOMER, amount_minor=5, currency="usd",
                             description="late", idempotency_key="req-1#item-late")  # fmt: skip

    assert (refused.value.status, refused.value.code) == (400, "invoice_not_editable")
    assert fake.invoices[invoice["id"]]["amount_due"] == 1000


def test_declined_payment_raises_card_error_and_counts_the_attempt(fake, api):
    events: list[dict] = []
    fake.on_event(events.append)
    invoice = open_invoice(api, amount_minor=6150)
    fake.decline_next_payment(invoice["id"])

    with pytest.raises(StripeCardError) as declined:
        api.pay_invoice(invoice["id"], idempotency_key="alert-1#retry-1")
    after_decline = api.retrieve_invoice(invoice["id"])
    paid = api.pay_invoice(invoice["id"], idempotency_key="alert-1#retry-2")

    assert (declined.value.status, declined.value.code) == (402, "card_declined")
    assert (after_decline["status"], after_decline["attempt_count"], after_decline["amount_paid"]) == ("open", 1, 0)
    assert (paid["status"], paid["attempt_count"], paid["amount_paid"]) == ("paid", 2, 6150)
    assert paid["status_transitions"]["paid_at"] == NOW
    assert [e["type"] for e in events][-2:] == ["invoice.payment_failed", "invoice.paid"]


def test_paying_a_paid_invoice_is_refused(api):
    invoice = open_invoice(api)
    api.pay_invoice(invoice["id"], idempotency_key="req-1#pay-1")

    with pytest.raises(StripeRequestError) as refused:
        api.pay_invoice(invoice["id"], idempotency_key="req-1#pay-2")

    assert refused.value.status == 400
    assert str(refused.value) == "Invoice is already paid"


def test_server_error_is_retried_with_the_same_key(fake, api, quick_retries):
    fake.fail_next(1, 500)

    invoice = draft(api)

    assert [(r.path, r.idempotency_key, r.status) for r in fake.requests] == [
        ("/v1/invoices", "req-1#create", 500), ("/v1/invoices", "req-1#create", 200)]  # fmt: skip
    assert list(fake.invoices) == [invoice["id"]]


def test_retries_stop_after_the_network_retry_budget(fake, api, quick_retries):
    fake.fail_next(3, 503)

    with pytest.raises(StripeUnavailable) as unavailable:
        draft(api)

    assert "503" in str(unavailable.value)

    assert [r.status for r in fake.requests] == [503, 503, 503]  # one try + NETWORK_RETRIES (2)
    assert fake.invoices == {}


def test_wrong_api_key_is_a_request_error_that_does_not_echo_the_key(fake):
    wrong = "sk_test_not_the_fake_key_0123456789"
    api = StripeApi(lambda: wrong, api_base=fake.base_url)

    with pytest.raises(StripeRequestError) as refused:
        api.retrieve_invoice("in_any")

    assert refused.value.status == 401
    assert wrong not in str(refused.value)
    assert [r.status for r in fake.requests] == [401]


def test_portal_session_links_back_to_the_return_url(fake, api):
    session = api.create_portal_session(customer=CUSTOMER, return_url="https://finops.example.com/billing")

    assert session["object"] == "billing_portal.session"
    assert session["id"].startswith("bps_")
    assert session["url"].startswith("https://billing.stripe.com/p/session/test_")
    assert (session["customer"], session["return_url"]) == (CUSTOMER, "https://finops.example.com/billing")
    assert fake.requests[-1].params == {"customer": CUSTOMER, "return_url": "https://finops.example.com/billing"}


def test_fake_events_verify_and_become_billing_effects(fake, api):
    events: list[dict] = []
    fake.on_event(events.append)
    invoice = open_invoice(api, amount_minor=1234, currency="JPY")
    api.send_invoice(invoice["id"], idempotency_key="req-1#send")
    fake.decline_next_payment(invoice["id"])
    with pytest.raises(StripeCardError):
        api.pay_invoice(invoice["id"], idempotency_key="alert-1#retry-1")
    api.pay_invoice(invoice["id"], idempotency_key="alert-1#retry-2")

    effects = []
    for stripe_event in events:
        request = stripe_events.signed_request(stripe_event)
        verified = stripe_webhook.verify(
            stripe_webhook.raw_body(request, 1 << 20), stripe_webhook.signature_header(request),
            [stripe_events.TEST_SECRET])  # fmt: skip
        effects.append(billing.effects_of(verified, dunning_steps=[(0, "email"), (3, "sms")]))

    assert [(e.event_type, e.ignored, e.state.attributes["status"]) for e in effects if e.state] == [
        ("invoice.created", False, "draft"), ("invoice.finalized", False, "open"), ("invoice.sent", False, "open"),
        ("invoice.payment_failed", False, "open"), ("invoice.paid", False, "paid")]  # fmt: skip
    failed, paid = effects[3], effects[4]
    assert [(a.kind, a.invoice_id, a.amount_minor, a.currency, a.detail) for a in failed.open_alerts] == [
        ("invoice_failed", invoice["id"], 1234, "JPY", {"attempt_count": 1})]  # fmt: skip
    assert [d.step for d in failed.dunning] == ["0#email", "3#sms"]
    assert [(e.customer_id, e.kind, e.amount_minor, e.currency, e.source_id) for e in paid.ledger] == [
        (CUSTOMER, "booking_fee", 1234, "JPY", invoice["id"])]  # fmt: skip
    assert paid.settle_invoice == invoice["id"]


def test_form_bodies_parse_into_nested_params():
    parsed = parse_params("metadata[request_id]=r-1&metadata[0]=x&created[gte]=5&expand[0]=lines&expand[1]=customer"
                          "&items[0][price]=p_1&items[0][quantity]=2&description=a+b%26c&empty=")  # fmt: skip

    assert parsed == {
        "metadata": {"request_id": "r-1", "0": "x"},
        "created": {"gte": "5"},
        "expand": ["lines", "customer"],
        "items": [{"price": "p_1", "quantity": "2"}],
        "description": "a b&c",
        "empty": "",
    }


def test_a_rolled_key_is_read_again_after_stripe_refuses_the_old_one(fake):
    keys = iter(["sk_test_rolled_away_0000000000", fake.api_key])
    api = StripeApi(lambda: next(keys), api_base=fake.base_url)
    fake.add_customer(CUSTOMER)
    with pytest.raises(StripeRequestError):
        api.create_portal_session(customer=CUSTOMER, return_url="https://finops.example.com/billing")
    session = api.create_portal_session(customer=CUSTOMER, return_url="https://finops.example.com/billing")
    assert session["customer"] == CUSTOMER and [r.status for r in fake.requests][-2:] == [401, 200]
