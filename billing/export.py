"""CSV export of a period's billing lines: a zip with one CSV per unit type, streamed row by row."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
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
           "total_usage", "commit", "base_price", "overage_price", "base_cost", "overage_units", "overage_cost",
           "buffer_units", "buffer_cost", "final_cost", "finalized", "finalized_at", "calculated_at", "details")
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


def csv_name(unit_type: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", unit_type).strip("._") or "unit") + ".csv"


def export_period(session: Session, period_start: datetime, out: Path,
                  progress: Callable[[int, str], None] | None = None) -> int:
    """Write the period's lines to the zip `out` (via a temporary file, renamed when complete); return the line count."""
    report = progress or (lambda percent, message: None)
    period_start = period_of(period_start)
    label = period_label(period_start)
    line = BillingReading
    where = line.period_start == period_start
    total = session.scalar(select(func.count()).select_from(line).where(where)) or 0
    if not total:
        raise ValueError(f"No billing lines for {label}: run billing for it first")
    query = (
        select(line.id, line.client_id, Client.name, line.bucket_id, Bucket.name, UnitType.name, line.period_start,
               line.period_end, line.total_usage, line.commit, line.base_price, line.overage_price, line.base_cost,
               line.overage_units, line.overage_cost, line.buffer_units, line.buffer_cost, line.final_cost,
               line.finalized, line.finalized_at, line.calculated_at, line.details)
        .join(Client, Client.id == line.client_id)
        .join(Bucket, Bucket.id == line.bucket_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(where)
        .order_by(UnitType.name, Client.name, line.bucket_id)
        .execution_options(stream_results=True, yield_per=500)
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    written = 0
    stamp = datetime.now(timezone.utc).timetuple()[:6]
    report(1, f"Exporting {label}: {total} line(s)")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            current: str | None = None
            handle = stream = writer = None
            for row in session.execute(query):
                unit = row[5]
                if unit != current:
                    if stream is not None:
                        stream.close()
                        handle.close()
                    current = unit
                    entry = zipfile.ZipInfo(csv_name(unit), date_time=stamp)
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    handle = archive.open(entry, "w", force_zip64=True)
                    stream = io.TextIOWrapper(handle, encoding="utf-8", newline="")
                    writer = csv.writer(stream)
                    writer.writerow(COLUMNS)
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
