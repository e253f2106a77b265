"""Which bucket an asset joins: the one binding rule, used by auto-provisioning (billing/provisioning.py) and by
"Bind to client bucket" on the Unbound Assets page; and which asset usages no enabled bucket bills (unbound).

Rule: an asset joins an enabled bucket of its own client and of the unit type it reports, the one of its own source
type with the lowest id. Auto-provisioning creates that bucket from the unit type's template when there is none;
binding by hand falls back to the client's enabled bucket of that unit type with the lowest id, whatever its source.
Changes go through the ORM, so database/audit.py writes the audit rows; callers commit.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import Select

from ingest.last_seen import has_readings_since
from models import Asset, AssetUnit, Bucket, bucket_assets

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


def enabled_buckets(session: Session, client_ids: Collection[int], unit_type_id: int | None = None
                    ) -> dict[tuple[int, int], list[Any]]:
    """(client id, unit type id) -> the enabled buckets (id, client_id, unit_type_id, source_type, name) that
    assets may join, lowest id first."""
    query = (select(Bucket.id, Bucket.client_id, Bucket.unit_type_id, Bucket.source_type, Bucket.name)
             .where(Bucket.client_id.in_(client_ids), Bucket.enabled.is_(True)).order_by(Bucket.id))
    if unit_type_id is not None:
        query = query.where(Bucket.unit_type_id == unit_type_id)
    found: dict[tuple[int, int], list[Any]] = {}
    for row in session.execute(query):
        found.setdefault((row.client_id, row.unit_type_id), []).append(row)
    return found


def bucket_for(choices: Sequence[Any], source_type: str, any_source: bool) -> Any | None:
    """The bucket an asset of `source_type` joins among `choices` (its client's enabled buckets of one unit type,
    lowest id first): the first of its source type; else, when `any_source`, the first of any; else None."""
    for choice in choices:
        if choice.source_type == source_type:
            return choice
    return choices[0] if any_source and choices else None


def bind_unbound(session: Session, asset_ids: list[int]) -> tuple[int, list[str]]:
    """Bind each unbound (asset, unit type) of `asset_ids` to the bucket the rule picks (any source type).
    Returns the number of bindings made and what could not be bound."""
    pairs = unbound_pairs().where(Asset.id.in_(asset_ids)).subquery()
    wanted = session.execute(select(pairs.c.asset_id, pairs.c.unit_type_id)).all()
    assets = {a.id: a for a in session.scalars(
        select(Asset).where(Asset.id.in_({a for a, _ in wanted})).options(selectinload(Asset.buckets))
    ).all()}
    choices = enabled_buckets(session, {a.client_id for a in assets.values() if a.client_id is not None})
    picked: list[tuple[Asset, int]] = []
    missed = []
    for asset_id, unit_type_id in wanted:
        asset = assets[asset_id]
        if asset.client_id is None:
            missed.append(f"{asset.external_id}: no client")
            continue
        chosen = bucket_for(choices.get((asset.client_id, unit_type_id), []), asset.source_type, any_source=True)
        if chosen is None:
            missed.append(f"{asset.external_id}: its client has no enabled bucket of that unit type")
            continue
        picked.append((asset, chosen.id))
    buckets = {b.id: b for b in session.scalars(select(Bucket).where(Bucket.id.in_({b for _, b in picked})))}
    for asset, bucket_id in picked:
        asset.buckets.append(buckets[bucket_id])
    return len(picked), missed
