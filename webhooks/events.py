"""Webhook events: emitted into the `webhook_events` outbox in the caller's transaction, sent once it commits."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import WEBHOOK_EVENTS, WEBHOOK_TEST_EVENT, Webhook, WebhookEvent, utcnow


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def emit_event(session: Session, event_type: str, data: dict[str, Any], webhook_id: int | None = None,
               now: datetime | None = None) -> WebhookEvent:
    """Record an event for delivery (the caller commits; jobs/webhooks.dispatch_pending queues it afterwards).

    `webhook_id` sends it to that webhook alone (a test event); otherwise to every enabled webhook subscribed."""
    if event_type not in WEBHOOK_EVENTS and event_type != WEBHOOK_TEST_EVENT:
        raise ValueError(f"unknown webhook event {event_type!r}")
    event = WebhookEvent(id=new_event_id(), type=event_type, created_at=now or utcnow(), data=data,
                         webhook_id=webhook_id)
    session.add(event)
    return event


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body POSTed for an event: `{"id", "type", "created_at", "data"}`, the same bytes on every attempt."""
    created = event.created_at.isoformat().replace("+00:00", "Z")
    payload = {"id": event.id, "type": event.type, "created_at": created, "data": event.data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_targets(session: Session, event: WebhookEvent) -> list[Webhook]:
    """The enabled webhooks an event goes to: the one it names, or every one subscribed to its type."""
    if event.webhook_id is not None:
        hook = session.get(Webhook, event.webhook_id)
        return [hook] if hook is not None and hook.enabled else []
    hooks = session.scalars(select(Webhook).where(Webhook.enabled.is_(True)).order_by(Webhook.id)).all()
    return [hook for hook in hooks if event.type in (hook.events or [])]


def emit_billing_events(session: Session, summary: Any, run_id: int | None = None) -> list[WebhookEvent]:
    """`billing.run.finished` for a finished billing run, and `billing.period.finalized` when it finalized."""
    data = {"period": summary.period, "lines": summary.lines, "total_cost": format(summary.total_cost, "f"),
            "finalized": summary.finalized, "kept_finalized": summary.kept_finalized,
            "late_readings": summary.late_readings, "job_run_id": run_id}
    events = [emit_event(session, "billing.run.finished", data)]
    if summary.finalized:
        events.append(emit_event(session, "billing.period.finalized", {
            "period": summary.period, "lines": summary.lines,
            "total_cost": format(summary.total_cost, "f"), "job_run_id": run_id}))
    return events
