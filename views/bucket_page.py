"""A bucket's page: terms, bound assets with their usage this period, projection and billing history."""
from __future__ import annotations

from flask import abort, current_app
from flask_admin import expose
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from billing.gaps import current_gaps
from billing.periods import current_period_start, period_label
from billing.terms import bucket_terms
from extensions import db
from models import Bucket
from reports.anomalies import anomalies
from reports.bucket_page import bound_assets, bucket_lines, current_projection
from views import charts
from views.base import HiddenView
from views.links import filtered_url


class BucketPage(HiddenView):
    @expose("/<int:bucket_id>")
    def bucket(self, bucket_id: int):
        bucket = db.session.scalar(select(Bucket).where(Bucket.id == bucket_id)
                                   .options(joinedload(Bucket.client), joinedload(Bucket.unit_type))) or abort(404)
        assets, asset_count, usage = bound_assets(db.session, bucket_id)
        lines = bucket_lines(db.session, bucket_id)
        anomaly = anomalies(db.session, current_app.config["ANOMALY_PCT"], bucket_id=bucket_id)
        gaps = {row.asset_id: row.gap_hours for row in current_gaps(db.session, bucket_id=bucket_id)}
        figure = charts.figure_json(charts.bucket_history(list(reversed(lines)))) if lines else None
        return self.render(
            "meterdesk/bucket.html", bucket=bucket, assets=assets, asset_count=asset_count,
            projection=current_projection(db.session, bucket, usage), anomaly=anomaly[0] if anomaly else None,
            gaps=gaps, lines=lines, history_figure=figure,
            terms=bucket_terms(db.session, bucket_id), current=period_label(current_period_start()),
            lines_url=filtered_url("billingreading", "Bucket ID", bucket.id),
            unit_type_url=filtered_url("unittype", "Name", bucket.unit_type.name))
