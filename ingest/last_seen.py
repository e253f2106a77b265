"""When an asset last reported, exactly, although ingest moves the stored figures only by more than SEEN_STEP.

`asset_units.last_ts` (and `assets.last_seen_at`) lag the latest reading by at most `readings.SEEN_STEP`, and are
always the ts of a stored reading. So the latest reading of an (asset, unit type) is found from there with one
short seek on the readings key (asset_id, unit_type_id, ts); pages use these figures, never the stored ones.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import case, exists, false, func, select, true, type_coerce
from sqlalchemy.orm import Session

from models import AssetUnit, Reading, UTCDateTime
from ingest.store import SEEN_STEP


def latest_of_pair():
    """The exact latest reading ts of the correlated asset_units row."""
    later = (select(func.max(Reading.ts))
             .where(Reading.asset_id == AssetUnit.asset_id, Reading.unit_type_id == AssetUnit.unit_type_id,
                    Reading.ts >= AssetUnit.last_ts)
             .correlate(AssetUnit).scalar_subquery())
    return func.coalesce(later, AssetUnit.last_ts)


def last_seen(session: Session, asset_ids: Iterable[int]) -> dict[int, datetime]:
    """Asset id -> the ts of its latest reading (assets with no readings are left out)."""
    ids = sorted(set(asset_ids))
    if not ids:
        return {}
    latest = type_coerce(func.max(latest_of_pair()), UTCDateTime)
    found: dict[int, datetime] = {}
    for first in range(0, len(ids), 500):
        found.update(session.execute(
            select(AssetUnit.asset_id, latest).where(AssetUnit.asset_id.in_(ids[first:first + 500]))
            .group_by(AssetUnit.asset_id)).all())
    return found


def silent_since(cutoff, early):
    """A condition on the correlated asset_units row: no reading at or after `cutoff` (exact). `early` is `cutoff`
    less SEEN_STEP: a summary before it settles the answer without a seek."""
    sought = exists().where(Reading.asset_id == AssetUnit.asset_id, Reading.unit_type_id == AssetUnit.unit_type_id,
                            Reading.ts >= cutoff).correlate(AssetUnit)
    return case((AssetUnit.last_ts >= cutoff, false()), (AssetUnit.last_ts < early, true()), else_=~sought)


def has_readings_since(since: datetime):
    """A condition on the correlated asset_units row: the pair has a reading at or after `since` (exact)."""
    sought = exists().where(Reading.asset_id == AssetUnit.asset_id, Reading.unit_type_id == AssetUnit.unit_type_id,
                            Reading.ts >= since).correlate(AssetUnit)
    # CASE, not OR: the seek runs only for the pairs whose summary lies in the step before `since`
    return case((AssetUnit.last_ts >= since, true()), (AssetUnit.last_ts >= since - SEEN_STEP, sought), else_=false())
