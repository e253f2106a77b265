"""Health: database, queue depth, live workers, last billing and projection runs; never raises, never leaks."""
import json
import time

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, Worker
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from extensions import db
from jobs.redis import get_redis
from jobs.runs import create_run, finish
from reports.health import health


def test_all_parts_up_with_no_worker(app):
    with app.app_context():
        report = health(db.session, get_redis())
    assert report == {"db_ok": True, "last_billing": None, "last_projection": None, "queue_depth": 0,
                      "workers": 0, "redis_ok": True, "ok": False}


def test_last_runs_queue_depth_and_a_live_worker(app):
    with app.app_context():
        billing = create_run("billing", {"period": "2026-10"}, "t", "2026-10")
        finish(billing.id, "failed", "boom")
        projection = create_run("projection", {}, "t", "2026-11")
        finish(projection.id, "done", "Projected 3 buckets")
        projection_id = projection.id
        conn = get_redis()
        queue = Queue("meterdesk", connection=conn)
        queue.enqueue("builtins.print", "queued")
        queue.enqueue("builtins.print", "queued")
        worker = Worker([queue], connection=conn, name=f"health-test-{time.monotonic_ns()}")
        worker.register_birth()
        try:
            report = health(db.session, conn)
        finally:
            worker.register_death()
        after = health(db.session, conn)
    assert report["last_billing"]["status"] == "failed" and report["last_billing"]["message"] == "boom"
    assert report["last_billing"]["finished_at"] is not None
    assert (report["last_projection"]["status"], report["last_projection"]["id"]) == ("done", projection_id)
    assert (report["queue_depth"], report["workers"], report["ok"]) == (2, 1, True)
    assert (after["workers"], after["ok"]) == (0, False)


def test_redis_down_is_reported_not_raised(app):
    dead = Redis(unix_socket_path="/nonexistent/redis.sock", socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    with app.app_context():
        report = health(db.session, dead)
        none = health(db.session, None)
    assert (report["redis_ok"], report["queue_depth"], report["workers"], report["db_ok"]) == (False, None, None, True)
    assert none["redis_ok"] is False


def test_database_down_is_reported_not_raised(app, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/nothing.db")
    with app.app_context():
        report = health(Session(engine), get_redis())
    assert (report["db_ok"], report["last_billing"], report["last_projection"]) == (False, None, None)
    assert report["redis_ok"] is True


def test_healthz_needs_no_login_and_shows_a_live_worker(app, client, settings):
    with app.app_context():
        run = create_run("projection", {}, "t", "2026-11")
        finish(run.id, "failed", f"could not reach {settings['DATABASE_URL']}")
        conn = get_redis()
        worker = Worker([Queue("meterdesk", connection=conn)], connection=conn, name=f"hz-{time.monotonic_ns()}")
        worker.register_birth()
    try:
        response = client.get("/healthz")
    finally:
        worker.register_death()
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert (body["db_ok"], body["redis_ok"], body["workers"], body["queue_depth"], body["ok"]) == (
        True, True, 1, 0, True)
    assert body["last_projection"]["status"] == "failed" and "message" not in body["last_projection"]
    assert body["last_billing"] is None
    text = json.dumps(body)
    for secret in (settings["DATABASE_URL"], settings["REDIS_URL"], settings["SECRET_KEY"]):
        assert secret not in text
    down = client.get("/healthz").get_json()
    assert (down["workers"], down["ok"]) == (0, False)


def test_healthz_answers_503_when_redis_is_down(settings):
    from app import create_app

    broken = create_app(dict(settings, REDIS_URL="unix:///nonexistent/redis.sock"))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["redis_ok"] is False and response.get_json()["db_ok"] is True
