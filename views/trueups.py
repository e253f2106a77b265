"""Billing ▾ True-ups: buckets whose commit should follow their billed usage; apply one or many, or take a CSV."""
from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import select

from web.auth import can_edit
from billing.export import neutralise
from billing.periods import current_period_start, next_period, period_label
from billing.trueups import DIRECTIONS, apply_true_ups, true_ups
from extensions import db
from models import Client, UnitType
from views.base import SecureView

CSV_COLUMNS = ("bucket_id", "bucket", "client_id", "client", "unit_type", "direction", "current_commit",
               "suggested_commit", "usage_by_period", "monthly_effect", "applied_from")
DIRECTION_TABS = [("all", "All", ""), ("up", "Up", "upsell: usage above commit"),
                  ("down", "Down", "retention risk: paying for unused capacity")]


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 10 else None


class TrueUpView(SecureView):
    def _filters(self) -> dict[str, Any]:
        direction = request.args.get("direction") or "all"
        return {"client_id": _int_or_none(request.args.get("client")),
                "unit_type_id": _int_or_none(request.args.get("unit_type")),
                "direction": direction if direction in DIRECTIONS else "all"}

    @expose("/")
    def index(self):
        filters = self._filters()
        items = true_ups(db.session, **filters)
        return self.render(
            "meterdesk/trueups.html", items=items, filters=filters, tabs=DIRECTION_TABS,
            clients=db.session.execute(select(Client.id, Client.name).order_by(Client.name)).all(),
            unit_types=db.session.execute(select(UnitType.id, UnitType.name).order_by(UnitType.name)).all(),
            next_period=period_label(next_period(current_period_start())), writer=can_edit(current_user),
            total_effect=sum((item.monthly_effect for item in items if not item.applied_from), 0),
            url_with=self.url_with)

    @expose("/apply", methods=["POST"])
    def apply(self):
        ids = [int(value) for value in request.form.getlist("bucket_id") if value.isdigit() and len(value) < 10]
        if not ids:
            flash("Select at least one bucket to true up.", "error")
        else:
            applied = apply_true_ups(db.session, ids, current_user.email)
            start = period_label(next_period(current_period_start()))
            flash(f"{applied} true-up(s) applied: new commits from {start}.", "success" if applied else "warning")
        return redirect(request.form.get("back") if str(request.form.get("back", "")).startswith("/admin/true-ups")
                        else url_for(".index"))

    @expose("/true-ups.csv")
    def csv_export(self):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for item in true_ups(db.session, **self._filters()):
            usage = "; ".join(f"{period}={value}" for period, value in item.usage_by_period.items())
            writer.writerow([item.bucket_id, neutralise(item.bucket), item.client_id, neutralise(item.client),
                             neutralise(item.unit_type), item.direction, item.current_commit, item.suggested_commit,
                             usage, item.monthly_effect, item.applied_from or ""])
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=true-ups.csv"})

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
