"""Time-weighted usage (DESIGN.md "Time-weighted usage"), set-based: one LEAD(ts) window per asset and unit type.

For one asset, its readings with ts in [start − max_gap, end), sorted by ts: reading i's value holds over
[ts_i, min(ts_{i+1}, ts_i + max_gap)), clipped to [start, end). Usage = Σ value × held seconds / 3600, to 6
places half-up; the time in [start, end) no reading holds is the asset's *gap*.

How, exactly: timestamps become integer microseconds since the epoch in SQL (PostgreSQL: EXTRACT(EPOCH), a
numeric; SQLite: strftime('%s') plus the stored microsecond digits), so each reading's held time is an integer.
Values are integer millionths below 10^18 < 2^63; each is split into three 21-bit limbs and SQL sums
limb × held per asset: the held intervals of one asset are disjoint, so Σ held ≤ end − start and every sum stays
below 2^21 · (end − start) < 2^63 for windows up to 50 days (a month at most here). Python joins the limbs into
one exact integer and divides it in integer arithmetic, rounding half-up to 6 places. Readings before start − max_gap may enter the window: each holds
until ts + max_gap at most, which is before start, so it adds nothing (the ts bound is one range over all pairs,
friendly to monthly partitions).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from models import Reading

LIMB = 1 << 21
US_PER_HOUR = 3_600_000_000
UNITS_PER_HOUR = 3_600 * 10**12  # value millionths × held microseconds per unit·hour
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Pair = tuple[int, int]


def epoch_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def ts_us_sql(dialect: str) -> ColumnElement:
    """readings.ts as integer microseconds since the epoch, exactly, in SQL."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", Reading.ts) * 1_000_000, BigInteger)
    # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime('%s') of the whole value would round .9995 s up to the
    # next second (it reads milliseconds), so the seconds come from the first 19 characters only
    seconds = cast(func.strftime("%s", func.substr(Reading.ts, 1, 19)), Integer)
    micros = cast(func.substr(Reading.ts, 21, 6), Integer)
    return seconds * 1_000_000 + micros


def _least(dialect: str, *values):
    return (func.least if dialect == "postgresql" else func.min)(*values)


def _greatest(dialect: str, *values):
    return (func.greatest if dialect == "postgresql" else func.max)(*values)


def time_weighted_stats(session: Session, pairs, start: datetime, end: datetime) -> dict[Pair, tuple[Decimal, Decimal]]:
    """(asset, unit) -> (usage to 6 places, gap hours to 6 places) for the pairs subquery (asset_id, unit_type_id,
    gap_us); pairs without readings in the window are absent (usage 0, gap = the whole window)."""
    dialect = session.get_bind().dialect.name
    lo, hi = epoch_us(start), epoch_us(end)
    widest = session.scalar(select(func.max(pairs.c.gap_us)))
    if widest is None:
        return {}
    stamped = (  # each timestamp converted once, then LEAD over the converted value
        select(Reading.asset_id, Reading.unit_type_id, Reading.ts, type_coerce(Reading.value, BigInteger).label("v"),
               ts_us_sql(dialect).label("t"), pairs.c.gap_us)
        .join(pairs, and_(Reading.asset_id == pairs.c.asset_id, Reading.unit_type_id == pairs.c.unit_type_id))
        .where(Reading.ts >= start - timedelta(microseconds=int(widest)), Reading.ts < end)
        .subquery("stamped")
    )
    ordered = select(
        stamped.c.asset_id, stamped.c.unit_type_id, stamped.c.v, stamped.c.t, stamped.c.gap_us,
        func.lead(stamped.c.t).over(partition_by=(stamped.c.asset_id, stamped.c.unit_type_id),
                                    order_by=stamped.c.ts).label("nxt"),
    ).subquery("ordered")
    until = _least(dialect, func.coalesce(ordered.c.nxt, ordered.c.t + ordered.c.gap_us),
                   ordered.c.t + ordered.c.gap_us, literal(hi, BigInteger))
    held_raw = until - _greatest(dialect, ordered.c.t, literal(lo, BigInteger))
    held = case((held_raw > 0, held_raw), else_=0).label("held")
    per_reading = select(ordered.c.asset_id, ordered.c.unit_type_id, ordered.c.v, held).subquery("held")
    v, h = per_reading.c.v, per_reading.c.held
    query = select(
        per_reading.c.asset_id, per_reading.c.unit_type_id, func.sum(h),
        func.sum((v % LIMB) * h), func.sum(((v // LIMB) % LIMB) * h), func.sum((v // (LIMB * LIMB)) * h),
    ).group_by(per_reading.c.asset_id, per_reading.c.unit_type_id)
    window = hi - lo
    result = {}
    for asset_id, unit_type_id, covered, low, mid, high in session.execute(query):
        exact = int(low) + int(mid) * LIMB + int(high) * LIMB * LIMB
        result[(asset_id, unit_type_id)] = (ratio_to_six(exact, UNITS_PER_HOUR),
                                            ratio_to_six(window - int(covered), US_PER_HOUR))
    return result


def ratio_to_six(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator (non-negative integers) to 6 decimal places, half-up, in integer arithmetic: no
    Decimal context rounds first."""
    millionths = (2 * numerator * 1_000_000 + denominator) // (2 * denominator)
    whole, fraction = divmod(millionths, 1_000_000)
    return Decimal(f"{whole}.{fraction:06d}")


def window_hours(start: datetime, end: datetime) -> Decimal:
    """The length of [start, end) in hours, to 6 places: an asset without readings is all gap."""
    return ratio_to_six(epoch_us(end) - epoch_us(start), US_PER_HOUR)
