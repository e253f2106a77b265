"""Record pages: a client (its buckets and billing history) and an asset (its usage)."""
from __future__ import annotations

from flask import abort
from flask_admin import expose
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Asset, Bucket, Client
from views.base import SecureView


class ClientPage(SecureView):
    def is_visible(self) -> bool:
        return False
    @expose("/")
    def index(self):
        abort(404)

    @expose("/<int:client_id>")
    def client(self, client_id: int):
        client = db.session.get(Client, client_id) or abort(404)
        buckets = db.session.scalars(
            select(Bucket).where(Bucket.client_id == client_id).options(selectinload(Bucket.unit_type))
            .order_by(Bucket.name)
        ).all()
        return self.render("meterdesk/client.html", client=client, buckets=buckets)


class AssetPage(SecureView):
    def is_visible(self) -> bool:
        return False
    @expose("/")
    def index(self):
        abort(404)

    @expose("/<int:asset_id>")
    def asset(self, asset_id: int):
        asset = db.session.get(Asset, asset_id) or abort(404)
        return self.render("meterdesk/asset.html", asset=asset)
