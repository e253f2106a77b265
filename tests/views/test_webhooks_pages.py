"""Settings ▾ Webhooks (admins only): the secret is shown once and kept sealed, URLs are http/https, every change is
audited, test events and redeliveries are queued from the grid and logged."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from tests.conftest import work_jobs
from jobs.redis import get_queue, get_redis
from models import AuditLog, Webhook, WebhookDelivery
from webhooks.signing import open_secret, signature_matches
from tests.conftest import csrf_token
from tests.webhooks.receiver import receiver

EVENTS = ["asset.silent", "bucket.projected_over"]


def create(admin, url: str, events: list[str] = EVENTS, enabled: bool = True):
    data = {"csrf_token": csrf_token(admin, "/admin/webhook/new/"), "url": url, "event_types": events}
    if enabled:
        data["enabled"] = "y"
    return admin.post("/admin/webhook/new/", data=data)


def shown_secret(html: str) -> str:
    return re.search(r"<code class='new-webhook-secret'>([^<]+)</code>", html).group(1)


def test_a_new_webhooks_secret_is_shown_once_and_stored_sealed(app, admin_client):
    answer = create(admin_client, "https://hooks.example.com/meterdesk")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    secret = shown_secret(html)
    assert secret.startswith("whsec_") and "shows it once" in html
    with app.app_context():
        hook = db.session.scalar(select(Webhook))
        assert (hook.url, hook.events, hook.enabled) == ("https://hooks.example.com/meterdesk", EVENTS, True)
        assert secret not in hook.secret and open_secret(hook.secret, app.config["SECRET_KEY"]) == secret
        audit = db.session.scalar(select(AuditLog).where(AuditLog.table == "webhooks", AuditLog.action == "create"))
        assert audit.new_values["secret"] == "[redacted]" and audit.user_id is not None
        hook_id = hook.id
    for page in ("/admin/webhook/", f"/admin/webhook/edit/?id={hook_id}", f"/admin/webhook/details/?id={hook_id}"):
        assert secret not in admin_client.get(page).get_data(as_text=True), page
    assert "whsec_" not in admin_client.get("/admin/webhook/").get_data(as_text=True)


def test_edits_keep_the_secret_and_are_audited(app, admin_client):
    create(admin_client, "https://a.example.com/h")
    with app.app_context():
        hook = db.session.scalar(select(Webhook))
        sealed, hook_id = hook.secret, hook.id
    edit = admin_client.get(f"/admin/webhook/edit/?id={hook_id}").get_data(as_text=True)
    assert re.search(r'value="asset.silent"[^>]*checked|checked[^>]*value="asset.silent"', edit)
    answer = admin_client.post(f"/admin/webhook/edit/?id={hook_id}", data={
        "csrf_token": csrf_token(admin_client, f"/admin/webhook/edit/?id={hook_id}"), "url": "http://b.example.com/h",
        "event_types": ["billing.run.finished"]})
    assert answer.status_code == 302
    with app.app_context():
        hook = db.session.get(Webhook, hook_id)
        assert (hook.url, hook.events, hook.enabled, hook.secret) == (
            "http://b.example.com/h", ["billing.run.finished"], False, sealed)
        change = db.session.scalar(select(AuditLog).where(AuditLog.table == "webhooks", AuditLog.action == "update"))
        assert change.old_values["url"] == "https://a.example.com/h" and change.new_values["enabled"] is False


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/x", "must start with http:// or https://"),
    ("javascript:alert(1)", "must start with http:// or https://"),
    ("https://user:pw@example.com/", "must not carry a user name or password"),
    ("", "This field is required."),
])
def test_a_bad_url_or_no_event_is_refused_with_the_reason(app, admin_client, url, message):
    html = create(admin_client, url).get_data(as_text=True)
    assert message in html
    assert "Choose at least one event." in create(admin_client, "https://ok.example.com", events=[]).get_data(
        as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Webhook)).all() == []


def test_only_admins_reach_webhooks_and_forms_need_a_csrf_token(app, admin_client, staff_client, viewer_client):
    for client in (staff_client, viewer_client):
        assert client.get("/admin/webhook/").status_code == 403
        assert client.get("/admin/webhooks/deliveries/").status_code == 403
    assert admin_client.post("/admin/webhook/new/", data={"url": "https://x.example.com", "event_types": EVENTS,
                                                          "enabled": "y"}).status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Webhook)).all() == []
    menu = admin_client.get("/admin/").get_data(as_text=True)
    settings = menu[menu.index('href="/admin/apikey/"'):menu.index('href="/admin/user/"')]
    assert 'href="/admin/webhook/"' in settings, "Settings ▾ … API Keys, Webhooks, Users"
    assert 'href="/admin/webhook/"' not in staff_client.get("/admin/").get_data(as_text=True)


def test_send_test_event_and_redeliver_from_the_pages(app, admin_client):
    with receiver(statuses=[500]) as server:
        secret = shown_secret(create(admin_client, server.url).get_data(as_text=True))
        with app.app_context():
            hook_id = db.session.scalar(select(Webhook.id))
        answer = admin_client.post("/admin/webhook/action/", data={
            "csrf_token": csrf_token(admin_client, "/admin/webhook/"), "action": "test", "rowid": [str(hook_id)]},
            follow_redirects=True)
        assert "Test event queued for 1 webhook(s)" in answer.get_data(as_text=True)
        with app.app_context():
            work_jobs(app)  # 500: RQ schedules a retry
        log = admin_client.get(f"/admin/webhooks/deliveries/?flt0_0={hook_id}").get_data(as_text=True)
        assert "webhook.test" in log and "badge-danger\">500<" in log and "receiver says no" in log
        with app.app_context():
            first = db.session.scalar(select(WebhookDelivery))
            assert (first.attempt, first.status_code) == (1, 500)
        answer = admin_client.post("/admin/webhooks/deliveries/action/", data={
            "csrf_token": csrf_token(admin_client, "/admin/webhooks/deliveries/"), "action": "redeliver",
            "rowid": [str(first.id)]}, follow_redirects=True)
        assert "1 event(s) queued for redelivery." in answer.get_data(as_text=True)
        with app.app_context():
            work_jobs(app)
        assert len(server.wait_for(2)) == 2
        assert all(signature_matches(secret, r.body, r.headers["X-Meterdesk-Signature"]) for r in server.requests)
    log = admin_client.get("/admin/webhooks/deliveries/").get_data(as_text=True)
    assert "badge-success\">200<" in log
    with app.app_context():
        actions = db.session.execute(select(AuditLog.action, AuditLog.record_id, AuditLog.user_id).where(
            AuditLog.table == "webhooks", AuditLog.action != "create").order_by(AuditLog.id)).all()
        assert [(a, r) for a, r, _ in actions] == [("test_event", str(hook_id)), ("redeliver", str(hook_id))]
        assert all(user for _, _, user in actions)


def test_new_secret_replaces_the_old_one_and_is_shown_once(app, admin_client):
    old = shown_secret(create(admin_client, "https://a.example.com/h").get_data(as_text=True))
    with app.app_context():
        hook_id = db.session.scalar(select(Webhook.id))
    answer = admin_client.post("/admin/webhook/action/", data={
        "csrf_token": csrf_token(admin_client, "/admin/webhook/"), "action": "rotate", "rowid": [str(hook_id)]})
    new = shown_secret(answer.get_data(as_text=True))
    assert new != old and answer.headers["Cache-Control"] == "no-store"
    with app.app_context():
        assert open_secret(db.session.get(Webhook, hook_id).secret, app.config["SECRET_KEY"]) == new
        rotated = db.session.scalar(select(AuditLog).where(AuditLog.table == "webhooks", AuditLog.action == "update"))
        assert rotated.old_values == {"secret": "[redacted]"} and rotated.new_values == {"secret": "[redacted]"}


def test_the_unit_type_form_sets_silent_after_hours(app, staff_client):
    page = staff_client.get("/admin/unittype/new/").get_data(as_text=True)
    assert "Silent After (hours)" in page and 'value="24"' in page
    base = {"name": "gb", "aggregation": "sum", "base_price": "0", "overage_price": "0", "filter_pattern": "*"}
    refused = staff_client.post("/admin/unittype/new/", data={
        **base, "silent_after_hours": "0", "csrf_token": csrf_token(staff_client, "/admin/unittype/new/")})
    assert "Number must be between 1 and 8760." in refused.get_data(as_text=True)
    staff_client.post("/admin/unittype/new/", data={
        **base, "silent_after_hours": "6", "csrf_token": csrf_token(staff_client, "/admin/unittype/new/")})
    from models import UnitType

    with app.app_context():
        assert db.session.scalar(select(UnitType.silent_after_hours).where(UnitType.name == "gb")) == 6
