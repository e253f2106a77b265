"""What a billing run does: JobRun parameters {"period": "YYYY-MM", "finalize": bool}."""
from __future__ import annotations

from billing.periods import parse_period
from billing.run import Progress, bill_period
from jobs.webhooks import announce_billing
from extensions import db
from models import JobRun


def billing_work(run: JobRun, progress: Progress) -> str:
    """Bill the run's period (finalizing when asked), then announce it to webhooks; the run's closing message."""
    parameters = run.parameters or {}
    period_start = parse_period(parameters.get("period", ""))
    summary = bill_period(db.session, period_start, finalize=bool(parameters.get("finalize")), progress=progress)
    announce_billing(summary, run.id)  # after bill_period's commit: the events never announce lines not written
    return summary.message
