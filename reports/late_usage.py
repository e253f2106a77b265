"""Finalized periods with pending late readings (Billing Readings' Late usage panel; read-only).

A late reading of a finalized line is *pending* when it was received after the line was finalized, after the
period's waiver (if any) and after the bucket's latest finalized adjustment line for the period was computed: those
are billed, waived, or already billed by an adjustment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from billing.adjustments import late_differences, pending_adjustments
from billing.periods import period_label, period_of
from models import Asset, BillingReading, Bucket, LateUsageWaiver, Reading, bucket_assets

ZERO = Decimal("0.00")


@dataclass
class LatePeriod:
    """One finalized period with pending late readings."""

    period_start: datetime
    late_readings: int
    bucket_ids: list[int]
    difference: Decimal = ZERO
    posted: list[tuple[datetime, int, Decimal]] = field(default_factory=list)
    waived_at: datetime | None = None

    @property
    def period(self) -> str:
        return period_label(self.period_start)

    @property
    def buckets_affected(self) -> int:
        return len(self.bucket_ids)


def pending_late_readings(session: Session) -> dict[tuple[datetime, int], int]:
    """(period start, bucket id) -> pending late readings, for every finalized ordinary line that has some."""
    line = BillingReading.__table__
    adjustment = aliased(BillingReading)
    adjusted_at = (select(func.max(adjustment.calculated_at))
                   .where(adjustment.bucket_id == line.c.bucket_id, adjustment.adjusts_period == line.c.period_start,
                          adjustment.finalized.is_(True))
                   .correlate(line).scalar_subquery())
    waived_at = (select(LateUsageWaiver.waived_at).where(LateUsageWaiver.period_start == line.c.period_start)
                 .correlate(line).scalar_subquery())
    late = (
        select(func.count())
        .where(Reading.asset_id == bucket_assets.c.asset_id, Reading.unit_type_id == Bucket.unit_type_id,
               Reading.ts >= line.c.period_start, Reading.ts < line.c.period_end,
               Reading.received_at > line.c.finalized_at,
               or_(adjusted_at.is_(None), Reading.received_at > adjusted_at),
               or_(waived_at.is_(None), Reading.received_at > waived_at))
        .correlate(line, Bucket, bucket_assets)
        .scalar_subquery()
    )
    query = (
        select(line.c.period_start, line.c.bucket_id, func.sum(late))
        .select_from(line)
        .join(Bucket, Bucket.id == line.c.bucket_id)
        .join(bucket_assets, bucket_assets.c.bucket_id == Bucket.id)
        .join(Asset, and_(Asset.id == bucket_assets.c.asset_id, Asset.enabled.is_(True),
                          Asset.disregarded_at.is_(None)))
        .where(line.c.finalized.is_(True), line.c.adjusts_period.is_(None))
        .group_by(line.c.period_start, line.c.bucket_id)
    )
    return {(period_of(start), bucket_id): int(count) for start, bucket_id, count in session.execute(query) if count}


def late_periods(session: Session, with_difference: bool = True) -> list[LatePeriod]:
    """Finalized periods with pending late readings, latest first, with the $ difference of the affected buckets
    (recomputed now minus billed) and the adjustments posted for them but not finalized yet."""
    per_period: dict[datetime, dict[int, int]] = {}
    for (start, bucket_id), count in pending_late_readings(session).items():
        per_period.setdefault(start, {})[bucket_id] = count
    posted = pending_adjustments(session)
    waivers = {period_of(start): at for start, at in session.execute(
        select(LateUsageWaiver.period_start, LateUsageWaiver.waived_at))}
    result = []
    for start in sorted(per_period, reverse=True):
        buckets = per_period[start]
        row = LatePeriod(start, sum(buckets.values()), sorted(buckets), posted=posted.get(start, []),
                         waived_at=waivers.get(start))
        if with_difference:
            row.difference = sum((d.difference.final_cost for d in late_differences(session, start, row.bucket_ids)),
                                 ZERO)
        result.append(row)
    return result


def client_adjustments(session: Session, client_id: int, limit: int = 50) -> list[BillingReading]:
    """The client's adjustment lines, latest period first (its page lists them under Billing History)."""
    return list(session.scalars(
        select(BillingReading).where(BillingReading.client_id == client_id, BillingReading.adjusts_period.is_not(None))
        .order_by(BillingReading.period_start.desc(), BillingReading.adjusts_period.desc(), BillingReading.bucket_id)
        .limit(limit)))
