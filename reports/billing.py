"""What the Billing Readings page shows above its grid: the latest billed period, per-client totals of a period, and
whether a period still has lines to finalize."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import period_bounds
from models import BillingReading, Client
from reports.common import _aware


def latest_billed_period(session: Session) -> datetime | None:
    """The latest period that has billing lines (the current month included), None when nothing was billed."""
    return _aware(session.scalar(select(func.max(BillingReading.period_start))))


def client_summary(session: Session, period_start: datetime) -> list[dict[str, Any]]:
    """Per client with lines in the period, by name: its buckets billed and their total cost."""
    start, end = period_bounds(period_start)
    rows = session.execute(
        select(Client.id, Client.name, func.count(BillingReading.id), func.sum(BillingReading.final_cost))
        .join(Client, Client.id == BillingReading.client_id)
        .where(BillingReading.period_start == start)
        .group_by(Client.id, Client.name).order_by(Client.name)
    ).all()
    return [{"client_id": cid, "client": name, "period_start": start, "period_end": end, "buckets": count,
             "total_cost": total} for cid, name, count, total in rows]


def has_unfinalized(session: Session, period_start: datetime) -> bool:
    """Whether the period has a billing line that is not finalized yet."""
    return bool(session.scalar(select(func.count(BillingReading.id)).where(
        BillingReading.period_start == period_start, BillingReading.finalized.is_(False))))
