"""The CSV export's entry names: one file per unit type, none overwriting another when the zip is unpacked."""
from __future__ import annotations

import csv
import io
import zipfile

from billing.export import csv_names
from billing.run import bill_period
from extensions import db
from tests.factories import NOV, asset, bucket, client, readings, unit_type

OCT = NOV.replace(month=10)


def test_unit_types_whose_names_sanitise_alike_each_get_their_own_csv(app, runner, tmp_path):
    """"csv u" and "csv_u" both sanitise to csv_u, "GB" and "gb" differ only in case (one file on Windows and
    macOS): each gets `-<unit type id>`; "cpu" keeps its plain name. Each bucket has one reading of 10 + its id."""
    with app.app_context():
        acme = client("Acme")
        ids = {}
        for name in ("csv u", "csv_u", "GB", "gb", "cpu"):
            unit = unit_type(name)
            vm = asset(f"vm-{name}", acme)
            readings(vm, [("2026-10-02T00:00:00+00:00", str(10 + unit.id))], unit=unit)
            bucket(f"bucket {name}", "sum", [vm], owner=acme, unit=unit)
            ids[name] = unit.id
        db.session.commit()
        bill_period(db.session, OCT)
    assert ids == {"csv u": 1, "csv_u": 2, "GB": 3, "gb": 4, "cpu": 5}
    out = tmp_path / "oct.zip"
    result = runner.invoke(args=["export-csv", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist(), key=str.lower) == ["cpu.csv", "csv_u-1.csv", "csv_u-2.csv", "GB-3.csv",
                                                             "gb-4.csv"]
        rows = {entry: list(csv.DictReader(io.TextIOWrapper(archive.open(entry), encoding="utf-8")))
                for entry in archive.namelist()}
    assert len({entry.lower() for entry in rows}) == 5
    got = {entry: [(row["unit_type"], row["bucket"], row["total_usage"]) for row in lines]
           for entry, lines in rows.items()}
    assert got == {
        "csv_u-1.csv": [("csv u", "bucket csv u", "11.000000")],
        "csv_u-2.csv": [("csv_u", "bucket csv_u", "12.000000")],
        "GB-3.csv": [("GB", "bucket GB", "13.000000")],
        "gb-4.csv": [("gb", "bucket gb", "14.000000")],
        "cpu.csv": [("cpu", "bucket cpu", "15.000000")],
    }


def test_entry_names_are_unique_even_when_a_suffixed_name_meets_a_plain_one():
    # "x" and "x " both sanitise to x and become x-2, x-3; then x-2 meets the unit type named "x-2" (id 1),
    # which is suffixed in turn
    assert csv_names({1: "x-2", 2: "x", 3: "x "}) == {1: "x-2-1.csv", 2: "x-2.csv", 3: "x-3.csv"}
    assert csv_names({7: "gb", 8: "cpu / hours"}) == {7: "gb.csv", 8: "cpu_hours.csv"}
    assert csv_names({4: "../..", 5: ""}) == {4: "unit-4.csv", 5: "unit-5.csv"}
