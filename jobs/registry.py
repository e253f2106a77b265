"""Starting runs: the RQ entry point of each kind, and the checks every start path passes before a run is recorded."""
from __future__ import annotations

from typing import Any

from billing.export import lines_to_export
from billing.archive import check_not_archived
from billing.periods import parse_period
from billing.run import check_billable
from extensions import db
from jobs.rights import Requester, check_may_start
from jobs.runs import JobRefused, create_run, enqueue_run
from models import JobRun

ENTRY_POINTS = {
    "billing": "jobs.billing.run_billing_job",
    "projection": "jobs.projections.run_projection_job",
    "provisioning": "jobs.provisioning.run_provisioning_job",
    "export": "jobs.export.run_export_job",
}


class JobRejected(JobRefused):
    """The parameters cannot run now (a future period, finalizing the open month, exporting a period with no lines)."""


def check_parameters(kind: str, parameters: dict[str, Any]) -> None:
    """Raise JobRejected for a run that would only fail later: the same checks the job makes, made up front."""
    if kind not in ("billing", "export"):
        return
    try:
        period_start = parse_period(parameters.get("period", ""))
        if kind == "billing":
            check_billable(period_start, bool(parameters.get("finalize")))
            check_not_archived(db.session, period_start)
        else:
            lines_to_export(db.session, period_start)
    except ValueError as exc:
        raise JobRejected(f"{exc}.") from None


def record_run(kind: str, parameters: dict[str, Any], requester: Requester, period: str | None = None) -> JobRun:
    """Check the requester's rights and the parameters, then record a queued run (nothing is recorded when refused).

    Raises JobNotAllowed, JobRejected, or JobRefused when a run of the same kind and period is active."""
    check_may_start(kind, parameters, requester)
    check_parameters(kind, parameters)
    return create_run(kind, parameters, requester.name, period)


def start_job(kind: str, parameters: dict[str, Any], requester: Requester, period: str | None = None) -> JobRun:
    """Record and enqueue a run of `kind` (see `record_run`); raises JobRefused when the queue is down too."""
    return enqueue_run(record_run(kind, parameters, requester, period), ENTRY_POINTS[kind])


def retry_job(run_id: int, requester: Requester) -> JobRun:
    """Start a new run with the parameters of a failed one, checked again with the rights of whoever retries it."""
    old = db.session.get(JobRun, run_id)
    if old is None:
        raise LookupError(f"no job run {run_id}")
    if old.status != "failed":
        raise ValueError("only a failed run can be retried")
    parameters = dict(old.parameters or {})
    return start_job(old.kind, parameters, requester, parameters.get("period"))
