"""What the reports share: which period is "this" and which is "last", and money totals."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period, previous_period
from billing.pricing import cents
from models import BillingReading

TREND_PERIODS = 12


def this_period(now: datetime | None = None) -> datetime:
    """The period the current projections belong to (the calendar month of `now`, UTC)."""
    return current_period_start(now or datetime.now(timezone.utc))


def last_billed_period(session: Session, now: datetime | None = None) -> datetime | None:
    """"Last period": the latest period before this one that has billing lines (None when nothing was billed)."""
    found = session.scalar(
        select(func.max(BillingReading.period_start)).where(BillingReading.period_start < this_period(now))
    )
    return _aware(found)


def billed_periods(session: Session) -> list[datetime]:
    """Every period that has billing lines, latest first (for the period picker)."""
    rows = session.scalars(
        select(BillingReading.period_start).group_by(BillingReading.period_start)
        .order_by(BillingReading.period_start.desc())
    ).all()
    return [_aware(p) for p in rows]


def trailing_periods(last: datetime, count: int = TREND_PERIODS) -> list[datetime]:
    """The `count` calendar periods ending with `last`, oldest first."""
    periods = [last]
    while len(periods) < count:
        periods.append(previous_period(periods[-1]))
    return periods[::-1]


def money_total(value: Decimal | float | int | None) -> Decimal:
    """A SUM of money as Decimal rounded to cents (0 for an empty sum)."""
    return cents(Decimal(str(value))) if value is not None else cents(Decimal(0))


def quantity_total(value: Decimal | float | int | None) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.000001")) if value is not None else Decimal("0.000000")


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def period_range(last: datetime, count: int = TREND_PERIODS) -> tuple[datetime, datetime]:
    """[start, end) covering the `count` periods ending with `last`."""
    periods = trailing_periods(last, count)
    return periods[0], next_period(last)
