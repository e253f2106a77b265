"""Money integrity: no delete route changes a finalized bill; allowed deletes take their dependents along, audited.

The finalized bill (2026-09), worked out: bucket "Acme Storage" (commit 100, base $1, overage $2) binds vm-1 and
vm-2; September readings vm-1 60 + 20, vm-2 40 -> U = 120 -> base 100 x $1 = $100.00, overage 20 x $2 = $40.00,
final $140.00. October (unfinalized, vm-1 10) -> U = 10 -> base $100.00, buffer 90 x $1 = $90.00, final $100.00.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import func, select

from billing.run import bill_period
from extensions import db
from models import (
    ApiKey, Asset, AssetUnit, AuditLog, BillingReading, Bucket, Client, Projection, Reading, UnitType, bucket_assets,
    finalized_line_assets,
)
from tests.api_helpers import bearer, make_key
from tests.conftest import csrf_token, logged_in
from tests.factories import asset, bucket, client as make_client, readings, unit_type

SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
API_PATHS = {Client: "clients", Bucket: "buckets", Asset: "assets", UnitType: "unit-types"}
# A client-scoped admin key reaches the delete of its own buckets and assets; clients and unit types are refused
# to it (403) before any delete is tried.
SCOPED_STATUS = {Client: 403, Bucket: 409, Asset: 409, UnitType: 403}


def bill_september(app) -> dict[str, int]:
    """The finalized September bill of the module docstring, and an unfinalized October line; the record ids."""
    with app.app_context():
        gb = unit_type("gb")
        acme = make_client("Acme")
        vm1, vm2 = asset("vm-1", acme), asset("vm-2", acme)
        storage = bucket("Acme Storage", "sum", [vm1, vm2], commit="100", base="1", overage="2", owner=acme, unit=gb)
        readings(vm1, [("2026-09-03T10:00:00+00:00", "60"), ("2026-09-20T10:00:00+00:00", "20"),
                       ("2026-10-05T10:00:00+00:00", "10")], gb)
        readings(vm2, [("2026-09-10T10:00:00+00:00", "40")], gb)
        db.session.commit()
        ids = {"acme": acme.id, "storage": storage.id, "vm1": vm1.id, "vm2": vm2.id, "gb": gb.id}
        assert bill_period(db.session, SEP, finalize=True).total_cost == Decimal("140.00")
        assert bill_period(db.session, OCT).total_cost == Decimal("100.00")
        db.session.remove()
    return ids


def finalized_total(period: datetime = SEP) -> Decimal:
    return db.session.scalar(select(func.sum(BillingReading.final_cost)).where(
        BillingReading.period_start == period, BillingReading.finalized.is_(True)))


def snapshot(app) -> dict:
    """Everything a refused delete must leave as it was: row counts, finalized lines column by column, the total."""
    with app.app_context():
        counts = {table.name: db.session.scalar(select(func.count()).select_from(table))
                  for table in db.metadata.sorted_tables if table.name != "audit_log"}
        lines = [tuple(row) for row in db.session.execute(select(BillingReading.__table__).where(
            BillingReading.finalized.is_(True)).order_by(BillingReading.id))]
        state = {"counts": counts, "finalized": lines, "total": finalized_total()}
        db.session.remove()
    return state


def audit_since(app, first_id: int) -> list[AuditLog]:
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.id > first_id).order_by(AuditLog.id)).all()
        db.session.expunge_all()
    return rows


def last_audit_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.max(AuditLog.id))) or 0


def take_flashes(browser) -> list[tuple[str, str]]:
    with browser.session_transaction() as session:
        return session.pop("_flashes", [])


def models_a_finalized_line_depends_on() -> set[type]:
    """Walk the foreign keys up from a finalized line and the rows it was computed from (its readings, the assets it
    names): every table whose delete could reach them, as its mapped model."""
    start = {"billing_readings", "readings", "finalized_line_assets"}
    seen, todo = set(start), list(start)
    while todo:
        for key in db.metadata.tables[todo.pop()].foreign_keys:
            parent = key.column.table.name
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    mapped = {mapper.local_table.name: mapper.class_ for mapper in db.Model.registry.mappers}
    return {mapped[name] for name in seen - start}


def delete_grids(app, model: type) -> list[ModelView]:
    return [view for view in app.extensions["admin"][0]._views
            if isinstance(view, ModelView) and view.model is model and view.allow_delete]


def listed_by(app, view: ModelView, record_id: int) -> bool:
    with app.test_request_context():
        return view.get_query().filter(view.model.id == record_id).count() == 1


def test_every_delete_route_of_every_record_a_finalized_line_depends_on_answers_409_and_changes_nothing(app):
    ids = bill_september(app)
    records = {Client: ids["acme"], Bucket: ids["storage"], Asset: ids["vm1"], UnitType: ids["gb"]}
    assert models_a_finalized_line_depends_on() == set(records) == set(API_PATHS)
    staff = logged_in(app, "staff")
    admin_key = bearer(make_key(app, "admin"))
    scoped_key = bearer(make_key(app, "admin", ids["acme"], name="acme admin"))
    before, first_audit = snapshot(app), last_audit_id(app)
    assert before["total"] == Decimal("140.00")
    tried = []
    for model, record_id in records.items():
        grids = delete_grids(app, model)
        assert grids, f"no grid deletes {model.__name__}"
        for view in grids:
            token = csrf_token(staff, f"{view.url}/")
            single = staff.post(f"{view.url}/delete/", data={"id": record_id, "csrf_token": token})
            flashes = take_flashes(staff)
            assert single.status_code == 302
            assert [category for category, _ in flashes] == ["error"], (view.url, flashes)
            assert "finalized billing lines for 2026-09" in flashes[0][1] and "Nothing was deleted" in flashes[0][1]
            bulk = staff.post(f"{view.url}/action/", data={"action": "delete", "rowid": [record_id],
                                                            "csrf_token": token})
            flashes = take_flashes(staff)
            assert bulk.status_code == 302
            if listed_by(app, view, record_id):
                assert [category for category, _ in flashes] == ["error"], (view.url, flashes)
                assert "finalized billing lines for 2026-09" in flashes[0][1]
            else:  # a grid that does not list the record selects nothing
                assert "error" not in [category for category, _ in flashes]
            tried += [f"{view.url}/delete/", f"{view.url}/action/"]
            assert snapshot(app) == before, view.url
        url = f"/api/v1/{API_PATHS[model]}/{record_id}"
        answer = app.test_client().delete(url, headers=admin_key)
        assert answer.status_code == 409, (url, answer.json)
        assert "finalized billing lines for 2026-09" in answer.json["error"]
        assert app.test_client().delete(url, headers=scoped_key).status_code == SCOPED_STATUS[model]
        tried.append(url)
        assert snapshot(app) == before, url
    assert len(tried) == 2 * sum(len(delete_grids(app, model)) for model in records) + len(records)
    assert audit_since(app, first_audit) == []


def test_the_refusal_names_the_record_the_period_and_what_to_do_instead(app, client):
    ids = bill_september(app)
    admin_key = bearer(make_key(app, "admin"))
    answers = {path: client.delete(f"/api/v1/{path}/{ids[key]}", headers=admin_key).json["error"]
               for path, key in (("clients", "acme"), ("buckets", "storage"), ("assets", "vm2"), ("unit-types", "gb"))}
    assert answers == {
        "clients": f"client 'Acme' (id {ids['acme']}) has finalized billing lines for 2026-09: disable it instead. "
                   "Nothing was deleted.",
        "buckets": f"bucket 'Acme Storage' (id {ids['storage']}) has finalized billing lines for 2026-09: "
                   "disable it instead. Nothing was deleted.",
        "assets": f"asset 'vm-2' (id {ids['vm2']}) has finalized billing lines for 2026-09: disable or disregard it "
                  "instead. Nothing was deleted.",
        "unit-types": f"unit type 'gb' (id {ids['gb']}) has finalized billing lines for 2026-09: a unit type that "
                      "bills cannot be deleted. Nothing was deleted.",
    }


def test_a_bulk_delete_with_one_refused_record_deletes_none_of_the_selection(app):
    ids = bill_september(app)
    with app.app_context():
        spare = bucket("Acme Spare", owner=db.session.get(Client, ids["acme"])).id
        db.session.commit()
    staff = logged_in(app, "staff")
    before = snapshot(app)
    response = staff.post("/admin/bucket/action/", data={
        "action": "delete", "rowid": [spare, ids["storage"]], "csrf_token": csrf_token(staff, "/admin/bucket/")})
    assert response.status_code == 302
    assert [category for category, _ in take_flashes(staff)] == ["error"]
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.get(Bucket, spare) is not None


def test_a_client_is_refused_for_its_own_lines_and_for_the_lines_of_its_buckets_wherever_they_moved(app, client):
    ids = bill_september(app)
    with app.app_context():
        globex = make_client("Globex")
        db.session.get(Bucket, ids["storage"]).client = globex  # the finalized line still says Acme
        db.session.commit()
        globex_id = globex.id
    admin_key = bearer(make_key(app, "admin"))
    before = snapshot(app)
    for client_id in (ids["acme"], globex_id):
        answer = client.delete(f"/api/v1/clients/{client_id}", headers=admin_key)
        assert answer.status_code == 409 and "2026-09" in answer.json["error"]
    assert snapshot(app) == before


def test_a_unit_type_is_refused_for_readings_in_a_finalized_period_after_its_bucket_changed_type(app, client):
    ids = bill_september(app)
    with app.app_context():
        db.session.get(Bucket, ids["storage"]).unit_type = unit_type("gb2")
        db.session.commit()
    answer = client.delete(f"/api/v1/unit-types/{ids['gb']}", headers=bearer(make_key(app, "admin")))
    assert answer.status_code == 409
    assert "has finalized billing lines for 2026-09" in answer.json["error"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reading)) == 4


def test_an_asset_the_finalized_line_did_not_bill_can_be_deleted(app, client):
    """vm-3 was bound but disabled when September was finalized: the line does not name it, its readings were not
    billed, so deleting it changes no bill."""
    with app.app_context():
        acme = make_client("Acme")
        vm1, vm3 = asset("vm-1", acme), asset("vm-3", acme, enabled=False)
        bucket("Acme Storage", assets=[vm1, vm3], commit="100", base="1", owner=acme)
        readings(vm1, [("2026-09-03T10:00:00+00:00", "60")])
        readings(vm3, [("2026-09-03T10:00:00+00:00", "500")])
        db.session.commit()
        vm3_id = vm3.id
        bill_period(db.session, SEP, finalize=True)  # U = 60 < 100: final = base 100 x $1 = $100.00
        assert finalized_total() == Decimal("100.00")
        assert set(db.session.execute(select(finalized_line_assets.c.asset_id))) == {(vm1.id,)}
    assert client.delete(f"/api/v1/assets/{vm3_id}", headers=bearer(make_key(app, "admin"))).status_code == 204
    with app.app_context():
        assert db.session.get(Asset, vm3_id) is None
        assert finalized_total() == Decimal("100.00")


def test_an_allowed_client_delete_removes_each_dependent_explicitly_with_an_audit_row(app, client):
    ids = bill_september(app)
    with app.app_context():
        globex = make_client("Globex")
        g1, g2 = asset("g-1", globex), asset("g-2", globex)
        vms = bucket("Globex VMs", assets=[g1], commit="10", base="3", owner=globex)
        readings(g1, [("2026-10-07T10:00:00+00:00", "4")])
        db.session.add(Projection(client=globex, bucket=vms, period_start=NOV, current_usage=Decimal("1"),
                                  projected_usage=Decimal("2"), projected_cost=Decimal("30.00")))
        db.session.commit()
        # October again: Globex VMs U = 4 < 10 -> base 10 x $3 = $30.00 (unfinalized), Acme Storage $100.00
        assert bill_period(db.session, OCT).total_cost == Decimal("130.00")
        globex_id, vms_id, g1_id, g2_id = globex.id, vms.id, g1.id, g2.id
        line_id = db.session.scalar(select(BillingReading.id).where(BillingReading.bucket_id == vms_id))
        projection_id = db.session.scalar(select(Projection.id))
    ingest_key = make_key(app, "ingest", globex_id, name="globex collector")
    admin_raw = make_key(app, "admin")
    with app.app_context():
        key_ids = dict(db.session.execute(select(ApiKey.name, ApiKey.id)).all())
    first = last_audit_id(app)

    assert client.delete(f"/api/v1/clients/{globex_id}", headers=bearer(admin_raw)).status_code == 204

    with app.app_context():
        assert db.session.get(Client, globex_id) is None and db.session.get(Bucket, vms_id) is None
        assert db.session.get(ApiKey, key_ids["globex collector"]) is None
        assert [db.session.get(Asset, a).client_id for a in (g1_id, g2_id)] == [None, None]
        assert db.session.scalar(select(func.count()).select_from(Projection)) == 0
        assert db.session.scalar(select(func.count()).select_from(bucket_assets).where(
            bucket_assets.c.bucket_id == vms_id)) == 0
        assert finalized_total() == Decimal("140.00")
        assert db.session.scalar(select(func.count()).select_from(BillingReading)) == 2  # Acme's Sep and Oct
    rows = audit_since(app, first)
    assert {row.api_key_id for row in rows} == {key_ids["admin key"]}
    done = {(row.action, row.table, row.record_id): row for row in rows}
    assert set(done) == {
        ("delete", "clients", str(globex_id)), ("delete", "buckets", str(vms_id)),
        ("delete", "bucket_assets", f"{vms_id},{g1_id}"), ("delete", "billing_readings", str(line_id)),
        ("delete", "projections", str(projection_id)), ("delete", "api_keys", str(key_ids["globex collector"])),
        ("update", "assets", str(g1_id)), ("update", "assets", str(g2_id)),
    }
    assert done[("delete", "buckets", str(vms_id))].old_values["name"] == "Globex VMs"
    assert done[("delete", "billing_readings", str(line_id))].old_values["final_cost"] == "30.00"
    assert done[("delete", "projections", str(projection_id))].old_values["projected_cost"] == "30.00"
    assert done[("delete", "api_keys", str(key_ids["globex collector"]))].old_values["key_hash"] == "[redacted]"
    unassigned = done[("update", "assets", str(g1_id))]
    assert (unassigned.old_values, unassigned.new_values) == ({"client_id": globex_id}, {"client_id": None})


def test_an_allowed_asset_delete_in_the_grid_audits_its_bindings_readings_and_asset_units(app):
    from tests.api_helpers import make_unit_type, reading

    make_unit_type(app, "cpu_hours")
    ingest = bearer(make_key(app, "ingest"))
    posted = app.test_client().post("/api/v1/readings", headers=ingest, json=[
        reading("vm-9", value="1", ts="2026-10-01T10:00:00Z"), reading("vm-9", value="2", ts="2026-10-02T10:00:00Z"),
        reading("vm-9", value="3", ts="2026-10-03T10:00:00Z")])
    assert posted.json["accepted"] == 3
    with app.app_context():
        vm9 = db.session.scalar(select(Asset).where(Asset.external_id == "vm-9"))
        storage = bucket("Storage", assets=[vm9], unit=db.session.scalar(select(UnitType)))
        db.session.commit()
        vm9_id, storage_id = vm9.id, storage.id
    staff = logged_in(app, "staff")
    first = last_audit_id(app)

    response = staff.post("/admin/asset/delete/", data={"id": vm9_id, "csrf_token": csrf_token(staff, "/admin/asset/")})

    assert response.status_code == 302
    assert [category for category, _ in take_flashes(staff)] == ["success"]
    with app.app_context():
        assert db.session.get(Asset, vm9_id) is None
        assert [db.session.scalar(select(func.count()).select_from(model)) for model in (Reading, AssetUnit)] == [0, 0]
        assert db.session.get(Bucket, storage_id).assets == []
    done = {(row.action, row.table, row.record_id): row for row in audit_since(app, first)}
    assert set(done) == {("delete", "assets", str(vm9_id)), ("delete", "bucket_assets", f"{storage_id},{vm9_id}"),
                         ("delete", "readings", None), ("delete", "asset_units", None)}
    summary = done[("delete", "readings", None)].old_values
    assert (summary["asset_id"], summary["count"]) == (vm9_id, 3)
    assert (summary["first_ts"], summary["last_ts"]) == ("2026-10-01T10:00:00+00:00", "2026-10-03T10:00:00+00:00")
    assert done[("delete", "asset_units", None)].old_values["count"] == 1
    page = staff.get("/admin/auditlog/")
    assert page.status_code == 200 and "&#34;count&#34;: 3" in page.get_data(as_text=True)  # the readings summary


def test_an_allowed_bulk_bucket_delete_audits_bindings_and_unfinalized_lines_and_keeps_the_finalized_bill(app):
    ids = bill_september(app)
    with app.app_context():
        acme = db.session.get(Client, ids["acme"])
        spare = bucket("Acme Spare", assets=[db.session.get(Asset, ids["vm2"])], commit="5", base="2", owner=acme)
        db.session.commit()
        spare_id = spare.id
        # October again: Acme Spare binds vm-2, no October readings: U = 0 < 5 -> base 5 x $2 = $10.00
        assert bill_period(db.session, OCT).total_cost == Decimal("110.00")
        line_id = db.session.scalar(select(BillingReading.id).where(BillingReading.bucket_id == spare_id))
    staff = logged_in(app, "staff")
    first = last_audit_id(app)

    response = staff.post("/admin/bucket/action/", data={"action": "delete", "rowid": [spare_id],
                                                         "csrf_token": csrf_token(staff, "/admin/bucket/")})

    assert response.status_code == 302
    assert take_flashes(staff) == [("success", "Record was successfully deleted.")]
    done = {(row.action, row.table, row.record_id) for row in audit_since(app, first)}
    assert done == {("delete", "buckets", str(spare_id)), ("delete", "bucket_assets", f"{spare_id},{ids['vm2']}"),
                    ("delete", "billing_readings", str(line_id))}
    with app.app_context():
        assert db.session.get(Bucket, spare_id) is None
        assert finalized_total() == Decimal("140.00")


@pytest.mark.parametrize("route", ["grid", "api"])
def test_a_unit_type_with_readings_but_no_finalized_line_is_refused_on_every_route(app, route):
    with app.app_context():
        gb = unit_type("gb")
        readings(asset("vm-1"), [("2026-10-03T10:00:00+00:00", "5")], gb)
        spare = unit_type("spare")
        db.session.commit()
        gb_id, spare_id = gb.id, spare.id
    if route == "grid":
        staff = logged_in(app, "staff")
        token = csrf_token(staff, "/admin/unittype/")
        staff.post("/admin/unittype/delete/", data={"id": gb_id, "csrf_token": token})
        assert take_flashes(staff) == [("error", f"unit type 'gb' (id {gb_id}) has readings; it cannot be deleted. "
                                                 "Nothing was deleted.")]
        staff.post("/admin/unittype/delete/", data={"id": spare_id, "csrf_token": token})
        assert [category for category, _ in take_flashes(staff)] == ["success"]
    else:
        key = bearer(make_key(app, "admin"))
        assert app.test_client().delete(f"/api/v1/unit-types/{gb_id}", headers=key).status_code == 409
        assert app.test_client().delete(f"/api/v1/unit-types/{spare_id}", headers=key).status_code == 204
    with app.app_context():
        assert db.session.get(UnitType, gb_id) is not None and db.session.get(UnitType, spare_id) is None
        assert db.session.scalar(select(func.count()).select_from(Reading)) == 1
