"""Usage anomalies: a bucket whose projected usage this period strays from the mean of its last 3 billed periods."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import period_label
from models import BillingReading, Bucket, Client, Projection, UnitType
from reports.common import this_period

BASELINE_PERIODS = 3
MIN_DIFFERENCE = Decimal(1)
USAGE = Decimal("0.000001")
PCT = Decimal("0.01")


@dataclass(frozen=True)
class Anomaly:
    bucket_id: int
    bucket: str
    client_id: int
    client: str
    unit_type: str
    projected_usage: Decimal
    baseline_usage: Decimal
    baseline_periods: int
    pct_change: Decimal | None  # None when the baseline is 0

    @property
    def direction(self) -> str:
        return "up" if self.projected_usage > self.baseline_usage else "down"


def baselines(session: Session, before: datetime, bucket_ids: list[int] | None = None) -> dict[int, tuple[Decimal, int]]:
    """Per bucket, (mean usage, number of periods) over its last 3 billed periods before `before` (those with a line),
    the mean exact in Decimal, to 6 places half-up."""
    rank = func.row_number().over(partition_by=BillingReading.bucket_id,
                                  order_by=BillingReading.period_start.desc()).label("rank")
    ranked = select(BillingReading.bucket_id, BillingReading.total_usage, rank).where(
        BillingReading.period_start < before)
    if bucket_ids is not None:
        ranked = ranked.where(BillingReading.bucket_id.in_(bucket_ids))
    ranked = ranked.subquery()
    rows = session.execute(select(ranked.c.bucket_id, ranked.c.total_usage)
                           .where(ranked.c.rank <= BASELINE_PERIODS)).all()
    sums: dict[int, list[Decimal]] = {}
    for bucket_id, usage in rows:
        sums.setdefault(bucket_id, []).append(Decimal(str(usage)))
    return {bucket_id: ((sum(values, Decimal(0)) / len(values)).quantize(USAGE, rounding=ROUND_HALF_UP), len(values))
            for bucket_id, values in sums.items()}


def is_anomalous(projected: Decimal, baseline: Decimal, threshold_pct: Decimal) -> bool:
    """Projected usage differs from the baseline by more than `threshold_pct` percent of it, and by at least 1 unit
    (against a baseline of 0, any difference of at least 1 unit)."""
    difference = abs(projected - baseline)
    return difference >= MIN_DIFFERENCE and difference * 100 > threshold_pct * baseline


def pct_change(projected: Decimal, baseline: Decimal) -> Decimal | None:
    if baseline == 0:
        return None
    return (100 * (projected - baseline) / baseline).quantize(PCT, rounding=ROUND_HALF_UP)


def anomalies(session: Session, threshold_pct: Decimal, now: datetime | None = None,
              client_id: int | None = None, bucket_id: int | None = None) -> list[Anomaly]:
    """Enabled buckets whose projection this period is anomalous, largest change first (a zero baseline first)."""
    period = this_period(now)
    query = (
        select(Projection.bucket_id, Bucket.name, Projection.client_id, Client.name, UnitType.name,
               Projection.projected_usage)
        .join(Bucket, Bucket.id == Projection.bucket_id)
        .join(Client, Client.id == Projection.client_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(Projection.period_start == period, Bucket.enabled.is_(True))
    )
    if client_id is not None:
        query = query.where(Projection.client_id == client_id)
    if bucket_id is not None:
        query = query.where(Projection.bucket_id == bucket_id)
    projected_rows = session.execute(query).all()
    if not projected_rows:
        return []
    base = baselines(session, period, [row[0] for row in projected_rows] if len(projected_rows) <= 1000 else None)
    found = []
    for bid, bucket, cid, client, unit, projected in projected_rows:
        if bid not in base:
            continue
        projected = Decimal(str(projected)).quantize(USAGE)
        mean, periods = base[bid]
        if is_anomalous(projected, mean, threshold_pct):
            found.append(Anomaly(bid, bucket, cid, client, unit, projected, mean, periods, pct_change(projected, mean)))
    return sorted(found, key=lambda a: (a.pct_change is not None, -abs(a.pct_change or 0), a.client, a.bucket))


def anomaly_subjects(session: Session, threshold_pct: Decimal, now: datetime | None = None) -> dict[str, dict]:
    """Every anomaly as a `usage.anomaly` episode subject (`<bucket id>:<period>`) and its event data."""
    label = period_label(this_period(now))
    return {f"{a.bucket_id}:{label}": {
        "bucket_id": a.bucket_id, "bucket": a.bucket, "client_id": a.client_id, "period": label,
        "projected_usage": str(a.projected_usage), "baseline_usage": str(a.baseline_usage),
        "baseline_periods": a.baseline_periods,
        "pct_change": None if a.pct_change is None else str(a.pct_change),
    } for a in anomalies(session, threshold_pct, now)}
