"""What an auto-provisioning run does: buckets from unit-type templates."""
from __future__ import annotations

from billing.provisioning import Progress, run_provisioning
from extensions import db
from models import JobRun


def provisioning_work(run: JobRun, progress: Progress) -> str:
    """Bind client assets to buckets made from their unit types' templates; the run's closing message."""
    return run_provisioning(db.session, progress=progress).message()
