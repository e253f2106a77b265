"""RQ side of webhooks: queue the deliveries of emitted events (the outbox) and run each delivery as a job.

A delivery job that gets no 2xx raises, and RQ retries it after WEBHOOK_RETRY_INTERVALS (default 60, 300, 900,
2400 s: 5 tries within about an hour). Delayed retries are RQ scheduled jobs: a worker must run with the scheduler
(`rq worker --with-scheduler`) for them to be queued again.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from rq import Retry
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from extensions import db
from models import Webhook, WebhookEvent, utcnow
from webhooks.events import emit_billing_events, emit_event, event_targets
from webhooks.sending import DeliveryFailed, delivered_since, last_delivery_id, send_event

DELIVERY_JOB_TIMEOUT = 60  # seconds: one POST (10 s timeout) and its log row
DISPATCH_BATCH = 1000
log = logging.getLogger(__name__)


def delivery_retry() -> Retry:
    intervals = current_app.config["WEBHOOK_RETRY_INTERVALS"]
    return Retry(max=len(intervals), interval=intervals)


def enqueue_delivery(webhook_id: int, event_id: str, since_id: int = 0) -> str:
    """Queue one delivery job (a redelivery passes the last logged attempt: it sends even after a success)."""
    from jobs.redis import get_queue

    job_id = f"webhook-{webhook_id}-{event_id}" + (f"-after-{since_id}" if since_id else "")
    get_queue().enqueue(deliver_webhook, webhook_id, event_id, since_id, job_id=job_id, retry=delivery_retry(),
                        job_timeout=DELIVERY_JOB_TIMEOUT, result_ttl=86400, failure_ttl=604800)
    return job_id


def dispatch_pending(session: Session) -> int:
    """Queue the deliveries of every event not dispatched yet; returns how many jobs were queued.

    Each event is claimed by one UPDATE (so two dispatchers never queue it twice); when the queue cannot be reached
    the claim is given back and a later dispatch (the next detect-alerts run) sends it."""
    pending = session.scalars(select(WebhookEvent.id).where(WebhookEvent.dispatched_at.is_(None))
                              .order_by(WebhookEvent.created_at, WebhookEvent.id).limit(DISPATCH_BATCH)).all()
    queued = 0
    for event_id in pending:
        claimed = session.execute(update(WebhookEvent).where(
            WebhookEvent.id == event_id, WebhookEvent.dispatched_at.is_(None)).values(dispatched_at=utcnow()))
        session.commit()
        if claimed.rowcount != 1:
            continue
        event = session.get(WebhookEvent, event_id)
        try:
            for hook in event_targets(session, event):
                enqueue_delivery(hook.id, event_id)
                queued += 1
        except Exception:  # noqa: BLE001 - Redis away: keep the event for the next dispatch
            log.warning("webhook event %s not queued: the job queue is unavailable", event_id, exc_info=True)
            session.rollback()
            session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(dispatched_at=None))
            session.commit()
            break
    return queued


def announce(session: Session) -> None:
    """Commit the events just emitted and queue their deliveries; never fails the caller's work."""
    try:
        session.commit()
        dispatch_pending(session)
    except Exception:  # noqa: BLE001
        session.rollback()
        log.warning("webhook events could not be recorded or queued", exc_info=True)


def announce_billing(summary: Any, run_id: int | None) -> None:
    """After a billing run committed its lines: `billing.run.finished` (and `billing.period.finalized`)."""
    try:
        emit_billing_events(db.session, summary, run_id)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        log.warning("billing webhook events not emitted", exc_info=True)
        return
    announce(db.session)


def send_test_event(session: Session, webhook: Webhook) -> tuple[WebhookEvent, bool]:
    """A `webhook.test` event for this webhook alone, committed and queued; the bool says whether it was queued."""
    event = emit_event(session, "webhook.test", {"webhook_id": webhook.id, "message": "Test event from Meterdesk"},
                       webhook_id=webhook.id)
    session.commit()
    dispatch_pending(session)
    session.refresh(event)
    return event, event.dispatched_at is not None


def redeliver(session: Session, webhook_id: int, event_id: str) -> str:
    """Queue the event to the webhook again, whatever earlier attempts gave."""
    return enqueue_delivery(webhook_id, event_id, since_id=last_delivery_id(session, webhook_id, event_id))


def deliver_webhook(webhook_id: int, event_id: str, since_id: int = 0) -> str:
    """RQ entry point: one delivery attempt, logged; raises DeliveryFailed (RQ retries) unless it got a 2xx."""
    session = db.session
    hook = session.get(Webhook, webhook_id)
    event = session.get(WebhookEvent, event_id)
    if hook is None or event is None:
        return "skipped: the webhook or the event no longer exists"
    if not hook.enabled:
        return "skipped: the webhook is disabled"
    if delivered_since(session, webhook_id, event_id, since_id):
        return "skipped: already delivered"
    delivery = send_event(session, hook, event, current_app.config["SECRET_KEY"])
    session.commit()
    if not delivery.succeeded:
        raise DeliveryFailed(f"webhook {webhook_id}, event {event_id}, attempt {delivery.attempt}: "
                             f"{delivery.error or delivery.status_code}")
    return f"delivered: HTTP {delivery.status_code} in {delivery.duration_ms} ms"
