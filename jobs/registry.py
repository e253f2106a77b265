"""Which RQ entry point runs each kind of job (dotted paths, so the web process need not import them)."""
from __future__ import annotations

from typing import Any

from extensions import db
from jobs.runs import create_run, enqueue_run
from models import JobRun

ENTRY_POINTS = {
    "billing": "jobs.billing.run_billing_job",
    "projection": "jobs.projections.run_projection_job",
    "provisioning": "jobs.provisioning.run_provisioning_job",
    "export": "jobs.export.run_export_job",
}


def start_job(kind: str, parameters: dict[str, Any], requested_by: str, period: str | None = None) -> JobRun:
    """Record and enqueue a run of `kind`; raises JobRefused when it would overlap or the queue is down."""
    run = create_run(kind, parameters, requested_by, period)
    return enqueue_run(run, ENTRY_POINTS[kind])


def retry_job(run_id: int, requested_by: str) -> JobRun:
    """Start a new run with the parameters of a failed one."""
    old = db.session.get(JobRun, run_id)
    if old is None:
        raise LookupError(f"no job run {run_id}")
    if old.status != "failed":
        raise ValueError("only a failed run can be retried")
    return start_job(old.kind, dict(old.parameters or {}), requested_by, (old.parameters or {}).get("period"))
