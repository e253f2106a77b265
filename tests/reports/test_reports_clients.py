"""A client's buckets with this period's projection, its billing history, and an asset's last 30 days."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Client, UnitType
from reports.clients import billing_history, client_buckets
from reports.usage import asset_usage
from tests.reportdata import NOV, NOW, OCT, SEP


def test_client_buckets_carry_this_periods_projection(ids):
    rows = {b.name: b for b in client_buckets(db.session, ids["acme"], NOW)}
    assert list(rows) == ["Acme Storage", "Acme VMs"]
    storage = rows["Acme Storage"]
    assert (storage.current_usage, storage.projected_cost, storage.status) == (Decimal("250"), Decimal("150.00"), "over")
    assert storage.unit_type == "storage-gb" and storage.commit == Decimal("200")


def test_a_bucket_without_projection_has_no_status(ids):
    rows = {b.name: b for b in client_buckets(db.session, ids["initech"], NOW)}
    assert rows["Initech VMs"].status is None and rows["Initech VMs"].projected_cost is None
    assert rows["Initech Storage"].status == "under" and not rows["Initech Storage"].over


def test_billing_history_per_period(ids):
    history = [(p.period, p.overage, p.buffer, p.final_cost) for p in billing_history(db.session, ids["acme"])]
    assert history == [
        (SEP, Decimal("0.00"), Decimal("0.00"), Decimal("100.00")),
        (OCT, Decimal("40.00"), Decimal("25.00"), Decimal("240.00")),
        (NOV, Decimal("0.00"), Decimal("90.00"), Decimal("100.00")),
    ]
    assert billing_history(db.session, ids["initech"] + 100) == []


def test_asset_usage_is_daily_per_unit_type_with_the_unit_aggregation(app):
    with app.app_context():
        vm = UnitType(name="vm-hours", aggregation="sum")
        gb = UnitType(name="storage-gb", aggregation="avg")
        client = Client(name="Acme")
        asset, other = Asset(external_id="a", source_type="s", client=client), Asset(external_id="b", source_type="s")
        db.session.add_all([vm, gb, asset, other])
        db.session.flush()
        day = datetime(2026, 11, 10, tzinfo=timezone.utc)
        store_readings(db.session, [
            NewReading(asset.id, vm.id, day + timedelta(hours=1), Decimal("1.5")),
            NewReading(asset.id, vm.id, day + timedelta(hours=23, minutes=59), Decimal("2.25")),
            NewReading(asset.id, gb.id, day + timedelta(hours=2), Decimal("10")),
            NewReading(asset.id, gb.id, day + timedelta(hours=3), Decimal("20")),
            NewReading(asset.id, gb.id, day + timedelta(days=2), Decimal("30")),
            NewReading(asset.id, gb.id, NOW - timedelta(days=31), Decimal("999")),  # outside the window
            NewReading(other.id, vm.id, day, Decimal("7")),  # another asset
        ])
        db.session.commit()
        series = asset_usage(db.session, asset.id, NOW)
        assert series == {
            "storage-gb": [("2026-11-10", Decimal("15.000000")), ("2026-11-12", Decimal("30.000000"))],
            "vm-hours": [("2026-11-10", Decimal("3.750000"))],  # 1.5 + 2.25 on the same UTC day
        }
        assert asset_usage(db.session, other.id, NOW + timedelta(days=40)) == {}
