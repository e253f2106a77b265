"""`/api/v1/webhooks` for admin keys: the secret once in the POST answer, URLs and events validated, audited."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import AuditLog, Webhook, WebhookDelivery, WebhookEvent
from webhooks.signing import open_secret
from tests.api_helpers import bearer, make_client, make_key


@pytest.fixture
def admin_key(app):
    return bearer(make_key(app, "admin"))


def test_create_read_change_and_delete_a_webhook(app, admin_key):
    api = app.test_client()
    made = api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/x",
                                              "events": ["usage.anomaly", "asset.silent", "asset.silent"]},
                    headers=admin_key)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    body = made.get_json()
    secret = body.pop("secret")
    hook_id = body["id"]
    assert body == {"id": hook_id, "url": "https://hooks.example.com/x", "events": ["asset.silent", "usage.anomaly"],
                    "enabled": True, "created_at": body["created_at"]}
    with app.app_context():
        assert open_secret(db.session.get(Webhook, hook_id).secret, app.config["SECRET_KEY"]) == secret
    listed = api.get("/api/v1/webhooks", headers=admin_key).get_json()
    assert listed == {"items": [body], "total": 1} and secret not in str(listed)
    assert api.get(f"/api/v1/webhooks/{hook_id}", headers=admin_key).get_json() == body
    changed = api.patch(f"/api/v1/webhooks/{hook_id}", json={"enabled": False, "events": ["billing.run.finished"]},
                        headers=admin_key)
    assert changed.status_code == 200
    assert (changed.get_json()["enabled"], changed.get_json()["events"]) == (False, ["billing.run.finished"])
    with app.app_context():
        db.session.add(WebhookEvent(id="evt_1", type="asset.silent", data={}))
        db.session.flush()
        db.session.add(WebhookDelivery(webhook_id=hook_id, event_id="evt_1", event_type="asset.silent", attempt=1,
                                       status_code=500, duration_ms=12, error="HTTP 500"))
        db.session.commit()
    log = api.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=admin_key).get_json()
    assert log["total"] == 1 and {k: log["items"][0][k] for k in ("event_id", "attempt", "status_code", "error")} == {
        "event_id": "evt_1", "attempt": 1, "status_code": 500, "error": "HTTP 500"}
    assert api.delete(f"/api/v1/webhooks/{hook_id}", headers=admin_key).status_code == 204
    assert api.get(f"/api/v1/webhooks/{hook_id}", headers=admin_key).status_code == 404
    with app.app_context():
        assert db.session.scalars(select(WebhookDelivery)).all() == []
        audit = db.session.execute(select(AuditLog.action, AuditLog.api_key_id, AuditLog.new_values).where(
            AuditLog.table == "webhooks").order_by(AuditLog.id)).all()
        assert [a for a, _, _ in audit] == ["create", "update", "delete"] and all(k for _, k, _ in audit)
        assert audit[0][2]["secret"] == "[redacted]" and secret not in str(audit)


@pytest.mark.parametrize("payload, field", [
    ({"url": "ftp://example.com", "events": ["asset.silent"]}, "url"),
    ({"url": "https://u:p@example.com", "events": ["asset.silent"]}, "url"),
    ({"url": "https://example.com", "events": []}, "events"),
    ({"url": "https://example.com", "events": ["asset.deleted"]}, "events.0"),
    ({"url": "https://example.com", "events": ["asset.silent"], "secret": "mine"}, "secret"),
    ({"url": "https://example.com\u0000", "events": ["asset.silent"]}, "url"),
    ({"url": 5, "events": ["asset.silent"]}, "url"),
])
def test_bad_fields_are_422_with_the_field_named(app, admin_key, payload, field):
    answer = app.test_client().post("/api/v1/webhooks", json=payload, headers=admin_key)
    assert answer.status_code == 422 and field in answer.get_json()["fields"], answer.get_json()


def test_patch_refuses_nulls_and_bad_urls_and_missing_ids_are_404(app, admin_key):
    api = app.test_client()
    hook_id = api.post("/api/v1/webhooks", json={"url": "https://a.example.com", "events": ["asset.silent"]},
                       headers=admin_key).get_json()["id"]
    assert api.patch(f"/api/v1/webhooks/{hook_id}", json={"url": None}, headers=admin_key).status_code == 422
    assert api.patch(f"/api/v1/webhooks/{hook_id}", json={"url": "gopher://x"}, headers=admin_key).status_code == 422
    assert api.patch(f"/api/v1/webhooks/{hook_id}", data="nope", headers=admin_key).status_code == 400
    for path in ("/api/v1/webhooks/999", f"/api/v1/webhooks/{2**40}", "/api/v1/webhooks/999/deliveries"):
        assert api.get(path, headers=admin_key).status_code == 404


def test_only_unscoped_admin_keys_manage_webhooks(app):
    api = app.test_client()
    scoped = bearer(make_key(app, "admin", client_id=make_client(app), name="scoped"))
    for role in ("readonly", "ingest"):
        assert api.get("/api/v1/webhooks", headers=bearer(make_key(app, role, name=role))).status_code == 403
    assert api.get("/api/v1/webhooks", headers=scoped).status_code == 403
    assert api.post("/api/v1/webhooks", json={"url": "https://a.example.com", "events": ["asset.silent"]},
                    headers=scoped).status_code == 403
    assert api.get("/api/v1/webhooks").status_code == 401


def test_unit_types_carry_silent_after_hours(app, admin_key):
    api = app.test_client()
    made = api.post("/api/v1/unit-types", json={"name": "gb"}, headers=admin_key).get_json()
    assert made["silent_after_hours"] == 24
    changed = api.patch(f"/api/v1/unit-types/{made['id']}", json={"silent_after_hours": 6}, headers=admin_key)
    assert changed.get_json()["silent_after_hours"] == 6
    for bad in (0, 8761, "x", None):
        answer = api.patch(f"/api/v1/unit-types/{made['id']}", json={"silent_after_hours": bad}, headers=admin_key)
        assert answer.status_code == 422, bad
