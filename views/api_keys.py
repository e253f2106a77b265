"""API Keys grid (admins only): a new key is shown once; only its hash and prefix are kept."""
from __future__ import annotations

from flask import flash
from markupsafe import Markup
from wtforms.validators import DataRequired, Length

from keys import new_key
from models import API_KEY_ROLES, ApiKey
from views.base import SecureModelView, fmt_time


class ApiKeyView(SecureModelView):
    admin_only = True
    column_list = ("id", "name", "role", "client_id", "enabled", "last_used_at")
    column_labels = {"id": "ID", "client_id": "Client ID", "last_used_at": "Last Used", "prefix": "Prefix"}
    column_details_list = ("id", "name", "role", "client_id", "prefix", "enabled", "last_used_at", "created_at")
    column_searchable_list = ("name", "prefix")
    column_filters = ("role", "enabled", "client_id")
    column_formatters = {"last_used_at": fmt_time("last_used_at"), "created_at": fmt_time("created_at")}
    form_columns = ("name", "role", "client", "enabled")
    form_ajax_refs = {"client": {"fields": ("name",), "page_size": 20}}
    form_choices = {"role": [(r, r) for r in API_KEY_ROLES]}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "client": {"description": "Optional: a client-scoped key touches only that client's assets."},
    }
    empty_message = "No API keys"

    def __init__(self) -> None:
        super().__init__(ApiKey, name="API Keys", endpoint="apikey", category="Settings")

    def on_model_change(self, form, model: ApiKey, is_created: bool) -> None:
        if is_created:
            raw, model.prefix, model.key_hash = new_key()
            flash(Markup("New API key (copy it now, it is not shown again): <code class='new-api-key'>{}</code>")
                  .format(raw), "success")
