"""Billing Buckets grid: pricing, commit and the assets a bucket binds."""
from __future__ import annotations

from flask import flash, g
from flask_admin.actions import action
from markupsafe import Markup
from sqlalchemy import select
from wtforms import DecimalField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from billing.periods import current_period_start, period_label
from billing.terms import bucket_terms
from extensions import db
from models import AGGREGATIONS, Bucket, Projection
from validation import non_negative
from views.base import SecureModelView, link
from formatting import quantity


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


class BucketView(SecureModelView):
    list_template = "meterdesk/list_marked.html"
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
    }
    # commit and prices are the current period's contract term (billing/terms.py): a change writes that term.
    form_extra_fields = {
        name: DecimalField(label, validators=[InputRequired(), non_negative],
                           description="The contract term from this month on; earlier months keep their own terms "
                                       "(see the bucket's page).")
        for name, label in (("commit", "Commit"), ("base_price", "Base Price"), ("overage_price", "Overage Price"))
    }
    details_template = "meterdesk/bucket_details.html"
    empty_message = "No buckets"

    def __init__(self) -> None:
        super().__init__(Bucket, name="Buckets", endpoint="bucket")

    def terms(self, bucket_id: int) -> list:
        """The bucket's contract terms, oldest first, for its page."""
        return bucket_terms(db.session, int(bucket_id))

    def current_period(self) -> str:
        return period_label(current_period_start())

    def row_css_class(self, row: Bucket) -> str:
        return "" if row.reviewed else "unreviewed"

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        ids = [row.id for row in rows]
        g.bucket_usage = dict(db.session.execute(
            select(Projection.bucket_id, Projection.current_usage)
            .where(Projection.bucket_id.in_(ids), Projection.period_start == current_period_start())
        ).all()) if ids else {}
        return count, rows

    @action("review", "Mark reviewed", "Mark the selected buckets as reviewed (check their commits first)?")
    def action_review(self, ids: list[str]) -> None:
        buckets = db.session.scalars(select(Bucket).where(Bucket.id.in_([int(i) for i in ids]))).all()
        for bucket in buckets:
            bucket.reviewed = True
        db.session.commit()
        flash(f"{len(buckets)} buckets marked reviewed.", "success")
