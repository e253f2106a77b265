"""Access matrix: every URL of `app.url_map` x every method x (anonymous, viewer, staff, admin, each API key role,
a client-scoped key of another client, a disabled key) gets the expected answer; disabled users and keys are
refused at once; no secret reaches the logs, the pages or the audit log. (tests/web/test_access.py checks login on
every admin URL and CSRF; tests/web/test_security.py headers, cookies and throttling: not repeated here.)"""
from __future__ import annotations

import logging
import re
from collections import Counter

import pytest
from sqlalchemy import select

from api.keys import create_api_key
from extensions import db
from models import ApiKey, Asset, AuditLog, Bucket, Client, JobRun, Suppression, UnitType, User
from tests.api_helpers import bearer, reading
from tests.conftest import PASSWORD, AuthActions, csrf_token, make_user

PUBLIC = {"static", "favicon", "home", "auth.login", "auth.logout", "health.healthz", "vendor.plotly_js",
          "admin.static", "api.openapi_json"}
ADMIN_ONLY_PREFIXES = ("apikey.", "user.", "webhook.", "webhookdelivery.")
ADMIN_ONLY = {"billingreading.finalize", "billingreading.post_adjustments", "billingreading.waive"}
EDITOR_GETS = {"asset_page.assign_many"}  # a form page that only editors may open
API_ROLES = {  # endpoint -> key roles allowed (api_auth); every other endpoint of the API is admin-only
    "api.post_readings": {"admin", "ingest"},
    "api.billing_lines": {"admin", "readonly"},
    "api.projections": {"admin", "readonly"},
    "api.job_status": {"admin", "readonly"},
    "api.silent_assets": {"admin", "readonly"},
    "api.anomalies": {"admin", "readonly"},
    "api.list_true_ups": {"admin", "readonly"},
    "api.get_readings": {"admin", "ingest", "readonly"},  # collectors read back their readings
    "api.unit_types_list": {"admin", "ingest", "readonly"},  # names only for ingest and readonly keys
}
SCOPED_REFUSED = {  # what an admin key scoped to one client may not do (records of every client, global records)
    "api.clients_create", "api.run_billing", "api.run_projections", "api.unit_types_create", "api.unit_types_patch",
    "api.unit_types_delete", "api.suppressions_list", "api.suppressions_create", "api.suppressions_read",
    "api.suppressions_patch", "api.suppressions_delete", "api.webhooks_list", "api.webhooks_create",
    "api.webhooks_read", "api.webhooks_patch", "api.webhooks_delete", "api.webhooks_deliveries",
    "api.post_adjustments"}
SESSIONS = ("anonymous", "viewer", "staff", "admin")
KEYS = ("key:admin", "key:ingest", "key:readonly", "key:other-client", "key:disabled")


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, concrete path) for every rule, ids filled with 1 and the export type with csv."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1" if "id" in m.group(1) else
                      ("csv" if m.group(1) == "export_type" else "js/charts.js"), rule.rule)
        if rule.endpoint == "admin.static":
            path = "/admin/static/admin/js/helpers.js"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return sorted(found)


@pytest.fixture
def world(app):
    """Two clients with a record of every kind for client 1, an export run, users of each role and keys."""
    for role in ("viewer", "staff", "admin"):
        make_user(app, role)
    with app.app_context():
        acme, other = Client(name="Acme"), Client(name="Other")
        unit = UnitType(name="gb", aggregation="sum")
        asset = Asset(external_id="vm-1", source_type="vmware", client=acme, acknowledged=True)
        db.session.add_all([acme, other, unit, asset, Suppression(pattern="test-*", type="glob"),
                            JobRun(kind="export", parameters={"period": "2026-10"}, lock_key="export:2026-10",
                                   status="failed", progress=0, requested_by="admin@example.com", message="x")])
        db.session.add(Bucket(client=acme, name="Storage", unit_type=unit, source_type="vmware", assets=[asset]))
        db.session.commit()
        keys = {f"key:{role}": create_api_key(f"{role} key", role)[1] for role in ("admin", "ingest", "readonly")}
        keys["key:other-client"] = create_api_key("other client key", "admin", other.id)[1]
        disabled, keys["key:disabled"] = create_api_key("disabled key", "admin")
        disabled.enabled = False
        db.session.commit()
        assert (acme.id, other.id, asset.id) == (1, 2, 1)
    return keys


def session_client(app, who: str):
    client = app.test_client()
    if who != "anonymous":
        assert AuthActions(client).login(f"{who}@example.com").status_code == 302
    return client


def expected_session(endpoint: str, method: str, who: str) -> str:
    """What a browser session gets: 'ok' (served or handled), 'login' (sent to log in), 'forbidden' (403),
    'no-key' (the API's 401)."""
    if endpoint in PUBLIC:
        return "ok"
    if endpoint.startswith("api."):
        return "no-key"
    if who == "anonymous":
        return "login"
    admin_only = endpoint.startswith(ADMIN_ONLY_PREFIXES) or endpoint in ADMIN_ONLY
    if admin_only and who != "admin":
        return "forbidden"
    if who == "viewer" and (method != "GET" or endpoint in EDITOR_GETS):
        return "forbidden"
    return "ok"


def classify_session(response) -> str:
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)[:500]
    if status == 403:
        return "forbidden"
    if status == 401:
        return "no-key"
    if status == 302 and "/login" in response.headers["Location"]:
        return "login"
    return "ok"


def test_every_url_and_method_answers_each_session_role_as_expected(app, world):
    table = routes(app)
    assert len(table) > 180
    outcomes: Counter = Counter()
    wrong = []
    for who in SESSIONS:
        client = session_client(app, who)
        token = csrf_token(client, "/login" if who == "anonymous" else "/admin/")
        for endpoint, method, path in table:
            if endpoint == "auth.logout":
                continue
            if endpoint.startswith("api."):
                response = client.open(path, method=method, json={} if method in ("POST", "PATCH") else None)
            else:
                response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
            got, want = classify_session(response), expected_session(endpoint, method, who)
            outcomes[(who, got)] += 1
            if got != want:
                wrong.append((who, method, path, response.status_code, want))
    assert wrong == []
    assert outcomes[("viewer", "forbidden")] > 60 and outcomes[("staff", "forbidden")] > 10
    assert outcomes[("anonymous", "login")] > 100


def expected_key(endpoint: str, who: str) -> set[int]:
    if endpoint in PUBLIC:
        return {200}
    if who == "key:disabled":
        return {401}
    role = "admin" if who == "key:other-client" else who.removeprefix("key:")
    if role not in API_ROLES.get(endpoint, {"admin"}) or (who == "key:other-client" and endpoint in SCOPED_REFUSED):
        return {403}
    return {200, 201, 202, 204, 400, 404, 409, 413, 422}


def test_every_api_endpoint_answers_each_key_as_expected(app, world):
    client = app.test_client()
    wrong = []
    calls = 0
    api = [route for route in routes(app) if route[0].startswith("api.")]
    for endpoint, method, path in sorted(api, key=lambda route: route[1] == "DELETE"):  # deletes last
        for who in KEYS:
            body = {} if method in ("POST", "PATCH") else None
            response = client.open(path, method=method, json=body, headers=bearer(world[who]))
            calls += 1
            assert response.status_code < 500 and (response.is_json or response.status_code == 204), (who, path)
            if response.status_code not in expected_key(endpoint, who):
                wrong.append((who, method, path, response.status_code, response.get_json()))
    assert wrong == [], "\n".join(map(str, wrong))
    assert calls == len(KEYS) * len(api) and len(api) >= 31


def test_a_key_of_another_client_never_sees_nor_touches_this_clients_records(app, world):
    client = app.test_client()
    for path in ("/api/v1/clients/1", "/api/v1/assets/1", "/api/v1/buckets/1"):
        for method in ("GET", "PATCH", "DELETE"):
            response = client.open(path, method=method, json={"name": "Hijacked"} if method == "PATCH" else None,
                                    headers=bearer(world["key:other-client"]))
            assert response.status_code == 404, (method, path)
    with app.app_context():
        assert db.session.get(Client, 1).name == "Acme" and db.session.get(Asset, 1) and db.session.get(Bucket, 1)


def test_a_key_of_another_client_may_not_post_readings_for_this_clients_asset(app, world):
    answer = app.test_client().post("/api/v1/readings", json=[reading("vm-1", unit="gb")],
                                    headers=bearer(world["key:other-client"]))
    assert answer.status_code == 200 and answer.get_json()["accepted"] == 0
    assert answer.get_json()["rejected"][0]["error"].startswith("forbidden: ")
    lists = app.test_client().get("/api/v1/assets", headers=bearer(world["key:other-client"])).get_json()
    assert lists == {"items": [], "total": 0}


def test_a_disabled_key_and_a_deactivated_user_are_refused_on_the_next_request(app, world):
    api, browser = app.test_client(), session_client(app, "staff")
    assert api.get("/api/v1/clients", headers=bearer(world["key:admin"])).status_code == 200
    assert browser.get("/admin/client/").status_code == 200
    with app.app_context():
        db.session.scalar(select(ApiKey).where(ApiKey.name == "admin key")).enabled = False
        db.session.scalar(select(User).where(User.email == "staff@example.com")).active = False
        db.session.commit()
    assert api.get("/api/v1/clients", headers=bearer(world["key:admin"])).status_code == 401
    refused = browser.get("/admin/client/")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    again = AuthActions(app.test_client()).login("staff@example.com")
    assert again.status_code == 200 and "Wrong email or password." in again.get_data(as_text=True)


def test_no_password_or_key_reaches_the_logs_pages_or_audit_values(app, world, caplog):
    caplog.set_level(logging.DEBUG)
    admin = session_client(app, "admin")
    token = csrf_token(admin, "/admin/apikey/new/")
    created = admin.post("/admin/apikey/new/", data={"name": "collector", "role": "ingest", "enabled": "y",
                                                      "csrf_token": token}, follow_redirects=True)
    raw = re.search(r"<code class='new-api-key'>([^<]+)</code>", created.get_data(as_text=True)).group(1)
    assert raw.startswith("mdk_")
    new_password = "s3cret-Pass-phrase"
    user_created = admin.post("/admin/user/new/", data={"email": "new@example.com", "role": "viewer", "active": "y",
                                                        "password": new_password, "csrf_token": token})
    assert user_created.status_code == 302, user_created.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "new@example.com")) == "viewer"
    ingest = app.test_client().post("/api/v1/readings", json=[reading(unit="gb")], headers=bearer(raw))
    assert ingest.status_code == 200
    bad = app.test_client().post("/api/v1/readings", json=[], headers=bearer(raw[:-3] + "xyz"))
    assert bad.status_code == 401
    AuthActions(app.test_client()).login("new@example.com", "wrong-" + new_password)
    secrets = [raw, raw.split("_", 2)[2], new_password, PASSWORD, *world.values()]
    pages = [admin.get(url).get_data(as_text=True) for url in (
        "/admin/apikey/", "/admin/apikey/details/?id=6", "/admin/user/", "/admin/auditlog/",
        "/admin/auditlog/?search=key_hash")]
    with app.app_context():
        audit = " ".join(f"{row.old_values} {row.new_values}" for row in db.session.scalars(select(AuditLog)))
        stored = {k.key_hash for k in db.session.scalars(select(ApiKey))}
    assert "[redacted]" in audit
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret not in page for page in pages)
        assert secret not in audit
    assert not any(digest in audit or any(digest in page for page in pages) for digest in stored)


def login_via(client, headers: dict[str, str], password: str = PASSWORD, email: str = "viewer@example.com"):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       headers={"Referer": "https://localhost/login", **headers})


PROXY_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost"}


def test_behind_a_trusted_https_proxy_the_session_cookie_is_secure(app, settings):
    from app import create_app

    app = create_app({**settings, "TRUSTED_PROXIES": "1"})
    make_user(app, "viewer")
    response = login_via(app.test_client(), PROXY_HTTPS)
    assert response.status_code == 302
    assert all(flag in response.headers["Set-Cookie"] for flag in ("Secure", "HttpOnly", "SameSite=Lax"))
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted(app):
    make_user(app, "viewer")
    response = login_via(app.test_client(), PROXY_HTTPS)
    assert response.status_code == 302
    assert "Secure" not in response.headers["Set-Cookie"] and "Strict-Transport-Security" not in response.headers
    # a guesser cannot dodge login throttling by forging X-Forwarded-For: all five failures count for its address
    guesser = app.test_client()
    for n in range(5):
        login_via(guesser, {"X-Forwarded-For": f"198.51.100.{n}"}, password="wrong-password")
    assert login_via(guesser, {"X-Forwarded-For": "198.51.100.99"}).status_code == 429


def test_behind_a_trusted_proxy_throttling_counts_per_real_client_address(app, settings):
    from app import create_app

    app = create_app({**settings, "TRUSTED_PROXIES": "1"})
    make_user(app, "viewer")
    guesser, colleague = app.test_client(), app.test_client()
    for _ in range(5):
        login_via(guesser, {"X-Forwarded-For": "203.0.113.9"}, password="wrong-password")
    assert login_via(guesser, {"X-Forwarded-For": "203.0.113.9"}).status_code == 429
    assert login_via(colleague, {"X-Forwarded-For": "203.0.113.10"}).status_code == 302
