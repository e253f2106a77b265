"""Job runs: the one way to start one (`start_job`: check, record, then queue or run here), the one runner
(`run_job`, the RQ entry point of every kind) and the JobRun bookkeeping (never overlapping, progress, finish).

Every start path calls `start_job`: the pages, Retry, the API, the commands, rq cron's entry points and demo-data.
It checks the requester's rights and the parameters before anything is recorded, so a refused start leaves no run.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from billing.adjustments import check_into
from billing.archive import check_not_archived
from billing.export import lines_to_export
from billing.periods import parse_period
from billing.progress import Progress
from billing.run import check_billable
from database.audit import set_actor
from extensions import db
from jobs.adjustments import adjustments_work
from jobs.billing import billing_work
from jobs.export import export_work
from jobs.projections import projection_work
from jobs.provisioning import provisioning_work
from jobs.redis import get_queue, get_redis
from jobs.rights import API_KEY_REQUESTER, JobRefused, Requester, check_may_start
from models import JOB_ACTIVE, JobRun, User, utcnow

Work = Callable[..., str]
FOREGROUND_STALE_AFTER = timedelta(hours=6)
JOB_TIMEOUT = 3600

# What a run of each kind does: work(run, progress, **options) -> the run's closing message.
WORK: dict[str, Work] = {
    "billing": billing_work,
    "projection": projection_work,
    "provisioning": provisioning_work,
    "export": export_work,
    "adjustments": adjustments_work,
}


class JobRejected(JobRefused):
    """The parameters cannot run now (a future period, finalizing the open month, exporting a period with no lines,
    adjustments into a finalized or future period)."""


def check_parameters(kind: str, parameters: dict[str, Any]) -> None:
    """Raise JobRejected for a run that would only fail later: the same checks the job makes, made up front."""
    if kind not in WORK:
        raise JobRejected(f"Unknown kind of run {kind!r}.")
    if kind not in ("billing", "export", "adjustments"):
        return
    try:
        period_start = parse_period(parameters.get("period", ""))
        if kind == "adjustments":
            check_into(db.session, period_start, parse_period(parameters.get("into", "")))
        elif kind == "billing":
            check_billable(period_start, bool(parameters.get("finalize")))
            check_not_archived(db.session, period_start)
        else:
            lines_to_export(db.session, period_start)
    except ValueError as exc:
        raise JobRejected(f"{exc}.") from None


def start_job(kind: str, parameters: dict[str, Any], requester: Requester, period: str | None = None, *,
              here: bool = False, progress: Progress | None = None, options: dict[str, Any] | None = None) -> JobRun:
    """Check the requester's rights and the parameters, record a queued run, then hand it to the RQ queue, or run
    it in this process when `here` (the commands, rq cron's entry points, demo-data; `progress` also sees it).

    Nothing is recorded when refused: raises JobNotAllowed, JobRejected, or JobRefused when a run of the same kind
    and period is active. A queue that cannot be reached fails the recorded run and raises JobRefused; a run here
    that fails is recorded failed and its error raised."""
    check_may_start(kind, parameters, requester)
    check_parameters(kind, parameters)
    run = create_run(kind, parameters, requester.name, period)
    if not here:
        return enqueue_run(run)
    job = get_current_job()
    if job is not None:
        _write(run.id, rq_job_id=job.id)
    execute_run(run.id, progress, **(options or {}))
    db.session.refresh(run)
    return run


def retry_job(run_id: int, requester: Requester) -> JobRun:
    """Start a new run with the parameters of a failed one, checked again with the rights of whoever retries it."""
    old = db.session.get(JobRun, run_id)
    if old is None:
        raise LookupError(f"no job run {run_id}")
    if old.status != "failed":
        raise ValueError("only a failed run can be retried")
    parameters = dict(old.parameters or {})
    return start_job(old.kind, parameters, requester, parameters.get("period"))


def run_job(run_id: int) -> str:
    """The RQ entry point of every kind of run: execute the recorded run in this worker (inside the app context that
    `flask --app app worker` holds)."""
    return execute_run(run_id)


def lock_key(kind: str, period: str | None) -> str:
    return f"{kind}:{period or 'all'}"


def active_run(key: str) -> JobRun | None:
    return db.session.scalar(select(JobRun).where(JobRun.lock_key == key, JobRun.status.in_(JOB_ACTIVE)))


def _is_stale(run: JobRun) -> bool:
    """An active run whose worker is gone: its RQ job failed, stopped or vanished; or a foreground run left for hours."""
    if run.rq_job_id:
        try:
            job = Job.fetch(run.rq_job_id, connection=get_redis())
            status = job.get_status(refresh=True)
            if status == JobStatus.STARTED:
                # RQ's abandoned-job handling now, not at the next worker maintenance (up to 10 min): a job whose
                # worker stopped sending heartbeats (killed) moves to failed.
                job.started_job_registry.cleanup()
                status = job.get_status(refresh=True)
        except NoSuchJobError:
            return True
        except Exception:
            return False
        return status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    started = run.started_at or run.created_at
    return utcnow() - started > FOREGROUND_STALE_AFTER


def create_run(kind: str, parameters: dict[str, Any], requested_by: str, period: str | None = None) -> JobRun:
    """Record a queued run; raise JobRefused when one of the same kind and period is active."""
    key = lock_key(kind, period)
    for attempt in range(2):
        run = JobRun(kind=kind, parameters=parameters, lock_key=key, status="queued", progress=0,
                     requested_by=requested_by, message="Queued")
        db.session.add(run)
        try:
            db.session.commit()
            return run
        except IntegrityError:
            db.session.rollback()
        other = active_run(key)
        if other is not None and attempt == 0 and _is_stale(other):
            finish(other.id, "failed", "The worker running this job stopped before it finished; run it again.")
            continue
        label = f" for {period}" if period else ""
        number = f" (job #{other.id}, {other.status})" if other is not None else ""
        raise JobRefused(f"A {kind} run{label} is already queued or running{number}.")
    raise JobRefused(f"A {kind} run is already queued or running.")


def _write(run_id: int, **values: Any) -> None:
    """Update a JobRun row in its own short transaction, outside the job's data transaction."""
    with db.engine.begin() as conn:
        conn.execute(update(JobRun).where(JobRun.id == run_id).values(**values))


def report_progress(run_id: int, percent: int, message: str = "") -> None:
    percent = max(0, min(100, int(percent)))
    _write(run_id, progress=percent, message=message)
    try:
        job = get_current_job()
    except Exception:
        job = None
    if job is not None:
        job.meta.update(progress=percent, message=message)
        job.save_meta()


def finish(run_id: int, status: str, message: str, result_path: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "message": message[:4000], "finished_at": utcnow()}
    if status == "done":
        values["progress"] = 100
    if result_path is not None:
        values["result_path"] = result_path
    _write(run_id, **values)


def act_for(run: JobRun) -> None:
    """Name who asked for the run (a user by email, or `api-key:<id>`) as the actor of its audit rows."""
    requester = run.requested_by or ""
    if requester.startswith(API_KEY_REQUESTER) and requester[len(API_KEY_REQUESTER):].isdigit():
        set_actor(api_key_id=int(requester[len(API_KEY_REQUESTER):]))
        return
    set_actor(user_id=db.session.scalar(select(User.id).where(User.email == requester)))


def execute_run(run_id: int, also: Progress | None = None, **options: Any) -> str:
    """Run the work of the run's kind as its requester; record done with its message, or failed with the error.
    `also` sees every progress report too (a command's progress bar); `options` go to the work (export's `out`)."""
    run = db.session.get(JobRun, run_id)
    if run is None:
        raise LookupError(f"no job run {run_id}")
    work = WORK[run.kind]
    act_for(run)
    _write(run_id, status="running", started_at=utcnow(), message="Running")
    db.session.expire(run)

    def progress(percent: int, message: str = "") -> None:
        report_progress(run_id, percent, message)
        if also is not None:
            also(percent, message)

    try:
        message = work(run, progress, **options)
    except Exception as exc:
        db.session.rollback()
        summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        detail = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno} in {where.name})" if where else ""
        finish(run_id, "failed", f"{summary}{detail}")
        current_app.logger.exception("job run %s failed", run_id)
        raise
    finish(run_id, "done", message or "Done")
    return message


def enqueue_run(run: JobRun) -> JobRun:
    """Hand a recorded run to the RQ queue (`run_job`); a queue that cannot be reached fails the run clearly."""
    job_id = f"{run.kind}-{run.id}"
    try:
        get_queue().enqueue(run_job, run.id, job_id=job_id, job_timeout=JOB_TIMEOUT, result_ttl=86400,
                            failure_ttl=604800)
    except Exception as exc:
        finish(run.id, "failed", f"The job queue is unavailable ({type(exc).__name__}); try again shortly.")
        db.session.refresh(run)
        raise JobRefused("The job queue is unavailable; the run was not started.") from exc
    _write(run.id, rq_job_id=job_id)
    db.session.refresh(run)
    return run


def run_visible_to(run: JobRun, client_id: int | None) -> bool:
    """Whether a caller limited to the client `client_id` (None: every client) may read `run`. Every kind of run
    (billing, projection, provisioning, export) covers every client, and its message and parameters carry company
    totals and who asked: a client-scoped caller reads none."""
    return client_id is None


def latest_run(kind: str) -> JobRun | None:
    """The newest run of a kind, for the progress bar of the page that starts it."""
    return db.session.scalar(select(JobRun).where(JobRun.kind == kind).order_by(JobRun.id.desc()).limit(1))
