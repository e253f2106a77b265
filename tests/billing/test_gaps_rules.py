"""billing.gaps.current_gaps: per (time_weighted bucket, eligible bound asset) the unit·hours and the gap hours over
[period start, now), for one bucket, for the time_weighted buckets binding one asset, or for all (DESIGN.md
"Time-weighted usage"). The pages only render these rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from billing.gaps import AssetGap, current_gaps
from extensions import db
from tests.factories import asset, bucket, readings, unit_type

D = Decimal
SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
NOW = SEP + timedelta(days=2)  # 48 h of September so far


def two_time_weighted_buckets():
    """Storage (gb, max gap 60) binds vm-1 and vm-2; Memory (mem, max gap 30) binds vm-2 alone; Traffic (sum of
    gb) binds vm-1 and vm-3. Readings on September 1st-2nd, one after NOW."""
    gb, mem = unit_type("gb"), unit_type("mem")
    gb.max_gap_minutes, mem.max_gap_minutes = 60, 30
    one, two, three = asset("vm-1"), asset("vm-2"), asset("vm-3")
    readings(one, [("2026-09-01T00:00:00+00:00", "2"), ("2026-09-01T01:00:00+00:00", "2"),
                   ("2026-09-02T23:30:00+00:00", "100"), ("2026-09-03T00:10:00+00:00", "7")], unit=gb)
    readings(two, [("2026-09-02T12:00:00+00:00", "8")], unit=mem)
    storage = bucket("Storage", "time_weighted", [one, two], unit=gb)
    memory = bucket("Memory", "time_weighted", [two], unit=mem)
    traffic = bucket("Traffic", "sum", [one, three], unit=gb)
    db.session.commit()
    return storage.id, memory.id, traffic.id, one.id, two.id, three.id


def test_rows_per_bucket_and_asset_clipped_at_now(app):
    with app.app_context():
        storage, memory, traffic, one, two, three = two_time_weighted_buckets()
        # vm-1: 2 GB for 1 h + 2 GB for 1 h (max gap) + 100 GB for the 30 min up to NOW (the clip, not the max
        # gap: 50 more) = 54 GB-h; covered 2.5 of 48 h -> 45.5 h of gap. vm-2 has no gb readings: 0, all 48 h gap.
        # The reading after NOW counts nowhere.
        storage_rows = [AssetGap(storage, "Storage", "gb", 60, one, "vm-1", D("54"), D("45.5")),
                        AssetGap(storage, "Storage", "gb", 60, two, "vm-2", D("0"), D("48"))]
        # vm-2: 8 units for 30 min (mem's max gap) = 4 unit-h, 47.5 h of gap
        memory_rows = [AssetGap(memory, "Memory", "mem", 30, two, "vm-2", D("4"), D("47.5"))]
        assert current_gaps(db.session, bucket_id=storage, now=NOW) == storage_rows
        assert current_gaps(db.session, bucket_id=memory, now=NOW) == memory_rows
        # no filter: every time_weighted bucket, in bucket order; the sum bucket has no rows
        assert current_gaps(db.session, now=NOW) == storage_rows + memory_rows
        assert current_gaps(db.session, bucket_id=traffic, now=NOW) == []


def test_an_asset_sees_only_the_time_weighted_buckets_that_bind_it(app):
    with app.app_context():
        storage, memory, _traffic, one, two, three = two_time_weighted_buckets()
        # vm-1 is bound to Storage and to Traffic (sum): only Storage; vm-3 only to Traffic: nothing; vm-2 to
        # Storage and to Memory, which binds it alone
        assert [(r.bucket_id, r.asset_id, r.usage) for r in current_gaps(db.session, asset_id=one, now=NOW)] == [
            (storage, one, D("54"))]
        assert current_gaps(db.session, asset_id=three, now=NOW) == []
        assert [(r.bucket_id, r.asset_id, r.usage, r.gap_hours)
                for r in current_gaps(db.session, asset_id=two, now=NOW)] == [
            (storage, two, D("0"), D("48")), (memory, two, D("4"), D("47.5"))]


def test_at_the_first_instant_of_a_period_nothing_has_passed_and_there_are_no_rows(app):
    with app.app_context():
        storage, *_ = two_time_weighted_buckets()
        assert current_gaps(db.session, bucket_id=storage, now=SEP) == []
        assert current_gaps(db.session, now=SEP) == []
        # an hour in: vm-1's first 2 GB holds all of it (2 GB-h, no gap); vm-2 has no readings (1 h of gap)
        assert [(r.external_id, r.usage, r.gap_hours)
                for r in current_gaps(db.session, bucket_id=storage, now=SEP + timedelta(hours=1))] == [
            ("vm-1", D("2"), D("0")), ("vm-2", D("0"), D("1"))]
