"""A client's page: its buckets with this period's projection, and its billing history."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from billing.pricing import bucket_status
from models import BillingReading, Bucket, Projection, UnitType
from reports.common import _aware, money_total
from reports.common import this_period


@dataclass(frozen=True)
class BucketLine:
    bucket_id: int
    name: str
    unit_type: str
    commit: Decimal
    base_price: Decimal
    overage_price: Decimal
    enabled: bool
    reviewed: bool
    current_usage: Decimal | None
    projected_cost: Decimal | None
    status: str | None  # "over" / "under" / "at" on the projected usage, None without a projection

    @property
    def over(self) -> bool:
        return self.status == "over"


@dataclass(frozen=True)
class HistoryPoint:
    period: datetime
    overage: Decimal
    buffer: Decimal
    final_cost: Decimal


def client_buckets(session: Session, client_id: int, now: datetime | None = None) -> list[BucketLine]:
    """The client's buckets with this period's current usage, projected cost and projected over/under status."""
    rows = session.execute(
        select(Bucket.id, Bucket.name, UnitType.name, Bucket.commit, Bucket.base_price, Bucket.overage_price,
               Bucket.enabled, Bucket.reviewed, Projection.current_usage, Projection.projected_usage,
               Projection.projected_cost)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .outerjoin(Projection, and_(Projection.bucket_id == Bucket.id, Projection.period_start == this_period(now)))
        .where(Bucket.client_id == client_id)
        .order_by(Bucket.name)
    ).all()
    return [
        BucketLine(bid, name, unit, commit, base, overage, enabled, reviewed, current,
                   projected_cost, None if projected is None else bucket_status(projected, commit))
        for bid, name, unit, commit, base, overage, enabled, reviewed, current, projected, projected_cost in rows
    ]


def billing_history(session: Session, client_id: int) -> list[HistoryPoint]:
    """Σ overage cost, Σ buffer cost and Σ final cost per billed period of the client, oldest first."""
    rows = session.execute(
        select(BillingReading.period_start, func.sum(BillingReading.overage_cost),
               func.sum(BillingReading.buffer_cost), func.sum(BillingReading.final_cost))
        .where(BillingReading.client_id == client_id)
        .group_by(BillingReading.period_start)
        .order_by(BillingReading.period_start)
    ).all()
    return [HistoryPoint(_aware(p), money_total(o), money_total(b), money_total(f)) for p, o, b, f in rows]
