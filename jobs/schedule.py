"""The periodic jobs, loaded by `rq cron jobs/schedule.py` (times are UTC, like billing periods).

- projections of the current period: every hour at :05
- auto-provisioning: every night at 02:30
- billing of the previous month, not finalized: the 1st of each month at 03:00
- alert detection (silent assets, usage anomalies, projected over; webhook events): every hour at :15
- readings partitions (PostgreSQL) for this month and the next 3: every night at 01:15
- reading days: the days before yesterday sealed for billing (database/reading_days.py): every night at 00:45

rq cron reads cron fields in the process's local time, so loading this file pins the scheduler
process to UTC. Each entry point records a JobRun requested by "rq cron" and skips (with a log
line) when a run of the same kind and period is already active.
"""
from __future__ import annotations

import os
import time

from rq import cron

from config import build_config
from jobs.alerts import detect_alerts_job
from jobs.partitions import scheduled_partitions
from jobs.reading_days import scheduled_seal_days
from jobs.scheduled import scheduled_billing, scheduled_projections, scheduled_provisioning

os.environ["TZ"] = "UTC"
time.tzset()

QUEUE = build_config().get("RQ_QUEUE", "meterdesk")
SCHEDULE = (
    (scheduled_projections, "5 * * * *"),
    (scheduled_provisioning, "30 2 * * *"),
    (scheduled_billing, "0 3 1 * *"),
    (detect_alerts_job, "15 * * * *"),
    (scheduled_partitions, "15 1 * * *"),
    (scheduled_seal_days, "45 0 * * *"),
)

for func, spec in SCHEDULE:
    cron.register(func, QUEUE, cron=spec, name=func.__name__, job_timeout=3600)
