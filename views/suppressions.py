"""Ingest Suppressions grid: patterns whose assets are dropped at ingest."""
from __future__ import annotations

from wtforms.validators import DataRequired, Length, ValidationError

from ingest.suppressions import check_suppression
from models import SUPPRESSION_TYPES, Suppression
from views.base import SecureModelView, fmt_time


def valid_for_type(form, field) -> None:
    try:
        check_suppression(form.type.data, field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class SuppressionView(SecureModelView):
    column_list = ("pattern", "type", "reason", "created_at")
    column_labels = {"created_at": "Created"}
    column_searchable_list = ("pattern", "reason")
    column_filters = ("type", "created_at")
    column_default_sort = ("created_at", True)
    column_formatters = {"created_at": fmt_time("created_at")}
    form_columns = ("pattern", "type", "reason")
    form_choices = {"type": [(t, t) for t in SUPPRESSION_TYPES]}
    form_args = {
        "pattern": {"validators": [DataRequired(), Length(max=500), valid_for_type],
                    "description": "Matched against the asset id: exact text, a glob (vm-test-*) or a regex."},
    }
    empty_message = "No suppression rules"
    intro = "Matching assets will be silently dropped at ingest — no asset row, no raw data stored."

    def __init__(self) -> None:
        super().__init__(Suppression, name="Ingest Suppressions", endpoint="suppression", category="Settings")
