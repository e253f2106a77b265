"""An asset's usage over the last 30 days: one daily series per unit type."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Reading, UnitType, from_micro

USAGE_WINDOW = timedelta(days=30)


def _day(session: Session):
    """The UTC calendar day of a reading as 'YYYY-MM-DD' text, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Reading.ts), "YYYY-MM-DD")
    return func.substr(Reading.ts, 1, 10)


def asset_usage(session: Session, asset_id: int, now: datetime | None = None) -> dict[str, list[tuple[str, Decimal]]]:
    """Per unit type name, (day, value) for the last 30 days: the day's sum for `sum`/`count` unit types,
    the day's maximum for `max`/`p95`, the day's mean otherwise."""
    since = (now or datetime.now(timezone.utc)) - USAGE_WINDOW
    day = _day(session).label("day")
    rows = session.execute(
        select(UnitType.name, UnitType.aggregation, day, func.sum(Reading.value), func.max(Reading.value),
               func.count())
        .join(UnitType, UnitType.id == Reading.unit_type_id)
        .where(Reading.asset_id == asset_id, Reading.ts >= since)
        .group_by(UnitType.name, UnitType.aggregation, day)
        .order_by(UnitType.name, day)
    ).all()
    series: dict[str, list[tuple[str, Decimal]]] = {}
    for unit, aggregation, on_day, total, peak, count in rows:
        total, peak = _micro(total), _micro(peak)
        if aggregation in ("sum", "count"):
            value = total
        elif aggregation in ("max", "p95"):
            value = peak
        else:
            value = (total / count).quantize(Decimal("0.000001"))
        series.setdefault(unit, []).append((str(on_day), value))
    return series


def _micro(value) -> Decimal:
    """SUM/MAX over a MicroUnits column: the type decorator may or may not have turned it into a Decimal."""
    return value if isinstance(value, Decimal) else from_micro(int(value))
