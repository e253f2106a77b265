"""Asset lists that are not plain filters: unbound assets (usage billed nowhere)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, func, select
from sqlalchemy.sql import Select

from models import Asset, AssetUnit, Bucket, bucket_assets
from reports.last_seen import has_readings_since

UNBOUND_WINDOW = timedelta(days=60)


def unbound_pairs(now: datetime | None = None) -> Select:
    """(asset_id, unit_type_id) pairs with readings in the last 60 days and no enabled bucket of that unit binding them."""
    since = (now or datetime.now(timezone.utc)) - UNBOUND_WINDOW
    # Nested EXISTS so every backend walks from the asset's few bindings (index on bucket_assets.asset_id) to
    # their buckets by primary key; a flat join let SQLite scan every bucket of the unit type per asset instead.
    enabled_bucket_of_unit = select(1).where(
        Bucket.id == bucket_assets.c.bucket_id,
        Bucket.unit_type_id == AssetUnit.unit_type_id,
        Bucket.enabled.is_(True),
    ).correlate(bucket_assets, AssetUnit)
    bound = select(1).select_from(bucket_assets).where(
        bucket_assets.c.asset_id == AssetUnit.asset_id, exists(enabled_bucket_of_unit)
    ).correlate(AssetUnit)
    return (
        select(AssetUnit.asset_id, AssetUnit.unit_type_id)
        .join(Asset, Asset.id == AssetUnit.asset_id)
        .where(has_readings_since(since), Asset.disregarded_at.is_(None), ~exists(bound))
    )


def unbound_asset_ids(now: datetime | None = None) -> Select:
    pairs = unbound_pairs(now).subquery()
    return select(pairs.c.asset_id).distinct()


def unbound_count(session, now: datetime | None = None) -> int:
    pairs = unbound_pairs(now).subquery()
    return session.scalar(select(func.count(func.distinct(pairs.c.asset_id)))) or 0


def tile_counts(session, now: datetime | None = None) -> dict[str, int]:
    """The dashboard's record tiles."""
    from models import Client

    visible = Asset.disregarded_at.is_(None)
    return {
        "clients": session.scalar(select(func.count(Client.id))) or 0,
        "assets": session.scalar(select(func.count(Asset.id)).where(visible)) or 0,
        "buckets": session.scalar(select(func.count(Bucket.id))) or 0,
        "unassigned": session.scalar(select(func.count(Asset.id)).where(visible, Asset.client_id.is_(None))) or 0,
        "unbound": unbound_count(session, now),
        "new": session.scalar(select(func.count(Asset.id)).where(and_(visible, Asset.acknowledged.is_(False)))) or 0,
    }
