"""Security headers, cookie flags and login throttling."""
from tests.conftest import PASSWORD, csrf_token, make_user


def test_pages_carry_a_strict_csp_and_security_headers(app, admin_client):
    response = admin_client.get("/admin/client/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    html = response.get_data(as_text=True)
    assert f'nonce="{nonce}"' in html
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(app, client):
    make_user(app, "viewer")
    token = csrf_token(client, "/login")
    plain = client.post("/login", data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token})
    cookie = plain.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    secure_client = app.test_client()
    token = csrf_token(secure_client, "https://localhost/login")
    behind_https = secure_client.post("https://localhost/login", data={
        "email": "viewer@example.com", "password": PASSWORD, "csrf_token": token},
        headers={"Referer": "https://localhost/login"})
    assert "Secure" in behind_https.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in behind_https.headers


def test_login_is_throttled_after_five_failures(app, client, auth):
    make_user(app, "staff")
    for _ in range(5):
        assert auth.login("staff@example.com", "wrong-password").status_code == 200
    refused = auth.login("staff@example.com")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    other = app.test_client()
    make_user(app, "viewer")
    from tests.conftest import AuthActions

    assert AuthActions(other).login("viewer@example.com").status_code == 302
