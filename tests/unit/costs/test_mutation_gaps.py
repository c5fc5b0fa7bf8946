"""Promises the suite used to keep only by accident (issue 15): each test here fails on a deliberate
break of the rule it names, which the rest of the suite let through."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from finops_guard.core.periods import report_window
from finops_guard.costs.aggregate import aggregate_pages
from finops_guard.costs.cards.teams import teams_payload
from finops_guard.costs.forecast import fit_model
from finops_guard.costs.report import build_weekly_report

# --- dunning: a settled invoice gets no reminder, whichever way it was settled -------------------

DUNNING_NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


# --- reconciliation: "past due" means a due date before the run, not at it ----------------------

RUN_AT = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)


# --- the weekly card's budget gauge shows the forecast consumption, exactly ----------------------

REPORT_AT = datetime(2026, 11, 16, 7, tzinfo=UTC)  # as of Sun 15 Nov: 15 of 30 days elapsed


def rising_spend_pages() -> list[dict]:
    """Nov 1-5: 50 a day, 6-10: 100, 11-15: 150 (USD): month to date 1,500, so the burn rate heads for
    3,000 by 30 Nov, while the trend of the last 28 days (rising) heads for 4,465.93."""
    window = report_window(REPORT_AT)
    results, day = [], window.query_start
    while day <= window.as_of:
        amount = 50 if day.day <= 5 else 100 if day.day <= 10 else 150
        amount = amount if day.month == 11 else 0
        results.append(
            {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                "Estimated": False,
                "Groups": [
                    {
                        "Keys": ["Amazon Elastic Compute Cloud - Compute", "111111111111"],
                        "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}},
                    }
                ],
            }
        )
        day += timedelta(days=1)
    return [{"ResultsByTime": results}]


def gauge_for(budget: D) -> dict:
    window = report_window(REPORT_AT)
    assert (window.as_of, window.month_to_date.days, window.month.days) == (date(2026, 11, 15), 15, 30)
    report = build_weekly_report(aggregate_pages(rising_spend_pages(), window), stage="prod", currency="USD",
                                 top_n=5, generated_at=REPORT_AT, monthly_budget=budget)  # fmt: skip
    assert report.month_to_date == D(1500) and report.forecast_month_end.likely.quantize(D("0.01")) == D("5349.77")
    [gauge] = [
        e for e in teams_payload(report, "UTC")["attachments"][0]["content"]["body"] if e["type"] == "Chart.Gauge"
    ]
    return gauge


def test_the_budget_gauge_shows_the_month_end_forecast_as_a_share_of_the_budget():
    # Given 1,500 spent in 15 of 30 days, rising (forecast 5,349.77), against an 8,000 budget
    gauge = gauge_for(D(8000))
    # Then the gauge stands at 66 (%) of the card's one forecast: not the 18 % already spent, nor the
    # 37 % the burn rate's 3,000 would make; its label states the figure and the share it shows
    assert gauge["value"] == 66
    assert gauge["subLabel"] == "forecast $5,349.77 (66 %) of $8,000.00"


def test_the_budget_gauge_stops_at_full_while_its_label_says_how_far_over():
    gauge = gauge_for(D(2000))
    assert gauge["value"] == 100 and gauge["max"] == 100
    assert gauge["subLabel"] == "forecast $5,349.77 (267 %) of $2,000.00"


# --- forecast: few points mean Student's t, a visibly wider band than the normal's ---------------


def test_a_five_day_history_gets_a_student_t_band_not_a_normal_one():
    # Given five days alternating 10 / 14: their average 11.6, sample variance 19.2 / 4 = 4.8
    model = fit_model([D(10), D(14), D(10), D(14), D(10)])
    assert model.method == "short history: average of 5 days"
    # When the next day is forecast with an 80 % interval
    band = model.predict_sum(1, D("0.8"))
    # Then the margin is t(0.90; 4 df) = 1.5332 times the prediction's standard error
    # sqrt(4.8 * (1 + 1/5)) = 2.4; the normal's 1.2816 would give 3.08, not 3.68.
    spread = math.sqrt(4.8 * (1 + 1 / 5))
    assert float(band.likely) == pytest.approx(11.6)
    assert float(band.high - band.likely) == pytest.approx(1.5332 * spread, abs=0.01)
    assert float(band.likely - band.low) == pytest.approx(1.5332 * spread, abs=0.01)
