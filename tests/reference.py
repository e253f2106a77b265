"""A slow, obviously-correct Python rendering of the usage rules, to hold the SQL path (billing/usage.py) to.

Loads every relevant reading as an ORM object and aggregates in Python; only for tests and the bench baseline.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.usage import ZERO, BucketUsage, mean, quantize
from models import Bucket, Reading


def aggregate(aggregation: str, readings: Sequence[tuple[datetime, Decimal]]) -> Decimal:
    """One asset's usage from its (ts, value) readings in the window."""
    if not readings:
        return ZERO
    values = [value for _, value in readings]
    if aggregation == "sum":
        return sum(values, ZERO)
    if aggregation == "max":
        return max(values)
    if aggregation == "avg":
        return mean(sum(values, ZERO), len(values))
    if aggregation == "last":
        return max(readings, key=lambda item: item[0])[1]
    if aggregation == "p95":
        ordered = sorted(values)
        rank = math.ceil(Decimal("0.95") * len(ordered))
        return ordered[rank - 1]
    if aggregation == "count":
        return Decimal(1)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def reference_usages(session: Session, period_start: datetime, period_end: datetime,
                     bucket_ids: list[int] | None = None) -> dict[int, BucketUsage]:
    """Same contract as billing.usage.bucket_usages, computed naively in Python."""
    buckets = session.scalars(select(Bucket).order_by(Bucket.id)).all()
    if bucket_ids is None:
        buckets = [b for b in buckets if b.enabled]
    else:
        buckets = [b for b in buckets if b.id in set(bucket_ids)]
    result: dict[int, BucketUsage] = {}
    for bucket in buckets:
        per_asset: dict[int, Decimal] = {}
        for asset in bucket.assets:
            if not asset.enabled or asset.disregarded_at is not None:
                continue
            readings = [
                (r.ts, r.value)
                for r in session.scalars(select(Reading).where(Reading.asset_id == asset.id))
                if r.unit_type_id == bucket.unit_type_id and period_start <= r.ts < period_end
            ]
            per_asset[asset.id] = quantize(aggregate(bucket.aggregation, readings))
        result[bucket.id] = BucketUsage(quantize(sum(per_asset.values(), ZERO)), per_asset)
    return result
