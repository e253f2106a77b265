"""Unbound Assets: usage that no enabled bucket bills (revenue leakage); this page exists to empty itself."""
from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from extensions import db
from models import Asset, Bucket
from reports.assets import unbound_asset_ids, unbound_pairs
from views.assets import AssetView
from views.base import link


def bind_to_client_buckets(session: Session, asset_ids: list[int]) -> tuple[int, list[str]]:
    """Bind each unbound (asset, unit type) to an enabled bucket of the asset's client with that unit type
    (one of the asset's source type first). Returns the number of bindings made and what could not be bound.
    Changes go through the ORM (audited); the caller commits."""
    pairs = unbound_pairs().where(Asset.id.in_(asset_ids)).subquery()
    wanted = session.execute(select(pairs.c.asset_id, pairs.c.unit_type_id)).all()
    assets = {a.id: a for a in session.scalars(
        select(Asset).where(Asset.id.in_({a for a, _ in wanted})).options(selectinload(Asset.buckets))
    ).all()}
    client_ids = {a.client_id for a in assets.values() if a.client_id is not None}
    buckets: dict[tuple[int, int], list[Bucket]] = {}
    for bucket in session.scalars(
        select(Bucket).where(Bucket.client_id.in_(client_ids), Bucket.enabled.is_(True)).order_by(Bucket.id)
    ).all():
        buckets.setdefault((bucket.client_id, bucket.unit_type_id), []).append(bucket)
    bound, missed = 0, []
    for asset_id, unit_type_id in wanted:
        asset = assets[asset_id]
        if asset.client_id is None:
            missed.append(f"{asset.external_id}: no client")
            continue
        choices = buckets.get((asset.client_id, unit_type_id), [])
        if not choices:
            missed.append(f"{asset.external_id}: its client has no enabled bucket of that unit type")
            continue
        choices = sorted(choices, key=lambda b: b.source_type != asset.source_type)
        asset.buckets.append(choices[0])
        bound += 1
    return bound, missed


class UnboundAssetView(AssetView):
    column_list = ("external_id", "source_type", "description", "client", "last_seen_at")
    column_labels = dict(AssetView.column_labels, external_id="Asset ID", source_type="Source")
    column_sortable_list = ("external_id", "source_type", ("client", "client.name"), "last_seen_at")
    column_formatters = dict(
        AssetView.column_formatters,
        external_id=lambda v, c, m, n: link("asset_page.asset", m.external_id, asset_id=m.id),
    )
    empty_message = "No unbound assets"
    allow_create = False

    def scope(self, query):
        return super().scope(query).filter(Asset.id.in_(unbound_asset_ids()))

    @action("bind", "Bind to client bucket",
            "Bind the selected assets to their client's bucket of the matching unit type?")
    def action_bind(self, ids: list[str]) -> None:
        bound, missed = bind_to_client_buckets(db.session, [int(i) for i in ids])
        db.session.commit()
        flash(f"{bound} asset usages bound to a bucket.", "success")
        if missed:
            flash("Not bound: " + "; ".join(missed[:10]) + (" …" if len(missed) > 10 else ""), "warning")
