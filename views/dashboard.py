"""Dashboard: record tiles, revenue figures and health."""
from __future__ import annotations

from flask_admin import AdminIndexView, expose

from extensions import db
from reports.assets import tile_counts
from views.base import AccessMixin


class DashboardView(AccessMixin, AdminIndexView):
    @expose("/")
    def index(self):
        return self.render("meterdesk/dashboard.html", tiles=tile_counts(db.session))
