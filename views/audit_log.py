"""Audit Log grid: read-only, old and new values side by side."""
from __future__ import annotations

import json

from markupsafe import Markup

from models import AuditLog
from views.base import SecureModelView, fmt_time


def _values(values: dict | None) -> str:
    return json.dumps(values, indent=1, sort_keys=True, ensure_ascii=False) if values else ""


def old_new(view, context, model, name) -> Markup:
    return Markup(
        '<div class="row audit-values"><div class="col"><small class="text-muted">Old Values</small>'
        '<pre class="small mb-0">{}</pre></div><div class="col"><small class="text-muted">New Values</small>'
        '<pre class="small mb-0">{}</pre></div></div>'
    ).format(_values(model.old_values), _values(model.new_values))


class AuditLogView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    can_view_details = True
    column_list = ("action", "table", "record_id", "api_key_id", "created_at", "values")
    column_labels = {"record_id": "Record ID", "api_key_id": "API Key ID", "created_at": "Created At",
                     "values": "", "user_id": "User ID", "old_values": "Old Values", "new_values": "New Values"}
    column_filters = ("action", "table", "record_id", "api_key_id", "user_id", "created_at")
    column_sortable_list = ("action", "table", "record_id", "api_key_id", "created_at")
    column_default_sort = ("id", True)
    column_formatters = {"created_at": fmt_time("created_at"), "values": old_new}
    column_details_list = ("id", "action", "table", "record_id", "user_id", "api_key_id", "created_at",
                           "old_values", "new_values")
    column_formatters_detail = {"old_values": lambda v, c, m, n: _values(m.old_values),
                                "new_values": lambda v, c, m, n: _values(m.new_values)}
    simple_list_pager = False
    empty_message = "No audit entries"

    def __init__(self) -> None:
        super().__init__(AuditLog, name="Audit Log", endpoint="auditlog", category="Settings")
