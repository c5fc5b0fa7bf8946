"""Issue 15 against the embedded AWS: the same generated inputs as tests/unit/billing/test_admin_hardening.py,
fewer of them (each case is real DynamoDB and HTTP on 127.0.0.1), through the function's Lambda entry point.

Admin API requests (bodies, alert paths, query strings) through the API handler: a 2xx, or a 4xx
with every billing table, the outbox, the chat endpoint and the loopback Stripe unchanged.
"""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_handler
from tests.integration.billing.test_billing_ops import failed_invoice, ops  # noqa: F401 - fixture
from tests.integration.conftest import MOTO, FakeContext
from tests.unit.billing.test_admin_hardening import (
    ALERT_IDS,
    INVOICE,
    NASTY_ALERT_IDS,
    NASTY_INVOICES,
    NASTY_QUERIES,
    QUERY,
    acceptable_path_id,
    examples,
    expected_minor,
    invoice_bodies,
)

pytestmark = pytest.mark.integration
MOTO_ADMIN = settings(MOTO, max_examples=40)  # the 1,000-case runs are in tests/unit/billing/test_admin_hardening.py
RUN = itertools.count()


# --- admin API ------------------------------------------------------------------------------------


class AdminApi:
    def __init__(self, ops, alert_id: str) -> None:  # noqa: F811
        self.ops = ops
        self.alert_id = alert_id
        self.dynamodb = ops.aws.client("dynamodb")

    def call(self, method: str, resource: str, **parts) -> dict:
        event = {"httpMethod": method, "resource": resource, "path": resource, "headers": {}, "body": None,
                 "isBase64Encoded": False,
                 "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/finance-lead"}},
                 **parts}  # fmt: skip
        return load_handler("billing_admin").lambda_handler(event, FakeContext("finops-guard-test-billing-admin"))

    def state(self):
        tables = [*self.ops.tables.values(), self.ops.table]
        items = {
            table: sorted(json.dumps(i, sort_keys=True) for i in self.dynamodb.scan(TableName=table)["Items"])
            for table in tables
        }
        return items, copy.deepcopy(self.ops.fake.invoices), len(self.ops.chat.received)

    def check(self, reply: dict, before) -> int:
        """A 2xx, or a 4xx that changed nothing; never a 5xx (the handler returned, so no exception)."""
        status = reply["statusCode"]
        assert 200 <= status < 300 or 400 <= status < 500, reply
        if status >= 400:
            assert self.state() == before, reply
        return status


@pytest.fixture
def admin_api(ops):  # noqa: F811
    ops.fake.add_customer("cus_NffrFeUfNV2Hib", email="ap@bot.example", name="Bot Customer")
    invoice_id = failed_invoice(ops)
    return AdminApi(ops, f"invoice_failed#{invoice_id}")


@MOTO_ADMIN
@given(body=invoice_bodies())
@examples("body", NASTY_INVOICES)
def test_any_invoice_body_through_the_handler_is_a_2xx_or_a_4xx_that_changes_nothing(admin_api, body):
    run = next(RUN)
    body = body.replace(INVOICE["request_id"], f"req-property-{run:06d}")  # a fresh request each time
    before = admin_api.state()
    reply = admin_api.call("POST", "/invoices", body=body)
    if admin_api.check(reply, before) == 201:
        issued, sent = json.loads(reply["body"]), json.loads(body)
        invoice = admin_api.ops.fake.invoices[issued["invoice_id"]]
        assert 1 <= issued["amount_minor"] == expected_minor(sent) <= 99_999_999
        assert sum(line["amount"] for line in invoice["lines"]["data"]) == issued["amount_minor"]
        assert all(
            not isinstance(sent.get(name), str) or sent[name].strip().isascii() for name in ("amount", "amount_minor")
        )


@MOTO_ADMIN
@given(action=st.sampled_from(["retry", "resend"]), params=st.none() | st.dictionaries(st.just("id"), ALERT_IDS))
@examples("params", NASTY_ALERT_IDS, action="resend")
def test_any_alert_path_through_the_handler_is_a_2xx_or_a_4xx_that_changes_nothing(admin_api, action, params):
    before = admin_api.state()
    reply = admin_api.call("POST", f"/billing/alerts/{{id}}/{action}", pathParameters=params)
    status = admin_api.check(reply, before)
    assert status in (200, 404, 409) if acceptable_path_id(params) else status == 400


@MOTO_ADMIN
@given(params=QUERY)
@examples("params", NASTY_QUERIES)
def test_any_export_query_through_the_handler_is_a_csv_or_a_400(admin_api, params):
    before = admin_api.state()
    reply = admin_api.call("GET", "/billing/export.csv", queryStringParameters=params)
    status = admin_api.check(reply, before)
    assert status in (200, 400) and admin_api.state() == before  # a read, whatever the answer
    if status == 200:
        assert all(params[n].isascii() and 2000 <= int(params[n][:4]) <= 2999 for n in ("month", "from", "to")
                   if n in (params or {}))  # fmt: skip


def test_a_percent_encoded_alert_id_reaches_the_alert_through_the_handler(admin_api):
    encoded = admin_api.alert_id.replace("#", "%23")
    reply = admin_api.call("POST", "/billing/alerts/{id}/resend", pathParameters={"id": encoded})
    assert reply["statusCode"] == 200 and json.loads(reply["body"])["alert_id"] == admin_api.alert_id


def test_stripes_largest_amount_is_invoiced_and_one_more_is_refused_before_anything_is_recorded(admin_api):
    body = {**INVOICE, "amount": None, "amount_minor": "99999999"}
    assert admin_api.call("POST", "/invoices", body=json.dumps(body))["statusCode"] == 201
    before = admin_api.state()
    over = {**body, "request_id": "req-over-the-limit", "amount_minor": "100000000"}
    reply = admin_api.call("POST", "/invoices", body=json.dumps(over))
    assert reply["statusCode"] == 400 and "amount_minor is over Stripe's largest amount" in reply["body"]
    assert admin_api.state() == before
