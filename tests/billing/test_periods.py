"""Billing periods: `YYYY-MM` parsing, the months around a year end, and the bounds of what is a real month."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from billing.periods import (current_period_start, last_periods, month_start, next_period, parse_period,
                             period_bounds, period_label, period_of, previous_period)


def utc(year: int, month: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, start", [
    ("2026-01", utc(2026, 1)), ("2026-11", utc(2026, 11)), ("2026-12", utc(2026, 12)),
    (" 2026-12 ", utc(2026, 12)), ("1970-01", utc(1970, 1)), ("9998-12", utc(9998, 12)),
])
def test_a_period_is_four_digits_dash_two_digits_for_a_real_month(text, start):
    assert parse_period(text) == start
    assert parse_period(text).tzinfo == timezone.utc


@pytest.mark.parametrize("text", [
    "2026-1", "2026-001", "26-11", "02026-11", "2026/11", "2026-11-01", "x2026-11", "2026-11x", "", None,
    "2026-00", "2026-13", "1969-12", "9999-01", "0000-01",
])
def test_anything_else_is_refused_with_a_clear_message(text):
    with pytest.raises(ValueError, match="period must be"):
        parse_period(text)


def test_the_message_names_what_was_wrong():
    with pytest.raises(ValueError, match=r"^period must be YYYY-MM, got '2026-1'$"):
        parse_period("2026-1")
    with pytest.raises(ValueError, match=r"^period must be a real month, got '2026-13'$"):
        parse_period("2026-13")


@pytest.mark.parametrize("start, after", [
    (utc(2026, 11), utc(2026, 12)),   # November -> December, same year
    (utc(2026, 12), utc(2027, 1)),    # December -> January of the next year
    (utc(2026, 1), utc(2026, 2)),
])
def test_the_period_after(start, after):
    assert next_period(start) == after
    assert period_bounds(start) == (start, after)


@pytest.mark.parametrize("start, before", [
    (utc(2026, 1), utc(2025, 12)),    # January -> December of the year before
    (utc(2026, 2), utc(2026, 1)),     # February -> January, same year
    (utc(2026, 3), utc(2026, 2)),
    (utc(2026, 12), utc(2026, 11)),
])
def test_the_period_before(start, before):
    assert previous_period(start) == before


def test_a_moment_belongs_to_the_utc_month_it_falls_in():
    # 2026-12-01 00:30 at +01:00 is 2026-11-30 23:30 UTC: November
    assert period_of(datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))) == utc(2026, 11)
    assert period_of(utc(2026, 12, 31, 23)) == utc(2026, 12)
    assert current_period_start(utc(2026, 2, 28, 12)) == utc(2026, 2)
    assert current_period_start().day == 1


def test_label_and_month_start():
    assert period_label(utc(2026, 3)) == "2026-03"
    assert month_start(2026, 12) == datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_last_periods_are_the_ones_before_oldest_first_across_a_year_end():
    assert last_periods(3, utc(2026, 2, 15)) == [utc(2025, 11), utc(2025, 12), utc(2026, 1)]
    assert last_periods(0, utc(2026, 2)) == []


def test_a_moment_is_placed_in_utc_whatever_the_machines_time_zone(monkeypatch):
    # 2026-11-30 23:00 UTC is already December 1st in Auckland (+13:00): the period is still November
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        assert period_of(utc(2026, 11, 30, 23)) == utc(2026, 11)
        assert current_period_start(utc(2026, 11, 30, 23)) == utc(2026, 11)
    finally:
        monkeypatch.undo()
        time.tzset()
