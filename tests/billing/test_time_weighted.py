"""Time-weighted usage (DESIGN.md "Time-weighted usage"): worked examples, then the SQL path held to the oracle."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.reference import reference_usages, time_weighted
from billing.run import bill_period
from billing.usage import BucketUsage, bucket_specs, bucket_usages, usage_for_specs
from extensions import db
from models import BillingReading, utcnow
from tests.api_helpers import bearer, make_key
from tests.factories import DEC, NOV, asset, bucket, client, readings, unit_type
from tests.conftest import SERVER_DB, empty_tables

D = Decimal
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOVEMBER_HOURS = D(720)


def gb(max_gap_minutes: int = 60):
    unit = unit_type("gb")
    unit.max_gap_minutes = max_gap_minutes
    db.session.flush()
    return unit


def stamp(moment: datetime) -> str:
    return moment.isoformat()


def both_paths(bucket_id: int, start: datetime = NOV, end: datetime = DEC) -> BucketUsage:
    """The bucket's usage by the default path, asserted equal to the other path (whole-month scan or per pair)."""
    specs = bucket_specs(db.session, [bucket_id])
    by_pairs = usage_for_specs(db.session, specs, start, end, whole_month=False)[bucket_id]
    by_month = usage_for_specs(db.session, specs, start, end, whole_month=True)[bucket_id]
    assert by_pairs == by_month
    assert bucket_usages(db.session, start, end, [bucket_id])[bucket_id] == by_pairs
    assert reference_usages(db.session, start, end, [bucket_id])[bucket_id] == by_pairs
    return by_pairs


def test_samples_every_five_minutes_hold_until_the_next_one(app):
    with app.app_context():
        unit, a = gb(60), asset("vm-1")
        day = datetime(2026, 11, 2, tzinfo=timezone.utc)
        # 288 samples of 10 GB, 00:00 … 23:55 on Nov 2: 287 hold 5 minutes each (to the next sample), the last one
        # holds the max gap (60 min): 1,435 + 60 = 1,495 minutes = 24.916667 h -> 10 GB x 1,495/60 h = 249.166667
        readings(a, [(stamp(day + timedelta(minutes=5 * i)), "10") for i in range(288)], unit=unit)
        tw = bucket("storage", "time_weighted", [a], unit=unit)
        usage = both_paths(tw.id)
        assert usage.per_asset == {a.id: D("249.166667")}
        assert usage.total == D("249.166667")
        # November has 720 h; 1,495 min are covered: 720 - 24.916667 = 695.083333 h of gap
        assert usage.gap_hours == {a.id: D("695.083333")}


def test_a_three_hour_hole_with_a_sixty_minute_max_gap_leaves_two_hours_of_gap(app):
    with app.app_context():
        unit, a = gb(60), asset("vm-1")
        hours = [NOV + timedelta(hours=h) for h in range(720)]
        hole = {datetime(2026, 11, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 10, 2, tzinfo=timezone.utc)}
        # hourly 2 GB samples all month except 01:00 and 02:00 on Nov 10: the 00:00 sample holds 60 min (max gap),
        # then nothing until 03:00 -> 2 h of gap; usage 2 GB x (720 - 2) h = 1,436 GB-h
        readings(a, [(stamp(moment), "2") for moment in hours if moment not in hole], unit=unit)
        tw = bucket("storage", "time_weighted", [a], unit=unit)
        usage = both_paths(tw.id)
        assert usage == BucketUsage(D("1436"), {a.id: D("1436")}, {a.id: D("2")})


def test_a_sample_before_the_period_start_is_carried_across_the_boundary(app):
    with app.app_context():
        unit, a = gb(60), asset("vm-1")
        readings(a, [
            ("2026-10-31T22:00:00+00:00", "100"),  # holds until 23:00 (max gap): nothing in November
            ("2026-10-31T23:30:00+00:00", "6"),    # holds until the next sample at 00:20: 20 min of November = 2 GB-h
            ("2026-11-01T00:20:00+00:00", "3"),    # holds 60 min (max gap) = 3 GB-h
            ("2026-11-30T23:30:00+00:00", "4"),    # holds 30 min, clipped at the period end = 2 GB-h
            ("2026-12-01T00:00:00+00:00", "50"),   # December
        ], unit=unit)
        tw = bucket("storage", "time_weighted", [a], unit=unit)
        usage = both_paths(tw.id)
        # 2 + 3 + 2 = 7 GB-h; covered 20 + 60 + 30 min = 1 h 50 min -> gap 720 - 1.833333 = 718.166667 h
        assert usage == BucketUsage(D("7"), {a.id: D("7")}, {a.id: D("718.166667")})
        # October sees 22:00 (60 min of 100) and 23:30 (30 min of 6, clipped at its end): 100 + 3 = 103 GB-h
        assert both_paths(tw.id, OCT, NOV).per_asset == {a.id: D("103")}


def test_readings_posted_in_other_time_zones_are_ordered_by_their_utc_instant(app):
    owner_id = None
    with app.app_context():
        unit = gb(30)
        owner_id = client().id
        db.session.commit()
    key = make_key(app, "admin", owner_id)
    body = [{"asset_id": "vm-tz", "source": "vm", "unit_type": "gb", "value": value, "timestamp": ts}
            for value, ts in [
                ("12", "2026-10-15T02:00:00+02:00"),   # = 00:00 UTC: holds 10 min, to the next instant (00:10)
                ("6", "2026-10-14T19:10:00-05:00"),    # = 00:10 UTC: holds 30 min (max gap), next is at 01:00
                ("3", "2026-10-15T06:30:00+05:30"),    # = 01:00 UTC: holds 30 min (max gap)
                ("99", "2026-10-15T00:00:00.5Z"),      # = 00:00:00.5 UTC: holds until 00:10 less half a second
            ]]
    response = app.test_client().post("/api/v1/readings", json=body, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["accepted"] == 4
    with app.app_context():
        from models import Asset
        a = db.session.scalar(sa.select(Asset).where(Asset.external_id == "vm-tz"))
        tw = bucket("storage", "time_weighted", [a], unit=unit_type("gb"))
        usage = both_paths(tw.id, OCT, NOV)
        # 12 x 0.5 s + 99 x (600 - 0.5) s + 6 x 1800 s + 3 x 1800 s = 6 + 59,350.5 + 10,800 + 5,400 = 75,556.5 GB-s
        # = 20.987916666… GB-h -> 20.987917; covered 600 + 1800 + 1800 s = 4,200 s of October's 744 h
        assert usage.per_asset == {a.id: D("20.987917")}
        assert usage.gap_hours == {a.id: D("742.833333")}  # 744 h - 4,200 s (1.166667 h)


def test_an_asset_without_readings_adds_nothing_and_is_all_gap(app):
    with app.app_context():
        unit, quiet = gb(), asset("quiet")
        tw = bucket("storage", "time_weighted", [quiet], unit=unit)
        assert both_paths(tw.id) == BucketUsage(D(0), {quiet.id: D(0)}, {quiet.id: NOVEMBER_HOURS})


def test_max_gap_comes_from_the_unit_type_and_assets_sum(app):
    with app.app_context():
        short, long_ = unit_type("mem"), unit_type("disk")
        short.max_gap_minutes, long_.max_gap_minutes = 15, 240
        a, b = asset("a"), asset("b")
        # one 8-unit sample each at Nov 3 12:00: 15 min -> 2 unit-h on mem; 240 min -> 32 unit-h on disk
        for target in (a, b):
            readings(target, [("2026-11-03T12:00:00+00:00", "8")], unit=short)
            readings(target, [("2026-11-03T12:00:00+00:00", "8")], unit=long_)
        mem = bucket("mem", "time_weighted", [a, b], unit=short)
        disk = bucket("disk", "time_weighted", [a, b], unit=long_)
        assert both_paths(mem.id).total == D("4")
        assert both_paths(disk.id).total == D("64")
        assert both_paths(disk.id).gap_hours == {a.id: D("716"), b.id: D("716")}


def test_a_reading_whose_hold_ends_at_or_before_the_period_start_adds_nothing_however_large(app):
    with app.app_context():
        unit, a, b = gb(60), asset("a"), asset("b")
        # a: 999,999,999,999.999999 at Oct 31 23:30 holds only until the next reading at 23:50, before November:
        # nothing (a single microsecond of it would be 277.78 GB-h); 1 GB at 23:50 holds 60 min, 50 of them in
        # November: 0.833333 GB-h, covered 50 min -> 719.166667 h of gap
        readings(a, [("2026-10-31T23:30:00+00:00", "999999999999.999999"), ("2026-10-31T23:50:00+00:00", "1")],
                 unit=unit)
        # b: one reading exactly the max gap before the start holds until 00:00 exactly: 0 GB-h, all 720 h gap
        readings(b, [("2026-10-31T23:00:00+00:00", "500")], unit=unit)
        tw = bucket("storage", "time_weighted", [a, b], unit=unit)
        usage = both_paths(tw.id)
        assert usage == BucketUsage(D("0.833333"), {a.id: D("0.833333"), b.id: D("0")},
                                    {a.id: D("719.166667"), b.id: NOVEMBER_HOURS})


def test_a_window_from_midday_to_evening_clips_at_both_of_its_moments(app):
    with app.app_context():
        unit, a, b = gb(60), asset("vm-1"), asset("vm-2")
        readings(a, [("2026-11-02T11:30:00+00:00", "2"), ("2026-11-02T18:00:00+00:00", "4")], unit=unit)
        tw = bucket("storage", "time_weighted", [a, b], unit=unit)
        start, end = datetime(2026, 11, 2, 12, tzinfo=timezone.utc), datetime(2026, 11, 2, 18, 30, tzinfo=timezone.utc)
        # [12:00, 18:30) is 6.5 h: 2 GB from 11:30 holds to 12:30, 30 min of it inside = 1 GB-h; 4 GB at 18:00 is
        # clipped at 18:30 = 2 GB-h; usage 3, covered 1 h -> 5.5 h gap; vm-2 without readings: all 6.5 h gap
        assert both_paths(tw.id, start, end) == BucketUsage(D("3"), {a.id: D("3"), b.id: D("0")},
                                                            {a.id: D("5.5"), b.id: D("6.5")})


def test_exact_for_the_largest_values_and_microsecond_holds(app):
    with app.app_context():
        unit, a = gb(44640), asset("big")
        # 999,999,999,999.999999 held 1 µs, then 0.000001 held the rest of November (to the period end)
        readings(a, [("2026-11-01T00:00:00+00:00", "999999999999.999999"),
                     ("2026-11-01T00:00:00.000001+00:00", "0.000001")], unit=unit)
        tw = bucket("storage", "time_weighted", [a], unit=unit)
        usage = both_paths(tw.id)
        # 999,999,999,999.999999 x 0.000001 s / 3600 = 277.777777777… unit-h;
        # 0.000001 x 2,591,999.999999 s / 3600 = 0.000719999999… ; together 277.778497777… -> 277.778498
        assert usage.per_asset == {a.id: D("277.778498")}
        assert usage.gap_hours == {a.id: D("0")}


def test_a_reading_in_the_last_half_millisecond_of_a_second_keeps_its_second(app):
    with app.app_context():
        unit, a = gb(5), asset("vm-1")
        # 0 GB at 22:29:59.998898, then 1 GB at 22:29:59.999500 (SQLite's strftime('%s') reads milliseconds and
        # would put .9995 in the next second): the first holds 602 µs, the second the max gap, 5 min, so
        # usage 1 GB x 5/60 h = 0.083333 and gap = 360 h - (300.000602 s / 3600) = 359.916666 h (half-up)
        readings(a, [("2026-11-02T22:29:59.998898+00:00", "0"), ("2026-11-02T22:29:59.999500+00:00", "1")],
                 unit=unit)
        tw = bucket("storage", "time_weighted", [a], unit=unit)
        start = datetime(2026, 11, 2, tzinfo=timezone.utc)
        usage = both_paths(tw.id, start, start + timedelta(hours=360))
        assert usage == BucketUsage(D("0.083333"), {a.id: D("0.083333")}, {a.id: D("359.916666")})


def test_the_billing_line_details_carry_gap_hours_per_asset(app):
    with app.app_context():
        unit, a, b = gb(60), asset("a"), asset("b")
        readings(a, [(stamp(OCT + timedelta(hours=h)), "1.5") for h in range(744)], unit=unit)
        readings(b, [("2026-10-05T00:00:00+00:00", "2")], unit=unit)
        bucket("storage", "time_weighted", [a, b], unit=unit, commit="1000", base="0.10", overage="0.20")
        db.session.commit()
        bill_period(db.session, OCT)
        line = db.session.scalar(sa.select(BillingReading))
        # a: 1.5 GB x 744 h = 1,116; b: 2 GB x 1 h = 2; U = 1,118 -> 118 over a 1,000 commit at $0.20 = $23.60
        assert line.total_usage == D("1118")
        assert line.overage_cost == D("23.60") and line.final_cost == D("123.60")
        assets = {item["external_id"]: item for item in line.details["assets"]}
        assert assets["a"]["usage"] == "1116.000000" and assets["a"]["gap_hours"] == "0.000000"
        assert assets["b"]["usage"] == "2.000000" and assets["b"]["gap_hours"] == "743.000000"


def test_projection_of_time_weighted_usage_is_prorated_as_for_sum(app):
    from billing.projections import project_usage

    # 100 GB-h in the first 10 days of a 30-day month project to 300 GB-h, as a sum does
    now = NOV + timedelta(days=10)
    assert project_usage(D(100), "time_weighted", NOV, DEC, now) == D("300")
    assert project_usage(D(100), "sum", NOV, DEC, now) == D("300")
    assert project_usage(D(100), "max", NOV, DEC, now) == D("100")


@pytest.mark.skipif(not SERVER_DB.startswith("postgresql"), reason="PostgreSQL's percentile_disc")
def test_percentile_disc_is_the_nearest_rank_for_every_count_up_to_2000(app):
    with app.app_context():
        rows = db.session.execute(sa.text(
            "SELECT n, (SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY v) FROM generate_series(1, n) AS v) "
            "FROM generate_series(1, 2000) AS n")).all()
    # values 1..n: the value at 1-based rank r is r, and the nearest rank is r = ceil(0.95 n) = ceil(95 n / 100)
    assert [(n, -(-95 * n // 100)) for n in range(1, 2001)] == [(n, int(value)) for n, value in rows]


# ---- the SQL path against the oracle on random data ----------------------------------------------------------

moments = st.integers(-2 * 86400 * 10**6, 31 * 86400 * 10**6)   # µs from Nov 1st: late October into December
values = st.decimals(min_value=0, max_value=D("999999999.999999"), places=6, allow_nan=False, allow_infinity=False)
samples = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), moments, values), max_size=40)
# a regular series too: (asset, unit, first µs, step µs, count)
series = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), moments, st.integers(1, 3 * 3600 * 10**6),
                            st.integers(1, 30)), max_size=3)
gaps = st.tuples(st.sampled_from([1, 5, 60, 61, 240, 1440]), st.sampled_from([1, 60, 44640]))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=samples, runs=series, max_gaps=gaps, start_day=st.integers(0, 20), days=st.integers(1, 30))
def test_time_weighted_sql_equals_the_oracle_on_random_data(app, points, runs, max_gaps, start_day, days):
    with app.app_context():
        empty_tables()
        units = [unit_type("u0"), unit_type("u1")]
        for unit, minutes in zip(units, max_gaps):
            unit.max_gap_minutes = minutes
        assets = [asset(f"a{i}", client()) for i in range(3)]
        rows: dict[tuple[int, int], dict[datetime, str]] = {}
        for index, unit, first, value in points:
            rows.setdefault((index, unit), {})[NOV + timedelta(microseconds=first)] = str(value)
        for index, unit, first, step, count in runs:
            for i in range(count):
                rows.setdefault((index, unit), {})[NOV + timedelta(microseconds=first + i * step)] = str(i % 7)
        for (index, unit), by_ts in rows.items():
            readings(assets[index], [(ts.isoformat(), value) for ts, value in by_ts.items()], unit=units[unit])
        made = [bucket("tw0", "time_weighted", assets, unit=units[0]).id,
                bucket("tw1", "time_weighted", assets[:2], unit=units[1]).id,
                bucket("sum1", "sum", assets, unit=units[1]).id]
        db.session.commit()
        start = NOV + timedelta(days=start_day)
        end = start + timedelta(days=days, microseconds=1)   # projections' windows end at now + 1 µs
        expected = reference_usages(db.session, start, end)
        specs = bucket_specs(db.session, made)
        assert usage_for_specs(db.session, specs, start, end, whole_month=False) == expected
        assert usage_for_specs(db.session, specs, start, end, whole_month=True) == expected


def test_the_oracle_walks_the_rule_by_hand():
    start, end = NOV, NOV + timedelta(hours=3)
    points = [(NOV - timedelta(minutes=30), D(6)), (NOV + timedelta(minutes=10), D(3)),
              (NOV + timedelta(hours=2, minutes=30), D(1))]
    # 6 for 10 min (to the next), 3 for 60 min (max gap), 1 for 30 min (clipped at the end): 1 + 3 + 0.5 = 4.5
    # covered 100 of 180 min -> 80 min = 1.333333 h of gap
    assert time_weighted(points, start, end, 60) == (D("4.5"), D("1.333333"))
