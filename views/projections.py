"""Projections grid: the current period's projected usage and cost per bucket."""
from __future__ import annotations

from models import Projection
from views.base import SecureModelView, fmt_money, fmt_quantity, fmt_time, link
from formatting import percent


class ProjectionView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    column_list = ("client", "bucket_id", "current_usage", "projected_usage", "projected_cost", "pct_of_commit",
                   "calculated_at")
    column_labels = {"bucket_id": "Bucket ID", "current_usage": "Current Usage", "projected_usage": "Projected Usage",
                     "projected_cost": "Projected Cost", "pct_of_commit": "% of Commit", "calculated_at": "Calculated At",
                     "client.name": "Client"}
    column_filters = ("client.name", "period_start", "pct_of_commit")
    column_sortable_list = (("client", "client.name"), "bucket_id", "current_usage", "projected_usage",
                            "projected_cost", "pct_of_commit", "calculated_at")
    column_default_sort = ("projected_cost", True)
    column_select_related_list = (Projection.client,)
    column_formatters = {
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id),
        "current_usage": fmt_quantity("current_usage"),
        "projected_usage": fmt_quantity("projected_usage"),
        "projected_cost": fmt_money("projected_cost"),
        "pct_of_commit": lambda v, c, m, n: percent(m.pct_of_commit),
        "calculated_at": fmt_time("calculated_at"),
    }
    empty_message = "No projections"

    def __init__(self) -> None:
        super().__init__(Projection, name="Projections", endpoint="projection", category="Billing")
