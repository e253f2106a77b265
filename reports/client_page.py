"""What a client's page shows besides its buckets: its assets, its billing history per period and its open issues
(usage no bucket bills, assets nobody has acknowledged)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billing.binding import unbound_pairs
from models import Asset, BillingReading, UnitType, bucket_assets
from reports.common import _aware, money_total

ASSETS_SHOWN = 100
ISSUES_SHOWN = 20


@dataclass(frozen=True)
class ClientAsset:
    asset_id: int
    external_id: str
    name: str
    source_type: str
    acknowledged: bool
    enabled: bool
    buckets: int
    last_seen_at: datetime | None


@dataclass(frozen=True)
class HistoryRow:
    """One billed period of a client: Σ of its lines (the chart reads `period`, `overage` and `buffer`)."""

    period: datetime
    lines: int
    finalized: bool
    base: Decimal
    overage: Decimal
    buffer: Decimal
    final_cost: Decimal


@dataclass(frozen=True)
class UnboundIssue:
    asset_id: int
    external_id: str
    unit_type: str


@dataclass(frozen=True)
class ClientIssues:
    unbound: list[UnboundIssue]
    unbound_count: int
    new_assets: list[ClientAsset]
    new_count: int

    @property
    def none(self) -> bool:
        return not (self.unbound_count or self.new_count)


def _asset_rows(session: Session, client_id: int, *conditions, limit: int) -> list[ClientAsset]:
    bound = (select(func.count()).select_from(bucket_assets)
             .where(bucket_assets.c.asset_id == Asset.id).correlate(Asset).scalar_subquery())
    rows = session.execute(
        select(Asset.id, Asset.external_id, Asset.name, Asset.source_type, Asset.acknowledged, Asset.enabled,
               bound, Asset.last_seen_at)
        .where(Asset.client_id == client_id, Asset.disregarded_at.is_(None), *conditions)
        .order_by(Asset.external_id, Asset.id).limit(limit)
    ).all()
    return [ClientAsset(*row) for row in rows]


def client_assets(session: Session, client_id: int, limit: int = ASSETS_SHOWN) -> tuple[list[ClientAsset], int]:
    """The client's assets (not disregarded) by asset id, the first `limit` of them, and how many there are."""
    total = session.scalar(select(func.count(Asset.id)).where(
        Asset.client_id == client_id, Asset.disregarded_at.is_(None))) or 0
    return _asset_rows(session, client_id, limit=limit), total


def client_history(session: Session, client_id: int) -> list[HistoryRow]:
    """Per billed period of the client, latest first: lines, whether all are finalized, Σ base, overage, buffer
    and final cost."""
    rows = session.execute(
        select(BillingReading.period_start, func.count(BillingReading.id),
               func.sum(case((BillingReading.finalized.is_(False), 1), else_=0)),
               func.sum(BillingReading.base_cost), func.sum(BillingReading.overage_cost),
               func.sum(BillingReading.buffer_cost), func.sum(BillingReading.final_cost))
        .where(BillingReading.client_id == client_id)
        .group_by(BillingReading.period_start)
        .order_by(BillingReading.period_start.desc())
    ).all()
    return [HistoryRow(_aware(period), lines, not open_lines, money_total(base), money_total(overage),
                       money_total(buffer), money_total(final))
            for period, lines, open_lines, base, overage, buffer, final in rows]


def client_issues(session: Session, client_id: int, now: datetime | None = None,
                  limit: int = ISSUES_SHOWN) -> ClientIssues:
    """The client's open issues: (asset, unit type) usage no enabled bucket bills, and unacknowledged assets."""
    pairs = unbound_pairs(now).where(Asset.client_id == client_id).subquery()
    unbound_count = session.scalar(select(func.count()).select_from(pairs)) or 0
    unbound = [UnboundIssue(*row) for row in session.execute(
        select(pairs.c.asset_id, Asset.external_id, UnitType.name)
        .join(Asset, Asset.id == pairs.c.asset_id).join(UnitType, UnitType.id == pairs.c.unit_type_id)
        .order_by(Asset.external_id, UnitType.name).limit(limit)
    ).all()]
    new_count = session.scalar(select(func.count(Asset.id)).where(
        Asset.client_id == client_id, Asset.disregarded_at.is_(None), Asset.acknowledged.is_(False))) or 0
    new_assets = _asset_rows(session, client_id, Asset.acknowledged.is_(False), limit=limit)
    return ClientIssues(unbound, unbound_count, new_assets, new_count)
