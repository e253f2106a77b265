"""Unit Types grid: metering units and their auto-provisioning templates."""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from billing.provisioning import PlannedBinding, preview_provisioning
from extensions import db
from ingest.suppressions import check_glob
from jobs.rights import Requester
from jobs.runs import JobRefused, latest_run
from jobs.runs import start_job
from models import AGGREGATIONS, MAX_GAP_LIMIT, JobRun, UnitType
from views.base import SecureModelView, fmt_money
from views.forms import form_check, non_negative

SILENT_MAX_HOURS = 8760


def on_off(view, context, model, name) -> Markup:
    if model.auto_provision:
        return Markup('<span class="badge badge-success">on</span>')
    return Markup('<span class="badge badge-secondary">off</span>')


class UnitTypeView(SecureModelView):
    list_template = "meterdesk/unit_types_list.html"
    preview_limit = 100
    column_list = ("name", "description", "auto_provision", "base_price", "overage_price", "aggregation",
                   "filter_pattern")
    column_labels = {"auto_provision": "Auto-Provision", "base_price": "Base", "overage_price": "Overage",
                     "filter_pattern": "Filter Pattern"}
    column_searchable_list = ("name", "description")
    column_filters = ("name", "aggregation", "auto_provision")
    column_default_sort = ("name", False)
    column_formatters = {"auto_provision": on_off, "base_price": fmt_money("base_price"),
                         "overage_price": fmt_money("overage_price")}
    form_columns = ("name", "description", "aggregation", "base_price", "overage_price", "auto_provision",
                    "filter_pattern", "max_gap_minutes", "silent_after_hours")
    form_choices = {"aggregation": [(a, a) for a in AGGREGATIONS]}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=100)]},
        "base_price": {"label": "Base price", "validators": [InputRequired(), non_negative]},
        "overage_price": {"label": "Overage price", "validators": [InputRequired(), non_negative]},
        "filter_pattern": {"validators": [DataRequired(), Length(max=200), form_check(check_glob)],
                           "description": "Glob on the asset id, e.g. vm-* ; * matches every asset.",
                           "default": "*"},
        "max_gap_minutes": {"label": "Max gap (minutes)", "default": 60,
                            "filters": [lambda minutes: 60 if minutes is None else minutes],  # left empty: 60
                            "validators": [NumberRange(min=1, max=MAX_GAP_LIMIT)],
                            "description": "time_weighted: a reading holds until the next one, this long at most."},
        "silent_after_hours": {"label": "Silent After (hours)", "default": 24,
                               "filters": [lambda hours: 24 if hours is None else hours],  # left empty: 24
                               "validators": [NumberRange(min=1, max=SILENT_MAX_HOURS)],
                               "description": "A bound asset with no reading of this unit type for this long is "
                                              "listed under Assets ▾ Silent."},
    }
    empty_message = "No unit types"
    intro = "Metering unit types. Template fields drive nightly auto-provisioning of billing buckets."

    def __init__(self) -> None:
        super().__init__(UnitType, name="Unit Types", endpoint="unittype", category="Settings")

    def provisioning_preview(self) -> list[PlannedBinding]:
        """What "Run now" would create and bind (read-only)."""
        return preview_provisioning(db.session)

    def latest_run(self) -> JobRun | None:
        return latest_run("provisioning")

    @expose("/provision", methods=["POST"])
    def provision(self):
        try:
            run = start_job("provisioning", {}, Requester.user(current_user))
            flash(f"Auto-provisioning run #{run.id} started.", "success")
        except JobRefused as exc:
            flash(str(exc), "error")
        return redirect(url_for(".index_view"))
