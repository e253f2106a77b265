"""A key created in the API Keys grid is shown once on the page that answers the creation, and never travels in
the session cookie (signed, but readable by anyone who holds it)."""
from __future__ import annotations

import base64
import re
import zlib

from sqlalchemy import func, select

from api.keys import find_key
from extensions import db
from models import ApiKey, Client
from tests.conftest import csrf_token
from tests.livesrv import browser_page, live_server, login

KEY = re.compile(r"mdk_[0-9a-f]{8}_[A-Za-z0-9_-]+")


def session_payload(cookie: str) -> str:
    """The readable content of a Flask session cookie: base64 (zlib-compressed when it starts with a dot)."""
    compressed = cookie.startswith(".")
    payload = cookie.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


def session_cookies(response) -> list[str]:
    return [session_payload(header.split("=", 1)[1].split(";")[0]) for header in response.headers.getlist("Set-Cookie")
            if header.startswith("session=") and not header.startswith("session=;")]


def create_key(admin_client, **fields: str):
    token = csrf_token(admin_client, "/admin/apikey/new/")
    return admin_client.post("/admin/apikey/new/", data={"csrf_token": token, "enabled": "y", **fields})


def test_a_new_key_is_shown_once_on_the_answer_and_never_in_the_session_cookie(app, admin_client):
    with app.app_context():
        db.session.add(Client(name="Acme"))
        db.session.commit()
    created = create_key(admin_client, name="collector", role="ingest", client="1")
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    [raw] = KEY.findall(html)
    assert html.count(raw) == 1 and f"<code class='new-api-key'>{raw}</code>" in html
    assert "Acme" in html and 'data-copy=".new-api-key"' in html
    with app.app_context():
        key = find_key(raw)
        assert (key.name, key.role, key.client_id, key.enabled) == ("collector", "ingest", 1, True)
        assert raw not in (key.key_hash, key.prefix) and raw.startswith(key.prefix)
    later = [admin_client.get(url) for url in ("/admin/apikey/new/", "/admin/apikey/", f"/admin/apikey/details/?id={key.id}",
                                               "/admin/", "/admin/auditlog/")]
    assert all(response.status_code == 200 for response in later)
    assert all(raw not in response.get_data(as_text=True) for response in later)
    cookies = session_cookies(created) + [text for response in later for text in session_cookies(response)]
    assert cookies and all(raw not in text and raw.split("_", 2)[2] not in text for text in cookies)
    assert raw not in session_payload(admin_client.get_cookie("session").value)


def test_a_key_that_fails_validation_shows_the_form_and_stores_nothing(app, admin_client):
    refused = create_key(admin_client, name="", role="ingest")
    assert refused.status_code == 200 and "This field is required." in refused.get_data(as_text=True)
    assert not KEY.search(refused.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(func.count(ApiKey.id))) == 0


def test_the_new_key_page_copies_the_key_in_a_browser(app):
    from tests.conftest import PASSWORD, make_user

    make_user(app, "admin")
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/apikey/new/")
        page.fill("input[name=name]", "browser key")
        page.select_option("select[name=role]", "readonly", force=True)
        page.click("input[type=submit][value=Save]")
        page.wait_for_selector("code.new-api-key")
        raw = page.text_content("code.new-api-key")
        # the page's scripts listening, and the clipboard granted as a user's click would (headless chromium may
        # otherwise leave writeText pending: a CI run timed out here once)
        page.wait_for_load_state("load")
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page.click("button[data-copy]")
        page.wait_for_selector(".copy-status:not(:empty)")  # no string evaluation: the page's CSP forbids eval
        assert page.text_content(".copy-status") == "Copied."
        assert page.evaluate("navigator.clipboard.readText()") == raw
        assert page.console_errors == [] and page.foreign_requests == []
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        page.reload()
        assert raw not in page.content()
    assert raw not in session_payload(cookies["session"])
    with app.app_context():
        assert find_key(raw).name == "browser key"
