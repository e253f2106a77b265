"""The pages: Billing ▾ True-ups, the Late Usage panel of Billing Readings, the bucket page's terms, roles."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from billing.adjustments import post_adjustments
from billing.run import bill_period
from extensions import db
from models import AuditLog, BucketTerm, JobRun, LateUsageWaiver, utcnow
from tests.factories import asset, bucket, client, readings
from tests.conftest import csrf_token

SEP, OCT = datetime(2026, 9, 1, tzinfo=timezone.utc), datetime(2026, 10, 1, tzinfo=timezone.utc)


def finalized_september_with_a_late_reading(app) -> int:
    """Acme 'Storage' (sum, commit 100 at $2, overage $3): 120 in September, finalized ($260.00); then 5 late."""
    with app.app_context():
        acme = client("Acme")
        disk = asset("disk-1", acme)
        storage = bucket("Storage", "sum", [disk], commit="100", base="2", overage="3", owner=acme,
                         created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
        readings(disk, [("2026-09-03T00:00:00+00:00", "120")])
        db.session.commit()
        bill_period(db.session, SEP, finalize=True)
        readings(disk, [("2026-09-20T00:00:00+00:00", "5")], received_at=utcnow())
        db.session.commit()
        return storage.id


def test_the_late_usage_panel_lets_admins_post_or_waive(app, admin_client, staff_client):
    finalized_september_with_a_late_reading(app)
    page = admin_client.get("/admin/billingreading/").get_data(as_text=True)
    assert 'data-period="2026-09"' in page and "$15.00" in page  # 5 more units at $3.00
    assert 'value="2026-11">into 2026-11' in page and 'value="2026-10">into 2026-10' in page
    staff_page = staff_client.get("/admin/billingreading/").get_data(as_text=True)
    assert 'data-period="2026-09"' in staff_page and "Post adjustments" not in staff_page
    form = {"period": "2026-09", "into": "2026-10", "csrf_token": csrf_token(staff_client, "/admin/billingreading/")}
    assert staff_client.post("/admin/billingreading/late/post", data=form).status_code == 403
    assert staff_client.post("/admin/billingreading/late/waive", data=form).status_code == 403
    form["csrf_token"] = csrf_token(admin_client, "/admin/billingreading/")
    posted = admin_client.post("/admin/billingreading/late/post", data=form, follow_redirects=True)
    assert "Posting adjustments for 2026-09 into 2026-10 started" in posted.get_data(as_text=True)
    with app.app_context():
        run = db.session.scalar(sa.select(JobRun).where(JobRun.kind == "adjustments"))
        assert (run.parameters, run.requested_by) == ({"period": "2026-09", "into": "2026-10"}, "admin@example.com")
    waived = admin_client.post("/admin/billingreading/late/waive", data=form, follow_redirects=True)
    assert "Late readings of 2026-09 received so far are waived." in waived.get_data(as_text=True)
    assert "No late readings pending" in waived.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(LateUsageWaiver.waived_by)) == "admin@example.com"
        assert db.session.scalar(sa.select(AuditLog.user_id).where(AuditLog.table == "late_usage_waivers"))


def test_adjustment_lines_show_in_the_grid_the_client_page_and_totals(app, admin_client):
    storage = finalized_september_with_a_late_reading(app)
    with app.app_context():
        post_adjustments(db.session, SEP, OCT)
        acme_id = db.session.scalar(sa.text("SELECT client_id FROM buckets WHERE id = :id"), {"id": storage})
    grid = admin_client.get("/admin/billingreading/?flt1_0=2026-10").get_data(as_text=True)
    assert "adjusts 2026-09" in grid and "$15.00" in grid
    page = admin_client.get(f"/admin/clients/{acme_id}").get_data(as_text=True)
    assert "Adjustment Lines" in page and "$15.00" in page


def test_true_ups_page_filters_applies_and_exports(app, staff_client, viewer_client):
    storage = finalized_september_with_a_late_reading(app)
    page = viewer_client.get("/admin/true-ups/").get_data(as_text=True)
    # September billed 120 (the late 5 is not billed yet): suggested 120, up; at 120: 240.00 − 260.00 = −20.00
    assert f'data-bucket-id="{storage}"' in page and "-$20.00" in page and "apply-one" not in page
    assert "No true-ups" in viewer_client.get("/admin/true-ups/?direction=down").get_data(as_text=True)
    csv_text = viewer_client.get("/admin/true-ups/true-ups.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("bucket_id,bucket,client_id,client,unit_type,direction,current_commit")
    assert "2026-09=120.000000" in csv_text and ",-20.00," in csv_text
    form = {"bucket_id": str(storage), "csrf_token": csrf_token(staff_client, "/admin/true-ups/")}
    applied = staff_client.post("/admin/true-ups/apply", data=form, follow_redirects=True).get_data(as_text=True)
    assert "1 true-up(s) applied: new commits from 2026-12." in applied and "applied from 2026-12" in applied
    with app.app_context():
        term = db.session.scalar(sa.select(BucketTerm).order_by(BucketTerm.id.desc()))
        assert (term.commit, term.created_by) == (120, "staff@example.com")
    bucket_page = staff_client.get(f"/admin/bucket/details/?id={storage}").get_data(as_text=True)
    assert 'data-effective-from="2026-12"' in bucket_page and "staff@example.com" in bucket_page
    assert "True-up up: commit 100 -&gt; 120" in bucket_page
    over_under = staff_client.get("/admin/over-under/?period=2026-09").get_data(as_text=True)
    assert "/admin/true-ups/?direction=down" in over_under


def test_the_bucket_grid_edits_the_current_periods_term(app, staff_client):
    from billing.periods import current_period_start

    storage = finalized_september_with_a_late_reading(app)
    url = f"/admin/bucket/edit/?id={storage}"
    form = staff_client.get(url).get_data(as_text=True)
    assert 'name="commit"' in form and 'value="100' in form
    with app.app_context():
        acme = db.session.scalar(sa.text("SELECT client_id FROM buckets"))
        unit = db.session.scalar(sa.text("SELECT unit_type_id FROM buckets"))
    data = {"client": acme, "unit_type": unit, "name": "Storage", "source_type": "vm", "aggregation": "sum",
            "commit": "140", "base_price": "2", "overage_price": "3", "reviewed": "y", "enabled": "y",
            "csrf_token": csrf_token(staff_client, url)}
    saved = staff_client.post(url, data=data)
    assert saved.status_code == 302, saved.get_data(as_text=True)[-2000:]
    refused = staff_client.post(url, data=dict(data, commit="-1"))
    assert "must not be negative" in refused.get_data(as_text=True)
    with app.app_context():
        terms = db.session.execute(sa.select(BucketTerm.effective_from, BucketTerm.commit, BucketTerm.created_by)
                                   .order_by(BucketTerm.effective_from)).all()
        assert [(start.strftime("%Y-%m"), commit, who) for start, commit, who in terms] == [
            ("2026-01", 100, "system"), (current_period_start().strftime("%Y-%m"), 140, "staff@example.com")]
