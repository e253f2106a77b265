"""Alert detection: silent assets, usage anomalies and buckets projected over commit, each event once per episode."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from models import utcnow
from reports.anomalies import anomaly_subjects
from reports.over_commit import projected_over_subjects
from reports.silent import silent_subjects
from webhooks.episodes import sync_episodes


@dataclass(frozen=True)
class Detection:
    silent: int
    anomalies: int
    projected_over: int
    events: int

    @property
    def message(self) -> str:
        return (f"{self.silent} silent asset(s), {self.anomalies} usage anomaly(ies), {self.projected_over} bucket(s) "
                f"projected over commit; {self.events} new event(s)")


def detect_alerts(session: Session, threshold_pct: Decimal, now: datetime | None = None) -> Detection:
    """Find what holds now, open and clear episodes, and emit the events of new ones (the caller commits)."""
    now = now or utcnow()
    silent = silent_subjects(session, now)
    anomalous = anomaly_subjects(session, threshold_pct, now)
    over = projected_over_subjects(session, now)
    events = (sync_episodes(session, "asset.silent", silent, now)
              + sync_episodes(session, "usage.anomaly", anomalous, now)
              + sync_episodes(session, "bucket.projected_over", over, now))
    return Detection(len(silent), len(anomalous), len(over), len(events))
