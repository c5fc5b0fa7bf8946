"""EventBridge Scheduler expressions expanded to the instants they fire in a month (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> set[int] | None:
    """Values of one cron field; None for `*`/`?`. Supports lists, ranges, names and a/b steps."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-")
            start, end = (names or {}).get(first, 0) or int(first), (names or {}).get(last, 0) or int(last)
        else:
            start = (names or {}).get(part, 0) or int(part)
            end = high if step > 1 else start
        if not low <= start <= end <= high:
            raise ValueError(f"cron field {text!r} outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def runs_in_month(expression: str, timezone: str, year: int, month: int) -> list[datetime]:
    """The UTC instants an EventBridge Scheduler expression fires in a calendar month (of the zone).
    rate(): from the first instant of the month. cron(): minutes hours day-of-month month
    day-of-week year, AWS flavour (day-of-week 1 = SUN); L, W and # are not supported."""
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        seconds = int(rate.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[rate.group(2).rstrip("s")]
        count = math.ceil((end - start).total_seconds() / seconds)
        return [(start + timedelta(seconds=i * seconds)).astimezone(UTC) for i in range(count)]
    cron = re.fullmatch(r"cron\((.+)\)", expression)
    if not cron or len(cron.group(1).split()) != 6:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    minutes, hours, dom, mon, dow, year_field = cron.group(1).split()
    if any(c in f"{dom}{dow}" for c in "LW#"):
        raise ValueError(f"unsupported cron field in {expression!r}")
    minute_set = _cron_field(minutes, 0, 59) or set(range(60))
    hour_set = _cron_field(hours, 0, 23) or set(range(24))
    dom_set, mon_set = _cron_field(dom, 1, 31), _cron_field(mon, 1, 12, _MONTHS)
    dow_set, year_set = _cron_field(dow, 1, 7, _DAYS), _cron_field(year_field, 1970, 2199)
    runs = []
    day = start.date()
    while day < end.date():
        aws_dow = day.isoweekday() % 7 + 1  # Sunday = 1
        wanted = (
            (dom_set is None or day.day in dom_set)
            and (dow_set is None or aws_dow in dow_set)
            and (mon_set is None or day.month in mon_set)
            and (year_set is None or day.year in year_set)
        )
        if wanted:
            for hour in sorted(hour_set):
                for minute in sorted(minute_set):
                    runs.append(datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC))
        day += timedelta(days=1)
    return runs
