"""Projections grid: the current period's projected usage and cost per bucket, and the "Run projections" button."""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_login import current_user
from sqlalchemy import exists, func

from billing.periods import current_period_start, period_label
from extensions import db
from jobs.rights import Requester
from jobs.runs import JobRefused, latest_run
from jobs.runs import start_job
from models import Bucket, JobRun, Projection
from views.base import SecureModelView, fmt_money, fmt_quantity, fmt_time, link
from web.formatting import percent


def over_commit():
    """A projection is over commit when its projected usage exceeds its bucket's commit."""
    return exists().where(Bucket.id == Projection.bucket_id, Projection.projected_usage > Bucket.commit)


class CommitStatusFilter(BaseSQLAFilter):
    def __init__(self) -> None:
        super().__init__(Projection.projected_usage, "Status",
                         options=(("over", "Over commit"), ("within", "Within commit")))

    def apply(self, query, value, alias=None):
        return query.filter(over_commit() if value == "over" else ~over_commit())

    def operation(self) -> str:
        return "is"


class ProjectionView(SecureModelView):
    allow_create = allow_edit = allow_delete = False
    list_template = "meterdesk/projections_list.html"
    column_list = ("client", "bucket_id", "current_usage", "projected_usage", "projected_cost", "pct_of_commit",
                   "calculated_at")
    column_labels = {"bucket_id": "Bucket ID", "current_usage": "Current Usage", "projected_usage": "Projected Usage",
                     "projected_cost": "Projected Cost", "pct_of_commit": "% of Commit", "calculated_at": "Calculated At",
                     "client.name": "Client"}
    column_descriptions = {"pct_of_commit": "100 × projected usage / commit; empty when the commit is 0.",
                           "projected_usage": "sum and time_weighted buckets: usage so far × period length / "
                                              "time elapsed; other aggregations: usage so far."}
    column_filters = ("client.name", CommitStatusFilter(), "pct_of_commit")
    column_sortable_list = (("client", "client.name"), "bucket_id", "current_usage", "projected_usage",
                            "projected_cost", "pct_of_commit", "calculated_at")
    column_default_sort = ("projected_cost", True)
    column_select_related_list = (Projection.client, Projection.bucket)
    column_formatters = {
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id),
        "bucket_id": lambda v, c, m, n: link("bucket.details_view", m.bucket_id, id=m.bucket_id),
        "current_usage": fmt_quantity("current_usage"),
        "projected_usage": fmt_quantity("projected_usage"),
        "projected_cost": fmt_money("projected_cost"),
        "pct_of_commit": lambda v, c, m, n: percent(m.pct_of_commit),
        "calculated_at": fmt_time("calculated_at"),
    }
    empty_message = "No projections"

    def __init__(self) -> None:
        super().__init__(Projection, name="Projections", endpoint="projection", category="Billing")

    @property
    def intro(self) -> str:
        return (f"Current period {period_label(current_period_start())}: each enabled bucket's usage so far and where "
                "it will land at month end. Rows over commit are highlighted. Projections refresh hourly.")

    def get_query(self):
        return super().get_query().filter(Projection.period_start == current_period_start())

    def get_count_query(self):
        return (db.session.query(func.count(Projection.id)).select_from(Projection)
                .filter(Projection.period_start == current_period_start()))

    def row_css_class(self, row: Projection) -> str:
        return "over-commit" if row.projected_usage > row.bucket.commit else ""

    def latest_run(self) -> JobRun | None:
        return latest_run("projection")

    @expose("/run", methods=["POST"])
    def run(self):
        try:
            period = period_label(current_period_start())
            run = start_job("projection", {"period": period}, Requester.user(current_user), period)
            flash(f"Projection run #{run.id} started.", "success")
        except JobRefused as exc:
            flash(str(exc), "error")
        return redirect(url_for(".index_view"))
