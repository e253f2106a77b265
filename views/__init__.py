"""Every admin page, registered in the order of the navigation bar."""
from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from web.security import csp_nonce

from views.api_keys import ApiKeyView
from views.assets import AssetView, DisregardedAssetView, NewAssetView, UnassignedAssetView
from views.audit_log import AuditLogView
from views.billing import BillingReadingView
from views.buckets import BucketView
from views.clients import ClientView
from views.dashboard import DashboardView
from views.jobs import JobsView
from views.over_under import OverUnderView
from views.pages import AssetPage, ClientPage
from views.projections import ProjectionView
from views.silent import SilentAssetView
from views.suppressions import SuppressionView
from views.unbound import UnboundAssetView
from views.unit_types import UnitTypeView
from views.users import UserView
from views.vendor import bp as vendor_bp
from views.webhooks import WebhookDeliveryView, WebhookView


def init_admin(app: Flask) -> Admin:
    admin = Admin(
        app,
        name="Meterdesk",
        url="/admin",
        index_view=DashboardView(name="Dashboard", url="/admin", template="meterdesk/dashboard.html"),
        theme=Bootstrap4Theme(base_template="meterdesk/base.html", fluid=True),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(ClientView())
    admin.add_view(AssetView())
    admin.add_view(NewAssetView(name="New", endpoint="asset_new", url="/admin/assets/new"))
    admin.add_view(UnassignedAssetView(name="Unassigned", endpoint="asset_unassigned", url="/admin/assets/unassigned"))
    admin.add_view(UnboundAssetView(name="Unbound", endpoint="asset_unbound", url="/admin/assets/unbound"))
    admin.add_view(SilentAssetView(name="Silent", endpoint="asset_silent", url="/admin/assets/silent",
                                   category="Assets"))
    admin.add_view(DisregardedAssetView(name="Disregarded", endpoint="asset_disregarded",
                                        url="/admin/assets/disregarded"))
    admin.add_view(BucketView())
    admin.add_view(BillingReadingView())
    admin.add_view(ProjectionView())
    admin.add_view(OverUnderView(name="Over/Under", endpoint="over_under", url="/admin/over-under", category="Billing"))
    admin.add_view(UnitTypeView())
    admin.add_view(SuppressionView())
    admin.add_view(ApiKeyView())
    admin.add_view(WebhookView())
    admin.add_view(UserView())
    admin.add_view(AuditLogView())
    admin.add_view(ClientPage(name="Client", endpoint="client_page", url="/admin/clients"))
    admin.add_view(AssetPage(name="Asset", endpoint="asset_page", url="/admin/assets/page"))
    admin.add_view(WebhookDeliveryView())
    admin.add_view(JobsView(name="Jobs", endpoint="jobs", url="/admin/jobs"))
    app.register_blueprint(vendor_bp)
    return admin
