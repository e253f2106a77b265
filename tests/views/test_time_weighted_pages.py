"""Gap hours of time_weighted buckets on the bucket page and the asset page (data from billing.gaps)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.gaps import current_gaps
from billing.periods import current_period_start
from extensions import db
from models import utcnow
from tests.factories import asset, bucket, readings, unit_type

D = Decimal


def storage_bucket() -> tuple[int, int, int]:
    """A time_weighted gb bucket (max gap 60) binding vm-1 (2 GB at period start and +1 h) and vm-2 (no readings)."""
    start = current_period_start(utcnow())
    if utcnow() - start < timedelta(hours=3):
        pytest.skip("the first hours of a month: too little of the period has passed")
    unit = unit_type("gb")
    unit.max_gap_minutes = 60
    one, two = asset("vm-1"), asset("vm-2")
    readings(one, [(start.isoformat(), "2"), ((start + timedelta(hours=1)).isoformat(), "2")], unit=unit)
    target = bucket("Storage GB-h", "time_weighted", [one, two], unit=unit)
    db.session.commit()
    return target.id, one.id, two.id


def test_current_gaps_per_asset_so_far_this_period(app):
    with app.app_context():
        bucket_id, one, two = storage_bucket()
        now = current_period_start(utcnow()) + timedelta(hours=10)
        rows = current_gaps(db.session, bucket_id=bucket_id, now=now)
        # vm-1: 2 GB x 2 h = 4 GB-h, covered 2 of 10 h -> 8 h gap; vm-2: no readings, all 10 h are gap
        assert [(r.asset_id, r.usage, r.gap_hours) for r in rows] == [(one, D("4"), D("8")), (two, D(0), D("10"))]
        assert [(r.asset_id, r.gap_hours) for r in current_gaps(db.session, asset_id=two, now=now)] == [(two, D(10))]


def test_bucket_page_lists_gap_hours_per_asset(app, viewer_client):
    with app.app_context():
        bucket_id, _, _ = storage_bucket()
    html = viewer_client.get(f"/admin/bucket/details/?id={bucket_id}").get_data(as_text=True)
    assert "Gap Hours (this period)" in html
    table = html[html.index('class="table table-sm gap-hours"'):]
    assert ">vm-1</a></td><td>4</td>" in table and ">vm-2</a></td><td>0</td>" in table


def test_asset_page_shows_its_time_weighted_buckets(app, viewer_client):
    with app.app_context():
        _, one, _ = storage_bucket()
    html = viewer_client.get(f"/admin/assets/page/{one}").get_data(as_text=True)
    assert "Time-weighted usage this period" in html
    assert "Storage GB-h</a></td><td>gb</td>" in html and "<td>4</td>" in html and "60 min" in html


def test_other_buckets_show_no_gap_table(app, viewer_client):
    with app.app_context():
        a = asset("vm-9")
        other = bucket("CPU", "sum", [a])
        db.session.commit()
        bucket_id, asset_id = other.id, a.id
    assert 'gap-hours' not in viewer_client.get(f"/admin/bucket/details/?id={bucket_id}").get_data(as_text=True)
    assert "Time-weighted usage" not in viewer_client.get(f"/admin/assets/page/{asset_id}").get_data(as_text=True)
