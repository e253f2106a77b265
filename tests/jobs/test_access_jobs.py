"""Who may start which run, through every start path (page, Retry, API, command), and who may read a run.

DESIGN "Money integrity": only `admin` finalizes, directly or through any retry; a retry runs with the retrying
user's rights; a client-scoped key sees only its client's job runs (404 otherwise); a run that cannot run is
refused up front and leaves no JobRun behind.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing.periods import current_period_start, next_period, period_label, previous_period
from billing.run import bill_period
from extensions import db
from models import ApiKey, AuditLog, BillingReading, JobRun, User
from tests.api_helpers import bearer, make_key
from tests.conftest import AuthActions, csrf_token, make_user, work_jobs
from tests.factories import asset, bucket, client, readings

PAGE = "/admin/billingreading/"
LAST = previous_period(current_period_start())
LAST_LABEL = period_label(LAST)


def billable_last_month(app) -> None:
    """Acme's storage bucket last month: U = 100 + 20.5 = 120.5 GB, C = 100, B = $2, O = $3
    -> base 100 x 2 = $200.00 + overage 20.5 x 3 = $61.50 = $261.50."""
    with app.app_context():
        acme = client("Acme")
        vm = asset("vm-a", acme)
        readings(vm, [((LAST + timedelta(days=1)).isoformat(), "100"),
                      ((LAST + timedelta(days=2)).isoformat(), "20.5")])
        bucket("storage", "sum", [vm], commit="100", base="2", overage="3", owner=acme)
        db.session.commit()


def failed_run(app, kind: str, parameters: dict, requested_by: str = "admin@example.com") -> int:
    """A run that failed earlier (its worker died, the database was away...), waiting for a Retry."""
    with app.app_context():
        period = parameters.get("period")
        run = JobRun(kind=kind, parameters=parameters, lock_key=f"{kind}:{period or 'all'}", status="failed",
                     progress=40, requested_by=requested_by, message="OperationalError: server closed the connection")
        db.session.add(run)
        db.session.commit()
        return run.id


def runs(app) -> list[tuple]:
    with app.app_context():
        return [(r.id, r.kind, r.parameters, r.status, r.requested_by)
                for r in db.session.scalars(select(JobRun).order_by(JobRun.id))]


def session_for(app, who: str):
    client_ = app.test_client()
    if who != "anonymous":
        make_user(app, who)
        assert AuthActions(client_).login(f"{who}@example.com").status_code == 302
    return client_


# who retries, which failed run (finalizing last month or not): the answer, and the run that starts (its finalize)
RETRIES = [
    ("anonymous", True, "login", None),
    ("anonymous", False, "login", None),
    ("viewer", True, "forbidden", None),
    ("viewer", False, "forbidden", None),
    ("staff", True, "refused", None),
    ("staff", False, "queued", False),
    ("admin", True, "queued", True),
    ("admin", False, "queued", False),
]


@pytest.mark.parametrize(("who", "finalize", "answer", "runs_finalizing"), RETRIES)
def test_a_failed_billing_run_is_retried_with_the_rights_of_whoever_retries_it(app, who, finalize, answer,
                                                                               runs_finalizing):
    billable_last_month(app)
    make_user(app, "admin")
    old = failed_run(app, "billing", {"period": LAST_LABEL, "finalize": finalize})
    browser = session_for(app, who)
    token = csrf_token(browser, "/login" if who == "anonymous" else PAGE)
    response = browser.post(f"/admin/jobs/{old}/retry", data={"csrf_token": token}, headers={"Referer": PAGE})

    if answer == "login":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    elif answer == "forbidden":
        assert response.status_code == 403
    else:
        assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
        flashed = browser.get(PAGE).get_data(as_text=True)
    if answer != "queued":
        if answer == "refused":
            assert (f"Only an admin may finalize billing: finalizing {LAST_LABEL} was refused. Ask an admin, or run "
                    f"billing for {LAST_LABEL} without finalizing.") in flashed
        assert [run[0] for run in runs(app)] == [old]
        work_jobs(app)
        with app.app_context():
            assert db.session.scalar(select(func.count(BillingReading.id))) == 0
        return

    assert f"Job #{old + 1} queued again." in flashed
    assert runs(app)[-1] == (old + 1, "billing", {"period": LAST_LABEL, "finalize": finalize}, "queued",
                             f"{who}@example.com")
    work_jobs(app)
    with app.app_context():
        run = db.session.get(JobRun, old + 1)
        assert run.status == "done", run.message
        line = db.session.scalars(select(BillingReading)).one()
        assert (str(line.final_cost), line.finalized) == ("261.50", runs_finalizing)
        retrier = db.session.scalar(select(User.id).where(User.email == f"{who}@example.com"))
        assert db.session.scalars(select(AuditLog.user_id).where(AuditLog.table == "billing_readings")).all() == [
            retrier]


def test_retrying_a_run_whose_parameters_cannot_run_now_is_refused_and_records_nothing(app, admin_client):
    old = failed_run(app, "export", {"period": LAST_LABEL})  # its lines were never billed
    token = csrf_token(admin_client, PAGE)
    page = admin_client.post(f"/admin/jobs/{old}/retry", data={"csrf_token": token}, headers={"Referer": PAGE},
                             follow_redirects=True).get_data(as_text=True)
    assert f"No billing lines for {LAST_LABEL}: run billing for it first." in page
    assert [run[0] for run in runs(app)] == [old]


def test_a_client_scoped_key_reads_no_job_run_and_an_unscoped_key_reads_every_one(app):
    with app.app_context():
        acme, other = client("Acme"), client("Other")
        db.session.commit()
        acme_id, other_id = acme.id, other.id
    ids = {kind: failed_run(app, kind, parameters, requested_by="staff@example.com") for kind, parameters in (
        ("billing", {"period": LAST_LABEL, "finalize": True}), ("projection", {"period": LAST_LABEL}),
        ("provisioning", {}), ("export", {"period": LAST_LABEL}))}
    scoped = {f"{role} key of Acme": make_key(app, role, acme_id, name=f"acme {role}")
              for role in ("readonly", "admin")}
    scoped["readonly key of Other"] = make_key(app, "readonly", other_id, name="other readonly")
    unscoped = {f"{role} key": make_key(app, role, name=f"company {role}") for role in ("readonly", "admin")}
    api = app.test_client()
    missing = api.get("/api/v1/jobs/999", headers=bearer(unscoped["readonly key"]))
    assert (missing.status_code, missing.get_json()) == (404, {"error": "no job run with id 999"})
    for kind, run_id in ids.items():
        for name, key in scoped.items():
            response = api.get(f"/api/v1/jobs/{run_id}", headers=bearer(key))
            # the same answer as for a run that does not exist: nothing about the run leaks
            assert (response.status_code, response.get_json()) == (404, {"error": f"no job run with id {run_id}"}), \
                (kind, name)
        for name, key in unscoped.items():
            response = api.get(f"/api/v1/jobs/{run_id}", headers=bearer(key))
            body = response.get_json()
            assert response.status_code == 200, (kind, name)
            assert (body["id"], body["kind"], body["status"], body["requested_by"]) == (
                run_id, kind, "failed", "staff@example.com")


def test_billing_run_api_refuses_a_period_it_cannot_bill_with_409_and_records_nothing(app):
    key = make_key(app, "admin")
    api = app.test_client()
    current = period_label(current_period_start())
    future = period_label(next_period(current_period_start()))
    refusals = [
        ({"period": future}, f"{future} is in the future; only started periods can be billed."),
        ({"period": future, "finalize": True}, f"{future} is in the future; only started periods can be billed."),
        ({"period": current, "finalize": True},
         f"{current} has not ended yet; it can be billed now but finalized only once it is over."),
    ]
    for body, error in refusals:
        response = api.post("/api/v1/billing/run", json=body, headers=bearer(key))
        assert (response.status_code, response.get_json()) == (409, {"error": error}), body
        assert runs(app) == []
    preview = api.post("/api/v1/billing/run", json={"period": current}, headers=bearer(key))
    assert preview.status_code == 202
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id))
    assert runs(app) == [(preview.get_json()["job_id"], "billing", {"period": current, "finalize": False}, "queued",
                          f"api-key:{key_id}")]


def test_billing_run_api_refuses_client_scoped_and_readonly_keys_and_records_nothing(app):
    with app.app_context():
        acme = client("Acme")
        db.session.commit()
        acme_id = acme.id
    api = app.test_client()
    scoped = api.post("/api/v1/billing/run", json={"period": LAST_LABEL},
                      headers=bearer(make_key(app, "admin", acme_id, name="acme admin")))
    assert (scoped.status_code, scoped.get_json()) == (
        403, {"error": "forbidden: a client-scoped key may not run billing for every client"})
    reader = api.post("/api/v1/billing/run", json={"period": LAST_LABEL},
                      headers=bearer(make_key(app, "readonly", name="reader")))
    assert (reader.status_code, reader.get_json()) == (
        403, {"error": "a key with role 'readonly' may not do this; needs admin"})
    assert runs(app) == []


def test_billing_page_refuses_what_cannot_run_with_a_flash_and_records_nothing(app, admin_client):
    token = csrf_token(admin_client, PAGE)
    current = period_label(current_period_start())
    future = period_label(next_period(current_period_start()))
    for path, form, message in (
        ("run", {"period": future}, f"{future} is in the future; only started periods can be billed."),
        ("finalize", {"period": current},
         f"{current} has not ended yet; it can be billed now but finalized only once it is over."),
        ("export", {"period": LAST_LABEL}, f"No billing lines for {LAST_LABEL}: run billing for it first."),
    ):
        page = admin_client.post(f"{PAGE}{path}", data={**form, "csrf_token": token}, follow_redirects=True)
        assert page.status_code == 200 and message in page.get_data(as_text=True), path
        assert runs(app) == []


def test_staff_may_not_finalize_from_the_page_and_nothing_is_recorded(app, staff_client, admin_client):
    billable_last_month(app)
    with app.app_context():
        bill_period(db.session, LAST)
    assert f"Finalize {LAST_LABEL}" in admin_client.get(PAGE).get_data(as_text=True)
    token = csrf_token(staff_client, PAGE)
    for path, form in (("finalize", {"period": LAST_LABEL}), ("run", {"period": LAST_LABEL, "finalize": "1"})):
        assert staff_client.post(f"{PAGE}{path}", data={**form, "csrf_token": token}).status_code == 403
    assert runs(app) == []
    with app.app_context():
        assert db.session.scalars(select(BillingReading.finalized)).all() == [False]
    page = staff_client.get(PAGE).get_data(as_text=True)
    assert "Run Billing" in page and f"Finalize {LAST_LABEL}" not in page


def test_run_billing_command_refuses_a_future_period_before_recording_a_run(app, runner):
    future = period_label(next_period(current_period_start()))
    result = runner.invoke(args=["run-billing", "--period", future])
    assert result.exit_code != 0
    assert f"{future} is in the future; only started periods can be billed." in result.output
    assert runs(app) == []
