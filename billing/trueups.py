"""True-ups: a commit that follows the usage actually billed (DESIGN "Contract terms over time and true-ups").

For an enabled bucket with ordinary lines in any of its last 3 billed periods (the 3 latest months before the current
one with a line for it), *suggested commit* = ceil(max usage of those lines). It is listed when it differs from the
current commit, with the monthly $ effect at the last period's usage: final cost under the suggested commit minus
under the current one (the current term's prices). Applying writes a term effective from the next period with the
suggested commit and the prices of the term in force then.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, next_period, period_label, period_of
from billing.pricing import rate_bucket_usage
from billing.terms import set_term, terms_for_period
from models import BillingReading, Bucket, Client, UnitType

DIRECTIONS = ("all", "up", "down")
PERIODS = 3


@dataclass
class TrueUp:
    """One bucket whose suggested commit differs from its current one."""

    bucket_id: int
    bucket: str
    client_id: int
    client: str
    unit_type_id: int
    unit_type: str
    current_commit: Decimal
    suggested_commit: Decimal
    base_price: Decimal
    overage_price: Decimal
    usage_by_period: dict[str, Decimal] = field(default_factory=dict)
    monthly_effect: Decimal = Decimal("0.00")
    applied_from: str | None = None

    @property
    def direction(self) -> str:
        """`up` (an upsell: usage above commit) or `down` (a retention risk: paying for unused capacity)."""
        return "up" if self.suggested_commit > self.current_commit else "down"


def suggested_commit(usages: list[Decimal]) -> Decimal:
    """ceil(max usage), a whole number of units."""
    return Decimal(math.ceil(max(usages)))


def true_ups(session: Session, client_id: int | None = None, unit_type_id: int | None = None,
             direction: str = "all", now: datetime | None = None) -> list[TrueUp]:
    """Every enabled bucket whose suggested commit differs from its current one, by client and bucket name."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    current = current_period_start(now)
    rank = func.row_number().over(partition_by=BillingReading.bucket_id,
                                  order_by=BillingReading.period_start.desc()).label("rank")
    recent = (select(BillingReading.bucket_id, BillingReading.period_start, BillingReading.total_usage, rank)
              .where(BillingReading.period_start < current, BillingReading.adjusts_period.is_(None))
              .subquery("recent"))
    query = (
        select(recent.c.bucket_id, recent.c.period_start, recent.c.total_usage, Bucket.name, Bucket.client_id,
               Client.name.label("client"), Bucket.unit_type_id, UnitType.name.label("unit_type"))
        .join(Bucket, Bucket.id == recent.c.bucket_id)
        .join(Client, Client.id == Bucket.client_id)
        .join(UnitType, UnitType.id == Bucket.unit_type_id)
        .where(recent.c.rank <= PERIODS, Bucket.enabled.is_(True))
        .order_by(recent.c.bucket_id, recent.c.period_start)
    )
    if client_id is not None:
        query = query.where(Bucket.client_id == client_id)
    if unit_type_id is not None:
        query = query.where(Bucket.unit_type_id == unit_type_id)
    rows = session.execute(query).all()
    if not rows:
        return []
    ids = sorted({row.bucket_id for row in rows})
    now_terms = terms_for_period(session, current, ids)
    next_terms = terms_for_period(session, next_period(current), ids)
    found: dict[int, TrueUp] = {}
    for row in rows:
        term = now_terms[row.bucket_id]
        item = found.setdefault(row.bucket_id, TrueUp(
            row.bucket_id, row.name, row.client_id, row.client, row.unit_type_id, row.unit_type, term.commit,
            Decimal(0), term.base_price, term.overage_price))
        item.usage_by_period[period_label(period_of(row.period_start))] = row.total_usage
    result = []
    for item in found.values():
        item.suggested_commit = suggested_commit(list(item.usage_by_period.values()))
        if item.suggested_commit == item.current_commit:
            continue
        last_usage = item.usage_by_period[max(item.usage_by_period)]
        item.monthly_effect = (
            rate_bucket_usage(last_usage, item.suggested_commit, item.base_price, item.overage_price).final_cost
            - rate_bucket_usage(last_usage, item.current_commit, item.base_price, item.overage_price).final_cost)
        upcoming = next_terms[item.bucket_id]
        if upcoming.effective_from == next_period(current) and upcoming.commit == item.suggested_commit:
            item.applied_from = period_label(next_period(current))
        if direction == "all" or item.direction == direction:
            result.append(item)
    result.sort(key=lambda item: (item.client.lower(), item.bucket.lower(), item.bucket_id))
    return result


def apply_true_ups(session: Session, bucket_ids: list[int], created_by: str, now: datetime | None = None) -> int:
    """Write each listed bucket's suggested commit as its term from the next period (prices unchanged), in one
    transaction, audited; returns how many were applied (buckets no longer listed are skipped)."""
    wanted = set(bucket_ids)
    items = [item for item in true_ups(session, now=now) if item.bucket_id in wanted and item.applied_from is None]
    start = next_period(current_period_start(now))
    upcoming = terms_for_period(session, start, [item.bucket_id for item in items])
    for item in items:
        usage = ", ".join(f"{period} {value.normalize():f}" for period, value in item.usage_by_period.items())
        term = upcoming[item.bucket_id]
        set_term(session, item.bucket_id, start, item.suggested_commit, term.base_price, term.overage_price,
                 note=f"True-up {item.direction}: commit {item.current_commit.normalize():f} -> "
                      f"{item.suggested_commit.normalize():f} (max usage of {usage})",
                 created_by=created_by)
    session.commit()
    return len(items)
