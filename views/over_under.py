"""Over/Under: who is paying for unused capacity and who is billed above commit, per period."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request, url_for
from flask_admin import expose

from billing.periods import parse_period, period_label
from extensions import db
from reports import over_under
from reports.common import billed_periods, last_billed_period
from views import charts
from views.base import SecureView
from views.csv_export import csv_response, csv_stream

STATUS_TABS = [
    ("all", "All Clients", ""),
    ("over", "Over Commit", ""),
    ("under", "Under Commit", ""),
    ("mixed", "Mixed", "Both over and under buckets"),
]

CSV_HEADER = ("period", "client_id", "client", "unit_types", "status", "final_cost", "committed", "vs_commit_pct",
              "overage", "buffer", "pct_unused")


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


class OverUnderView(SecureView):
    @expose("/")
    def index(self):
        return self.render("meterdesk/over_under.html", **self.context())

    @staticmethod
    def chosen() -> tuple[str, list[datetime], datetime | None, str | None]:
        """The status tab, the billed periods, the period shown (asked for, else the last billed) and an error."""
        session = db.session
        status = request.args.get("status", "all")
        if status not in over_under.STATUS_FILTERS:
            status = "all"
        periods = billed_periods(session)
        period = None
        error = None
        if request.args.get("period"):
            try:
                period = parse_period(request.args["period"])
            except ValueError as exc:
                error = str(exc)
        if period is None:
            period = last_billed_period(session) or (periods[0] if periods else None)
        return status, periods, period, error

    def context(self) -> dict[str, Any]:
        session = db.session
        status, periods, period, error = self.chosen()
        unit_type_id = _int_or_none(request.args.get("unit_type"))
        context: dict[str, Any] = {
            "status": status, "tabs": STATUS_TABS, "periods": [period_label(p) for p in periods],
            "period": period_label(period) if period else None, "error": error, "unit_type_id": unit_type_id,
            "url_with": self.url_with,
        }
        if period is None:
            return context | {"trend_figure": None, "candidates": [], "unit_types": [], "lenses": [], "clients": [],
                              "total_buffer": None, "has_lines": False}
        lenses = over_under.by_unit_type(session, period)
        every_client = over_under.client_lines(session, period)
        return context | {
            "trend_figure": charts.figure_json(charts.overage_buffer(over_under.trend(session, period))),
            "candidates": over_under.right_size_candidates(
                session, period, unit_type_id, lines=None if unit_type_id else every_client),
            "total_buffer": over_under.total_buffer(session, period, unit_type_id),
            "unit_types": over_under.billed_unit_types(session, period),
            "lenses": lenses,
            "clients": over_under.with_status(every_client, status),
            "has_lines": bool(lenses),
        }

    @expose("/export.csv")
    def export_csv(self):
        """The client table as CSV, for the period and status tab shown (one row per client, summed in SQL)."""
        status, _, period, _ = self.chosen()
        lines = over_under.client_lines(db.session, period, status) if period else []
        label = period_label(period) if period else "none"
        rows = ([label, line.client_id, line.client, ";".join(line.unit_types), line.status, line.final_cost,
                 line.committed, line.vs_commit, line.overage, line.buffer, line.pct_unused] for line in lines)
        return csv_response(f"over-under-{label}-{status}.csv", csv_stream(CSV_HEADER, rows))

    @staticmethod
    def url_with(**changes: Any) -> str:
        """This page's URL with some query arguments changed (None drops one)."""
        args = {k: v for k, v in request.args.items()}
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return url_for(".index", **args)
