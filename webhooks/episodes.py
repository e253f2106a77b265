"""Once per episode: an alert's event fires when its condition starts to hold, and again only after it cleared."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import AlertEpisode, WebhookEvent, utcnow
from webhooks.events import emit_event


def sync_episodes(session: Session, kind: str, holding: dict[str, dict[str, Any]],
                  now: datetime | None = None) -> list[WebhookEvent]:
    """Open an episode (and emit a `kind` event with its data) for each subject in `holding` without an open one;
    clear the open episodes whose subject no longer holds. The caller commits; two detectors racing meet the unique
    index on open episodes, and the loser's transaction fails whole (nothing fires twice)."""
    now = now or utcnow()
    open_rows = session.execute(
        select(AlertEpisode.id, AlertEpisode.subject).where(AlertEpisode.kind == kind, AlertEpisode.cleared_at.is_(None))
    ).all()
    open_subjects = {subject: episode_id for episode_id, subject in open_rows}
    cleared = [episode_id for subject, episode_id in open_subjects.items() if subject not in holding]
    for start in range(0, len(cleared), 500):
        session.execute(update(AlertEpisode).where(AlertEpisode.id.in_(cleared[start:start + 500]))
                        .values(cleared_at=now))
    events = []
    for subject in sorted(set(holding) - set(open_subjects)):
        event = emit_event(session, kind, holding[subject], now=now)
        session.add(AlertEpisode(kind=kind, subject=subject, opened_at=now, event_id=event.id))
        events.append(event)
    return events
