"""Sending one event to one webhook: a signed POST with a 10 s timeout, every attempt logged."""
from __future__ import annotations

import time

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Webhook, WebhookDelivery, WebhookEvent, utcnow
from webhooks.events import event_body
from webhooks.signing import SIGNATURE_HEADER, SecretUnreadable, open_secret, signature

TIMEOUT_SECONDS = 10
USER_AGENT = "Meterdesk-Webhooks/1"
MAX_ERROR = 500


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx (RQ retries the delivery job on this)."""


def delivered_since(session: Session, webhook_id: int, event_id: str, since_id: int = 0) -> bool:
    """Whether the event reached the webhook (a 2xx attempt) in an attempt logged after delivery `since_id`."""
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.event_id == event_id,
        WebhookDelivery.id > since_id, WebhookDelivery.status_code >= 200, WebhookDelivery.status_code < 300,
    ).limit(1)) is not None


def last_delivery_id(session: Session, webhook_id: int, event_id: str) -> int:
    return session.scalar(select(func.max(WebhookDelivery.id)).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.event_id == event_id)) or 0


def post_event(webhook: Webhook, event: WebhookEvent, secret_key: str) -> tuple[int | None, int, str]:
    """POST the event's body, signed; returns (status code or None, duration in ms, error text or "")."""
    body = event_body(event)
    started = time.monotonic()
    try:
        secret = open_secret(webhook.secret, secret_key)
    except SecretUnreadable as exc:
        return None, 0, str(exc)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, SIGNATURE_HEADER: signature(secret, body),
               "X-Meterdesk-Event": event.type, "X-Meterdesk-Event-Id": event.id}
    try:
        with requests.post(webhook.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False,
                           stream=True) as response:
            status = response.status_code
            error = "" if 200 <= status < 300 else _answer_text(response)
    except requests.Timeout:
        return None, _ms(started), f"no answer within {TIMEOUT_SECONDS} s"
    except requests.RequestException as exc:
        return None, _ms(started), f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    return status, _ms(started), error


def send_event(session: Session, webhook: Webhook, event: WebhookEvent, secret_key: str) -> WebhookDelivery:
    """Make one attempt and log it (the caller commits). Attempts are numbered per webhook and event."""
    attempt = session.scalar(select(func.count(WebhookDelivery.id)).where(
        WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.event_id == event.id)) + 1
    status, duration, error = post_event(webhook, event, secret_key)
    delivery = WebhookDelivery(webhook_id=webhook.id, event_id=event.id, event_type=event.type, attempt=attempt,
                               status_code=status, duration_ms=duration, error=error, created_at=utcnow())
    session.add(delivery)
    return delivery


def _answer_text(response: requests.Response) -> str:
    reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if 300 <= response.status_code < 400:
        return f"{reason}: redirects are not followed (Location: {response.headers.get('Location', '')})"[:MAX_ERROR]
    try:
        chunk = next(response.iter_content(chunk_size=MAX_ERROR), b"")
    except requests.RequestException:
        chunk = b""
    text = chunk.decode("utf-8", "replace").strip()
    return f"{reason}: {text}"[:MAX_ERROR] if text else reason


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
