"""Dashboard: record tiles, revenue figures and health."""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask_admin import AdminIndexView, expose

from extensions import db
from jobs.redis import get_redis
from reports import revenue
from reports.anomalies import anomalies
from reports.assets import tile_counts
from reports.health import health
from reports.silent import silent_count
from views import charts
from views.base import AccessMixin

log = logging.getLogger(__name__)


def health_panel() -> dict[str, Any] | None:
    """reports.health.health() with the app's Redis; a missing or broken Redis never breaks the dashboard."""
    redis_conn = None
    try:
        redis_conn = get_redis()
    except Exception:  # noqa: BLE001 - the panel reports Redis as down instead
        log.warning("no Redis connection for the health panel", exc_info=True)
    try:
        return health(db.session, redis_conn)
    except Exception:  # noqa: BLE001
        current_app.logger.exception("health panel failed")
        db.session.rollback()
        return None


def dashboard_context() -> dict[str, Any]:
    """Everything the dashboard shows: report results and their figures."""
    session = db.session
    by_period = revenue.revenue_by_period(session)
    status_counts = revenue.client_status_counts(session)
    by_source = revenue.revenue_by_source_type(session)
    avg = revenue.avg_revenue_per_client(session)
    return {
        "tiles": {**tile_counts(session), "silent": silent_count(session)},
        "anomalies": anomalies(session, current_app.config["ANOMALY_PCT"]),
        "anomaly_pct": current_app.config["ANOMALY_PCT"],
        "mom": revenue.mom_revenue(session),
        "new_overages": revenue.new_overages(session),
        "top_clients": revenue.top_clients(session),
        "revenue_figure": charts.figure_json(charts.revenue_by_period(by_period)) if by_period else None,
        "status_figure": charts.figure_json(charts.client_status(status_counts)) if status_counts else None,
        "source_figure": charts.figure_json(charts.revenue_by_source_type(by_source)) if by_source else None,
        "avg_figure": charts.figure_json(charts.avg_revenue_per_client(avg)) if avg else None,
        "health": health_panel(),
    }


class DashboardView(AccessMixin, AdminIndexView):
    @expose("/")
    def index(self):
        return self.render("meterdesk/dashboard.html", **dashboard_context())
