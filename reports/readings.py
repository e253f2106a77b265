"""Readings read back (GET /api/v1/readings): one page of an asset's readings, set-based, in ts order."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Asset, Reading, UnitType


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One stored reading with the names a collector knows it by (a reading is keyed by asset, unit type and ts)."""

    asset_id: int
    external_id: str
    source: str
    unit_type_id: int
    unit_type: str
    ts: datetime
    value: Decimal
    received_at: datetime


def readings_page(session: Session, *, client_id: int | None = None, asset_id: int | None = None,
                  unit_type_id: int | None = None, start: datetime | None = None, end: datetime | None = None,
                  page: int = 1, per_page: int = 100) -> tuple[list[ReadingRow], int]:
    """Readings with ts in [start, end), of one asset and unit type when given, of `client_id`'s assets only when
    given; ordered by asset, unit type and ts (the unique index); the page asked for and the total."""
    query = (select(Reading.asset_id, Asset.external_id, Asset.source_type, Reading.unit_type_id,
                    UnitType.name, Reading.ts, Reading.value, Reading.received_at)
             .join(Asset, Asset.id == Reading.asset_id).join(UnitType, UnitType.id == Reading.unit_type_id))
    if client_id is not None:
        query = query.where(Asset.client_id == client_id)
    if asset_id is not None:
        query = query.where(Reading.asset_id == asset_id)
    if unit_type_id is not None:
        query = query.where(Reading.unit_type_id == unit_type_id)
    if start is not None:
        query = query.where(Reading.ts >= start)
    if end is not None:
        query = query.where(Reading.ts < end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Reading.asset_id, Reading.unit_type_id, Reading.ts)
                           .offset((page - 1) * per_page).limit(per_page))
    return [ReadingRow(*row) for row in rows], total


def visible_asset(session: Session, asset_id: int, client_id: int | None) -> bool:
    """Whether the asset exists and, for a client-scoped caller, belongs to `client_id`."""
    query = select(Asset.id).where(Asset.id == asset_id)
    if client_id is not None:
        query = query.where(Asset.client_id == client_id)
    return session.scalar(query) is not None


def unit_type_id_named(session: Session, name: str) -> int | None:
    return session.scalar(select(UnitType.id).where(UnitType.name == name))
