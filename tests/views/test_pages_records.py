"""Client and asset pages, the asset quick actions, and the Unbound / Unassigned bulk actions."""
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, AuditLog, Bucket, Client, UnitType
from tests.conftest import csrf_token

NOW = datetime.now(timezone.utc)


@pytest.fixture
def fleet(app):
    """Acme with a vm-hours bucket; vm-7 reports vm-hours and is bound nowhere; vm-9 has no client."""
    with app.app_context():
        vm = UnitType(name="vm-hours", aggregation="sum", base_price=Decimal(1))
        acme = Client(name="Acme")
        bucket = Bucket(client=acme, name="Acme VMs", unit_type=vm, source_type="vcenter", commit=Decimal(10))
        loose = Asset(external_id="vm-7", source_type="vcenter", client=acme, acknowledged=False)
        orphan = Asset(external_id="vm-9", source_type="vcenter")
        db.session.add_all([bucket, loose, orphan])
        db.session.flush()
        store_readings(db.session, [NewReading(loose.id, vm.id, NOW - timedelta(days=1), Decimal("2.5")),
                                    NewReading(orphan.id, vm.id, NOW - timedelta(days=1), Decimal("1"))])
        db.session.commit()
        ids = {"vm": vm.id, "acme": acme.id, "bucket": bucket.id, "loose": loose.id, "orphan": orphan.id}
        db.session.remove()
        return ids


@pytest.mark.parametrize("role_client", ["admin_client", "viewer_client"])
def test_client_page_buckets_and_history(request, provider, role_client):
    html = request.getfixturevalue(role_client).get(f"/admin/clients/{provider['acme']}").get_data(as_text=True)
    assert "Acme Storage" in html and "base $0.50 · overage $1.00 per unit" in html
    assert '<td class="text-right">200</td>' in html
    assert html.count("Over commit") == 2 and "$150.00" in html and "250" in html
    assert 'data-chart="billing-history"' in html and '"name":"Overage"' in html and '"name":"Buffer"' in html


def test_client_page_on_track_and_without_projection(provider, viewer_client):
    html = viewer_client.get(f"/admin/clients/{provider['initech']}").get_data(as_text=True)
    assert "On track" in html and "Over commit" not in html and "Initech VMs" in html


def test_client_page_empty(app, viewer_client):
    with app.app_context():
        client = Client(name="Empty Co")
        db.session.add(client)
        db.session.commit()
        client_id = client.id
    html = viewer_client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "No billing buckets" in html and "No billing history" in html
    assert viewer_client.get("/admin/clients/999").status_code == 404


@pytest.mark.parametrize("role_client", ["admin_client", "viewer_client"])
def test_asset_page_loads_usage_as_a_figure(request, fleet, role_client):
    client = request.getfixturevalue(role_client)
    html = client.get(f"/admin/assets/page/{fleet['loose']}").get_data(as_text=True)
    assert "Usage (last 30 days)" in html and "Loading usage…" in html
    assert 'data-empty-text="No readings in the last 30 days."' in html
    body = json.loads(client.get(f"/admin/assets/page/{fleet['loose']}/usage.json").data)
    trace = body["figure"]["data"][0]
    assert trace["name"] == "vm-hours" and trace["y"] == [2.5]


@pytest.mark.parametrize("units", [2, 3, 4, 5, 6, 7])
def test_an_asset_reporting_several_unit_types_gets_a_row_each_inside_the_chart(app, viewer_client, units):
    """3 rows put the last one's floor at -5.6e-17 (float steps), which plotly refused: the usage answered 500."""
    with app.app_context():
        asset = Asset(external_id="multi", source_type="snmp")
        kinds = [UnitType(name=f"u{i}", aggregation="sum") for i in range(units)]
        db.session.add_all([asset, *kinds])
        db.session.flush()
        store_readings(db.session, [NewReading(asset.id, kind.id, NOW - timedelta(days=1), Decimal(i + 1))
                                    for i, kind in enumerate(kinds)])
        db.session.commit()
        asset_id = asset.id
    response = viewer_client.get(f"/admin/assets/page/{asset_id}/usage.json")
    assert response.status_code == 200
    layout = response.get_json()["figure"]["layout"]
    domains = [layout[f"yaxis{'' if i == 0 else i + 1}"]["domain"] for i in range(units)]
    assert domains[0][1] == 1 and domains[-1][0] == 0
    assert all(0 <= low < high <= 1 for low, high in domains)
    assert all(below[1] < above[0] for above, below in zip(domains, domains[1:]))  # rows apart, top to bottom


def test_asset_usage_json_is_null_without_recent_readings(app, viewer_client):
    with app.app_context():
        asset = Asset(external_id="quiet", source_type="snmp")
        db.session.add(asset)
        db.session.commit()
        asset_id = asset.id
    assert json.loads(viewer_client.get(f"/admin/assets/page/{asset_id}/usage.json").data) == {"figure": None}
    assert viewer_client.get("/admin/assets/page/999/usage.json").status_code == 404


def test_viewer_sees_no_asset_actions_and_may_not_post(fleet, viewer_client):
    html = viewer_client.get(f"/admin/assets/page/{fleet['loose']}").get_data(as_text=True)
    assert "asset-actions" not in html
    token = csrf_token(viewer_client, "/admin/")
    assert viewer_client.post(f"/admin/assets/page/{fleet['loose']}/ack", data={"csrf_token": token}).status_code == 403


def test_staff_ack_assign_disregard_and_restore_are_audited(app, fleet, staff_client):
    url = f"/admin/assets/page/{fleet['orphan']}"
    token = csrf_token(staff_client, url)
    assert staff_client.post(url + "/ack", data={"csrf_token": token}).status_code == 302
    assert staff_client.post(url + "/assign", data={"csrf_token": token, "client_id": fleet["acme"]}).status_code == 302
    assert staff_client.post(url + "/disregard", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        asset = db.session.get(Asset, fleet["orphan"])
        assert asset.acknowledged and asset.client_id == fleet["acme"] and asset.disregarded_at is not None
        changes = [a.new_values for a in db.session.scalars(
            select(AuditLog).where(AuditLog.table == "assets", AuditLog.record_id == str(fleet["orphan"]),
                                   AuditLog.action == "update").order_by(AuditLog.id))]
        assert [sorted(c) for c in changes] == [["acknowledged"], ["client_id"], ["disregarded_at"]]
        assert all(a.user_id for a in db.session.scalars(select(AuditLog).where(AuditLog.action == "update")))
    staff_client.post(url + "/disregard", data={"csrf_token": token, "restore": "1"})
    with app.app_context():
        assert db.session.get(Asset, fleet["orphan"]).disregarded_at is None


def test_post_without_csrf_token_is_refused(fleet, staff_client):
    staff_client.get("/admin/")
    assert staff_client.post(f"/admin/assets/page/{fleet['loose']}/ack").status_code == 400


def test_unbound_bind_action_binds_to_the_clients_bucket(app, fleet, staff_client):
    html = staff_client.get("/admin/assets/unbound/").get_data(as_text=True)
    assert "vm-7" in html and "vm-9" in html and "Bind to client bucket" in html
    token = csrf_token(staff_client, "/admin/assets/unbound/")
    response = staff_client.post("/admin/assets/unbound/action/", data={
        "csrf_token": token, "action": "bind", "rowid": [str(fleet["loose"]), str(fleet["orphan"])]},
        follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "1 asset usages bound to a bucket." in html and "vm-9: no client" in html
    with app.app_context():
        assert [b.id for b in db.session.get(Asset, fleet["loose"]).buckets] == [fleet["bucket"]]
        audit = db.session.scalars(select(AuditLog).where(AuditLog.table == "assets",
                                                         AuditLog.record_id == str(fleet["loose"]))).all()
        assert any((a.new_values or {}).get("bucket_ids") == [fleet["bucket"]] for a in audit)
    html = staff_client.get("/admin/assets/unbound/").get_data(as_text=True)
    assert "vm-7" not in html and "vm-9" in html


def test_assign_action_leads_to_a_client_chooser(app, fleet, staff_client):
    token = csrf_token(staff_client, "/admin/assets/unassigned/")
    response = staff_client.post("/admin/assets/unassigned/action/", data={
        "csrf_token": token, "action": "assign", "rowid": [str(fleet["orphan"])]})
    assert response.status_code == 302 and "/admin/assets/page/assign" in response.location
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "vm-9" in page and '<option value="%d">Acme</option>' % fleet["acme"] in page
    response = staff_client.post("/admin/assets/page/assign", data={
        "csrf_token": token, "ids": str(fleet["orphan"]), "client_id": str(fleet["acme"]),
        "next": "/admin/assets/unassigned/"})
    assert response.status_code == 302 and response.location.endswith("/admin/assets/unassigned/")
    with app.app_context():
        assert db.session.get(Asset, fleet["orphan"]).client_id == fleet["acme"]


def test_viewer_cannot_open_the_client_chooser(fleet, viewer_client):
    assert viewer_client.get(f"/admin/assets/page/assign?ids={fleet['orphan']}").status_code == 403


def test_new_and_disregarded_bulk_actions(app, fleet, staff_client):
    token = csrf_token(staff_client, "/admin/assets/new/")
    staff_client.post("/admin/assets/new/action/", data={"csrf_token": token, "action": "acknowledge",
                                                         "rowid": [str(fleet["loose"])]})
    staff_client.post("/admin/assets/unbound/action/", data={"csrf_token": token, "action": "disregard",
                                                             "rowid": [str(fleet["orphan"])]})
    html = staff_client.get("/admin/assets/disregarded/").get_data(as_text=True)
    assert "vm-9" in html
    staff_client.post("/admin/assets/disregarded/action/", data={"csrf_token": token, "action": "restore",
                                                                 "rowid": [str(fleet["orphan"])]})
    with app.app_context():
        assert db.session.get(Asset, fleet["loose"]).acknowledged
        assert db.session.get(Asset, fleet["orphan"]).disregarded_at is None
