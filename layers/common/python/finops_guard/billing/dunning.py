"""Dunning delivery: which due step to send, to whom, with what words. Pure.

The webhook records the steps (day 0 e-mail, day 1 SMS, day 3 final e-mail by default) when an
invoice payment fails and cancels pending ones when it is paid. The hourly dunning sender asks
this module, for each due step, what to do with it, after re-reading the invoice from Stripe:
- the invoice is paid, void or uncollectible (paid meanwhile, perhaps seconds ago): skip;
- several steps of one invoice are due at once (the sender was down, or the schedule is dense):
  send only the latest one and skip the earlier ones as superseded, so a customer never gets
  three reminders in the same minute;
- no e-mail address or phone number on the invoice, or no sender identity configured: fail the
  step with the reason (an alarm asks a human to look);
- otherwise send it, rendered from its template.

Templates are plain text with the placeholders {customer_name} {amount} {invoice_number}
{pay_link} {due_date} {day}. A template keyed "<day>:<channel>" (e.g. "3:email") wins over the
channel's ("email", "sms"); the defaults below apply to anything not configured.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from finops_guard.core.money import format_money, minor_units

log = logging.getLogger(__name__)
PLACEHOLDERS = frozenset({"customer_name", "amount", "invoice_number", "pay_link", "due_date", "day"})
SETTLED_STATUSES = frozenset({"paid", "void", "uncollectible"})
SMS_MAX_CHARS = 320

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "email": {
        "subject": "Payment failed for invoice {invoice_number}",
        "body": (
            "Hello {customer_name},\n\n"
            "we could not collect {amount} for invoice {invoice_number}. Please update your payment details "
            "or pay the invoice here:\n{pay_link}\n\nThe invoice is due on {due_date}.\n\nThank you."
        ),
    },
    "sms": {"body": "Payment of {amount} for invoice {invoice_number} failed. Pay here: {pay_link}"},
    "3:email": {
        "subject": "Final notice: invoice {invoice_number} is unpaid",
        "body": (
            "Hello {customer_name},\n\n"
            "this is the final reminder: {amount} for invoice {invoice_number} is still unpaid. Please pay it "
            "now to avoid an interruption of service:\n{pay_link}\n\nThank you."
        ),
    },
}


class TemplateError(ValueError):
    """A dunning template is malformed (unknown placeholder, missing field); the message names it."""


@dataclass(frozen=True)
class DueStep:
    invoice_id: str
    step: str  # "<day>#<channel>"
    day: int
    channel: str  # email | sms
    due_at: str  # ISO UTC


@dataclass(frozen=True)
class Message:
    channel: str
    to: str
    subject: str | None
    body: str


@dataclass(frozen=True)
class Decision:
    action: str  # send | skip | fail
    reason: str = ""
    message: Message | None = None


def parse_templates(text: str | None) -> dict[str, dict[str, str]]:
    """The defaults, overridden per key by the JSON object `text` (the stack validated it already)."""
    templates = {key: dict(value) for key, value in DEFAULT_TEMPLATES.items()}
    if not text:
        return templates
    try:
        configured = json.loads(text)
    except ValueError:
        raise TemplateError("dunning templates are not a JSON object") from None
    if not isinstance(configured, Mapping):
        raise TemplateError("dunning templates are not a JSON object")
    for key, value in configured.items():
        channel = str(key).split(":")[-1]
        if channel not in ("email", "sms") or not isinstance(value, Mapping):
            raise TemplateError(f"dunning template {key!r}: keys are email, sms or <day>:<channel>")
        fields = ("subject", "body") if channel == "email" else ("body",)
        for name in fields:
            if not isinstance(value.get(name), str) or not value[name].strip():
                raise TemplateError(f"dunning template {key!r} needs a {name}")
            unknown = _placeholders(value[name]) - PLACEHOLDERS
            if unknown:
                raise TemplateError(f"dunning template {key!r} uses unknown placeholder {{{sorted(unknown)[0]}}}")
        templates[str(key)] = {name: str(value[name]) for name in fields}
    return templates


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def template_for(templates: Mapping[str, Mapping[str, str]], day: int, channel: str) -> Mapping[str, str]:
    return templates.get(f"{day}:{channel}") or templates[channel]


def supersede(steps: Sequence[DueStep]) -> tuple[list[DueStep], list[tuple[DueStep, str]]]:
    """(steps to send, (step, reason) to skip): per invoice only its latest due step is sent."""
    latest: dict[str, DueStep] = {}
    for step in steps:
        current = latest.get(step.invoice_id)
        if current is None or (step.day, step.step) > (current.day, current.step):
            latest[step.invoice_id] = step
    send = [latest[invoice] for invoice in sorted(latest)]
    skip = [(s, f"superseded by {latest[s.invoice_id].step}") for s in steps if s is not latest[s.invoice_id]]
    return send, skip


def decide(
    step: DueStep,
    invoice: Mapping[str, Any] | None,
    templates: Mapping[str, Mapping[str, str]],
    *,
    sender_configured: bool,
) -> Decision:
    """What to do with one due step, given the invoice as Stripe has it now (None: not found)."""
    if invoice is None:
        return Decision("skip", "invoice not found in Stripe")
    status = str(invoice.get("status") or "")
    if status in SETTLED_STATUSES:
        return Decision("skip", f"invoice is {status}")
    if step.channel == "email":
        if not sender_configured:
            return Decision("fail", "no sender e-mail configured (context dunningSenderEmail)")
        to = invoice.get("customer_email")
        if not to:
            return Decision("fail", "the invoice has no customer e-mail")
    elif step.channel == "sms":
        to = invoice.get("customer_phone")
        if not to:
            return Decision("fail", "the invoice has no customer phone number")
    else:
        return Decision("fail", f"unknown channel {step.channel!r}")
    template = template_for(templates, step.day, step.channel)
    values = placeholder_values(invoice, step.day)
    subject = template["subject"].format_map(values) if step.channel == "email" else None
    body = template["body"].format_map(values)
    if step.channel == "sms" and len(body) > SMS_MAX_CHARS:
        body = body[: SMS_MAX_CHARS - 1] + "…"
    return Decision("send", message=Message(step.channel, str(to), subject, body))


def placeholder_values(invoice: Mapping[str, Any], day: int) -> dict[str, str]:
    """The template values of a Stripe invoice; the amount in the invoice's own currency format."""
    currency = str(invoice.get("currency") or "usd").upper()
    due_minor = int(invoice.get("amount_remaining") or invoice.get("amount_due") or 0)
    due_date = invoice.get("due_date")
    return {
        "customer_name": str(invoice.get("customer_name") or "customer"),
        "amount": format_money(Decimal(due_minor).scaleb(-minor_units(currency)), currency),
        "invoice_number": str(invoice.get("number") or invoice.get("id") or ""),
        "pay_link": str(invoice.get("hosted_invoice_url") or ""),
        "due_date": datetime.fromtimestamp(int(due_date), UTC).strftime("%Y-%m-%d") if due_date else "on receipt",
        "day": str(day),
    }


class StepStore(Protocol):
    def due_steps(self, now: datetime) -> Iterable[DueStep]: ...
    def claim(self, step: DueStep, now: datetime) -> bool: ...
    def mark_sent(self, step: DueStep, now: datetime, message_id: str, to_hint: str) -> bool: ...
    def mark_send_failed(self, step: DueStep, now: datetime, reason: str) -> bool: ...
    def skip(self, step: DueStep, now: datetime, reason: str) -> bool: ...
    def fail(self, step: DueStep, now: datetime, reason: str) -> bool: ...


class Channels(Protocol):
    def send(self, channel: str, to: str, subject: str | None, body: str) -> str: ...


@dataclass
class DunningRun:
    sent: list[str] = field(default_factory=list)  # "<invoice>/<step>"
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # left pending: Stripe unreachable, out of time
    lost_races: int = 0  # another run changed the step first


def send_due_steps(
    *,
    store: StepStore,
    invoice: Callable[[str], Mapping[str, Any] | None],
    channels: Channels,
    templates: Mapping[str, Mapping[str, str]],
    sender_configured: bool,
    now: datetime,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> DunningRun:
    """Send every due step at most once. `invoice(id)` re-reads the invoice from Stripe (None when
    Stripe does not know it); an error there leaves the step pending for the next run.
    `time_left()` in seconds: no new step is started with less than 15 s left."""
    run = DunningRun()
    send, superseded = supersede(list(store.due_steps(now)))
    for step, reason in superseded:
        _count(run, run.skipped, step, store.skip(step, now, reason))
    for step in send:
        name = f"{step.invoice_id}/{step.step}"
        if time_left() < 15:
            run.errors.append(name)
            continue
        try:
            current = invoice(step.invoice_id)
        except Exception as error:  # Stripe unreachable: the step stays pending for the next run
            log.warning("invoice not re-read; step left pending", extra={"step": name, "error": type(error).__name__})
            run.errors.append(name)
            continue
        decision = decide(step, current, templates, sender_configured=sender_configured)
        if decision.action == "skip":
            _count(run, run.skipped, step, store.skip(step, now, decision.reason))
        elif decision.action == "fail":
            log.error("dunning step cannot be sent", extra={"step": name, "reason": decision.reason})
            _count(run, run.failed, step, store.fail(step, now, decision.reason))
        else:
            _send(run, step, decision, store, channels, now)
    return run


def _send(run: DunningRun, step: DueStep, decision: Decision, store: StepStore, channels: Channels,
          now: datetime) -> None:  # fmt: skip
    assert decision.message is not None
    message = decision.message
    if not store.claim(step, now):
        run.lost_races += 1
        return
    name = f"{step.invoice_id}/{step.step}"
    try:
        message_id = channels.send(message.channel, message.to, message.subject, message.body)
    except Exception as error:  # claimed: at most once, so it fails rather than being retried
        reason = f"{message.channel} provider refused: {type(error).__name__}"
        log.error("dunning step send failed", extra={"step": name, "reason": reason})
        store.mark_send_failed(step, now, reason)
        run.failed.append(name)
        return
    store.mark_sent(step, now, message_id, mask_contact(message.to))
    run.sent.append(name)


def _count(run: DunningRun, bucket: list[str], step: DueStep, changed: bool) -> None:
    if changed:
        bucket.append(f"{step.invoice_id}/{step.step}")
    else:
        run.lost_races += 1


def mask_contact(to: str) -> str:
    """Enough to recognise an address or number in the audit trail, not the whole of it."""
    if "@" in to:
        local, _, domain = to.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"***{to[-4:]}" if len(to) > 4 else "***"
