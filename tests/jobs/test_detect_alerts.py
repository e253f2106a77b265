"""The hourly schedule runs alert detection: rq cron's job, run by a real `rq worker`, fires each event once and the
same worker delivers them; billing runs announce themselves after their lines are committed."""
from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter
from rq.cron import CronScheduler
from sqlalchemy import func, select

from billing.periods import current_period_start, period_label, previous_period
from extensions import db
from tests.conftest import work_jobs
from jobs.redis import get_queue, get_redis
from jobs.runs import start_job
from jobs.rights import Requester
from models import AlertEpisode, BillingReading, WebhookDelivery, WebhookEvent, utcnow
from webhooks.signing import signature_matches
from tests.webhooks.helpers import asset, bucket, last_periods, line, owner, projection, read, unit, webhook
from tests.webhooks.receiver import receiver
from tests.webhooks.worker import rq_worker

ALERT_EVENTS = ["asset.silent", "usage.anomaly", "bucket.projected_over"]


def alert_world(now: datetime) -> int:
    """One silent asset (30 h), one bucket anomalous (projected 150 against a mean of 10) and over its commit (100)."""
    gb = unit("gb")
    quiet = asset("quiet-vm", owner())
    storage = bucket("Storage", gb, [quiet], commit="100")
    read(quiet, gb, now - timedelta(hours=30))
    for period in last_periods(3):
        line(storage, period, "10")
    projection(storage, "150")
    db.session.commit()
    return storage.id


def cron_job(app, name: str):
    with app.app_context():
        scheduler = CronScheduler(connection=get_redis())
    scheduler.load_config_from_file("jobs/schedule.py")
    return next(job for job in scheduler.get_jobs() if job.name == name)


def test_detection_runs_hourly_at_a_quarter_past(app):
    job = cron_job(app, "detect_alerts_job")
    runs = croniter(job.cron, datetime(2026, 11, 30, 23, 20))
    assert [runs.get_next(datetime) for _ in range(2)] == [datetime(2026, 12, 1, 0, 15), datetime(2026, 12, 1, 1, 15)]
    assert job.queue_name == "meterdesk"


def test_the_scheduled_detection_fires_each_event_once_through_a_real_worker(app, tmp_path):
    with receiver() as server:
        with app.app_context():
            alert_world(utcnow())
            _, secret = webhook(server.url, ALERT_EVENTS, app.config["SECRET_KEY"])
            db.session.commit()
        job = cron_job(app, "detect_alerts_job")
        with app.app_context():
            first = job.enqueue(get_redis())
        with rq_worker(app.config, tmp_path / "worker.log", burst=True) as worker:
            worker.wait(120)
            assert worker.returncode == 0
        assert first.return_value(refresh=True) == ("1 silent asset(s), 1 usage anomaly(ies), 1 bucket(s) projected "
                                                    "over commit; 3 new event(s); 3 delivery job(s) queued.")
        server.wait_for(3)
        assert sorted(server.types()) == sorted(ALERT_EVENTS)
        assert all(signature_matches(secret, r.body, r.headers["X-Meterdesk-Signature"]) for r in server.requests)
        silent = next(r.json["data"] for r in server.requests if r.json["type"] == "asset.silent")
        assert silent["external_id"] == "quiet-vm" and silent["hours_silent"].startswith("30.0")
        # the next hour: the same conditions hold, nothing fires again
        with app.app_context():
            second = job.enqueue(get_redis())
        with rq_worker(app.config, tmp_path / "worker.log", burst=True) as worker:
            worker.wait(120)
        assert second.return_value(refresh=True).endswith("; 0 new event(s); 0 delivery job(s) queued.")
        with app.app_context():
            assert db.session.scalar(select(func.count(WebhookEvent.id))) == 3
            assert db.session.scalar(select(func.count(AlertEpisode.id))) == 3
            assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 3
        assert len(server.requests) == 3


def test_detect_alerts_command_runs_the_same_detection(app, runner):
    with app.app_context():
        alert_world(utcnow())
    result = runner.invoke(args=["detect-alerts"])
    assert result.exit_code == 0, result.output
    assert "1 silent asset(s), 1 usage anomaly(ies), 1 bucket(s) projected over commit; 3 new event(s)" in result.output
    again = runner.invoke(args=["detect-alerts"])
    assert "; 0 new event(s); 0 delivery job(s) queued." in again.output


def test_a_billing_run_announces_itself_after_its_lines_are_committed(app):
    period = previous_period(current_period_start())
    label = period_label(period)
    with receiver() as server:
        with app.app_context():
            gb = unit("gb")
            vm = asset("vm-1", owner())
            bucket("Storage", gb, [vm], commit="10", base_price="2")
            read(vm, gb, period + timedelta(days=2), value="12")
            _, secret = webhook(server.url, ["billing.run.finished", "billing.period.finalized"],
                                app.config["SECRET_KEY"])
            db.session.commit()
            run = start_job("billing", {"period": label, "finalize": True}, Requester("admin@example.com", "admin"),
                            label)
            work_jobs(app)
            lines = db.session.scalars(select(BillingReading).where(BillingReading.period_start == period)).all()
            assert [(line_.finalized, str(line_.final_cost)) for line_ in lines] == [(True, "20.00")]
        server.wait_for(2)
    finished, finalized = sorted((r.json for r in server.requests), key=lambda e: e["type"] != "billing.run.finished")
    assert finished["type"] == "billing.run.finished" and finished["data"] == {
        "period": label, "lines": 1, "total_cost": "20.00", "finalized": True, "kept_finalized": 0,
        "late_readings": 0, "job_run_id": run.id}
    assert finalized["type"] == "billing.period.finalized" and finalized["data"] == {
        "period": label, "lines": 1, "total_cost": "20.00", "job_run_id": run.id}
    assert all(signature_matches(secret, r.body, r.headers["X-Meterdesk-Signature"]) for r in server.requests)


def test_a_billing_run_without_finalize_announces_only_that_it_finished(app):
    label = period_label(previous_period(current_period_start()))
    with receiver() as server, app.app_context():
        webhook(server.url, ["billing.run.finished", "billing.period.finalized"], app.config["SECRET_KEY"])
        db.session.commit()
        start_job("billing", {"period": label}, Requester("admin@example.com", "admin"), label)
        work_jobs(app)
        server.wait_for(1)
        assert server.types() == ["billing.run.finished"]
        assert server.requests[0].json["data"]["lines"] == 0
