"""Asset lists that are not plain filters: unbound assets (usage billed nowhere)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.sql import Select

from billing.binding import unbound_pairs
from models import Asset, Bucket, Client

def unbound_asset_ids(now: datetime | None = None) -> Select:
    pairs = unbound_pairs(now).subquery()
    return select(pairs.c.asset_id).distinct()


def unbound_count(session, now: datetime | None = None) -> int:
    pairs = unbound_pairs(now).subquery()
    return session.scalar(select(func.count(func.distinct(pairs.c.asset_id)))) or 0


def tile_counts(session, now: datetime | None = None) -> dict[str, int]:
    """The dashboard's record tiles."""
    visible = Asset.disregarded_at.is_(None)
    return {
        "clients": session.scalar(select(func.count(Client.id))) or 0,
        "assets": session.scalar(select(func.count(Asset.id)).where(visible)) or 0,
        "buckets": session.scalar(select(func.count(Bucket.id))) or 0,
        "unassigned": session.scalar(select(func.count(Asset.id)).where(visible, Asset.client_id.is_(None))) or 0,
        "unbound": unbound_count(session, now),
        "new": session.scalar(select(func.count(Asset.id)).where(and_(visible, Asset.acknowledged.is_(False)))) or 0,
    }
