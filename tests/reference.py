"""A slow, obviously-correct Python rendering of the usage rules, to hold the SQL path (billing/usage.py) to.

Loads every relevant reading as an ORM object and aggregates in Python; only for tests and the bench baseline.
It imports nothing from the code it checks: its rounding, mean and percentile are written out here from
DESIGN.md's rules, so a bug in a shared helper cannot make both sides agree.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Bucket, Reading

SIX_PLACES = Decimal("0.000001")
NOTHING = Decimal("0.000000")


class ReferenceUsage(NamedTuple):
    """A bucket's usage U (`total`) and each eligible bound asset's share (asset id -> usage)."""

    total: Decimal
    per_asset: dict[int, Decimal]


def six_places(value: Decimal) -> Decimal:
    """Usage is kept to 6 decimal places, rounded half-up (0.0000025 -> 0.000003)."""
    return Decimal(value).quantize(SIX_PLACES, rounding=ROUND_HALF_UP)


def aggregate(aggregation: str, readings: Sequence[tuple[datetime, Decimal]]) -> Decimal:
    """One asset's usage from its (ts, value) readings in the window."""
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
                     bucket_ids: list[int] | None = None) -> dict[int, ReferenceUsage]:
    """Same contract as billing.usage.bucket_usages, computed naively in Python."""
    buckets = session.scalars(select(Bucket).order_by(Bucket.id)).all()
    if bucket_ids is None:
        buckets = [b for b in buckets if b.enabled]
    else:
        buckets = [b for b in buckets if b.id in set(bucket_ids)]
    result: dict[int, ReferenceUsage] = {}
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
            per_asset[asset.id] = six_places(aggregate(bucket.aggregation, readings))
        result[bucket.id] = ReferenceUsage(six_places(sum(per_asset.values(), NOTHING)), per_asset)
    return result
