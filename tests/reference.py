"""A slow, obviously-correct Python rendering of the usage rules, to hold the SQL path (billing/usage.py) to.

Loads every relevant reading as an ORM object and aggregates in Python; only for tests and the bench baseline.
It shares no arithmetic with billing/usage.py or billing/time_weighted.py (only the BucketUsage result type):
time-weighted usage walks the sorted readings with datetimes and Decimals at 60 digits of precision.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.usage import BucketUsage
from models import Bucket, Reading

SIX = Decimal("0.000001")
NOTHING = Decimal("0.000000")
HOUR = timedelta(hours=1)


def six_places(value: Decimal) -> Decimal:
    """Half-up to 6 places, with room for every digit of the exact value first."""
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(value).quantize(SIX, rounding=ROUND_HALF_UP)


def time_weighted(readings: Sequence[tuple[datetime, Decimal]], start: datetime, end: datetime,
                  max_gap_minutes: int) -> tuple[Decimal, Decimal]:
    """One asset's (usage in unit·hours, gap hours) over [start, end), DESIGN.md "Time-weighted usage"."""
    max_gap = timedelta(minutes=max_gap_minutes)
    inside = sorted((ts, value) for ts, value in readings if start - max_gap <= ts < end)
    usage, covered = Decimal(0), timedelta(0)
    with localcontext() as ctx:
        ctx.prec = 60
        for i, (ts, value) in enumerate(inside):
            until = ts + max_gap if i + 1 == len(inside) else min(inside[i + 1][0], ts + max_gap)
            held = min(until, end) - max(ts, start)
            if held > timedelta(0):
                covered += held
                usage += value * Decimal(held // timedelta(microseconds=1)) / Decimal(3_600_000_000)
        gap = Decimal((end - start - covered) // timedelta(microseconds=1)) / Decimal(3_600_000_000)
    return six_places(usage), six_places(gap)


def aggregate(aggregation: str, readings: Sequence[tuple[datetime, Decimal]]) -> Decimal:
    """One asset's usage from its (ts, value) readings in the window (not time_weighted: see time_weighted)."""
    if not readings:
        return NOTHING
    values = [value for _, value in readings]
    if aggregation == "sum":
        return sum(values, NOTHING)
    if aggregation == "max":
        return max(values)
    if aggregation == "avg":
        return six_places(sum(values, NOTHING) / len(values))
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
        gaps: dict[int, Decimal] = {}
        for asset in bucket.assets:
            if not asset.enabled or asset.disregarded_at is not None:
                continue
            every = [(r.ts, r.value) for r in session.scalars(select(Reading).where(Reading.asset_id == asset.id))
                     if r.unit_type_id == bucket.unit_type_id]
            if bucket.aggregation == "time_weighted":
                usage, gaps[asset.id] = time_weighted(every, period_start, period_end,
                                                      bucket.unit_type.max_gap_minutes)
                per_asset[asset.id] = six_places(usage)
                continue
            readings = [(ts, value) for ts, value in every if period_start <= ts < period_end]
            per_asset[asset.id] = six_places(aggregate(bucket.aggregation, readings))
        result[bucket.id] = BucketUsage(six_places(sum(per_asset.values(), NOTHING)), per_asset, gaps)
    return result
