"""Billing Readings grid: one line per bucket and period, with Run Billing, Export CSV and Finalize (jobs)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, has_app_context, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_login import current_user
from markupsafe import Markup, escape

from billing.periods import current_period_start, parse_period, period_label, previous_period
from billing.run import late_readings
from extensions import db
from jobs.rights import Requester, may_start
from jobs.runs import JobRefused, latest_run
from jobs.runs import start_job
from models import BillingReading, JobRun
from reports.billing import client_summary, has_unfinalized, latest_billed_period
from reports.common import billed_periods
from views.base import SecureModelView, fmt_money, fmt_quantity, link
from web.formatting import money, quantity, utc, utc_date
from web.redirects import safe_next

DETAIL_ASSETS_SHOWN = 50


def billed_period_choices() -> list[tuple[str, str]]:
    """(YYYY-MM, YYYY-MM) for every billed period, latest first: the period filter's choices."""
    if not has_app_context():
        return []
    return [(period_label(start), period_label(start)) for start in billed_periods(db.session)]


class PeriodFilter(BaseSQLAFilter):
    """Lines of one billing period, chosen as YYYY-MM."""

    def __init__(self) -> None:
        super().__init__(BillingReading.period_start, "Period", options=billed_period_choices)

    def validate(self, value: str) -> bool:
        try:
            parse_period(value)
        except ValueError:
            return False
        return True

    def clean(self, value: str) -> datetime:
        return parse_period(value)

    def apply(self, query, value, alias=None):
        return query.filter(BillingReading.period_start == value)

    def operation(self) -> str:
        return "is"


def details_cell(view: Any, context: Any, model: BillingReading, name: str) -> Markup:
    """The per-asset breakdown, overage and buffer figures, and late readings of a line."""
    late = g.get("billing_late", {}).get(model.id, 0)
    details = model.details or {}
    assets = details.get("assets", [])
    figures = Markup(
        "Commit {} · Overage {} units = {} · Buffer {} units = {} · Base {}"
    ).format(quantity(model.commit), quantity(model.overage_units), money(model.overage_cost),
             quantity(model.buffer_units), money(model.buffer_cost), money(model.base_cost))
    rows = Markup("").join(
        Markup("<li>{} (asset {}): {}</li>").format(entry.get("external_id", ""), entry.get("asset_id"),
                                                    quantity(Decimal(entry.get("usage", "0"))))
        for entry in assets[:DETAIL_ASSETS_SHOWN])
    more = len(assets) - DETAIL_ASSETS_SHOWN
    if more > 0:
        rows += Markup("<li>… and {} more (see the CSV export)</li>").format(more)
    late_badge = Markup(' <span class="badge badge-warning late-readings">{} late</span>').format(late) if late else ""
    summary = Markup("{} asset(s), {}").format(len(assets), escape(details.get("aggregation", "")))
    return Markup('<details class="billing-details"><summary>{}{}</summary><div class="small">{}</div>'
                  '<ul class="small mb-0">{}</ul>{}</details>').format(
        summary, late_badge, figures, rows,
        Markup('<div class="small text-warning">{} reading(s) arrived after finalizing: not billed.</div>').format(late)
        if late else "")


def finalized_cell(view: Any, context: Any, model: BillingReading, name: str) -> Markup:
    if not model.finalized:
        return Markup("No")
    return Markup('Yes <span class="text-muted small">{}</span>').format(utc(model.finalized_at))


class BillingReadingView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    list_template = "meterdesk/billing_list.html"
    column_list = ("client", "bucket_id", "period_start", "period_end", "total_usage", "final_cost", "finalized",
                   "details")
    column_labels = {"bucket_id": "Bucket ID", "period_start": "Period Start", "period_end": "Period End",
                     "total_usage": "Total Usage", "final_cost": "Final Cost", "client.name": "Client",
                     "details": "Details"}
    column_filters = (PeriodFilter(), "client.name", "bucket_id", "finalized")
    column_sortable_list = (("client", "client.name"), "bucket_id", "period_start", "period_end", "total_usage",
                            "final_cost", "finalized")
    column_default_sort = [("period_start", True), ("client_id", False), ("bucket_id", False)]
    column_select_related_list = (BillingReading.client,)
    column_formatters = {
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id),
        "bucket_id": lambda v, c, m, n: link("bucket.details_view", m.bucket_id, id=m.bucket_id),
        "period_start": lambda v, c, m, n: utc_date(m.period_start),
        "period_end": lambda v, c, m, n: utc_date(m.period_end),
        "total_usage": fmt_quantity("total_usage"),
        "final_cost": fmt_money("final_cost"),
        "finalized": finalized_cell,
        "details": details_cell,
    }
    empty_message = "No billing readings"

    def __init__(self) -> None:
        super().__init__(BillingReading, name="Billing Readings", endpoint="billingreading", category="Billing")

    def _get_filter_groups(self):
        """The filter groups with the Period choices read now (billed periods change; the cache is per process)."""
        groups = super()._get_filter_groups()
        if groups and "Period" in groups:
            groups["Period"] = [dict(item, options=billed_period_choices() or None) for item in groups["Period"]]
        return groups

    def get_list(self, *args: Any, **kwargs: Any):
        count, data = super().get_list(*args, **kwargs)
        g.billing_late = late_readings(db.session, [line.id for line in data if line.finalized])
        return count, data

    # ---- what the page shows above the grid ------------------------------------------------------------------

    def filtered_period(self) -> str | None:
        """The YYYY-MM of the active period filter, if any."""
        for arg, value in request.args.items():
            if not arg.startswith("flt") or "_" not in arg:
                continue
            found = (self._filter_args or {}).get(arg[3:].split("_", 1)[1])
            if found and isinstance(found[1], PeriodFilter) and found[1].validate(value):
                return period_label(parse_period(value))
        return None

    def latest_period(self) -> str | None:
        start = latest_billed_period(db.session)
        return period_label(start) if start else None

    def export_period(self) -> str | None:
        """The period Export CSV exports: the filtered one, else the most recently loaded one."""
        return self.filtered_period() or self.latest_period()

    def default_run_period(self) -> str:
        return period_label(previous_period(current_period_start()))

    def client_summary(self) -> list[dict[str, Any]]:
        """Per client for the shown period: its buckets billed and total cost."""
        period = self.export_period()
        return client_summary(db.session, parse_period(period)) if period is not None else []

    def latest_run(self, kind: str) -> JobRun | None:
        return latest_run(kind)

    def can_finalize(self) -> bool:
        return may_start("billing", {"finalize": True}, Requester.user(current_user))

    def has_unfinalized(self, period: str) -> bool:
        return has_unfinalized(db.session, parse_period(period))

    # ---- actions (POST; viewers are refused by the base view) ------------------------------------------------

    def _start(self, kind: str, parameters: dict[str, Any], period: str, started: str) -> None:
        try:
            run = start_job(kind, parameters, Requester.user(current_user), period)
            flash(f"{started} (job #{run.id}).", "success")
        except JobRefused as exc:
            flash(str(exc), "error")

    def _form_period(self) -> str | None:
        try:
            return period_label(parse_period(request.form.get("period", "")))
        except ValueError as exc:
            flash(str(exc), "error")
            return None

    @expose("/run", methods=["POST"])
    def run(self):
        finalize = request.form.get("finalize") in ("1", "on", "true")
        if finalize and not self.can_finalize():
            abort(403)
        period = self._form_period()
        if period is not None:
            verb = "and finalizing " if finalize else ""
            self._start("billing", {"period": period, "finalize": finalize}, period, f"Billing {verb}{period} started")
        return redirect(url_for(".index_view"))

    @expose("/finalize", methods=["POST"])
    def finalize(self):
        if not self.can_finalize():
            abort(403)
        period = self._form_period()
        if period is not None:
            self._start("billing", {"period": period, "finalize": True}, period, f"Finalizing {period} started")
        return redirect(url_for(".index_view"))

    @expose("/export", methods=["POST"])
    def export(self):
        period = self._form_period()
        if period is not None:
            self._start("export", {"period": period}, period, f"Export of {period} started")
        return redirect(safe_next(request.referrer, url_for(".index_view")))
