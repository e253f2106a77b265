"""RQ entry point of a projection run: the current period's projections, with progress on the JobRun."""
from __future__ import annotations

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun


def projection_work(run: JobRun, progress: Progress) -> str:
    from billing.projections import run_projections

    return run_projections(db.session, progress=progress).message()


@in_app_context
def run_projection_job(run_id: int) -> str:
    return execute_run(run_id, projection_work)
