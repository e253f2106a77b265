"""The CSV export of lines the billing run alone does not make in a test: finalized lines, adjustment lines, lines out
of id order and a period of more than 200 lines (the progress steps); and how the zip itself is written (entry order,
UTC entry times, zip64 headers, UTF-8 whatever the machine's locale)."""
from __future__ import annotations

import csv
import io
import locale
import struct
import time
import zipfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from billing.export import COLUMNS, export_period
from extensions import db
from models import BillingReading, Bucket, utcnow
from tests.factories import bucket, client, unit_type

AUG = datetime(2026, 8, 1, tzinfo=timezone.utc)
SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
FINALIZED_AT = datetime(2026, 11, 2, 3, 4, 5, tzinfo=timezone.utc)


def line(owner: Bucket, period: datetime = OCT, adjusts: datetime | None = None, total: str = "1",
         finalized_at: datetime | None = None) -> BillingReading:
    """A billing line of `owner` as the run stores it (an adjustment line when `adjusts` is given), flushed, so lines
    get their ids in the order they are made."""
    row = BillingReading(client_id=owner.client_id, bucket_id=owner.id, period_start=period,
                         period_end=datetime(period.year + period.month // 12, period.month % 12 + 1, 1,
                                             tzinfo=timezone.utc),
                         adjusts_period=adjusts, total_usage=Decimal(total), commit=Decimal("0"),
                         base_price=Decimal("0"), overage_price=Decimal("1"), base_cost=Decimal("0"),
                         overage_units=Decimal(total), overage_cost=Decimal(total), buffer_units=Decimal("0"),
                         buffer_cost=Decimal("0"), final_cost=Decimal(total), finalized=finalized_at is not None,
                         finalized_at=finalized_at, details={})
    db.session.add(row)
    db.session.flush()
    return row


def tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """Entry name -> its rows as {column: cell}, entries in the zip's order; every entry starts with the header."""
    found = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            table = list(csv.reader(io.TextIOWrapper(archive.open(name), encoding="utf-8", newline="")))
            assert table[0] == list(COLUMNS), name
            found[name] = [dict(zip(COLUMNS, row)) for row in table[1:]]
    return found


def test_finalized_and_adjustment_lines_export_true_their_finalize_time_and_the_adjusted_month(app, tmp_path):
    """finalized -> `true`/`false`; finalized_at -> ISO 8601 (empty while open); adjusts_period -> `YYYY-MM` of the
    adjusted period (empty on an ordinary line)."""
    with app.app_context():
        done, open_ = bucket("done"), bucket("open")
        line(done, total="3", finalized_at=FINALIZED_AT)
        line(done, adjusts=AUG, total="0.5", finalized_at=FINALIZED_AT)
        line(open_, total="2")
        line(open_, adjusts=SEP, total="-1.25")
        db.session.commit()
        assert export_period(db.session, OCT, tmp_path / "oct.zip") == 4
    rows = tables(tmp_path / "oct.zip")["gb.csv"]
    assert [(r["bucket"], r["adjusts_period"], r["total_usage"], r["finalized"], r["finalized_at"]) for r in rows] == [
        ("done", "", "3.000000", "true", "2026-11-02T03:04:05+00:00"),
        ("done", "2026-08", "0.500000", "true", "2026-11-02T03:04:05+00:00"),
        ("open", "", "2.000000", "false", ""),
        ("open", "2026-09", "'-1.250000", "false", ""),  # a negative adjustment is a formula-like cell: inert
    ]


def test_lines_are_ordered_by_unit_type_name_client_name_bucket_then_ordinary_line_before_adjustments_by_month(
        app, tmp_path):
    """Entries in unit type name order (not id order); inside one: client name, bucket id, the ordinary line, then
    its adjustment lines by adjusted month; whatever order the lines were stored in."""
    with app.app_context():
        zeta, alpha = unit_type("zeta"), unit_type("alpha")  # zeta gets the lower id
        beta, acme = client("Beta"), client("Acme")  # Beta gets the lower id
        first = bucket("first", owner=acme, unit=alpha)
        second = bucket("second", owner=acme, unit=alpha)
        other = bucket("other", owner=beta, unit=alpha)
        z = bucket("z", owner=beta, unit=zeta)
        line(z)
        line(other)
        line(second)
        line(first, adjusts=SEP)
        line(first, adjusts=AUG)
        line(first)
        line(second, period=NOV)  # another period: not exported
        db.session.commit()
        assert export_period(db.session, OCT, tmp_path / "oct.zip") == 6
    found = tables(tmp_path / "oct.zip")
    assert list(found) == ["alpha.csv", "zeta.csv"]
    assert [(r["client"], r["bucket"], r["adjusts_period"]) for r in found["alpha.csv"]] == [
        ("Acme", "first", ""), ("Acme", "first", "2026-08"), ("Acme", "first", "2026-09"),
        ("Acme", "second", ""), ("Beta", "other", "")]
    assert [(r["client"], r["bucket"]) for r in found["zeta.csv"]] == [("Beta", "z")]


def test_only_unit_types_with_lines_in_the_period_take_part_in_naming_the_entries(app, tmp_path):
    """`Disk` has a bucket and a line, but in September: October's export of `disk` is plain `disk.csv` (no
    `-<id>` suffix for a name shared with a unit type that has nothing in the export)."""
    with app.app_context():
        lower, upper = unit_type("disk"), unit_type("Disk")
        line(bucket("d", unit=lower))
        line(bucket("D", unit=upper), period=SEP)
        db.session.commit()
        assert export_period(db.session, OCT, tmp_path / "oct.zip") == 1
    assert list(tables(tmp_path / "oct.zip")) == ["disk.csv"]


def test_progress_is_reported_every_200_lines_as_a_share_of_98_percent(app, tmp_path):
    """450 lines: 1% at the start, then at 200 and 400 lines written 200·98//450 = 43% and 400·98//450 = 87%, with
    `written of total`, and 100% at the end."""
    with app.app_context():
        first = bucket("bucket-000")
        db.session.execute(insert(Bucket), [{"client_id": first.client_id, "name": f"bucket-{n:03d}",
                                             "unit_type_id": first.unit_type_id, "source_type": "vm",
                                             "aggregation": "sum"} for n in range(1, 450)])
        ids = list(db.session.scalars(select(Bucket.id)))
        db.session.execute(insert(BillingReading), [
            {"client_id": first.client_id, "bucket_id": i, "period_start": OCT, "period_end": NOV,
             "total_usage": Decimal("1"), "commit": Decimal("0"), "base_price": Decimal("0"),
             "overage_price": Decimal("0"), "base_cost": Decimal("0"), "overage_units": Decimal("0"),
             "overage_cost": Decimal("0"), "buffer_units": Decimal("0"), "buffer_cost": Decimal("0"),
             "final_cost": Decimal("0"), "finalized": False, "details": {}} for i in ids])
        db.session.commit()
        steps: list[tuple[int, str]] = []
        assert export_period(db.session, OCT, tmp_path / "oct.zip",
                             lambda percent, message: steps.append((percent, message))) == 450
    assert steps == [(1, "Exporting 2026-10: 450 line(s)"), (43, "Exporting 2026-10: 200 of 450 line(s)"),
                     (87, "Exporting 2026-10: 400 of 450 line(s)"), (100, "Exported 2026-10: 450 line(s)")]
    assert len(tables(tmp_path / "oct.zip")["gb.csv"]) == 450


def test_entry_times_are_the_export_time_in_utc_whatever_the_machines_time_zone(app, tmp_path, monkeypatch):
    """On a machine at UTC+14 (Kiritimati) the entries still carry the UTC time of the export (to the zip's 2 s)."""
    with app.app_context():
        line(bucket("b"))
        db.session.commit()
        monkeypatch.setenv("TZ", "Pacific/Kiritimati")
        time.tzset()
        try:
            before = utcnow().replace(tzinfo=None, microsecond=0) - timedelta(seconds=2)
            export_period(db.session, OCT, tmp_path / "oct.zip")
            after = utcnow().replace(tzinfo=None)
        finally:
            monkeypatch.undo()
            time.tzset()
    stamps = [datetime(*info.date_time) for info in zipfile.ZipFile(tmp_path / "oct.zip").infolist()]
    assert stamps and all(before <= stamp <= after for stamp in stamps), (before, stamps, after)


def test_every_entry_is_written_zip64_so_a_csv_may_pass_4_gib(app, tmp_path):
    """A streamed entry's size is not known when its header is written: without zip64 from the start, zipfile
    refuses to close an entry past 2 GiB. Each entry's local header carries the zip64 extra field (id 1) and needs
    version 4.5 to extract."""
    with app.app_context():
        line(bucket("b", unit=unit_type("cpu")))
        line(bucket("c", unit=unit_type("disk")))
        db.session.commit()
        export_period(db.session, OCT, tmp_path / "oct.zip")
    data = (tmp_path / "oct.zip").read_bytes()
    infos = zipfile.ZipFile(tmp_path / "oct.zip").infolist()
    assert len(infos) == 2
    for info in infos:
        assert info.extract_version == 45, info.filename
        header = struct.unpack("<4s2B4HL2L2H", data[info.header_offset:info.header_offset + 30])
        assert header[0] == b"PK\x03\x04"
        name_length, extra_length = header[-2:]
        extra = data[info.header_offset + 30 + name_length:info.header_offset + 30 + name_length + extra_length]
        ids = []
        while extra:
            field, size = struct.unpack("<2H", extra[:4])
            ids.append(field)
            extra = extra[4 + size:]
        assert 1 in ids, info.filename


def test_the_csv_is_utf_8_whatever_the_machines_locale(app, tmp_path):
    """Under the C locale (ASCII) a client `Zürich AG` and a unit type `m³` are still written, as UTF-8."""
    with app.app_context():
        line(bucket("Speicher", owner=client("Zürich AG"), unit=unit_type("m³")))
        db.session.commit()
        saved = locale.setlocale(locale.LC_CTYPE)
        locale.setlocale(locale.LC_CTYPE, "C")
        try:
            export_period(db.session, OCT, tmp_path / "oct.zip")
        finally:
            locale.setlocale(locale.LC_CTYPE, saved)
    with zipfile.ZipFile(tmp_path / "oct.zip") as archive:
        assert archive.namelist() == ["m.csv"]
        text = archive.read("m.csv").decode("utf-8")
    assert ",Zürich AG," in text and ",m³," in text
