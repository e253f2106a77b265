"""Monthly range partitions of `readings` on PostgreSQL (SQLite keeps one table, and every function here is a
no-op there).

`readings` is `PARTITION BY RANGE (ts)` with a DEFAULT partition (`readings_default`) created with the table, so a
reading always has somewhere to go. Month partitions are named `readings_YYYY_MM` and hold
`[first day 00:00 UTC, first day of next month 00:00 UTC)`, the billing period exactly. The nightly job (and
`flask --app app create-partitions`) keeps the current month and the next `AHEAD` created; creating a month whose
readings already sit in the DEFAULT partition moves them into it, in the same transaction.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import DDL, event, select, text
from sqlalchemy.orm import Session

from models import ArchivedMonth, Reading

AHEAD = 3
DEFAULT = "readings_default"
NAME_RE = re.compile(r"^readings_(\d{4})_(\d{2})$")

event.listen(Reading.__table__, "after_create", DDL(
    f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF readings DEFAULT").execute_if(dialect="postgresql"))


def partitioned(session: Session) -> bool:
    """True when `readings` is a partitioned table (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.scalar(text(
        "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass('readings')")))


def partition_name(period_start: datetime) -> str:
    return f"readings_{period_start:%Y_%m}"


def period_label(period_start: datetime) -> str:
    return f"{period_start:%Y-%m}"


def next_period(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=timezone.utc)


def current_period_start(now: datetime | None = None) -> datetime:
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return datetime(now.year, now.month, 1, tzinfo=timezone.utc)


def month_partitions(session: Session) -> dict[str, str]:
    """Period label ('YYYY-MM') -> partition name, for every month partition of `readings`."""
    if not partitioned(session):
        return {}
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('readings')"))
    found = {}
    for name in names:
        match = NAME_RE.match(name)
        if match:
            found[f"{match.group(1)}-{match.group(2)}"] = name
    return found


def _bound(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d 00:00:00+00")


def create_month_partition(session: Session, period_start: datetime) -> bool:
    """Create the partition of one month if it is missing (moving its readings out of DEFAULT); True if created.
    In the caller's transaction."""
    if not partitioned(session) or period_label(period_start) in month_partitions(session):
        return False
    name, start, end = partition_name(period_start), _bound(period_start), _bound(next_period(period_start))
    in_default = session.scalar(text(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE ts >= '{start}' AND ts < '{end}')"))
    if not in_default:
        session.execute(text(f"CREATE TABLE {name} PARTITION OF readings FOR VALUES FROM ('{start}') TO ('{end}')"))
        return True
    session.execute(text(f"ALTER TABLE readings DETACH PARTITION {DEFAULT}"))
    session.execute(text(f"CREATE TABLE {name} PARTITION OF readings FOR VALUES FROM ('{start}') TO ('{end}')"))
    session.execute(text(f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE ts >= '{start}' AND ts < '{end}'"))
    session.execute(text(f"DELETE FROM {DEFAULT} WHERE ts >= '{start}' AND ts < '{end}'"))
    session.execute(text(f"ALTER TABLE readings ATTACH PARTITION {DEFAULT} DEFAULT"))
    return True


def months_ahead(now: datetime | None = None, ahead: int = AHEAD) -> list[datetime]:
    """The current month and the next `ahead` ones."""
    months = [current_period_start(now)]
    for _ in range(ahead):
        months.append(next_period(months[-1]))
    return months


def create_partitions(session: Session, months: Iterable[datetime]) -> list[str]:
    """Create the missing partitions of `months`; commits; return the names created (none on SQLite)."""
    created = [partition_name(month) for month in months if create_month_partition(session, month)]
    session.commit()
    return created


def drop_month_partition(session: Session, period_start: datetime) -> bool:
    """Detach and drop one month's partition, in the caller's transaction; False when it has none."""
    name = month_partitions(session).get(period_label(period_start))
    if name is None:
        return False
    session.execute(text(f"ALTER TABLE readings DETACH PARTITION {name}"))
    session.execute(text(f"DROP TABLE {name}"))
    return True


def lock_month(session: Session, period_start: datetime) -> None:
    """Wait for writers of a month's readings to finish and hold new ones off until the transaction ends."""
    if not partitioned(session):
        return
    name = month_partitions(session).get(period_label(period_start), DEFAULT)
    session.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))


ARCHIVE_FENCE = (0x4D44, 0x4152)  # the advisory lock between ingest writes and marking a month archived


def hold_archive_fence(session: Session, exclusive: bool = False) -> None:
    """PostgreSQL: ingest holds the fence shared while it writes; marking a month archived holds it exclusive, so
    it waits for the batches in flight, and every later batch sees the mark. SQLite has a single writer already."""
    if session.get_bind().dialect.name == "postgresql":
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        session.execute(text(f"SELECT {lock}(:space, :key)"), {"space": ARCHIVE_FENCE[0], "key": ARCHIVE_FENCE[1]})


def archived_labels(session: Session) -> set[str]:
    """'YYYY-MM' of every archived month (or one being archived)."""
    return {f"{start:%Y-%m}" for start in session.scalars(select(ArchivedMonth.period_start))}
