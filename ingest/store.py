"""Storing readings set-based: one multi-row insert per batch, duplicates ignored, summaries kept current; and a
batch's assets (found, or created for ingest) and readings stored in one transaction.

Rows go to the driver directly (sqlite3 executemany; one array statement on PostgreSQL, in (asset, unit type,
ts) order so that concurrent batches lock rows in the same order; SQLite has a single writer). On SQLite, datetimes are written in exactly
the text SQLAlchemy writes for `UTCDateTime` ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), so ORM queries compare them.
"""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from database import deadline
from database.audit import audit_bulk
from database.upsert import conflict_insert
from models import Asset, to_micro, utcnow

CHUNK = 1000
MICRO_SCALE = 6


class NewReading(NamedTuple):
    asset_id: int
    unit_type_id: int
    ts: datetime
    value: Decimal


def sqlite_datetime(moment: datetime) -> str:
    """The text SQLAlchemy stores for a UTC datetime on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def micro(value: Decimal | int | float | str) -> int:
    """The stored integer count of millionths (models.to_micro), fast for values with at most 6 decimals."""
    if type(value) is not Decimal:
        value = Decimal(str(value))
    scaled = value.scaleb(MICRO_SCALE)
    whole = int(scaled)
    return whole if whole == scaled else to_micro(value)


SQLITE_READINGS = ("INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT DO NOTHING")
SQLITE_UNITS = (
    "INSERT INTO asset_units (asset_id, unit_type_id, first_ts, last_ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (asset_id, unit_type_id) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
    "last_ts = max(last_ts, excluded.last_ts)"
)
SQLITE_SEEN = "UPDATE assets SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)"

POSTGRES_READINGS = (
    "INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
    "SELECT a, u, t, v, %s FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::bigint[]) AS x(a, u, t, v) "
    "ON CONFLICT (asset_id, unit_type_id, ts) DO NOTHING"
)
POSTGRES_UNITS = (
    "INSERT INTO asset_units (asset_id, unit_type_id, first_ts, last_ts) "
    "SELECT * FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::timestamptz[]) "
    "ON CONFLICT (asset_id, unit_type_id) DO UPDATE SET first_ts = LEAST(asset_units.first_ts, excluded.first_ts), "
    "last_ts = GREATEST(asset_units.last_ts, excluded.last_ts)"
)
POSTGRES_LOCK_ASSETS = "SELECT id FROM assets WHERE id = ANY(%s::int[]) ORDER BY id FOR NO KEY UPDATE"
POSTGRES_SEEN = (
    "UPDATE assets SET last_seen_at = x.seen FROM unnest(%s::int[], %s::timestamptz[]) AS x(id, seen) "
    "WHERE assets.id = x.id AND (assets.last_seen_at IS NULL OR assets.last_seen_at < x.seen)"
)


@dataclass(slots=True)
class PreparedReadings:
    """Driver parameters of a batch, built before the write (so a writer's turn is spent writing only)."""

    backend: str
    readings: list
    units: list
    seen: list
    count: int


def store_readings(session: Session, rows: Sequence[NewReading], received_at: datetime | None = None) -> int:
    """Insert readings, ignoring repeats of (asset, unit type, ts); return how many were new. Caller commits.

    A repeat inside `rows` is ignored too (the first one is kept), so `len(rows) - inserted` are the duplicates.
    Also keeps `asset_units` (first/last reading per asset and unit) and `assets.last_seen_at` current.
    """
    backend = session.get_bind().dialect.name
    return write_readings(session, prepare_readings(rows, received_at or utcnow(), backend))


def prepare_readings(rows: Sequence[NewReading], received_at: datetime, backend: str) -> PreparedReadings:
    if backend == "postgresql":
        return _prepare_postgres(sorted(rows, key=itemgetter(0, 1, 2)), received_at)
    return _prepare_sqlite(rows, received_at)


def write_readings(session: Session, prepared: PreparedReadings) -> int:
    """Execute a prepared batch in the session's transaction; return how many readings were new."""
    if not prepared.count:
        return 0
    dialect = session.get_bind().dialect
    connection = session.connection()
    driver_connection = connection.connection.driver_connection
    deadline.check()
    cursor = driver_connection.cursor()
    try:
        deadline.arm(prepared.backend, driver_connection, connection.info)
        if prepared.backend == "postgresql":
            return _write_postgres(cursor, prepared)
        return _write_sqlite(cursor, prepared)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance("store_readings", None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=dialect) from exc
    finally:
        cursor.close()


def _spans(rows: Sequence[NewReading]) -> tuple[dict[tuple[int, int], list[datetime]], dict[int, datetime]]:
    """First and last ts per (asset, unit type), and the latest ts per asset."""
    spans: dict[tuple[int, int], list[datetime]] = {}
    for r in rows:
        span = spans.get((r[0], r[1]))
        if span is None:
            spans[(r[0], r[1])] = [r[2], r[2]]
        elif r[2] < span[0]:
            span[0] = r[2]
        elif r[2] > span[1]:
            span[1] = r[2]
    last_seen: dict[int, datetime] = {}
    for (asset_id, _), (_, last) in spans.items():
        if asset_id not in last_seen or last > last_seen[asset_id]:
            last_seen[asset_id] = last
    return spans, last_seen


def _prepare_sqlite(rows: Sequence[NewReading], received_at: datetime) -> PreparedReadings:
    received = sqlite_datetime(received_at)
    texts = {moment: sqlite_datetime(moment) for moment in {r[2] for r in rows}}
    readings = [(r[0], r[1], texts[r[2]], micro(r[3]), received) for r in rows]
    spans, last_seen = _spans(rows)
    units = [(a, u, texts[first], texts[last]) for (a, u), (first, last) in spans.items()]
    seen = [(texts[moment], a, texts[moment]) for a, moment in last_seen.items()]
    return PreparedReadings("sqlite", readings, units, seen, len(readings))


def _write_sqlite(cursor, prepared: PreparedReadings) -> int:
    inserted = 0
    for start in range(0, prepared.count, CHUNK):
        cursor.executemany(SQLITE_READINGS, prepared.readings[start:start + CHUNK])
        inserted += cursor.rowcount
    cursor.executemany(SQLITE_UNITS, prepared.units)
    cursor.executemany(SQLITE_SEEN, prepared.seen)
    return inserted


def _prepare_postgres(rows: Sequence[NewReading], received_at: datetime) -> PreparedReadings:
    readings = []
    for start in range(0, len(rows), CHUNK * 10):
        chunk = rows[start:start + CHUNK * 10]
        readings.append((received_at, [r[0] for r in chunk], [r[1] for r in chunk], [_aware(r[2]) for r in chunk],
                         [micro(r[3]) for r in chunk]))
    spans, last_seen = _spans(rows)
    keys = list(spans)
    units = [([a for a, _ in keys], [u for _, u in keys], [_aware(spans[k][0]) for k in keys],
              [_aware(spans[k][1]) for k in keys])]
    ids = list(last_seen)
    seen = [(ids,), (ids, [_aware(last_seen[a]) for a in ids])]
    return PreparedReadings("postgresql", readings, units, seen, len(rows))


def _write_postgres(cursor, prepared: PreparedReadings) -> int:
    inserted = 0
    for params in prepared.readings:
        cursor.execute(POSTGRES_READINGS, params)
        inserted += cursor.rowcount
    cursor.execute(POSTGRES_UNITS, prepared.units[0])
    cursor.execute(POSTGRES_LOCK_ASSETS, prepared.seen[0])
    cursor.execute(POSTGRES_SEEN, prepared.seen[1])
    return inserted


# ---- a batch's assets and readings, in one transaction -------------------------------------------------------------

LOOKUP_CHUNK = 4000
ATTEMPTS = 3
LOCK_POLL_MAX = 0.004  # seconds between two tries of the SQLite writer's lock under a deadline

AssetKey = tuple[str, str]  # (external_id, source_type)
AssetRef = tuple[int, int | None]  # (asset id, client id)
Kept = tuple[int, AssetKey, int, datetime, Any, Mapping[str, Any]]  # (index, asset key, unit type id, ts, value, item)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "suppressed": self.suppressed,
                "rejected": sorted(self.rejected, key=lambda r: r["index"])}


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


POSTGRES_FIND_ASSETS = text(
    "SELECT a.external_id, a.source_type, a.id, a.client_id FROM assets a "
    "JOIN unnest(CAST(:external_ids AS varchar[]), CAST(:source_types AS varchar[])) AS k(external_id, source_type) "
    "ON a.external_id = k.external_id AND a.source_type = k.source_type")


def _select_assets(session: Session, keys: Sequence[AssetKey]) -> dict[AssetKey, AssetRef]:
    """Id and current client of the assets among `keys`: one array join on PostgreSQL, chunked IN lists on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(POSTGRES_FIND_ASSETS, {"external_ids": [k[0] for k in keys],
                                                      "source_types": [k[1] for k in keys]})
        return {(external_id, source_type): (asset_id, client_id)
                for external_id, source_type, asset_id, client_id in rows}
    assets = Asset.__table__
    found: dict[AssetKey, AssetRef] = {}
    for chunk in _chunks(keys, LOOKUP_CHUNK):
        rows = session.execute(
            select(assets.c.external_id, assets.c.source_type, assets.c.id, assets.c.client_id)
            .where(tuple_(assets.c.external_id, assets.c.source_type).in_(list(chunk)))
        )
        for external_id, source_type, asset_id, client_id in rows:
            found[(external_id, source_type)] = (asset_id, client_id)
    return found


def _create_assets(session: Session, wanted: dict[AssetKey, Mapping[str, Any]], client_id: int | None,
                   now: datetime) -> dict[AssetKey, AssetRef]:
    """Insert the unknown assets (losing races quietly), audit the ones this batch created, return all of them."""
    keys = sorted(wanted)
    values = [{"external_id": ext, "source_type": src, "name": wanted[(ext, src)].get("name") or "",
               "description": wanted[(ext, src)].get("description") or "", "client_id": client_id,
               "acknowledged": False, "enabled": True, "created_at": now} for ext, src in keys]
    assets = Asset.__table__
    stmt = (conflict_insert(session, assets).on_conflict_do_nothing(index_elements=["external_id", "source_type"])
            .returning(assets.c.id, assets.c.external_id, assets.c.source_type))
    created: dict[AssetKey, AssetRef] = {}
    for chunk in _chunks(values, LOOKUP_CHUNK):
        for asset_id, ext, src in session.execute(stmt, list(chunk)):
            created[(ext, src)] = (asset_id, client_id)
    by_key = {(v["external_id"], v["source_type"]): v for v in values}
    for key in sorted(created):
        row = by_key[key]
        audit_bulk(session, "create", "assets", [created[key][0]], new={
            "external_id": row["external_id"], "source_type": row["source_type"], "name": row["name"],
            "description": row["description"], "client_id": client_id, "acknowledged": False, "enabled": True,
            "created_by": "ingest"})
    raced = [key for key in keys if key not in created]
    if raced:
        created.update(_select_assets(session, raced))
    return created


def store_items(session: Session, kept: list[Kept], client_id: int | None, now: datetime) -> IngestResult:
    """Store valid, unsuppressed items (`_store`), again on a lost race or a deadlock (up to ATTEMPTS); commits."""
    for attempt in range(ATTEMPTS):
        try:
            return _store(session, kept, client_id, now)
        except DBAPIError as exc:
            session.rollback()
            if attempt == ATTEMPTS - 1 or not _retryable(exc):
                raise
    raise AssertionError("unreachable")


def _store(session: Session, kept: list[Kept], client_id: int | None, now: datetime) -> IngestResult:
    """Resolve (or create) the assets and insert the readings in one transaction; commits.

    The assets' owners are read from the database by every batch (never from a per-process cache), just before
    the write, so a client-scoped key is checked against the committed owner. Everything but the writes is done
    before taking the writer's turn; a batch with unknown assets creates them inside its turn. A repeat of
    (asset, unit type, ts) counts as a duplicate."""
    wanted: dict[AssetKey, Mapping[str, Any]] = {}
    for entry in kept:
        if entry[1] not in wanted:
            wanted[entry[1]] = entry[5]
    refs = _select_assets(session, list(wanted)) if wanted else {}
    unknown = {key: item for key, item in wanted.items() if key not in refs}
    backend = session.get_bind().dialect.name
    if unknown:
        with writer_turn(session):
            refs.update(_create_assets(session, unknown, client_id, now))
            result, prepared = _prepare(kept, refs, client_id, now, backend)
            inserted = write_readings(session, prepared)
            session.commit()
    else:
        result, prepared = _prepare(kept, refs, client_id, now, backend)
        with writer_turn(session):
            inserted = write_readings(session, prepared)
            session.commit()
    result.accepted = inserted
    result.duplicates = prepared.count - inserted
    return result


def _prepare(kept: list[Kept], refs: dict[AssetKey, AssetRef], client_id: int | None, now: datetime,
             backend: str) -> tuple[IngestResult, PreparedReadings]:
    """Reject items for assets outside the key's client; the driver parameters of the rest."""
    result = IngestResult()
    if client_id is not None:
        foreign = {key for key, (_, owner) in refs.items() if owner != client_id}
        if foreign:
            for index, key, *_ in kept:
                if key in foreign:
                    result.rejected.append({"index": index, "error": _forbidden(key, refs[key][1])})
            kept = [entry for entry in kept if entry[1] not in foreign]
    rows = [NewReading(refs[key][0], unit_id, ts, value) for _, key, unit_id, ts, value, _ in kept]
    return result, prepare_readings(rows, now, backend)


@contextmanager
def writer_turn(session: Session) -> Iterator[None]:
    """On SQLite, wait for the single writer's turn on an OS file lock (woken at once when it is free) rather
    than in SQLite's sleep-and-retry busy handler; PostgreSQL writes concurrently and needs no turn.

    Under a request deadline the lock is polled (every few ms) instead, so waiting ends at the deadline."""
    url = session.get_bind().url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    with open(f"{url.database}.ingest-lock", "a") as handle:
        _lock(handle)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(handle: Any) -> None:
    if deadline.remaining() is None:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return
    pause = 0.001
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            deadline.check()
            time.sleep(pause)
            pause = min(pause * 2, LOCK_POLL_MAX)


def _forbidden(key: AssetKey, owner: int | None) -> str:
    whose = "no client" if owner is None else "another client"
    return f"forbidden: asset {key[0]!r} (source {key[1]!r}) belongs to {whose}, not to this key's client"


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    name = type(getattr(exc, "orig", None)).__name__
    return name in ("DeadlockDetected", "SerializationFailure")
