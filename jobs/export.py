"""What a CSV export run does: JobRun parameters {"period": "YYYY-MM"}; the zip lands in EXPORT_DIR (or `out`)."""
from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import update

from billing.export import export_period
from billing.periods import parse_period
from billing.run import Progress
from extensions import db
from models import JobRun


def export_file_name(period: str, run_id: int) -> str:
    return f"export-{period}-{run_id}.zip"


def export_work(run: JobRun, progress: Progress, out: Path | None = None) -> str:
    """Export the run's period to `out`, or to EXPORT_DIR/export-<period>-<run id>.zip (then the run's result_path)."""
    period = (run.parameters or {}).get("period", "")
    period_start = parse_period(period)
    if out is None:
        name = export_file_name(period, run.id)
        folder = Path(current_app.config["EXPORT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)  # the app's own export folder, under instance/ by default
        count = export_period(db.session, period_start, folder / name, progress)
        with db.engine.begin() as conn:
            conn.execute(update(JobRun).where(JobRun.id == run.id).values(result_path=name))
        return f"Exported {count} billing line(s) for {period} to {name}."
    count = export_period(db.session, period_start, out, progress)
    return f"Exported {count} billing line(s) for {period} to {out}."

