"""Buckets projected over their commit this period (the `bucket.projected_over` webhook event)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.periods import period_label
from models import Bucket, Projection
from reports.common import this_period


def projected_over_subjects(session: Session, now: datetime | None = None) -> dict[str, dict]:
    """Every enabled bucket whose projected usage this period is above its commit, as an episode subject
    (`<bucket id>:<period>`) and its event data."""
    period = this_period(now)
    label = period_label(period)
    rows = session.execute(
        select(Projection.bucket_id, Bucket.name, Projection.client_id, Projection.projected_usage, Bucket.commit,
               Projection.pct_of_commit, Projection.projected_cost)
        .join(Bucket, Bucket.id == Projection.bucket_id)
        .where(Projection.period_start == period, Bucket.enabled.is_(True), Projection.projected_usage > Bucket.commit)
    ).all()
    return {f"{bucket_id}:{label}": {
        "bucket_id": bucket_id, "bucket": name, "client_id": client_id, "period": label,
        "projected_usage": _text(projected), "commit": _text(commit),
        "pct_of_commit": None if pct is None else _text(pct), "projected_cost": _text(cost),
    } for bucket_id, name, client_id, projected, commit, pct, cost in rows}


def _text(value: Decimal | float) -> str:
    return format(Decimal(str(value)), "f")
