"""Billing Readings grid: one line per bucket and period."""
from __future__ import annotations

from models import BillingReading
from views.base import SecureModelView, fmt_money, fmt_quantity, fmt_time, link
from formatting import utc_date


class BillingReadingView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    column_list = ("client", "bucket_id", "period_start", "period_end", "total_usage", "final_cost", "finalized")
    column_labels = {"bucket_id": "Bucket ID", "period_start": "Period Start", "period_end": "Period End",
                     "total_usage": "Total Usage", "final_cost": "Final Cost", "client.name": "Client"}
    column_filters = ("period_start", "client.name", "bucket_id", "finalized")
    column_sortable_list = (("client", "client.name"), "bucket_id", "period_start", "period_end", "total_usage",
                            "final_cost", "finalized")
    column_default_sort = ("period_start", True)
    column_select_related_list = (BillingReading.client,)
    column_formatters = {
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id),
        "period_start": lambda v, c, m, n: utc_date(m.period_start),
        "period_end": lambda v, c, m, n: utc_date(m.period_end),
        "total_usage": fmt_quantity("total_usage"),
        "final_cost": fmt_money("final_cost"),
        "calculated_at": fmt_time("calculated_at"),
    }
    empty_message = "No billing readings"

    def __init__(self) -> None:
        super().__init__(BillingReading, name="Billing Readings", endpoint="billingreading", category="Billing")
