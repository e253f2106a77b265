"""Entry points `rq cron` enqueues (see jobs/schedule.py): each records a JobRun and runs it in this worker.

A run of the same kind and period that is already queued or running wins: the scheduled one is
skipped with a log line, never queued behind it.
"""
from __future__ import annotations

import logging

from rq import get_current_job
from rq.utils import import_attribute
from sqlalchemy import update

from billing.periods import current_period_start, period_label, previous_period
from extensions import db
from jobs.context import in_app_context
from jobs.registry import ENTRY_POINTS, record_run
from jobs.rights import Requester
from jobs.runs import JobRefused
from models import JobRun, utcnow

REQUESTED_BY = "rq cron"
log = logging.getLogger(__name__)


def run_scheduled(kind: str, parameters: dict, period: str | None) -> str:
    """Record a run of `kind` requested by rq cron and execute it here; skip when one is active."""
    try:
        run = record_run(kind, parameters, Requester.operator(REQUESTED_BY), period)
    except JobRefused as exc:
        log.info("scheduled %s run skipped: %s", kind, exc)
        return f"skipped: {exc}"
    job = get_current_job()
    if job is not None:
        db.session.execute(update(JobRun).where(JobRun.id == run.id).values(rq_job_id=job.id))
        db.session.commit()
    log.info("scheduled %s run #%s started", kind, run.id)
    return import_attribute(ENTRY_POINTS[kind])(run.id)


@in_app_context
def scheduled_projections() -> str:
    """Hourly: the current period's projections."""
    period = period_label(current_period_start())
    return run_scheduled("projection", {"period": period}, period)


@in_app_context
def scheduled_provisioning() -> str:
    """Nightly: auto-provisioning from unit-type templates."""
    return run_scheduled("provisioning", {}, None)


@in_app_context
def scheduled_billing() -> str:
    """On the 1st: bill the month that just ended, not finalized (staff finalize after review)."""
    period = period_label(previous_period(current_period_start(utcnow())))
    return run_scheduled("billing", {"period": period, "finalize": False}, period)
