"""ingest.store.store_readings writes through the driver exactly what the ORM would write."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select, text

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
