"""Login is needed on every admin URL; viewers read but never write; CSRF is required on forms."""
import re

import pytest

from extensions import db
from models import Client, User
from tests.conftest import PASSWORD, csrf_token, make_user

PUBLIC = {"static", "favicon", "auth.login", "auth.logout", "home", "admin.static", "healthz", "health", "api", "vendor"}


def admin_urls(app) -> list[tuple[str, str]]:
    """Every GET-able URL of the app outside the public endpoints and the API, with sample arguments."""
    urls = []
    for rule in app.url_map.iter_rules():
        top = rule.endpoint.split(".")[0]
        if rule.endpoint in PUBLIC or top in PUBLIC or rule.endpoint.endswith(".static") or top.startswith("api"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1" if "id" in m.group(1) else "csv", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        urls.append((method, path))
    return sorted(set(urls))


def test_every_admin_url_needs_a_login(app, client):
    # CSRF off for this test only: a POST without a token would stop at CSRF's 400 before any login check, and a
    # missing login check would go unseen. With it off, the login check is what answers.
    app.config["WTF_CSRF_ENABLED"] = False
    urls = admin_urls(app)
    assert len(urls) > 50
    for method, path in urls:
        response = client.open(path, method=method)
        assert response.status_code == 302, (method, path, response.status_code)
        assert "/login" in response.headers["Location"], (method, path)


def test_login_with_wrong_password_is_refused(app, client, auth):
    make_user(app, "staff")
    response = auth.login("staff@example.com", "wrong-password")
    assert response.status_code == 200
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/admin/client/").status_code == 302


def test_disabled_user_is_refused_at_once(app, client, auth):
    make_user(app, "staff")
    assert auth.login("staff@example.com").status_code == 302
    assert client.get("/admin/client/").status_code == 200
    with app.app_context():
        from models import User

        user = db.session.query(User).filter_by(email="staff@example.com").one()
        user.active = False
        db.session.commit()
    assert client.get("/admin/client/").status_code == 302


def test_viewer_cannot_post_a_change(app, viewer_client):
    with app.app_context():
        db.session.add(Client(name="Acme"))
        db.session.commit()
        client_id = db.session.query(Client).one().id
    token = csrf_token(viewer_client, "/admin/client/")
    created = viewer_client.post("/admin/client/new/", data={"name": "Sneaky", "csrf_token": token})
    edited = viewer_client.post(f"/admin/client/edit/?id={client_id}", data={"name": "Renamed", "csrf_token": token})
    deleted = viewer_client.post("/admin/client/delete/", data={"id": client_id, "csrf_token": token})
    assert (created.status_code, edited.status_code, deleted.status_code) == (403, 403, 403)
    with app.app_context():
        assert [c.name for c in db.session.query(Client).all()] == ["Acme"]
    assert "/admin/client/new/" not in viewer_client.get("/admin/client/").get_data(as_text=True)


def test_staff_can_create_but_not_manage_users(app, staff_client):
    token = csrf_token(staff_client, "/admin/client/new/")
    response = staff_client.post("/admin/client/new/", data={"name": "Globex", "csrf_token": token})
    assert response.status_code == 302
    assert staff_client.get("/admin/user/").status_code == 403
    assert staff_client.post("/admin/user/new/", data={"email": "x@example.com", "role": "admin",
                                                       "csrf_token": token}).status_code == 403
    with app.app_context():
        assert db.session.query(Client).filter_by(name="Globex").count() == 1
        assert db.session.query(User).filter_by(email="x@example.com").count() == 0


def test_form_post_without_csrf_token_is_refused(app, admin_client):
    response = admin_client.post("/admin/client/new/", data={"name": "NoToken"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Client).count() == 0


def test_login_form_itself_needs_csrf(app, client):
    make_user(app, "admin")
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 400


def test_login_redirects_back_but_never_off_site(app, client, auth):
    make_user(app, "viewer")
    first = client.get("/admin/bucket/")
    assert first.status_code == 302 and "next=" in first.headers["Location"]
    token = csrf_token(client, "/login")
    response = client.post("/login?next=//evil.example.com/x",
                           data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/admin/"


@pytest.mark.parametrize("role", ["viewer", "staff", "admin"])
def test_logout_ends_the_session(app, role):
    from tests.conftest import AuthActions, logged_in

    client = logged_in(app, role)
    assert client.get("/admin/").status_code == 200
    AuthActions(client).logout()
    assert client.get("/admin/").status_code == 302
