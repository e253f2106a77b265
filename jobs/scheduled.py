"""Entry points `rq cron` enqueues (see jobs/schedule.py): each starts a run requested by "rq cron" and runs it in
this worker (`start_job(..., here=True)`), inside the app context of `flask --app app worker`.

A run of the same kind and period that is already queued or running wins: the scheduled one is
skipped with a log line, never queued behind it.
"""
from __future__ import annotations

import logging

from billing.periods import current_period_start, period_label, previous_period
from jobs.rights import JobRefused, Requester
from jobs.runs import start_job
from models import utcnow

REQUESTED_BY = "rq cron"
log = logging.getLogger(__name__)


def run_scheduled(kind: str, parameters: dict, period: str | None) -> str:
    """Start a run of `kind` requested by rq cron and execute it here; skip when it is refused (one is active)."""
    try:
        run = start_job(kind, parameters, Requester.operator(REQUESTED_BY), period, here=True)
    except JobRefused as exc:
        log.info("scheduled %s run skipped: %s", kind, exc)
        return f"skipped: {exc}"
    log.info("scheduled %s run #%s done", kind, run.id)
    return run.message or ""


def scheduled_projections() -> str:
    """Hourly: the current period's projections."""
    period = period_label(current_period_start())
    return run_scheduled("projection", {"period": period}, period)


def scheduled_provisioning() -> str:
    """Nightly: auto-provisioning from unit-type templates."""
    return run_scheduled("provisioning", {}, None)


def scheduled_billing() -> str:
    """On the 1st: bill the month that just ended, not finalized (staff finalize after review)."""
    period = period_label(previous_period(current_period_start(utcnow())))
    return run_scheduled("billing", {"period": period, "finalize": False}, period)
