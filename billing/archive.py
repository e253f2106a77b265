"""Archiving finalized months' readings to files, and loading them back (DESIGN.md "Readings at scale").

A month may be archived once it has ended and every billing line of it is finalized (and there is at least one).
Archiving writes the month's readings to `DIR/readings-YYYY-MM.csv.gz` (CSV with a header:
`asset_id,unit_type_id,ts,value,received_at`, times ISO 8601 UTC, values decimal) and then removes them: on
PostgreSQL by dropping the month's partition, on SQLite by deleting them. Lines, terms and audit stay. An archived
month is not billed again and takes no new readings (ingest rejects them item by item) until
`restore-readings FILE` loads the file back.

Two steps, so no reading is lost to a batch in flight: first the month is marked `archiving` (committed, under the
archive fence that ingest writes hold shared), so every later batch refuses it; then the month's readings are
locked against writers, written to the file, removed, and the mark becomes `archived`, in one transaction. A run
that fails between the two leaves the readings in place and the month marked; running the command again finishes it.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import case, delete, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period, period_label, period_of
from database.audit import audit_bulk
from database.driver import driver_cursor
from database.partitions import (archived_labels, create_month_partition, drop_month_partition, hold_archive_fence,
                                 lock_month)
from database.reading_days import recount_days
from ingest.store import sqlite_datetime
from models import ArchivedMonth, BillingReading, Reading, UnitType, from_micro, to_micro, utcnow

HEADER = ("asset_id", "unit_type_id", "ts", "value", "received_at")
FILE_RE = re.compile(r"readings-(\d{4})-(\d{2})\.csv\.gz$")
CHUNK = 10_000
LIMIT = "9223372036854.775808"  # 2^63 millionths: a reading's value is stored as a bigint of millionths


class ArchiveRefused(ValueError):
    """A month that may not be archived (not ended, not billed, not all finalized) or a file that cannot be loaded."""


@dataclass(frozen=True)
class ArchiveResult:
    period: str
    readings: int
    path: Path
    sha256: str


def file_name(period_start: datetime) -> str:
    return f"readings-{period_label(period_start)}.csv.gz"


def check_not_archived(session: Session, period_start: datetime) -> None:
    """Raise ValueError when the period's readings are archived: billing it again would bill nothing."""
    label = period_label(period_start)
    if label in archived_labels(session):
        raise ValueError(f"{label} is archived: its readings were moved to a file by archive-readings, so it cannot "
                         f"be billed again (its billing lines stay); load them back with "
                         f"`flask --app app restore-readings {file_name(period_start)}` first")


def archive_refusal(session: Session, period_start: datetime, now: datetime | None = None) -> str | None:
    """Why a month may not be archived, or None: it must have ended and have billing lines, all finalized."""
    label = period_label(period_start)
    if period_start >= current_period_start(now):
        return f"{label} has not ended"
    total, open_lines = session.execute(
        select(func.count(), func.coalesce(func.sum(case((BillingReading.finalized.is_(False), 1), else_=0)), 0))
        .where(BillingReading.period_start == period_start)).one()
    if not total:
        return f"{label} has no billing lines (bill and finalize it first)"
    if open_lines:
        return f"{label} has {open_lines} unfinalized billing line(s) (finalize it first)"
    return None


def months_with_readings(session: Session, before: datetime) -> list[datetime]:
    """The months before `before` that hold readings, found by one index seek per unit type and month."""
    months: set[datetime] = set()
    for unit_type_id in session.scalars(select(UnitType.id)):
        since: datetime | None = None
        while True:
            query = select(func.min(Reading.ts)).where(Reading.unit_type_id == unit_type_id, Reading.ts < before)
            if since is not None:
                query = query.where(Reading.ts >= since)
            first = session.scalar(query)
            if first is None:
                break
            month = period_of(first)
            months.add(month)
            since = next_period(month)
    return sorted(months)


def mark_archiving(session: Session, period_start: datetime) -> None:
    """Mark the month archived-in-progress and commit: from here on ingest refuses its readings."""
    hold_archive_fence(session, exclusive=True)
    if session.get(ArchivedMonth, period_start) is None:
        session.add(ArchivedMonth(period_start=period_start, status="archiving", archived_at=utcnow()))
    session.commit()


def archive_month(session: Session, period_start: datetime, out_dir: Path, now: datetime | None = None
                  ) -> ArchiveResult:
    """Write one finalized month's readings to a file in `out_dir` and remove them; commits. Raises ArchiveRefused."""
    mark = session.get(ArchivedMonth, period_start)
    if mark is not None and mark.status == "archived":
        raise ArchiveRefused(f"{period_label(period_start)} is archived already ({mark.file})")
    reason = archive_refusal(session, period_start, now)
    if reason:
        raise ArchiveRefused(reason)
    mark_archiving(session, period_start)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name(period_start)
    try:
        lock_month(session, period_start)
        count, digest = _write_file(session, period_start, path)
        if not drop_month_partition(session, period_start):
            _, end = period_start, next_period(period_start)
            session.execute(delete(Reading).where(Reading.ts >= period_start, Reading.ts < end))
        row = session.get(ArchivedMonth, period_start)
        row.status, row.readings, row.file, row.sha256, row.archived_at = "archived", count, str(path), digest, utcnow()
        audit_bulk(session, "archive", "readings", [period_label(period_start)],
                   new={"period": period_label(period_start), "readings": count, "file": str(path), "sha256": digest})
        session.commit()
    except Exception:
        session.rollback()
        raise
    return ArchiveResult(period_label(period_start), count, path, digest)


def _write_file(session: Session, period_start: datetime, path: Path) -> tuple[int, str]:
    """Stream the month's readings into `path` (through a temporary name, synced); (rows, sha256 of the file)."""
    end = next_period(period_start)
    partial = path.with_name(path.name + ".partial")
    count = 0
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # readings are client data
    try:
        with open(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            packed.write((",".join(HEADER) + "\n").encode())
            if session.get_bind().dialect.name == "postgresql":
                count = _copy_out_postgres(session, period_start, end, packed)
            else:
                count = _copy_out_sqlite(session, period_start, end, packed)
            packed.close()
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return count, _sha256(path)


def _copy_out_postgres(session: Session, start: datetime, end: datetime, out) -> int:
    query = ("COPY (SELECT asset_id, unit_type_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
             "(value::numeric / 1000000)::numeric(24, 6), "
             "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
             "FROM readings WHERE ts >= %s AND ts < %s) TO STDOUT WITH (FORMAT csv)")
    count = 0
    with driver_cursor(session, "archive_copy_out") as cursor, cursor.copy(query, (start, end)) as copy:
        for block in copy:
            out.write(block)
            count += bytes(block).count(b"\n")
    return count


def _iso(text_value: str) -> str:
    return text_value.replace(" ", "T") + "Z"


def _copy_out_sqlite(session: Session, start: datetime, end: datetime, out) -> int:
    with driver_cursor(session, "archive_read") as cursor:
        cursor.execute("SELECT asset_id, unit_type_id, ts, value, received_at FROM readings WHERE ts >= ? AND ts < ?",
                       (sqlite_datetime(start), sqlite_datetime(end)))
        count = 0
        text_out = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text_out, lineterminator="\n")
        while rows := cursor.fetchmany(CHUNK):
            writer.writerows((a, u, _iso(ts), from_micro(v), _iso(received)) for a, u, ts, v, received in rows)
            count += len(rows)
        text_out.flush()
        text_out.detach()
    return count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RestoreResult:
    period: str
    rows: int
    restored: int
    skipped: int


def period_of_file(path: Path) -> datetime:
    match = FILE_RE.search(path.name)
    if not match:
        raise ArchiveRefused(f"{path.name}: not an archive file (readings-YYYY-MM.csv.gz)")
    return datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=timezone.utc)


def restore_file(session: Session, path: Path) -> RestoreResult:
    """Load an archive file back into `readings` (repeats ignored; rows of assets or unit types deleted since are
    skipped and counted) and reopen its month; commits. Raises ArchiveRefused for a file that is not one."""
    period_start = period_of_file(path)
    if not path.is_file():
        raise ArchiveRefused(f"{path}: no such file")
    end = next_period(period_start)
    try:
        create_month_partition(session, period_start)
        try:
            if session.get_bind().dialect.name == "postgresql":
                rows, outside = _load_postgres(session, path, period_start, end)
            else:
                rows, outside = _load_sqlite(session, path, period_start, end)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ArchiveRefused(f"{path.name}: not a whole gzip file ({exc})") from exc
        if outside:
            raise ArchiveRefused(f"{path.name}: {outside} reading(s) outside {period_label(period_start)}")
        restored = session.execute(text(
            "INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
            "SELECT r.asset_id, r.unit_type_id, r.ts, r.value, r.received_at FROM restore_readings r "
            "JOIN assets a ON a.id = r.asset_id JOIN unit_types u ON u.id = r.unit_type_id WHERE true "
            "ON CONFLICT DO NOTHING")).rowcount
        session.execute(text("DROP TABLE restore_readings"))
        recount_days(session, period_start, end)
        session.execute(delete(ArchivedMonth).where(ArchivedMonth.period_start == period_start))
        audit_bulk(session, "restore", "readings", [period_label(period_start)],
                   new={"period": period_label(period_start), "file": str(path), "readings": restored})
        session.commit()
    except Exception:
        session.rollback()
        raise
    return RestoreResult(period_label(period_start), rows, restored, rows - restored)


def _load_postgres(session: Session, path: Path, start: datetime, end: datetime) -> tuple[int, int]:
    session.execute(text("CREATE TEMP TABLE restore_readings (asset_id integer, unit_type_id integer, "
                         "ts timestamptz, value numeric, received_at timestamptz)"))
    lines, end_of_line = 0, True
    try:
        with driver_cursor(session, "restore_copy_in") as cursor, gzip.open(path, "rb") as packed:
            _check_header(path, packed.readline().decode("utf-8", errors="replace"))
            with cursor.copy("COPY restore_readings FROM STDIN WITH (FORMAT csv)") as copy:
                for block in iter(lambda: packed.read(1 << 20), b""):
                    copy.write(block)
                    lines, end_of_line = lines + block.count(b"\n"), block.endswith(b"\n")
    except DBAPIError as exc:
        if not str(getattr(exc.orig, "sqlstate", "")).startswith("22"):  # class 22: data exception
            raise
        diag = exc.orig.diag
        copy_line = re.search(r"line (\d+)", diag.context or "")
        where = f"line {int(copy_line.group(1)) + 1}" if copy_line else "a line"  # COPY counts after the header
        raise ArchiveRefused(f"{path.name}: {where} is not a reading ({diag.message_primary})") from exc
    unfit = session.execute(text(f"SELECT count(*) FROM restore_readings WHERE abs(value) >= {LIMIT}")).scalar()
    if unfit:  # NaN and infinities pass COPY into numeric, and compare above the limit
        raise ArchiveRefused(f"{path.name}: {unfit} value(s) not a reading's number (NaN, infinite, or {LIMIT} or "
                             "more from 0)")
    session.execute(text("UPDATE restore_readings SET value = round(value * 1000000)"))
    rows, outside = session.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE ts < :start OR ts >= :end) FROM restore_readings"),
        {"start": start, "end": end}).one()
    lines += not end_of_line  # a last line without its line end
    if rows < lines:  # COPY stops at a line "\." (its end-of-data marker) and ignores the lines after it
        raise ArchiveRefused(f"{path.name}: line {rows + 2} is not a reading (\\. ends the data of PostgreSQL's "
                             "COPY: the lines after it would not be restored)")
    return int(rows), int(outside)


def _check_header(path: Path, first_line: str) -> None:
    """Refuse a file whose first line is not the archive's header (both backends read it before the rows)."""
    if tuple(next(csv.reader([first_line]), ())) != HEADER:
        raise ArchiveRefused(f"{path.name}: the first line is not {','.join(HEADER)}")


def _load_sqlite(session: Session, path: Path, start: datetime, end: datetime) -> tuple[int, int]:
    # sqlite3 runs DDL outside the transaction: a refused restore's rollback leaves the table on the connection
    session.execute(text("DROP TABLE IF EXISTS temp.restore_readings"))
    session.execute(text("CREATE TEMP TABLE restore_readings (asset_id integer, unit_type_id integer, "
                         "ts text, value integer, received_at text)"))
    low, high = sqlite_datetime(start), sqlite_datetime(end)
    rows = outside = 0
    with (driver_cursor(session, "restore_load") as cursor,
          gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as handle):
        _check_header(path, handle.readline())
        reader = csv.reader(handle)
        batch = []
        for line, fields in enumerate(reader, start=2):
            try:
                asset_id, unit_type_id, ts, value, received = fields
                row = (int(asset_id), int(unit_type_id), _sqlite_time(ts), to_micro(Decimal(value)),
                       _sqlite_time(received))
                if abs(row[3]) >= 1 << 63:
                    raise ValueError(f"{value} is {LIMIT} or more from 0")
            except ValueError as exc:
                raise ArchiveRefused(f"{path.name}: line {line} is not a reading ({exc})") from exc
            except ArithmeticError as exc:  # decimal's: a value that is no number, or one too long to round
                raise ArchiveRefused(f"{path.name}: line {line} is not a reading (its value is no number a reading "
                                     "can hold)") from exc
            outside += not low <= row[2] < high
            batch.append(row)
            if len(batch) == CHUNK:
                cursor.executemany("INSERT INTO restore_readings VALUES (?, ?, ?, ?, ?)", batch)
                rows += len(batch)
                batch = []
        cursor.executemany("INSERT INTO restore_readings VALUES (?, ?, ?, ?, ?)", batch)
        rows += len(batch)
    return rows, outside


def _sqlite_time(value: str) -> str:
    """An archive file's time (ISO 8601) as SQLite stores it; ValueError for text that is not a time."""
    return sqlite_datetime(datetime.fromisoformat(value))


def archivable_months(session: Session, before: datetime) -> list[datetime]:
    """Months before `before` with readings or an unfinished archive mark, oldest first."""
    unfinished = set(session.scalars(select(ArchivedMonth.period_start).where(ArchivedMonth.status == "archiving")))
    done = set(session.scalars(select(ArchivedMonth.period_start).where(ArchivedMonth.status == "archived")))
    return sorted((set(months_with_readings(session, before)) | {m for m in unfinished if m < before}) - done)

