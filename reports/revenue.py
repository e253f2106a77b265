"""Dashboard figures: projected revenue, revenue history, top clients, new overages, status and source mix."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from billing.pricing import bucket_status, cents, client_status, pct_of_commit
from models import BillingReading, Bucket, Client, Projection
from reports.common import (
    TREND_PERIODS, _aware, last_billed_period, money_total, period_range, this_period, trailing_periods,
)

CLIENT_STATUSES = ("over", "under", "mixed", "at")


@dataclass(frozen=True)
class MoM:
    projected: Decimal
    last_period: datetime | None
    last_final: Decimal
    change_pct: Decimal | None  # None when there is nothing to compare with


@dataclass(frozen=True)
class ClientShare:
    client_id: int
    client: str
    projected: Decimal
    share_pct: Decimal | None


@dataclass(frozen=True)
class NewOverage:
    client_id: int
    client: str
    bucket_id: int
    bucket: str
    pct_of_commit: Decimal | None


def projected_revenue(session: Session, now: datetime | None = None) -> Decimal:
    """Projected Rev: Σ projected cost of this period's projections."""
    total = session.scalar(
        select(func.sum(Projection.projected_cost)).where(Projection.period_start == this_period(now))
    )
    return money_total(total)


def final_cost_of(session: Session, period: datetime | None) -> Decimal:
    if period is None:
        return money_total(None)
    return money_total(session.scalar(
        select(func.sum(BillingReading.final_cost)).where(BillingReading.period_start == period)
    ))


def mom_revenue(session: Session, now: datetime | None = None) -> MoM:
    """MoM Rev: Projected Rev against last period's Σ final cost, as a % change."""
    projected = projected_revenue(session, now)
    last = last_billed_period(session, now)
    final = final_cost_of(session, last)
    change = cents(Decimal(100) * (projected - final) / final) if final else None
    return MoM(projected, last, final, change)


def revenue_by_period(session: Session, now: datetime | None = None,
                      count: int = TREND_PERIODS) -> list[tuple[datetime, Decimal]]:
    """Σ final cost per period for the `count` periods ending with the last billed one (0 where none); [] if never billed."""
    last = last_billed_period(session, now)
    if last is None:
        return []
    start, end = period_range(last, count)
    rows = session.execute(
        select(BillingReading.period_start, func.sum(BillingReading.final_cost))
        .where(BillingReading.period_start >= start, BillingReading.period_start < end)
        .group_by(BillingReading.period_start)
    ).all()
    totals = {_aware(p): money_total(t) for p, t in rows}
    return [(p, totals.get(p, money_total(None))) for p in trailing_periods(last, count)]


def avg_revenue_per_client(session: Session, now: datetime | None = None,
                           count: int = TREND_PERIODS) -> list[tuple[datetime, Decimal | None]]:
    """Σ final cost / number of clients billed, per period (None for a period without lines)."""
    last = last_billed_period(session, now)
    if last is None:
        return []
    start, end = period_range(last, count)
    rows = session.execute(
        select(BillingReading.period_start, func.sum(BillingReading.final_cost),
               func.count(func.distinct(BillingReading.client_id)))
        .where(BillingReading.period_start >= start, BillingReading.period_start < end)
        .group_by(BillingReading.period_start)
    ).all()
    averages = {_aware(p): cents(money_total(t) / n) for p, t, n in rows if n}
    return [(p, averages.get(p)) for p in trailing_periods(last, count)]


def top_clients(session: Session, now: datetime | None = None, limit: int = 10) -> list[ClientShare]:
    """Projected cost per client this period, largest first, with its share of Projected Rev."""
    period = this_period(now)
    total = projected_revenue(session, now)
    amount = func.sum(Projection.projected_cost)
    rows = session.execute(
        select(Client.id, Client.name, amount)
        .join(Client, Client.id == Projection.client_id)
        .where(Projection.period_start == period)
        .group_by(Client.id, Client.name)
        .order_by(amount.desc(), Client.name)
        .limit(limit)
    ).all()
    result = []
    for client_id, name, projected in rows:
        projected = money_total(projected)
        share = cents(Decimal(100) * projected / total) if total else None
        result.append(ClientShare(client_id, name, projected, share))
    return result


def new_overages(session: Session, now: datetime | None = None) -> list[NewOverage]:
    """Buckets projected over their commit this period whose last-period line was not over (or that had none)."""
    period = this_period(now)
    last = last_billed_period(session, now)
    previous = BillingReading.__table__.alias("previous")
    rows = session.execute(
        select(Client.id, Client.name, Bucket.id, Bucket.name, Projection.projected_usage, Bucket.commit,
               previous.c.total_usage, previous.c.commit)
        .join(Bucket, Bucket.id == Projection.bucket_id)
        .join(Client, Client.id == Projection.client_id)
        .outerjoin(previous, and_(previous.c.bucket_id == Projection.bucket_id,
                                  previous.c.period_start == last, previous.c.adjusts_period.is_(None)))
        .where(Projection.period_start == period)
        .order_by(Client.name, Bucket.name)
    ).all()
    result = []
    for client_id, client, bucket_id, bucket, projected, commit, last_usage, last_commit in rows:
        if bucket_status(projected, commit) != "over":
            continue
        if last_usage is not None and bucket_status(last_usage, last_commit) == "over":
            continue
        result.append(NewOverage(client_id, client, bucket_id, bucket, pct_of_commit(projected, commit)))
    result.sort(key=lambda row: (-(row.pct_of_commit or Decimal(0)), row.client, row.bucket))
    return result


def client_statuses(session: Session, period: datetime) -> dict[int, str]:
    """Each billed client's over/under/mixed/at status in `period`, from its ordinary lines' usage against commit."""
    rows = session.execute(
        select(BillingReading.client_id, BillingReading.total_usage, BillingReading.commit)
        .where(BillingReading.period_start == period, BillingReading.adjusts_period.is_(None))
    ).all()
    per_client: dict[int, list[str]] = {}
    for client_id, usage, commit in rows:
        per_client.setdefault(client_id, []).append(bucket_status(usage, commit))
    return {client_id: client_status(statuses) for client_id, statuses in per_client.items()}


def client_status_counts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Clients over / under / mixed / at commit in the last billed period ({} when nothing was billed)."""
    last = last_billed_period(session, now)
    if last is None:
        return {}
    counts = dict.fromkeys(CLIENT_STATUSES, 0)
    for status in client_statuses(session, last).values():
        counts[status] += 1
    return counts


def revenue_by_source_type(session: Session, now: datetime | None = None) -> list[tuple[str, Decimal]]:
    """Σ final cost by bucket source type in the last billed period, largest first."""
    last = last_billed_period(session, now)
    if last is None:
        return []
    amount = func.sum(BillingReading.final_cost)
    rows = session.execute(
        select(Bucket.source_type, amount)
        .join(Bucket, Bucket.id == BillingReading.bucket_id)
        .where(BillingReading.period_start == last)
        .group_by(Bucket.source_type)
        .order_by(amount.desc(), Bucket.source_type)
    ).all()
    return [(source, money_total(total)) for source, total in rows]
