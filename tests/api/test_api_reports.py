"""Read endpoints (billing lines, projections, job runs) and run requests through the real RQ queue."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.periods import current_period_start, period_label
from extensions import db
from jobs.redis import get_queue
from jobs.runs import run_job
from models import BillingReading, Bucket, JobRun, Projection
from tests.api_helpers import bearer, make_client, make_key, make_unit_type
from tests.conftest import work_jobs

OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)


def add_line(app, client_id: int, unit_id: int, name: str, usage: str, finalized: bool = False) -> int:
    """A line with U=usage, C=100, B=2, O=3: base $200.00 and overage (U-100)*3 or buffer (100-U)*2."""
    with app.app_context():
        bucket = Bucket(client_id=client_id, name=name, unit_type_id=unit_id, source_type="vmware",
                        commit=Decimal("100"), base_price=Decimal("2"), overage_price=Decimal("3"))
        db.session.add(bucket)
        db.session.flush()
        u = Decimal(usage)
        over, under = max(Decimal(0), u - 100), max(Decimal(0), 100 - u)
        line = BillingReading(
            client_id=client_id, bucket_id=bucket.id, period_start=OCT, period_end=NOV, total_usage=u,
            commit=Decimal("100"), base_price=Decimal("2"), overage_price=Decimal("3"), base_cost=Decimal("200"),
            overage_units=over, overage_cost=over * 3, buffer_units=under, buffer_cost=under * 2,
            final_cost=200 + over * 3, finalized=finalized, details={"vm-1": str(u)})
        db.session.add(line)
        db.session.commit()
        return line.id


@pytest.fixture
def setup(app):
    unit = make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    add_line(app, acme, unit, "Compute", "120.5", finalized=True)
    add_line(app, globex, unit, "Compute", "80")
    return {"acme": acme, "globex": globex, "unit": unit,
            "readonly": bearer(make_key(app, "readonly")), "admin": bearer(make_key(app, "admin"))}


def test_billing_lines_of_a_period_with_every_field(client, setup):
    body = client.get("/api/v1/billing?period=2026-10", headers=setup["readonly"]).json
    assert body["total"] == 2
    acme = next(line for line in body["items"] if line["client_id"] == setup["acme"])
    assert {k: acme[k] for k in ("total_usage", "commit", "base_cost", "overage_units", "overage_cost",
                                 "buffer_units", "buffer_cost", "final_cost", "finalized")} == {
        "total_usage": "120.500000", "commit": "100.000000", "base_cost": "200.00", "overage_units": "20.500000",
        "overage_cost": "61.50", "buffer_units": "0.000000", "buffer_cost": "0.00", "final_cost": "261.50",
        "finalized": True}
    assert acme["period_start"].startswith("2026-10-01T00:00:00") and acme["details"] == {"vm-1": "120.5"}
    assert set(acme) >= {"id", "bucket_id", "period_end", "base_price", "overage_price", "finalized_at",
                         "calculated_at"}


def test_billing_lines_filter_by_client_and_need_a_period(client, setup):
    only = client.get(f"/api/v1/billing?period=2026-10&client_id={setup['globex']}", headers=setup["readonly"]).json
    assert [line["buffer_cost"] for line in only["items"]] == ["40.00"]
    assert client.get("/api/v1/billing?period=2026-09", headers=setup["readonly"]).json == {"items": [], "total": 0}
    assert client.get("/api/v1/billing", headers=setup["readonly"]).status_code == 400
    assert client.get("/api/v1/billing?period=2026-13", headers=setup["readonly"]).status_code == 400


def test_a_scoped_readonly_key_reads_only_its_client(app, client, setup):
    scoped = bearer(make_key(app, "readonly", setup["acme"]))
    body = client.get("/api/v1/billing?period=2026-10", headers=scoped).json
    assert [line["client_id"] for line in body["items"]] == [setup["acme"]]
    assert client.get(f"/api/v1/billing?period=2026-10&client_id={setup['globex']}",
                      headers=scoped).status_code == 403


def test_projections_default_to_the_current_period(app, client, setup):
    with app.app_context():
        bucket_id = db.session.scalar(select(Bucket.id).where(Bucket.client_id == setup["acme"]))
        db.session.add(Projection(client_id=setup["acme"], bucket_id=bucket_id, period_start=current_period_start(),
                                  current_usage=Decimal("50"), projected_usage=Decimal("150"),
                                  projected_cost=Decimal("350"), pct_of_commit=None))
        db.session.commit()
    body = client.get("/api/v1/projections", headers=setup["readonly"]).json
    assert body["total"] == 1
    row = body["items"][0]
    assert (row["current_usage"], row["projected_usage"], row["projected_cost"], row["pct_of_commit"]) == (
        "50.000000", "150.000000", "350.00", None)
    assert client.get("/api/v1/projections?period=2026-10", headers=setup["readonly"]).json["total"] == 0


def test_billing_run_is_queued_by_kind_and_refused_while_active(app, client, setup):
    response = client.post("/api/v1/billing/run", json={"period": "2026-10", "finalize": True},
                           headers=setup["admin"])
    assert response.status_code == 202
    job_id = response.json["job_id"]
    with app.app_context():
        run = db.session.get(JobRun, job_id)
        assert (run.kind, run.parameters, run.status) == ("billing", {"period": "2026-10", "finalize": True},
                                                          "queued")
        assert run.requested_by.startswith("api-key:")
        queued = get_queue().jobs
        assert [job.func_name for job in queued] == [f"{run_job.__module__}.{run_job.__name__}"]
    again = client.post("/api/v1/billing/run", json={"period": "2026-10"}, headers=setup["admin"])
    assert again.status_code == 409 and "already queued or running" in again.json["error"]
    status = client.get(f"/api/v1/jobs/{job_id}", headers=setup["readonly"]).json
    assert (status["id"], status["kind"], status["status"]) == (job_id, "billing", "queued")
    assert client.get("/api/v1/jobs/999", headers=setup["readonly"]).status_code == 404


def test_a_bad_billing_run_request_is_422(client, setup):
    assert client.post("/api/v1/billing/run", json={"period": "2026-13"}, headers=setup["admin"]).status_code == 422
    assert client.post("/api/v1/billing/run", json={}, headers=setup["admin"]).status_code == 422


def test_projection_run_goes_through_the_worker(app, client, setup):
    response = client.post("/api/v1/projections/run", headers=setup["admin"])
    assert response.status_code == 202
    job_id = response.json["job_id"]
    with app.app_context():
        run = db.session.get(JobRun, job_id)
        assert run.parameters == {"period": period_label(current_period_start())}
    work_jobs(app)
    status = client.get(f"/api/v1/jobs/{job_id}", headers=setup["readonly"]).json
    assert status["status"] in ("done", "failed")
    assert status["status"] == "done", status["message"]
