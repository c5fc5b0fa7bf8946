"""A realistic month of Stripe events (November 2026) for the demo and the benchmark.

Five customers in four currencies (USD, EUR, JPY with no decimals, KWD with three): subscriptions,
weekly booking-fee invoices, a payment that fails twice then succeeds, one that fails three times
(escalation) and needs customer action, a refund, a credit note, a Stripe billing alert, a
duplicate delivery and a late `invoice.payment_failed` that arrives after `invoice.paid`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devtools import stripe_events as se

CUSTOMERS = {
    "cus_AcmeRentals01": ("usd", 4900, 1850),
    "cus_BrasserieLum1": ("eur", 9900, 0),
    "cus_SakuraStays01": ("jpy", 12000, 38000),
    "cus_DeltaTours001": ("usd", 19900, 0),
    "cus_KuwaitCharter": ("kwd", 12345, 2500),
}
# The names Stripe copies onto each customer's finalized invoices (the finance cards show them first).
NAMES = {
    "cus_AcmeRentals01": "Acme Rentals",
    "cus_BrasserieLum1": "Brasserie Lumière",
    "cus_SakuraStays01": "Sakura Stays",
    "cus_DeltaTours001": "Delta Tours",
    "cus_KuwaitCharter": "Kuwait Charter",
}


def at(day: int, hour: int = 9) -> int:
    return int(datetime(2026, 11, day, hour, tzinfo=UTC).timestamp())


def month_of_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    seq = 0

    def add(event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        event = se.event(event_type, obj, event_id=f"evt_1Demo{seq:04d}Nov2026xxxxxxx", created=created)
        events.append(event)
        return event

    for n, (customer, (currency, fee, usage)) in enumerate(CUSTOMERS.items()):
        add("customer.subscription.created", se.subscription(f"sub_demo{n}", customer, currency=currency), at(1, 8))
        for week, day in enumerate((2, 9, 16, 23)):
            invoice_id = f"in_demo{n}w{week}"
            subscription = fee if week == 0 else 0
            bookings = usage * (week + 1)
            if not subscription and not bookings:
                continue
            args: dict[str, Any] = {"currency": currency, "subscription_minor": subscription, "usage_minor": bookings,
                                    "customer_name": NAMES[customer]}  # fmt: skip
            add("invoice.created", se.invoice(invoice_id, customer, status="draft", **args), at(day, 6))
            add("invoice.finalized", se.invoice(invoice_id, customer, **args), at(day, 7))
            add("invoice.sent", se.invoice(invoice_id, customer, **args), at(day, 7))
            if customer == "cus_BrasserieLum1" and week == 0:
                for attempt, fail_day in ((1, 2), (2, 4)):
                    add("invoice.payment_failed", se.invoice(invoice_id, customer, attempt_count=attempt, **args),
                        at(fail_day, 10))  # fmt: skip
                add("invoice.paid", se.invoice(invoice_id, customer, status="paid", paid_at=at(6), **args), at(6))
                continue
            if customer == "cus_DeltaTours001" and week == 0:
                for attempt, fail_day in ((1, 2), (2, 5), (3, 9)):
                    add("invoice.payment_failed", se.invoice(invoice_id, customer, attempt_count=attempt, **args),
                        at(fail_day, 10))  # fmt: skip
                add("invoice.payment_action_required", se.invoice(invoice_id, customer, attempt_count=3, **args),
                    at(9, 11))  # fmt: skip
                continue
            paid = add("invoice.paid", se.invoice(invoice_id, customer, status="paid", paid_at=at(day, 8), **args),
                       at(day, 8))  # fmt: skip
            if customer == "cus_AcmeRentals01" and week == 1:
                events.append(paid)  # Stripe delivers the same event twice
                late = se.invoice(invoice_id, customer, attempt_count=1, **args)
                add("invoice.payment_failed", late, at(day, 7))  # created before paid, delivered after it
    add("charge.refunded", se.charge("ch_demoAcme", "cus_AcmeRentals01", amount=6700, refunded=1850), at(12))
    note = se.credit_note(
        "cn_demoBrasserie", "cus_BrasserieLum1", "in_demo1w0", total=990, currency="eur", created=at(14)
    )
    add("credit_note.created", note, at(14))
    add("billing.alert.triggered", se.billing_alert("alrt_demoSakura", "cus_SakuraStays01"), at(20))
    add("customer.subscription.updated", se.subscription("sub_demo3", "cus_DeltaTours001", status="past_due"), at(9))
    return events
