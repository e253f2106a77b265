"""Projection math: `sum` extrapolates usage so far over the whole month (U itself in the first hour); others keep U."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.projections import project_bucket, project_usage


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


NOV, DEC = utc(2026, 11, 1), utc(2026, 12, 1)


def test_first_hour_of_the_month_projects_usage_so_far():
    assert project_usage(Decimal("7"), "sum", NOV, DEC, NOV) == Decimal("7")
    assert project_usage(Decimal("7"), "sum", NOV, DEC, NOV + timedelta(minutes=59, seconds=59)) == Decimal("7")


def test_at_one_hour_a_30_day_month_is_720_hours():
    assert project_usage(Decimal("2"), "sum", NOV, DEC, NOV + timedelta(hours=1)) == Decimal("1440")


def test_middle_of_november_doubles_usage():
    assert project_usage(Decimal("45"), "sum", NOV, DEC, utc(2026, 11, 16)) == Decimal("90")


def test_a_third_of_the_way_through_triples_it():
    assert project_usage(Decimal("10.5"), "sum", NOV, DEC, utc(2026, 11, 11)) == Decimal("31.5")


def test_end_of_month_projects_usage_itself():
    assert project_usage(Decimal("123.456789"), "sum", NOV, DEC, DEC) == Decimal("123.456789")
    assert project_usage(Decimal("123.456789"), "sum", NOV, DEC, DEC + timedelta(days=3)) == Decimal("123.456789")


def test_thirty_one_day_month_at_day_ten():
    # December: 31 days; at Dec 11 00:00 10 days have passed: 20 · 31/10 = 62
    assert project_usage(Decimal("20"), "sum", DEC, utc(2027, 1, 1), utc(2026, 12, 11)) == Decimal("62")


@pytest.mark.parametrize("year, now, usage, expected", [
    (2027, utc(2027, 2, 15), "14", "28"),          # 28 days, 14 elapsed: 14 · 28/14
    (2028, utc(2028, 2, 15), "14", "29"),          # leap: 29 days, 14 elapsed: 14 · 29/14
    (2028, utc(2028, 2, 8, 12), "15", "58"),       # 7.5 days of 29: 15 · 29/7.5
    (2027, utc(2027, 2, 1, 0, 30), "3", "3"),      # first hour
    (2028, utc(2028, 2, 1, 2), "1", "348"),        # 2 h of 696 h
    (2027, utc(2027, 3, 1), "9.5", "9.5"),         # end of February
])
def test_february_leap_and_not(year, now, usage, expected):
    start = utc(year, 2, 1)
    assert project_usage(Decimal(usage), "sum", start, utc(year, 3, 1), now) == Decimal(expected)


def test_projection_keeps_six_places_rounded_half_up():
    # 1 · 720 h / 7 h = 102.857142857… → 102.857143
    assert project_usage(Decimal("1"), "sum", NOV, DEC, NOV + timedelta(hours=7)) == Decimal("102.857143")


@pytest.mark.parametrize("aggregation", ["max", "avg", "last", "p95", "count"])
def test_other_aggregations_project_usage_so_far(aggregation):
    assert project_usage(Decimal("42.5"), aggregation, NOV, DEC, utc(2026, 11, 16)) == Decimal("42.5")


class Template:
    def __init__(self, aggregation, commit, base, overage):
        self.id, self.client_id, self.aggregation = 1, 2, aggregation
        self.commit, self.base_price, self.overage_price = Decimal(commit), Decimal(base), Decimal(overage)


def test_projected_cost_and_percent_use_the_projected_usage():
    # U = 60 at mid-November → projected 120; commit 100 at $2, overage $3:
    # base 200.00 + overage 20·3 = 60.00 → 260.00; % of commit = 120.00
    row = project_bucket(Template("sum", "100", "2", "3"), Decimal("60"), NOV, DEC, utc(2026, 11, 16))
    assert (row.current_usage, row.projected_usage) == (Decimal("60"), Decimal("120"))
    assert row.projected_cost == Decimal("260.00")
    assert row.pct_of_commit == Decimal("120.00")


def test_percent_of_commit_is_empty_without_a_commit():
    row = project_bucket(Template("max", "0", "2", "3"), Decimal("5"), NOV, DEC, utc(2026, 11, 16))
    assert row.pct_of_commit is None
    assert row.projected_cost == Decimal("15.00")
