"""Audit Log grid: read-only, who changed what, the record linked, old and new values side by side."""
from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from models import AuditLog
from views.base import SecureModelView, fmt_time, link

# Where a record of each audited table is shown: (endpoint, the endpoint's id argument).
RECORD_PAGES: dict[str, tuple[str, str]] = {
    "clients": ("client_page.client", "client_id"),
    "assets": ("asset_page.asset", "asset_id"),
    "buckets": ("bucket_page.bucket", "bucket_id"),
    "billing_readings": ("billingreading.details_view", "id"),
    "unit_types": ("unittype.edit_view", "id"),
    "suppressions": ("suppression.edit_view", "id"),
    "api_keys": ("apikey.details_view", "id"),
    "users": ("user.edit_view", "id"),
}


def _values(values: dict | None) -> str:
    return json.dumps(values, indent=1, sort_keys=True, ensure_ascii=False) if values else ""


def old_new(view, context, model, name) -> Markup:
    return Markup(
        '<div class="row audit-values"><div class="col"><small class="text-muted">Old Values</small>'
        '<pre class="small mb-0">{}</pre></div><div class="col"><small class="text-muted">New Values</small>'
        '<pre class="small mb-0">{}</pre></div></div>'
    ).format(_values(model.old_values), _values(model.new_values))


def record_cell(view: Any, context: Any, model: AuditLog, name: str) -> Markup | str:
    """The record id, a link to its page while the record can still exist (not after a delete)."""
    page = RECORD_PAGES.get(model.table)
    record_id = model.record_id or ""
    if page is None or model.action == "delete" or not record_id.isdigit():
        return record_id
    endpoint, argument = page
    return link(endpoint, record_id, **{argument: int(record_id)})


def user_cell(view: Any, context: Any, model: AuditLog, name: str) -> Markup | str:
    """Who made the change: the user's email, an API key's name, else the system (jobs, commands)."""
    if model.user is not None:
        return model.user.email
    if model.api_key is not None:
        return Markup("API key {}").format(link("apikey.details_view", model.api_key.name, id=model.api_key_id))
    if model.user_id or model.api_key_id:
        return f"user #{model.user_id}" if model.user_id else f"API key #{model.api_key_id}"
    return Markup('<span class="text-muted">system</span>')


class AuditLogView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    can_view_details = True
    column_list = ("action", "table", "record_id", "user", "created_at", "values")
    column_labels = {"record_id": "Record ID", "api_key_id": "API Key ID", "created_at": "Created At",
                     "values": "", "user_id": "User ID", "old_values": "Old Values", "new_values": "New Values",
                     "user": "User", "user.email": "User", "api_key.name": "API Key"}
    column_searchable_list = ("table", "action", "record_id", "user.email", "api_key.name")
    column_filters = ("action", "table", "record_id", "api_key_id", "user_id", "created_at")
    column_sortable_list = ("action", "table", "record_id", ("user", "user.email"), "created_at")
    column_default_sort = ("id", True)
    column_select_related_list = (AuditLog.user, AuditLog.api_key)
    column_formatters = {"created_at": fmt_time("created_at"), "values": old_new, "record_id": record_cell,
                         "user": user_cell}
    column_details_list = ("id", "action", "table", "record_id", "user", "api_key_id", "created_at",
                           "old_values", "new_values")
    column_formatters_detail = {"old_values": lambda v, c, m, n: _values(m.old_values),
                                "new_values": lambda v, c, m, n: _values(m.new_values),
                                "record_id": record_cell, "user": user_cell}
    simple_list_pager = False
    empty_message = "No audit entries"

    def __init__(self) -> None:
        super().__init__(AuditLog, name="Audit Log", endpoint="auditlog", category="Settings")
