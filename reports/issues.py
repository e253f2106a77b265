"""A client's open issues (silent assets, usage anomalies), for the client page."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from reports.anomalies import Anomaly, anomalies
from reports.silent import SilentAsset, silent_assets


@dataclass(frozen=True)
class OpenIssues:
    silent: list[SilentAsset]
    anomalies: list[Anomaly]

    @property
    def count(self) -> int:
        return len(self.silent) + len(self.anomalies)


def client_open_issues(session: Session, client_id: int, threshold_pct: Decimal, now: datetime | None = None,
                       limit: int = 50) -> OpenIssues:
    """The client's silent assets (longest silent first, at most `limit`) and its anomalous buckets."""
    return OpenIssues(silent_assets(session, now, client_id=client_id, limit=limit),
                      anomalies(session, threshold_pct, now, client_id=client_id))
