"""The chargeback announcement: per dimension, the month's total, untagged share, the largest
owners, and a short-lived download link to the CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finops_guard.core.cards import adaptive_card, open_url, wrap
from finops_guard.core.formats import format_instant, format_month
from finops_guard.core.money import format_money, format_percent
from finops_guard.costs.cards import charges
from finops_guard.costs.cards.common import short
from finops_guard.costs.chargeback import Chargeback
from finops_guard.costs.kpis import ratio

MAX_OWNERS = 8
RULE_TEXT = {
    "proportional": "untagged cost shared in proportion to tagged spend",
    "separate": "untagged cost kept as unallocated lines",
}


def _owner(name: str) -> str:
    return short(name, 40) if name else "unallocated"


def _facts(chargeback: Chargeback) -> list[tuple[str, str]]:
    c = chargeback.currency
    untagged = chargeback.untagged()
    usage = chargeback.kind_total("usage")
    facts = [
        ("Total", format_money(chargeback.total, c)),
        ("Untagged", f"{format_money(untagged, c)} ({format_percent(ratio(untagged, usage))})"),
        ("Rule", RULE_TEXT[chargeback.rule]),
    ]
    facts += charges.chargeback_facts(chargeback)
    owners = chargeback.by_owner()
    facts += [(_owner(owner), format_money(amount, c)) for owner, amount in owners[:MAX_OWNERS]]
    if len(owners) > MAX_OWNERS:
        facts.append(("…", f"{len(owners) - MAX_OWNERS} more in the CSV"))
    return facts


def _notes(chargebacks: list[Chargeback], complete: bool) -> list[str]:
    notes = []
    if not complete:
        notes.append("Provisional: the month's last UTC cost day had not ended when this ran.")
    if any(cb.estimated for cb in chargebacks):
        month = chargebacks[0].month
        notes.append(
            "Cost Explorer still marks this month as estimated until AWS finalises the invoice;"
            f" run `finops-guard chargeback run --month {month}` again then (the bucket keeps every version)."
        )
    return notes


def render_chargeback(
    published: list[tuple[Chargeback, str]], channel: str, *, expires_at: datetime, timezone: str, complete: bool
) -> dict[str, Any]:
    """`published`: (chargeback, download URL) per dimension, all for one month."""
    month = published[0][0].month
    title = f"Chargeback {format_month(month.first)}"
    expiry = (
        f"Links expire {format_instant(expires_at, timezone)};"
        f" `finops-guard chargeback link --month {month}` makes new ones."
    )
    notes = _notes([cb for cb, _ in published], complete)
    if channel == "slack":
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
        for chargeback, url in published:
            lines = "\n".join(f"• *{t}*: {v}" for t, v in _facts(chargeback))
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
                f"*By {chargeback.dimension.label}*\n{lines}\n<{url}|Download CSV>")[:3000]}})  # fmt: skip
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " ".join([*notes, expiry])}]})
        return {"text": title, "blocks": blocks}
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": title, "size": "Large", "weight": "Bolder"}]
    for chargeback, _ in published:
        body.append({"type": "TextBlock", "text": f"By {chargeback.dimension.label}", "weight": "Bolder",
                     "separator": True, "spacing": "Medium"})  # fmt: skip
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _facts(chargeback)]})
    for note in [*notes, expiry]:
        body.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True, "size": "Small"})
    actions = [open_url(f"Download CSV ({cb.dimension.label})", url) for cb, url in published]
    return wrap(adaptive_card(body, actions))
