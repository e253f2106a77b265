"""What a projection run does: the current period's projections."""
from __future__ import annotations

from billing.projections import Progress, run_projections
from extensions import db
from models import JobRun


def projection_work(run: JobRun, progress: Progress) -> str:
    """Project every enabled bucket for the current period; the run's closing message."""
    return run_projections(db.session, progress=progress).message()
