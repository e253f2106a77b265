"""The CSV export's rules as plain functions: which cells a spreadsheet would run, file names, the latest billed
period, and every cell of a period's export as the billing lines hold it."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from billing.export import COLUMNS, export_period, latest_billed_period, neutralise, safe_name
from billing.run import bill_period
from extensions import db
from models import BillingReading, Bucket, UnitType
from tests.factories import asset, bucket, client, readings, unit_type

OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("cell, exported", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    (" =1", "' =1"), ("  +cmd", "'  +cmd"), ("\n=1", "'\n=1"), (" \t\r\n@x", "' \t\r\n@x"),  # trimmed by some
    ("a=1", "a=1"), ("1-2", "1-2"), ("X=1", "X=1"), ("XX=1", "XX=1"), ("", ""), ("   ", "   "),
    ("Acme =1", "Acme =1"), ("12.500000", "12.500000"),
    ("\u00a0=1", "\u00a0=1"),  # a no-break space is not trimmed (Excel's TRIM keeps CHAR(160)): text as typed
])
def test_only_cells_a_spreadsheet_would_run_get_an_apostrophe(cell, exported):
    """= + - @ tab CR first, or after leading spaces, tabs, CR or LF only: other characters keep the cell text."""
    assert neutralise(cell) == exported


@pytest.mark.parametrize("name, file", [
    ("cpu_hours", "cpu_hours"), ("GB month", "GB_month"), ("X_cpu.X", "X_cpu.X"), ("..hidden", "hidden"),
    ("_x_", "x"), ("a/b\\c", "a_b_c"), ("über", "ber"), ("///", "unit"), ("", "unit"), ("v1.2-beta", "v1.2-beta"),
])
def test_a_unit_types_file_name_keeps_letters_digits_dot_dash_underscore(name, file):
    assert safe_name(name) == file


def test_the_latest_billed_period_is_the_newest_period_with_lines(app):
    with app.app_context():
        assert latest_billed_period(db.session) is None
        target = asset("a")
        readings(target, [("2026-09-10T00:00:00+00:00", "1"), ("2026-10-10T00:00:00+00:00", "2")])
        bucket("b", "sum", [target], created_at=datetime(2026, 9, 1, tzinfo=timezone.utc))
        db.session.commit()
        bill_period(db.session, OCT)
        bill_period(db.session, datetime(2026, 9, 1, tzinfo=timezone.utc))
        assert latest_billed_period(db.session) == OCT


def expected_cell(value) -> str:
    """The export's text for a value, written from the format README promises: ISO 8601 datetimes, true/false,
    decimals as stored, JSON with sorted keys, empty for none."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def test_every_cell_of_a_periods_export_is_the_line_as_stored(app, tmp_path):
    with app.app_context():
        cpu, disk = unit_type("cpu hours"), unit_type("disk")
        zeta, acme = client("Zeta"), client("=Acme")
        made = []
        for owner in (zeta, acme):
            for unit in (cpu, disk):
                target = asset(f"{owner.name}-{unit.name}", owner)
                readings(target, [("2026-10-05T00:00:00+00:00", "7.5"), ("2026-10-20T00:00:00+00:00", "5")], unit=unit)
                made.append(bucket(f"{owner.name} {unit.name}", "sum", [target], commit="10", base="1.25",
                                   overage="2", owner=owner, unit=unit, created_at=OCT))
        db.session.commit()
        bill_period(db.session, OCT)
        steps: list[tuple[int, str]] = []
        folder = tmp_path / "exports"
        folder.mkdir()
        out = folder / "october.zip"
        assert export_period(db.session, OCT, out, lambda percent, message: steps.append((percent, message))) == 4
        lines = db.session.scalars(select(BillingReading).order_by(BillingReading.id)).all()
        names = {b.id: (b.name, db.session.get(UnitType, b.unit_type_id).name) for b in db.session.scalars(select(Bucket))}
        clients = {zeta.id: zeta.name, acme.id: acme.name}
        expected: dict[str, list[list[str]]] = {"cpu_hours.csv": [], "disk.csv": []}
        for line in sorted(lines, key=lambda item: (clients[item.client_id], item.bucket_id)):
            bucket_name, unit_name = names[line.bucket_id]
            values = [line.id, line.client_id, clients[line.client_id], line.bucket_id, bucket_name, unit_name,
                      line.period_start, line.period_end, None, line.total_usage, line.commit, line.base_price,
                      line.overage_price, line.base_cost, line.overage_units, line.overage_cost, line.buffer_units,
                      line.buffer_cost, line.final_cost, line.finalized, line.finalized_at, line.calculated_at,
                      line.details]
            expected["cpu_hours.csv" if unit_name == "cpu hours" else "disk.csv"].append(
                [neutralise(expected_cell(value)) for value in values])
    assert steps[0] == (1, "Exporting 2026-10: 4 line(s)") and steps[-1] == (100, "Exported 2026-10: 4 line(s)")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["cpu_hours.csv", "disk.csv"]
        for entry, rows in expected.items():
            table = list(csv.reader(io.TextIOWrapper(archive.open(entry), encoding="utf-8", newline="")))
            assert table[0] == list(COLUMNS)
            assert table[1:] == rows, entry
            assert [row[2] for row in table[1:]] == ["'=Acme", "Zeta"]  # by client name; a formula-like name inert
            assert [row[9] for row in table[1:]] == ["12.500000", "12.500000"]
    assert [p.name for p in folder.iterdir()] == ["october.zip"]  # no partial file left


def test_an_export_into_a_missing_folder_fails_and_leaves_nothing(app, tmp_path):
    with app.app_context():
        target = asset("a")
        readings(target, [("2026-10-05T00:00:00+00:00", "1")])
        bucket("b", "sum", [target], created_at=OCT)
        db.session.commit()
        bill_period(db.session, OCT)
        with pytest.raises(FileNotFoundError):
            export_period(db.session, OCT, tmp_path / "missing" / "october.zip")
    assert not (tmp_path / "missing").exists()
