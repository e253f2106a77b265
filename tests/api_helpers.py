"""Helpers for the API tests: keys per role, unit types, and the Authorization header."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api.keys import create_api_key
from extensions import db
from models import Client, UnitType


def make_key(app, role: str, client_id: int | None = None, name: str | None = None) -> str:
    with app.app_context():
        _, raw = create_api_key(name or f"{role} key", role, client_id)
        return raw


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def make_client(app, name: str = "Acme") -> int:
    with app.app_context():
        client = Client(name=name)
        db.session.add(client)
        db.session.commit()
        return client.id


def make_unit_type(app, name: str = "cpu_hours", aggregation: str = "sum") -> int:
    with app.app_context():
        unit = UnitType(name=name, aggregation=aggregation)
        db.session.add(unit)
        db.session.commit()
        return unit.id


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> str:
    return iso(datetime.now(timezone.utc) - timedelta(hours=hours))


def reading(asset_id: str = "vm-1", unit: str = "cpu_hours", value="1.5", ts: str | None = None,
            source: str = "vmware", **extra) -> dict:
    return {"asset_id": asset_id, "source": source, "unit_type": unit, "value": value,
            "timestamp": ts or "2026-11-01T10:00:00Z", **extra}
