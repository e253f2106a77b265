"""The `rq cron` schedule: projections hourly, provisioning nightly, billing of last month on the 1st."""
from datetime import datetime

import pytest
from croniter import croniter
from rq.cron import CronScheduler
from rq.utils import import_attribute
from sqlalchemy import select

from billing.periods import current_period_start, period_label, previous_period
from extensions import db
from jobs.redis import get_redis
from jobs.runs import create_run
from jobs.scheduled import scheduled_projections, scheduled_provisioning
from models import JobRun
from tests.conftest import work_jobs


@pytest.fixture
def scheduler(app):
    with app.app_context():
        conn = get_redis()
    cron = CronScheduler(connection=conn)
    cron.load_config_from_file("jobs/schedule.py")
    return cron


def test_schedule_file_loads_in_rq_cron_with_six_jobs(scheduler):
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"scheduled_projections", "scheduled_provisioning", "scheduled_billing", "detect_alerts_job",
                         "scheduled_partitions", "scheduled_seal_days"}
    assert {job.queue_name for job in jobs.values()} == {"meterdesk"}
    for job in jobs.values():
        assert callable(import_attribute(job.func_name)), job.func_name


def test_projections_hourly_provisioning_nightly_billing_on_the_first(scheduler):
    jobs = {job.name: job.cron for job in scheduler.get_jobs()}
    base = datetime(2026, 11, 30, 22, 10)

    def next_runs(spec: str, count: int = 3) -> list[datetime]:
        it = croniter(spec, base)
        return [it.get_next(datetime) for _ in range(count)]

    assert next_runs(jobs["scheduled_projections"]) == [
        datetime(2026, 11, 30, 23, 5), datetime(2026, 12, 1, 0, 5), datetime(2026, 12, 1, 1, 5)]
    assert next_runs(jobs["scheduled_provisioning"], 2) == [datetime(2026, 12, 1, 2, 30), datetime(2026, 12, 2, 2, 30)]
    assert next_runs(jobs["scheduled_billing"], 2) == [datetime(2026, 12, 1, 3, 0), datetime(2027, 1, 1, 3, 0)]
    assert next_runs(jobs["scheduled_partitions"], 2) == [datetime(2026, 12, 1, 1, 15), datetime(2026, 12, 2, 1, 15)]
    # the days are sealed before the billing of the month that just ended
    assert next_runs(jobs["scheduled_seal_days"], 2) == [datetime(2026, 12, 1, 0, 45), datetime(2026, 12, 2, 0, 45)]




def test_cron_enqueued_projection_runs_in_a_worker_as_rq_cron(app, scheduler):
    job = next(j for j in scheduler.get_jobs() if j.name == "scheduled_projections")
    with app.app_context():
        conn = get_redis()
        job.enqueue(conn)
    work_jobs(app)
    with app.app_context():
        run = db.session.scalar(select(JobRun))
        assert (run.kind, run.status, run.requested_by) == ("projection", "done", "rq cron")
        assert run.lock_key == f"projection:{period_label(current_period_start())}"
        assert run.parameters == {"period": period_label(current_period_start())}
        assert run.rq_job_id and run.rq_job_id != "projection-1"   # the cron job's own id


def test_scheduled_run_is_skipped_while_one_is_active(app):
    with app.app_context():
        busy = create_run("projection", {}, "someone", period_label(current_period_start()))
        busy_id = busy.id
    with app.app_context():  # the worker's app context (`flask --app app worker`)
        message = scheduled_projections()
    assert message.startswith("skipped: A projection run") and f"job #{busy_id}" in message
    with app.app_context():
        assert [r.id for r in db.session.scalars(select(JobRun))] == [busy_id]


def test_scheduled_provisioning_records_a_done_run(app):
    with app.app_context():
        assert "Auto-provisioning over 0 unit types" in scheduled_provisioning()
        run = db.session.scalar(select(JobRun))
        assert (run.kind, run.status, run.lock_key, run.requested_by) == (
            "provisioning", "done", "provisioning:all", "rq cron")


def test_scheduled_billing_bills_the_month_that_ended(app):
    from jobs.scheduled import scheduled_billing

    last = period_label(previous_period(current_period_start()))
    with app.app_context():
        scheduled_billing()
        run = db.session.scalar(select(JobRun))
        assert (run.kind, run.status, run.requested_by) == ("billing", "done", "rq cron")
        assert run.parameters == {"period": last, "finalize": False}
        assert run.lock_key == f"billing:{last}"


def test_the_scheduler_reads_cron_fields_in_utc(scheduler):
    import time

    assert time.tzname[0] == "UTC" and time.timezone == 0
    projections = next(j for j in scheduler.get_jobs() if j.name == "scheduled_projections")
    assert projections.next_enqueue_time.minute == 5
