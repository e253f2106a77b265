"""RQ entry point of an auto-provisioning run: buckets from unit-type templates, with progress on the JobRun."""
from __future__ import annotations

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun


def provisioning_work(run: JobRun, progress: Progress) -> str:
    from billing.provisioning import run_provisioning

    return run_provisioning(db.session, progress=progress).message()


@in_app_context
def run_provisioning_job(run_id: int) -> str:
    return execute_run(run_id, provisioning_work)
