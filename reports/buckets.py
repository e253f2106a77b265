"""Figures the Buckets grid shows beside each bucket."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.periods import current_period_start
from models import Projection


def projected_current_usage(session: Session, bucket_ids: Sequence[int], period_start: datetime | None = None
                  ) -> dict[int, Decimal]:
    """Bucket id -> its projected usage so far in the period (this one by default); buckets not projected are absent."""
    if not bucket_ids:
        return {}
    start = period_start or current_period_start()
    return dict(session.execute(
        select(Projection.bucket_id, Projection.current_usage)
        .where(Projection.bucket_id.in_(bucket_ids), Projection.period_start == start)
    ).all())
