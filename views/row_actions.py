"""One-click actions on a single grid row (Ack, Restore, Bind, Mark reviewed), beside the grids' bulk actions:
POST forms with CSRF; writers only (the base view refuses viewers); changes go through the ORM, so they are audited."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select

from billing.binding import bind_unbound
from extensions import db
from models import Asset, Bucket
from views.assets import set_assets
from views.base import HiddenView
from web.redirects import safe_next


class RowActions(HiddenView):
    """The endpoints behind views/row_buttons.row_button."""

    def _back(self):
        return redirect(safe_next(request.form.get("next"), url_for("admin.index")))

    @expose("/asset/<int:record_id>/ack", methods=("POST",))
    def ack(self, record_id: int):
        if set_assets([str(record_id)], acknowledged=True):
            flash("Asset acknowledged.", "success")
        return self._back()

    @expose("/asset/<int:record_id>/restore", methods=("POST",))
    def restore(self, record_id: int):
        if set_assets([str(record_id)], disregarded_at=None):
            flash("Asset restored to billing.", "success")
        return self._back()

    @expose("/asset/<int:record_id>/bind", methods=("POST",))
    def bind(self, record_id: int):
        asset = db.session.get(Asset, record_id)
        bound, missed = bind_unbound(db.session, [record_id]) if asset else (0, [])
        db.session.commit()
        if bound:
            flash(f"{asset.external_id}: {bound} unit type(s) bound to a bucket.", "success")
        for reason in missed:
            flash(f"Not bound: {reason}", "warning")
        return self._back()

    @expose("/bucket/<int:record_id>/review", methods=("POST",))
    def review(self, record_id: int):
        bucket = db.session.scalar(select(Bucket).where(Bucket.id == record_id))
        if bucket is not None:
            bucket.reviewed = True
            db.session.commit()
            flash(f"{bucket.name} marked reviewed.", "success")
        return self._back()
