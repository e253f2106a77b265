"""Unbound: readings of a unit type in the last 60 days and no enabled bucket of that unit type binding the asset."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType
from reports.assets import unbound_asset_ids, unbound_count

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def test_unbound_rules(app):
    with app.app_context():
        vm, gb = UnitType(name="vm-hours"), UnitType(name="storage-gb")
        acme = Client(name="Acme")
        names = ["bound", "disabled-bucket", "other-unit-bucket", "stale", "disregarded", "nothing"]
        assets = {n: Asset(external_id=n, source_type="s", client=acme) for n in names}
        assets["disregarded"].disregarded_at = NOW
        vm_bucket = Bucket(client=acme, name="VMs", unit_type=vm, source_type="s",
                           assets=[assets["bound"], assets["stale"]])
        off = Bucket(client=acme, name="Old VMs", unit_type=vm, source_type="s", enabled=False,
                     assets=[assets["disabled-bucket"]])
        storage = Bucket(client=acme, name="Storage", unit_type=gb, source_type="s",
                         assets=[assets["other-unit-bucket"]])
        db.session.add_all([vm_bucket, off, storage, *assets.values()])
        db.session.flush()
        recent, old = NOW - timedelta(days=59), NOW - timedelta(days=61)
        store_readings(db.session, [
            NewReading(assets[n].id, vm.id, old if n == "stale" else recent, Decimal(1)) for n in names
        ] + [NewReading(assets["bound"].id, gb.id, recent, Decimal(1))])  # bound for vm, but not for storage
        db.session.commit()
        ids = set(db.session.scalars(unbound_asset_ids(NOW)))
        found = {a.external_id for a in db.session.scalars(select(Asset).where(Asset.id.in_(ids)))}
        assert found == {"bound", "disabled-bucket", "other-unit-bucket", "nothing"}
        assert unbound_count(db.session, NOW) == 4
