"""Auto-provisioning: bind client assets that report a unit type to a bucket made from the unit type's template.

Rule (DESIGN.md "Billing rules"): for each unit type with auto-provision on, every client asset
(assigned, enabled, not disregarded) that has readings of that unit type, whose external id
matches the filter pattern (glob, case-sensitive), and that no bucket of that client and unit type
binds, is bound to that client's bucket for the unit type and source type, created if missing
from the template (aggregation, base, overage, commit 0) with `reviewed = false`.

Decisions: "no bucket binds" counts disabled buckets too (a disabled binding is a staff decision);
the bucket an asset joins follows the binding rule of billing/binding.py (the client's enabled bucket of that unit
type and source type with the lowest id); a new bucket is named "<unit type> (<source type>)" (with " 2", " 3"… when the client
already uses that name). Binding an asset to an existing bucket leaves its `reviewed` flag alone.
Changes go through the ORM, so database/audit.py writes the audit rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, selectinload

from billing.binding import bucket_for, enabled_buckets
from billing.progress import Progress
from models import Asset, AssetUnit, Bucket, Client, UnitType, bucket_assets


@dataclass
class PlannedBinding:
    """Assets of one client and source type to bind to one bucket (existing when bucket_id is set)."""

    client_id: int
    client_name: str
    unit_type_id: int
    unit_type_name: str
    source_type: str
    bucket_id: int | None
    bucket_name: str
    asset_ids: list[int] = field(default_factory=list)
    asset_external_ids: list[str] = field(default_factory=list)

    @property
    def creates_bucket(self) -> bool:
        return self.bucket_id is None


@dataclass(frozen=True, slots=True)
class ProvisioningSummary:
    buckets_created: int
    assets_bound: int
    unit_types: int

    def message(self) -> str:
        return (f"Auto-provisioning over {self.unit_types} unit types: {self.buckets_created} buckets created, "
                f"{self.assets_bound} assets bound.")


def template_bucket_name(unit_type_name: str, source_type: str) -> str:
    return f"{unit_type_name} ({source_type})"[:200]


def _candidates(session: Session, unit_type: UnitType) -> list[tuple[int, str, str, int, str]]:
    """(asset id, external id, source type, client id, client name) of eligible, unbound, matching assets."""
    # `unit_type_id + 0` keeps the planner off ix_buckets_unit_type (every bucket of the unit type, for each asset):
    # the asset's client's few buckets are found by uq_buckets_client_name instead (SQLite: ~100 ms -> ~10 ms at 10x).
    already_bound = exists().where(
        bucket_assets.c.asset_id == Asset.id,
        bucket_assets.c.bucket_id == Bucket.id,
        Bucket.client_id == Asset.client_id,
        Bucket.unit_type_id + 0 == unit_type.id,
    )
    rows = session.execute(
        select(Asset.id, Asset.external_id, Asset.source_type, Asset.client_id, Client.name)
        .join(AssetUnit, and_(AssetUnit.asset_id == Asset.id, AssetUnit.unit_type_id == unit_type.id))
        .join(Client, Client.id == Asset.client_id)
        .where(Asset.enabled.is_(True), Asset.disregarded_at.is_(None), ~already_bound)
        .order_by(Asset.client_id, Asset.source_type, Asset.id)
    ).all()
    pattern = unit_type.filter_pattern or "*"
    return [tuple(row) for row in rows if fnmatchcase(row.external_id, pattern)]


def _plan_unit_type(session: Session, unit_type: UnitType) -> list[PlannedBinding]:
    groups: dict[tuple[int, str], PlannedBinding] = {}
    candidates = _candidates(session, unit_type)
    if not candidates:
        return []
    choices = enabled_buckets(session, {row[3] for row in candidates}, unit_type.id)
    for asset_id, external_id, source_type, client_id, client_name in candidates:
        key = (client_id, source_type)
        plan = groups.get(key)
        if plan is None:
            chosen = bucket_for(choices.get((client_id, unit_type.id), []), source_type, any_source=False)
            bucket_id, name = (chosen.id, chosen.name) if chosen else (None, template_bucket_name(unit_type.name,
                                                                                                  source_type))
            plan = groups[key] = PlannedBinding(client_id, client_name, unit_type.id, unit_type.name, source_type,
                                                bucket_id, name)
        plan.asset_ids.append(asset_id)
        plan.asset_external_ids.append(external_id)
    return list(groups.values())


def _auto_unit_types(session: Session) -> list[UnitType]:
    return list(session.scalars(select(UnitType).where(UnitType.auto_provision.is_(True)).order_by(UnitType.name)))


def preview_provisioning(session: Session) -> list[PlannedBinding]:
    """What a provisioning run would create and bind now, without writing anything."""
    plans: list[PlannedBinding] = []
    for unit_type in _auto_unit_types(session):
        plans.extend(_plan_unit_type(session, unit_type))
    return plans


def _free_name(session: Session, client_id: int, wanted: str) -> str:
    # Every name of the client (a few): a LIKE prefix filter missed names with a backslash on PostgreSQL (its escape).
    taken = set(session.scalars(select(Bucket.name).where(Bucket.client_id == client_id)))
    name, number = wanted, 1
    while name in taken:
        number += 1
        suffix = f" {number}"
        name = wanted[:200 - len(suffix)] + suffix
    return name


def _apply(session: Session, unit_type: UnitType, plan: PlannedBinding) -> bool:
    """Bind the plan's assets (creating its bucket when needed); True when a bucket was created."""
    assets = list(session.scalars(select(Asset).where(Asset.id.in_(plan.asset_ids))))
    if plan.bucket_id is not None:
        bucket = session.scalar(select(Bucket).options(selectinload(Bucket.assets)).where(Bucket.id == plan.bucket_id))
        have = {asset.id for asset in bucket.assets}
        bucket.assets.extend(asset for asset in assets if asset.id not in have)
        return False
    bucket = Bucket(
        client_id=plan.client_id, name=_free_name(session, plan.client_id, plan.bucket_name),
        unit_type_id=unit_type.id, source_type=plan.source_type, aggregation=unit_type.aggregation,
        commit=0, base_price=unit_type.base_price, overage_price=unit_type.overage_price,
        reviewed=False, enabled=True, assets=assets,
    )
    session.add(bucket)
    session.flush()
    plan.bucket_id, plan.bucket_name = bucket.id, bucket.name
    return True


def run_provisioning(session: Session, progress: Progress | None = None) -> ProvisioningSummary:
    """Create and bind what preview_provisioning shows, one unit type per transaction. Commits."""
    report = progress or (lambda percent, message: None)
    unit_types = _auto_unit_types(session)
    created = bound = 0
    for number, unit_type in enumerate(unit_types, start=1):
        for plan in _plan_unit_type(session, unit_type):
            created += _apply(session, unit_type, plan)
            bound += len(plan.asset_ids)
        session.commit()
        report(100 * number // len(unit_types), f"{unit_type.name}: {created} buckets created, {bound} assets bound")
    return ProvisioningSummary(created, bound, len(unit_types))

