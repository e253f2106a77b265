"""Contract terms over time: which commit and prices bill a period, and writing them (DESIGN "Contract terms").

A bucket's term with the latest `effective_from <= P` bills period P (its first term bills every earlier period).
A term *governs* the periods from its `effective_from` up to the bucket's next term (the first one also every period
before it); writing a term that would govern a period in which the bucket has a finalized line is refused
(`TermLocked`; the database triggers of database/triggers.py hold the same rule against raw SQL).

`Bucket.commit`, `.base_price` and `.overage_price` read the term in force for the current period (models.py);
setting them on a bucket, through any route (grid, API, provisioning, demo data), writes the term effective from the
current period: `write_terms_on_flush` turns those attribute writes into terms in the same flush, audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, event, exists, func, select
from sqlalchemy.orm import Session

from billing.periods import current_period_start, period_label, period_of
from models import BillingReading, Bucket, BucketTerm

TERM_FIELDS = ("commit", "base_price", "overage_price")
ZERO = Decimal("0")


class TermLocked(ValueError):
    """The term would change what a finalized line was computed from; nothing was written."""


@dataclass(frozen=True, slots=True)
class Term:
    """The figures a period is billed with."""

    commit: Decimal
    base_price: Decimal
    overage_price: Decimal
    effective_from: datetime | None = None


def terms_for_period(session: Session, period_start: datetime, bucket_ids: list[int] | None = None) -> dict[int, Term]:
    """Bucket id -> the term in force for `period_start`, set-based (one query for every bucket)."""
    chosen = (
        select(BucketTerm.bucket_id.label("bucket_id"),
               func.coalesce(func.max(case((BucketTerm.effective_from <= period_start, BucketTerm.effective_from))),
                             func.min(BucketTerm.effective_from)).label("effective_from"))
        .group_by(BucketTerm.bucket_id)
    )
    if bucket_ids is not None:
        chosen = chosen.where(BucketTerm.bucket_id.in_(sorted(set(bucket_ids))))
    chosen = chosen.subquery("chosen")
    rows = session.execute(
        select(BucketTerm.bucket_id, BucketTerm.commit, BucketTerm.base_price, BucketTerm.overage_price,
               BucketTerm.effective_from)
        .join(chosen, and_(chosen.c.bucket_id == BucketTerm.bucket_id,
                           chosen.c.effective_from == BucketTerm.effective_from)))
    return {row.bucket_id: Term(row.commit, row.base_price, row.overage_price, row.effective_from) for row in rows}


def term_for(session: Session, bucket_id: int, period_start: datetime) -> Term:
    """The term in force for one bucket and period; LookupError when the bucket has no term."""
    found = terms_for_period(session, period_start, [bucket_id]).get(bucket_id)
    if found is None:
        raise LookupError(f"bucket {bucket_id} has no contract term")
    return found


def bucket_terms(session: Session, bucket_id: int) -> list[BucketTerm]:
    """A bucket's terms, oldest first."""
    return list(session.scalars(select(BucketTerm).where(BucketTerm.bucket_id == bucket_id)
                                .order_by(BucketTerm.effective_from)))


def governed_finalized_periods(session: Session, bucket_id: int, effective_from: datetime) -> list[datetime]:
    """The periods with a finalized ordinary line of the bucket that a term effective from `effective_from` would
    govern (the same rule as the database triggers)."""
    line = BillingReading
    earlier = exists().where(BucketTerm.bucket_id == bucket_id, BucketTerm.effective_from < effective_from)
    later = exists().where(BucketTerm.bucket_id == bucket_id, BucketTerm.effective_from > effective_from,
                           BucketTerm.effective_from <= line.period_start)
    query = (select(line.period_start)
             .where(line.bucket_id == bucket_id, line.finalized.is_(True), line.adjusts_period.is_(None),
                    (line.period_start >= effective_from) | ~earlier, ~later)
             .order_by(line.period_start))
    return list(session.scalars(query))


def check_term_allowed(session: Session, bucket_id: int, effective_from: datetime) -> None:
    """Raise TermLocked when a term effective from this period would govern a finalized line's period."""
    locked = governed_finalized_periods(session, bucket_id, effective_from)
    if locked:
        periods = ", ".join(period_label(start) for start in locked[:6]) + (" …" if len(locked) > 6 else "")
        raise TermLocked(f"bucket {bucket_id} has finalized billing lines for {periods}: a term effective from "
                         f"{period_label(effective_from)} would change what they were computed from")


def set_term(session: Session, bucket_id: int, effective_from: datetime, commit: Decimal, base_price: Decimal,
             overage_price: Decimal, note: str = "", created_by: str = "") -> BucketTerm:
    """Add, or replace, the bucket's term effective from `effective_from`'s period (in the caller's transaction;
    audited through the ORM). Raises TermLocked for a period a finalized line depends on."""
    effective_from = period_of(effective_from)
    with session.no_autoflush:
        check_term_allowed(session, bucket_id, effective_from)
        pending = [obj for obj in session.new if isinstance(obj, BucketTerm) and obj.bucket_id == bucket_id
                   and obj.effective_from == effective_from]
        term = pending[0] if pending else session.scalar(select(BucketTerm).where(
            BucketTerm.bucket_id == bucket_id, BucketTerm.effective_from == effective_from))
        if term is None:
            term = BucketTerm(bucket_id=bucket_id, effective_from=effective_from)
            session.add(term)
        term.commit, term.base_price, term.overage_price = Decimal(commit), Decimal(base_price), Decimal(overage_price)
        term.note, term.created_by = note or "", created_by or ""
    return term


# ---- bucket attribute writes become terms -----------------------------------------------------------------------

def _set_values(bucket: Bucket) -> dict[str, Any]:
    """The term fields assigned on this bucket object since it was loaded (or created)."""
    from sqlalchemy import inspect

    state = inspect(bucket)
    values = {}
    for name in TERM_FIELDS:
        history = state.attrs[name].history
        if history.added and history.added[0] is not None:
            values[name] = Decimal(history.added[0])
    return values


def term_author(session: Session) -> str:
    """Who is writing terms now, as the bucket page shows it: the audit actor's email or API key, else `system`."""
    from database.audit import current_actor
    from models import ApiKey, User

    user_id, api_key_id = current_actor()
    if user_id is not None:
        return session.scalar(select(User.email).where(User.id == user_id)) or f"user #{user_id}"
    if api_key_id is not None:
        name = session.scalar(select(ApiKey.name).where(ApiKey.id == api_key_id))
        return f"API key #{api_key_id} ({name})" if name else f"API key #{api_key_id}"
    return session.info.get("term_author", "system")


@event.listens_for(Session, "before_flush")
def write_terms_on_flush(session: Session, flush_context: Any, instances: Any) -> None:
    """A new bucket gets its first term (effective from the period it is created in); a changed commit or price of an
    existing bucket writes the term effective from the current period (refused with TermLocked when that period has
    a finalized line, which cannot happen for the open month)."""
    current = current_period_start()
    with session.no_autoflush:
        for bucket in [obj for obj in session.new if isinstance(obj, Bucket)]:
            values = _set_values(bucket)
            created = period_of(bucket.created_at) if bucket.created_at else current
            session.add(BucketTerm(bucket=bucket, effective_from=created, note=session.info.get("term_note", ""),
                                   created_by=term_author(session),
                                   **{name: values.get(name, ZERO) for name in TERM_FIELDS}))
        for bucket in [obj for obj in session.dirty if isinstance(obj, Bucket) and obj not in session.deleted]:
            values = _set_values(bucket)
            if not values or bucket.id is None:
                continue
            in_force = terms_for_period(session, current, [bucket.id]).get(bucket.id)
            merged = {name: values.get(name, getattr(in_force, name, ZERO) if in_force else ZERO)
                      for name in TERM_FIELDS}
            if in_force is not None and all(merged[name] == getattr(in_force, name) for name in TERM_FIELDS):
                continue
            set_term(session, bucket.id, current, note=session.info.get("term_note", ""),
                     created_by=term_author(session), **merged)
