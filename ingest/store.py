"""Storing readings set-based: one multi-row insert per batch, duplicates ignored, summaries kept current; and a
batch's assets (found, or created for ingest) and readings stored in one transaction.

Rows go to the driver directly (sqlite3 executemany; one array statement on PostgreSQL, in (asset, unit type,
ts) order so that concurrent batches lock rows in the same order; SQLite has a single writer). On SQLite, datetimes are written in exactly
the text SQLAlchemy writes for `UTCDateTime` ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), so ORM queries compare them.
"""
from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from database import deadline
from database.audit import audit_bulk
from database.driver import driver_cursor
from database.partitions import hold_archive_fence
from database.reading_days import HORIZON, late_days, refresh_days
from database.upsert import conflict_insert
from models import Asset, to_micro, utcnow

CHUNK = 1000
MICRO_SCALE = 6
# How far `assets.last_seen_at` and `asset_units.last_ts` may lag the latest reading: ingest moves them forward only
# by more than this, so a collector polling every few minutes writes them once an hour, not on every poll. Pages
# show the exact figure, sought from there in the readings (reports/last_seen.py).
SEEN_STEP = timedelta(hours=1)


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


class ArchivedMonthWritten(Exception):
    """A month of the batch was marked archived after the batch was validated: roll back and validate again."""


@dataclass(slots=True)
class KnownSummaries:
    """What the database holds for a batch's assets, read with the batch's asset lookup: `seen` asset id ->
    last_seen_at; `units` (asset id, unit type id) -> (first_ts, last_ts). Values as the driver reads them: aware
    datetimes on PostgreSQL, the stored 'YYYY-MM-DD HH:MM:SS.ffffff' text on SQLite."""

    seen: dict[int, datetime | str | None]
    units: dict[tuple[int, int], tuple[datetime | str, datetime | str]]


@dataclass(slots=True)
class PreparedReadings:
    """Driver parameters of a batch, built before the write (so a writer's turn is spent writing only): `readings`
    are executemany rows on SQLite, the COPY text on PostgreSQL."""

    backend: str
    readings: list
    units: list
    seen: list
    count: int
    months: set[str]
    received: datetime | None = None
    rows: Sequence = ()  # the NewReading rows (PostgreSQL: sorted, for the insert skipping repeats)
    earliest: Any = None  # the earliest ts as the driver compares it (SQLite: its stored text)


def store_readings(session: Session, rows: Sequence[NewReading], received_at: datetime | None = None) -> int:
    """Insert readings, ignoring repeats of (asset, unit type, ts); return how many were new. Caller commits.

    A repeat inside `rows` is ignored too (the first one is kept), so `len(rows) - inserted` are the duplicates.
    Also keeps `asset_units` (first/last reading per asset and unit) and `assets.last_seen_at` current.
    """
    backend = session.get_bind().dialect.name
    return write_readings(session, prepare_readings(rows, received_at or utcnow(), backend))


def prepare_readings(rows: Sequence[NewReading], received_at: datetime, backend: str,
                     known: KnownSummaries | None = None) -> PreparedReadings:
    """The driver parameters of a batch. With `known`, the summaries are written only where they change visibly:
    a new (asset, unit type), an earlier first reading, or a latest reading more than SEEN_STEP past the stored one."""
    if backend == "postgresql":
        return _prepare_postgres(sorted(rows, key=itemgetter(0, 1, 2)), received_at, known)
    return _prepare_sqlite(rows, received_at, known)


def _changed(spans: dict[tuple[int, int], list[datetime]], last_seen: dict[int, datetime],
             known: KnownSummaries | None, stored_form) -> tuple[dict[tuple[int, int], list[datetime]],
                                                                 dict[int, datetime]]:
    """The spans and last-seen moments worth writing, given what is stored. `stored_form` turns a moment into the
    form `known` holds (SQLite: its stored text, which sorts like the moment; PostgreSQL: an aware datetime), so
    the stored values are compared as read, never parsed."""
    if known is None:
        return spans, last_seen
    moments = {moment for span in spans.values() for moment in span}
    as_stored = {moment: stored_form(moment) for moment in moments}
    step_back = {moment: stored_form(_aware(moment) - SEEN_STEP) for moment in moments}
    units = {}
    for pair, (first, last) in spans.items():
        stored = known.units.get(pair)
        if stored is None or as_stored[first] < stored[0] or step_back[last] > stored[1]:
            units[pair] = [first, last]
    seen = {}
    for asset_id, last in last_seen.items():
        stored = known.seen.get(asset_id)
        if stored is None or step_back[last] > stored:
            seen[asset_id] = last
    return units, seen


def write_readings(session: Session, prepared: PreparedReadings) -> int:
    """Execute a prepared batch in the session's transaction; return how many readings were new."""
    if not prepared.count:
        return 0
    connection = session.connection()
    deadline.check()
    with driver_cursor(session, "store_readings") as cursor:
        deadline.arm(prepared.backend, connection.connection.driver_connection, connection.info)
        if prepared.backend == "postgresql":
            hold_archive_fence(session)
            inserted = _write_postgres(cursor, prepared)
        else:
            inserted = _write_sqlite(cursor, prepared)
        _check_not_archived(cursor, prepared)
        _refresh_sealed_days(cursor, prepared)
        return inserted


def _check_not_archived(cursor, prepared: PreparedReadings) -> None:
    """After the insert, in its transaction: raise ArchivedMonthWritten if a month of the batch is archived now.

    On SQLite the insert holds the single writer's lock, so an archive mark is either visible here or comes after
    this batch commits (and then archives its readings too); on PostgreSQL the archive fence does the same."""
    cursor.execute("SELECT period_start FROM archived_months")
    for (start,) in cursor.fetchall():
        label = start[:7] if isinstance(start, str) else f"{start.astimezone(timezone.utc):%Y-%m}"
        if label in prepared.months:
            raise ArchivedMonthWritten(label)


def _refresh_sealed_days(cursor, prepared: PreparedReadings) -> None:
    """After the insert, in its transaction: recount the sealed days the batch wrote into (late readings), so
    billing's day sums stay exact. One small query when the batch is newer than the horizon, as collectors' are."""
    cursor.execute(HORIZON)
    found = cursor.fetchone()
    if found is None or prepared.earliest is None or prepared.earliest >= found[0]:
        return
    horizon = _aware(datetime.fromisoformat(found[0])) if isinstance(found[0], str) else found[0]
    keys = late_days(((r[0], r[1], _aware(r[2])) for r in prepared.rows), horizon)
    day_text = sqlite_datetime if prepared.backend == "sqlite" else datetime.isoformat
    refresh_days(cursor, prepared.backend, keys, day_text)


def _months(moments) -> set[str]:
    """'YYYY-MM' (UTC) of each moment."""
    return {f"{_aware(moment).astimezone(timezone.utc):%Y-%m}" for moment in moments}


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


def _prepare_sqlite(rows: Sequence[NewReading], received_at: datetime, known: KnownSummaries | None
                    ) -> PreparedReadings:
    received = sqlite_datetime(received_at)
    texts = {moment: sqlite_datetime(moment) for moment in {r[2] for r in rows}}
    readings = [(r[0], r[1], texts[r[2]], micro(r[3]), received) for r in rows]
    spans, last_seen = _changed(*_spans(rows), known, sqlite_datetime)
    units = [(a, u, texts[first], texts[last]) for (a, u), (first, last) in spans.items()]
    seen = [(texts[moment], a, texts[moment]) for a, moment in last_seen.items()]
    return PreparedReadings("sqlite", readings, units, seen, len(readings), {text[:7] for text in texts.values()},
                            rows=rows, earliest=min(texts.values(), default=None))


def _write_sqlite(cursor, prepared: PreparedReadings) -> int:
    inserted = 0
    for start in range(0, prepared.count, CHUNK):
        cursor.executemany(SQLITE_READINGS, prepared.readings[start:start + CHUNK])
        inserted += cursor.rowcount
    if prepared.units:
        cursor.executemany(SQLITE_UNITS, prepared.units)
    if prepared.seen:
        cursor.executemany(SQLITE_SEEN, prepared.seen)
    return inserted


def _prepare_postgres(rows: Sequence[NewReading], received_at: datetime, known: KnownSummaries | None
                      ) -> PreparedReadings:
    """`readings` is the COPY text of the batch (copy_text); `rows` stay for the insert that skips repeats."""
    spans, last_seen = _changed(*_spans(rows), known, _aware)
    keys = list(spans)
    units = [([a for a, _ in keys], [u for _, u in keys], [_aware(spans[k][0]) for k in keys],
              [_aware(spans[k][1]) for k in keys])]
    ids = list(last_seen)
    seen = [(ids,), (ids, [_aware(last_seen[a]) for a in ids])]
    moments = {_aware(moment) for moment in {r[2] for r in rows}}  # distinct first: a poll shares one ts
    return PreparedReadings("postgresql", copy_text(rows, received_at), units, seen, len(rows),
                            _months(moments), received_at, rows, min(moments, default=None))


def copy_text(rows: Sequence[NewReading], received_at: datetime) -> bytes:
    """COPY's text format of the rows (asset_id, unit_type_id, ts, value in millionths, received_at), in one piece
    (a row at a time through the driver cost more than the server's work). Integers and ISO timestamps hold no
    tab, newline or backslash, so nothing needs escaping; each distinct ts is written once (a poll shares one)."""
    received = _aware(received_at).isoformat()
    stamps: dict[datetime, str] = {}
    lines = []
    for asset_id, unit_type_id, ts, value in rows:
        stamp = stamps.get(ts)
        if stamp is None:
            stamp = stamps[ts] = _aware(ts).isoformat()
        lines.append(f"{asset_id}\t{unit_type_id}\t{stamp}\t{micro(value)}\t{received}\n")
    return "".join(lines).encode()


POSTGRES_COPY = "COPY readings (asset_id, unit_type_id, ts, value, received_at) FROM STDIN"


def _write_postgres(cursor, prepared: PreparedReadings) -> int:
    """COPY the batch (the bulk path, in a savepoint); when it holds a repeat, the array insert that skips repeats."""
    from psycopg.errors import UniqueViolation

    cursor.execute("SAVEPOINT readings_copy")
    try:
        with cursor.copy(POSTGRES_COPY) as copy:
            copy.write(prepared.readings)
        inserted = prepared.count
    except UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT readings_copy")
        inserted = _insert_postgres(cursor, prepared)
    _write_summaries_postgres(cursor, prepared)
    return inserted


def _insert_postgres(cursor, prepared: PreparedReadings) -> int:
    inserted = 0
    for start in range(0, prepared.count, CHUNK * 10):
        chunk = prepared.rows[start:start + CHUNK * 10]
        cursor.execute(POSTGRES_READINGS, (prepared.received, [r[0] for r in chunk], [r[1] for r in chunk],
                                           [_aware(r[2]) for r in chunk], [micro(r[3]) for r in chunk]),
                       binary=True)
        inserted += cursor.rowcount
    return inserted


def _write_summaries_postgres(cursor, prepared: PreparedReadings) -> None:
    if prepared.units[0][0]:
        cursor.execute(POSTGRES_UNITS, prepared.units[0], binary=True)
    if prepared.seen[0][0]:
        cursor.execute(POSTGRES_LOCK_ASSETS, prepared.seen[0], binary=True)
        cursor.execute(POSTGRES_SEEN, prepared.seen[1], binary=True)


# ---- a batch's assets and readings, in one transaction -------------------------------------------------------------

LOOKUP_CHUNK = 4000
ATTEMPTS = 3
LOCK_POLL_MAX = 0.004  # seconds between two tries of the SQLite writer's lock under a deadline

AssetKey = tuple[str, str]  # (external_id, source_type)
AssetRef = tuple[int, int | None, Any]  # (asset id, client id, last_seen_at as the driver reads it)
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


# One query finds a batch's assets with their owners and stored summaries (last_seen_at, and the first and last
# reading of each unit type the batch carries): one row per asset and unit type.
# PostgreSQL: the keys as one JSON parameter too (the driver's array dumping cost more than the query).
POSTGRES_FIND_ASSETS = (
    "SELECT a.external_id, a.source_type, a.id, a.client_id, a.last_seen_at, au.unit_type_id, au.first_ts, au.last_ts "
    "FROM json_array_elements(%s::json) AS k(pair) JOIN assets a "
    "ON a.external_id = k.pair->>0 AND a.source_type = k.pair->>1 "
    "LEFT JOIN asset_units au ON au.asset_id = a.id AND au.unit_type_id = ANY(%s::integer[])")
# SQLite: the distinct external ids as one JSON parameter instead of bound parameters per asset (compiling a
# 2,000-parameter IN list cost more than running it); json_each drives the loop, each id one seek on
# uq_assets_external_source's leading column (cheaper than extracting two fields from each JSON key: 4.1 -> 2.9 ms for
# 1,000 keys). An asset of the same id from another source comes along, keyed by its own source: no item names it.
SQLITE_FIND_ASSETS = (
    "SELECT a.external_id, a.source_type, a.id, a.client_id, a.last_seen_at, au.unit_type_id, au.first_ts, au.last_ts "
    "FROM json_each(?) AS k CROSS JOIN assets a ON a.external_id = k.value "
    "LEFT JOIN asset_units au ON au.asset_id = a.id AND au.unit_type_id IN (SELECT value FROM json_each(?))")


def _select_assets(session: Session, keys: Sequence[AssetKey], unit_ids: Iterable[int] = ()
                   ) -> tuple[dict[AssetKey, AssetRef], KnownSummaries]:
    """Id, current client and last_seen_at of the assets among `keys`, and the stored first/last reading of each
    of `unit_ids` for them (values as the driver reads them), in one query straight from the driver."""
    units_wanted = sorted(unit_ids)
    with driver_cursor(session, "find_assets") as cursor:
        if session.get_bind().dialect.name == "postgresql":
            cursor.execute(POSTGRES_FIND_ASSETS, (json.dumps(keys), units_wanted))
        else:
            cursor.execute(SQLITE_FIND_ASSETS, (json.dumps(list({key[0] for key in keys})), json.dumps(units_wanted)))
        rows = cursor.fetchall()
    refs: dict[AssetKey, AssetRef] = {}
    known = KnownSummaries({}, {})
    for external_id, source_type, asset_id, client_id, seen, unit_type_id, first, last in rows:
        refs[(external_id, source_type)] = (asset_id, client_id, seen)
        known.seen[asset_id] = seen
        if unit_type_id is not None:
            known.units[(asset_id, unit_type_id)] = (first, last)
    return refs, known


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
            created[(ext, src)] = (asset_id, client_id, None)
    by_key = {(v["external_id"], v["source_type"]): v for v in values}
    for key in sorted(created):
        row = by_key[key]
        audit_bulk(session, "create", "assets", [created[key][0]], new={
            "external_id": row["external_id"], "source_type": row["source_type"], "name": row["name"],
            "description": row["description"], "client_id": client_id, "acknowledged": False, "enabled": True,
            "created_by": "ingest"})
    raced = [key for key in keys if key not in created]
    if raced:
        created.update(_select_assets(session, raced)[0])
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
    refs, known = _select_assets(session, list(wanted), {entry[2] for entry in kept}) if wanted else (
        {}, KnownSummaries({}, {}))
    unknown = {key: item for key, item in wanted.items() if key not in refs}
    backend = session.get_bind().dialect.name
    if unknown:
        with writer_turn(session):
            refs.update(_create_assets(session, unknown, client_id, now))
            result, prepared = _prepare(kept, refs, client_id, now, backend, known)
            inserted = write_readings(session, prepared)
            session.commit()
    else:
        result, prepared = _prepare(kept, refs, client_id, now, backend, known)
        with writer_turn(session):
            inserted = write_readings(session, prepared)
            session.commit()
    result.accepted = inserted
    result.duplicates = prepared.count - inserted
    return result


def _prepare(kept: list[Kept], refs: dict[AssetKey, AssetRef], client_id: int | None, now: datetime,
             backend: str, known: KnownSummaries) -> tuple[IngestResult, PreparedReadings]:
    """Reject items for assets outside the key's client; the driver parameters of the rest."""
    result = IngestResult()
    if client_id is not None:
        foreign = {key for key, (_, owner, _) in refs.items() if owner != client_id}
        if foreign:
            for index, key, *_ in kept:
                if key in foreign:
                    result.rejected.append({"index": index, "error": _forbidden(key, refs[key][1])})
            kept = [entry for entry in kept if entry[1] not in foreign]
    rows = [(refs[key][0], unit_id, ts, value) for _, key, unit_id, ts, value, _ in kept]  # NewReading's shape
    return result, prepare_readings(rows, now, backend, known)


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
