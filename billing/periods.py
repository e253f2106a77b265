"""Billing periods: calendar months in UTC, `[first day 00:00, first day of next month 00:00)`."""
from __future__ import annotations

import re
from datetime import datetime, timezone

PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=timezone.utc)


def parse_period(text: str) -> datetime:
    """`YYYY-MM` → the period's start; ValueError with a clear message otherwise."""
    match = PERIOD_RE.match((text or "").strip())
    if not match:
        raise ValueError(f"period must be YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1970 <= year <= 9998:
        raise ValueError(f"period must be a real month, got {text!r}")
    return month_start(year, month)


def next_period(start: datetime) -> datetime:
    return month_start(start.year + (start.month == 12), start.month % 12 + 1)


def previous_period(start: datetime) -> datetime:
    return month_start(start.year - (start.month == 1), (start.month - 2) % 12 + 1)


def period_bounds(start: datetime) -> tuple[datetime, datetime]:
    return start, next_period(start)


def period_of(moment: datetime) -> datetime:
    moment = moment.astimezone(timezone.utc)
    return month_start(moment.year, moment.month)


def current_period_start(now: datetime | None = None) -> datetime:
    return period_of(now or datetime.now(timezone.utc))


def period_label(start: datetime) -> str:
    return start.strftime("%Y-%m")


def last_periods(count: int, before: datetime) -> list[datetime]:
    """The `count` periods ending just before `before`, oldest first."""
    periods = []
    start = period_of(before)
    for _ in range(count):
        start = previous_period(start)
        periods.append(start)
    return periods[::-1]
