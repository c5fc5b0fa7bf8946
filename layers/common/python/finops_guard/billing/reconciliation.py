"""Daily reconciliation of Stripe's invoices against the billing ledger.

The rules, as the README states them:

- **Window.** The run compares the invoices Stripe lists with `created >= now - reconciliation_days`
  (`FINOPSGUARD_RECONCILIATION_DAYS`, default and maximum 30), every page of them (auto-pagination).
  Thirty days is the limit because Stripe's Events API keeps events for 30 days: a webhook event the
  ledger missed longer ago can no longer be resent from Stripe, so a difference found later than that
  could not be repaired by replaying it.
- **What is compared.** For each listed invoice with status `paid`, Stripe's amount is the sum of its
  line amounts (its `subtotal` when Stripe did not embed every line), which is what the webhook books
  into the ledger. The ledger's amount is the sum of the ledger entries of kinds `subscription` and
  `booking_fee` whose `invoice_id` (or, without one, `source_id`) is that invoice. An invoice that is
  not paid (draft, open, void, uncollectible) counts 0 on the Stripe side, so a ledger amount booked
  for it is a difference too. Ledger entries of invoices Stripe did not list (created before the
  window) are read but not compared. Credit adjustments (refunds, credit notes) are excluded from
  both sides: Stripe's invoice amounts do not net them either.
- **Per customer and currency.** Amounts are summed per (customer, currency) as integers in minor
  units; currencies are never mixed or converted. The variance is
  `|ledger - stripe| / stripe * 100` per cent, a Decimal; with `stripe == 0` it is 0 when the ledger is 0
  too and infinite otherwise. A pair is a mismatch when its variance is strictly greater than
  `FINOPSGUARD_VARIANCE_PERCENT` (default 1): exactly 1.00 % is not a mismatch, 1.01 % is.
- **What is reported.** For each mismatching pair, the invoices whose own Stripe and ledger amounts
  differ (largest difference first). The stored result and the alert list at most 50 pairs and 20
  invoices in all (pairs by largest absolute difference first) and count the rest. Past-due invoices
  are listed as well: listed invoices with status `open` and a `due_date` before the run (at most 50,
  oldest due first, plus their count).
- **In flight.** An invoice paid, voided or marked uncollectible less than 15 minutes before the run
  is left out of this run (both sides; counted as `invoices_in_flight`): its webhook may still be on
  the way, and tomorrow's run compares it.
- **Alert.** A run with at least one mismatch opens (or refreshes) the billing alert
  `ledger_mismatch#<YYYY-MM-DD>` (UTC date of the run), so the finance channel gets one card per day
  while a mismatch lasts; alerts of earlier days are resolved by it. A run without mismatches
  resolves every open `ledger_mismatch` alert.

Times are UTC; amounts are integer minor units of the pair's ISO 4217 currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_UP, Decimal
from typing import Any, Protocol

MAX_DAYS = 30  # Stripe's Events API keeps 30 days of events
# An invoice paid (or voided) this recently may still have its webhook on the way: compare it next run.
IN_FLIGHT = timedelta(minutes=15)
LEDGER_KINDS = frozenset({"subscription", "booking_fee"})
TOTAL_PREFIX = "TOTAL#"
MAX_LISTED_INVOICES = 20
MAX_LISTED_PAIRS = 50
MAX_LISTED_PAST_DUE = 50
ALERT_KIND = "ledger_mismatch"
OBJECT_TYPE = "reconciliation"
LATEST_ID = "reconciliation#latest"
INFINITE = Decimal("Infinity")
_SHOWN = Decimal("0.0001")  # stored variances round away from zero: a mismatch never shows as <= the threshold


@dataclass(frozen=True)
class InvoiceDifference:
    invoice_id: str
    customer_id: str
    currency: str
    stripe_minor: int  # 0 unless Stripe says the invoice is paid
    ledger_minor: int
    stripe_status: str

    def as_record(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "customer_id": self.customer_id,
            "currency": self.currency,
            "stripe_minor": self.stripe_minor,
            "ledger_minor": self.ledger_minor,
            "stripe_status": self.stripe_status,
        }


@dataclass(frozen=True)
class PairMismatch:
    customer_id: str
    currency: str
    stripe_minor: int
    ledger_minor: int
    variance_percent: Decimal  # Decimal("Infinity") when Stripe's amount is 0
    invoice_count: int  # invoices of the pair whose amounts differ, listed or not
    invoices: tuple[InvoiceDifference, ...] = ()  # the listed ones (see MAX_LISTED_INVOICES)
    customer_name: str | None = None  # as Stripe's invoices name the customer (the card shows it first)

    @property
    def difference_minor(self) -> int:
        return self.ledger_minor - self.stripe_minor

    def as_record(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "currency": self.currency,
            "stripe_minor": self.stripe_minor,
            "ledger_minor": self.ledger_minor,
            "difference_minor": self.difference_minor,
            "variance_percent": shown_percent(self.variance_percent),
            "invoice_count": self.invoice_count,
            "invoices": [invoice.as_record() for invoice in self.invoices],
            **({"customer_name": self.customer_name} if self.customer_name else {}),
        }


@dataclass(frozen=True)
class PastDueInvoice:
    invoice_id: str
    customer_id: str
    currency: str
    amount_due: int  # minor units
    due_date: datetime
    hosted_invoice_url: str | None

    def as_record(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "customer_id": self.customer_id,
            "currency": self.currency,
            "amount_due": self.amount_due,
            "due_date": _iso(self.due_date),
            "hosted_invoice_url": self.hosted_invoice_url,
        }


@dataclass(frozen=True)
class ReconciliationResult:
    ran_at: datetime
    window_start: datetime  # inclusive: Stripe's `created >= window_start`
    window_end: datetime  # the run time
    variance_percent: Decimal  # the threshold the run used
    invoices_seen: int
    ledger_rows_seen: int
    pairs_compared: int
    mismatch_count: int  # mismatching (customer, currency) pairs, all of them
    mismatches: tuple[PairMismatch, ...] = ()  # at most MAX_LISTED_PAIRS, largest difference first
    invoices_not_listed: int = 0  # differing invoices of mismatching pairs beyond MAX_LISTED_INVOICES
    past_due_count: int = 0
    invoices_in_flight: int = 0  # changed state within IN_FLIGHT before the run: not compared this time
    past_due: tuple[PastDueInvoice, ...] = ()  # at most MAX_LISTED_PAST_DUE, oldest due first

    @property
    def run_date(self) -> str:
        return self.ran_at.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def alert_id(self) -> str:
        return f"{ALERT_KIND}#{self.run_date}"

    @property
    def dated_id(self) -> str:
        return f"{OBJECT_TYPE}#{self.run_date}"

    def alert_detail(self) -> dict[str, Any]:
        """The `detail` map of the ledger_mismatch alert (what the card shows)."""
        return {
            "mismatches": [pair.as_record() for pair in self.mismatches],
            "mismatch_count": self.mismatch_count,
            "invoices_not_listed": self.invoices_not_listed,
            "past_due_count": self.past_due_count,
            "variance_percent": self.variance_percent,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
        }

    def record(self) -> dict[str, Any]:
        """The stored result's attributes (besides object_id and object_type), plain values."""
        return {
            "status": "mismatch" if self.mismatch_count else "clean",
            "ran_at": _iso(self.ran_at),
            "run_date": self.run_date,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "variance_percent": self.variance_percent,
            "invoices_seen": self.invoices_seen,
            "ledger_rows_seen": self.ledger_rows_seen,
            "pairs_compared": self.pairs_compared,
            "mismatch_count": self.mismatch_count,
            "mismatches": [pair.as_record() for pair in self.mismatches],
            "mismatches_not_listed": self.mismatch_count - len(self.mismatches),
            "invoices_not_listed": self.invoices_not_listed,
            "past_due_count": self.past_due_count,
            "past_due": [invoice.as_record() for invoice in self.past_due],
            "past_due_not_listed": self.past_due_count - len(self.past_due),
            "invoices_in_flight": self.invoices_in_flight,
            "alert_id": self.alert_id if self.mismatch_count else None,
        }


class InvoiceSource(Protocol):
    def list_invoices(self, *, created_gte: int) -> Iterable[Mapping[str, Any]]: ...


class LedgerSource(Protocol):
    def ledger_entries(self, months: Sequence[str]) -> Iterable[Mapping[str, Any]]: ...


class ReconciliationSink(Protocol):
    def save_result(self, result: ReconciliationResult) -> None: ...

    def raise_alert(self, result: ReconciliationResult) -> str: ...

    def resolve_alerts(self, now: datetime, *, keep: str | None = None) -> list[str]: ...


@dataclass
class RunOutcome:
    result: ReconciliationResult
    alert: str | None = None  # opened | reopened | updated, when the run had mismatches
    resolved: list[str] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_percent(variance: Decimal) -> Decimal | None:
    """A variance as stored and shown: 4 decimals rounded away from zero; None for infinite."""
    return None if variance.is_infinite() else variance.quantize(_SHOWN, rounding=ROUND_UP)


def window_start(now: datetime, days: int) -> datetime:
    """The first instant compared: `now - days`, days capped at MAX_DAYS."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"reconciliation days must be 1..{MAX_DAYS}, got {days}")
    return now - timedelta(days=days)


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every "YYYY-MM" (UTC) from start's month to end's month, inclusive."""
    first, last = start.astimezone(UTC), end.astimezone(UTC)
    year, month = first.year, first.month
    months = []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def variance_percent(stripe_minor: int, ledger_minor: int) -> Decimal:
    """|ledger - stripe| / stripe * 100 (exact Decimal); 0 when both are 0, infinite when only Stripe's is."""
    if stripe_minor == 0:
        return Decimal(0) if ledger_minor == 0 else INFINITE
    return Decimal(abs(ledger_minor - stripe_minor)) * 100 / Decimal(abs(stripe_minor))


def stripe_amount(invoice: Mapping[str, Any]) -> int:
    """What the webhook books for a paid invoice: the sum of its lines, or `subtotal` when Stripe
    embedded only the first page of lines (or none)."""
    lines = invoice.get("lines")
    if isinstance(lines, Mapping):
        data = lines.get("data")
        if isinstance(data, list) and data and not lines.get("has_more"):
            return sum(int(line.get("amount") or 0) for line in data)
    return int(invoice.get("subtotal") or 0)


def _customer(invoice: Mapping[str, Any]) -> str:
    customer = invoice.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return str(customer or "unknown")


def _customer_name(invoice: Mapping[str, Any]) -> str | None:
    name = invoice.get("customer_name")
    if not isinstance(name, str) or not name.strip():
        return None
    return " ".join(name.split())[:256]


def _epoch(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def reconcile(
    invoices: Iterable[Mapping[str, Any]],
    ledger_entries: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    start: datetime,
    threshold_percent: Decimal,
) -> ReconciliationResult:
    """Compare Stripe's invoices (API dicts) with ledger entries (customer_id, kind, amount_minor,
    currency, invoice_id, source_id, entry_key). Invoices are read first, then the ledger is streamed:
    only a per-invoice sum of the listed invoices is kept, never the ledger rows."""
    # invoice id -> (customer, currency, status, amount Stripe says was paid)
    listed: dict[str, tuple[str, str, str, int]] = {}
    names: dict[str, str] = {}  # customer id -> name, from the invoices (cards show names before ids)
    past_due: list[PastDueInvoice] = []
    in_flight: set[str] = set()
    for invoice in invoices:
        invoice_id = str(invoice["id"])
        if invoice_id in listed or invoice_id in in_flight:
            continue
        if _changed_since(invoice, now - IN_FLIGHT):
            in_flight.add(invoice_id)
            continue
        status = str(invoice.get("status") or "draft")
        customer, currency = _customer(invoice), str(invoice.get("currency") or "").upper()
        if (name := _customer_name(invoice)) is not None:
            names[customer] = name
        listed[invoice_id] = (customer, currency, status, stripe_amount(invoice) if status == "paid" else 0)
        due = _epoch(invoice.get("due_date"))
        if status == "open" and due is not None and due < now:
            past_due.append(
                PastDueInvoice(invoice_id, customer, currency, int(invoice.get("amount_due") or 0), due,
                               invoice.get("hosted_invoice_url"))
            )  # fmt: skip

    booked: dict[tuple[str, str, str], int] = {}  # (invoice, customer, currency) -> ledger minor units
    rows = 0
    for entry in ledger_entries:
        if str(entry.get("entry_key") or "").startswith(TOTAL_PREFIX):
            continue
        rows += 1
        booked_for = entry.get("invoice_id") or entry.get("source_id")
        if entry.get("kind") not in LEDGER_KINDS or booked_for not in listed:
            continue
        key = (str(booked_for), str(entry["customer_id"]), str(entry["currency"]).upper())
        booked[key] = booked.get(key, 0) + int(entry["amount_minor"])

    pairs: dict[tuple[str, str], list[int]] = {}
    for customer, currency, _, amount in listed.values():
        pairs.setdefault((customer, currency), [0, 0])[0] += amount
    for (_, customer, currency), amount in booked.items():
        pairs.setdefault((customer, currency), [0, 0])[1] += amount
    mismatching = {
        pair: (stripe, ledger, variance)
        for pair, (stripe, ledger) in pairs.items()
        if (variance := variance_percent(stripe, ledger)) > threshold_percent
    }
    differences = _differences(listed, booked, mismatching.keys())
    ordered = sorted(mismatching, key=lambda p: (-abs(mismatching[p][1] - mismatching[p][0]), p))
    shown: list[PairMismatch] = []
    room = MAX_LISTED_INVOICES
    for pair in ordered[:MAX_LISTED_PAIRS]:
        stripe, ledger, variance = mismatching[pair]
        found = differences.get(pair, [])
        listed_here = tuple(found[:room])
        room -= len(listed_here)
        shown.append(
            PairMismatch(pair[0], pair[1], stripe, ledger, variance, len(found), listed_here, names.get(pair[0]))
        )
    total_differences = sum(len(found) for found in differences.values())
    past_due.sort(key=lambda p: (p.due_date, p.invoice_id))
    return ReconciliationResult(
        ran_at=now,
        window_start=start,
        window_end=now,
        variance_percent=threshold_percent,
        invoices_seen=len(listed),
        ledger_rows_seen=rows,
        pairs_compared=len(pairs),
        mismatch_count=len(mismatching),
        mismatches=tuple(shown),
        invoices_not_listed=total_differences - sum(len(p.invoices) for p in shown),
        past_due_count=len(past_due),
        past_due=tuple(past_due[:MAX_LISTED_PAST_DUE]),
        invoices_in_flight=len(in_flight),
    )


def _changed_since(invoice: Mapping[str, Any], since: datetime) -> bool:
    """Paid, voided or marked uncollectible at or after `since` (Stripe's status_transitions)."""
    transitions = invoice.get("status_transitions") or {}
    keys = ("paid_at", "voided_at", "marked_uncollectible_at")
    moments = [_epoch(transitions.get(key)) for key in keys] if isinstance(transitions, Mapping) else []
    return any(moment is not None and moment >= since for moment in moments)


def _differences(
    listed: Mapping[str, tuple[str, str, str, int]],
    booked: Mapping[tuple[str, str, str], int],
    pairs: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], list[InvoiceDifference]]:
    """Per mismatching pair, its invoices whose Stripe and ledger amounts differ, largest first."""
    wanted = set(pairs)
    found: dict[tuple[str, str], list[InvoiceDifference]] = {}
    for invoice_id, (customer, currency, status, amount) in listed.items():
        if (customer, currency) in wanted:
            ledger = booked.get((invoice_id, customer, currency), 0)
            if ledger != amount:
                found.setdefault((customer, currency), []).append(
                    InvoiceDifference(invoice_id, customer, currency, amount, ledger, status)
                )
    for (invoice_id, customer, currency), ledger in booked.items():
        stripe_customer, stripe_currency, status, _ = listed[invoice_id]
        # Booked under another customer or currency than Stripe's invoice: all of it is a difference.
        if (customer, currency) != (stripe_customer, stripe_currency) and (customer, currency) in wanted and ledger:
            found.setdefault((customer, currency), []).append(
                InvoiceDifference(invoice_id, customer, currency, 0, ledger, status)
            )
    for invoices in found.values():
        invoices.sort(key=lambda d: (-abs(d.ledger_minor - d.stripe_minor), d.invoice_id))
    return found


def run_reconciliation(
    *,
    invoices: InvoiceSource,
    ledger: LedgerSource,
    sink: ReconciliationSink,
    now: datetime,
    days: int,
    threshold_percent: Decimal,
) -> RunOutcome:
    """The daily run: list Stripe's invoices of the window, stream the ledger months the window
    overlaps, store the result, then open today's ledger_mismatch alert or resolve the open ones."""
    start = window_start(now, days)
    result = reconcile(
        invoices.list_invoices(created_gte=int(start.timestamp())),
        ledger.ledger_entries(months_between(start, now)),
        now=now,
        start=start,
        threshold_percent=threshold_percent,
    )
    sink.save_result(result)
    if result.mismatch_count:
        alert = sink.raise_alert(result)
        return RunOutcome(result, alert, sink.resolve_alerts(now, keep=result.alert_id))
    return RunOutcome(result, None, sink.resolve_alerts(now))
