"""Deletes that would change a bill are refused; an allowed delete takes its dependents with it explicitly, audited.

DESIGN "Money integrity": a finalized line, and the readings it was computed from, are never changed or removed by
any route. One `before_flush` hook holds it for every Client, Bucket, Asset and UnitType deleted through the ORM (grid
delete, bulk delete, API DELETE, jobs, commands). A finalized line *depends on*:

- a bucket: the line is the bucket's (`billing_readings.bucket_id`);
- a client: the line is the client's (`client_id`) or one of its buckets' (they would go with the client);
- an asset: the line's per-asset details name it (`finalized_line_assets`, kept from the details by database
  triggers): exactly the assets whose readings the line was computed from, bound, enabled and regarded when billed;
- a unit type: one of its buckets has the line, or it has readings inside the period of a finalized line.

Such a delete raises `FinalizedLineDependency` naming the records and the finalized periods, before anything is
written. A unit type that still has buckets or readings is refused as well (`RecordInUse`): its readings would go
with it. Otherwise the dependents are removed (or unassigned) here, set-based, each with audit rows, before the ORM
deletes the record, so the database's ON DELETE actions find nothing left to do silently:

- client: its buckets (with their dependents below), its API keys and its remaining billing lines and projections
  are deleted; its assets become unassigned (one `update` row each);
- bucket: its asset bindings (`bucket_assets`, one row per binding), unfinalized billing lines and projections;
- asset: its bindings, and its readings and `asset_units` (one summary row per asset and table: count, first and
  last timestamp).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import chain
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, event, exists, func, or_, select, update
from sqlalchemy.orm import Session

from database.audit import audit_rows
from models import (
    ApiKey, Asset, AssetUnit, BillingReading, Bucket, Client, Projection, Reading, UnitType, bucket_assets,
    finalized_line_assets,
)

MAX_NAMED = 5
ADVICE = {"client": "disable it instead", "bucket": "disable it instead", "asset": "disable or disregard it instead",
          "unit type": "a unit type that bills cannot be deleted"}
COLLECTIONS = {Client: ("buckets", "assets"), Bucket: ("assets",), Asset: ("buckets",)}


class DeleteRefused(ValueError):
    """A delete the data model refuses; nothing was written. Routes answer 409 (API) or flash it (grids)."""


class FinalizedLineDependency(DeleteRefused):
    """A finalized billing line depends on a record being deleted: disable the record instead."""


class RecordInUse(DeleteRefused):
    """A unit type still has buckets or readings."""


def _periods(starts: Iterable[datetime]) -> str:
    return ", ".join(sorted({f"{start:%Y-%m}" for start in starts}))


def _refusal(reasons: list[str]) -> str:
    more = f"; and {len(reasons) - MAX_NAMED} more" if len(reasons) > MAX_NAMED else ""
    return "; ".join(reasons[:MAX_NAMED]) + more + ". Nothing was deleted."


def _deleted(session: Session, model: type) -> dict[int, Any]:
    return {obj.id: obj for obj in session.deleted if isinstance(obj, model)}


@event.listens_for(Session, "before_flush")
def guard_deletes(session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse deletes a finalized line depends on; remove the dependents of allowed ones explicitly, audited."""
    clients, buckets = _deleted(session, Client), _deleted(session, Bucket)
    assets, unit_types = _deleted(session, Asset), _deleted(session, UnitType)
    if not (clients or buckets or assets or unit_types):
        return
    client_buckets = _client_buckets(session, clients, exclude=buckets)
    _refuse_finalized(_owner_dependencies(session, clients, buckets, client_buckets),
                      _asset_dependencies(session, assets), _unit_type_dependencies(session, unit_types))
    _refuse_unit_types_in_use(session, unit_types)
    _remove_client_dependents(session, clients, client_buckets)
    _remove_bucket_dependents(session, set(buckets) | set(client_buckets), set(clients))
    _remove_rows(session, Bucket.__table__, Bucket.id.in_(list(client_buckets)))
    _remove_asset_dependents(session, set(assets))
    for obj in (*clients.values(), *buckets.values(), *assets.values()):
        session.expire(obj, list(COLLECTIONS[type(obj)]))


def _client_buckets(session: Session, clients: dict[int, Client], exclude: dict[int, Bucket]) -> dict[int, Any]:
    """The buckets that go with the deleted clients (besides those deleted in their own right)."""
    if not clients:
        return {}
    rows = session.execute(select(Bucket.id, Bucket.name, Bucket.client_id).where(
        Bucket.client_id.in_(list(clients)), Bucket.id.not_in(list(exclude))))
    return {row.id: row for row in rows}


# ---- refusals ---------------------------------------------------------------------------------------------------

Dependency = tuple[str, str, int, datetime]  # kind of record, its name, its id, the finalized period's start


def _owner_dependencies(session: Session, clients: dict[int, Client], buckets: dict[int, Bucket],
                        client_buckets: dict[int, Any]) -> Iterator[Dependency]:
    """Finalized lines of the deleted buckets, and of the deleted clients (their own, or their buckets')."""
    if not (clients or buckets):
        return
    lines = session.execute(
        select(BillingReading.bucket_id, BillingReading.client_id, BillingReading.period_start)
        .where(BillingReading.finalized.is_(True), or_(
            BillingReading.bucket_id.in_(list(buckets) + list(client_buckets)),
            BillingReading.client_id.in_(list(clients)))))
    for bucket_id, client_id, start in lines:
        if bucket_id in buckets:
            yield "bucket", buckets[bucket_id].name, bucket_id, start
        owner = client_id if client_id in clients else getattr(client_buckets.get(bucket_id), "client_id", None)
        if owner in clients:
            yield "client", clients[owner].name, owner, start


def _asset_dependencies(session: Session, assets: dict[int, Asset]) -> Iterator[Dependency]:
    """Finalized lines whose per-asset details name the deleted assets (an index seek on finalized_line_assets)."""
    if not assets:
        return
    rows = session.execute(
        select(finalized_line_assets.c.asset_id, BillingReading.period_start)
        .join(BillingReading, BillingReading.id == finalized_line_assets.c.line_id)
        .where(finalized_line_assets.c.asset_id.in_(list(assets))))
    for asset_id, start in rows:
        yield "asset", str(assets[asset_id]), asset_id, start


def _unit_type_dependencies(session: Session, unit_types: dict[int, UnitType]) -> Iterator[Dependency]:
    """A bucket of the type has a finalized line, or the type has readings inside a finalized line's period (one
    index seek on readings (unit_type_id, ts) per distinct finalized period)."""
    if not unit_types:
        return
    ids = list(unit_types)
    by_bucket = (select(Bucket.unit_type_id, BillingReading.period_start)
                 .join(BillingReading, BillingReading.bucket_id == Bucket.id)
                 .where(BillingReading.finalized.is_(True), Bucket.unit_type_id.in_(ids)))
    periods = (select(BillingReading.period_start, BillingReading.period_end)
               .where(BillingReading.finalized.is_(True)).distinct().subquery("finalized_periods"))
    by_readings = (select(UnitType.id, periods.c.period_start)
                   .join(periods, exists().where(Reading.unit_type_id == UnitType.id,
                                                 Reading.ts >= periods.c.period_start,
                                                 Reading.ts < periods.c.period_end))
                   .where(UnitType.id.in_(ids)))
    for unit_type_id, start in session.execute(by_bucket.union(by_readings)):
        yield "unit type", unit_types[unit_type_id].name, unit_type_id, start


def _refuse_finalized(*dependencies: Iterable[Dependency]) -> None:
    found: dict[tuple[str, str], set[datetime]] = defaultdict(set)
    for kind, name, record_id, start in chain(*dependencies):
        found[(kind, f"{kind} {name!r} (id {record_id})")].add(start)
    if found:
        raise FinalizedLineDependency(_refusal([
            f"{label} has finalized billing lines for {_periods(starts)}: {ADVICE[kind]}"
            for (kind, label), starts in found.items()]))


def _refuse_unit_types_in_use(session: Session, unit_types: dict[int, UnitType]) -> None:
    if not unit_types:
        return
    ids = list(unit_types)
    bucket_counts = dict(session.execute(select(Bucket.unit_type_id, func.count()).where(
        Bucket.unit_type_id.in_(ids)).group_by(Bucket.unit_type_id)).all())
    with_readings = set(session.scalars(select(UnitType.id).where(UnitType.id.in_(ids), or_(
        exists().where(Reading.unit_type_id == UnitType.id), exists().where(AssetUnit.unit_type_id == UnitType.id)))))
    reasons = []
    for unit_type_id, unit_type in unit_types.items():
        label = f"unit type {unit_type.name!r} (id {unit_type_id})"
        if unit_type_id in bucket_counts:
            reasons.append(f"{label} is used by {bucket_counts[unit_type_id]} bucket(s); delete or move them first")
        elif unit_type_id in with_readings:
            reasons.append(f"{label} has readings; it cannot be deleted")
    if reasons:
        raise RecordInUse(_refusal(reasons))


# ---- explicit, audited cascades ---------------------------------------------------------------------------------

def _values(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {key: value for key, value in row._mapping.items() if key not in skip}


def _remove_rows(session: Session, table: Table, where: ColumnElement[bool], skip: tuple[str, ...] = ()) -> None:
    """Delete the rows of `table` matching `where`, one audit row each with its old values (except `skip`)."""
    rows = session.execute(select(table).where(where)).all()
    if not rows:
        return
    key = list(table.primary_key.columns)
    audit_rows(session, "delete", table.name, [
        (",".join(str(getattr(row, column.name)) for column in key), _values(row, skip), None) for row in rows])
    session.execute(delete(table).where(where))


def _remove_client_dependents(session: Session, clients: dict[int, Client], client_buckets: dict[int, Any]) -> None:
    if not clients:
        return
    ids = list(clients)
    unassigned = session.execute(select(Asset.id, Asset.client_id).where(Asset.client_id.in_(ids))).all()
    audit_rows(session, "update", Asset.__tablename__,
               [(row.id, {"client_id": row.client_id}, {"client_id": None}) for row in unassigned])
    if unassigned:
        session.execute(update(Asset).where(Asset.client_id.in_(ids)).values(client_id=None))
    _remove_rows(session, ApiKey.__table__, ApiKey.client_id.in_(ids))


def _remove_bucket_dependents(session: Session, bucket_ids: set[int], client_ids: set[int]) -> None:
    if not bucket_ids and not client_ids:
        return
    _remove_rows(session, bucket_assets, bucket_assets.c.bucket_id.in_(list(bucket_ids)))
    for model, skip in ((BillingReading, ("details",)), (Projection, ())):
        owned = or_(model.bucket_id.in_(list(bucket_ids)), model.client_id.in_(list(client_ids)))
        unfinalized = and_(owned, BillingReading.finalized.is_(False)) if model is BillingReading else owned
        _remove_rows(session, model.__table__, unfinalized, skip)


def _remove_asset_dependents(session: Session, asset_ids: set[int]) -> None:
    if not asset_ids:
        return
    ids = list(asset_ids)
    _remove_rows(session, bucket_assets, bucket_assets.c.asset_id.in_(ids))
    for model in (Reading, AssetUnit):
        first = Reading.ts if model is Reading else AssetUnit.first_ts
        last = Reading.ts if model is Reading else AssetUnit.last_ts
        summary = session.execute(
            select(model.asset_id, func.count(), func.min(first), func.max(last))
            .where(model.asset_id.in_(ids)).group_by(model.asset_id)).all()
        audit_rows(session, "delete", model.__tablename__, [
            (None, {"asset_id": asset_id, "count": count, "first_ts": first_ts, "last_ts": last_ts}, None)
            for asset_id, count, first_ts, last_ts in summary])
        if summary:
            session.execute(delete(model).where(model.asset_id.in_(ids)))
