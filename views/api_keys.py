"""API Keys grid (admins only): a new key is shown once, on the page that answers its creation; only its hash and
prefix are kept."""
from __future__ import annotations

from flask import g, make_response
from flask_admin import expose
from sqlalchemy import inspect
from wtforms.validators import DataRequired, Length

from api.keys import new_key
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
            g.new_api_key = (model, raw)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """A saved key is shown on this response, once and never again: not through a flash, whose session
        cookie is signed but readable, nor anywhere it could be fetched later."""
        response = super().create_view()
        key, raw = g.pop("new_api_key", (None, None))
        if key is None or not inspect(key).persistent:
            return response
        page = make_response(self.render("meterdesk/api_key_created.html", key=key, raw=raw))
        page.headers["Cache-Control"] = "no-store"
        return page
