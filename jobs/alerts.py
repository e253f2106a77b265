"""Alert detection as an RQ job (hourly, see jobs/schedule.py) and as `flask --app app detect-alerts`."""
from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError

from extensions import db
from jobs.context import in_app_context
from jobs.webhooks import dispatch_pending
from webhooks.detect import detect_alerts

log = logging.getLogger(__name__)


def run_detection() -> str:
    """Detect, commit the episodes and events, queue their deliveries (and any left from before)."""
    try:
        found = detect_alerts(db.session, current_app.config["ANOMALY_PCT"])
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("alert detection skipped: another detection opened the same episodes")
        return "skipped: another detection ran at the same moment"
    queued = dispatch_pending(db.session)
    return f"{found.message}; {queued} delivery job(s) queued."


@in_app_context
def detect_alerts_job() -> str:
    """RQ entry point of the hourly detection."""
    message = run_detection()
    log.info("detect-alerts: %s", message)
    return message


@click.command("detect-alerts")
@with_appcontext
def detect_alerts_command() -> None:
    """Find silent assets, usage anomalies and buckets projected over commit; fire their webhook events."""
    click.echo(run_detection())
