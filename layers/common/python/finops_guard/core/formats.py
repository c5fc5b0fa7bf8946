"""How every card of both products writes a date, a period and an instant: one style.

- a day: `Tue 1 Dec 2026`;
- a range of days: `1–7 Dec 2026`, `25 Nov – 1 Dec 2026`, `28 Dec 2026 – 3 Jan 2027` (a range of
  one day is that day);
- a month: `Dec 2026`; a quarter: `Q4 2026`; a year: `2026`;
- an instant: `1 Dec 2026 14:26 Europe/Madrid`, in the stage's time zone, named as configured;
- a chart axis, where space is short: `1 Dec` (the same order, without weekday and year).

Machine text keeps ISO 8601: ids, CLI arguments (`--month 2026-11`), CSV and JSON fields.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _month(day: date) -> str:
    return _MONTHS[day.month - 1]  # not %b: the locale must not change a card


def format_day(day: date) -> str:
    """`Tue 1 Dec 2026`."""
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_month(day)} {day.year}"


def format_axis_day(day: date) -> str:
    """`1 Dec`: a day on a chart axis."""
    return f"{day.day} {_month(day)}"


def format_days(first: date, last: date) -> str:
    """An inclusive range of days: `1–7 Dec 2026`, `25 Nov – 1 Dec 2026`, `28 Dec 2026 – 3 Jan 2027`."""
    if first == last:
        return format_day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {_month(last)} {last.year}"
    if first.year == last.year:
        return f"{first.day} {_month(first)} – {last.day} {_month(last)} {last.year}"
    return f"{first.day} {_month(first)} {first.year} – {last.day} {_month(last)} {last.year}"


def format_month(day: date) -> str:
    """The month containing `day`: `Dec 2026`."""
    return f"{_month(day)} {day.year}"


def format_period(key: str) -> str:
    """A budget or billing period key as a reader says it: `2026-12` -> `Dec 2026`,
    `2026-Q4` -> `Q4 2026`, `2026` -> `2026`. Anything else is returned as it is."""
    year, _, part = key.partition("-")
    if not (year.isdigit() and len(year) == 4):
        return key
    if not part:
        return year
    if part.startswith("Q") and part[1:] in ("1", "2", "3", "4"):
        return f"{part} {year}"
    if part.isdigit() and 1 <= int(part) <= 12:
        return f"{_MONTHS[int(part) - 1]} {year}"
    return key


def format_instant(moment: datetime, timezone: str) -> str:
    """`1 Dec 2026 14:26 Europe/Madrid`: an aware instant in the stage's time zone (naive = UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    local = aware.astimezone(ZoneInfo(timezone))
    return f"{local.day} {_month(local)} {local.year} {local:%H:%M} {timezone}"


def format_stamp(text: str | None, timezone: str) -> str:
    """A stored ISO 8601 timestamp (`2026-12-02T15:59:03+00:00`, `...Z`) as an instant; an unreadable
    one as it is, and none as `unknown`."""
    if not text:
        return "unknown"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return format_instant(moment, timezone)
