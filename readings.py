"""Storing readings set-based: one multi-row insert per batch, duplicates ignored, summaries kept current."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import bindparam, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models import Asset, AssetUnit, UTCDateTime, to_micro, utcnow

CHUNK = 1000


@dataclass(frozen=True, slots=True)
class NewReading:
    asset_id: int
    unit_type_id: int
    ts: datetime
    value: Decimal


def _insert(session: Session, model):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def sqlite_datetime(moment: datetime) -> str:
    """The text SQLAlchemy stores for a UTC datetime on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _micro(value: Decimal | int | float | str) -> int:
    return to_micro(value if type(value) is Decimal else Decimal(str(value)))


SQLITE_INSERT = ("INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT DO NOTHING")
POSTGRES_INSERT = (
    "INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
    "SELECT a, u, t, v, %s FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::bigint[]) AS x(a, u, t, v) "
    "ON CONFLICT (asset_id, unit_type_id, ts) DO NOTHING"
)


def store_readings(session: Session, rows: Sequence[NewReading], received_at: datetime | None = None) -> int:
    """Insert readings, ignoring repeats of (asset, unit type, ts); return how many were new. Caller commits.

    Rows go to the driver directly (one statement per chunk of 1,000 on SQLite, one array insert per chunk on
    PostgreSQL), in (asset, unit type, ts) order so that concurrent batches lock rows in the same order.
    """
    if not rows:
        return 0
    received_at = received_at or utcnow()
    rows = sorted(rows, key=lambda r: (r.asset_id, r.unit_type_id, r.ts))
    dialect = session.get_bind().dialect
    cursor = session.connection().connection.driver_connection.cursor()
    inserted = 0
    try:
        if dialect.name == "postgresql":
            for start in range(0, len(rows), CHUNK * 10):
                chunk = rows[start:start + CHUNK * 10]
                cursor.execute(POSTGRES_INSERT, (
                    received_at, [r.asset_id for r in chunk], [r.unit_type_id for r in chunk],
                    [_aware(r.ts) for r in chunk], [_micro(r.value) for r in chunk]))
                inserted += cursor.rowcount
        else:
            received = sqlite_datetime(received_at)
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(SQLITE_INSERT, [
                    (r.asset_id, r.unit_type_id, sqlite_datetime(r.ts), _micro(r.value), received)
                    for r in rows[start:start + CHUNK]])
                inserted += cursor.rowcount
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance("INSERT INTO readings", None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=dialect) from exc
    finally:
        cursor.close()
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
