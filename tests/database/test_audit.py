"""Every insert, update and delete writes an audit row with old and new values and the actor."""
from sqlalchemy import select

from extensions import db
from models import Asset, AuditLog, Bucket, Client, UnitType, User
from tests.conftest import csrf_token


def audit_rows(app, table: str) -> list[AuditLog]:
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.table == table).order_by(AuditLog.id)).all()
        db.session.expunge_all()
        return rows


def test_grid_create_update_delete_are_audited_with_old_and_new_values(app, admin_client):
    with app.app_context():
        admin_id = db.session.scalar(select(User.id).where(User.email == "admin@example.com"))
    token = csrf_token(admin_client, "/admin/client/new/")
    admin_client.post("/admin/client/new/", data={"name": "Acme", "enabled": "y", "csrf_token": token})
    with app.app_context():
        client_id = db.session.scalar(select(Client.id))
    admin_client.post(f"/admin/client/edit/?id={client_id}", data={"name": "Acme Corp", "enabled": "y",
                                                                   "csrf_token": token})
    admin_client.post("/admin/client/delete/", data={"id": client_id, "csrf_token": token})

    create, update, delete = audit_rows(app, "clients")
    assert (create.action, create.record_id, create.user_id) == ("create", str(client_id), admin_id)
    assert create.old_values is None and create.new_values["name"] == "Acme"
    assert update.action == "update"
    assert update.old_values == {"name": "Acme"} and update.new_values == {"name": "Acme Corp"}
    assert delete.action == "delete" and delete.old_values["name"] == "Acme Corp" and delete.new_values is None
    assert all(row.user_id == admin_id and row.api_key_id is None for row in (create, update, delete))


def test_binding_assets_to_a_bucket_is_audited_as_id_lists(app):
    with app.app_context():
        unit = UnitType(name="vm-hours")
        client = Client(name="Acme")
        a1 = Asset(external_id="vm-1", source_type="vcenter", client=client)
        a2 = Asset(external_id="vm-2", source_type="vcenter", client=client)
        bucket = Bucket(client=client, name="VMs", unit_type=unit, source_type="vcenter", assets=[a1])
        db.session.add_all([unit, client, a1, a2, bucket])
        db.session.commit()
        bucket.assets.append(a2)
        db.session.commit()
        ids = sorted([a1.id, a2.id])
    update = [r for r in audit_rows(app, "buckets") if r.action == "update"][-1]
    assert update.old_values == {"asset_ids": [ids[0]]}
    assert update.new_values == {"asset_ids": ids}


def test_secrets_never_reach_the_audit_log(app, runner):
    result = runner.invoke(args=["create-user", "ops@example.com", "--role", "staff", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    key_result = runner.invoke(args=["create-api-key", "collector", "--role", "ingest"])
    raw_key = key_result.output.strip().splitlines()[-1]
    with app.app_context():
        rows = db.session.scalars(select(AuditLog)).all()
        text = " ".join(str(r.old_values) + str(r.new_values) for r in rows)
    assert "s3cret-pass" not in text and raw_key not in text
    assert "[redacted]" in text
    assert {r.table for r in rows} >= {"users", "api_keys"}


def test_a_failed_change_writes_no_audit_row(app, admin_client):
    token = csrf_token(admin_client, "/admin/client/new/")
    admin_client.post("/admin/client/new/", data={"name": "Acme", "csrf_token": token})
    response = admin_client.post("/admin/client/new/", data={"name": "Acme", "csrf_token": token})
    assert response.status_code == 200
    assert len(audit_rows(app, "clients")) == 1
