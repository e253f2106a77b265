"""RQ entry point of a billing run: JobRun parameters {"period": "YYYY-MM", "finalize": bool}."""
from __future__ import annotations

from sqlalchemy import select

from extensions import db
from jobs.context import in_app_context
from jobs.runs import Progress, execute_run
from models import JobRun, User


def act_for(run: JobRun) -> None:
    """Name the user who asked for the run as the actor of its audit rows."""
    from audit import set_actor

    user_id = db.session.scalar(select(User.id).where(User.email == run.requested_by))
    set_actor(user_id=user_id)


def billing_work(run: JobRun, progress: Progress) -> str:
    from billing.periods import parse_period
    from billing.run import bill_period

    parameters = run.parameters or {}
    act_for(run)
    period_start = parse_period(parameters.get("period", ""))
    return bill_period(db.session, period_start, finalize=bool(parameters.get("finalize")), progress=progress).message


@in_app_context
def run_billing_job(run_id: int) -> str:
    return execute_run(run_id, billing_work)
