"""Asset grids: All, New, Unassigned and Disregarded (Unbound lives in views/unbound.py)."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_admin.actions import action
from flask_login import current_user
from sqlalchemy import func, select
from wtforms.validators import DataRequired, Length

from extensions import db
from ingest.last_seen import last_seen
from models import Asset, utcnow
from views.base import SecureModelView, fmt_time, link
from views.csv_export import CsvExportMixin
from views.row_buttons import row_button
from web.formatting import utc
from web.auth import can_edit
from web.redirects import safe_next


def set_assets(ids: list[str], **values) -> int:
    """Apply the same field values to the assets with these ids through the ORM (so each change is audited)."""
    assets = db.session.scalars(select(Asset).where(Asset.id.in_([int(i) for i in ids]))).all()
    for asset in assets:
        for key, value in values.items():
            setattr(asset, key, value)
    db.session.commit()
    return len(assets)


class AssetView(CsvExportMixin, SecureModelView):
    column_list = ("id", "client", "name", "description", "acknowledged", "enabled", "created_at", "last_seen_at",
                   "quick")
    column_labels = {
        "id": "ID", "quick": "", "acknowledged": "Ack", "created_at": "Created", "last_seen_at": "Last Seen",
        "external_id": "Asset ID", "source_type": "Source", "client.name": "Client",
    }
    column_searchable_list = ("external_id", "name", "description", "client.name")
    column_filters = ("client.name", "external_id", "source_type", "acknowledged", "enabled", "last_seen_at", "created_at")
    column_sortable_list = ("id", ("client", "client.name"), "name", "acknowledged", "enabled", "created_at", "last_seen_at")
    column_default_sort = ("id", True)
    column_select_related_list = (Asset.client,)
    column_formatters = {
        "name": lambda v, c, m, n: link("asset_page.asset", m.name or m.external_id, asset_id=m.id),
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id) if m.client else "—",
        "created_at": fmt_time("created_at"),
        "last_seen_at": lambda v, c, m, n: utc(g.get("last_seen", {}).get(m.id, m.last_seen_at)),
        "quick": lambda v, c, m, n: "" if m.acknowledged else row_button("ack", m.id, "Ack", "Acknowledge this asset"),
    }
    form_columns = ("external_id", "source_type", "name", "description", "client", "acknowledged", "enabled")
    form_ajax_refs = {"client": {"fields": ("name",), "page_size": 20}}
    form_args = {
        "external_id": {"label": "Asset ID", "validators": [DataRequired(), Length(max=255)]},
        "source_type": {"label": "Source Type", "validators": [DataRequired(), Length(max=100)]},
        "name": {"validators": [Length(max=255)]},
    }
    empty_message = "No assets"
    heading = "Assets"
    csv_filename = "assets.csv"
    csv_columns = (
        ("id", lambda m: m.id), ("asset_id", lambda m: m.external_id), ("source_type", lambda m: m.source_type),
        ("name", lambda m: m.name), ("description", lambda m: m.description), ("client_id", lambda m: m.client_id),
        ("client", lambda m: m.client.name if m.client else None), ("acknowledged", lambda m: m.acknowledged),
        ("enabled", lambda m: m.enabled), ("created_at", lambda m: m.created_at),
        ("last_seen_at", lambda m: m.last_seen_at), ("disregarded_at", lambda m: m.disregarded_at),
    )
    shows_disregarded = False

    def __init__(self, name: str = "All", endpoint: str = "asset", category: str | None = "Assets", **kwargs) -> None:
        super().__init__(Asset, name=name, endpoint=endpoint, category=category, **kwargs)

    def get_list(self, *args, **kwargs):
        """The page's rows, with each one's exact Last Seen (ingest/last_seen.py) for the formatter."""
        count, data = super().get_list(*args, **kwargs)
        g.last_seen = last_seen(db.session, [asset.id for asset in data])
        return count, data

    def scope(self, query):
        """The rows this grid shows; disregarded assets are hidden from default views."""
        if self.shows_disregarded:
            return query.filter(Asset.disregarded_at.is_not(None))
        return query.filter(Asset.disregarded_at.is_(None))

    def get_query(self):
        return self.scope(super().get_query())

    def get_count_query(self):
        return self.scope(db.session.query(func.count(Asset.id)).select_from(Asset))

    def get_one(self, id):
        return db.session.get(Asset, int(id)) if str(id).isdigit() else None

    @action("acknowledge", "Acknowledge", "Acknowledge the selected assets?")
    def action_acknowledge(self, ids: list[str]) -> None:
        flash(f"{set_assets(ids, acknowledged=True)} assets acknowledged.", "success")

    @action("disregard", "Disregard", "Disregard the selected assets? They leave billing; their readings stay.")
    def action_disregard(self, ids: list[str]) -> None:
        flash(f"{set_assets(ids, disregarded_at=utcnow())} assets disregarded.", "success")

    @action("assign", "Assign to client")
    def action_assign(self, ids: list[str]):
        """Lead to the client chooser (the grid's action form cannot hold a client select)."""
        back = safe_next(request.form.get("url"), url_for(".index_view"))
        return redirect(url_for("asset_page.assign_many", ids=",".join(ids), next=back))

    def is_action_allowed(self, name: str) -> bool:
        return can_edit(current_user) and super().is_action_allowed(name)

    @action("enable", "Enable")
    def action_enable(self, ids: list[str]) -> None:
        flash(f"{set_assets(ids, enabled=True)} assets enabled.", "success")

    @action("disable", "Disable")
    def action_disable(self, ids: list[str]) -> None:
        flash(f"{set_assets(ids, enabled=False)} assets disabled.", "success")


class NewAssetView(AssetView):
    empty_message = "No new assets"
    heading = "New Assets"

    def scope(self, query):
        return super().scope(query).filter(Asset.acknowledged.is_(False))


class UnassignedAssetView(AssetView):
    empty_message = "No unassigned assets"
    heading = "Unassigned Assets"

    def scope(self, query):
        return super().scope(query).filter(Asset.client_id.is_(None))


class DisregardedAssetView(AssetView):
    action_disallowed_list = ("disregard", "acknowledge", "assign")
    column_list = ("external_id", "client", "last_seen_at", "disregarded_at", "quick")
    column_labels = dict(AssetView.column_labels, external_id="Asset ID", disregarded_at="Disregarded")
    column_sortable_list = ("external_id", ("client", "client.name"), "last_seen_at", "disregarded_at")
    column_default_sort = ("disregarded_at", True)
    column_formatters = dict(
        AssetView.column_formatters,
        external_id=lambda v, c, m, n: link("asset_page.asset", m.external_id, asset_id=m.id),
        disregarded_at=fmt_time("disregarded_at"),
        quick=lambda v, c, m, n: row_button("restore", m.id, "Restore", "Restore this asset to billing"),
    )
    empty_message = "No disregarded assets"
    heading = "Disregarded Assets"
    intro = ("Disregarded assets are hidden from default views and excluded from billing. "
             "Historical data is preserved.")
    shows_disregarded = True
    allow_create = False

    @action("restore", "Restore", "Restore the selected assets to billing?")
    def action_restore(self, ids: list[str]) -> None:
        flash(f"{set_assets(ids, disregarded_at=None)} assets restored.", "success")
