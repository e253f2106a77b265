"""ingest.store.store_readings writes through the driver exactly what the ORM would write."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select, text

from extensions import db
from ingest.store import NewReading, micro, store_readings
from models import Asset, AssetUnit, Reading
from tests.api_helpers import make_unit_type

UTC = timezone.utc


def test_driver_rows_read_back_like_orm_rows(app, backend):
    unit = make_unit_type(app, "cpu_hours")
    moment = datetime(2026, 10, 31, 23, 59, 59, 123456, tzinfo=UTC)
    with app.app_context():
        a, b = Asset(external_id="a", source_type="s"), Asset(external_id="b", source_type="s")
        db.session.add_all([a, b])
        db.session.flush()
        db.session.add(Reading(asset_id=a.id, unit_type_id=unit, ts=moment, value=Decimal("1.5")))
        inserted = store_readings(db.session, [NewReading(b.id, unit, moment.astimezone(timezone(timedelta(hours=2))),
                                                          Decimal("1.5"))])
        db.session.commit()
        assert inserted == 1
        if backend == "sqlite":
            stored = db.session.execute(text("SELECT ts FROM readings ORDER BY asset_id")).scalars().all()
            assert stored == ["2026-10-31 23:59:59.123456"] * 2
        in_october = db.session.execute(
            select(Reading.asset_id, Reading.value)
            .where(Reading.ts >= datetime(2026, 10, 1, tzinfo=UTC), Reading.ts < datetime(2026, 11, 1, tzinfo=UTC))
            .order_by(Reading.asset_id)).all()
        assert in_october == [(a.id, Decimal("1.5")), (b.id, Decimal("1.5"))]
        assert db.session.get(Asset, b.id).last_seen_at == moment
        span = db.session.get(AssetUnit, (b.id, unit))
        assert (span.first_ts, span.last_ts) == (moment, moment)


def test_summaries_widen_but_never_shrink(app):
    unit = make_unit_type(app, "cpu_hours")
    day = datetime(2026, 10, 10, tzinfo=UTC)
    with app.app_context():
        asset = Asset(external_id="a", source_type="s")
        db.session.add(asset)
        db.session.commit()
        store_readings(db.session, [NewReading(asset.id, unit, day, Decimal(1))])
        store_readings(db.session, [NewReading(asset.id, unit, day - timedelta(days=3), Decimal(1)),
                                    NewReading(asset.id, unit, day + timedelta(days=2), Decimal(1))])
        store_readings(db.session, [NewReading(asset.id, unit, day + timedelta(days=1), Decimal(1))])
        db.session.commit()
        span = db.session.get(AssetUnit, (asset.id, unit))
        assert (span.first_ts, span.last_ts) == (day - timedelta(days=3), day + timedelta(days=2))
        assert db.session.get(Asset, asset.id).last_seen_at == day + timedelta(days=2)


def test_micro_units_round_half_up_past_six_places():
    assert micro(Decimal("1.5")) == 1_500_000
    assert micro(Decimal("0.0000005")) == 1
    assert micro(Decimal("0.00000049")) == 0
    assert micro("2") == 2_000_000


def test_one_batch_of_many_zones_values_and_a_repeat_reads_back_exactly(app):
    """The bulk path (COPY text on PostgreSQL, executemany on SQLite) and, for a batch repeating a stored reading,
    the insert that skips repeats: the same instants and values either way."""
    unit = make_unit_type(app, "cpu_hours")
    base = datetime(2026, 10, 31, 22, 59, 59, 999999, tzinfo=UTC)
    zones = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((0, 0), (2, 0), (-5, -30), (13, 45))]
    values = [Decimal("0"), Decimal("0.000001"), Decimal("123456.654321"), Decimal("999999999999.999999")]
    with app.app_context():
        assets = [Asset(external_id=f"z{i}", source_type="s") for i in range(4)]
        db.session.add_all(assets)
        db.session.commit()
        rows = [NewReading(asset.id, unit, (base + timedelta(minutes=k)).astimezone(zone), value)
                for asset, zone, value in zip(assets, zones, values) for k in range(2)]
        assert store_readings(db.session, rows) == 8
        db.session.commit()
        again = [*rows[:1], NewReading(assets[0].id, unit, base + timedelta(hours=1, microseconds=1), Decimal("7.25"))]
        assert store_readings(db.session, again) == 1
        db.session.commit()
        stored = db.session.execute(select(Reading.asset_id, Reading.ts, Reading.value)
                                    .order_by(Reading.asset_id, Reading.ts)).all()
        expected = sorted([(r.asset_id, r.ts.astimezone(UTC), r.value) for r in rows]
                          + [(assets[0].id, base + timedelta(hours=1, microseconds=1), Decimal("7.25"))])
    assert [(a, ts.astimezone(UTC), v) for a, ts, v in stored] == expected


def test_one_external_id_from_two_sources_is_two_assets_each_with_its_own_readings(app, backend):
    """The lookup seeks assets by external id and keeps only the (id, source) pairs the batch names."""
    import json

    from ingest.batch import ingest_body

    unit = make_unit_type(app, "cpu_hours")
    with app.app_context():
        vmware = Asset(external_id="vm-1", source_type="vmware", last_seen_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
        db.session.add(vmware)
        db.session.commit()
        items = [{"asset_id": "vm-1", "source": source, "unit_type": "cpu_hours", "value": value,
                  "timestamp": "2026-11-20T10:00:00Z"} for source, value in (("aws", 2), ("vmware", 3))]
        result = ingest_body(db.session, json.dumps(items).encode(), now=datetime(2026, 11, 20, 12, tzinfo=UTC))
        assert (result.accepted, result.duplicates, result.rejected) == (2, 0, [])
        aws = db.session.scalars(select(Asset).where(Asset.source_type == "aws")).one()
        stored = db.session.execute(select(Reading.asset_id, Reading.value).order_by(Reading.value)).all()
        assert stored == [(aws.id, Decimal(2)), (vmware.id, Decimal(3))]
        assert db.session.get(AssetUnit, (aws.id, unit)) is not None
        assert db.session.get(AssetUnit, (vmware.id, unit)) is not None


def test_an_asset_ingest_creates_is_stored_and_audited_with_exactly_its_values(app):
    """A new asset takes the batch's moment as created_at, empty name and description when the item has none, the
    key's client, not acknowledged and enabled; its audit entry says so, created by ingest."""
    import json

    from ingest.batch import ingest_body
    from models import AuditLog, Client

    make_unit_type(app, "cpu_hours")
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with app.app_context():
        client = Client(name="Acme")
        db.session.add(client)
        db.session.commit()
        items = [{"asset_id": "vm-9", "source": "vmware", "unit_type": "cpu_hours", "value": 1,
                  "timestamp": "2026-11-20T10:00:00Z"}]
        result = ingest_body(db.session, json.dumps(items).encode(), client_id=client.id, now=now)
        assert (result.accepted, result.rejected) == (1, [])
        asset = db.session.scalars(select(Asset)).one()
        assert (asset.external_id, asset.source_type, asset.name, asset.description, asset.client_id,
                asset.acknowledged, asset.enabled, asset.created_at) == (
            "vm-9", "vmware", "", "", client.id, False, True, now)
        entry = db.session.scalars(select(AuditLog).where(AuditLog.table == "assets")).one()
        assert (entry.action, entry.record_id, entry.old_values) == ("create", str(asset.id), None)
        assert entry.new_values == {"external_id": "vm-9", "source_type": "vmware", "name": "", "description": "",
                                    "client_id": client.id, "acknowledged": False, "enabled": True,
                                    "created_by": "ingest"}


def test_an_asset_another_batch_created_meanwhile_is_found_not_created_again(app):
    """Two batches may both miss an asset in their lookup; the one that inserts second finds the row (no second
    asset, no audit entry of its own) and stores its readings against it."""
    from ingest.store import _create_assets

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with app.app_context():
        first = _create_assets(db.session, {("vm-1", "vmware"): {"name": "one"}}, None, now)
        db.session.commit()
        again = _create_assets(db.session, {("vm-1", "vmware"): {"name": "two"},
                                            ("vm-2", "vmware"): {}}, None, now)
        db.session.commit()
        assert again[("vm-1", "vmware")][0] == first[("vm-1", "vmware")][0]
        assert again[("vm-2", "vmware")][0] != first[("vm-1", "vmware")][0]
        assert db.session.scalars(select(Asset.name).order_by(Asset.external_id)).all() == ["one", ""]


def test_chunks_cover_a_sequence_once_in_order():
    from ingest.store import _chunks

    assert [list(chunk) for chunk in _chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(_chunks([], 3)) == []


def test_a_client_keys_reading_for_an_asset_of_no_client_is_refused_so(app):
    import json

    from ingest.batch import ingest_body
    from models import Client

    make_unit_type(app, "cpu_hours")
    with app.app_context():
        client, other = Client(name="Acme"), Client(name="Other")
        db.session.add_all([client, other, Asset(external_id="shared", source_type="snmp")])
        db.session.flush()
        db.session.add(Asset(external_id="theirs", source_type="snmp", client_id=other.id))  # never seen yet
        db.session.commit()
        items = [{"asset_id": name, "source": "snmp", "unit_type": "cpu_hours", "value": 1,
                  "timestamp": "2026-11-20T10:00:00Z"} for name in ("shared", "theirs")]
        result = ingest_body(db.session, json.dumps(items).encode(), client_id=client.id,
                             now=datetime(2026, 11, 20, 12, tzinfo=UTC))
        assert result.accepted == 0
        assert result.rejected == [
            {"index": 0, "error": "forbidden: asset 'shared' (source 'snmp') belongs to no client, not to this key's "
                                  "client"},
            {"index": 1, "error": "forbidden: asset 'theirs' (source 'snmp') belongs to another client, not to this "
                                  "key's client"}]


def kept_reading_of_a_new_asset(unit: int) -> list:
    """Asset "a" (committed) and a batch of one valid item for it, as store_items takes it; in an app context."""
    db.session.add(Asset(external_id="a", source_type="s"))
    db.session.commit()
    return [(0, ("a", "s"), unit, datetime(2026, 11, 20, 10, tzinfo=UTC), Decimal(1), {})]


def test_a_batch_that_keeps_failing_on_a_constraint_is_tried_three_times_then_refused(app):
    """An IntegrityError may be a lost race (tried again, up to ATTEMPTS); one that persists is raised, each attempt
    rolled back."""
    import pytest
    from sqlalchemy import event
    from sqlalchemy.exc import IntegrityError

    from ingest.store import ATTEMPTS, store_items

    rollbacks = []
    with app.app_context():
        no_such_unit = 999
        kept = kept_reading_of_a_new_asset(no_such_unit)
        event.listen(db.engine, "rollback", lambda connection: rollbacks.append(1))
        with pytest.raises(IntegrityError) as refused:
            store_items(db.session, kept, None, datetime(2026, 11, 20, 12, tzinfo=UTC))
        assert refused.value.statement == "store_readings"  # what the log names
        assert ATTEMPTS == 3
        assert len(rollbacks) == ATTEMPTS
        assert db.session.scalar(select(func.count()).select_from(Reading)) == 0


def test_under_a_deadline_waiting_for_the_sqlite_writers_turn_ends_at_the_deadline(app, backend):
    """Another writer holds the ingest lock for 2 s; a batch given 0.3 s gives up (DeadlineExceeded) while the lock is
    still held, having written nothing. Without a deadline the same batch waits its turn and is stored."""
    import fcntl
    import threading

    import pytest

    from database import deadline
    from ingest.store import store_items

    if backend != "sqlite":
        pytest.skip("PostgreSQL writes concurrently: no writer's turn")
    with app.app_context():
        kept = kept_reading_of_a_new_asset(make_unit_type(app, "cpu_hours"))
        released = threading.Event()
        with open(f"{db.engine.url.database}.ingest-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)

            def release() -> None:
                released.set()
                fcntl.flock(handle, fcntl.LOCK_UN)

            timer = threading.Timer(2.0, release)
            timer.start()
            deadline.start(0.3)
            try:
                with pytest.raises(deadline.DeadlineExceeded):
                    store_items(db.session, kept, None, datetime(2026, 11, 20, 12, tzinfo=UTC))
                assert not released.is_set()
            finally:
                deadline.clear()
                timer.join()
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Reading)) == 0
        assert store_items(db.session, kept, None, datetime(2026, 11, 20, 12, tzinfo=UTC)).accepted == 1


def test_a_reading_of_a_month_archived_after_validation_rolls_the_batch_back_for_another_look(app, monkeypatch):
    """store_readings checks, after its insert, that no month of the batch is archived by now (the archive may mark a
    month between the batch's validation and its write): October archived refuses a reading of Oct 1 00:00 UTC;
    September's last microsecond and November's first are stored. Months are UTC months on a machine in New York."""
    import time

    import pytest

    from ingest.store import ArchivedMonthWritten
    from models import ArchivedMonth

    unit = make_unit_type(app, "cpu_hours")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        with app.app_context():
            asset = Asset(external_id="a", source_type="s")
            db.session.add_all([asset, ArchivedMonth(period_start=datetime(2026, 10, 1, tzinfo=UTC),
                                                     status="archived")])
            db.session.commit()
            with pytest.raises(ArchivedMonthWritten):
                store_readings(db.session, [NewReading(asset.id, unit, datetime(2026, 10, 1, tzinfo=UTC),
                                                       Decimal(1))])
            db.session.rollback()
            edges = [datetime(2026, 9, 30, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]
            assert store_readings(db.session, [NewReading(asset.id, unit, ts, Decimal(1)) for ts in edges]) == 2
            db.session.commit()
            assert db.session.scalar(select(func.count()).select_from(Reading)) == 2
    finally:
        monkeypatch.undo()
        time.tzset()


def test_under_a_deadline_sqlites_own_lock_is_waited_for_only_until_the_deadline(app, backend):
    """Another connection holds SQLite's write lock for 3 s; a batch given 0.5 s is refused at its deadline by SQLite's
    busy timeout ("database is locked"), not after the 30 s a write outside a request may wait."""
    import sqlite3
    import threading

    import pytest
    from sqlalchemy.exc import OperationalError

    from database import deadline
    from ingest.store import store_items

    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    with app.app_context():
        kept = kept_reading_of_a_new_asset(make_unit_type(app, "cpu_hours"))
        other = sqlite3.connect(db.engine.url.database, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        released = threading.Event()

        def release() -> None:
            released.set()
            other.rollback()

        timer = threading.Timer(3.0, release)
        timer.start()
        deadline.start(0.5)
        try:
            with pytest.raises(OperationalError, match="database is locked"):
                store_items(db.session, kept, None, datetime(2026, 11, 20, 12, tzinfo=UTC))
            assert not released.is_set()
        finally:
            deadline.clear()
            timer.join()
            other.close()
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Reading)) == 0


def test_sqlite_text_of_a_moment_is_utc_whatever_the_machines_time_zone(monkeypatch):
    import time

    from ingest.store import sqlite_datetime

    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        auckland = timezone(timedelta(hours=13))
        assert sqlite_datetime(datetime(2026, 11, 3, 8, 0, 0, 5, tzinfo=auckland)) == "2026-11-02 19:00:00.000005"
        assert sqlite_datetime(datetime(2026, 11, 2, 19, 0)) == "2026-11-02 19:00:00.000000"  # naive: UTC already
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_batch_in_any_order_stores_each_pairs_first_and_last_reading(app):
    """asset_units holds the earliest and the latest reading of a new (asset, unit type) whatever the batch's order."""
    unit = make_unit_type(app, "cpu_hours")
    t1, t2, t3 = (datetime(2026, 11, 20, hour, tzinfo=UTC) for hour in (8, 9, 10))
    with app.app_context():
        a, b = Asset(external_id="a", source_type="s"), Asset(external_id="b", source_type="s")
        db.session.add_all([a, b])
        db.session.flush()
        rows = [NewReading(a.id, unit, t, Decimal(1)) for t in (t1, t3, t2)]
        rows += [NewReading(b.id, unit, t, Decimal(1)) for t in (t2, t1, t3)]
        assert store_readings(db.session, rows) == 6
        db.session.commit()
        for asset_id in (a.id, b.id):
            span = db.session.get(AssetUnit, (asset_id, unit))
            assert (span.first_ts, span.last_ts) == (t1, t3)
            assert db.session.get(Asset, asset_id).last_seen_at == t3


def test_a_lost_race_a_deadlock_or_a_serialization_failure_is_tried_again_and_nothing_else():
    """Which driver errors `store_items` tries again: any IntegrityError (a lost race for a new asset), PostgreSQL's
    deadlock and serialization failures; not a syntax error or a lock timeout."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from ingest.store import _retryable

    def wrapped(error: Exception) -> DBAPIError:
        return DBAPIError.instance("store_readings", None, error, psycopg.Error)

    assert _retryable(wrapped(psycopg.errors.UniqueViolation("duplicate key")))
    assert _retryable(wrapped(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert _retryable(wrapped(psycopg.errors.SerializationFailure("could not serialize access")))
    assert not _retryable(wrapped(psycopg.errors.SyntaxError("syntax error")))
    assert not _retryable(wrapped(psycopg.errors.LockNotAvailable("lock timeout")))


def test_a_repeat_inside_a_batch_keeps_the_first_value_on_either_backend(app):
    """Two readings of one (asset, unit type, ts) in a batch: one is new, one a duplicate, and the first one's value
    is stored (PostgreSQL sorts a batch by its key to write it, not by value)."""
    unit = make_unit_type(app, "cpu_hours")
    moment = datetime(2026, 11, 20, 10, tzinfo=UTC)
    with app.app_context():
        asset = Asset(external_id="a", source_type="s")
        db.session.add(asset)
        db.session.flush()
        rows = [NewReading(asset.id, unit, moment, Decimal(5)), NewReading(asset.id, unit, moment, Decimal(3))]
        assert store_readings(db.session, rows) == 1
        db.session.commit()
        assert db.session.scalars(select(Reading.value)).all() == [Decimal(5)]
