"""RQ entry point of posting late-usage adjustments: JobRun parameters {"period": "YYYY-MM", "into": "YYYY-MM"}."""
from __future__ import annotations

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun


def adjustments_work(run: JobRun, progress: Progress) -> str:
    from billing.adjustments import post_adjustments
    from billing.periods import parse_period

    parameters = run.parameters or {}
    return post_adjustments(db.session, parse_period(parameters.get("period", "")),
                            parse_period(parameters.get("into", "")), progress=progress).message


@in_app_context
def run_adjustments_job(run_id: int) -> str:
    return execute_run(run_id, adjustments_work)
