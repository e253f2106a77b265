"""Nightly (rq cron): keep the monthly partitions of readings created ahead (PostgreSQL; nothing to do on SQLite)."""
from __future__ import annotations

import logging

from database.partitions import create_partitions, months_ahead, partitioned
from extensions import db

log = logging.getLogger(__name__)


def scheduled_partitions() -> str:
    """Create this month's partition of readings and the next three's when missing."""
    if not partitioned(db.session):
        return "readings is not partitioned here"
    created = create_partitions(db.session, months_ahead())
    log.info("readings partitions created: %s", ", ".join(created) or "none needed")
    return f"created {', '.join(created)}" if created else "all partitions exist"
