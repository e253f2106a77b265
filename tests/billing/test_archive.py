"""archive-readings: finalized months only; the file loads back with restore-readings; an archived month refuses
to be billed again while its lines stay, and ingest refuses its readings item by item."""
from __future__ import annotations

import csv
import gzip
import json
import re
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing.archive import check_not_archived
from billing.run import bill_period
from database.partitions import create_partitions
from extensions import db
from models import ArchivedMonth, AuditLog, BillingReading, Reading
from tests.api_helpers import bearer, make_key
from tests.factories import asset, bucket, readings, unit_type
from tests.database.server_faults import postgres_only, terminate

JAN = datetime(2026, 1, 1, tzinfo=timezone.utc)
FEB = datetime(2026, 2, 1, tzinfo=timezone.utc)
MAR = datetime(2026, 3, 1, tzinfo=timezone.utc)


def count(start: datetime, end: datetime) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Reading).where(Reading.ts >= start,
                                                                                   Reading.ts < end))


def line_rows() -> list[tuple]:
    db.session.expire_all()
    return [(line.id, line.period_start, line.total_usage, line.final_cost, line.finalized) for line in
            db.session.scalars(sa.select(BillingReading).order_by(BillingReading.id))]


@pytest.fixture
def billed(app):
    """January and February billed and finalized (sum bucket, commit 2 at $10, overage $3); March unfinalized."""
    with app.app_context():
        create_partitions(db.session, [JAN, FEB, MAR])
        vm = asset("vm-1")
        gb = unit_type("gb")
        bucket("storage", "sum", [vm], commit="2", base="10", overage="3", unit=gb)
        readings(vm, [("2026-01-01T00:00:00+00:00", "1.5"), ("2026-01-31T23:59:59.999+00:00", "2.25"),
                      ("2026-02-01T00:00:00+00:00", "4"), ("2026-03-02T00:00:00+00:00", "1")], gb)
        db.session.commit()
        bill_period(db.session, JAN, finalize=True)
        bill_period(db.session, FEB, finalize=True)
        bill_period(db.session, MAR)
    return app


def test_archived_month_goes_to_a_file_refuses_rebilling_and_keeps_its_lines(billed, runner, tmp_path):
    app = billed
    with app.app_context():
        before = line_rows()
        # January: 3.75 used, 1.75 over: 2 * 10 + 1.75 * 3 = 25.25
        assert [(r[2], r[3]) for r in before if r[1] == JAN] == [(Decimal("3.750000"), Decimal("25.25"))]

    result = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(tmp_path / "archive")])
    assert result.exit_code == 0, result.output
    assert "archived 2026-01: 2 readings" in result.output
    path = tmp_path / "archive" / "readings-2026-01.csv.gz"
    assert path.stat().st_mode & 0o777 == 0o600, "client readings: readable by the owner only"
    with gzip.open(path, "rt") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["asset_id", "unit_type_id", "ts", "value", "received_at"]
    assert sorted((r[2], r[3]) for r in rows[1:]) == [("2026-01-01T00:00:00.000000Z", "1.500000"),
                                                      ("2026-01-31T23:59:59.999000Z", "2.250000")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r[4]) for r in rows[1:]), \
        "received_at in the same ISO 8601 UTC form as ts"

    with app.app_context():
        assert count(JAN, FEB) == 0 and count(FEB, MAR) == 1
        assert line_rows() == before
        mark = db.session.get(ArchivedMonth, JAN)
        assert (mark.status, mark.readings, mark.file) == ("archived", 2, str(path))
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.action == "archive", AuditLog.table == "readings", AuditLog.record_id == "2026-01")) == 1
        if db.engine.dialect.name == "postgresql":
            assert db.session.scalar(sa.text("SELECT to_regclass('readings_2026_01')")) is None
        with pytest.raises(ValueError, match="2026-01 is archived"):
            bill_period(db.session, JAN)
        with pytest.raises(ValueError, match="archived"):
            check_not_archived(db.session, JAN)
        assert line_rows() == before

    refused = runner.invoke(args=["run-billing", "--period", "2026-01"])
    assert refused.exit_code != 0
    assert "2026-01 is archived" in refused.output and "restore-readings" in refused.output
    # late-usage adjustments of an archived month would recompute it from no readings: refused, nothing posted
    adjust = runner.invoke(args=["post-adjustments", "--period", "2026-01", "--into", "2026-03"])
    assert adjust.exit_code != 0 and "2026-01 is archived" in adjust.output
    with app.app_context():
        assert line_rows() == before

    again = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(tmp_path / "archive")])
    assert again.exit_code == 0 and "no readings before 2026-02" in again.output

    restored = runner.invoke(args=["restore-readings", str(path)])
    assert restored.exit_code == 0, restored.output
    assert "restored 2026-01: 2 of 2 readings" in restored.output
    with app.app_context():
        assert db.session.get(ArchivedMonth, JAN) is None
        assert db.session.scalar(sa.select(sa.func.sum(Reading.value)).where(Reading.ts < FEB)) in (
            Decimal("3.750000"), 3_750_000)
        summary = bill_period(db.session, JAN)
        assert summary.kept_finalized == 1 and line_rows() == before


def test_ingest_refuses_readings_of_an_archived_month_one_by_one(billed, runner, client, tmp_path):
    app = billed
    assert runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(tmp_path)]).exit_code == 0
    key = make_key(app, "ingest")
    body = [{"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "value": 9, "timestamp": "2026-01-15T00:00:00Z"},
            {"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "value": 9, "timestamp": "2026-02-15T00:00:00Z"},
            {"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "value": 9,
             "timestamp": "2026-02-01T00:30:00+01:00"}]  # 2026-01-31 23:30 UTC: January
    response = client.post("/api/v1/readings", data=json.dumps(body), headers=bearer(key),
                           content_type="application/json")
    assert response.status_code == 200
    reason = "timestamp: 2026-01 is archived (its readings were moved to a file); readings for it are no longer accepted"
    assert response.json == {"accepted": 1, "duplicates": 0, "suppressed": 0,
                             "rejected": [{"index": 0, "error": reason}, {"index": 2, "error": reason}]}
    with app.app_context():
        assert count(JAN, FEB) == 0 and count(FEB, MAR) == 2


def test_only_finalized_ended_months_are_archived(billed, runner, tmp_path):
    app = billed
    result = runner.invoke(args=["archive-readings", "--before", "2026-04", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "archived 2026-01" in result.output and "archived 2026-02" in result.output
    assert "skipped 2026-03 has 1 unfinalized billing line(s)" in result.output
    with app.app_context():
        assert count(MAR, datetime(2026, 4, 1, tzinfo=timezone.utc)) == 1
    only_open = runner.invoke(args=["archive-readings", "--before", "2026-04", "--out", str(tmp_path)])
    assert only_open.exit_code != 0 and "nothing archived" in only_open.output
    future = runner.invoke(args=["archive-readings", "--before", "2099-01", "--out", str(tmp_path)])
    assert future.exit_code != 0 and "only ended months" in future.output
    bad = runner.invoke(args=["archive-readings", "--before", "2026-13", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "period must be a real month" in bad.output


def test_an_interrupted_archive_keeps_the_readings_and_finishes_when_run_again(billed, runner, tmp_path):
    from billing.archive import mark_archiving

    app = billed
    with app.app_context():
        mark_archiving(db.session, JAN)
        assert count(JAN, FEB) == 2
        with pytest.raises(ValueError, match="archived"):
            bill_period(db.session, JAN)
    result = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(tmp_path)])
    assert result.exit_code == 0 and "archived 2026-01: 2 readings" in result.output
    with app.app_context():
        assert count(JAN, FEB) == 0


# ---- the archive file and its way back, rule by rule (billing/archive.py) -----------------------------------------

def reading_rows(start: datetime, end: datetime) -> list[tuple]:
    db.session.expire_all()
    return sorted((r.asset_id, r.unit_type_id, r.ts, r.value, r.received_at) for r in db.session.scalars(
        sa.select(Reading).where(Reading.ts >= start, Reading.ts < end)))


def test_archive_file_is_reproducible_audited_and_restores_every_reading_exactly(billed, tmp_path, monkeypatch):
    """January's 3 readings (2 of vm-1, 1 of vm-2) archived in chunks of 2 into a directory that does not exist yet:
    the file has the 3 rows, '\\n' line ends and gzip time 0 (same readings, same bytes, same sha256); the mark and the
    audit row name the count, file and sha256; February's readings stay. Restored: the 3 readings come back exactly
    (ts, value, received_at); restoring again stores none and counts 3 skipped."""
    import hashlib

    from billing import archive
    from billing.archive import ArchiveResult, archive_month, mark_archiving, restore_file

    monkeypatch.setattr(archive, "CHUNK", 2)
    with billed.app_context():
        readings(asset("vm-2"), [("2026-01-10T12:00:00.5+00:00", "7.125")], unit_type("gb"))
        db.session.commit()
        january, february = reading_rows(JAN, FEB), reading_rows(FEB, MAR)
        assert len(january) == 3
        mark_archiving(db.session, JAN)
        mark = db.session.get(ArchivedMonth, JAN)
        assert (mark.status, mark.archived_at is not None) == ("archiving", True)
        path = tmp_path / "new" / "dir" / "readings-2026-01.csv.gz"
        result = archive_month(db.session, JAN, tmp_path / "new" / "dir")
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        assert result == ArchiveResult("2026-01", 3, path, digest)
        assert raw[4:8] == b"\0\0\0\0", "gzip mtime 0: the file's bytes depend on the readings only"
        text = gzip.decompress(raw)
        assert b"\r" not in text and text.count(b"\n") == 4
        mark = db.session.get(ArchivedMonth, JAN)
        assert (mark.status, mark.readings, mark.file, mark.sha256) == ("archived", 3, str(path), digest)
        audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "archive"))
        assert audit.new_values == {"period": "2026-01", "readings": 3, "file": str(path), "sha256": digest}
        assert reading_rows(JAN, FEB) == [] and reading_rows(FEB, MAR) == february
        with pytest.raises(archive.ArchiveRefused, match=f"^2026-01 is archived already \\({path}\\)$"):
            archive_month(db.session, JAN, tmp_path / "again")
        assert path.read_bytes() == raw

        first = restore_file(db.session, path)
        assert (first.period, first.rows, first.restored, first.skipped) == ("2026-01", 3, 3, 0)
        assert reading_rows(JAN, FEB) == january
        assert db.session.get(ArchivedMonth, JAN) is None
        restored = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "restore",
                                                               AuditLog.table == "readings"))
        assert (restored.record_id, restored.new_values) == (
            "2026-01", {"period": "2026-01", "file": str(path), "readings": 3})
        again = restore_file(db.session, path)
        assert (again.rows, again.restored, again.skipped) == (3, 0, 3)


def write_archive(path, lines: list[str], encoding: str = "utf-8") -> None:
    """Latin-1 writes "\xff" as a byte that is not UTF-8."""
    with gzip.open(path, "wt", encoding=encoding, newline="") as handle:
        handle.write("".join(line + "\n" for line in lines))


def test_restore_refuses_what_is_not_a_months_archive(app, tmp_path):
    """A name that is not readings-YYYY-MM.csv.gz, a missing file, and readings outside the file's month (February 1st
    00:00 is outside January) are refused, and nothing is stored; so is a file whose first line is not the header (or an
    empty one), on both backends."""
    from billing.archive import ArchiveRefused, period_of_file, restore_file

    with app.app_context():
        assert period_of_file(tmp_path / "readings-2026-01.csv.gz") == JAN
        with pytest.raises(ArchiveRefused, match=r"^notes\.txt: not an archive file \(readings-YYYY-MM\.csv\.gz\)$"):
            restore_file(db.session, tmp_path / "notes.txt")
        with pytest.raises(ArchiveRefused, match=f"^{tmp_path / 'readings-2026-05.csv.gz'}: no such file$"):
            restore_file(db.session, tmp_path / "readings-2026-05.csv.gz")
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.commit()
        path = tmp_path / "readings-2026-01.csv.gz"
        write_archive(path, [",".join(["asset_id", "unit_type_id", "ts", "value", "received_at"]),
                             f"{vm.id},{gb.id},2026-02-01T00:00:00.000000Z,1.000000,2026-02-01T00:00:00.000000Z",
                             f"{vm.id},{gb.id},2025-12-31T23:59:59.999999Z,1.000000,2026-01-01T00:00:00.000000Z",
                             f"{vm.id},{gb.id},2026-01-01T00:00:00.000000Z,1.000000,2026-01-01T00:00:00.000000Z"])
        with pytest.raises(ArchiveRefused, match="^readings-2026-01.csv.gz: 2 reading\\(s\\) outside 2026-01$"):
            restore_file(db.session, path)
        assert reading_rows(datetime(2025, 1, 1, tzinfo=timezone.utc), MAR) == []
        for lines in (["asset_id,unit_type_id,ts,value"], [], ["ts,asset_id,unit_type_id,value,received_at"],
                      ["asset_id,unit_type_id,ts,value,received_at\xff"]):  # "\xff": a byte that is not UTF-8
            write_archive(path, lines, "latin-1")
            with pytest.raises(ArchiveRefused, match="^readings-2026-01.csv.gz: the first line is not "
                                                     "asset_id,unit_type_id,ts,value,received_at$"):
                restore_file(db.session, path)


def test_a_month_is_archived_only_after_it_ended(billed, tmp_path):
    """'Ended' is judged at `now`: March is open until April 1st 00:00; then its unfinalized line refuses it; April
    has no line yet. Archiving February leaves January's readings."""
    from billing.archive import ArchiveRefused, archive_month, archive_refusal

    with billed.app_context():
        assert archive_refusal(db.session, MAR, now=datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc)) == (
            "2026-03 has not ended")
        assert archive_refusal(db.session, MAR, now=datetime(2026, 4, 1, tzinfo=timezone.utc)) == (
            "2026-03 has 1 unfinalized billing line(s) (finalize it first)")
        april = datetime(2026, 4, 1, tzinfo=timezone.utc)
        assert archive_refusal(db.session, april, now=datetime(2026, 5, 1, tzinfo=timezone.utc)) == (
            "2026-04 has no billing lines (bill and finalize it first)")
        with pytest.raises(ArchiveRefused, match="^2026-03 has not ended$"):
            archive_month(db.session, MAR, tmp_path, now=datetime(2026, 3, 15, tzinfo=timezone.utc))
        assert archive_month(db.session, FEB, tmp_path).readings == 1
        assert count(JAN, FEB) == 2 and count(MAR, april) == 1


def test_archivable_months_are_those_with_readings_or_an_unfinished_mark_before_the_cutoff(billed):
    """Readings in January, February and March. February marked archived (never listed), April marked archiving but
    not before the April cutoff, December 2025 marked archiving with no readings left (listed: finish it)."""
    from billing.archive import archivable_months

    with billed.app_context():
        dec, apr = datetime(2025, 12, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc)
        db.session.add_all([ArchivedMonth(period_start=FEB, status="archived"),
                            ArchivedMonth(period_start=apr, status="archiving"),
                            ArchivedMonth(period_start=dec, status="archiving")])
        db.session.commit()
        assert archivable_months(db.session, apr) == [dec, JAN, MAR]


# ---- failures on the way: a file that is not readings, a driver error mid-copy (every statement named) -------------

def test_restore_refuses_a_row_that_is_not_a_reading_names_its_line_and_stores_nothing(app, runner, tmp_path):
    """A restore reads every row before storing any: a row with a name for an asset id (line 3), a value that is not a
    number (line 2) or a missing column (line 4) refuses the whole file, naming the file's line (the header is line
    1), on both backends; so does a ts that is not a time (line 3) and a row with a byte that is not UTF-8 (line 2).
    On PostgreSQL the refusal's cause is the COPY's error, named restore_copy_in. The CLI says so in one line, and the
    file once corrected loads."""
    from billing.archive import ArchiveRefused, restore_file

    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.commit()
        vm_id, gb_id = vm.id, gb.id
    good = f"{vm_id},{gb_id},2026-01-05T00:00:00.000000Z,1.000000,2026-01-05T00:00:00.000000Z"
    header = ",".join(["asset_id", "unit_type_id", "ts", "value", "received_at"])
    path = tmp_path / "readings-2026-01.csv.gz"
    for lines, line in (([header, good, good.replace(f"{vm_id},", "vm-1,", 1)], 3),
                        ([header, good.replace(",1.000000,", ",one,")], 2),
                        ([header, good, good.replace("2026-01-05T00:00:00.000000Z", "2026-01-05Tnoon", 1)], 3),
                        ([header, good.replace(",1.000000,", ",1.0\xff,")], 2),
                        ([header, good, good, good.rsplit(",", 1)[0]], 4)):
        write_archive(path, lines, "latin-1")
        with app.app_context():
            with pytest.raises(ArchiveRefused, match=f"^readings-2026-01.csv.gz: line {line} is not a reading \\(") \
                    as raised:
                restore_file(db.session, path)
            if db.engine.dialect.name == "postgresql":
                assert raised.value.__cause__.statement == "restore_copy_in"
            assert reading_rows(JAN, FEB) == []
            assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
                AuditLog.action == "restore")) == 0

    result = runner.invoke(args=["restore-readings", str(path)])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert "Error: readings-2026-01.csv.gz: line 4 is not a reading (" in result.output
    write_archive(path, [header, good])
    assert runner.invoke(args=["restore-readings", str(path)]).output == "restored 2026-01: 1 of 1 readings\n"


class Refusals:
    """SQLite's authorizer on every connection the app checks out: the (action, table, column) rules denied."""

    def __init__(self) -> None:
        self.denied: set[tuple] = set()
        self.engines: list = []

    def authorize(self, action, table, column, *_) -> int:
        return sqlite3.SQLITE_DENY if (action, table, column) in self.denied else sqlite3.SQLITE_OK

    def install(self, dbapi_connection, *_) -> None:
        dbapi_connection.set_authorizer(self.authorize)

    def deny(self, engine, *rules: tuple) -> None:
        self.denied.update(rules)
        if engine not in self.engines:
            sa.event.listen(engine, "checkout", self.install)
            self.engines.append(engine)


@pytest.fixture
def sqlite_refuses():
    refusals = Refusals()
    yield refusals
    refusals.denied.clear()
    for engine in refusals.engines:
        sa.event.remove(engine, "checkout", refusals.install)


def sqlite_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's authorizer")


def test_an_archive_whose_read_fails_keeps_readings_leaves_no_file_and_names_the_read(billed, runner, tmp_path,
                                                                                     sqlite_refuses):
    """SQLite: the read of January's readings fails (reading received_at is refused): the command stops with the
    driver's message and the statement (archive_read), January keeps its readings and stays marked archiving, no
    file or partial file is left; run again, it finishes."""
    sqlite_only(billed)
    out = tmp_path / "archive"
    with billed.app_context():
        engine = db.engine
    sqlite_refuses.deny(engine, (sqlite3.SQLITE_READ, "readings", "received_at"))
    result = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(out)])
    assert result.exit_code == 1
    assert ("Error: archiving 2026-01 stopped, its readings are kept; run the command again to finish it: access to "
            "readings.received_at is prohibited (in archive_read)") in result.output
    assert list(out.iterdir()) == [], "no file, and no partial file"
    with billed.app_context():
        assert count(JAN, FEB) == 2
        assert db.session.get(ArchivedMonth, JAN).status == "archiving"
    sqlite_refuses.denied.clear()
    again = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(out)])
    assert again.exit_code == 0 and "archived 2026-01: 2 readings" in again.output
    assert [p.name for p in out.iterdir()] == ["readings-2026-01.csv.gz"]


def test_a_restore_whose_load_fails_names_the_load_and_stores_nothing(app, tmp_path, sqlite_refuses):
    """SQLite: the insert into the restore's work table is refused: the error names restore_load, nothing is stored,
    the month is not reopened."""
    from sqlalchemy.exc import DBAPIError

    from billing.archive import restore_file

    sqlite_only(app)
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.add(ArchivedMonth(period_start=JAN, status="archived", readings=1, file="x", sha256="0"))
        db.session.commit()
        path = tmp_path / "readings-2026-01.csv.gz"
        write_archive(path, [",".join(["asset_id", "unit_type_id", "ts", "value", "received_at"]),
                             f"{vm.id},{gb.id},2026-01-05T00:00:00.000000Z,1.000000,2026-01-05T00:00:00.000000Z"])
        db.session.remove()
        sqlite_refuses.deny(db.engine, (sqlite3.SQLITE_INSERT, "restore_readings", None))
        with pytest.raises(DBAPIError) as raised:
            restore_file(db.session, path)
        assert raised.value.statement == "restore_load"
        assert str(raised.value.orig) == "not authorized"
        assert reading_rows(JAN, FEB) == []
        assert db.session.get(ArchivedMonth, JAN).status == "archived"


@postgres_only
def test_an_archive_whose_connection_ends_mid_copy_keeps_readings_and_finishes_when_run_again(billed, runner,
                                                                                            tmp_path):
    """PostgreSQL: the server ends the connection between locking January's partition and copying it out: the
    command stops naming archive_copy_out, January keeps its readings and stays marked archiving, no file or partial
    file is left; run again, it finishes."""
    with billed.app_context():
        engine = db.engine
    ended: list[int] = []

    def end_after_lock(conn, cursor, statement, params, context, executemany) -> None:
        if statement.startswith("LOCK TABLE") and not ended:
            ended.append(conn.connection.driver_connection.info.backend_pid)
            terminate(ended[0])

    out = tmp_path / "archive"
    sa.event.listen(engine, "after_cursor_execute", end_after_lock)
    try:
        result = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(out)])
    finally:
        sa.event.remove(engine, "after_cursor_execute", end_after_lock)
    assert ended, "the archive never locked the month"
    assert result.exit_code == 1, result.output
    assert ("Error: archiving 2026-01 stopped, its readings are kept; run the command again to finish it: terminating "
            "connection due to administrator command (in archive_copy_out)") in result.output
    assert list(out.iterdir()) == [], "no file, and no partial file"
    with billed.app_context():
        assert count(JAN, FEB) == 2
        assert db.session.get(ArchivedMonth, JAN).status == "archiving"
    again = runner.invoke(args=["archive-readings", "--before", "2026-02", "--out", str(out)])
    assert again.exit_code == 0 and "archived 2026-01: 2 readings" in again.output


# ---- a restore stores readings as ingest does, counts every chunk, recounts sealed days; the archive fence ---------

def test_a_restore_stores_times_as_ingest_does_counts_every_chunk_and_recounts_the_sealed_days(app, tmp_path,
                                                                                            monkeypatch):
    """A January file of 5 rows read in chunks of 2 (two full chunks, then one row): 5 rows read. Its row at January
    5th 00:00 repeats a reading ingested before (same asset, unit type, ts): skipped, the ingested value kept, so the
    restored ts is stored as ingest stores it (on SQLite: no 'T', no 'Z' left in the text); each restored reading is
    found by its ts and received_at. January's days were sealed (horizon February 1st): the restore recounts them
    (January 5th: the ingested reading and the new one)."""
    from billing import archive
    from billing.archive import restore_file
    from database.reading_days import seal_days, sealed_before
    from models import ReadingDay

    monkeypatch.setattr(archive, "CHUNK", 2)
    received = datetime(2026, 1, 5, 0, 0, 1, tzinfo=timezone.utc)
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        readings(vm, [("2026-01-05T00:00:00+00:00", "1")], gb, received_at=received)
        db.session.commit()
        vm_id, gb_id = vm.id, gb.id
        seal_days(db.session, FEB)
        assert sealed_before(db.session) == FEB
        restored_rows = [  # (ts, value, received_at) as written in the file
            ("2026-01-05T12:00:00.000000Z", "2.000000", "2026-01-05T12:00:01.000000Z"),
            ("2026-01-20T00:00:00.500000Z", "3.500000", "2026-01-21T00:00:00.000000Z"),
            ("2026-01-31T23:59:59.999999Z", "4.000000", "2026-02-01T00:00:00.250000Z"),
            ("2026-01-01T00:00:00.000000Z", "5.000000", "2026-01-01T00:00:00.000000Z")]
        path = tmp_path / "readings-2026-01.csv.gz"
        write_archive(path, [",".join(["asset_id", "unit_type_id", "ts", "value", "received_at"]),
                             f"{vm_id},{gb_id},2026-01-05T00:00:00.000000Z,9.000000,2026-01-06T00:00:00.000000Z",
                             *[f"{vm_id},{gb_id},{ts},{value},{at}" for ts, value, at in restored_rows]])
        result = restore_file(db.session, path)
        assert (result.rows, result.restored, result.skipped) == (5, 4, 1)

        def moment(iso: str) -> datetime:
            return datetime.fromisoformat(iso.replace("Z", "+00:00"))

        assert reading_rows(JAN, FEB) == sorted(
            [(vm_id, gb_id, datetime(2026, 1, 5, tzinfo=timezone.utc), Decimal("1"), received)]
            + [(vm_id, gb_id, moment(ts), Decimal(value), moment(at)) for ts, value, at in restored_rows])
        for ts, _, at in restored_rows:
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Reading).where(
                Reading.ts == moment(ts), Reading.received_at == moment(at))) == 1, (ts, at)
        days = db.session.execute(sa.select(ReadingDay.day, ReadingDay.n, ReadingDay.total, ReadingDay.top).where(
            ReadingDay.asset_id == vm_id, ReadingDay.unit_type_id == gb_id).order_by(ReadingDay.day)).all()
        assert [tuple(day) for day in days] == [
            (datetime(2026, 1, 1, tzinfo=timezone.utc), 1, Decimal("5"), Decimal("5")),
            (datetime(2026, 1, 5, tzinfo=timezone.utc), 2, Decimal("3"), Decimal("2")),
            (datetime(2026, 1, 20, tzinfo=timezone.utc), 1, Decimal("3.5"), Decimal("3.5")),
            (datetime(2026, 1, 31, tzinfo=timezone.utc), 1, Decimal("4"), Decimal("4"))]


@postgres_only
def test_marking_a_month_archiving_waits_for_the_ingest_batches_in_flight(app):
    """PostgreSQL: a batch in flight holds the archive fence shared until it commits; marking January archiving takes
    the fence exclusive, so it waits for the batch (here it gives up at lock_timeout, and nothing is marked); once the
    batch has committed, the mark goes through."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from billing.archive import mark_archiving
    from database.partitions import hold_archive_fence

    with app.app_context():
        batch = Session(db.engine)
        try:
            hold_archive_fence(batch)
            db.session.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                mark_archiving(db.session, JAN)
            db.session.rollback()
            assert db.session.get(ArchivedMonth, JAN) is None
            batch.commit()
        finally:
            batch.close()
        mark_archiving(db.session, JAN)
        assert db.session.get(ArchivedMonth, JAN).status == "archiving"


def test_restore_refuses_a_file_that_is_not_whole_gzip_and_stores_nothing(app, runner, tmp_path):
    """Plain text under an archive's name, and an archive cut short (a copy that stopped half way), are refused in
    one line on both backends: nothing stored, the month's archive mark kept."""
    header = ",".join(["asset_id", "unit_type_id", "ts", "value", "received_at"])
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.add(ArchivedMonth(period_start=JAN, status="archived", readings=400, file="x", sha256="0"))
        db.session.commit()
        row = f"{vm.id},{gb.id},2026-01-05T00:00:00.000000Z,1.000000,2026-01-05T00:00:00.000000Z"
    path = tmp_path / "readings-2026-01.csv.gz"
    path.write_text(header + "\n" + row + "\n")
    result = runner.invoke(args=["restore-readings", str(path)])
    assert result.exit_code == 1
    assert "Error: readings-2026-01.csv.gz: not a whole gzip file (Not a gzipped file (b'as'))" in result.output
    write_archive(path, [header] + [row.replace("00:00:00.000000Z,1", f"00:{m:02}:00.000000Z,1", 1)
                                    for m in range(60)])
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    result = runner.invoke(args=["restore-readings", str(path)])
    assert result.exit_code == 1
    assert "Error: readings-2026-01.csv.gz: not a whole gzip file (" in result.output
    with app.app_context():
        assert reading_rows(JAN, FEB) == []
        assert db.session.get(ArchivedMonth, JAN).status == "archived"
