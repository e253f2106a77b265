"""No redirect leaves the site: every route that takes its target from the request (`next`, Flask-Admin's `url`,
the Referer) sends a hostile target to its own fallback page, and same-site targets still work."""
from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Asset, Client
from tests.conftest import PASSWORD, csrf_token, logged_in, make_user

HOSTILE = [
    "//evil.example/phish",
    "///evil.example",
    "////evil.example",
    "/\t/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https://evil.example/phish",
    "HTTPS://evil.example",
    "http:evil.example",
    "https:/\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    " //evil.example",
    "\x01//evil.example",
    "\x1f/\x1f/evil.example",
    "/\r\n/evil.example",
    "/\n/evil.example",
    "/\x7f/evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%2F%2Fevil.example",
    "/%252F/evil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "evil.example/phish",
    "http://localhost@evil.example/",
    "http://evil.example\\@localhost/",
]
IN_HEADERS = [target for target in HOSTILE if not re.search(r"[\r\n]", target)]  # a header cannot carry CR/LF
SAME_SITE = ["/admin/bucket/?page=2", "/admin/client/?search=a%2Fb"]


def browser_host(location: str) -> str | None:
    """The host a browser on http://localhost/ goes to for `location` (WHATWG parsing of what matters here:
    C0 controls and spaces stripped at the ends, tab/CR/LF removed, backslash read as slash), also after the
    percent-decoding that some servers and browsers apply."""
    hosts = set()
    for text in (location, unquote(location), unquote(unquote(location))):
        text = re.sub(r"[\t\n\r]", "", text.strip("".join(map(chr, range(0x21))))).replace("\\", "/")
        hosts.add(urlsplit(urljoin("http://localhost/login", text)).hostname)
    return hosts.pop() if len(hosts) == 1 else "several"


def landing(client, response, hops: int = 3) -> str:
    """Follow same-site redirects (at most `hops`); the last Location, which must never leave the site."""
    location = response.headers["Location"]
    for _ in range(hops):
        assert browser_host(location) == "localhost", location
        assert not re.search(r"[\x00-\x1f\x7f\\]", location), location
        follow = client.get(location)
        if follow.status_code not in (301, 302, 303, 307, 308):
            break
        location = follow.headers["Location"]
    assert browser_host(location) == "localhost", location
    return location


def refused(results: dict[str, str], *expected: str) -> list[tuple[str, str]]:
    """The targets that did not land on one of the `expected` fallback pages."""
    return [(target, location) for target, location in results.items() if location not in expected]


@pytest.fixture
def staff(app):
    return logged_in(app, "staff")


def test_login_never_redirects_off_site(app):
    make_user(app, "viewer")
    results = {}
    for target in HOSTILE:
        client = app.test_client()
        token = csrf_token(client, "/login")
        response = client.post("/login", query_string={"next": target},
                               data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302, target
        results[target] = landing(client, response)
    assert refused(results, "/admin/") == []
    for target in SAME_SITE:
        client = app.test_client()
        token = csrf_token(client, "/login")
        response = client.post("/login", query_string={"next": target},
                               data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token})
        assert response.headers["Location"] == target


def test_the_login_page_of_a_logged_in_user_never_redirects_off_site(app, staff):
    results = {target: landing(staff, staff.get("/login", query_string={"next": target})) for target in HOSTILE}
    assert refused(results, "/admin/") == []
    assert staff.get("/login", query_string={"next": SAME_SITE[0]}).headers["Location"] == SAME_SITE[0]


def test_the_issue_chain_through_login_and_the_assign_page_stays_on_the_site(app):
    make_user(app, "staff")
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post("/login?next=/admin/assets/page/assign%3Fnext%3D//evil.example/phish",
                           data={"email": "staff@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/admin/assets/page/assign?next=//evil.example/phish"
    assert landing(client, response) == "/admin/assets/unassigned/"


def test_the_assign_page_never_redirects_off_site_after_get_or_post(app, staff):
    with app.app_context():
        db.session.add_all([Client(name="Acme"), Asset(external_id="vm-1", source_type="vmware")])
        db.session.commit()
    token = csrf_token(staff, "/admin/client/")
    empty = {target: landing(staff, staff.get("/admin/assets/page/assign", query_string={"next": target}))
             for target in HOSTILE}
    assert refused(empty, "/admin/assets/unassigned/") == []
    posted = {}
    for target in HOSTILE:
        response = staff.post("/admin/assets/page/assign", data={"ids": "1", "client_id": "1", "next": target,
                                                                 "csrf_token": token})
        posted[target] = landing(staff, response)
    assert refused(posted, "/admin/assets/unassigned/") == []
    with app.app_context():
        assert db.session.get(Asset, 1).client_id == 1
    page = staff.get("/admin/assets/page/assign", query_string={"ids": "1", "next": "//evil.example"})
    assert 'href="/admin/assets/unassigned/"' in page.get_data(as_text=True)  # the Cancel link too
    kept = staff.post("/admin/assets/page/assign", data={"ids": "1", "client_id": "1", "next": SAME_SITE[0],
                                                         "csrf_token": token})
    assert kept.headers["Location"] == SAME_SITE[0]


def test_the_assign_bulk_action_never_leads_off_site(app, staff):
    with app.app_context():
        db.session.add_all([Client(name="Acme"), Asset(external_id="vm-1", source_type="vmware")])
        db.session.commit()
    token = csrf_token(staff, "/admin/asset/")
    results = {}
    for target in HOSTILE:
        response = staff.post("/admin/asset/action/", data={"action": "assign", "rowid": "1", "url": target,
                                                            "csrf_token": token})
        first = response.headers["Location"]
        assert first.startswith("/admin/assets/page/assign?"), (target, first)
        page = staff.get(first).get_data(as_text=True)
        back = re.search(r'name="next" value="([^"]*)"', page).group(1)
        results[target] = back
    assert refused(results, "/admin/asset/") == []


def test_job_retry_and_billing_export_never_return_to_an_off_site_referer(app, staff):
    token = csrf_token(staff, "/admin/billingreading/")
    retry = {target: landing(staff, staff.post("/admin/jobs/999/retry", data={"csrf_token": token},
                                               headers={"Referer": target})) for target in IN_HEADERS}
    assert refused(retry, "/admin/") == []
    export = {target: landing(staff, staff.post("/admin/billingreading/export", data={"csrf_token": token},
                                                headers={"Referer": target})) for target in IN_HEADERS}
    assert refused(export, "/admin/billingreading/") == []
    own = staff.post("/admin/jobs/999/retry", data={"csrf_token": token},
                     headers={"Referer": "http://localhost/admin/billingreading/?period=2026-10"})
    assert own.headers["Location"] == "/admin/billingreading/?period=2026-10"


def test_flask_admin_return_urls_never_leave_the_site(app, staff):
    """Flask-Admin refuses some targets itself (to the grid); the site-wide guard sends the rest to the dashboard."""
    token = csrf_token(staff, "/admin/client/new/")
    created = {}
    for number, target in enumerate(HOSTILE):
        response = staff.post("/admin/client/new/", query_string={"url": target},
                              data={"name": f"Client {number}", "enabled": "y", "csrf_token": token})
        assert response.status_code == 302, target
        created[target] = landing(staff, response)
    assert refused(created, "/admin/client/", "/admin/") == []
    with app.app_context():
        assert db.session.scalar(select(func.count(Client.id))) == len(HOSTILE)
    deleted = {}
    for number, target in enumerate(HOSTILE, start=1):
        response = staff.post("/admin/client/delete/", data={"id": str(number), "url": target, "csrf_token": token})
        deleted[target] = landing(staff, response)
    assert refused(deleted, "/admin/client/", "/admin/") == []
    with app.app_context():
        assert db.session.scalar(select(func.count(Client.id))) == 0
