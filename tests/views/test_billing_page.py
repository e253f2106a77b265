"""The Billing Readings page: summary and line tables, details, late readings, and who may run what."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from billing.run import bill_period
from extensions import db
from models import JobRun, utcnow
from tests.conftest import csrf_token
from tests.factories import NOV, asset, bucket, client, readings

PAGE = "/admin/billingreading/"
OCT = NOV.replace(month=10)


def billed_october(app, finalize: bool = False) -> None:
    with app.app_context():
        acme = client("Acme")
        a = asset("vm-a", acme)
        readings(a, [("2026-10-02T00:00:00+00:00", "120.5")], received_at=utcnow() - timedelta(days=3))
        bucket("storage", "sum", [a], commit="100", base="2", overage="3", owner=acme)
        db.session.commit()
        bill_period(db.session, OCT, finalize=finalize)


def period_filter_url(app, period: str) -> str:
    from views.billing import PeriodFilter

    with app.test_request_context():
        view = app.extensions["admin"][0]._views
        billing = next(v for v in view if v.endpoint == "billingreading")
        key = next(k for k, (_, flt) in billing._filter_args.items() if isinstance(flt, PeriodFilter))
    return f"{PAGE}?flt0_{key}={period}"


def test_empty_page_says_no_data(admin_client):
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "Run Billing" in html and 'type="month"' in html
    assert "No data loaded" in html
    assert "most recently loaded period ()" in html
    assert html.count("No billing readings") == 2


def test_lines_summary_and_details(app, admin_client):
    billed_october(app)
    html = admin_client.get(PAGE).get_data(as_text=True)
    for header in ("Client", "Period Start", "Period End", "Buckets", "Total Cost", "Bucket ID", "Total Usage",
                   "Final Cost", "Finalized", "Details"):
        assert header in html
    # U = 120.5, C = 100: base $200.00 + overage 20.5 × $3 = $61.50 -> $261.50
    assert "$261.50" in html and "$61.50" in html
    assert "most recently loaded period (2026-10)" in html
    assert "vm-a" in html and "2026-10-01" in html and "2026-11-01" in html
    summary = html.split('class="table table-sm table-bordered client-summary"')[1].split("</table>")[0]
    assert re.search(r"Acme</a></td>\s*<td>2026-10-01.*?<td>1</td>\s*<td>\$261\.50</td>", summary, re.S)


def test_late_readings_show_on_a_finalized_line(app, admin_client):
    billed_october(app, finalize=True)
    with app.app_context():
        from models import Asset

        a = db.session.scalar(select(Asset))
        readings(a, [("2026-10-20T00:00:00+00:00", "9"), ("2026-10-21T00:00:00+00:00", "9")],
                 received_at=utcnow() + timedelta(seconds=5))
        db.session.commit()
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "2 late" in html and "arrived after finalizing" in html
    assert "$261.50" in html  # unchanged


def test_period_filter_selects_the_export_period(app, admin_client):
    billed_october(app)
    with app.app_context():
        bill_period(db.session, NOV.replace(month=9))
    html = admin_client.get(period_filter_url(app, "2026-09")).get_data(as_text=True)
    assert "most recently loaded period (2026-09)" in html
    summary = html.split("client-summary")[1].split("</table>")[0]
    assert "2026-09-01" in summary and "2026-11-01" not in summary
    assert "$200.00" in summary  # September has no readings: base 100 × $2 only


def test_viewer_sees_but_cannot_run(app, viewer_client):
    billed_october(app)
    html = viewer_client.get(PAGE).get_data(as_text=True)
    assert "$261.50" in html
    assert 'action="/admin/billingreading/run"' not in html
    token = csrf_token(viewer_client, PAGE)
    assert viewer_client.post(f"{PAGE}run", data={"period": "2026-10", "csrf_token": token}).status_code == 403
    assert viewer_client.post(f"{PAGE}export", data={"period": "2026-10", "csrf_token": token}).status_code == 403


def test_staff_runs_billing_but_only_admins_finalize(app, staff_client, admin_client):
    html = staff_client.get(PAGE).get_data(as_text=True)
    assert 'action="/admin/billingreading/run"' in html and 'name="finalize"' not in html
    token = csrf_token(staff_client, PAGE)
    assert staff_client.post(f"{PAGE}run", data={"period": "2026-10", "finalize": "1",
                                                 "csrf_token": token}).status_code == 403
    assert staff_client.post(f"{PAGE}finalize", data={"period": "2026-10", "csrf_token": token}).status_code == 403
    assert 'name="finalize"' in admin_client.get(PAGE).get_data(as_text=True)


def test_run_button_queues_a_job_and_a_second_one_is_refused(app, staff_client):
    token = csrf_token(staff_client, PAGE)
    first = staff_client.post(f"{PAGE}run", data={"period": "2026-10", "csrf_token": token}, follow_redirects=True)
    assert "Billing 2026-10 started" in first.get_data(as_text=True)
    second = staff_client.post(f"{PAGE}run", data={"period": "2026-10", "csrf_token": token}, follow_redirects=True)
    html = second.get_data(as_text=True)
    assert "already queued or running" in html
    assert 'data-job-status="queued"' in html
    with app.app_context():
        runs = db.session.scalars(select(JobRun)).all()
        assert [(r.kind, r.parameters, r.status) for r in runs] == [
            ("billing", {"period": "2026-10", "finalize": False}, "queued")]


def test_bad_and_future_periods_are_refused_with_a_message(app, staff_client):
    token = csrf_token(staff_client, PAGE)
    bad = staff_client.post(f"{PAGE}run", data={"period": "2026-13", "csrf_token": token}, follow_redirects=True)
    assert "period must be a real month" in bad.get_data(as_text=True)
    future = staff_client.post(f"{PAGE}run", data={"period": "2099-01", "csrf_token": token}, follow_redirects=True)
    assert "in the future" in future.get_data(as_text=True)
    empty = staff_client.post(f"{PAGE}export", data={"period": "2026-10", "csrf_token": token}, follow_redirects=True)
    assert "No billing lines for 2026-10: run billing for it first." in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(JobRun)).all() == []


def test_finalize_button_only_while_the_period_has_unfinalized_lines(app, admin_client):
    billed_october(app)
    assert "Finalize 2026-10" in admin_client.get(PAGE).get_data(as_text=True)
    with app.app_context():
        bill_period(db.session, OCT, finalize=True)
    assert "Finalize 2026-10" not in admin_client.get(PAGE).get_data(as_text=True)


def test_admin_cannot_finalize_the_open_period(app, admin_client):
    from billing.periods import current_period_start, period_label

    token = csrf_token(admin_client, PAGE)
    current = period_label(current_period_start())
    page = admin_client.post(f"{PAGE}run", data={"period": current, "finalize": "1", "csrf_token": token},
                             follow_redirects=True).get_data(as_text=True)
    assert f"{current} has not ended yet" in page
    with app.app_context():
        assert db.session.scalars(select(JobRun)).all() == []


def test_period_filter_offers_the_billed_periods_latest_first(app, admin_client):
    billed_october(app)
    with app.app_context():
        bill_period(db.session, NOV.replace(month=9))
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert html.index('"2026-10"') < html.index('"2026-09"')
