"""A bucket's usage for a time window, computed with set-based SQL (SQLite and PostgreSQL alike).

Rules (DESIGN.md "Billing rules"): for each bound, enabled, not-disregarded asset, aggregate that
asset's readings of the bucket's unit type inside [start, end) with the bucket's aggregation, then
sum across assets; an asset with no readings adds 0.

How: `Reading.value` is stored as integer millionths, so SQL's SUM and MAX are exact. One GROUP BY
(asset, unit type) gives SUM, MAX and COUNT for the pairs whose buckets need them; `last` and `p95`
come from ROW_NUMBER() window queries restricted to the pairs that need them (p95 by nearest rank:
the row whose 1-based rank r is the smallest with 100·r ≥ 95·n, i.e. r = ceil(0.95·n), in integer
arithmetic). `avg` is computed in Python from SUM and COUNT: Decimal(sum)/count quantized to 6
places, half-up. Results are read row by row (one row per asset and unit type), so memory does not
grow with the number of readings.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from models import AGGREGATIONS, MICRO, Asset, Bucket, Reading, bucket_assets

ZERO = Decimal("0.000000")
STREAM = {"stream_results": True, "yield_per": 2000}
Pair = tuple[int, int]
GROUPED = ("sum", "max", "avg", "count")


@dataclass(frozen=True)
class BucketUsage:
    """A bucket's usage U (`total`) and each eligible bound asset's share (`per_asset`, asset id -> usage)."""

    total: Decimal
    per_asset: dict[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """What usage needs to know about a bucket: its unit type, aggregation and eligible bound assets."""

    bucket_id: int
    unit_type_id: int
    aggregation: str
    asset_ids: tuple[int, ...]


def quantize(value: Decimal) -> Decimal:
    """Usage to 6 decimal places, half-up."""
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def mean(total: Decimal, count: int) -> Decimal:
    """avg = sum / count, to 6 places half-up (0 when there is nothing to average)."""
    return quantize(Decimal(total) / count) if count else ZERO


def bucket_specs(session: Session, bucket_ids: list[int] | None = None) -> list[BucketSpec]:
    """The buckets to bill (enabled ones when `bucket_ids` is None) with their enabled, not-disregarded assets."""
    query = select(Bucket.id, Bucket.unit_type_id, Bucket.aggregation).order_by(Bucket.id)
    if bucket_ids is None:
        query = query.where(Bucket.enabled.is_(True))
    else:
        query = query.where(Bucket.id.in_(list(bucket_ids)))
    buckets = session.execute(query).all()
    if not buckets:
        return []
    wanted = {row.id for row in buckets}
    bound: dict[int, list[int]] = defaultdict(list)
    links = (
        select(bucket_assets.c.bucket_id, bucket_assets.c.asset_id)
        .join(Asset, Asset.id == bucket_assets.c.asset_id)
        .where(Asset.enabled.is_(True), Asset.disregarded_at.is_(None))
        .order_by(bucket_assets.c.bucket_id, bucket_assets.c.asset_id)
    )
    if bucket_ids is not None:
        links = links.where(bucket_assets.c.bucket_id.in_(list(wanted)))
    for bucket_id, asset_id in session.execute(links):
        if bucket_id in wanted:
            bound[bucket_id].append(asset_id)
    return [BucketSpec(row.id, row.unit_type_id, row.aggregation, tuple(bound.get(row.id, ())))
            for row in buckets]


def _pairs(bucket_filter, aggregations: tuple[str, ...]):
    """Distinct (asset, unit type) pairs of eligible bound assets of the chosen buckets with these aggregations."""
    return (
        select(bucket_assets.c.asset_id, Bucket.unit_type_id)
        .join(Bucket, Bucket.id == bucket_assets.c.bucket_id)
        .join(Asset, Asset.id == bucket_assets.c.asset_id)
        .where(bucket_filter, Bucket.aggregation.in_(aggregations),
               Asset.enabled.is_(True), Asset.disregarded_at.is_(None))
        .distinct()
        .subquery("pairs")
    )


def _readings_of(query: Select, pairs, start: datetime, end: datetime) -> Select:
    return query.join(pairs, and_(Reading.asset_id == pairs.c.asset_id,
                                  Reading.unit_type_id == pairs.c.unit_type_id)).where(
        Reading.ts >= start, Reading.ts < end)


def _group_stats(session: Session, start: datetime, end: datetime, bucket_filter) -> dict[Pair, tuple]:
    """(asset, unit) -> (sum, max, count) over the window, for pairs of sum/max/avg/count buckets."""
    pairs = _pairs(bucket_filter, GROUPED)
    query = select(Reading.asset_id, Reading.unit_type_id, func.sum(Reading.value), func.max(Reading.value),
                   func.count()).group_by(Reading.asset_id, Reading.unit_type_id)
    query = _readings_of(query, pairs, start, end)
    return {(a, u): (total, top, count)
            for a, u, total, top, count in session.execute(query.execution_options(**STREAM))}


def _ranked_value(session: Session, start: datetime, end: datetime, bucket_filter, kind: str) -> dict[Pair, Decimal]:
    """(asset, unit) -> the value at the latest ts (`last`) or at nearest rank ceil(0.95·n) (`p95`)."""
    pairs = _pairs(bucket_filter, (kind,))
    partition = (Reading.asset_id, Reading.unit_type_id)
    order = Reading.ts.desc() if kind == "last" else Reading.value.asc()
    inner = select(
        Reading.asset_id, Reading.unit_type_id, Reading.value,
        func.row_number().over(partition_by=partition, order_by=order).label("rn"),
        func.count().over(partition_by=partition).label("n"),
    )
    ranked = _readings_of(inner, pairs, start, end).subquery("ranked")
    if kind == "last":
        pick = ranked.c.rn == 1
    else:
        pick = and_(100 * ranked.c.rn >= 95 * ranked.c.n, 100 * (ranked.c.rn - 1) < 95 * ranked.c.n)
    query = select(ranked.c.asset_id, ranked.c.unit_type_id, ranked.c.value).where(pick)
    return {(a, u): value for a, u, value in session.execute(query.execution_options(**STREAM))}


def usage_for_specs(session: Session, specs: list[BucketSpec], period_start: datetime, period_end: datetime,
                    progress: Callable[[int, str], None] | None = None) -> dict[int, BucketUsage]:
    """Usage of each spec'd bucket over [period_start, period_end), assembled from (up to) three set-based queries."""
    if not specs:
        return {}
    for spec in specs:
        if spec.aggregation not in AGGREGATIONS:
            raise ValueError(f"bucket {spec.bucket_id} has an unknown aggregation {spec.aggregation!r}")
    bucket_filter = Bucket.id.in_([spec.bucket_id for spec in specs])
    aggregations = {spec.aggregation for spec in specs}
    report = progress or (lambda percent, message: None)
    stats: dict[Pair, tuple] = {}
    last: dict[Pair, Decimal] = {}
    p95: dict[Pair, Decimal] = {}
    if aggregations & set(GROUPED):
        report(0, "sum, max, avg and count")
        stats = _group_stats(session, period_start, period_end, bucket_filter)
    if "last" in aggregations:
        report(50, "last readings")
        last = _ranked_value(session, period_start, period_end, bucket_filter, "last")
    if "p95" in aggregations:
        report(70, "95th percentiles")
        p95 = _ranked_value(session, period_start, period_end, bucket_filter, "p95")
    report(95, "adding up")

    result: dict[int, BucketUsage] = {}
    for spec in specs:
        per_asset = {asset_id: quantize(_asset_value(spec.aggregation, (asset_id, spec.unit_type_id), stats, last, p95))
                     for asset_id in spec.asset_ids}
        result[spec.bucket_id] = BucketUsage(quantize(sum(per_asset.values(), ZERO)), per_asset)
    return result


def _asset_value(aggregation: str, key: Pair, stats, last, p95) -> Decimal:
    if aggregation == "last":
        return last.get(key, ZERO)
    if aggregation == "p95":
        return p95.get(key, ZERO)
    found = stats.get(key)
    if found is None:
        return ZERO
    total, top, count = found
    if aggregation == "sum":
        return total
    if aggregation == "max":
        return top
    if aggregation == "avg":
        return mean(total, count)
    if aggregation == "count":
        return Decimal(1)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def bucket_usages(session: Session, period_start: datetime, period_end: datetime,
                  bucket_ids: list[int] | None = None) -> dict[int, BucketUsage]:
    """Usage U of each bucket (enabled ones when `bucket_ids` is None) over [period_start, period_end)."""
    return usage_for_specs(session, bucket_specs(session, bucket_ids), period_start, period_end)
