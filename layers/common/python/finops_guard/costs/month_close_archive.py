"""The month-close archive: one CSV and one self-contained HTML page per month, what people forward.

The HTML page says what the card says, every budget included, in the cards' one style; it has inline
CSS, no script and no external resource (a Content-Security-Policy says so), and every text is
escaped. The CSV keeps machine text: ISO months and period keys, amounts with the currency's minor
digits, ratios as percentages with two decimals.
"""

from __future__ import annotations

import csv
import html
import io
from decimal import Decimal

from finops_guard.core.money import minor_units
from finops_guard.costs.cards import month_close as wording
from finops_guard.costs.month_close import MonthCloseReport

CSV_HEADER = ("month", "status", "section", "name", "metric", "value", "unit")


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:.{minor_units(currency)}f}"


def _percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def to_csv(report: MonthCloseReport) -> str:
    """RFC 4180 CSV (CRLF line ends): one figure per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    c = report.currency

    def row(section: str, name: str, metric: str, value: str, unit: str) -> None:
        writer.writerow((report.month, report.status, section, name, metric, value, unit))

    row("summary", "total", "actual", _money(report.total, c), c)
    if report.previous_total is not None:
        row("summary", "total", "previous month", _money(report.previous_total, c), c)
    if report.year_ago_total is not None:
        row("summary", "total", "same month last year", _money(report.year_ago_total, c), c)
    row("summary", "total", "estimated by Cost Explorer", str(report.estimated).lower(), "")
    row("summary", "total", "cost metric (usage only)", report.metric, "")
    for b in report.budgets:
        row("budget", b.budget_id, "amount", _money(b.amount, b.currency), b.currency)
        row("budget", b.budget_id, "actual", _money(b.actual, b.currency), b.currency)
        if b.error:
            row("budget", b.budget_id, "error", b.error, "")
            continue
        row("budget", b.budget_id, f"variance ({b.basis})", _money(b.variance, b.currency), b.currency)
        row("budget", b.budget_id, f"variance ({b.basis})", _percent(b.variance_ratio), "percent")
        row("plan", b.budget_id, f"forecast {b.plan_key} likely", _money(b.plan_likely, b.currency), b.currency)
        row("plan", b.budget_id, f"forecast {b.plan_key} low", _money(b.plan_low, b.currency), b.currency)
        row("plan", b.budget_id, f"forecast {b.plan_key} high", _money(b.plan_high, b.currency), b.currency)
        if b.proposal is not None:
            row("plan", b.budget_id, "proposed amount", _money(b.proposal.amount, b.currency), b.currency)
    for s in report.services:
        row("service", s.name, "actual", _money(s.amount, c), c)
        row("service", s.name, "previous month", _money(s.previous, c), c)
    for s in report.movers:
        row("mover", s.name, "change", _money(s.change, c), c)
    for u in report.untagged:
        row("untagged", u.dimension, "untagged", _money(u.untagged, c), c)
        row("untagged", u.dimension, "share", _percent(u.share), "percent")
    for currency, amount in report.savings_realised:
        row("savings", "realised", "amount", _money(amount, currency), currency)
    for change in report.changes:
        row("changed", change.label, "provisional", _money(change.before, c), c)
        row("changed", change.label, "final", _money(change.after, c), c)
    for what, count in report.requests:
        row("requests", what, "Cost Explorer requests", str(count), "requests")
    return out.getvalue()


CSS = """
body{font:15px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#201f1e;margin:2rem auto;
max-width:60rem;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #edebe9}
.sub{color:#605e5c;margin-top:0}table{border-collapse:collapse;width:100%}
td{padding:.3rem .5rem;border-bottom:1px solid #f3f2f1;vertical-align:top}td:first-child{font-weight:600;width:32%}
.note{color:#605e5c;font-size:.9rem}.provisional{color:#a4262c}
code{background:#f3f2f1;padding:0 .2rem}
"""


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td>{html.escape(t)}</td><td>{html.escape(v)}</td></tr>" for t, v in rows)
    return f"<table>{cells}</table>"


def _note(text: str) -> str:
    """A note, its `code` spans (file names) as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(report: MonthCloseReport, timezone: str, stage: str) -> str:
    """A standalone HTML document of the report (every budget, not only the card's first ones)."""
    title = wording.title(report)
    sub = f"Stage {stage} · {wording.subtitle(report, timezone)}"
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="sub">{html.escape(sub)}</p>']
    status = wording.status_notes(report)
    if status:
        parts.append("".join(f'<p class="provisional">{html.escape(n)}</p>' for n in status))
    full = [
        ("Executive summary", wording.summary_rows(report)),
        *[(h, r) for h, r in wording.sections(report)[1:] if not h.startswith(("Budgets", "Next month"))],
    ]
    if report.budgets:
        every = [(b.name, wording.budget_variance_text(b)) for b in report.budgets]
        plans = [(b.name, wording.plan_text(b)) for b in report.budgets]
        full[1:1] = [("Budgets: actual against amount", every), (wording.PLAN_HEADING, plans)]
    for heading, rows in full:
        parts.append(f"<h2>{html.escape(heading)}</h2>{_table(rows)}")
    changed = wording.changes_note(report)
    if changed:
        parts.append(f'<p class="note">{html.escape(changed)}</p>')
    parts.append(f'<p class="note">{_note(wording.requests_note(report))}</p>')
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )
