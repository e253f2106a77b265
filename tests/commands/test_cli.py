"""The user and key commands: idempotent, clear errors, non-zero exits on bad input."""
from sqlalchemy import select

from api.keys import find_key, hash_key
from extensions import db
from models import ApiKey, Client, User


def test_create_user_is_idempotent_and_hashes_the_password(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["create-user", "Ops@Example.com", "--role", "admin", "--password", "pw-123456"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        users = db.session.scalars(select(User)).all()
        assert [u.email for u in users] == ["ops@example.com"]
        assert "pw-123456" not in users[0].password_hash and users[0].password_hash.startswith("scrypt:")


def test_create_user_refuses_bad_input(runner):
    bad_role = runner.invoke(args=["create-user", "a@example.com", "--role", "root", "--password", "pw-123456"])
    short = runner.invoke(args=["create-user", "a@example.com", "--role", "staff", "--password", "pw"])
    not_email = runner.invoke(args=["create-user", "nobody", "--role", "staff", "--password", "pw-123456"])
    assert bad_role.exit_code != 0 and short.exit_code != 0 and not_email.exit_code != 0
    assert "at least 8 characters" in short.output and "not an email address" in not_email.output


def test_api_key_is_printed_once_and_stored_only_as_a_hash(app, runner):
    with app.app_context():
        db.session.add(Client(name="Acme"))
        db.session.commit()
    result = runner.invoke(args=["create-api-key", "collector", "--role", "ingest", "--client-id", "1"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("mdk_") and len(raw) > 40
    with app.app_context():
        key = db.session.scalar(select(ApiKey))
        stored = [str(v) for v in (key.key_hash, key.prefix, key.name)]
        assert all(raw not in value for value in stored)
        assert key.key_hash == hash_key(raw) and raw.startswith(key.prefix) and key.client_id == 1
        assert find_key(raw).id == key.id and find_key(raw + "x") is None and find_key("nonsense") is None


def test_api_key_for_a_missing_client_is_refused(runner):
    result = runner.invoke(args=["create-api-key", "collector", "--role", "ingest", "--client-id", "99"])
    assert result.exit_code != 0 and "no client with id 99" in result.output


def test_api_key_created_in_the_grid_is_shown_once_and_stored_hashed(app, admin_client):
    from tests.conftest import csrf_token

    token = csrf_token(admin_client, "/admin/apikey/new/")
    response = admin_client.post("/admin/apikey/new/", data={"name": "probe", "role": "readonly", "enabled": "y",
                                                            "csrf_token": token}, follow_redirects=True)
    html = response.get_data(as_text=True)
    raw = html.split("new-api-key'>")[1].split("<")[0]
    with app.app_context():
        key = db.session.scalar(select(ApiKey))
        assert key.key_hash == hash_key(raw) and find_key(raw).name == "probe"
    assert raw not in admin_client.get("/admin/apikey/").get_data(as_text=True)
    assert raw not in admin_client.get(f"/admin/apikey/details/?id={key.id}").get_data(as_text=True)
