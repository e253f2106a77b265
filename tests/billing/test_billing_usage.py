"""Usage of a bucket over a period: each aggregation by hand, then the SQL path held to the slow reference."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from billing.pricing import rate_bucket_usage
from billing.usage import BucketUsage, bucket_specs, bucket_usages, usage_for_specs
from extensions import db
from models import utcnow
from tests.conftest import empty_tables
from tests.factories import DEC, NOV, asset, bucket, client, readings, unit_type
from tests.reference import aggregate, reference_usages

D = Decimal


def three_readings_bucket(aggregation: str):
    """Asset a: 10, 30, 20 (in that time order); asset b: 5 alone; asset c: no readings."""
    a, b, c = asset("a"), asset("b"), asset("c")
    readings(a, [("2026-11-02T00:00:00+00:00", "10"), ("2026-11-03T00:00:00+00:00", "30"),
                 ("2026-11-04T00:00:00+00:00", "20")])
    readings(b, [("2026-11-05T00:00:00+00:00", "5")])
    return bucket(aggregation, aggregation, [a, b, c]), (a, b, c)


@pytest.mark.parametrize("aggregation, per_a, per_b, total", [
    ("sum", "60", "5", "65"),          # 10+30+20, 5
    ("max", "30", "5", "35"),
    ("avg", "20", "5", "25"),          # 60/3
    ("last", "20", "5", "25"),         # latest ts holds 20
    ("p95", "30", "5", "35"),          # n=3 -> rank ceil(2.85)=3 -> 30
    ("count", "1", "1", "2"),          # assets with at least one reading
])
def test_each_aggregation_per_asset_then_summed(app, aggregation, per_a, per_b, total):
    with app.app_context():
        target, (a, b, c) = three_readings_bucket(aggregation)
        usage = bucket_usages(db.session, NOV, DEC)[target.id]
        assert usage == BucketUsage(D(total), {a.id: D(per_a), b.id: D(per_b), c.id: D(0)})
        assert usage.total.as_tuple().exponent == -6


def test_p95_takes_the_nearest_rank(app):
    with app.app_context():
        a = asset("a")
        # 1..20 -> rank ceil(0.95*20) = 19 -> 19; with 21 values rank ceil(19.95) = 20 -> 20
        readings(a, [(f"2026-11-01T{h:02d}:00:00+00:00", str(21 - h)) for h in range(1, 21)])
        p95 = bucket("p95", "p95", [a])
        assert bucket_usages(db.session, NOV, DEC)[p95.id].total == D("19")
        readings(a, [("2026-11-02T00:00:00+00:00", "21")])
        assert bucket_usages(db.session, NOV, DEC)[p95.id].total == D("20")
        assert aggregate("p95", [(None, D(v)) for v in range(1, 21)]) == D(19)


def test_avg_keeps_six_places_half_up(app):
    with app.app_context():
        a = asset("a")
        # (1 + 1 + 0.000002) / 3 = 0.6666673333... -> 0.666667 ; (0.000001+0.000002)/2 = 0.0000015 -> 0.000002
        readings(a, [("2026-11-02T00:00:00+00:00", "1"), ("2026-11-03T00:00:00+00:00", "0"),
                     ("2026-11-04T00:00:00+00:00", "1.000002")])
        b = asset("b")
        readings(b, [("2026-11-02T00:00:00+00:00", "0.000001"), ("2026-11-03T00:00:00+00:00", "0.000002")])
        avg_a, avg_b = bucket("avg-a", "avg", [a]), bucket("avg-b", "avg", [b])
        usages = bucket_usages(db.session, NOV, DEC)
        assert usages[avg_a.id].total == D("0.666667")
        assert usages[avg_b.id].total == D("0.000002")


def test_period_is_half_open_and_in_utc(app):
    with app.app_context():
        a = asset("a")
        readings(a, [
            ("2026-10-31T23:30:00-02:00", "1"),      # = 2026-11-01 01:30 UTC: November
            ("2026-11-01T00:30:00+01:00", "10"),     # = 2026-10-31 23:30 UTC: October
            ("2026-11-01T00:00:00+00:00", "100"),    # first instant: November
            ("2026-12-01T00:00:00+00:00", "1000"),   # end is excluded: December
            ("2026-12-01T00:59:59+01:00", "5000"),   # = 2026-11-30 23:59:59 UTC: November
        ])
        total = bucket("sum", "sum", [a])
        assert bucket_usages(db.session, NOV, DEC)[total.id].total == D("5101")


def test_duplicates_are_counted_once(app):
    with app.app_context():
        a = asset("a")
        assert readings(a, [("2026-11-02T00:00:00+00:00", "7")]) == 1
        assert readings(a, [("2026-11-02T00:00:00+00:00", "7"), ("2026-11-02T01:00:00+01:00", "9")]) == 0
        total = bucket("sum", "sum", [a])
        assert bucket_usages(db.session, NOV, DEC)[total.id].total == D("7")


def test_disregarded_and_disabled_assets_add_nothing(app):
    with app.app_context():
        kept, gone, off = asset("kept"), asset("gone", disregarded_at=utcnow()), asset("off", enabled=False)
        for target in (kept, gone, off):
            readings(target, [("2026-11-02T00:00:00+00:00", "4")])
        total = bucket("sum", "sum", [kept, gone, off])
        usage = bucket_usages(db.session, NOV, DEC)[total.id]
        assert usage == BucketUsage(D("4"), {kept.id: D("4")})


def test_disabled_bucket_is_left_out_unless_asked_for(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T00:00:00+00:00", "3")])
        on, off = bucket("on", "sum", [a]), bucket("off", "sum", [a], enabled=False)
        assert set(bucket_usages(db.session, NOV, DEC)) == {on.id}
        assert bucket_usages(db.session, NOV, DEC, [off.id])[off.id].total == D("3")


def test_only_the_buckets_unit_type_counts(app):
    with app.app_context():
        a = asset("a")
        gb, cpu = unit_type("gb"), unit_type("cpu")
        readings(a, [("2026-11-02T00:00:00+00:00", "3")], unit=gb)
        readings(a, [("2026-11-02T00:00:00+00:00", "50")], unit=cpu)
        storage, compute = bucket("gb", "sum", [a], unit=gb), bucket("cpu", "max", [a], unit=cpu)
        usages = bucket_usages(db.session, NOV, DEC)
        assert (usages[storage.id].total, usages[compute.id].total) == (D("3"), D("50"))


def test_bucket_without_assets_has_zero_usage(app):
    with app.app_context():
        empty = bucket("empty", "sum", [])
        assert bucket_usages(db.session, NOV, DEC)[empty.id] == BucketUsage(D("0"), {})


# ---- the SQL path against the slow reference, on random data -------------------------------------------------

AGGS = ["sum", "max", "avg", "last", "p95", "count", "time_weighted"]
values = st.decimals(min_value=0, max_value=D("99999.999999"), places=6, allow_nan=False, allow_infinity=False)
# bursts of hourly readings: (asset, unit, first second from Nov 1st, values); up to 6 x 40 readings per example
reading_bursts = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(-3 * 86400, 33 * 86400),
              st.lists(values | st.sampled_from([D(1), D(2)]), min_size=1, max_size=4)
              | st.lists(values, min_size=20, max_size=40)),
    max_size=6,
)
bucket_rows = st.lists(
    st.tuples(st.sampled_from(AGGS), st.integers(0, 1), st.sets(st.integers(0, 3), max_size=4), st.booleans()),
    min_size=1, max_size=5,
)
asset_flags = st.lists(st.sampled_from(["ok", "ok", "disabled", "disregarded"]), min_size=4, max_size=4)
outside_values = st.lists(st.tuples(values, values), min_size=4, max_size=4)


@hsettings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bursts=reading_bursts, buckets=bucket_rows, flags=asset_flags, outside=outside_values)
def test_sql_usage_equals_the_reference_on_random_data(app, bursts, buckets, flags, outside):
    with app.app_context():
        empty_tables()
        units = [unit_type("u0"), unit_type("u1")]
        owner = client()
        assets = [asset(f"a{i}", owner, enabled=flag != "disabled",
                        disregarded_at=utcnow() if flag == "disregarded" else None)
                  for i, flag in enumerate(flags)]
        made = []
        for index, (agg, unit, bound, enabled) in enumerate(buckets):
            made.append(bucket(f"b{index}", agg, [assets[i] for i in sorted(bound)], unit=units[unit],
                               enabled=enabled, commit="10", base="1.5", overage="2.25").id)
        for asset_index, unit, seconds, burst in bursts:
            readings(assets[asset_index], [((NOV + timedelta(seconds=seconds, hours=hour)).isoformat(), str(value))
                                           for hour, value in enumerate(burst)], unit=units[unit])
        for index, (before, at_end) in enumerate(outside):
            # every example has readings just outside the month: the last second of October, the first of December
            readings(assets[index], [((NOV - timedelta(seconds=1)).isoformat(), str(before)),
                                     (DEC.isoformat(), str(at_end))], unit=units[index % 2])
        db.session.commit()
        fast = bucket_usages(db.session, NOV, DEC)
        slow = reference_usages(db.session, NOV, DEC)
        assert fast == slow
        for bucket_id, usage in fast.items():
            assert rate_bucket_usage(usage.total, D(10), D("1.5"), D("2.25")) == \
                rate_bucket_usage(slow[bucket_id].total, D(10), D("1.5"), D("2.25"))
        assert bucket_usages(db.session, NOV, DEC, made) == reference_usages(db.session, NOV, DEC, made)
        whole = usage_for_specs(db.session, bucket_specs(db.session), NOV, DEC, whole_month=True)
        assert whole == slow


def test_a_whole_month_run_and_a_per_pair_run_give_the_same_figures_for_every_aggregation(app):
    """The whole-month form (one aggregate-first scan on PostgreSQL) and the per-pair form, by hand: each
    aggregation's bucket over two assets, with readings on both edges of the month and of another unit type."""
    with app.app_context():
        cpu, ram = unit_type("cpu"), unit_type("ram")
        a, b = asset("a"), asset("b")
        for target, values in ((a, ["10", "30", "20"]), (b, ["5", "7", "6"])):
            readings(target, [(f"2026-11-{day:02d}T00:00:00+00:00", v) for day, v in zip((1, 15, 30), values)], unit=cpu)
            readings(target, [("2026-10-31T23:59:59.999999+00:00", "1000"), ("2026-12-01T00:00:00+00:00", "1000")],
                     unit=cpu)
            readings(target, [("2026-11-10T00:00:00+00:00", "500")], unit=ram)
        made = {agg: bucket(agg, agg, [a, b], unit=cpu).id for agg in ("sum", "max", "avg", "count", "last", "p95")}
        db.session.commit()
        specs = bucket_specs(db.session)
        whole = usage_for_specs(db.session, specs, NOV, DEC, whole_month=True)
        pairs = usage_for_specs(db.session, specs, NOV, DEC, whole_month=False)
        ids = (a.id, b.id)
    expected = {"sum": ("60", "18"), "max": ("30", "7"), "avg": ("20", "6"), "count": ("1", "1"),
                "last": ("20", "6"), "p95": ("30", "7")}
    for agg, (per_a, per_b) in expected.items():
        want = BucketUsage(D(per_a) + D(per_b), {ids[0]: D(per_a), ids[1]: D(per_b)})
        assert whole[made[agg]] == pairs[made[agg]] == want, agg


def test_any_number_of_bucket_ids_can_be_asked_for(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T00:00:00+00:00", "3")])
        target = bucket("sum", "sum", [a])
        # more ids than SQLite allows bound parameters (32,766): they are inlined as integers
        asked = [target.id] + list(range(100_000, 140_000))
        assert bucket_usages(db.session, NOV, DEC, asked) == {target.id: BucketUsage(D("3"), {a.id: D("3")})}
