"""A logout, a new password, a role change or a deactivation ends every session of that user: a copy of the
session cookie taken before (another browser, a stolen cookie) is sent to the login page afterwards."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import User
from tests.conftest import PASSWORD, AuthActions, csrf_token, logged_in, make_user


def copy_of_session(client, app):
    """A second browser holding the same session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value, domain="localhost")
    return thief


def sent_to_login(client) -> bool:
    response = client.get("/admin/client/")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def session_version(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.session_version).where(User.email == email))


def edit_in_grid(admin_client, user_id: int, **fields: str) -> None:
    token = csrf_token(admin_client, f"/admin/user/edit/?id={user_id}")
    response = admin_client.post(f"/admin/user/edit/?id={user_id}", data={"csrf_token": token, **fields})
    assert response.status_code == 302, response.get_data(as_text=True)


STAFF = {"email": "staff@example.com", "role": "staff", "active": "y", "password": ""}
GRID_CHANGES = {
    "password": {**STAFF, "password": "a-new-Passphrase-1"},
    "role": {**STAFF, "role": "viewer"},
    "deactivation": {key: value for key, value in STAFF.items() if key != "active"},
}
CLI_CHANGES = {
    "password": ["--role", "staff", "--password", "a-new-Passphrase-1"],
    "role": ["--role", "viewer", "--password", PASSWORD],
}


@pytest.fixture
def victim(app):
    """A logged-in staff member and a copy of their session cookie, which works until something ends it."""
    browser = logged_in(app, "staff")
    copy = copy_of_session(browser, app)
    assert copy.get("/admin/client/").status_code == 200
    return browser, copy


def test_logout_ends_the_copied_session_too(app, victim):
    browser, copy = victim
    before = session_version(app, "staff@example.com")
    assert AuthActions(browser).logout().headers["Location"] == "/login"
    assert session_version(app, "staff@example.com") == before + 1
    assert sent_to_login(browser) and sent_to_login(copy)
    assert AuthActions(app.test_client()).login("staff@example.com").status_code == 302  # a fresh login works


@pytest.mark.parametrize("change", sorted(GRID_CHANGES))
def test_an_admin_changing_a_user_in_the_grid_ends_their_sessions(app, victim, admin_client, change):
    browser, copy = victim
    with app.app_context():
        staff_id = db.session.scalar(select(User.id).where(User.email == "staff@example.com"))
    before = session_version(app, "staff@example.com")
    edit_in_grid(admin_client, staff_id, **GRID_CHANGES[change])
    assert session_version(app, "staff@example.com") == before + 1
    assert sent_to_login(copy) and sent_to_login(browser)
    assert admin_client.get("/admin/client/").status_code == 200  # the acting admin keeps their own session


def test_an_edit_that_changes_neither_password_role_nor_active_keeps_the_sessions(app, victim, admin_client):
    browser, copy = victim
    with app.app_context():
        staff_id = db.session.scalar(select(User.id).where(User.email == "staff@example.com"))
    before = session_version(app, "staff@example.com")
    edit_in_grid(admin_client, staff_id, **STAFF)
    assert session_version(app, "staff@example.com") == before
    assert copy.get("/admin/client/").status_code == 200


@pytest.mark.parametrize("change", sorted(CLI_CHANGES))
def test_the_create_user_command_changing_a_user_ends_their_sessions(app, victim, runner, change):
    browser, copy = victim
    result = runner.invoke(args=["create-user", "staff@example.com", *CLI_CHANGES[change]])
    assert result.exit_code == 0, result.output
    assert sent_to_login(copy) and sent_to_login(browser)


def test_a_session_from_before_the_version_existed_or_of_another_version_is_refused(app):
    make_user(app, "viewer")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "viewer@example.com"))
        current, stale = user.get_id(), f"{user.id}:{user.session_version + 1}"
    assert current == f"{user.id}:{user.session_version}"
    for session_id, allowed in ((current, True), (stale, False), (str(user.id), False), ("x:1", False)):
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = session_id
            session["_fresh"] = True
        assert (client.get("/admin/client/").status_code == 200) is allowed, session_id
