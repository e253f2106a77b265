"""Usage rules the first tests left open: the `last` window's edges and unit type, the p95 rank between 94 and 96
of 100, an avg exactly on a tie, and the progress a usage computation reports."""
from __future__ import annotations

from decimal import Decimal

from billing.usage import BucketUsage, bucket_specs, bucket_usages, mean, quantize, usage_for_specs
from extensions import db
from tests.factories import DEC, NOV, asset, bucket, readings, unit_type

D = Decimal


def test_last_takes_the_latest_reading_inside_the_window_only(app):
    with app.app_context():
        a, b, c = asset("a"), asset("b"), asset("c")
        readings(a, [("2026-10-31T23:59:59+00:00", "7"),   # before the window
                     ("2026-11-01T00:00:00+00:00", "3"),   # its first instant: inside
                     ("2026-12-01T00:00:00+00:00", "9")])  # the end: outside
        readings(b, [("2026-11-01T00:00:00+00:00", "4"), ("2026-10-01T00:00:00+00:00", "8")])
        readings(c, [("2026-12-01T00:00:00+00:00", "5"), ("2026-10-31T23:59:59+00:00", "6")])
        last = bucket("last", "last", [a, b, c])
        assert bucket_usages(db.session, NOV, DEC)[last.id] == BucketUsage(D(7), {a.id: D(3), b.id: D(4), c.id: D(0)})


def test_last_reads_only_the_buckets_unit_type(app):
    with app.app_context():
        a = asset("a")
        gb, cpu = unit_type("gb"), unit_type("cpu")
        readings(a, [("2026-11-02T00:00:00+00:00", "5")], unit=gb)
        readings(a, [("2026-11-03T00:00:00+00:00", "50")], unit=cpu)   # later, but another unit type
        on_gb, on_cpu = bucket("gb", "last", [a], unit=gb), bucket("cpu", "last", [a], unit=cpu)
        usages = bucket_usages(db.session, NOV, DEC)
        assert (usages[on_gb.id].total, usages[on_cpu.id].total) == (D(5), D(50))


def test_p95_of_one_hundred_readings_is_the_95th(app):
    with app.app_context():
        hundred, fifty, other = asset("hundred"), asset("fifty"), asset("other")
        # values 1..100 (rank = value): ceil(0.95·100) = 95 -> 95, not 94 or 96
        readings(hundred, [(f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00", str(100 - i)) for i in range(100)])
        # values 1..50: ceil(47.5) = 48 -> 48 (rank 47 would give 47)
        readings(fifty, [(f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00", str(i + 1)) for i in range(50)])
        # a reading of another unit type and one outside the window do not count towards n
        cpu = unit_type("cpu")
        readings(fifty, [("2026-11-20T00:00:00+00:00", "1000")], unit=cpu)
        readings(other, [("2026-11-02T00:00:00+00:00", "2"), ("2026-11-03T00:00:00+00:00", "1"),
                         ("2026-12-01T00:00:00+00:00", "1000"), ("2026-10-31T00:00:00+00:00", "999")])
        p95 = bucket("p95", "p95", [hundred, fifty, other])
        usage = bucket_usages(db.session, NOV, DEC)[p95.id]
        # other: n = 2 -> rank ceil(1.9) = 2 -> 2
        assert usage == BucketUsage(D(145), {hundred.id: D(95), fifty.id: D(48), other.id: D(2)})


def test_an_avg_on_a_tie_rounds_half_up(app):
    with app.app_context():
        a = asset("a")
        # (0.000002 + 0.000003) / 2 = 0.0000025 -> 0.000003 half-up (half-even would keep 0.000002)
        readings(a, [("2026-11-02T00:00:00+00:00", "0.000002"), ("2026-11-03T00:00:00+00:00", "0.000003")])
        avg = bucket("avg", "avg", [a])
        assert bucket_usages(db.session, NOV, DEC)[avg.id].total == D("0.000003")
    assert mean(D("0.000005"), 2) == D("0.000003")
    assert mean(D("5"), 0) == D("0.000000")
    assert quantize(D("0.0000025")) == D("0.000003") and quantize(D("-0.0000025")) == D("-0.000003")


def test_a_usage_run_reports_each_query_it_makes(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T00:00:00+00:00", "2"), ("2026-11-03T00:00:00+00:00", "1")])
        ids = [bucket(name, name, [a]).id for name in ("sum", "last", "p95")]
        seen: list[tuple[int, str]] = []
        usages = usage_for_specs(db.session, bucket_specs(db.session), NOV, DEC,
                                 progress=lambda percent, message: seen.append((percent, message)))
    assert [usages[i].total for i in ids] == [D(3), D(1), D(2)]
    assert seen == [(0, "sum, max, avg and count"), (40, "last readings"), (50, "95th percentiles"),
                    (95, "adding up")]


def test_last_p95_and_time_weighted_alone_report_their_own_steps(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T00:00:00+00:00", "2")])
        last, p95 = bucket("last", "last", [a]), bucket("p95", "p95", [a])
        weighted = bucket("tw", "time_weighted", [a])
        for target, step in ((last, (40, "last readings")), (p95, (50, "95th percentiles")),
                             (weighted, (70, "time-weighted usage"))):
            seen: list[tuple[int, str]] = []
            usages = usage_for_specs(db.session, bucket_specs(db.session, [target.id]), NOV, DEC,
                                     progress=lambda percent, message: seen.append((percent, message)))
            assert usages[target.id].total == D(2)  # time-weighted: 2 held for the unit type's 60-minute max gap
            assert seen == [step, (95, "adding up")]


def test_p95_of_two_hundred_readings_counts_the_one_at_the_windows_first_instant(app):
    with app.app_context():
        a = asset("a")
        # values 1..200, the 190th (rank ceil(0.95·200) = 190, exactly 95% of n) read at Nov 1st 00:00 sharp
        values = [v for v in range(1, 201) if v != 190]
        readings(a, [("2026-11-01T00:00:00+00:00", "190")]
                 + [(f"2026-11-{2 + i // 24:02d}T{i % 24:02d}:00:00+00:00", str(v)) for i, v in enumerate(values)])
        p95 = bucket("p95", "p95", [a])
        # without the first instant n = 199 and rank 190 would be 191
        assert bucket_usages(db.session, NOV, DEC)[p95.id].total == D(190)


def test_time_weighted_holds_a_reading_for_its_own_unit_types_max_gap_to_the_microsecond(app):
    with app.app_context():
        a = asset("a")
        short, other = unit_type("gb"), unit_type("cpu")
        short.max_gap_minutes, other.max_gap_minutes = 30, 60
        readings(a, [("2026-11-02T00:00:00+00:00", "3600000")], unit=short)   # nothing after it: holds 30 min
        readings(a, [("2026-11-02T00:00:00+00:00", "1")], unit=other)
        target = bucket("gb-hours", "time_weighted", [a], unit=short)
        usage = bucket_usages(db.session, NOV, DEC)[target.id]
    # 3,600,000 × 1,800 s / 3,600 = 1,800,000 unit·hours; one µs more per minute of max gap would add 0.03
    assert usage.total == D("1800000.000000")
    assert usage.gap_hours == {a.id: D(720) - D("0.5")}  # 30 days of 24 h, half an hour held


def test_any_number_of_bucket_ids_is_asked_for_in_one_query(app):
    """Bucket ids are written into the SQL, not bound one parameter each: 70,000 of them (past PostgreSQL's 65,535
    parameters a statement, and SQLite's 32,766 where it is built with its default limit) are one query."""
    with app.app_context():
        assert bucket_specs(db.session, list(range(1, 70_001))) == []
