"""Nightly (rq cron): seal the ended days into reading_days (database/reading_days.py), for billing to add up."""
from __future__ import annotations

import logging

from database.reading_days import seal_ended_days, sealed_before
from extensions import db

log = logging.getLogger(__name__)


def scheduled_seal_days() -> str:
    """Seal every day before yesterday (UTC)."""
    sealed = seal_ended_days(db.session)
    horizon = sealed_before(db.session)
    log.info("reading days sealed: %d; sealed before %s", sealed, horizon)
    return f"{sealed} day(s) sealed; every day before {horizon:%Y-%m-%d} is sealed"
