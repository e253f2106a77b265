"""Ingest a batch of readings set-based: validate in one pass, drop suppressed assets, resolve or create the
assets with one query, store the readings with one insert, in one transaction. No Flask in here."""
from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

import deadline
from api.schemas import MAX_ITEMS, ReadingIn
from audit import audit_bulk
from models import Asset, UnitType, utcnow
from database.partitions import archived_labels
from readings import (ArchivedMonthWritten, KnownSummaries, NewReading, PreparedReadings, prepare_readings,
                      write_readings)
from suppressions import load_matcher
from upsert import conflict_insert

ITEMS = TypeAdapter(list[ReadingIn])
FUTURE_SLACK = timedelta(minutes=5)
LOOKUP_CHUNK = 4000
ATTEMPTS = 3
LOCK_POLL_MAX = 0.004  # seconds between two tries of the SQLite writer's lock under a deadline

AssetKey = tuple[str, str]  # (external_id, source_type)
AssetRef = tuple[int, int | None, datetime | None]  # (asset id, client id, last_seen_at)
Kept = tuple[int, AssetKey, int, datetime, Any, ReadingIn]  # (index, asset key, unit type id, ts, value, item)
MIN_YEAR, MAX_YEAR = 2, 9998


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "suppressed": self.suppressed,
                "rejected": sorted(self.rejected, key=lambda r: r["index"])}


def _reason(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"][1:])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def validate_items(items: Sequence[Any]) -> tuple[list[tuple[int, ReadingIn]], list[dict[str, Any]]]:
    """Parse every item; return the valid ones with their index and the rejected ones with a reason."""
    try:
        return list(enumerate(ITEMS.validate_python(items))), []
    except ValidationError as exc:
        reasons: dict[int, str] = {}
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            index = error["loc"][0] if error["loc"] else 0
            if isinstance(index, int):
                reasons.setdefault(index, _reason(error))
    good = [i for i in range(len(items)) if i not in reasons]
    parsed = ITEMS.validate_python([items[i] for i in good]) if good else []
    return list(zip(good, parsed)), [{"index": i, "error": e} for i, e in reasons.items()]


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


# One query finds a batch's assets with their owners and stored summaries (last_seen_at, and the first and last
# reading of each unit type the batch carries): one row per asset and unit type.
POSTGRES_FIND_ASSETS = (
    "SELECT a.external_id, a.source_type, a.id, a.client_id, a.last_seen_at, au.unit_type_id, au.first_ts, au.last_ts "
    "FROM assets a JOIN unnest(%s::varchar[], %s::varchar[]) AS k(external_id, source_type) "
    "ON a.external_id = k.external_id AND a.source_type = k.source_type "
    "LEFT JOIN asset_units au ON au.asset_id = a.id AND au.unit_type_id = ANY(%s::integer[])")
# SQLite: one JSON parameter instead of two bound parameters per asset (compiling a 2,000-parameter IN list cost
# more than running it); json_each drives the loop, each key one seek on uq_assets_external_source.
SQLITE_FIND_ASSETS = (
    "SELECT a.external_id, a.source_type, a.id, a.client_id, a.last_seen_at, au.unit_type_id, au.first_ts, au.last_ts "
    "FROM json_each(?) AS k CROSS JOIN assets a ON a.external_id = json_extract(k.value, '$[0]') "
    "AND a.source_type = json_extract(k.value, '$[1]') "
    "LEFT JOIN asset_units au ON au.asset_id = a.id AND au.unit_type_id IN (SELECT value FROM json_each(?))")


def _select_assets(session: Session, keys: Sequence[AssetKey], unit_ids: Iterable[int] = ()
                   ) -> tuple[dict[AssetKey, AssetRef], KnownSummaries]:
    """Id, current client and last_seen_at of the assets among `keys`, and the stored first/last reading of each
    of `unit_ids` for them (values as the driver reads them), in one query straight from the driver."""
    units_wanted = sorted(unit_ids)
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        if session.get_bind().dialect.name == "postgresql":
            cursor.execute(POSTGRES_FIND_ASSETS, ([k[0] for k in keys], [k[1] for k in keys], units_wanted),
                           binary=True)
        else:
            cursor.execute(SQLITE_FIND_ASSETS, (json.dumps(keys), json.dumps(units_wanted)))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    refs: dict[AssetKey, AssetRef] = {}
    known = KnownSummaries({}, {})
    for external_id, source_type, asset_id, client_id, seen, unit_type_id, first, last in rows:
        refs[(external_id, source_type)] = (asset_id, client_id, seen)
        known.seen[asset_id] = seen
        if unit_type_id is not None:
            known.units[(asset_id, unit_type_id)] = (first, last)
    return refs, known


def _create_assets(session: Session, wanted: dict[AssetKey, ReadingIn], client_id: int | None,
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


class BadBatch(ValueError):
    """A body that is not a batch of readings: `status` 400 (not such JSON) or 413 (too many items)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _items_of(data: Any) -> list[Any]:
    if isinstance(data, dict) and set(data) == {"readings"}:
        data = data["readings"]
    if not isinstance(data, list):
        raise BadBatch(400, 'the body must be a JSON list of readings or {"readings": [...]}')
    _check_size(len(data))
    return data


def _check_size(count: int) -> None:
    if count > MAX_ITEMS:
        raise BadBatch(413, f"at most {MAX_ITEMS:,} readings per request; got {count:,}")


def parse_batch(raw: bytes) -> tuple[list[tuple[int, ReadingIn]], list[dict[str, Any]]]:
    """Parse a request body into valid items (with their index) and rejected ones; raises BadBatch.

    A plain list whose items are all valid is parsed and validated by pydantic straight from the bytes. Otherwise
    JSON integers are read as Decimal (no digit limit), so a 5,000-digit value is one rejected item, not a bad
    body; NaN and Infinity are read too, and rejected item by item."""
    if raw.lstrip()[:1] == b"[":
        try:
            parsed = ITEMS.validate_json(raw)
        except ValidationError:
            pass
        else:
            _check_size(len(parsed))
            return list(enumerate(parsed)), []
    try:
        data = json.loads(raw, parse_int=Decimal)
    except RecursionError:
        raise BadBatch(400, "the body must be JSON nested less deeply") from None
    except ValueError:
        raise BadBatch(400, "the body must be JSON") from None
    return validate_items(_items_of(data))


def ingest_body(session: Session, raw: bytes, client_id: int | None = None, now: datetime | None = None
                ) -> IngestResult:
    """Parse, validate and store a request body of readings; commits. Raises BadBatch for a bad body."""
    valid, rejected = parse_batch(raw)
    return _ingest_valid(session, valid, rejected, client_id, now)


def ingest_readings(session: Session, items: Sequence[Any], client_id: int | None = None,
                    now: datetime | None = None) -> IngestResult:
    """Validate and store a batch of reading items; commits. `client_id` is the scope of the posting key."""
    valid, rejected = validate_items(items)
    return _ingest_valid(session, valid, rejected, client_id, now)


def _ingest_valid(session: Session, valid: list[tuple[int, ReadingIn]], rejected: list[dict[str, Any]],
                  client_id: int | None, now: datetime | None) -> IngestResult:
    """Validate against the database and store; again from the start when a month was archived meanwhile."""
    while True:
        try:
            return _ingest_checked(session, valid, list(rejected), client_id, now)
        except ArchivedMonthWritten:
            session.rollback()


def _archived(ts: datetime, archived: set[str]) -> str | None:
    label = f"{ts.astimezone(timezone.utc):%Y-%m}"
    return label if label in archived else None


def _ingest_checked(session: Session, valid: list[tuple[int, ReadingIn]], rejected: list[dict[str, Any]],
                    client_id: int | None, now: datetime | None) -> IngestResult:
    deadline.check()
    now = now or utcnow()
    unit_ids = dict(session.execute(select(UnitType.name, UnitType.id)).all())
    archived = archived_labels(session)
    latest = now + FUTURE_SLACK
    kept: list[Kept] = []
    for index, item in valid:
        ts = item["timestamp"]
        if not MIN_YEAR <= ts.year <= MAX_YEAR:
            rejected.append({"index": index, "error": f"timestamp: year must be {MIN_YEAR} to {MAX_YEAR}"})
        elif ts > latest:
            rejected.append({"index": index, "error": "timestamp: is more than 5 minutes in the future"})
        elif archived and (month := _archived(ts, archived)):
            rejected.append({"index": index, "error": f"timestamp: {month} is archived (its readings were moved to "
                                                      "a file); readings for it are no longer accepted"})
        elif (unit_id := unit_ids.get(item["unit_type"])) is None:
            rejected.append({"index": index, "error": f"unit_type: unknown unit type {item['unit_type']!r}"})
        else:
            kept.append((index, (item["asset_id"], item["source"]), unit_id, ts, item["value"], item))
    is_suppressed = load_matcher(session)
    dropped = {external_id for external_id in {k[1][0] for k in kept} if is_suppressed(external_id)}
    if dropped:
        before = len(kept)
        kept = [k for k in kept if k[1][0] not in dropped]
        suppressed = before - len(kept)
    else:
        suppressed = 0

    deadline.check()
    for attempt in range(ATTEMPTS):
        try:
            result = _store(session, kept, client_id, now)
            break
        except DBAPIError as exc:
            session.rollback()
            if attempt == ATTEMPTS - 1 or not _retryable(exc):
                raise
    result.suppressed = suppressed
    result.rejected = rejected + result.rejected
    return result


def _store(session: Session, kept: list[Kept], client_id: int | None, now: datetime) -> IngestResult:
    """Resolve (or create) the assets and insert the readings in one transaction; commits.

    The assets' owners are read from the database by every batch (never from a per-process cache), just before
    the write, so a client-scoped key is checked against the committed owner. Everything but the writes is done
    before taking the writer's turn; a batch with unknown assets creates them inside its turn. A repeat of
    (asset, unit type, ts) counts as a duplicate."""
    wanted: dict[AssetKey, ReadingIn] = {}
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
    rows = [NewReading(refs[key][0], unit_id, ts, value) for _, key, unit_id, ts, value, _ in kept]
    return result, prepare_readings(rows, now, backend, known)
