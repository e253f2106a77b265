"""Archive files edited by hand: a line PostgreSQL's COPY would take for the end of the data ("\\."), a last line
without its line end."""
from __future__ import annotations

import gzip
from decimal import Decimal
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from billing.archive import ArchiveRefused, restore_file
from extensions import db
from models import Reading
from tests.factories import asset, unit_type

HEADER = "asset_id,unit_type_id,ts,value,received_at"


def stored() -> list[tuple]:
    db.session.expire_all()
    return sorted((r.ts.day, r.value) for r in db.session.scalars(sa.select(Reading)))


def test_an_end_of_data_line_is_refused_on_both_backends(app, tmp_path):
    """A line "\\." (the end of the data for PostgreSQL's COPY, which would drop the lines after it) is not a
    reading on either backend: inside the file, last with its line end, or last without one; nothing stored."""
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.commit()
        rows = [f"{vm.id},{gb.id},2026-01-0{day}T00:00:00.000000Z,{day}.000000,2026-01-09T00:00:00.000000Z"
                for day in (1, 2, 3)]
        path = tmp_path / "readings-2026-01.csv.gz"
        postgres = db.engine.dialect.name == "postgresql"
        for text, line in ((f"{HEADER}\n{rows[0]}\n\\.\n{rows[1]}\n{rows[2]}\n", 3),
                           (f"{HEADER}\n{rows[0]}\n\\.\n{rows[1]}", 3),
                           (f"{HEADER}\n{rows[0]}\n{rows[1]}\n\\.\n", 4), (f"{HEADER}\n{rows[0]}\n\\.", 3)):
            path.write_bytes(gzip.compress(text.encode()))
            refused = f"^readings-2026-01.csv.gz: line {line} is not a reading \\("
            with pytest.raises(ArchiveRefused, match=refused) as no:
                restore_file(db.session, path)
            if postgres and not text.endswith("\\."):
                assert str(no.value).endswith("(\\. ends the data of PostgreSQL's COPY: the lines after it would not "
                                              "be restored)")
            assert stored() == []


def test_a_file_with_the_header_alone_restores_nothing_and_reopens_its_month(app, tmp_path):
    """An archive of a month without readings (the header alone, with or without its line end): 0 of 0 restored."""
    with app.app_context():
        path = tmp_path / "readings-2026-01.csv.gz"
        for text in (f"{HEADER}\n", HEADER):
            path.write_bytes(gzip.compress(text.encode()))
            result = restore_file(db.session, path)
            assert (result.period, result.rows, result.restored, result.skipped) == ("2026-01", 0, 0, 0)
        assert stored() == []


@pytest.mark.parametrize("tail", ["\n", ""])
def test_a_last_line_with_or_without_its_line_end_is_restored(app, tmp_path, tail):
    """Two readings, the last followed by a line end or by nothing: both restored, on both backends."""
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.commit()
        rows = [f"{vm.id},{gb.id},2026-01-0{day}T00:00:00.000000Z,{day}.000000,2026-01-09T00:00:00.000000Z"
                for day in (1, 2)]
        path = tmp_path / "readings-2026-01.csv.gz"
        path.write_bytes(gzip.compress(f"{HEADER}\n{rows[0]}\n{rows[1]}{tail}".encode()))
        result = restore_file(db.session, path)
        assert (result.rows, result.restored) == (2, 2)
        assert stored() == [(1, 1), (2, 2)]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "9223372036854.775808", "1e30"])
def test_a_value_that_is_not_a_readings_number_is_refused(app, tmp_path, value):
    """NaN, infinities and values 2^63 millionths or more from 0 (a reading is stored as a bigint of millionths) are
    refused in one line on both backends, nothing stored; 9223372036854.775807 is the largest that is kept."""
    with app.app_context():
        vm, gb = asset("vm-1"), unit_type("gb")
        db.session.commit()
        row = f"{vm.id},{gb.id},2026-01-05T00:00:00.000000Z,{{}},2026-01-09T00:00:00.000000Z"
        path = tmp_path / "readings-2026-01.csv.gz"
        path.write_bytes(gzip.compress(f"{HEADER}\n{row.format(value)}\n".encode()))
        refusal = (r"1 value\(s\) not a reading's number \(NaN, infinite, or 9223372036854\.775808 or more from 0\)$"
                   if db.engine.dialect.name == "postgresql" else r"line 2 is not a reading \(")
        with pytest.raises(ArchiveRefused, match=f"^readings-2026-01.csv.gz: {refusal}") as no:
            restore_file(db.session, path)
        if db.engine.dialect.name == "sqlite" and value[0].isdigit():
            assert str(no.value).endswith(f"({value} is 9223372036854.775808 or more from 0)" if "." in value else
                                          "(its value is no number a reading can hold)")
        assert stored() == []
        path.write_bytes(gzip.compress(f"{HEADER}\n{row.format('-9223372036854.775807')}\n".encode()))
        assert restore_file(db.session, path).restored == 1
        assert stored() == [(5, Decimal("-9223372036854.775807"))]
