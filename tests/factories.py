"""The tests' builders of records: clients, unit types, assets, buckets with bound assets, and readings stored
through the real store (ingest/store.py), so `asset_units` and `last_seen_at` are kept as ingest keeps them."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType

NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC = datetime(2026, 12, 1, tzinfo=timezone.utc)


def at(text: str) -> datetime:
    """An ISO 8601 timestamp with zone, as an aware datetime."""
    return datetime.fromisoformat(text)


def client(name: str = "Acme") -> Client:
    row = db.session.query(Client).filter_by(name=name).one_or_none()
    if row is None:
        row = Client(name=name)
        db.session.add(row)
        db.session.flush()
    return row


def unit_type(name: str = "gb") -> UnitType:
    row = db.session.query(UnitType).filter_by(name=name).one_or_none()
    if row is None:
        row = UnitType(name=name, aggregation="sum")
        db.session.add(row)
        db.session.flush()
    return row


def asset(external_id: str, owner: Client | None = None, **fields) -> Asset:
    row = Asset(external_id=external_id, source_type="vm", name=external_id, client=owner, acknowledged=True, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def bucket(name: str, aggregation: str = "sum", assets: list[Asset] | None = None, commit: str = "0",
           base: str = "0", overage: str = "0", owner: Client | None = None, unit: UnitType | None = None,
           **fields) -> Bucket:
    owner = owner or client()
    row = Bucket(client=owner, name=name, unit_type=unit or unit_type(), source_type="vm", aggregation=aggregation,
                 commit=Decimal(commit), base_price=Decimal(base), overage_price=Decimal(overage), **fields)
    row.assets = list(assets or [])
    db.session.add(row)
    db.session.flush()
    return row


def readings(target: Asset, values: list[tuple[str, str]], unit: UnitType | None = None,
             received_at: datetime | None = None) -> int:
    """Store (timestamp, value) readings for an asset through the real store; returns how many were new."""
    unit = unit or unit_type()
    rows = [NewReading(target.id, unit.id, at(ts), Decimal(v)) for ts, v in values]
    return store_readings(db.session, rows, received_at)
