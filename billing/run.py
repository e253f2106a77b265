"""A billing run for a period: usage of every enabled bucket, its cost, and its billing line (plain function).

Everything is computed first (read-only, with progress), then written in ONE short transaction: the
period's unfinalized lines are deleted and the new lines inserted set-based, both audited. A failure
leaves the data as it was. Finalized lines never change; readings that arrive for them later are
counted as *late* (see `late_readings`), never billed silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from billing.archive import check_not_archived
from billing.periods import current_period_start, period_bounds, period_label, period_of
from billing.pricing import bucket_status, rate_bucket_usage
from billing.progress import Progress
from billing.terms import terms_for_period
from billing.usage import BucketUsage, bucket_specs, usage_for_specs
from database.audit import audit_bulk, audit_rows
from models import Asset, BillingReading, Bucket, Reading, UnitType, bucket_assets, utcnow

AUDITED_FIELDS = ("client_id", "bucket_id", "period_start", "total_usage", "commit", "base_price", "overage_price",
                  "base_cost", "overage_cost", "buffer_units", "buffer_cost", "overage_units", "final_cost",
                  "finalized")


@dataclass(frozen=True)
class BillingSummary:
    period: str
    lines: int
    total_cost: Decimal
    kept_finalized: int
    late_readings: int
    finalized: bool
    adjustments: int = 0

    @property
    def message(self) -> str:
        done = "billed and finalized" if self.finalized else "billed"
        text = f"{self.period}: {self.lines} bucket(s) {done}, total ${self.total_cost:,.2f}"
        if self.kept_finalized:
            text += f"; {self.kept_finalized} finalized line(s) kept unchanged"
        if self.adjustments:
            text += f"; {self.adjustments} adjustment line(s) finalized with it"
        if self.late_readings:
            text += f" ({self.late_readings} late reading(s) not billed)"
        return text + "."


def _quiet(percent: int, message: str = "") -> None:
    """The progress callback when nobody listens."""


def check_billable(period_start: datetime, finalize: bool = False, now: datetime | None = None) -> None:
    """A period can be billed once it has started, and finalized once it has ended; ValueError otherwise."""
    current = current_period_start(now)
    label = period_label(period_start)
    if period_start > current:
        raise ValueError(f"{label} is in the future; only started periods can be billed")
    if finalize and period_start == current:
        raise ValueError(f"{label} has not ended yet; it can be billed now but finalized only once it is over")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_lines(session: Session, period_start: datetime, usages: dict[int, BucketUsage],
                finalize: bool, now: datetime) -> list[dict[str, Any]]:
    """The billing line rows (with their snapshots, costs and per-asset details) for the computed usages."""
    if not usages:
        return []
    _, period_end = period_bounds(period_start)
    terms = terms_for_period(session, period_start, list(usages))
    buckets = {b.id: b for b in session.execute(
        select(Bucket.id, Bucket.client_id, Bucket.name, Bucket.aggregation, UnitType.name.label("unit_type"))
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(Bucket.id.in_(list(usages)))
    )}
    asset_ids = sorted({a for usage in usages.values() for a in usage.per_asset})
    external = {}
    for start in range(0, len(asset_ids), 5000):
        external.update(session.execute(
            select(Asset.id, Asset.external_id).where(Asset.id.in_(asset_ids[start:start + 5000]))).all())
    lines = []
    for bucket_id in sorted(usages):
        b, usage = buckets[bucket_id], usages[bucket_id]
        term = terms.get(bucket_id)
        if term is None:
            raise ValueError(f"bucket {bucket_id} ({b.name}) has no contract term")
        cost = rate_bucket_usage(usage.total, term.commit, term.base_price, term.overage_price)
        details = {
            "aggregation": b.aggregation, "unit_type": b.unit_type, "bucket": b.name,
            "status": bucket_status(usage.total, term.commit),
            "assets": [{"asset_id": asset_id, "external_id": external.get(asset_id, ""), "usage": str(value),
                        **({"gap_hours": str(usage.gap_hours[asset_id])} if asset_id in usage.gap_hours else {})}
                       for asset_id, value in sorted(usage.per_asset.items())],
        }
        lines.append({
            "client_id": b.client_id, "bucket_id": bucket_id, "period_start": period_start, "period_end": period_end,
            "total_usage": usage.total, "commit": term.commit, "base_price": term.base_price,
            "overage_price": term.overage_price, "base_cost": cost.base_cost, "overage_units": cost.overage_units,
            "overage_cost": cost.overage_cost, "buffer_units": cost.buffer_units, "buffer_cost": cost.buffer_cost,
            "final_cost": cost.final_cost, "finalized": finalize, "finalized_at": now if finalize else None,
            "calculated_at": now, "details": details,
        })
    return lines


WRITE_LOCK_SPACE = 0x4D44  # the first key of the PostgreSQL advisory locks taken by billing writes


def wait_for_other_writers(session: Session, period_start: datetime) -> None:
    """Serialise writers of one period's lines (PostgreSQL; SQLite has a single writer anyway): a second run that
    writes at the same moment (a stale run's worker still alive) then replaces the first one's lines instead of
    colliding with them on the unique (bucket, period)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:space, :period)"),
                        {"space": WRITE_LOCK_SPACE, "period": period_start.year * 100 + period_start.month})


def write_lines(session: Session, period_start: datetime, lines: list[dict[str, Any]]) -> list[int]:
    """In the caller's transaction: replace the period's unfinalized ordinary lines by `lines`, auditing each change
    (adjustment lines stay: billing/adjustments.py writes them)."""
    wait_for_other_writers(session, period_start)
    table = BillingReading.__table__
    unfinalized = and_(table.c.period_start == period_start, table.c.finalized.is_(False),
                       table.c.adjusts_period.is_(None))
    old = session.execute(select(*[table.c[name] for name in ("id", *AUDITED_FIELDS)]).where(unfinalized)).all()
    session.execute(delete(table).where(unfinalized))
    audit_rows(session, "delete", table.name,
               [(row.id, {name: _plain(getattr(row, name)) for name in AUDITED_FIELDS}, None) for row in old])
    if not lines:
        return []
    ids = list(session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), lines).scalars())
    audit_rows(session, "create", table.name, [(new_id, None, {name: _plain(line[name]) for name in AUDITED_FIELDS})
                                               for new_id, line in zip(ids, lines)])
    return ids


def finalize_adjustment_lines(session: Session, period_start: datetime, now: datetime) -> int:
    """Adjustment lines posted into the period are part of it: finalizing it finalizes them as posted (audited)."""
    table = BillingReading.__table__
    pending = and_(table.c.period_start == period_start, table.c.finalized.is_(False),
                   table.c.adjusts_period.is_not(None))
    ids = list(session.scalars(select(table.c.id).where(pending)))
    if ids:
        session.execute(update(table).where(table.c.id.in_(ids)).values(finalized=True, finalized_at=now))
        audit_bulk(session, "update", table.name, ids, old={"finalized": False},
                   new={"finalized": True, "finalized_at": now.isoformat()})
    return len(ids)


def finalized_bucket_ids(session: Session, period_start: datetime) -> set[int]:
    return set(session.scalars(select(BillingReading.bucket_id).where(
        BillingReading.period_start == period_start, BillingReading.finalized.is_(True),
        BillingReading.adjusts_period.is_(None))))


def late_readings(session: Session, line_ids: list[int]) -> dict[int, int]:
    """Finalized line id -> readings received after it was finalized, inside its period, for its bucket's assets."""
    counts: dict[int, int] = {}
    ids = sorted(line_ids)
    for first in range(0, len(ids), 1000):
        counts.update(_late_readings(session, ids[first:first + 1000]))
    return counts


def _late_readings(session: Session, line_ids: list[int]) -> dict[int, int]:
    """One row per (line, bound eligible asset) with that asset's late readings counted by a correlated subquery:
    each count is an index seek on readings (asset_id, unit_type_id, ts) bounded by the asset and the period, so
    the cost follows the page's assets, never the period's readings of the whole unit type (which a planner
    joining readings by (unit_type_id, ts) first would scan)."""
    line = BillingReading.__table__
    late = (
        select(func.count())
        .where(Reading.asset_id == bucket_assets.c.asset_id, Reading.unit_type_id == Bucket.unit_type_id,
               Reading.ts >= line.c.period_start, Reading.ts < line.c.period_end,
               Reading.received_at > line.c.finalized_at)
        .correlate(line, Bucket, bucket_assets)
        .scalar_subquery()
    )
    query = (
        select(line.c.id, func.sum(late))
        .select_from(line)
        .join(Bucket, Bucket.id == line.c.bucket_id)
        .join(bucket_assets, bucket_assets.c.bucket_id == Bucket.id)
        .join(Asset, and_(Asset.id == bucket_assets.c.asset_id, Asset.enabled.is_(True),
                          Asset.disregarded_at.is_(None)))
        .where(line.c.id.in_(list(line_ids)), line.c.finalized.is_(True), line.c.adjusts_period.is_(None))
        .group_by(line.c.id)
    )
    return {line_id: int(count) for line_id, count in session.execute(query) if count}


def bill_period(session: Session, period_start: datetime, finalize: bool = False,
                progress: Progress | None = None) -> BillingSummary:
    """Bill every enabled bucket for the period starting at `period_start`; finalize the lines if asked."""
    progress = progress or _quiet
    period_start, period_end = period_bounds(period_of(period_start))
    check_billable(period_start, finalize)
    check_not_archived(session, period_start)
    label = period_label(period_start)
    progress(2, f"Billing {label}: finding buckets")
    kept = finalized_bucket_ids(session, period_start)
    specs = [spec for spec in bucket_specs(session) if spec.bucket_id not in kept]
    progress(5, f"Billing {label}: {len(specs)} bucket(s) to compute")

    def step(percent: int, message: str) -> None:
        progress(5 + percent * 80 // 100, f"Billing {label}: {message}")

    usages = usage_for_specs(session, specs, period_start, period_end, progress=step)
    now = utcnow()
    lines = build_lines(session, period_start, usages, finalize, now)
    late_ids = list(session.scalars(select(BillingReading.id).where(
        BillingReading.period_start == period_start, BillingReading.finalized.is_(True),
        BillingReading.adjusts_period.is_(None))))
    late = sum(late_readings(session, late_ids).values())
    progress(90, f"Billing {label}: writing {len(lines)} line(s)")
    try:
        write_lines(session, period_start, lines)
        adjustments = finalize_adjustment_lines(session, period_start, now) if finalize else 0
        session.commit()
    except Exception:
        session.rollback()
        raise
    total = sum((line["final_cost"] for line in lines), Decimal("0.00"))
    progress(100, f"Billing {label}: done")
    return BillingSummary(label, len(lines), total, len(kept), late, finalize, adjustments)
