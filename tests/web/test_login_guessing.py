"""Password guessing: at most 5 passwords are checked per email and address in the window, however many guesses
arrive at once; an unknown or inactive email costs the same hash check as a real one (no timing oracle).

Observation point: werkzeug's real `check_password_hash`, wrapped with a counter where auth.py calls it."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from extensions import db
from models import User
from tests.conftest import PASSWORD, csrf_token, make_user
from web import auth
from web.security import LOGIN_FAILURES_ALLOWED

GUESSES = 30


@pytest.fixture
def hash_checks(monkeypatch) -> list[str]:
    """The method part (`scrypt:32768:8:1`) of every hash the login checks a password against."""
    checked: list[str] = []
    lock = threading.Lock()

    def counted(pwhash: str, password: str) -> bool:
        with lock:
            checked.append(pwhash.split("$", 1)[0])
        return check_password_hash(pwhash, password)

    monkeypatch.setattr(auth, "check_password_hash", counted)
    return checked


def login_form(app) -> tuple[object, str]:
    client = app.test_client()
    return client, csrf_token(client, "/login")


def post_login(client, token: str, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_thirty_parallel_wrong_guesses_check_exactly_five_passwords(app, hash_checks):
    make_user(app, "staff")
    forms = [login_form(app) for _ in range(GUESSES)]
    start = threading.Barrier(GUESSES)

    def guess(form: tuple[object, str]) -> tuple[int, str]:
        client, token = form
        start.wait()
        response = post_login(client, token, "staff@example.com", "wrong-guess")
        return response.status_code, response.get_data(as_text=True)

    with ThreadPoolExecutor(GUESSES) as pool:
        answers = list(pool.map(guess, forms))

    assert len(hash_checks) == LOGIN_FAILURES_ALLOWED == 5
    wrong = [status for status, html in answers if status == 200 and "Wrong email or password." in html]
    throttled = [status for status, html in answers if status == 429 and "Too many failed logins" in html]
    assert (len(wrong), len(throttled)) == (5, GUESSES - 5)
    hash_checks.clear()
    client, token = login_form(app)
    assert post_login(client, token, "staff@example.com", PASSWORD).status_code == 429  # the right one too, now
    assert hash_checks == [] and client.get("/admin/").status_code == 302


def test_a_successful_login_clears_the_count(app, hash_checks):
    make_user(app, "staff")
    client, token = login_form(app)
    for _ in range(LOGIN_FAILURES_ALLOWED - 1):
        assert post_login(client, token, "staff@example.com", "wrong-guess").status_code == 200
    assert post_login(client, token, "staff@example.com", PASSWORD).status_code == 302
    client, token = login_form(app)
    answers = [post_login(client, token, "staff@example.com", "wrong-guess").status_code
               for _ in range(LOGIN_FAILURES_ALLOWED + 1)]
    assert answers == [200] * LOGIN_FAILURES_ALLOWED + [429]
    assert len(hash_checks) == 2 * LOGIN_FAILURES_ALLOWED


def test_unknown_inactive_and_known_emails_cost_the_same_hash_check(app, hash_checks):
    make_user(app, "staff")
    make_user(app, "viewer")
    with app.app_context():
        viewer = db.session.scalar(select(User).where(User.email == "viewer@example.com"))
        real_method = viewer.password_hash.split("$", 1)[0]
        viewer.active = False
        db.session.commit()
    cases = [("staff@example.com", "wrong-guess"), ("nobody@example.com", "wrong-guess"),
             ("nobody@example.com", PASSWORD), ("viewer@example.com", PASSWORD)]
    for email, password in cases:
        hash_checks.clear()
        client, token = login_form(app)
        response = post_login(client, token, email, password)
        assert response.status_code == 200 and "Wrong email or password." in response.get_data(as_text=True)
        assert hash_checks == [real_method], (email, hash_checks)
        assert client.get("/admin/").status_code == 302
    assert real_method.startswith(("scrypt:", "pbkdf2:"))
