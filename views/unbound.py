"""Unbound Assets: usage that no enabled bucket bills (revenue leakage); this page exists to empty itself."""
from __future__ import annotations

from models import Asset
from reports.assets import unbound_asset_ids
from views.assets import AssetView


class UnboundAssetView(AssetView):
    column_list = ("external_id", "source_type", "description", "client", "last_seen_at")
    column_labels = dict(AssetView.column_labels, external_id="Asset ID", source_type="Source")
    column_sortable_list = ("external_id", "source_type", ("client", "client.name"), "last_seen_at")
    empty_message = "No unbound assets"
    allow_create = False

    def scope(self, query):
        return super().scope(query).filter(Asset.id.in_(unbound_asset_ids()))
