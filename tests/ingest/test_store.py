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
