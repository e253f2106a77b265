"""CSV export of a period's billing lines: a zip with one CSV per unit type, streamed row by row."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import period_label, period_of
from models import BillingReading, Bucket, Client, UnitType

COLUMNS = ("id", "client_id", "client", "bucket_id", "bucket", "unit_type", "period_start", "period_end",
           "adjusts_period", "total_usage", "commit", "base_price", "overage_price", "base_cost", "overage_units", "overage_cost",
           "buffer_units", "buffer_cost", "final_cost", "finalized", "finalized_at", "calculated_at", "details")
ADJUSTS = COLUMNS.index("adjusts_period")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (= + - @ first, also after leading spaces, tabs or line
    breaks, which some spreadsheets trim) gets a leading apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_START) or cell.lstrip(" \t\r\n").startswith(FORMULA_START) else cell


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def latest_billed_period(session: Session) -> datetime | None:
    """The start of the most recently billed period, or None when nothing is billed."""
    return session.scalar(select(func.max(BillingReading.period_start)))


def safe_name(unit_type: str) -> str:
    """A unit type's name as a file name: runs of other characters than letters, digits, `.`, `_`, `-` become `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", unit_type).strip("._") or "unit"


def csv_names(unit_types: dict[int, str]) -> dict[int, str]:
    """Unit type id -> the name of its CSV in the zip: `<safe name>.csv`, or `<safe name>-<unit type id>.csv` for
    every unit type whose safe name is shared (ignoring case, as Windows and macOS do when unzipping), so no
    entry overwrites another and a name stays the same from one export to the next."""
    suffixed: set[int] = set()
    while True:
        names = {uid: f"{safe_name(name)}-{uid}" if uid in suffixed else safe_name(name)
                 for uid, name in unit_types.items()}
        seen = Counter(name.casefold() for name in names.values())
        shared = {uid for uid, name in names.items() if seen[name.casefold()] > 1} - suffixed
        if not shared:
            return {uid: f"{name}.csv" for uid, name in names.items()}
        suffixed |= shared


def lines_to_export(session: Session, period_start: datetime) -> int:
    """How many billing lines the period has; ValueError when it has none."""
    period_start = period_of(period_start)
    total = session.scalar(select(func.count()).select_from(BillingReading)
                           .where(BillingReading.period_start == period_start)) or 0
    if not total:
        raise ValueError(f"No billing lines for {period_label(period_start)}: run billing for it first")
    return total


def export_period(session: Session, period_start: datetime, out: Path,
                  progress: Callable[[int, str], None] | None = None) -> int:
    """Write the period's lines to the zip `out` (via a temporary file, renamed when complete); return the line count.
    The folder of `out` must exist: no folder is created here."""
    report = progress or (lambda percent, message: None)
    period_start = period_of(period_start)
    label = period_label(period_start)
    line = BillingReading
    where = line.period_start == period_start
    total = lines_to_export(session, period_start)
    names = csv_names(dict(session.execute(
        select(UnitType.id, UnitType.name).join(Bucket, Bucket.unit_type_id == UnitType.id)
        .join(line, line.bucket_id == Bucket.id).where(where).distinct()).all()))
    query = (
        select(UnitType.id, line.id, line.client_id, Client.name, line.bucket_id, Bucket.name, UnitType.name,
               line.period_start, line.period_end, line.adjusts_period, line.total_usage, line.commit, line.base_price,
               line.overage_price, line.base_cost, line.overage_units, line.overage_cost, line.buffer_units,
               line.buffer_cost, line.final_cost, line.finalized, line.finalized_at, line.calculated_at, line.details)
        .join(Client, Client.id == line.client_id)
        .join(Bucket, Bucket.id == line.bucket_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(where)
        .order_by(UnitType.name, UnitType.id, Client.name, line.bucket_id, line.adjusts_period.is_not(None),
                  line.adjusts_period)
        .execution_options(stream_results=True, yield_per=500)
    )
    out = Path(out)
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    written = 0
    stamp = datetime.now(timezone.utc).timetuple()[:6]
    report(1, f"Exporting {label}: {total} line(s)")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            current: int | None = None
            handle = stream = writer = None
            for unit, *row in session.execute(query):
                if unit != current:
                    if stream is not None:
                        stream.close()
                        handle.close()
                    current = unit
                    entry = zipfile.ZipInfo(names[unit], date_time=stamp)
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    handle = archive.open(entry, "w", force_zip64=True)
                    stream = io.TextIOWrapper(handle, encoding="utf-8", newline="")
                    writer = csv.writer(stream)
                    writer.writerow(COLUMNS)
                row[ADJUSTS] = period_label(row[ADJUSTS]) if row[ADJUSTS] else ""  # YYYY-MM, empty on ordinary lines
                writer.writerow([neutralise(_text(value)) for value in row])
                written += 1
                if written % 200 == 0:
                    report(written * 98 // total, f"Exporting {label}: {written} of {total} line(s)")
            if stream is not None:
                stream.close()
                handle.close()
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    report(100, f"Exported {label}: {written} line(s)")
    return written
