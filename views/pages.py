"""Record pages: a client (buckets, assets, billing history, open issues) and an asset (its usage and quick actions)."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import select

from billing.gaps import current_gaps
from extensions import db
from ingest.last_seen import last_seen
from models import Asset, Client, utcnow
from reports.client_page import client_assets, client_history, client_issues
from reports.clients import client_buckets
from reports.issues import client_open_issues
from reports.late_usage import client_adjustments
from reports.usage import asset_usage
from views import charts
from views.assets import set_assets
from views.base import HiddenView
from views.links import filtered_url
from web.auth import can_edit
from web.redirects import safe_next


class ClientPage(HiddenView):
    @expose("/<int:client_id>")
    def client(self, client_id: int):
        client = db.session.get(Client, client_id) or abort(404)
        history = client_history(db.session, client_id)
        figure = charts.figure_json(charts.overage_buffer(list(reversed(history)))) if history else None
        assets, asset_count = client_assets(db.session, client_id)
        links = {
            "buckets": filtered_url("bucket", "Client", client.name),
            "billing": filtered_url("billingreading", "Client", client.name),
            "assets": filtered_url("asset", "Client", client.name),
            "unbound": filtered_url("asset_unbound", "Client", client.name),
            "new": filtered_url("asset_new", "Client", client.name),
        }
        return self.render("meterdesk/client.html", client=client, buckets=client_buckets(db.session, client_id),
                           assets=assets, asset_count=asset_count, history=history, history_figure=figure,
                           billing_issues=client_issues(db.session, client_id), links=links,
                           issues=client_open_issues(db.session, client_id, current_app.config["ANOMALY_PCT"]),
                           adjustments=client_adjustments(db.session, client_id))


def client_choices() -> list[tuple[int, str]]:
    return list(db.session.execute(select(Client.id, Client.name).order_by(Client.name)).all())


def _ids(text: str) -> list[str]:
    return [part for part in (text or "").split(",") if part.strip().isdigit()]


class AssetPage(HiddenView):
    @expose("/<int:asset_id>")
    def asset(self, asset_id: int):
        asset = db.session.get(Asset, asset_id) or abort(404)
        seen = last_seen(db.session, [asset.id]).get(asset.id, asset.last_seen_at)
        return self.render("meterdesk/asset.html", asset=asset, clients=client_choices(), last_seen=seen,
                           gaps=current_gaps(db.session, asset_id=asset_id))

    @expose("/<int:asset_id>/usage.json")
    def usage(self, asset_id: int):
        """The last 30 days of usage as a Plotly figure (`figure` is null when there are no readings)."""
        db.session.get(Asset, asset_id) or abort(404)
        series = asset_usage(db.session, asset_id)
        figure = charts.figure_json(charts.asset_usage(series)) if series else "null"
        return Response('{"figure": ' + figure + "}", mimetype="application/json")

    @expose("/<int:asset_id>/ack", methods=("POST",))
    def ack(self, asset_id: int):
        db.session.get(Asset, asset_id) or abort(404)
        set_assets([str(asset_id)], acknowledged=True)
        flash("Asset acknowledged.", "success")
        return redirect(url_for(".asset", asset_id=asset_id))

    @expose("/<int:asset_id>/disregard", methods=("POST",))
    def disregard(self, asset_id: int):
        asset = db.session.get(Asset, asset_id) or abort(404)
        restore = request.form.get("restore") == "1"
        set_assets([str(asset_id)], disregarded_at=None if restore else (asset.disregarded_at or utcnow()))
        flash("Asset restored to billing." if restore else "Asset disregarded: it leaves billing; its readings stay.",
              "success")
        return redirect(url_for(".asset", asset_id=asset_id))

    @expose("/<int:asset_id>/assign", methods=("POST",))
    def assign(self, asset_id: int):
        db.session.get(Asset, asset_id) or abort(404)
        client = self._chosen_client()
        if client is None:
            flash("Choose a client.", "error")
        else:
            set_assets([str(asset_id)], client_id=client.id)
            flash(f"Asset assigned to {client.name}.", "success")
        return redirect(url_for(".asset", asset_id=asset_id))

    @expose("/assign", methods=("GET", "POST"))
    def assign_many(self):
        """The client chooser the grids' "Assign to client" action leads to (ids=1,2,3)."""
        if not can_edit(current_user):
            abort(403)
        ids = _ids(request.values.get("ids", ""))
        back = safe_next(request.values.get("next"), url_for("asset_unassigned.index_view"))
        if not ids:
            flash("No assets selected.", "error")
            return redirect(back)
        if request.method == "POST":
            client = self._chosen_client()
            if client is not None:
                count = set_assets(ids, client_id=client.id)
                flash(f"{count} assets assigned to {client.name}.", "success")
                return redirect(back)
            flash("Choose a client.", "error")
        assets = db.session.scalars(select(Asset).where(Asset.id.in_([int(i) for i in ids])).order_by(Asset.id)).all()
        return self.render("meterdesk/assign.html", assets=assets, ids=",".join(ids), back=back,
                           clients=client_choices())

    @staticmethod
    def _chosen_client() -> Client | None:
        text = request.form.get("client_id", "")
        return db.session.get(Client, int(text)) if text.isdigit() else None
