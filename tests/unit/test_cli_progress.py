"""Progress of long CLI runs (cli_errors.Progress): shown for long runs only, at most once a second."""

from __future__ import annotations

import io

from finops_guard.cli_errors import Progress


class Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def run(total: int, step: float) -> list[str]:
    stream = io.StringIO()
    progress = Progress(total, "budgets written", clock=Clock(step), stream=stream)
    for _ in range(total):
        progress.step()
    return stream.getvalue().splitlines()


def test_a_long_run_shows_where_it_is_about_once_a_second():
    lines = run(3000, step=0.25)  # every call to the clock is a quarter of a second later
    assert lines[:2] == ["  4/3000 budgets written", "  8/3000 budgets written"]
    assert len(lines) == 749  # every 4th item, not the last: the command's summary says that one


def test_a_short_run_or_a_fast_one_prints_nothing():
    assert run(99, step=10.0) == []
    assert run(3000, step=0.0) == []
