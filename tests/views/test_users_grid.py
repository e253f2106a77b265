"""The Users grid (admins): create, edit role and active, change or keep a password; bad input is a form error."""
from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models import AuditLog, User
from tests.conftest import AuthActions, csrf_token

NEW_PASSWORD = "Tr0ub4dor-and-3"


def user_row(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def can_log_in(app, email: str, password: str) -> bool:
    return AuthActions(app.test_client()).login(email, password).status_code == 302


def create_in_grid(admin_client, **fields: str):
    token = csrf_token(admin_client, "/admin/user/new/")
    return admin_client.post("/admin/user/new/", data={"csrf_token": token, **fields})


def edit_in_grid(admin_client, user_id: int, **fields: str):
    token = csrf_token(admin_client, f"/admin/user/edit/?id={user_id}")
    return admin_client.post(f"/admin/user/edit/?id={user_id}", data={"csrf_token": token, **fields})


def user_audit(app, user_id: int) -> list[AuditLog]:
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.table == "users", AuditLog.record_id == str(user_id))
                                  .order_by(AuditLog.id)).all()
        db.session.expunge_all()
        return rows


def test_an_admin_creates_a_user_who_can_log_in_with_that_password_stored_as_a_hash(app, admin_client):
    response = create_in_grid(admin_client, email="  New.Person@Example.com ", role="staff", active="y",
                              password=NEW_PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    user = user_row(app, "new.person@example.com")
    assert (user.role, user.active) == ("staff", True)
    assert user.password_hash != NEW_PASSWORD and NEW_PASSWORD not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert can_log_in(app, "new.person@example.com", NEW_PASSWORD)
    assert not can_log_in(app, "new.person@example.com", "not-" + NEW_PASSWORD)
    [create] = user_audit(app, user.id)
    assert create.action == "create" and create.new_values["password_hash"] == "[redacted]"
    assert create.new_values["email"] == "new.person@example.com" and create.new_values["role"] == "staff"


def test_an_admin_edits_role_and_active_and_an_empty_password_keeps_the_old_one(app, admin_client):
    assert create_in_grid(admin_client, email="ops@example.com", role="staff", active="y",
                          password=NEW_PASSWORD).status_code == 302
    before = user_row(app, "ops@example.com")
    response = edit_in_grid(admin_client, before.id, email="ops@example.com", role="viewer", password="")
    assert response.status_code == 302, response.get_data(as_text=True)
    after = user_row(app, "ops@example.com")
    assert (after.role, after.active) == ("viewer", False)
    assert after.password_hash == before.password_hash
    assert not can_log_in(app, "ops@example.com", NEW_PASSWORD)  # inactive now
    reactivated = edit_in_grid(admin_client, before.id, email="ops@example.com", role="viewer", active="y", password="")
    assert reactivated.status_code == 302, reactivated.get_data(as_text=True)
    assert user_row(app, "ops@example.com").active is True
    assert can_log_in(app, "ops@example.com", NEW_PASSWORD)  # the kept password still works
    create, demote, reactivate = user_audit(app, before.id)[:3]
    assert demote.action == "update"
    assert demote.old_values["role"] == "staff" and demote.new_values["role"] == "viewer"
    assert demote.old_values["active"] is True and demote.new_values["active"] is False
    assert "password_hash" not in demote.new_values
    assert reactivate.new_values["active"] is True


def test_an_admin_changes_a_password_the_old_one_stops_working_and_the_audit_redacts_both_hashes(app, admin_client):
    assert create_in_grid(admin_client, email="ops@example.com", role="staff", active="y",
                          password=NEW_PASSWORD).status_code == 302
    user = user_row(app, "ops@example.com")
    changed = "a-whole-new-Passphrase"
    response = edit_in_grid(admin_client, user.id, email="ops@example.com", role="staff", active="y", password=changed)
    assert response.status_code == 302
    assert user_row(app, "ops@example.com").password_hash != user.password_hash
    assert not can_log_in(app, "ops@example.com", NEW_PASSWORD)
    assert can_log_in(app, "ops@example.com", changed)
    change = [row for row in user_audit(app, user.id) if row.action == "update"
              and "password_hash" in (row.new_values or {})][0]
    assert change.old_values["password_hash"] == change.new_values["password_hash"] == "[redacted]"
    text = " ".join(f"{row.old_values} {row.new_values}" for row in user_audit(app, user.id))
    assert changed not in text and NEW_PASSWORD not in text and user.password_hash not in text


def test_a_new_user_without_a_password_is_refused_with_a_form_error_and_nothing_is_stored(app, admin_client):
    response = create_in_grid(admin_client, email="nopass@example.com", role="viewer", active="y", password="")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "A new user needs a password." in html and "is-invalid" in html
    assert user_row(app, "nopass@example.com") is None
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.table == "users",
                                                         AuditLog.new_values.is_not(None),
                                                         AuditLog.record_id != "1")) is None


def test_a_short_password_is_refused_with_a_form_error(app, admin_client):
    response = create_in_grid(admin_client, email="short@example.com", role="viewer", active="y", password="1234567")
    assert response.status_code == 200 and "at least 8 characters" in response.get_data(as_text=True)
    assert user_row(app, "short@example.com") is None


def test_an_email_already_taken_is_refused_with_a_form_error_whatever_its_case(app, admin_client):
    assert create_in_grid(admin_client, email="ops@example.com", role="staff", active="y",
                          password=NEW_PASSWORD).status_code == 302
    original = user_row(app, "ops@example.com")
    again = create_in_grid(admin_client, email="OPS@Example.com", role="admin", active="y", password="other-Pass-99")
    assert again.status_code == 200
    html = again.get_data(as_text=True)
    assert "Already exists." in html and "is-invalid" in html and "IntegrityError" not in html
    other = create_in_grid(admin_client, email="other@example.com", role="viewer", active="y", password=NEW_PASSWORD)
    assert other.status_code == 302
    other_id = user_row(app, "other@example.com").id
    renamed = edit_in_grid(admin_client, other_id, email="Ops@example.com", role="viewer", active="y", password="")
    assert renamed.status_code == 200 and "Already exists." in renamed.get_data(as_text=True)
    with app.app_context():
        emails = sorted(db.session.scalars(select(User.email)))
    assert emails == ["admin@example.com", "ops@example.com", "other@example.com"]
    kept = user_row(app, "ops@example.com")
    assert (kept.role, kept.password_hash) == (original.role, original.password_hash)
