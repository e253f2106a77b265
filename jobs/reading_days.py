"""Nightly (rq cron): seal the ended days into reading_days (database/reading_days.py), for billing to add up."""
from __future__ import annotations

import logging

from database.reading_days import DAY, day_of, seal_days, sealed_before
from extensions import db
from models import utcnow

log = logging.getLogger(__name__)


def scheduled_seal_days() -> str:
    """Seal every day before yesterday (UTC): yesterday stays raw one more day, so that collectors' late polls land
    in an open day instead of recounting a sealed one."""
    sealed = seal_days(db.session, day_of(utcnow()) - DAY)
    horizon = sealed_before(db.session)
    log.info("reading days sealed: %d; sealed before %s", sealed, horizon)
    return f"{sealed} day(s) sealed; every day before {horizon:%Y-%m-%d} is sealed"
