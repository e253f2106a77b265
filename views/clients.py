"""Clients grid."""
from __future__ import annotations

from sqlalchemy.orm import undefer
from wtforms.validators import DataRequired, Length

from models import Client
from views.base import SecureModelView, fmt_time, link


class ClientView(SecureModelView):
    column_list = ("id", "name", "bucket_count", "enabled", "created_at")
    column_labels = {"id": "ID", "bucket_count": "Buckets", "created_at": "Created At"}
    column_searchable_list = ("name",)
    column_filters = ("name", "enabled", "created_at")
    column_sortable_list = ("id", "name", "bucket_count", "enabled", "created_at")
    column_default_sort = ("name", False)
    column_formatters = {
        "name": lambda v, c, m, n: link("client_page.client", m.name, client_id=m.id),
        "created_at": fmt_time("created_at"),
    }
    form_columns = ("name", "enabled")
    form_args = {"name": {"validators": [DataRequired(), Length(max=200)], "filters": [lambda s: s.strip() if s else s]}}
    column_details_list = ("id", "name", "enabled", "created_at")
    empty_message = "No clients"

    def __init__(self) -> None:
        super().__init__(Client, name="Clients", endpoint="client")

    def get_query(self):
        return super().get_query().options(undefer(Client.bucket_count))
