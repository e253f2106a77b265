"""Deliveries against a real HTTP receiver on 127.0.0.1: signed JSON, every attempt logged, retried on failure by RQ
(a real `rq worker --with-scheduler` for the delayed retries), never delivered twice after a success."""
from __future__ import annotations

import json
import time

from sqlalchemy import select

import webhooks.sending
from extensions import db
from tests.conftest import work_jobs
from jobs.redis import get_queue, get_redis
from jobs.webhooks import dispatch_pending, enqueue_delivery, redeliver, send_test_event
from models import Webhook, WebhookDelivery, WebhookEvent
from webhooks.events import emit_event
from webhooks.signing import signature_matches
from tests.webhooks.helpers import webhook
from tests.webhooks.receiver import receiver
from tests.webhooks.worker import rq_worker, wait_until


def deliveries(app, webhook_id: int) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(WebhookDelivery.attempt, WebhookDelivery.status_code, WebhookDelivery.event_type,
                   WebhookDelivery.error).where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id)).all()]


def work_in_process(app) -> None:
    with app.app_context():
        work_jobs(app)


def test_a_delivery_is_signed_json_with_the_event_and_logged(app):
    with receiver() as hook_server, app.app_context():
        hook, secret = webhook(hook_server.url, ["asset.silent"], app.config["SECRET_KEY"])
        db.session.commit()
        event, queued = send_test_event(db.session, hook)
        assert queued
        hook_id, event_id, created = hook.id, event.id, event.created_at
        work_in_process(app)
        [got] = hook_server.wait_for(1)
    assert got.path == "/hook" and got.headers["Content-Type"] == "application/json"
    assert signature_matches(secret, got.body, got.headers["X-Meterdesk-Signature"])
    assert got.headers["X-Meterdesk-Signature"].startswith("sha256=") and len(got.headers["X-Meterdesk-Signature"]) == 71
    assert got.headers["X-Meterdesk-Event"] == "webhook.test" and got.headers["X-Meterdesk-Event-Id"] == event_id
    assert json.loads(got.body) == {"id": event_id, "type": "webhook.test",
                                    "created_at": created.isoformat().replace("+00:00", "Z"),
                                    "data": {"webhook_id": hook_id, "message": "Test event from Meterdesk"}}
    assert deliveries(app, hook_id) == [(1, 200, "webhook.test", "")]


def test_events_go_to_the_enabled_webhooks_subscribed_to_their_type(app):
    with receiver() as server, app.app_context():
        key = app.config["SECRET_KEY"]
        subscribed, _ = webhook(server.url + "?a", ["asset.silent", "usage.anomaly"], key)
        other, _ = webhook(server.url + "?b", ["billing.run.finished"], key)
        disabled, _ = webhook(server.url + "?c", ["asset.silent"], key, enabled=False)
        emit_event(db.session, "asset.silent", {"asset_id": 7})
        db.session.commit()
        assert dispatch_pending(db.session) == 1 and dispatch_pending(db.session) == 0
        work_in_process(app)
        assert [(r.path, r.json["type"]) for r in server.wait_for(1)] == [("/hook?a", "asset.silent")]
        assert deliveries(app, other.id) == deliveries(app, disabled.id) == []


def test_retried_with_backoff_on_500_until_it_succeeds_and_never_delivered_twice(settings, request, tmp_path):
    settings["WEBHOOK_RETRY_INTERVALS"] = "2,4,1,1"
    app = request.getfixturevalue("app")
    with receiver(statuses=[500, 503]) as flaky, receiver(statuses=[500] * 10) as broken, app.app_context():
        key = app.config["SECRET_KEY"]
        (flaky_hook, flaky_secret), (broken_hook, _) = (webhook(flaky.url, ["billing.run.finished"], key),
                                                        webhook(broken.url, ["billing.run.finished"], key))
        event = emit_event(db.session, "billing.run.finished", {"period": "2026-10"})
        db.session.commit()
        event_id, flaky_id, broken_id = event.id, flaky_hook.id, broken_hook.id
        assert dispatch_pending(db.session) == 2
        with rq_worker(app.config, tmp_path / "worker.log"):
            flaky.wait_for(3, timeout=60)
            broken.wait_for(5, timeout=60)
            wait_until(lambda: len(deliveries(app, broken_id)) == 5)
            assert len(flaky.requests) == 3 and len(broken.requests) == 5
            # a delivery job of the same event queued again finds the success and sends nothing
            enqueue_delivery(flaky_id, event_id)
            wait_until(lambda: get_queue().count == 0, timeout=30)
            redeliver(db.session, flaky_id, event_id)  # an explicit redelivery sends once more
            flaky.wait_for(4, timeout=30)
            wait_until(lambda: len(deliveries(app, flaky_id)) == 4)
            time.sleep(2.5)  # past every retry interval: nothing else arrives
    assert len(flaky.requests) == 4 and len(broken.requests) == 5, "5 tries, then RQ gives up"
    assert [row[:2] for row in deliveries(app, flaky_id)] == [(1, 500), (2, 503), (3, 200), (4, 200)]
    assert "HTTP 500" in deliveries(app, flaky_id)[0][3] and "receiver says no" in deliveries(app, flaky_id)[0][3]
    assert [row[:2] for row in deliveries(app, broken_id)] == [(n, 500) for n in range(1, 6)]
    bodies = {r.body for r in flaky.requests}
    assert len(bodies) == 1, "every attempt posts the same bytes"
    assert all(signature_matches(flaky_secret, r.body, r.headers["X-Meterdesk-Signature"]) for r in flaky.requests)
    gaps = [b.at - a.at for a, b in zip(flaky.requests, flaky.requests[1:3])]
    # RQ stores a retry's time in whole seconds, so a retry may run up to 1 s before its interval is over
    assert gaps[0] >= 1.0 and gaps[1] >= 3.0, f"backoff between tries: {gaps}"


def test_a_receiver_that_does_not_answer_in_time_is_an_attempt_with_the_timeout_logged(app, monkeypatch):
    monkeypatch.setattr(webhooks.sending, "TIMEOUT_SECONDS", 1)
    with receiver(delay=3) as slow, app.app_context():
        hook, _ = webhook(slow.url, ["asset.silent"], app.config["SECRET_KEY"])
        db.session.commit()
        send_test_event(db.session, hook)
        work_in_process(app)
        [(attempt, status, _, error)] = deliveries(app, hook.id)
    assert (attempt, status, error) == (1, None, "no answer within 1 s")


def test_redirects_are_not_followed_and_a_closed_port_is_logged(app):
    with receiver(statuses=[302]) as server, app.app_context():
        key = app.config["SECRET_KEY"]
        moved, _ = webhook(server.url, ["asset.silent"], key)
        closed, _ = webhook("http://127.0.0.1:9/hook", ["asset.silent"], key)
        db.session.commit()
        send_test_event(db.session, moved)
        send_test_event(db.session, closed)
        work_in_process(app)
        assert len(server.requests) == 1
        assert "HTTP 302" in deliveries(app, moved.id)[0][3] and "redirects are not followed" in deliveries(
            app, moved.id)[0][3]
        assert deliveries(app, closed.id)[0][1] is None and "ConnectionError" in deliveries(app, closed.id)[0][3]


def test_events_wait_in_the_outbox_while_the_queue_is_down(app, settings):
    from app import create_app

    down = create_app(dict(settings, REDIS_URL="redis://127.0.0.1:9/0"))
    with down.app_context():
        hook, _ = webhook("http://127.0.0.1:9/hook", ["asset.silent"], down.config["SECRET_KEY"])
        emit_event(db.session, "asset.silent", {"asset_id": 1})
        db.session.commit()
        assert dispatch_pending(db.session) == 0
        assert db.session.scalar(select(WebhookEvent.dispatched_at)) is None
    with app.app_context():
        assert dispatch_pending(db.session) == 1
        assert db.session.scalar(select(WebhookEvent.dispatched_at)) is not None
        assert get_queue().count == 1


def test_a_deleted_webhook_takes_its_log_and_its_queued_deliveries_send_nothing(app):
    with receiver() as server, app.app_context():
        hook, _ = webhook(server.url, ["asset.silent"], app.config["SECRET_KEY"])
        db.session.commit()
        send_test_event(db.session, hook)
        db.session.delete(db.session.get(Webhook, hook.id))
        db.session.commit()
        work_in_process(app)
        assert server.requests == [] and db.session.scalars(select(WebhookDelivery)).all() == []
