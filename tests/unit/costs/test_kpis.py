from decimal import Decimal as D

from finops_guard.costs import kpis


def test_daily_burn_divides_by_elapsed_calendar_days():
    assert kpis.daily_burn(D("300"), 15) == D("20")


def test_week_over_week_change_from_zero_is_undefined():
    change = kpis.Change(D("70"), D("0"))
    assert change.delta == D("70") and change.relative is None
    assert kpis.Change(D("110"), D("100")).relative == D("0.1")


def test_top_n_keeps_the_biggest_and_sums_the_rest_as_other():
    items = {f"svc{i}": (D(i), D(i), D(0)) for i in range(1, 9)}
    items["idle"] = (D(0), D(0), D(0))
    ranked = kpis.top_with_other(items, 5)
    assert [r.name for r in ranked] == ["svc8", "svc7", "svc6", "svc5", "svc4", "Other (3)"]
    assert ranked[-1].month_to_date == D(1 + 2 + 3)
    assert ranked[-1].week_over_week.current == D(6)


def test_top_n_without_a_rest_has_no_other_row():
    ranked = kpis.top_with_other({"a": (D(2), D(1), D(1)), "b": (D(1), D(0), D(1))}, 5)
    assert [r.name for r in ranked] == ["a", "b"]
