"""RQ entry point of a CSV export: JobRun parameters {"period": "YYYY-MM"}; the zip lands in EXPORT_DIR."""
from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import update

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun


def export_file_name(period: str, run_id: int) -> str:
    return f"export-{period}-{run_id}.zip"


def export_work(run: JobRun, progress: Progress, out: Path | None = None) -> str:
    """Export the run's period to `out`, or to EXPORT_DIR/export-<period>-<run id>.zip (then the run's result_path)."""
    from billing.export import export_period
    from billing.periods import parse_period

    period = (run.parameters or {}).get("period", "")
    period_start = parse_period(period)
    if out is None:
        name = export_file_name(period, run.id)
        count = export_period(db.session, period_start, Path(current_app.config["EXPORT_DIR"]) / name, progress)
        with db.engine.begin() as conn:
            conn.execute(update(JobRun).where(JobRun.id == run.id).values(result_path=name))
        return f"Exported {count} billing line(s) for {period} to {name}."
    count = export_period(db.session, period_start, out, progress)
    return f"Exported {count} billing line(s) for {period} to {out}."


@in_app_context
def run_export_job(run_id: int) -> str:
    return execute_run(run_id, export_work)
