"""Time-weighted buckets' usage and gap hours per asset for the current period so far, for the bucket and asset
pages (plain functions; the pages only render what these return)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period
from billing.usage import BucketSpec, bucket_specs, usage_for_specs
from models import Asset, Bucket, UnitType, bucket_assets, utcnow


@dataclass(frozen=True, slots=True)
class AssetGap:
    """One asset of a time_weighted bucket: unit·hours so far this period and the hours no reading covered."""

    bucket_id: int
    bucket: str
    unit_type: str
    max_gap_minutes: int
    asset_id: int
    external_id: str
    usage: Decimal
    gap_hours: Decimal


def current_gaps(session: Session, *, bucket_id: int | None = None, asset_id: int | None = None,
                 now: datetime | None = None) -> list[AssetGap]:
    """Per (time_weighted bucket, eligible bound asset): usage and gap hours over [period start, now), for one
    bucket (`bucket_id`) or for every time_weighted bucket binding one asset (`asset_id`)."""
    now = now or utcnow()
    start = current_period_start(now)
    end = min(now, next_period(start))
    query = (select(Bucket.id, Bucket.name, UnitType.name.label("unit_type"), UnitType.max_gap_minutes)
             .join(UnitType, UnitType.id == Bucket.unit_type_id)
             .where(Bucket.aggregation == "time_weighted").order_by(Bucket.id))
    if bucket_id is not None:
        query = query.where(Bucket.id == bucket_id)
    if asset_id is not None:
        query = query.where(Bucket.id.in_(select(bucket_assets.c.bucket_id).where(bucket_assets.c.asset_id == asset_id)))
    buckets = {row.id: row for row in session.execute(query)}
    if not buckets or end <= start:
        return []
    specs = bucket_specs(session, list(buckets))
    if asset_id is not None:
        specs = [BucketSpec(s.bucket_id, s.unit_type_id, s.aggregation, tuple(a for a in s.asset_ids if a == asset_id))
                 for s in specs]
    usages = usage_for_specs(session, specs, start, end, whole_month=False)
    wanted = sorted({a for usage in usages.values() for a in usage.per_asset})
    external = dict(session.execute(select(Asset.id, Asset.external_id).where(Asset.id.in_(wanted))).all()) \
        if wanted else {}
    return [AssetGap(b, buckets[b].name, buckets[b].unit_type, buckets[b].max_gap_minutes, a,
                     external.get(a, ""), usage, usages[b].gap_hours[a])
            for b in sorted(usages) for a, usage in sorted(usages[b].per_asset.items())]
