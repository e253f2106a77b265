"""Unbound Assets: usage that no enabled bucket bills (revenue leakage); this page exists to empty itself."""
from __future__ import annotations

from flask import flash
from flask_admin.actions import action

from billing.binding import bind_unbound
from extensions import db
from models import Asset
from reports.assets import unbound_asset_ids
from views.assets import AssetView
from views.base import link


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
        bound, missed = bind_unbound(db.session, [int(i) for i in ids])
        db.session.commit()
        flash(f"{bound} asset usages bound to a bucket.", "success")
        if missed:
            flash("Not bound: " + "; ".join(missed[:10]) + (" …" if len(missed) > 10 else ""), "warning")
