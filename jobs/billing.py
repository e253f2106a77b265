"""RQ entry point of a billing run: JobRun parameters {"period": "YYYY-MM", "finalize": bool}."""
from __future__ import annotations

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun


def billing_work(run: JobRun, progress: Progress) -> str:
    from billing.periods import parse_period
    from billing.run import bill_period
    from jobs.webhooks import announce_billing

    parameters = run.parameters or {}
    period_start = parse_period(parameters.get("period", ""))
    summary = bill_period(db.session, period_start, finalize=bool(parameters.get("finalize")), progress=progress)
    announce_billing(summary, run.id)  # after bill_period's commit: the events never announce lines not written
    return summary.message


@in_app_context
def run_billing_job(run_id: int) -> str:
    return execute_run(run_id, billing_work)
