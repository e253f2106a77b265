"""Ingest with a second process in play (gunicorn on 127.0.0.1, same database and Redis): an asset moved by another
process is checked against its committed owner at once, and a catastrophic regex suppression cannot pin a worker."""
from __future__ import annotations

import http.client
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from extensions import db
from models import Asset, Reading
from tests.api_helpers import bearer, make_client, make_key, make_unit_type, reading
from tests.hardening.test_hardening_load import load

URL = "/api/v1/readings"
pytestmark = pytest.mark.slow


@pytest.fixture
def other_process(app, tmp_path):
    """A gunicorn worker serving the test's database: another process, with its own ORM sessions."""
    port = load.free_port()
    server = load.start_gunicorn(load.server_env(app.config), port, workers=1, log=tmp_path / "gunicorn.log")
    yield port
    load.stop(server)


def call(port: int, method: str, path: str, key: str, body, timeout: float = 20) -> tuple[int, str, dict]:
    """One HTTP request to the other process: (status, content type, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=json.dumps(body), headers={**bearer(key), "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.headers.get("Content-Type", ""), json.loads(response.read())
    finally:
        conn.close()


def readings_of(app, external_id: str) -> list[datetime]:
    with app.app_context():
        return sorted(db.session.scalars(select(Reading.ts).join(Asset).where(Asset.external_id == external_id)))


def test_an_asset_moved_by_another_process_is_refused_to_its_old_clients_key_at_once(app, client, other_process):
    make_unit_type(app, "cpu_hours")
    acme, globex = make_client(app, "Acme"), make_client(app, "Globex")
    acme_key, globex_key, admin = make_key(app, "ingest", acme), make_key(app, "ingest", globex), make_key(app, "admin")
    first = client.post(URL, json=[reading("vm-1", ts="2026-11-01T10:00:00Z")], headers=bearer(acme_key))
    assert first.json == {"accepted": 1, "duplicates": 0, "suppressed": 0, "rejected": []}
    with app.app_context():
        asset_id = db.session.scalar(select(Asset.id).where(Asset.external_id == "vm-1"))

    status, _, moved = call(other_process, "PATCH", f"/api/v1/assets/{asset_id}", admin, {"client_id": globex})
    assert (status, moved["client_id"]) == (200, globex)

    stale = client.post(URL, json=[reading("vm-1", ts="2026-11-01T11:00:00Z"), reading("acme-2")],
                        headers=bearer(acme_key))
    assert stale.status_code == 200
    assert stale.json == {"accepted": 1, "duplicates": 0, "suppressed": 0, "rejected": [
        {"index": 0, "error": "forbidden: asset 'vm-1' (source 'vmware') belongs to another client, not to this "
                              "key's client"}]}
    new_owner = client.post(URL, json=[reading("vm-1", ts="2026-11-01T12:00:00Z")], headers=bearer(globex_key))
    assert new_owner.json == {"accepted": 1, "duplicates": 0, "suppressed": 0, "rejected": []}
    assert readings_of(app, "vm-1") == [datetime(2026, 11, 1, 10, tzinfo=timezone.utc),
                                        datetime(2026, 11, 1, 12, tzinfo=timezone.utc)]
    with app.app_context():
        owners = dict(db.session.execute(select(Asset.external_id, Asset.client_id)).all())
    assert owners == {"vm-1": globex, "acme-2": acme}


def test_a_catastrophic_regex_suppression_answers_200_json_through_gunicorn(app, other_process):
    make_unit_type(app, "cpu_hours")
    admin, ingest = make_key(app, "admin"), make_key(app, "ingest")
    status, _, created = call(other_process, "POST", "/api/v1/suppressions", admin,
                              {"pattern": "(a+)+$", "type": "regex", "reason": "lab"})
    assert status == 201, created
    evil = "a" * 40 + "b"  # 2^40 steps for a backtracking engine: the worker used to be killed after 30 s
    status, content_type, result = call(other_process, "POST", URL, ingest,
                                        [reading(evil), reading("a" * 40), reading("vm-1")])
    assert (status, content_type) == (200, "application/json")
    assert result == {"accepted": 2, "duplicates": 0, "suppressed": 1, "rejected": []}
    with app.app_context():
        assert sorted(db.session.scalars(select(Asset.external_id))) == [evil, "vm-1"]
