"""What every cost card says about its numbers (issue 19): the cost metric they are in, usage apart
from credits, refunds and tax, and which breakdown the second ranking is.

Teams and Slack renderings call these and nothing else for that content, so the wording lives in
one place and both channels say the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finops_guard.core.money import format_money
from finops_guard.costs.cost_metric import CostMetric
from finops_guard.costs.record_types import Charges

if TYPE_CHECKING:
    from finops_guard.costs.budget_guard import BudgetStatus, Firing
    from finops_guard.costs.chargeback import Chargeback
    from finops_guard.costs.report import WeeklyReport

METRIC_TITLE = "Cost metric"
CHARGES_RULE_TEXT = {
    "proportional": "no owner carries them: shared in proportion to tagged usage, as untagged cost",
    "separate": "no owner carries them: kept on unallocated lines, as untagged cost",
}
BASIS_TEXT = {
    "usage": "usage: before credits, refunds and tax",
    "net": "net: after credits, refunds and tax",
}


def metric_text(metric: CostMetric) -> str:
    """`amortized (AmortizedCost)`."""
    return f"{metric.label} ({metric.value})"


def charges_text(charges: Charges) -> str:
    """`Usage $1,000.00 · Credits -$50.00 · Tax $20.00 · Net $970.00`: kinds that are zero are left
    out, net is always said (and that there is nothing besides usage, when so)."""
    c = charges.currency
    parts = [f"Usage {format_money(charges.usage, c)}"]
    for label, amount in (("Credits", charges.credits), ("Refunds", charges.refunds), ("Tax", charges.tax)):
        if amount:
            parts.append(f"{label} {format_money(amount, c)}")
    if not charges.any_besides_usage:
        parts.append("no credits, refunds or tax")
    parts.append(f"Net {format_money(charges.net, c)}")
    return " · ".join(parts)


def kpi_facts(report: WeeklyReport) -> list[tuple[str, str]]:
    """The weekly (and team) card's facts: its cost metric and, month to date, usage, credits,
    refunds, tax and net. None without cost data: the card says there is none, not that it is zero."""
    if not report.has_cost_data:
        return []
    facts = [(METRIC_TITLE, f"{metric_text(report.metric)}, usage only in the figures above")]
    if report.charges is not None:
        month_word = "month total" if report.window.month_complete else "month-to-date"
        facts.append((f"Usage, credits, refunds, tax ({month_word})", charges_text(report.charges)))
    return facts


def breakdown_heading(report: WeeklyReport) -> str:
    """`Top regions (MTD · week over week)`, worded as every ranked heading (early in the month the
    lines also say the last 7 days); linked accounts by default."""
    from finops_guard.costs.cards.common import ranked_heading  # common imports this module

    return ranked_heading(report.breakdown.heading, report)


def budget_fact(status: BudgetStatus) -> tuple[str, str]:
    """The alert card's line: which metric, on which basis."""
    basis = BASIS_TEXT.get(status.budget.basis, status.budget.basis)
    return (METRIC_TITLE, f"{metric_text(status.metric)} · {basis}")


def chargeback_facts(chargeback: Chargeback) -> list[tuple[str, str]]:
    """The chargeback card's lines: the metric, and the month's usage, credits, refunds, tax, net."""
    charges = Charges(
        usage=chargeback.kind_total("usage"),
        credits=chargeback.kind_total("credits"),
        refunds=chargeback.kind_total("refunds"),
        tax=chargeback.kind_total("tax"),
        currency=chargeback.currency,
    )
    facts = [(METRIC_TITLE, metric_text(chargeback.metric)), ("Usage, credits, refunds, tax", charges_text(charges))]
    if charges.any_besides_usage:
        facts.append(("Credits, refunds, tax rule", CHARGES_RULE_TEXT[chargeback.rule]))
    return facts


def digest_fact(firings: list[Firing]) -> tuple[str, str]:
    """The digest's line: the metric of its alerts (one per deployment) and their bases."""
    bases = sorted({firing.status.budget.basis for firing in firings})
    metric = firings[0].status.metric if firings else CostMetric.UNBLENDED
    return (METRIC_TITLE, f"{metric_text(metric)} · basis {', '.join(bases) or 'usage'}")
