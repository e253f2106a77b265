"""Late usage billed as adjustment lines (DESIGN "Late usage").

For a finalized period P, a bucket's *billed* figures are its finalized line plus its finalized adjustment lines for
P; its *late difference* is P recomputed now (P's term, every reading stored now) minus billed, per figure. Posting
writes, for every bucket with a non-zero late difference, an adjustment line into an open later period Q: a
BillingReading with `adjusts_period = P` whose figures are the differences (its `commit` is the difference of the
commits, 0: P's term is in `details["term"]`; its per-asset details are the per-asset usage differences). Posting
again replaces P's unfinalized adjustment lines (into Q, or into another open period: P's late usage is never posted
twice). Finalizing Q finalizes them as posted (billing/run.py). A period recomputed equal to what was billed posts
nothing.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session

from billing.archive import check_not_archived
from billing.periods import current_period_start, period_bounds, period_label, period_of
from billing.pricing import rate_bucket_usage
from billing.progress import Progress
from billing.terms import Term, terms_for_period
from billing.usage import ZERO, bucket_usages
from database.audit import audit_bulk
from models import Asset, BillingReading, Bucket, LateUsageWaiver, UnitType, utcnow

CENTS = Decimal("0.00")


@dataclass(frozen=True)
class Figures:
    """The figures of a line (or of several lines added up) that late usage can change."""

    total_usage: Decimal = ZERO
    overage_units: Decimal = ZERO
    buffer_units: Decimal = ZERO
    base_cost: Decimal = CENTS
    overage_cost: Decimal = CENTS
    buffer_cost: Decimal = CENTS
    final_cost: Decimal = CENTS

    def __add__(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def is_zero(self) -> bool:
        return all(getattr(self, f.name) == 0 for f in fields(self))

    def as_text(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def of(cls, row: Any) -> Figures:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@dataclass
class LateDifference:
    """One bucket's late difference for a finalized period."""

    bucket_id: int
    client_id: int
    term: Term
    billed: Figures
    recomputed: Figures
    billed_assets: dict[int, Decimal] = field(default_factory=dict)
    recomputed_assets: dict[int, Decimal] = field(default_factory=dict)

    @property
    def difference(self) -> Figures:
        return self.recomputed - self.billed

    def asset_differences(self) -> dict[int, Decimal]:
        """Asset id -> recomputed minus billed usage, for the assets where they differ."""
        ids = set(self.billed_assets) | set(self.recomputed_assets)
        diffs = {a: self.recomputed_assets.get(a, ZERO) - self.billed_assets.get(a, ZERO) for a in ids}
        return {a: d for a, d in sorted(diffs.items()) if d != 0}


@dataclass(frozen=True)
class AdjustmentSummary:
    period: str
    into: str
    lines: int
    total: Decimal
    replaced: int

    @property
    def message(self) -> str:
        if not self.lines:
            return (f"{self.period} recomputes equal to what was billed: no adjustment posted"
                    + (f" ({self.replaced} unfinalized adjustment line(s) removed)." if self.replaced else "."))
        return (f"Posted {self.lines} adjustment line(s) for {self.period} into {self.into}, "
                f"total ${self.total:,.2f}" + (f"; {self.replaced} earlier unposted line(s) replaced." if self.replaced
                                                 else "."))


def _asset_usages(details: dict | None) -> dict[int, Decimal]:
    usages: dict[int, Decimal] = {}
    for entry in (details or {}).get("assets", []):
        if entry.get("asset_id") is not None:
            usages[int(entry["asset_id"])] = usages.get(int(entry["asset_id"]), ZERO) + Decimal(entry.get("usage", "0"))
    return usages


def finalized_periods(session: Session) -> list[datetime]:
    """Every period with a finalized ordinary line, latest first."""
    return list(session.scalars(
        select(BillingReading.period_start).where(BillingReading.finalized.is_(True),
                                                  BillingReading.adjusts_period.is_(None))
        .group_by(BillingReading.period_start).order_by(BillingReading.period_start.desc())))


def billed(session: Session, period_start: datetime,
           bucket_ids: list[int] | None = None) -> dict[int, tuple[int, Figures, dict[int, Decimal]]]:
    """Bucket id -> (client id, billed figures, billed per-asset usage) of its finalized ordinary line for the period
    plus its finalized adjustment lines for it (buckets without a finalized ordinary line are left out)."""
    line = BillingReading
    query = select(line).where(line.finalized.is_(True), or_period(period_start))
    if bucket_ids is not None:
        query = query.where(line.bucket_id.in_(sorted(set(bucket_ids))))
    ordinary: dict[int, tuple[int, Figures, dict[int, Decimal]]] = {}
    adjustments: list[BillingReading] = []
    for row in session.scalars(query.order_by(line.id)):
        if row.adjusts_period is None:
            ordinary[row.bucket_id] = (row.client_id, Figures.of(row), _asset_usages(row.details))
        else:
            adjustments.append(row)
    for row in adjustments:
        if row.bucket_id in ordinary:
            client_id, figures, assets = ordinary[row.bucket_id]
            for asset_id, usage in _asset_usages(row.details).items():
                assets[asset_id] = assets.get(asset_id, ZERO) + usage
            ordinary[row.bucket_id] = (client_id, figures + Figures.of(row), assets)
    return ordinary


def or_period(period_start: datetime):
    """Lines that bill `period_start`: its ordinary lines and the adjustment lines for it (in any period)."""
    return ((BillingReading.period_start == period_start) & BillingReading.adjusts_period.is_(None)) | (
        BillingReading.adjusts_period == period_start)


def late_differences(session: Session, period_start: datetime,
                     bucket_ids: list[int] | None = None) -> list[LateDifference]:
    """Each finalized bucket's late difference for the period (every one, zero or not), by bucket id."""
    period_start, period_end = period_bounds(period_of(period_start))
    billed_now = billed(session, period_start, bucket_ids)
    if not billed_now:
        return []
    ids = sorted(billed_now)
    usages = bucket_usages(session, period_start, period_end, ids)
    terms = terms_for_period(session, period_start, ids)
    result = []
    for bucket_id in ids:
        client_id, figures, assets = billed_now[bucket_id]
        usage = usages[bucket_id]
        term = terms[bucket_id]
        cost = rate_bucket_usage(usage.total, term.commit, term.base_price, term.overage_price)
        recomputed = Figures(usage.total, cost.overage_units, cost.buffer_units, cost.base_cost, cost.overage_cost,
                             cost.buffer_cost, cost.final_cost)
        result.append(LateDifference(bucket_id, client_id, term, figures, recomputed, assets, dict(usage.per_asset)))
    return result


def check_into(session: Session, period_start: datetime, into: datetime, now: datetime | None = None) -> None:
    """ValueError unless P has finalized lines and readings (not archived) and Q is a later, started period without
    finalized lines."""
    p_label, q_label = period_label(period_start), period_label(into)
    check_not_archived(session, period_start)  # its readings are in a file: a recomputation would bill nothing
    if into <= period_start:
        raise ValueError(f"adjustments for {p_label} go into a later period, not {q_label}")
    if into > current_period_start(now):
        raise ValueError(f"{q_label} is in the future; post adjustments into the current month or an open earlier one")
    if not session.scalar(select(func.count()).select_from(BillingReading).where(
            BillingReading.period_start == period_start, BillingReading.finalized.is_(True),
            BillingReading.adjusts_period.is_(None))):
        raise ValueError(f"{p_label} has no finalized billing lines: bill and finalize it instead")
    if session.scalar(select(func.count()).select_from(BillingReading).where(
            BillingReading.period_start == into, BillingReading.finalized.is_(True))):
        raise ValueError(f"{q_label} is finalized; post adjustments into an open period")


def open_periods_after(session: Session, period_start: datetime, now: datetime | None = None) -> list[str]:
    """YYYY-MM of the started periods after `period_start` without finalized lines, latest (the current) first."""
    from billing.periods import next_period

    finalized = {period_of(start) for start in session.scalars(
        select(BillingReading.period_start).where(BillingReading.finalized.is_(True)).distinct())}
    current, start, result = current_period_start(now), next_period(period_of(period_start)), []
    while start <= current:
        if start not in finalized:
            result.append(period_label(start))
        start = next_period(start)
    return result[::-1]


AUDITED = ("client_id", "bucket_id", "period_start", "adjusts_period", "total_usage", "commit", "base_cost",
           "overage_units", "overage_cost", "buffer_units", "buffer_cost", "final_cost", "finalized")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, Decimal) else value


def adjustment_rows(session: Session, period_start: datetime, into: datetime, differences: list[LateDifference],
                    now: datetime) -> list[dict[str, Any]]:
    """The adjustment lines (row dicts) for the non-zero differences."""
    wanted = [d for d in differences if not d.difference.is_zero()]
    if not wanted:
        return []
    _, into_end = period_bounds(into)
    names = {row.id: row for row in session.execute(
        select(Bucket.id, Bucket.name, Bucket.aggregation, UnitType.name.label("unit_type"))
        .join(UnitType, UnitType.id == Bucket.unit_type_id).where(Bucket.id.in_([d.bucket_id for d in wanted])))}
    asset_ids = sorted({a for d in wanted for a in d.asset_differences()})
    external = dict(session.execute(select(Asset.id, Asset.external_id).where(Asset.id.in_(asset_ids))).all()) \
        if asset_ids else {}
    rows = []
    for diff in wanted:
        figures, info = diff.difference, names[diff.bucket_id]
        rows.append({
            "client_id": diff.client_id, "bucket_id": diff.bucket_id, "period_start": into, "period_end": into_end,
            "adjusts_period": period_start, "commit": ZERO, "base_price": diff.term.base_price,
            "overage_price": diff.term.overage_price, "finalized": False, "finalized_at": None,
            "calculated_at": now, **{f.name: getattr(figures, f.name) for f in fields(Figures)},
            "details": {
                "adjusts_period": period_label(period_start), "aggregation": info.aggregation,
                "unit_type": info.unit_type, "bucket": info.name,
                "term": {"commit": str(diff.term.commit), "base_price": str(diff.term.base_price),
                         "overage_price": str(diff.term.overage_price)},
                "billed": diff.billed.as_text(), "recomputed": diff.recomputed.as_text(),
                "assets": [{"asset_id": a, "external_id": external.get(a, ""), "usage": str(usage)}
                           for a, usage in diff.asset_differences().items()],
            },
        })
    return rows


def post_adjustments(session: Session, period_start: datetime, into: datetime | None = None,
                     progress: Progress | None = None) -> AdjustmentSummary:
    """Post P's late differences as adjustment lines into Q (default: the current month), replacing P's unfinalized
    adjustment lines; one transaction, audited."""
    from billing.run import wait_for_other_writers

    report = progress or (lambda percent, message: None)
    period_start = period_of(period_start)
    into = period_of(into) if into is not None else current_period_start()
    check_into(session, period_start, into)
    label, into_label = period_label(period_start), period_label(into)
    report(5, f"Recomputing {label}")
    differences = late_differences(session, period_start)
    now = utcnow()
    rows = adjustment_rows(session, period_start, into, differences, now)
    report(80, f"Writing {len(rows)} adjustment line(s) into {into_label}")
    table = BillingReading.__table__
    try:
        wait_for_other_writers(session, into)
        check_into(session, period_start, into)
        stale = and_(table.c.adjusts_period == period_start, table.c.finalized.is_(False))
        old = session.execute(select(*[table.c[name] for name in ("id", *AUDITED)]).where(stale)).all()
        session.execute(delete(table).where(stale))
        for row in old:
            audit_bulk(session, "delete", table.name, [row.id], old={n: _plain(getattr(row, n)) for n in AUDITED})
        if rows:
            ids = list(session.connection().execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
            for new_id, row in zip(ids, rows):
                audit_bulk(session, "create", table.name, [new_id], new={n: _plain(row[n]) for n in AUDITED})
        session.commit()
    except Exception:
        session.rollback()
        raise
    report(100, "Done")
    total = sum((row["final_cost"] for row in rows), CENTS)
    return AdjustmentSummary(label, into_label, len(rows), total, len(old))


def waive_late_readings(session: Session, period_start: datetime, waived_by: str, now: datetime | None = None) -> None:
    """Waive P's pending late readings: those received until now stop counting as pending (audited; commits)."""
    period_start = period_of(period_start)
    if period_start not in finalized_periods(session):
        raise ValueError(f"{period_label(period_start)} has no finalized billing lines")
    waiver = session.scalar(select(LateUsageWaiver).where(LateUsageWaiver.period_start == period_start))
    if waiver is None:
        waiver = LateUsageWaiver(period_start=period_start)
        session.add(waiver)
    waiver.waived_at, waiver.waived_by = now or utcnow(), waived_by
    session.commit()


def pending_adjustments(session: Session) -> dict[datetime, list[tuple[datetime, int, Decimal]]]:
    """Adjusted period -> [(into period, unfinalized adjustment lines, Σ final cost)] posted but not yet finalized."""
    rows = session.execute(
        select(BillingReading.adjusts_period, BillingReading.period_start, func.count(),
               func.sum(BillingReading.final_cost))
        .where(BillingReading.adjusts_period.is_not(None), BillingReading.finalized.is_(False))
        .group_by(BillingReading.adjusts_period, BillingReading.period_start))
    result: dict[datetime, list[tuple[datetime, int, Decimal]]] = defaultdict(list)
    for adjusts, into, count, total in rows:
        result[period_of(adjusts)].append((period_of(into), int(count), Decimal(total or 0)))
    return dict(result)
