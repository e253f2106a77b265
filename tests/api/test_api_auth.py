"""API keys: one decorator decides who may call what (role x endpoint), keys are never stored in plain text."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from api import bp
from extensions import db
from models import ApiKey, Asset, AuditLog, BillingReading, Bucket, Client, JobRun, Suppression, UnitType, Webhook, utcnow
from webhooks.signing import new_secret, seal_secret
from tests.api_helpers import bearer, make_client, make_key, make_unit_type, reading

ROLES = ("admin", "ingest", "readonly")
OCTOBER, NOVEMBER = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)
RECORDS = ("clients", "unit-types", "buckets", "assets", "suppressions", "webhooks")

BODIES = {  # a valid create body per record type (ids are the `records` fixture's)
    "clients": {"name": "Globex"},
    "unit-types": {"name": "vm_hours", "aggregation": "sum"},
    "buckets": {"client_id": 2, "name": "Storage", "unit_type_id": 2, "source_type": "vmware", "commit": "1",
                "base_price": "1", "overage_price": "1", "asset_ids": []},
    "assets": {"external_id": "vm-9", "source_type": "vmware"},
    "suppressions": {"type": "exact", "pattern": "lab-1"},
    "webhooks": {"url": "https://hooks.example.com/b", "events": ["asset.silent"]},
}
PATCHES = {"clients": {"name": "Spare Ltd"}, "unit-types": {"aggregation": "max"}, "buckets": {"commit": "2"},
           "assets": {"name": "renamed"}, "suppressions": {"pattern": "lab-2"},
           "webhooks": {"enabled": False}}

MATRIX = [
    ("POST", "/api/v1/readings", [reading()], {"admin", "ingest"}),
    ("GET", "/api/v1/readings", None, {"admin", "ingest", "readonly"}),
    ("GET", "/api/v1/billing?period=2026-10", None, {"admin", "readonly"}),
    ("GET", "/api/v1/projections", None, {"admin", "readonly"}),
    ("GET", "/api/v1/jobs/1", None, {"admin", "readonly"}),
    ("POST", "/api/v1/billing/run", {"period": "2026-10"}, {"admin"}),
    ("POST", "/api/v1/projections/run", None, {"admin"}),
    ("GET", "/api/v1/silent-assets", None, {"admin", "readonly"}),
    ("GET", "/api/v1/anomalies", None, {"admin", "readonly"}),
    ("GET", "/api/v1/webhooks/1/deliveries", None, {"admin"}),
    ("GET", "/api/v1/buckets/1/terms", None, {"admin"}),
    ("POST", "/api/v1/buckets/1/terms", {"effective_from": "2027-01", "commit": "2", "base_price": "1",
                                         "overage_price": "1"}, {"admin"}),
    ("GET", "/api/v1/true-ups", None, {"admin", "readonly"}),
    ("POST", "/api/v1/billing/adjustments", {"period": "2026-10", "into": "2026-11"}, {"admin"}),
] + [
    (method, f"/api/v1/{name}{suffix}", body,
     {"admin", "ingest", "readonly"} if (name, method, suffix) == ("unit-types", "GET", "") else {"admin"})
    for name in RECORDS
    for method, suffix, body in (("GET", "", None), ("POST", "", BODIES[name]), ("GET", "/1", None),
                                 ("PATCH", "/1", PATCHES[name]), ("DELETE", "/1", None))
]


@pytest.fixture
def keys(app):
    make_unit_type(app, "cpu_hours")
    return {role: make_key(app, role) for role in ROLES}


@pytest.fixture
def matrix_keys(app):
    """Keys per role, and records with id 1 that nothing depends on (so an allowed DELETE /1 succeeds): client 1
    `Spare`, unit type 1 `cpu_hours`, asset 1, suppression 1, job run 1, webhook 1; bucket 1 is client 2's on unit type 2;
    2026-10 is finalized for client 2's bucket `Archive`."""
    make_unit_type(app, "cpu_hours")
    with app.app_context():
        spare, acme, gb = Client(name="Spare"), Client(name="Acme"), UnitType(name="gb", aggregation="max")
        db.session.add_all([spare, acme, gb])
        db.session.flush()
        db.session.add_all([
            Asset(external_id="vm-1", source_type="vmware", name="vm-1"),
            Suppression(type="exact", pattern="lab-0"),
            Bucket(client_id=acme.id, name="Compute", unit_type_id=gb.id, source_type="vmware", aggregation="max",
                   commit=Decimal(1), base_price=Decimal(1), overage_price=Decimal(1)),
            JobRun(kind="projections", parameters={}, lock_key="done-1", status="succeeded", progress=100,
                   requested_by="test", message="Done"),
            Webhook(url="https://hooks.example.com/a", events=["asset.silent"],
                    secret=seal_secret(new_secret(), app.config["SECRET_KEY"])),
        ])
        db.session.commit()
        archive = Bucket(client_id=acme.id, name="Archive", unit_type_id=gb.id, source_type="vmware")
        db.session.add(archive)
        db.session.commit()
        db.session.add(BillingReading(  # a finalized period for POST /billing/adjustments (Archive's line only)
            client_id=acme.id, bucket_id=archive.id, period_start=OCTOBER, period_end=NOVEMBER, total_usage=0,
            commit=0, base_price=0, overage_price=0, base_cost=0, overage_units=0, overage_cost=0, buffer_units=0,
            buffer_cost=0, final_cost=0, finalized=True, finalized_at=NOVEMBER, details={}))
        db.session.commit()
    return {role: make_key(app, role) for role in ROLES}


def call(client, method, path, body, headers):
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize("method, path, body, allowed", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_role_matrix(client, matrix_keys, method, path, body, allowed):
    assert call(client, method, path, body, {}).status_code == 401
    for role in ROLES:
        status = call(client, method, path, body, bearer(matrix_keys[role])).status_code
        if role in allowed:
            assert 200 <= status < 400, (role, status)
        else:
            assert status == 403, (role, status)


def test_every_api_route_is_in_the_matrix_or_public(app):
    covered = {(m, p.split("?")[0].replace("/1", "/<id>")) for m, p, _, _ in MATRIX}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule.replace("<int:record_id>", "<id>").replace(
            "<int:run_id>", "<id>")
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if path == "/api/v1/openapi.json":
                assert not hasattr(view, "api_roles")
            else:
                assert (method, path) in covered, (method, path)
                assert hasattr(view, "api_roles"), rule.rule


def test_the_blueprint_is_csrf_exempt_and_errors_are_json(client, keys):
    response = client.post("/api/v1/clients", json={"name": "Acme"}, headers=bearer(keys["admin"]))
    assert response.status_code == 201
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.is_json
    assert bp.name == "api"


def test_no_key_is_stored_in_plain_text(app, keys):
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM api_keys")).all()
    dumped = repr(rows)
    for raw in keys.values():
        secret = raw.split("_", 2)[2]  # mdk_<8 hex>_<secret>; the secret itself may hold "_"
        assert len(secret) == 43 and secret not in dumped
        assert raw not in dumped
    with app.app_context():
        stored = db.session.scalars(select(ApiKey.key_hash)).all()
        assert all(len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in stored)


def test_last_used_is_written_at_most_once_a_minute(app, client, keys):
    def last_used():
        with app.app_context():
            return db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.role == "readonly"))

    client.get("/api/v1/projections", headers=bearer(keys["readonly"]))
    first = last_used()
    assert first is not None
    client.get("/api/v1/projections", headers=bearer(keys["readonly"]))
    assert last_used() == first
    with app.app_context():
        db.session.execute(ApiKey.__table__.update().where(ApiKey.role == "readonly")
                           .values(last_used_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    client.get("/api/v1/projections", headers=bearer(keys["readonly"]))
    assert last_used() > first


def test_audit_rows_name_the_key(app, client, keys):
    response = client.post("/api/v1/clients", json={"name": "Acme"}, headers=bearer(keys["admin"]))
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.role == "admin"))
        row = db.session.scalar(select(AuditLog).where(AuditLog.table == "clients"))
        assert (row.action, row.record_id, row.api_key_id, row.user_id) == (
            "create", str(response.json["id"]), key_id, None)


def test_a_scoped_admin_key_sees_only_its_client(app, client, keys):
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    scoped = make_key(app, "admin", acme)
    listing = client.get("/api/v1/clients", headers=bearer(scoped)).json
    assert listing == {"items": [{"id": acme, "name": "Acme", "enabled": True,
                                  "created_at": listing["items"][0]["created_at"]}], "total": 1}
    assert client.get(f"/api/v1/clients/{globex}", headers=bearer(scoped)).status_code == 404
    assert client.patch(f"/api/v1/clients/{globex}", json={"name": "X"}, headers=bearer(scoped)).status_code == 404
    assert client.post("/api/v1/clients", json={"name": "New"}, headers=bearer(scoped)).status_code == 403
    assert client.delete(f"/api/v1/clients/{acme}", headers=bearer(scoped)).status_code == 403
    assert client.get("/api/v1/suppressions", headers=bearer(scoped)).status_code == 403
    assert client.post("/api/v1/unit-types", json={"name": "x"}, headers=bearer(scoped)).status_code == 403
    assert client.get("/api/v1/unit-types", headers=bearer(scoped)).status_code == 200
    with app.app_context():
        assert db.session.get(Client, globex).name == "Globex"
