"""Billing and export as RQ jobs on the real Redis (SimpleWorker, burst), and the same code from the command line."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.export import neutralise
from billing.run import bill_period
from extensions import db
from jobs.rights import Requester
from jobs.runs import JobRefused, create_run
from jobs.runs import start_job
from models import Asset, AuditLog, BillingReading, JobRun
from tests.conftest import csrf_token, work_jobs
from tests.factories import NOV, asset, bucket, client, readings, unit_type

OCT = NOV.replace(month=10)
ADMIN = Requester("admin@example.com", "admin")


@pytest.fixture
def worker(app):
    """Run every queued job in this process, as `flask --app app worker --burst` would, inside `app`."""
    return lambda: work_jobs(app)


def two_unit_types(app) -> None:
    """Acme: storage (gb, sum) U=120.5 C=100 B=2 O=3 -> $261.50; "=cmd" client: cpu (max) U=8 C=10 B=1 -> $10.00."""
    with app.app_context():
        acme, evil = client("Acme"), client("=cmd|' /C calc'!A0")
        gb, cpu = unit_type("gb"), unit_type("cpu")
        a, b = asset("vm-a", acme), asset("-vm-b", evil)
        readings(a, [("2026-10-02T00:00:00+00:00", "100"), ("2026-10-03T00:00:00+00:00", "20.5")], unit=gb)
        readings(b, [("2026-10-02T00:00:00+00:00", "8"), ("2026-10-03T00:00:00+00:00", "2")], unit=cpu)
        bucket("storage", "sum", [a], commit="100", base="2", overage="3", owner=acme, unit=gb)
        bucket("@cores", "max", [b], commit="10", base="1", overage="5", owner=evil, unit=cpu)
        db.session.commit()


def run_of(app, run_id: int) -> JobRun:
    with app.app_context():
        run = db.session.get(JobRun, run_id)
        db.session.expunge(run)
        return run


def test_billing_and_export_jobs_run_on_a_real_worker(app, worker, admin_client):
    two_unit_types(app)
    with app.app_context():
        billing_id = start_job("billing", {"period": "2026-10", "finalize": False}, ADMIN, "2026-10").id
    worker()
    run = run_of(app, billing_id)
    assert (run.status, run.progress) == ("done", 100)
    assert run.message == "2026-10: 2 bucket(s) billed, total $271.50."
    with app.app_context():
        costs = sorted(str(line.final_cost) for line in db.session.scalars(select(BillingReading)))
        assert costs == ["10.00", "261.50"]
        from models import User

        admin_id = db.session.scalar(select(User.id).where(User.email == "admin@example.com"))
        audited = db.session.execute(select(AuditLog.action, AuditLog.user_id).where(
            AuditLog.table == "billing_readings")).all()
        assert audited == [("create", admin_id), ("create", admin_id)]
        export_id = start_job("export", {"period": "2026-10"}, ADMIN, "2026-10").id
    worker()
    run = run_of(app, export_id)
    assert run.status == "done" and run.result_path == f"export-2026-10-{export_id}.zip"
    path = Path(app.config["EXPORT_DIR"]) / run.result_path
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["cpu.csv", "gb.csv"]
        gb = list(csv.DictReader(io.TextIOWrapper(archive.open("gb.csv"), encoding="utf-8")))
        cpu = list(csv.DictReader(io.TextIOWrapper(archive.open("cpu.csv"), encoding="utf-8")))
    assert len(gb) == 1 and gb[0]["client"] == "Acme" and gb[0]["bucket"] == "storage"
    assert (gb[0]["total_usage"], gb[0]["base_cost"], gb[0]["overage_units"], gb[0]["overage_cost"],
            gb[0]["final_cost"], gb[0]["finalized"]) == ("120.500000", "200.00", "20.500000", "61.50", "261.50", "false")
    assert gb[0]["period_start"].startswith("2026-10-01T00:00:00")
    # cells a spreadsheet would run as formulas are neutralised
    assert cpu[0]["client"] == "'=cmd|' /C calc'!A0" and cpu[0]["bucket"] == "'@cores"
    assert '"external_id": "-vm-b"' in cpu[0]["details"]
    assert (cpu[0]["buffer_units"], cpu[0]["buffer_cost"], cpu[0]["final_cost"]) == ("2.000000", "2.00", "10.00")
    download = admin_client.get(f"/admin/jobs/{export_id}/download")
    assert download.status_code == 200 and download.data == path.read_bytes()
    page = admin_client.get("/admin/billingreading/").get_data(as_text=True)
    assert f"/admin/jobs/{export_id}/download" in page and 'data-job-status="done"' in page


def test_neutralise_prefixes_formula_starts_only():
    assert [neutralise(v) for v in ("=1+1", "+1", "-2", "@x", "a=b", "12.50", "")] == [
        "'=1+1", "'+1", "'-2", "'@x", "a=b", "12.50", ""]


def test_two_runs_of_a_period_never_overlap(app):
    with app.app_context():
        create_run("billing", {"period": "2026-10"}, "a@example.com", "2026-10")
        with pytest.raises(JobRefused, match="billing run for 2026-10 is already queued or running"):
            create_run("billing", {"period": "2026-10"}, "b@example.com", "2026-10")
        create_run("billing", {"period": "2026-09"}, "b@example.com", "2026-09")


def test_a_failing_job_keeps_its_error_and_leaves_the_data_unchanged(app, worker, admin_client):
    two_unit_types(app)
    with app.app_context():
        bill_period(db.session, OCT)
        before = sorted((l.bucket_id, l.final_cost, l.id) for l in db.session.scalars(select(BillingReading)))
        audits = db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
        a = db.session.scalar(select(Asset).where(Asset.external_id == "vm-a"))
        # a collector glitch posts 9 trillion GB every hour for 17 days: the micro-unit sum overflows 64 bits
        # (SQLite), or the overage cost (3.7e15 GB x $3) overflows the money column on insert (PostgreSQL)
        glitch = [((OCT + timedelta(days=5, hours=h)).isoformat(), "9000000000000") for h in range(410)]
        readings(a, glitch, unit=unit_type("gb"))
        db.session.commit()
        failing = start_job("billing", {"period": "2026-10", "finalize": False}, ADMIN, "2026-10").id
    worker()
    run = run_of(app, failing)
    assert run.status == "failed" and "overflow" in run.message.lower()
    with app.app_context():
        assert sorted((l.bucket_id, l.final_cost, l.id) for l in db.session.scalars(select(BillingReading))) == before
        assert db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)) == audits
    page = admin_client.get("/admin/billingreading/").get_data(as_text=True)
    assert 'data-job-status="failed"' in page and "overflow" in page.lower() and "job-retry" in page
    token = csrf_token(admin_client, "/admin/billingreading/")
    admin_client.post(f"/admin/jobs/{failing}/retry", data={"csrf_token": token})
    with app.app_context():
        retried = db.session.scalars(select(JobRun).order_by(JobRun.id.desc())).first()
        assert (retried.id, retried.status, retried.parameters) == (failing + 1, "queued",
                                                                    {"period": "2026-10", "finalize": False})


def test_run_billing_and_export_csv_commands(app, runner, tmp_path):
    two_unit_types(app)
    result = runner.invoke(args=["run-billing", "--period", "2026-10", "--finalize"])
    assert result.exit_code == 0, result.output
    assert "2026-10: 2 bucket(s) billed and finalized, total $271.50." in result.output
    out = tmp_path / "oct.zip"
    result = runner.invoke(args=["export-csv", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(zipfile.ZipFile(out).namelist()) == ["cpu.csv", "gb.csv"]
    with app.app_context():
        assert all(line.finalized for line in db.session.scalars(select(BillingReading)))
        assert [r.status for r in db.session.scalars(select(JobRun).order_by(JobRun.id))] == ["done", "done"]


def test_commands_refuse_bad_periods_overlaps_and_empty_exports(app, runner, tmp_path):
    bad = runner.invoke(args=["run-billing", "--period", "October"])
    assert bad.exit_code != 0 and "period must be YYYY-MM" in bad.output
    with app.app_context():
        create_run("billing", {"period": "2026-10"}, "someone@example.com", "2026-10")
    busy = runner.invoke(args=["run-billing", "--period", "2026-10"])
    assert busy.exit_code != 0 and "already queued or running" in busy.output
    empty = runner.invoke(args=["export-csv", "--period", "2026-08", "--out", str(tmp_path / "x.zip")])
    assert empty.exit_code != 0 and "No billing lines for 2026-08" in empty.output
    assert not (tmp_path / "x.zip").exists()


def test_export_entries_carry_the_export_time(app, tmp_path):
    from billing.export import export_period
    from models import utcnow

    two_unit_types(app)
    with app.app_context():
        bill_period(db.session, OCT)
        before = utcnow()
        assert export_period(db.session, OCT, tmp_path / "oct.zip") == 2
        after = utcnow()
    stamps = {info.date_time[:3] for info in zipfile.ZipFile(tmp_path / "oct.zip").infolist()}
    assert stamps and stamps <= {(before.year, before.month, before.day), (after.year, after.month, after.day)}


def test_a_run_started_by_an_api_key_names_the_key_in_the_audit_log(app, worker, client):
    from tests.api_helpers import bearer, make_key

    two_unit_types(app)
    raw = make_key(app, "admin")
    response = client.post("/api/v1/billing/run", json={"period": "2026-10"}, headers=bearer(raw))
    assert response.status_code == 202, response.get_data(as_text=True)
    worker()
    with app.app_context():
        from models import ApiKey

        key_id = db.session.scalar(select(ApiKey.id))
        audited = db.session.execute(select(AuditLog.action, AuditLog.api_key_id, AuditLog.user_id).where(
            AuditLog.table == "billing_readings")).all()
    assert audited == [("create", key_id, None), ("create", key_id, None)]
