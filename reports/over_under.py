"""Over/Under: overage and buffer per period, per client and per unit type; right-size candidates."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.pricing import cents
from models import BillingReading, Bucket, Client, UnitType
from reports.common import TREND_PERIODS, _aware, money_total, period_range, quantity_total, trailing_periods
from reports.revenue import client_statuses

STATUS_FILTERS = ("all", "over", "under", "mixed")


@dataclass(frozen=True)
class TrendPoint:
    period: datetime
    overage: Decimal
    buffer: Decimal


@dataclass
class ClientLine:
    client_id: int
    client: str
    unit_types: list[str]
    status: str
    final_cost: Decimal
    committed: Decimal
    overage: Decimal
    buffer: Decimal
    buffer_units: dict[str, Decimal] = field(default_factory=dict)

    @property
    def vs_commit(self) -> Decimal | None:
        """100 · final cost / committed $ (None when nothing is committed)."""
        return cents(Decimal(100) * self.final_cost / self.committed) if self.committed else None

    @property
    def pct_unused(self) -> Decimal | None:
        """100 · Buffer $ / Committed $ (None when nothing is committed)."""
        return cents(Decimal(100) * self.buffer / self.committed) if self.committed else None


@dataclass(frozen=True)
class UnitTypeLens:
    unit_type_id: int
    unit_type: str
    delta_units: Decimal
    overage: Decimal
    buffer: Decimal


def trend(session: Session, last: datetime | None, count: int = TREND_PERIODS) -> list[TrendPoint]:
    """Σ overage cost and Σ buffer cost per period for the `count` periods ending with `last` (0 where none)."""
    if last is None:
        return []
    start, end = period_range(last, count)
    rows = session.execute(
        select(BillingReading.period_start, func.sum(BillingReading.overage_cost), func.sum(BillingReading.buffer_cost))
        .where(BillingReading.period_start >= start, BillingReading.period_start < end)
        .group_by(BillingReading.period_start)
    ).all()
    sums = {_aware(p): (money_total(o), money_total(b)) for p, o, b in rows}
    zero = money_total(None)
    return [TrendPoint(p, *sums.get(p, (zero, zero))) for p in trailing_periods(last, count)]


def client_lines(session: Session, period: datetime, status: str = "all",
                 unit_type_id: int | None = None) -> list[ClientLine]:
    """One row per client billed in `period` (optionally only lines of one unit type), filtered by status."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"status must be one of {', '.join(STATUS_FILTERS)}")
    where = [BillingReading.period_start == period]
    if unit_type_id is not None:
        where.append(Bucket.unit_type_id == unit_type_id)
    totals = session.execute(
        select(Client.id, Client.name, func.sum(BillingReading.final_cost), func.sum(BillingReading.base_cost),
               func.sum(BillingReading.overage_cost), func.sum(BillingReading.buffer_cost))
        .join(Client, Client.id == BillingReading.client_id)
        .join(Bucket, Bucket.id == BillingReading.bucket_id)
        .where(*where)
        .group_by(Client.id, Client.name)
    ).all()
    per_unit = session.execute(
        select(BillingReading.client_id, UnitType.name, func.sum(BillingReading.buffer_units))
        .join(Bucket, Bucket.id == BillingReading.bucket_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(*where)
        .group_by(BillingReading.client_id, UnitType.name)
        .order_by(UnitType.name)
    ).all()
    statuses = client_statuses(session, period)
    lines = {
        cid: ClientLine(cid, name, [], statuses.get(cid, "at"), money_total(final), money_total(base),
                        money_total(overage), money_total(buffer))
        for cid, name, final, base, overage, buffer in totals
    }
    for cid, unit_name, buffer_units in per_unit:
        lines[cid].unit_types.append(unit_name)
        lines[cid].buffer_units[unit_name] = quantity_total(buffer_units)
    return with_status(sorted(lines.values(), key=lambda line: line.client.lower()), status)


def with_status(lines: list[ClientLine], status: str) -> list[ClientLine]:
    """The lines of clients with this status (`all`: every line)."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"status must be one of {', '.join(STATUS_FILTERS)}")
    return [line for line in lines if status == "all" or line.status == status]


def right_size_candidates(session: Session, period: datetime, unit_type_id: int | None = None,
                          limit: int = 10, lines: list[ClientLine] | None = None) -> list[ClientLine]:
    """Clients paying for unused capacity in `period`, by Buffer $ largest first (only those with a buffer).
    `lines`: the period's client lines of the same unit type filter, when the caller already has them."""
    if lines is None:
        lines = client_lines(session, period, unit_type_id=unit_type_id)
    lines = [line for line in lines if line.buffer > 0]
    lines.sort(key=lambda line: (-line.buffer, line.client.lower()))
    return lines[:limit]


def total_buffer(session: Session, period: datetime, unit_type_id: int | None = None) -> Decimal:
    """Σ buffer cost of `period` (of one unit type when given)."""
    query = select(func.sum(BillingReading.buffer_cost)).where(BillingReading.period_start == period)
    if unit_type_id is not None:
        query = query.join(Bucket, Bucket.id == BillingReading.bucket_id).where(Bucket.unit_type_id == unit_type_id)
    return money_total(session.scalar(query))


def by_unit_type(session: Session, period: datetime) -> list[UnitTypeLens]:
    """Per unit type in `period`: Δ Units = Σ (usage − commit), Overage $ and Buffer $."""
    rows = session.execute(
        select(UnitType.id, UnitType.name,
               func.sum(BillingReading.total_usage) - func.sum(BillingReading.commit),
               func.sum(BillingReading.overage_cost), func.sum(BillingReading.buffer_cost))
        .join(Bucket, Bucket.id == BillingReading.bucket_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(BillingReading.period_start == period)
        .group_by(UnitType.id, UnitType.name)
        .order_by(UnitType.name)
    ).all()
    return [UnitTypeLens(uid, name, quantity_total(delta), money_total(overage), money_total(buffer))
            for uid, name, delta, overage, buffer in rows]


def billed_unit_types(session: Session, period: datetime) -> list[tuple[int, str]]:
    """The unit types that have lines in `period` (for the right-size filter)."""
    return list(session.execute(
        select(UnitType.id, UnitType.name)
        .join(Bucket, Bucket.unit_type_id == UnitType.id)
        .join(BillingReading, BillingReading.bucket_id == Bucket.id)
        .where(BillingReading.period_start == period)
        .group_by(UnitType.id, UnitType.name)
        .order_by(UnitType.name)
    ).all())
