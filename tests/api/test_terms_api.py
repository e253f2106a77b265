"""GET/POST /api/v1/buckets/<id>/terms, GET /api/v1/true-ups, POST /api/v1/billing/adjustments, adjusts_period."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from billing.periods import current_period_start, period_label
from billing.run import bill_period
from extensions import db
from models import Asset, AuditLog, BucketTerm, JobRun, utcnow
from tests.api_helpers import bearer, make_key
from tests.factories import asset, bucket, client, readings

SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)


def billed_bucket(app, finalize: bool = True) -> tuple[int, int]:
    """Acme 'Storage' (sum, commit 100 at $2, overage $3, since 2026-01), 120 used in September, billed (and
    finalized); Other's bucket for scoping."""
    with app.app_context():
        acme = client("Acme")
        disk = asset("disk-1", acme)
        storage = bucket("Storage", "sum", [disk], commit="100", base="2", overage="3", owner=acme,
                         created_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
        other = bucket("Other", "sum", [], owner=client("Other"))
        readings(disk, [("2026-09-03T00:00:00+00:00", "120")])
        db.session.commit()
        bill_period(db.session, SEP, finalize=finalize)
        return storage.id, other.id


def test_terms_are_listed_added_replaced_and_refused_for_a_finalized_period(app, client):
    storage, _ = billed_bucket(app)
    key = bearer(make_key(app, "admin"))
    listed = client.get(f"/api/v1/buckets/{storage}/terms", headers=key)
    assert listed.status_code == 200
    assert [(t["effective_from"], t["commit"], t["base_price"]) for t in listed.json["items"]] == [
        ("2026-01", "100.000000", "2.000000")] and listed.json["total"] == 1
    body = {"effective_from": "2026-12", "commit": "150", "base_price": 1.8, "overage_price": "2.5", "note": "renewal"}
    added = client.post(f"/api/v1/buckets/{storage}/terms", json=body, headers=key)
    assert added.status_code == 201, added.json
    assert (added.json["effective_from"], added.json["commit"], added.json["note"]) == ("2026-12", "150.000000",
                                                                                       "renewal")
    assert added.json["created_by"] == "API key #1 (admin key)"
    replaced = client.post(f"/api/v1/buckets/{storage}/terms", json=dict(body, commit=160), headers=key)
    assert (replaced.status_code, replaced.json["commit"]) == (200, "160.000000")
    for period in ("2026-09", "2026-05"):  # September is finalized; a term from May would govern it too
        refused = client.post(f"/api/v1/buckets/{storage}/terms", json=dict(body, effective_from=period), headers=key)
        assert refused.status_code == 409 and "2026-09" in refused.json["error"]
    bad = client.post(f"/api/v1/buckets/{storage}/terms", json=dict(body, effective_from="2026-13", commit=-1),
                      headers=key)
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"effective_from", "commit"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BucketTerm)) == 3  # 2 first terms + Dec
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.table == "bucket_terms", AuditLog.api_key_id.is_not(None))) == 2


def test_patching_commit_writes_the_current_term(app, client):
    storage, _ = billed_bucket(app)
    key = bearer(make_key(app, "admin"))
    patched = client.patch(f"/api/v1/buckets/{storage}", json={"commit": "125"}, headers=key)
    assert patched.status_code == 200 and patched.json["commit"] == "125.000000"
    terms = client.get(f"/api/v1/buckets/{storage}/terms", headers=key).json["items"]
    assert [(t["effective_from"], t["commit"]) for t in terms] == [
        ("2026-01", "100.000000"), (period_label(current_period_start()), "125.000000")]


def test_a_client_scoped_key_reaches_only_its_buckets_terms(app, client):
    storage, other = billed_bucket(app)
    with app.app_context():
        acme_id = db.session.scalar(sa.text("SELECT client_id FROM buckets WHERE id = :id"), {"id": storage})
    key = bearer(make_key(app, "admin", client_id=acme_id))
    assert client.get(f"/api/v1/buckets/{storage}/terms", headers=key).status_code == 200
    assert client.get(f"/api/v1/buckets/{other}/terms", headers=key).status_code == 404
    assert client.post(f"/api/v1/buckets/{other}/terms", json={}, headers=key).status_code == 404
    readonly = bearer(make_key(app, "readonly"))
    assert client.get(f"/api/v1/buckets/{storage}/terms", headers=readonly).status_code == 403


def test_true_ups_list_the_suggestions(app, client):
    storage, _ = billed_bucket(app, finalize=False)
    key = bearer(make_key(app, "readonly"))
    listed = client.get("/api/v1/true-ups", headers=key)
    assert listed.status_code == 200
    # September 120 -> suggested 120; at 120: 100 commit -> 200 + 20 × 3 = 260.00; 120 commit -> 240.00: -20.00
    assert listed.json == {"total": 1, "items": [{
        "bucket_id": storage, "client_id": listed.json["items"][0]["client_id"], "unit_type_id": 1,
        "current_commit": "100.000000", "suggested_commit": "120", "direction": "up",
        "usage_by_period": {"2026-09": "120.000000"}, "monthly_effect": "-20.00", "applied_from": None}]}
    assert client.get("/api/v1/true-ups?direction=down", headers=key).json["total"] == 0
    assert client.get("/api/v1/true-ups?direction=sideways", headers=key).status_code == 400


def test_posting_adjustments_starts_an_admin_job_and_lines_show_adjusts_period(app, client):
    storage, _ = billed_bucket(app)
    with app.app_context():
        disk = db.session.scalar(sa.select(Asset).where(Asset.external_id == "disk-1"))
        readings(disk, [("2026-09-20T00:00:00+00:00", "5")], received_at=utcnow())
        db.session.commit()
    admin = bearer(make_key(app, "admin"))
    started = client.post("/api/v1/billing/adjustments", json={"period": "2026-09", "into": "2026-10"},
                          headers=admin)
    assert started.status_code == 202, started.json
    with app.app_context():
        run = db.session.get(JobRun, started.json["job_id"])
        assert (run.kind, run.parameters) == ("adjustments", {"period": "2026-09", "into": "2026-10"})
        from jobs.adjustments import adjustments_work

        assert "Posted 1 adjustment line(s)" in adjustments_work(run, lambda *a: None)
    lines = client.get("/api/v1/billing?period=2026-10", headers=admin).json["items"]
    # 125 − 100 = 25 over: 75.00 overage; billed 60.00: +5 units, +15.00
    assert [(l["adjusts_period"], l["total_usage"], l["final_cost"]) for l in lines] == [
        ("2026-09", "5.000000", "15.00")]
    september = client.get("/api/v1/billing?period=2026-09", headers=admin).json["items"]
    assert [l["adjusts_period"] for l in september] == [None, None]  # Storage and Other
    assert client.post("/api/v1/billing/adjustments", json={"period": "2026-08"}, headers=admin).status_code == 409
    assert client.post("/api/v1/billing/adjustments", json={"period": "2026-13"}, headers=admin).status_code == 422
    staff_like = bearer(make_key(app, "readonly", name="ro"))
    assert client.post("/api/v1/billing/adjustments", json={"period": "2026-09"}, headers=staff_like).status_code == 403
