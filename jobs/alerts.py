"""Alert detection as an RQ job (hourly, see jobs/schedule.py); `flask --app app detect-alerts` runs it too."""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy.exc import IntegrityError

from extensions import db
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


def detect_alerts_job() -> str:
    """RQ entry point of the hourly detection."""
    message = run_detection()
    log.info("detect-alerts: %s", message)
    return message

