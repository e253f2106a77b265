"""Silent assets: bound to an enabled bucket of a unit type, yet no reading of it for `silent_after_hours`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import ColumnElement, case, exists, func, literal, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ingest.last_seen import latest_of_pair, silent_since
from ingest.store import SEEN_STEP
from models import Asset, AssetUnit, Bucket, Client, UnitType, UTCDateTime, bucket_assets

HOURS = Decimal("0.01")


@dataclass(frozen=True)
class SilentAsset:
    asset_id: int
    external_id: str
    asset_name: str
    client_id: int | None
    client: str | None
    unit_type_id: int
    unit_type: str
    last_ts: datetime
    hours_silent: Decimal


def _cutoff(session: Session, now: datetime) -> ColumnElement | None:
    """Per unit type, the moment before which its latest reading makes an asset silent (None: no unit types)."""
    thresholds = session.execute(select(UnitType.id, UnitType.silent_after_hours)).all()
    if not thresholds:
        return None
    return case(*[(AssetUnit.unit_type_id == unit_id, literal(now - timedelta(hours=hours), UTCDateTime()))
                  for unit_id, hours in thresholds])


def silent_pairs(session: Session, now: datetime | None = None) -> Select | None:
    """(asset_id, client_id, unit_type_id, last_ts) of every silent (asset, unit type): an enabled bucket of the unit
    type binds the enabled, not disregarded asset, and its latest reading of the unit is older than the unit type's
    `silent_after_hours`. An asset that never reported the unit type has no latest reading and is not listed."""
    now = now or datetime.now(timezone.utc)
    cutoff, early = _cutoff(session, now), _cutoff(session, now - SEEN_STEP)
    if cutoff is None:
        return None
    bound = select(1).select_from(bucket_assets).join(Bucket, Bucket.id == bucket_assets.c.bucket_id).where(
        bucket_assets.c.asset_id == AssetUnit.asset_id, Bucket.unit_type_id == AssetUnit.unit_type_id,
        Bucket.enabled.is_(True),
    ).correlate(AssetUnit)
    return (
        select(AssetUnit.asset_id, Asset.client_id, AssetUnit.unit_type_id,
               type_coerce(latest_of_pair(), UTCDateTime).label("last_ts"))
        .join(Asset, Asset.id == AssetUnit.asset_id)
        .where(Asset.enabled.is_(True), Asset.disregarded_at.is_(None), silent_since(cutoff, early), exists(bound))
    )


def hours_between(earlier: datetime, later: datetime) -> Decimal:
    """Whole and fractional hours from `earlier` to `later`, to 2 places."""
    seconds = Decimal(int((later - earlier).total_seconds()))
    return (seconds / 3600).quantize(HOURS, rounding=ROUND_HALF_UP)


def silent_assets(session: Session, now: datetime | None = None, client_id: int | None = None,
                  limit: int | None = None, offset: int = 0) -> list[SilentAsset]:
    """The silent (asset, unit type) pairs, longest silent first (optionally one client's, one page)."""
    now = now or datetime.now(timezone.utc)
    pairs = silent_pairs(session, now)
    if pairs is None:
        return []
    if client_id is not None:
        pairs = pairs.where(Asset.client_id == client_id)
    found = pairs.subquery()
    query = (
        select(found.c.asset_id, Asset.external_id, Asset.name, found.c.client_id, Client.name, found.c.unit_type_id,
               UnitType.name, found.c.last_ts)
        .join(Asset, Asset.id == found.c.asset_id)
        .join(UnitType, UnitType.id == found.c.unit_type_id)
        .outerjoin(Client, Client.id == found.c.client_id)
        .order_by(found.c.last_ts, found.c.asset_id, found.c.unit_type_id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    return [SilentAsset(asset_id, external_id, name, cid, client, unit_id, unit, _aware(last),
                        hours_between(_aware(last), now))
            for asset_id, external_id, name, cid, client, unit_id, unit, last in rows]


def silent_count(session: Session, now: datetime | None = None, client_id: int | None = None) -> int:
    """How many (asset, unit type) pairs are silent."""
    pairs = silent_pairs(session, now)
    if pairs is None:
        return 0
    if client_id is not None:
        pairs = pairs.where(Asset.client_id == client_id)
    return session.scalar(select(func.count()).select_from(pairs.subquery())) or 0


def silent_subjects(session: Session, now: datetime | None = None) -> dict[str, dict]:
    """Every silent pair as an `asset.silent` episode subject (`<asset id>:<unit type id>`) and its event data."""
    return {f"{row.asset_id}:{row.unit_type_id}": {
        "asset_id": row.asset_id, "external_id": row.external_id, "client_id": row.client_id,
        "unit_type_id": row.unit_type_id, "unit_type": row.unit_type,
        "last_ts": row.last_ts.isoformat().replace("+00:00", "Z"), "hours_silent": str(row.hours_silent),
    } for row in silent_assets(session, now)}


def _aware(moment: datetime) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
