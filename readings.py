"""Storing readings set-based: one multi-row insert per batch, duplicates ignored, summaries kept current."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Asset, AssetUnit, Reading, UTCDateTime, utcnow

CHUNK = 1000


@dataclass(frozen=True, slots=True)
class NewReading:
    asset_id: int
    unit_type_id: int
    ts: datetime
    value: Decimal


def _insert(session: Session, model):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def store_readings(session: Session, rows: Sequence[NewReading], received_at: datetime | None = None) -> int:
    """Insert readings, ignoring repeats of (asset, unit type, ts); return how many were new. Caller commits."""
    if not rows:
        return 0
    received_at = received_at or utcnow()
    stmt = _insert(session, Reading).on_conflict_do_nothing(index_elements=["asset_id", "unit_type_id", "ts"])
    inserted = 0
    for start in range(0, len(rows), CHUNK):
        params = [
            {"asset_id": r.asset_id, "unit_type_id": r.unit_type_id, "ts": r.ts, "value": r.value,
             "received_at": received_at}
            for r in rows[start:start + CHUNK]
        ]
        inserted += session.execute(stmt, params).rowcount
    _touch_summaries(session, rows)
    return inserted


def _touch_summaries(session: Session, rows: Iterable[NewReading]) -> None:
    """Keep `asset_units` (first/last reading per asset and unit) and `assets.last_seen_at` current."""
    spans: dict[tuple[int, int], list[datetime]] = {}
    for r in rows:
        span = spans.get((r.asset_id, r.unit_type_id))
        if span is None:
            spans[(r.asset_id, r.unit_type_id)] = [r.ts, r.ts]
        elif r.ts < span[0]:
            span[0] = r.ts
        elif r.ts > span[1]:
            span[1] = r.ts
    postgres = session.get_bind().dialect.name == "postgresql"
    least, greatest = (func.least, func.greatest) if postgres else (func.min, func.max)
    stmt = _insert(session, AssetUnit)
    stmt = stmt.on_conflict_do_update(
        index_elements=["asset_id", "unit_type_id"],
        set_={"first_ts": least(AssetUnit.first_ts, stmt.excluded.first_ts),
              "last_ts": greatest(AssetUnit.last_ts, stmt.excluded.last_ts)},
    )
    params = [{"asset_id": a, "unit_type_id": u, "first_ts": s[0], "last_ts": s[1]}
              for (a, u), s in sorted(spans.items())]
    session.execute(stmt, params)

    last_seen: dict[int, datetime] = {}
    for (asset_id, _), span in spans.items():
        if asset_id not in last_seen or span[1] > last_seen[asset_id]:
            last_seen[asset_id] = span[1]
    assets = Asset.__table__
    seen = bindparam("seen", type_=UTCDateTime)
    session.execute(
        update(assets)
        .where(assets.c.id == bindparam("aid"), (assets.c.last_seen_at.is_(None)) | (assets.c.last_seen_at < seen))
        .values(last_seen_at=seen),
        [{"aid": a, "seen": s} for a, s in sorted(last_seen.items())],
    )
