"""The periodic jobs, for `rq cron jobs.schedule` (cron fields are the scheduler's local time: run it with TZ=UTC).

- projections: every hour at :05
- auto-provisioning: every night at 02:30
- billing of the previous month (not finalized): the 1st of each month at 03:00
"""
from __future__ import annotations

from rq import cron

from config import build_config
from jobs.scheduled import scheduled_billing, scheduled_projections, scheduled_provisioning

QUEUE = build_config().get("RQ_QUEUE", "meterdesk")
SCHEDULE = (
    (scheduled_projections, "5 * * * *"),
    (scheduled_provisioning, "30 2 * * *"),
    (scheduled_billing, "0 3 1 * *"),
)

for func, spec in SCHEDULE:
    cron.register(func, QUEUE, cron=spec, name=func.__name__, job_timeout=3600)
