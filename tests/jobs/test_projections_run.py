"""A projection run: one row per enabled bucket for the current period, replaced on each run; the page and job."""
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from billing.periods import current_period_start, next_period, period_label
from billing.projections import project_usage, run_projections
from extensions import db
from ingest.store import NewReading, store_readings
from jobs.rights import Requester
from jobs.runs import create_run
from jobs.runs import start_job
from models import Asset, Bucket, Client, JobRun, Projection, UnitType
from tests.conftest import csrf_token, work_jobs

NOV, DEC = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)
MID_NOV = datetime(2026, 11, 16, tzinfo=timezone.utc)


def build_provider(ts_base: datetime = NOV) -> dict[str, int]:
    """Acme: `vms` (sum, commit 100 @ $2, overage $3) on a1+a2; `peak` (max, commit 10 @ $1, overage $5) on a3;
    `free` (sum, commit 0, overage $0.50) on a4; `retired` (disabled) on a1."""
    hours, peak = UnitType(name="vm-hours", aggregation="sum"), UnitType(name="peak-gb", aggregation="max")
    acme = Client(name="Acme")
    a1, a2, a3, a4 = (Asset(external_id=f"a{i}", source_type="vcenter", client=acme) for i in range(1, 5))
    buckets = {
        "vms": Bucket(client=acme, name="vms", unit_type=hours, source_type="vcenter", aggregation="sum",
                      commit=Decimal(100), base_price=Decimal(2), overage_price=Decimal(3), assets=[a1, a2]),
        "peak": Bucket(client=acme, name="peak", unit_type=peak, source_type="vcenter", aggregation="max",
                       commit=Decimal(10), base_price=Decimal(1), overage_price=Decimal(5), assets=[a3]),
        "free": Bucket(client=acme, name="free", unit_type=hours, source_type="vcenter", aggregation="sum",
                       commit=Decimal(0), base_price=Decimal(1), overage_price=Decimal("0.5"), assets=[a4]),
        "retired": Bucket(client=acme, name="retired", unit_type=hours, source_type="vcenter", aggregation="sum",
                          commit=Decimal(5), enabled=False, assets=[a1]),
    }
    db.session.add_all([acme, *buckets.values()])
    db.session.flush()
    h = lambda hours_: ts_base + timedelta(hours=hours_)  # noqa: E731
    store_readings(db.session, [
        NewReading(a1.id, hours.id, h(25), Decimal(10)),
        NewReading(a1.id, hours.id, h(200), Decimal(20)),
        NewReading(a2.id, hours.id, h(360), Decimal(15)),        # exactly at mid-month: counted
        NewReading(a2.id, hours.id, h(460), Decimal(1000)),      # after "now": not yet
        NewReading(a2.id, hours.id, ts_base - timedelta(seconds=1), Decimal(500)),  # last period
        NewReading(a3.id, peak.id, h(30), Decimal(12)),
        NewReading(a3.id, peak.id, h(40), Decimal(7)),
        NewReading(a4.id, hours.id, h(50), Decimal(2)),
    ])
    db.session.commit()
    return {name: bucket.id for name, bucket in buckets.items()} | {"acme": acme.id}


def projections() -> dict[int, Projection]:
    return {p.bucket_id: p for p in db.session.scalars(select(Projection).where(Projection.period_start == NOV))}


def test_mid_month_run_projects_each_enabled_bucket(app):
    with app.app_context():
        ids = build_provider()
        summary = run_projections(db.session, now=MID_NOV)
        rows = projections()
    assert (summary.buckets, summary.over_commit) == (3, 2)
    assert set(rows) == {ids["vms"], ids["peak"], ids["free"]}
    vms = rows[ids["vms"]]   # U = 10 + 20 + 15 = 45 after 15 of 30 days → 90; base 100·2 = 200.00, no overage
    assert (vms.current_usage, vms.projected_usage, vms.projected_cost, vms.pct_of_commit) == (
        Decimal(45), Decimal(90), Decimal("200.00"), Decimal("90.00"))
    peak = rows[ids["peak"]]  # max 12, not extrapolated: base 10.00 + 2·5 = 20.00; 120 % of commit
    assert (peak.current_usage, peak.projected_usage, peak.projected_cost, peak.pct_of_commit) == (
        Decimal(12), Decimal(12), Decimal("20.00"), Decimal("120.00"))
    free = rows[ids["free"]]  # 2 → 4; overage 4·0.5 = 2.00; no commit, no percent
    assert (free.projected_usage, free.projected_cost, free.pct_of_commit) == (Decimal(4), Decimal("2.00"), None)
    assert vms.calculated_at == MID_NOV and vms.client_id == ids["acme"]


def test_a_second_run_replaces_the_projection_and_drops_disabled_buckets(app):
    with app.app_context():
        ids = build_provider()
        run_projections(db.session, now=MID_NOV)
        db.session.get(Bucket, ids["free"]).enabled = False
        db.session.get(Bucket, ids["vms"]).commit = Decimal(60)
        db.session.commit()
        later = MID_NOV + timedelta(days=5)          # 20 of 30 days; the 1000 at hour 460 now counts
        run_projections(db.session, now=later)
        rows = projections()
        count = db.session.scalar(select(func.count()).select_from(Projection))
    assert set(rows) == {ids["vms"], ids["peak"]} and count == 2
    vms = rows[ids["vms"]]   # U = 1045 → 1045·30/20 = 1567.5; base 60·2 = 120 + (1507.5·3 = 4522.50)
    assert (vms.current_usage, vms.projected_usage) == (Decimal(1045), Decimal("1567.5"))
    assert vms.projected_cost == Decimal("4642.50") and vms.pct_of_commit == Decimal("2612.50")
    assert vms.calculated_at == later


def test_other_periods_projections_are_left_alone(app):
    with app.app_context():
        ids = build_provider()
        run_projections(db.session, now=datetime(2026, 10, 31, 23, 59, 59, 500000, tzinfo=timezone.utc))
        run_projections(db.session, now=MID_NOV)
        periods = db.session.execute(select(Projection.period_start, func.count()).group_by(Projection.period_start)
                                     .order_by(Projection.period_start)).all()
        october = db.session.scalar(select(Projection).where(Projection.bucket_id == ids["vms"],
                                                             Projection.period_start < NOV))
    assert [n for _, n in periods] == [3, 3]
    assert october.current_usage == Decimal(500)   # the one October reading


def test_job_through_a_real_rq_worker(app):
    start = current_period_start()
    with app.app_context():
        build_provider(ts_base=start)
        run = start_job("projection", {}, Requester.operator("tester"), period_label(start))
        run_id = run.id
    now = datetime.now(timezone.utc)
    work_jobs(app)
    with app.app_context():
        run = db.session.get(JobRun, run_id)
        rows = db.session.scalars(select(Projection).where(Projection.period_start == start)).all()
        assert (run.status, run.progress, run.lock_key) == ("done", 100, f"projection:{period_label(start)}")
        assert "Projected 3 buckets" in run.message
        vms = next(p for p in rows if p.bucket.name == "vms")
    elapsed = now - start
    counted = sum(v for hours, v in ((25, 10), (200, 20), (360, 15), (460, 1000)) if timedelta(hours=hours) <= elapsed)
    assert vms.current_usage == Decimal(counted)
    assert vms.projected_usage == project_usage(Decimal(counted), "sum", start, next_period(start), vms.calculated_at)


def test_second_run_for_the_period_is_refused_while_one_is_active(app):
    from jobs.runs import JobRefused

    with app.app_context():
        create_run("projection", {}, "someone", period_label(current_period_start()))
        with pytest.raises(JobRefused, match="already queued or running"):
            start_job("projection", {}, Requester.operator("tester"), period_label(current_period_start()))


def test_cli_runs_projections_in_the_foreground(app, runner):
    start = current_period_start()
    with app.app_context():
        build_provider(ts_base=start)
    result = runner.invoke(args=["run-projections"])
    assert result.exit_code == 0, result.output
    assert "Projected 3 buckets" in result.output
    with app.app_context():
        run = db.session.scalar(select(JobRun).where(JobRun.kind == "projection"))
        assert (run.status, run.requested_by) == ("done", "command line")
        assert db.session.scalar(select(func.count()).select_from(Projection)) == 3


def test_cli_refuses_while_a_run_is_active(app, runner):
    with app.app_context():
        create_run("projection", {}, "someone", period_label(current_period_start()))
    result = runner.invoke(args=["run-projections"])
    assert result.exit_code == 1 and "already queued or running" in result.output


def status_filter_index(app) -> int:
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "projection")
    return next(i for i, f in enumerate(view._filters) if f.name == "Status")


def test_page_marks_over_commit_rows_and_filters_by_status(app, viewer_client):
    start = current_period_start()
    with app.app_context():
        ids = build_provider(ts_base=start)
        run_projections(db.session, now=start + timedelta(hours=100))   # U(vms) = 10 → 72; peak 12 > 10
    html = viewer_client.get("/admin/projection/").get_data(as_text=True)
    assert "No projections" not in html and "% of Commit" in html and "Calculated At" in html
    marked = re.findall(r'<tr class="over-commit">.*?</tr>', html, re.S)
    assert len(marked) == 2    # peak (12 of 10) and free (commit 0, usage 2)
    assert any(f'id={ids["peak"]}' in row for row in marked)
    assert "Run projections" not in html      # viewers cannot run it
    status = status_filter_index(app)
    over = viewer_client.get(f"/admin/projection/?flt0_{status}=over").get_data(as_text=True)
    assert over.count("<tr class=\"over-commit\">") == 2 and over.count('<tr class="">') == 0
    within = viewer_client.get(f"/admin/projection/?flt0_{status}=within").get_data(as_text=True)
    assert within.count('<tr class="">') == 1 and "over-commit\"" not in within


def test_page_is_empty_before_the_first_run(viewer_client):
    assert "No projections" in viewer_client.get("/admin/projection/").get_data(as_text=True)


def test_staff_button_starts_the_job_and_shows_its_progress(app, staff_client):
    page = staff_client.get("/admin/projection/").get_data(as_text=True)
    assert "Run projections" in page
    response = staff_client.post("/admin/projection/run",
                                 data={"csrf_token": csrf_token(staff_client, "/admin/projection/")})
    assert response.status_code == 302
    page = staff_client.get("/admin/projection/").get_data(as_text=True)
    assert 'class="job-status' in page and "started" in page
    work_jobs(app)
    page = staff_client.get("/admin/projection/").get_data(as_text=True)
    assert 'data-job-status="done"' in page and "js/jobs.js" in page


def test_viewer_cannot_start_a_run(viewer_client):
    response = viewer_client.post("/admin/projection/run",
                                  data={"csrf_token": csrf_token(viewer_client, "/admin/projection/")})
    assert response.status_code == 403
