"""Record endpoints for admin keys: list/create/read/patch/delete with the grids' validation."""
from __future__ import annotations


import pytest
from sqlalchemy import select

from extensions import db
from models import Asset, AuditLog, Bucket, Client, Suppression
from tests.api_helpers import bearer, hours_ago, make_client, make_key, make_unit_type, reading


@pytest.fixture
def admin(app):
    return bearer(make_key(app, "admin"))


def test_clients_round_trip(client, admin):
    created = client.post("/api/v1/clients", json={"name": "  Acme  "}, headers=admin)
    assert created.status_code == 201
    body = created.json
    assert (body["name"], body["enabled"]) == ("Acme", True)
    url = f"/api/v1/clients/{body['id']}"
    assert client.get(url, headers=admin).json == body
    patched = client.patch(url, json={"enabled": False}, headers=admin)
    assert patched.status_code == 200 and patched.json["enabled"] is False and patched.json["name"] == "Acme"
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404
    assert client.delete(url, headers=admin).status_code == 404


def test_a_duplicate_client_name_is_409_and_bad_fields_are_422(client, admin):
    client.post("/api/v1/clients", json={"name": "Acme"}, headers=admin)
    other = client.post("/api/v1/clients", json={"name": "Globex"}, headers=admin).json
    assert client.post("/api/v1/clients", json={"name": "Acme"}, headers=admin).status_code == 409
    renamed = client.patch(f"/api/v1/clients/{other['id']}", json={"name": "Acme"}, headers=admin)
    assert renamed.status_code == 409 and "Acme" in renamed.json["error"]
    blank = client.post("/api/v1/clients", json={"name": "   "}, headers=admin)
    assert blank.status_code == 422 and "name" in blank.json["fields"]
    assert client.post("/api/v1/clients", json={"name": "x", "colour": "red"}, headers=admin).status_code == 422
    assert client.patch(f"/api/v1/clients/{other['id']}", json={"name": None}, headers=admin).status_code == 422
    assert client.post("/api/v1/clients", json=["not", "an", "object"], headers=admin).status_code == 400
    assert client.post("/api/v1/clients", data="{", headers=admin).status_code == 400


def test_lists_are_paginated_with_a_total(client, admin):
    for i in range(7):
        client.post("/api/v1/clients", json={"name": f"Client {i}"}, headers=admin)
    page = client.get("/api/v1/clients?page=2&per_page=3", headers=admin).json
    assert page["total"] == 7
    assert [c["name"] for c in page["items"]] == ["Client 3", "Client 4", "Client 5"]
    assert client.get("/api/v1/clients?page=0", headers=admin).status_code == 400
    assert client.get("/api/v1/clients?per_page=abc", headers=admin).status_code == 400


def test_unit_types_take_numbers_or_strings_and_answer_decimal_strings(client, admin):
    created = client.post("/api/v1/unit-types", json={
        "name": "cpu_hours", "aggregation": "p95", "base_price": 0.5, "overage_price": "0.75",
        "filter_pattern": "vm-*"}, headers=admin)
    assert created.status_code == 201
    assert (created.json["base_price"], created.json["overage_price"]) == ("0.500000", "0.750000")
    bad = client.post("/api/v1/unit-types", json={
        "name": "x", "aggregation": "median", "base_price": -1, "filter_pattern": "vm-[1"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json["fields"]["base_price"] == "base_price must not be negative"
    assert set(bad.json["fields"]) == {"aggregation", "base_price", "filter_pattern"}
    assert client.post("/api/v1/unit-types", json={"name": "cpu_hours"}, headers=admin).status_code == 409


def test_a_unit_type_in_use_cannot_be_deleted(app, client, admin):
    unit = make_unit_type(app, "cpu_hours")
    client.post("/api/v1/readings", json=[reading()], headers=admin)
    response = client.delete(f"/api/v1/unit-types/{unit}", headers=admin)
    assert response.status_code == 409 and "readings" in response.json["error"]
    spare = make_unit_type(app, "spare")
    assert client.delete(f"/api/v1/unit-types/{spare}", headers=admin).status_code == 204


def test_buckets_bind_assets_and_check_their_references(app, client, admin):
    unit = make_unit_type(app, "cpu_hours")
    acme = make_client(app, "Acme")
    client.post("/api/v1/readings", json=[reading("vm-1"), reading("vm-2")], headers=admin)
    with app.app_context():
        asset_ids = sorted(db.session.scalars(select(Asset.id)))
    body = {"client_id": acme, "name": "Compute", "unit_type_id": unit, "source_type": "vmware",
            "commit": "100", "base_price": 2, "overage_price": "2.5", "asset_ids": asset_ids}
    created = client.post("/api/v1/buckets", json=body, headers=admin)
    assert created.status_code == 201, created.json
    bucket = created.json
    assert (bucket["commit"], bucket["base_price"], bucket["asset_ids"]) == ("100.000000", "2.000000", asset_ids)
    assert client.post("/api/v1/buckets", json=body, headers=admin).status_code == 409
    unbind = client.patch(f"/api/v1/buckets/{bucket['id']}", json={"asset_ids": asset_ids[:1]}, headers=admin)
    assert unbind.json["asset_ids"] == asset_ids[:1]
    bad = client.post("/api/v1/buckets", json={**body, "name": "Other", "client_id": 999, "unit_type_id": 998,
                                               "asset_ids": [997]}, headers=admin)
    assert bad.status_code == 422
    assert set(bad.json["fields"]) == {"client_id", "unit_type_id", "asset_ids"}
    with app.app_context():
        audit = db.session.scalars(select(AuditLog).where(AuditLog.table == "buckets")
                                   .order_by(AuditLog.id)).all()
        assert [a.action for a in audit] == ["create", "update"]
        assert audit[1].new_values["asset_ids"] == asset_ids[:1]


def test_a_scoped_admin_key_may_only_make_buckets_for_its_client(app, client):
    unit = make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    scoped = bearer(make_key(app, "admin", acme))
    body = {"name": "Compute", "unit_type_id": unit, "source_type": "vmware"}
    assert client.post("/api/v1/buckets", json={**body, "client_id": globex}, headers=scoped).status_code == 403
    assert client.post("/api/v1/buckets", json={**body, "client_id": acme}, headers=scoped).status_code == 201
    with app.app_context():
        assert db.session.scalars(select(Bucket.client_id)).all() == [acme]


def test_assets_are_patched_and_filtered(app, client, admin):
    make_unit_type(app, "cpu_hours")
    acme = make_client(app, "Acme")
    client.post("/api/v1/readings", json=[reading("vm-1", ts=hours_ago(2)), reading("vm-2", ts=hours_ago(2))],
                headers=admin)
    assets = client.get("/api/v1/assets", headers=admin).json
    assert assets["total"] == 2
    first = assets["items"][0]
    patched = client.patch(f"/api/v1/assets/{first['id']}", json={
        "client_id": acme, "acknowledged": True, "enabled": False, "disregarded": True}, headers=admin).json
    assert (patched["client_id"], patched["acknowledged"], patched["enabled"], patched["disregarded"]) == (
        acme, True, False, True)
    assert patched["disregarded_at"] is not None
    back = client.patch(f"/api/v1/assets/{first['id']}", json={"disregarded": False, "client_id": None},
                        headers=admin).json
    assert (back["disregarded"], back["disregarded_at"], back["client_id"]) == (False, None, None)
    assert client.patch(f"/api/v1/assets/{first['id']}", json={"client_id": 999}, headers=admin).status_code == 422
    by_id = client.get("/api/v1/assets?external_id=vm-2", headers=admin).json
    assert [a["external_id"] for a in by_id["items"]] == ["vm-2"]
    client.patch(f"/api/v1/assets/{first['id']}", json={"client_id": acme}, headers=admin)
    assert client.get(f"/api/v1/assets?client_id={acme}", headers=admin).json["total"] == 1
    unbound = client.get("/api/v1/assets?unbound=1", headers=admin).json
    assert unbound["total"] == 2


def test_an_asset_bound_by_an_enabled_bucket_is_not_unbound(app, client, admin):
    unit = make_unit_type(app, "cpu_hours")
    acme = make_client(app, "Acme")
    client.post("/api/v1/readings", json=[reading("vm-1", ts=hours_ago(1)), reading("vm-2", ts=hours_ago(1))],
                headers=admin)
    ids = [a["id"] for a in client.get("/api/v1/assets", headers=admin).json["items"]]
    client.post("/api/v1/buckets", json={"client_id": acme, "name": "B", "unit_type_id": unit,
                                         "source_type": "vmware", "asset_ids": ids[:1]}, headers=admin)
    unbound = client.get("/api/v1/assets?unbound=1", headers=admin).json
    assert [a["id"] for a in unbound["items"]] == ids[1:]


def test_a_scoped_admin_key_may_not_hand_an_asset_to_another_client(app, client, admin):
    make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    acme_key = bearer(make_key(app, "ingest", acme))
    client.post("/api/v1/readings", json=[reading("vm-1")], headers=acme_key)
    scoped = bearer(make_key(app, "admin", acme))
    asset_id = client.get("/api/v1/assets", headers=scoped).json["items"][0]["id"]
    assert client.patch(f"/api/v1/assets/{asset_id}", json={"client_id": globex}, headers=scoped).status_code == 403
    assert client.patch(f"/api/v1/assets/{asset_id}", json={"acknowledged": True}, headers=scoped).status_code == 200
    globex_scoped = bearer(make_key(app, "admin", globex))
    assert client.get("/api/v1/assets", headers=globex_scoped).json == {"items": [], "total": 0}
    assert client.get(f"/api/v1/assets/{asset_id}", headers=globex_scoped).status_code == 404


def test_suppressions_are_validated_like_the_grid(app, client, admin):
    bad = client.post("/api/v1/suppressions", json={"pattern": "vm-(", "type": "regex"}, headers=admin)
    assert bad.status_code == 422 and bad.json["fields"]["pattern"].startswith("not a valid regular expression")
    assert client.post("/api/v1/suppressions", json={"pattern": "vm-[1", "type": "glob"},
                       headers=admin).status_code == 422
    assert client.post("/api/v1/suppressions", json={"pattern": "x", "type": "fuzzy"},
                       headers=admin).status_code == 422
    created = client.post("/api/v1/suppressions", json={"pattern": "*.lab", "type": "glob", "reason": "lab"},
                          headers=admin)
    assert created.status_code == 201
    switched = client.patch(f"/api/v1/suppressions/{created.json['id']}", json={"type": "regex"}, headers=admin)
    assert switched.status_code == 422  # "*.lab" is a fine glob but no regex: nothing to repeat
    with app.app_context():
        assert db.session.scalar(select(Suppression.type)) == "glob"


def test_deleting_a_client_unassigns_its_assets(app, client, admin):
    make_unit_type(app, "cpu_hours")
    acme = make_client(app, "Acme")
    client.post("/api/v1/readings", json=[reading("vm-1")], headers=bearer(make_key(app, "ingest", acme)))
    assert client.delete(f"/api/v1/clients/{acme}", headers=admin).status_code == 204
    with app.app_context():
        assert db.session.scalar(select(Asset.client_id)) is None
        assert db.session.get(Client, acme) is None


def test_huge_ids_are_404_not_errors(client, admin):
    assert client.get("/api/v1/clients/99999999999999999999", headers=admin).status_code == 404
    assert client.get("/api/v1/clients/2147483647", headers=admin).status_code == 404
