"""Billing Buckets grid: pricing, commit and the assets a bucket binds."""
from __future__ import annotations

from flask import current_app, flash, g
from flask_admin.actions import action
from markupsafe import Markup
from sqlalchemy import select
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from billing.gaps import current_gaps
from billing.periods import current_period_start
from extensions import db
from models import AGGREGATIONS, Bucket
from reports.anomalies import Anomaly, anomalies
from reports.buckets import projected_current_usage
from views.base import SecureModelView, link
from views.forms import non_negative
from web.formatting import quantity


def unique_name_per_client(form, field) -> None:
    client = form.client.data
    if client is None or not field.data:
        return
    query = select(Bucket.id).where(Bucket.client_id == client.id, Bucket.name == field.data.strip())
    obj = getattr(form, "_obj", None)
    if obj is not None and obj.id is not None:
        query = query.where(Bucket.id != obj.id)
    if db.session.scalar(query) is not None:
        raise ValidationError(f"{client.name} already has a bucket named {field.data!r}")


def reviewed_badge(view, context, model, name) -> Markup:
    if model.reviewed:
        return Markup('<span class="badge badge-success">yes</span>')
    return Markup('<span class="badge badge-warning unreviewed-badge" title="Auto-provisioned: set the commit, '
                  'then mark it reviewed">Needs review</span>')


def current_usage(view, context, model, name) -> str:
    usage = g.setdefault("bucket_usage", {})
    return quantity(usage.get(model.id)) if model.id in usage else "—"


def gap_hours_detail(view, context, model, name) -> Markup:
    """time_weighted buckets: each asset's unit·hours and gap hours this period so far (billing.gaps)."""
    if model.aggregation != "time_weighted":
        return Markup("—")
    rows = current_gaps(db.session, bucket_id=model.id)
    if not rows:
        return Markup('<span class="text-muted">No bound assets.</span>')
    body = Markup("").join(Markup("<tr><td>{}</td><td>{}</td><td>{}</td></tr>").format(
        link("asset_page.asset", row.external_id, asset_id=row.asset_id), quantity(row.usage),
        quantity(row.gap_hours)) for row in rows)
    return Markup('<table class="table table-sm gap-hours"><thead><tr><th>Asset</th><th>Usage (unit·h)</th>'
                  '<th>Gap Hours</th></tr></thead><tbody>{}</tbody></table>').format(body)


class BucketView(SecureModelView):
    list_template = "meterdesk/list_marked.html"
    details_template = "meterdesk/bucket_details.html"
    column_list = ("id", "client", "name", "source_type", "unit_type", "aggregation", "usage", "commit",
                   "reviewed", "enabled")
    column_labels = {"id": "ID", "source_type": "Source Type", "unit_type": "Unit Type", "usage": "Usage",
                     "client.name": "Client", "unit_type.name": "Unit Type", "base_price": "Base Price",
                     "overage_price": "Overage Price"}
    column_searchable_list = ("name", "source_type")
    column_filters = ("source_type", "client.name", "unit_type.name", "aggregation", "reviewed", "enabled")
    column_sortable_list = ("id", ("client", "client.name"), "name", "source_type", ("unit_type", "unit_type.name"),
                            "aggregation", "commit", "reviewed", "enabled")
    column_default_sort = ("id", True)
    column_select_related_list = (Bucket.client, Bucket.unit_type)
    column_formatters = {
        "name": lambda v, c, m, n: link("bucket.details_view", m.name, id=m.id),
        "client": lambda v, c, m, n: link("client_page.client", m.client.name, client_id=m.client_id),
        "commit": lambda v, c, m, n: quantity(m.commit),
        "usage": current_usage,
        "reviewed": reviewed_badge,
    }
    form_columns = ("client", "name", "unit_type", "source_type", "aggregation", "commit", "base_price",
                    "overage_price", "reviewed", "enabled", "assets")
    form_ajax_refs = {
        "client": {"fields": ("name",), "page_size": 20},
        "assets": {"fields": ("external_id", "name"), "page_size": 20},
    }
    form_choices = {"aggregation": [(a, a) for a in AGGREGATIONS]}
    form_args = {
        "client": {"validators": [DataRequired()]},
        "unit_type": {"validators": [DataRequired()]},
        "name": {"validators": [DataRequired(), Length(max=200), unique_name_per_client]},
        "source_type": {"label": "Source Type", "validators": [DataRequired(), Length(max=100)]},
        "commit": {"validators": [InputRequired(), non_negative]},
        "base_price": {"validators": [InputRequired(), non_negative]},
        "overage_price": {"validators": [InputRequired(), non_negative]},
    }
    empty_message = "No buckets"

    def __init__(self) -> None:
        super().__init__(Bucket, name="Buckets", endpoint="bucket")
        self.column_formatters_detail = {**self.column_formatters_detail, "gap_hours": gap_hours_detail}

    def get_details_columns(self):
        return [*super().get_details_columns(), ("gap_hours", "Gap Hours (this period)")]

    def anomaly_of(self, bucket: Bucket) -> Anomaly | None:
        """The bucket's usage anomaly this period, if any (flagged on the bucket page)."""
        found = anomalies(db.session, current_app.config["ANOMALY_PCT"], bucket_id=bucket.id)
        return found[0] if found else None

    def row_css_class(self, row: Bucket) -> str:
        return "" if row.reviewed else "unreviewed"

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        g.bucket_usage = projected_current_usage(db.session, [row.id for row in rows])
        return count, rows

    @action("review", "Mark reviewed", "Mark the selected buckets as reviewed (check their commits first)?")
    def action_review(self, ids: list[str]) -> None:
        buckets = db.session.scalars(select(Bucket).where(Bucket.id.in_([int(i) for i in ids]))).all()
        for bucket in buckets:
            bucket.reviewed = True
        db.session.commit()
        flash(f"{len(buckets)} buckets marked reviewed.", "success")
