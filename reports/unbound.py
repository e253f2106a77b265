"""What each unbound asset leaves unbilled this month: per (asset, unit type) no enabled bucket binds, the month's
usage by the unit type's aggregation and its cost at the unit type's prices as auto-provisioning would bill it
(a bucket from the unit type's template, commit 0: every unit is overage)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import BigInteger, and_, cast, func, select
from sqlalchemy.orm import Session

from billing.binding import unbound_pairs
from billing.periods import current_period_start, next_period
from billing.pricing import rate_bucket_usage
from billing.time_weighted import time_weighted_stats
from billing.usage import mean, quantize
from models import Asset, Reading, UnitType, from_micro

ZERO = Decimal("0.000000")
COMPUTED = ("sum", "max", "avg", "count", "last", "p95", "time_weighted")


@dataclass(frozen=True)
class UnboundUsage:
    asset_id: int
    unit_type_id: int
    unit_type: str
    aggregation: str
    usage: Decimal | None  # None for an aggregation this page does not compute
    cost: Decimal | None


def _decimal(value) -> Decimal | None:
    """SUM/MAX over the MicroUnits column: the type decorator may or may not have turned it into a Decimal."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else from_micro(int(value))


def unbound_usage(session: Session, asset_ids: Sequence[int], now: datetime | None = None
                  ) -> dict[int, list[UnboundUsage]]:
    """Asset id -> its unbound unit types (by name) with this month's usage and $ at stake; set-based: one grouped
    query for every pair, one window query for the p95 pairs, one for the time_weighted pairs."""
    if not asset_ids:
        return {}
    now = now or datetime.now(timezone.utc)
    start = current_period_start(now)
    end = next_period(start)
    pairs = unbound_pairs(now).where(Asset.id.in_(list(asset_ids))).subquery()
    in_month = and_(Reading.asset_id == pairs.c.asset_id, Reading.unit_type_id == pairs.c.unit_type_id,
                    Reading.ts >= start, Reading.ts < end)
    last = (select(Reading.value).where(in_month).order_by(Reading.ts.desc()).limit(1)
            .correlate(pairs).scalar_subquery())
    rows = session.execute(
        select(pairs.c.asset_id, pairs.c.unit_type_id, UnitType.name, UnitType.aggregation, UnitType.base_price,
               UnitType.overage_price, func.sum(Reading.value), func.max(Reading.value), func.count(Reading.ts), last)
        .join(UnitType, UnitType.id == pairs.c.unit_type_id)
        .outerjoin(Reading, in_month)
        .group_by(pairs.c.asset_id, pairs.c.unit_type_id, UnitType.name, UnitType.aggregation, UnitType.base_price,
                  UnitType.overage_price)
        .order_by(pairs.c.asset_id, UnitType.name)
    ).all()
    p95 = _p95(session, [(r[0], r[1]) for r in rows if r[3] == "p95"], start, end)
    weighted = _time_weighted(session, pairs, start, end) if any(r[3] == "time_weighted" for r in rows) else {}
    found: dict[int, list[UnboundUsage]] = {}
    for asset_id, unit_id, name, aggregation, base, overage, total, top, count, latest in rows:
        key = (asset_id, unit_id)
        usage = weighted.get(key, ZERO) if aggregation == "time_weighted" else _usage(
            aggregation, _decimal(total), _decimal(top), count, _decimal(latest), p95.get(key))
        cost = None if usage is None else rate_bucket_usage(usage, ZERO, base, overage).final_cost
        found.setdefault(asset_id, []).append(UnboundUsage(asset_id, unit_id, name, aggregation, usage, cost))
    return found


def _usage(aggregation: str, total: Decimal | None, top: Decimal | None, count: int, latest: Decimal | None,
           p95: Decimal | None) -> Decimal | None:
    """One asset's month usage by the billing rules' aggregation (None for one not computed here)."""
    if aggregation not in COMPUTED:
        return None
    if not count:
        return ZERO
    value = {"sum": total, "max": top, "avg": mean(total or ZERO, count), "count": Decimal(1), "last": latest,
             "p95": p95}[aggregation]
    return quantize(value if value is not None else ZERO)


def _p95(session: Session, pairs: list[tuple[int, int]], start: datetime, end: datetime
         ) -> dict[tuple[int, int], Decimal]:
    """(asset, unit type) -> the month's value at nearest rank ceil(0.95·n), readings sorted ascending."""
    if not pairs:
        return {}
    partition = (Reading.asset_id, Reading.unit_type_id)
    ranked = (select(Reading.asset_id, Reading.unit_type_id, Reading.value,
                     func.row_number().over(partition_by=partition, order_by=Reading.value).label("rank"),
                     func.count().over(partition_by=partition).label("n"))
              .where(Reading.asset_id.in_({a for a, _ in pairs}), Reading.unit_type_id.in_({u for _, u in pairs}),
                     Reading.ts >= start, Reading.ts < end)
              .subquery())
    rows = session.execute(
        select(ranked.c.asset_id, ranked.c.unit_type_id, ranked.c.value)
        .where(100 * ranked.c.rank >= 95 * ranked.c.n, 100 * (ranked.c.rank - 1) < 95 * ranked.c.n)
    ).all()
    wanted = set(pairs)
    return {(a, u): _decimal(v) for a, u, v in rows if (a, u) in wanted}


def _time_weighted(session: Session, pairs, start: datetime, end: datetime) -> dict[tuple[int, int], Decimal]:
    """(asset, unit type) -> the month's unit·hours for the unbound pairs of time_weighted unit types."""
    weighted = (select(pairs.c.asset_id, pairs.c.unit_type_id,
                       (cast(UnitType.max_gap_minutes, BigInteger) * 60_000_000).label("gap_us"))
                .join(UnitType, UnitType.id == pairs.c.unit_type_id)
                .where(UnitType.aggregation == "time_weighted").subquery("unbound_tw"))
    return {key: usage for key, (usage, _gap) in time_weighted_stats(session, weighted, start, end).items()}
