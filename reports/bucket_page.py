"""What a bucket's page shows: its bound assets with their usage this period, its billing lines and where this
period will land (computed now, with the billing rules)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period
from billing.pricing import Cost, bucket_status, pct_of_commit, rate_bucket_usage
from billing.projections import project_usage
from billing.usage import bucket_usages
from models import Asset, BillingReading, Bucket, Projection, bucket_assets

ASSETS_SHOWN = 200


@dataclass(frozen=True)
class BoundAsset:
    asset_id: int
    external_id: str
    name: str
    source_type: str
    enabled: bool
    disregarded: bool
    usage: Decimal | None  # None: the asset does not count (disabled or disregarded)


@dataclass(frozen=True)
class BucketProjection:
    period_start: datetime
    current_usage: Decimal
    projected_usage: Decimal
    cost: Cost
    pct_of_commit: Decimal | None
    status: str
    calculated_at: datetime | None  # when the stored projection was made; None: computed for this page now


def bound_assets(session: Session, bucket_id: int, now: datetime | None = None, limit: int = ASSETS_SHOWN
                 ) -> tuple[list[BoundAsset], int, Decimal]:
    """The bucket's bound assets (first `limit` by asset id) with their usage this period, how many are bound, and
    the bucket's usage so far (U, the billing rules' sum over counted assets)."""
    start = current_period_start(now or datetime.now(timezone.utc))
    usage = bucket_usages(session, start, next_period(start), [bucket_id]).get(bucket_id)
    per_asset = usage.per_asset if usage else {}
    rows = session.execute(
        select(Asset.id, Asset.external_id, Asset.name, Asset.source_type, Asset.enabled, Asset.disregarded_at)
        .join(bucket_assets, bucket_assets.c.asset_id == Asset.id)
        .where(bucket_assets.c.bucket_id == bucket_id).order_by(Asset.external_id, Asset.id).limit(limit)
    ).all()
    count = session.scalar(select(func.count()).select_from(bucket_assets)
                           .where(bucket_assets.c.bucket_id == bucket_id)) or 0
    shown = [BoundAsset(aid, ext, name, source, enabled, gone is not None, per_asset.get(aid))
             for aid, ext, name, source, enabled, gone in rows]
    return shown, count, usage.total if usage else Decimal("0.000000")


def projection(bucket: Bucket, usage: Decimal, now: datetime | None = None) -> BucketProjection:
    """Where this period lands for `bucket` given its usage so far (DESIGN.md's projection and cost formula)."""
    now = now or datetime.now(timezone.utc)
    start = current_period_start(now)
    projected = project_usage(usage, bucket.aggregation, start, next_period(start), now)
    return _projection(bucket, start, usage, projected, None)


def _projection(bucket: Bucket, start: datetime, usage: Decimal, projected: Decimal,
                calculated_at: datetime | None) -> BucketProjection:
    cost = rate_bucket_usage(projected, bucket.commit, bucket.base_price, bucket.overage_price)
    return BucketProjection(start, usage, projected, cost, pct_of_commit(projected, bucket.commit),
                            bucket_status(projected, bucket.commit), calculated_at)


def current_projection(session: Session, bucket: Bucket, usage: Decimal, now: datetime | None = None
                       ) -> BucketProjection:
    """This period's projection as the Projections page and the client page show it (the stored one, from the
    latest projection run); computed now from `usage` when no run has projected the bucket yet."""
    start = current_period_start(now or datetime.now(timezone.utc))
    stored = session.execute(
        select(Projection.current_usage, Projection.projected_usage, Projection.calculated_at)
        .where(Projection.bucket_id == bucket.id, Projection.period_start == start)
    ).first()
    if stored is None:
        return projection(bucket, usage, now)
    return _projection(bucket, start, stored.current_usage, stored.projected_usage, stored.calculated_at)


def bucket_lines(session: Session, bucket_id: int) -> list[BillingReading]:
    """The bucket's billing lines, latest period first."""
    return list(session.scalars(
        select(BillingReading).where(BillingReading.bucket_id == bucket_id)
        .order_by(BillingReading.period_start.desc(), BillingReading.id)
    ).all())
