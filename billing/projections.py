"""Projections for the current period: where each enabled bucket's usage and cost will land at month end.

Rules (DESIGN.md "Billing rules"): at time t, a `sum` bucket's usage U projects to
U·(period length)/(t − period start), and to U itself in the first hour of the period; a
`time_weighted` bucket projects the same way (DESIGN.md "Time-weighted usage"): its U is measured
over [period start, t), the latest reading holding until t at most, so the unit·hours so far are
prorated to the whole period; every other aggregation projects to U. The projected cost is billing.pricing.rate_bucket_usage of the
projected usage (its final cost) and % of commit is 100·projected/C (empty when C = 0): the
Projections page and the reports read "% of commit" of the projected usage.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period
from billing.pricing import pct_of_commit, rate_bucket_usage
from billing.progress import Progress
from billing.usage import bucket_usages
from database.upsert import conflict_insert
from models import MICRO, Bucket, Projection, utcnow

FIRST_HOUR = timedelta(hours=1)
PRORATED = ("sum", "time_weighted")  # aggregations whose usage grows with time: projected U·length/elapsed
CHUNK = 1000


def _micros(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def project_usage(usage: Decimal, aggregation: str, period_start: datetime, period_end: datetime,
                  now: datetime) -> Decimal:
    """Usage expected at period end: U·length/elapsed for `sum` and `time_weighted` (U in the first hour), else U."""
    usage = Decimal(usage)
    if aggregation not in PRORATED:
        return usage.quantize(MICRO, rounding=ROUND_HALF_UP)
    elapsed = min(now, period_end) - period_start
    if elapsed < FIRST_HOUR:
        return usage.quantize(MICRO, rounding=ROUND_HALF_UP)
    length = period_end - period_start
    return (usage * _micros(length) / _micros(elapsed)).quantize(MICRO, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ProjectionRow:
    """One bucket's projection, as stored."""

    bucket_id: int
    client_id: int
    current_usage: Decimal
    projected_usage: Decimal
    projected_cost: Decimal
    pct_of_commit: Decimal | None


@dataclass(frozen=True, slots=True)
class ProjectionSummary:
    period_start: datetime
    calculated_at: datetime
    buckets: int
    removed: int
    over_commit: int

    def message(self) -> str:
        return (f"Projected {self.buckets} buckets for {self.period_start:%Y-%m} "
                f"({self.over_commit} over commit, {self.removed} stale removed).")


def project_bucket(bucket: Bucket | object, usage: Decimal, period_start: datetime, period_end: datetime,
                   now: datetime) -> ProjectionRow:
    """Projection of one bucket (anything with id, client_id, aggregation, commit, base_price, overage_price)."""
    projected = project_usage(usage, bucket.aggregation, period_start, period_end, now)
    cost = rate_bucket_usage(projected, bucket.commit, bucket.base_price, bucket.overage_price)
    return ProjectionRow(bucket.id, bucket.client_id, Decimal(usage), projected, cost.final_cost,
                         pct_of_commit(projected, bucket.commit))


def _upsert(session: Session, rows: list[dict]) -> None:
    """Insert the projections, replacing the one stored for the same (bucket, period)."""
    stmt = conflict_insert(session, Projection)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Projection.bucket_id, Projection.period_start],
        set_={name: stmt.excluded[name] for name in
              ("client_id", "current_usage", "projected_usage", "projected_cost", "pct_of_commit", "calculated_at")},
    )
    session.execute(stmt, rows)


def run_projections(session: Session, now: datetime | None = None,
                    progress: Progress | None = None) -> ProjectionSummary:
    """Project every enabled bucket for the period containing `now`; drop projections of the others.

    Commits each chunk of rows before reporting progress (progress is written on its own connection)."""
    now = now or utcnow()
    period_start = current_period_start(now)
    period_end = next_period(period_start)
    report = progress or (lambda percent, message: None)
    report(5, "Reading usage")
    usages = bucket_usages(session, period_start, min(now + timedelta(microseconds=1), period_end))
    buckets = [bucket for bucket in session.execute(
        select(Bucket.id, Bucket.client_id, Bucket.aggregation, Bucket.commit, Bucket.base_price,
               Bucket.overage_price).where(Bucket.enabled.is_(True)).order_by(Bucket.id)
    ) if bucket.id in usages]
    over = 0
    for start in range(0, len(buckets), CHUNK):
        rows = []
        for bucket in buckets[start:start + CHUNK]:
            row = project_bucket(bucket, usages[bucket.id].total, period_start, period_end, now)
            over += row.projected_usage > bucket.commit
            rows.append({"bucket_id": row.bucket_id, "client_id": row.client_id, "period_start": period_start,
                         "current_usage": row.current_usage, "projected_usage": row.projected_usage,
                         "projected_cost": row.projected_cost, "pct_of_commit": row.pct_of_commit,
                         "calculated_at": now})
        _upsert(session, rows)
        session.commit()
        report(10 + 85 * min(start + CHUNK, len(buckets)) // max(len(buckets), 1),
               f"Projected {min(start + CHUNK, len(buckets))} of {len(buckets)} buckets")
    removed = session.execute(delete(Projection).where(
        Projection.period_start == period_start, Projection.calculated_at != now)).rowcount or 0
    session.commit()
    return ProjectionSummary(period_start, now, len(buckets), removed, over)
