"""Unbound Assets: usage that no enabled bucket bills (revenue leakage); this page exists to empty itself."""
from __future__ import annotations

from flask import flash, g
from flask_admin.actions import action
from markupsafe import Markup

from billing.binding import bind_unbound
from extensions import db
from models import Asset
from reports.assets import unbound_asset_ids
from reports.unbound import unbound_usage
from views.assets import AssetView
from views.base import link
from views.row_buttons import row_button
from web.formatting import money, quantity


def unbound_cell(view, context, model: Asset, name: str) -> Markup:
    """Each unbound unit type of the asset with this month's usage and its $ at the unit type's price."""
    found = g.get("unbound_usage", {}).get(model.id, [])
    return Markup("<br>").join(
        Markup('<span class="unbound-unit"><strong>{}</strong>: {} <span class="text-muted">({})</span> · '
               '<span class="unbound-cost">{}</span></span>').format(
            item.unit_type, "—" if item.usage is None else quantity(item.usage), item.aggregation,
            "—" if item.cost is None else money(item.cost))
        for item in found)


class UnboundAssetView(AssetView):
    column_list = ("external_id", "source_type", "client", "unbound", "last_seen_at", "quick")
    column_labels = dict(AssetView.column_labels, external_id="Asset ID", source_type="Source",
                         unbound="Unbound unit type: usage this month · $ at stake")
    column_descriptions = {"unbound": "This month's usage by the unit type's aggregation, priced as "
                                      "auto-provisioning would bill it (commit 0: usage × the unit type's overage "
                                      "price)."}
    column_sortable_list = ("external_id", "source_type", ("client", "client.name"), "last_seen_at")
    column_formatters = dict(
        AssetView.column_formatters,
        external_id=lambda v, c, m, n: link("asset_page.asset", m.external_id, asset_id=m.id),
        unbound=unbound_cell,
        quick=lambda v, c, m, n: row_button("bind", m.id, "Bind", "Bind to the client's bucket of that unit type")
        if m.client_id else "",
    )
    empty_message = "No unbound assets"
    heading = "Unbound Assets"
    allow_create = False

    def scope(self, query):
        return super().scope(query).filter(Asset.id.in_(unbound_asset_ids()))

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        g.unbound_usage = unbound_usage(db.session, [row.id for row in rows])
        return count, rows

    @action("bind", "Bind to client bucket",
            "Bind the selected assets to their client's bucket of the matching unit type?")
    def action_bind(self, ids: list[str]) -> None:
        bound, missed = bind_unbound(db.session, [int(i) for i in ids])
        db.session.commit()
        flash(f"{bound} asset usages bound to a bucket.", "success")
        if missed:
            flash("Not bound: " + "; ".join(missed[:10]) + (" …" if len(missed) > 10 else ""), "warning")
