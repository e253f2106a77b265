"""Readings by day: count, sum and max of each asset's readings of a unit type per UTC day (`reading_days`), for
every day before the sealed horizon (`reading_days_sealed`), so that billing adds up ~31 rows per pair and month
instead of reading every raw reading (p95, last and time-weighted still read raw readings).

Kept exact by three rules:
- `seal_days` (nightly) computes a day's rows from the readings and moves the horizon past it, one day per
  transaction, holding the archive fence exclusive (PostgreSQL): batches in flight finish first, and every later
  batch sees the new horizon;
- a batch that stores readings before the horizon recomputes the rows of the (asset, unit type, day)s it touched, in
  its own transaction (`refresh_days`, called by ingest/store.py after the insert): late usage keeps the days exact;
- rows go when their asset or unit type goes (ON DELETE CASCADE); an archived month keeps its rows, as its lines
  stay (it is never billed again), and restoring its file recounts its days (`recount_days`).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, insert, literal, select, text
from sqlalchemy.orm import Session

from database.partitions import hold_archive_fence
from models import Reading, ReadingDay, ReadingDaysSealed, UnitType, UTCDateTime, utcnow

DAY = timedelta(days=1)
HORIZON_ID = 1


def day_of(moment: datetime) -> datetime:
    """Midnight UTC of the day holding `moment` (naive moments are UTC)."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def next_day_of(moment: datetime) -> datetime:
    """Midnight UTC at or after `moment`."""
    start = day_of(moment)
    return start if start == moment else start + DAY


def sealed_before(session: Session) -> datetime | None:
    """The horizon: every day before it has its rows. None when no day is sealed yet."""
    return session.scalar(select(ReadingDaysSealed.before).where(ReadingDaysSealed.id == HORIZON_ID))


def sealed_window(session: Session, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The whole sealed days inside [start, end), as [first day, end of the last day); None when there are none."""
    horizon = sealed_before(session)
    if horizon is None:
        return None
    first, last = next_day_of(start), day_of(min(end, horizon))
    return (first, last) if first < last else None


def _first_day(session: Session, units: list[int]) -> datetime | None:
    """The day of the earliest reading: one seek per unit type on ix_readings_unit_ts."""
    firsts = [first for unit in units
              if (first := session.scalar(select(func.min(Reading.ts)).where(Reading.unit_type_id == unit)))]
    return day_of(min(firsts)) if firsts else None


def seal_days(session: Session, until: datetime, progress: Callable[[int, str], None] | None = None) -> int:
    """Seal every whole UTC day before `until` not sealed yet, oldest first, one committed transaction per day;
    returns how many days were sealed. The first run starts at the earliest reading."""
    report = progress or (lambda percent, message: None)
    end = day_of(until)
    units = list(session.scalars(select(UnitType.id).order_by(UnitType.id)))
    start = sealed_before(session) or _first_day(session, units) or end
    days = [start + i * DAY for i in range(max(0, (end - start) // DAY))]
    for done, day in enumerate(days):
        report(done * 100 // len(days), f"sealing {day:%Y-%m-%d}")
        hold_archive_fence(session, exclusive=True)
        _count_day(session, day, units)
        _move_horizon(session, day + DAY)
        session.commit()
    if not days and sealed_before(session) is None:
        _move_horizon(session, end)
        session.commit()
    if days and session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE reading_days"))  # fresh statistics for billing's plan, as autovacuum would
        session.commit()
    report(100, f"{len(days)} day(s) sealed")
    return len(days)


def seal_ended_days(session: Session, progress: Callable[[int, str], None] | None = None) -> int:
    """What the nightly job seals: every day before yesterday (UTC). Yesterday stays raw one more day, so that
    collectors' late polls land in an open day instead of recounting a sealed one."""
    return seal_days(session, day_of(utcnow()) - DAY, progress)


def recount_days(session: Session, start: datetime, end: datetime) -> int:
    """Recount the sealed days in [start, end) from the readings (after readings were loaded in bulk, e.g. an
    archive file restored), in the caller's transaction; returns how many days."""
    horizon = sealed_before(session)
    if horizon is None:
        return 0
    first, stop = day_of(start), min(next_day_of(end), horizon)
    units = list(session.scalars(select(UnitType.id).order_by(UnitType.id)))
    days = [first + i * DAY for i in range(max(0, (stop - first) // DAY))]
    for day in days:
        _count_day(session, day, units)
    return len(days)


def _count_day(session: Session, day: datetime, units: list[int]) -> None:
    """A day's rows, from its readings (each unit type one range of ix_readings_unit_ts)."""
    session.execute(delete(ReadingDay).where(ReadingDay.day == day))
    if units:
        session.execute(insert(ReadingDay).from_select(
            ["asset_id", "unit_type_id", "day", "n", "total", "top"],
            select(Reading.asset_id, Reading.unit_type_id, literal(day, UTCDateTime()), func.count(),
                   func.sum(Reading.value), func.max(Reading.value))
            .where(Reading.unit_type_id.in_(units), Reading.ts >= day, Reading.ts < day + DAY)
            .group_by(Reading.asset_id, Reading.unit_type_id)))


def _move_horizon(session: Session, before: datetime) -> None:
    """Forward only: a second seal running late over the same days never takes the horizon back."""
    row = session.get(ReadingDaysSealed, HORIZON_ID)
    if row is None:
        session.add(ReadingDaysSealed(id=HORIZON_ID, before=before))
    elif before > row.before:
        row.before = before
    session.flush()


# ---- ingest's part: late readings keep their sealed days exact (raw driver cursor, inside the batch's write) -------

HORIZON = "SELECT before FROM reading_days_sealed WHERE id = 1"

SQLITE_REFRESH = (
    "INSERT INTO reading_days (asset_id, unit_type_id, day, n, total, top) "
    "SELECT r.asset_id, r.unit_type_id, json_extract(k.value, '$[2]'), count(*), sum(r.value), max(r.value) "
    "FROM json_each(?) AS k JOIN readings r ON r.asset_id = json_extract(k.value, '$[0]') "
    "AND r.unit_type_id = json_extract(k.value, '$[1]') AND r.ts >= json_extract(k.value, '$[2]') "
    "AND r.ts < json_extract(k.value, '$[3]') WHERE true "
    "GROUP BY r.asset_id, r.unit_type_id, json_extract(k.value, '$[2]') "
    "ON CONFLICT (asset_id, unit_type_id, day) DO UPDATE SET n = excluded.n, total = excluded.total, "
    "top = excluded.top")
# PostgreSQL: first make sure each row exists and lock it (in key order): a concurrent batch refreshing the same day
# is waited for, so the recount below, a statement with a fresh snapshot, sees its readings too.
POSTGRES_CLAIM = (
    "INSERT INTO reading_days (asset_id, unit_type_id, day, n, total, top) "
    "SELECT (k->>0)::int, (k->>1)::int, (k->>2)::timestamptz, 0, 0, 0 FROM json_array_elements(%s::json) AS k "
    "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING")
POSTGRES_LOCK = (
    "SELECT 1 FROM reading_days d JOIN json_array_elements(%s::json) AS k ON d.asset_id = (k->>0)::int "
    "AND d.unit_type_id = (k->>1)::int AND d.day = (k->>2)::timestamptz "
    "ORDER BY d.asset_id, d.unit_type_id, d.day FOR UPDATE OF d")
POSTGRES_REFRESH = (
    "INSERT INTO reading_days (asset_id, unit_type_id, day, n, total, top) "
    "SELECT r.asset_id, r.unit_type_id, (k->>2)::timestamptz, count(*), sum(r.value), max(r.value) "
    "FROM json_array_elements(%s::json) AS k JOIN readings r ON r.asset_id = (k->>0)::int "
    "AND r.unit_type_id = (k->>1)::int AND r.ts >= (k->>2)::timestamptz AND r.ts < (k->>3)::timestamptz "
    "GROUP BY 1, 2, 3 "
    "ON CONFLICT (asset_id, unit_type_id, day) DO UPDATE SET n = excluded.n, total = excluded.total, "
    "top = excluded.top")


def late_days(pairs_at: Iterable[tuple[int, int, datetime]], horizon: datetime) -> list[tuple[int, int, datetime]]:
    """The distinct (asset, unit type, day) of the readings before the horizon, in key order."""
    return sorted({(a, u, day_of(ts)) for a, u, ts in pairs_at if ts < horizon})


def refresh_days(cursor, backend: str, keys: list[tuple[int, int, datetime]], day_text: Callable[[datetime], str]
                 ) -> None:
    """Recount the rows of these (asset, unit type, day)s from the readings, in the caller's transaction."""
    if not keys:
        return
    param = json.dumps([[a, u, day_text(day), day_text(day + DAY)] for a, u, day in keys])
    if backend == "postgresql":
        cursor.execute(POSTGRES_CLAIM, (param,))
        cursor.execute(POSTGRES_LOCK, (param,))
        cursor.execute(POSTGRES_REFRESH, (param,))
    else:
        cursor.execute(SQLITE_REFRESH, (param,))
