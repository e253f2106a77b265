"""Every request has a deadline (REQUEST_TIMEOUT): past it, the API answers 503 JSON with Retry-After and a page a
plain 503, never an HTML 500, and nothing of the stopped request is stored."""
from __future__ import annotations

import json
import fcntl
import os
import sqlite3
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from app import create_app
from database import deadline
from extensions import db
from ingest.batch import ingest_body
from models import Asset, AuditLog, Reading
from tests.api_helpers import bearer, make_key, make_unit_type, reading

URL = "/api/v1/readings"
ON_POSTGRES = bool(os.environ.get("DATABASE_URL"))
BATCH = [reading("vm-1"), reading("vm-2"), reading("vm-3", value="2.5")]


@pytest.fixture
def ingest(app):
    make_unit_type(app, "cpu_hours")
    return make_key(app, "ingest")


def counts(app) -> tuple[int, int, int]:
    """(assets, readings, audit rows): what a stopped request must not have left behind."""
    with app.app_context():
        return (db.session.scalar(select(func.count(Asset.id))), db.session.scalar(select(func.count()).select_from(Reading)),
                db.session.scalar(select(func.count(AuditLog.id))))


def post(client, key, body=BATCH):
    return client.post(URL, json=body, headers=bearer(key))


def assert_deadline_json(response, seconds: str) -> None:
    assert response.status_code == 503
    assert response.is_json
    assert response.json == {"error": f"request took longer than {seconds} s and was stopped; retry, with a smaller "
                                      "batch if it happens again"}
    assert response.headers["Retry-After"] == "5"


def test_an_api_request_past_its_deadline_answers_503_json_and_stores_nothing(app, client, ingest):
    before = counts(app)
    app.config["REQUEST_TIMEOUT"] = 1e-9
    assert_deadline_json(post(client, ingest), "1e-09")
    assert counts(app) == before
    app.config["REQUEST_TIMEOUT"] = 25
    assert post(client, ingest).json == {"accepted": 3, "duplicates": 0, "suppressed": 0, "rejected": []}


def test_a_page_past_its_deadline_answers_a_plain_503_page(app, admin_client):
    app.config["REQUEST_TIMEOUT"] = 1e-9
    response = admin_client.get("/admin/")
    assert response.status_code == 503
    assert response.content_type.startswith("text/plain")
    assert response.get_data(as_text=True) == ("This page took longer than 1e-09 s and was stopped. Retry shortly, "
                                               "or ask for less (a shorter period, a smaller page).")
    assert response.headers["Retry-After"] == "5"
    app.config["REQUEST_TIMEOUT"] = 25
    assert admin_client.get("/admin/").status_code == 200


def test_work_outside_a_request_has_no_deadline(app, client, ingest):
    app.config["REQUEST_TIMEOUT"] = 1e-9
    assert post(client, ingest).status_code == 503
    assert deadline.remaining() is None  # the request's deadline ended with it
    with app.app_context():
        result = ingest_body(db.session, json.dumps(BATCH).encode())  # what commands and RQ jobs run
    assert result.accepted == 3
    assert counts(app)[1] == 3


@contextmanager
def slow_readings_insert(app):
    """A real slow statement: inserting into `readings` fires a trigger that runs for about a minute
    (pg_sleep on PostgreSQL; a cross join of 1,500^3 rows on SQLite)."""
    with app.app_context():
        engine = db.engine
    with engine.begin() as conn:
        if ON_POSTGRES:
            conn.execute(sa.text("CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
                                 "$$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$"))
            conn.execute(sa.text("CREATE TRIGGER test_slow_insert BEFORE INSERT ON readings "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION test_slow_insert()"))
        else:
            conn.execute(sa.text("CREATE TABLE test_pad (x INTEGER)"))
            conn.execute(sa.text("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1500) "
                                 "INSERT INTO test_pad SELECT x FROM n"))
            conn.execute(sa.text("CREATE TRIGGER test_slow_insert BEFORE INSERT ON readings BEGIN "
                                 "SELECT count(*) FROM test_pad a, test_pad b, test_pad c; END"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER test_slow_insert" + (" ON readings" if ON_POSTGRES else "")))
            conn.execute(sa.text("DROP FUNCTION test_slow_insert()" if ON_POSTGRES else "DROP TABLE test_pad"))


def test_a_batch_whose_insert_runs_past_the_deadline_is_stopped_by_the_database_and_leaves_nothing(
        app, client, ingest):
    before = counts(app)
    app.config["REQUEST_TIMEOUT"] = 2
    with slow_readings_insert(app):
        assert_deadline_json(post(client, ingest), "2")
        assert counts(app) == before  # the new assets, their audit rows and the readings: all rolled back
    app.config["REQUEST_TIMEOUT"] = 25
    assert post(client, ingest).json == {"accepted": 3, "duplicates": 0, "suppressed": 0, "rejected": []}
    assert counts(app)[:2] == (3, 3)


def other_writers_holding_locks(app):
    """Yields once per lock that another writer holds while the caller posts: the row lock of asset vm-1 on
    PostgreSQL; on SQLite the ingest writers' file lock, then SQLite's own write lock."""
    with app.app_context():
        url = db.engine.url
    if ON_POSTGRES:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT id FROM assets WHERE external_id = 'vm-1' FOR UPDATE")
            yield
            conn.rollback()
        return
    with open(f"{url.database}.ingest-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    conn = sqlite3.connect(url.database)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_waiting_for_another_writer_ends_at_the_deadline_with_503_json(app, client, ingest):
    assert post(client, ingest, [reading("vm-1")]).json["accepted"] == 1
    before = counts(app)
    app.config["REQUEST_TIMEOUT"] = 1.5
    for _ in other_writers_holding_locks(app):
        assert_deadline_json(post(client, ingest, [reading("vm-1", ts="2026-11-02T10:00:00Z"), reading("vm-9")]),
                             "1.5")
        assert counts(app) == before
    app.config["REQUEST_TIMEOUT"] = 25
    assert post(client, ingest, [reading("vm-1", ts="2026-11-02T10:00:00Z")]).json["accepted"] == 1


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_request_timeout_must_be_a_positive_number_of_seconds(settings, value):
    with pytest.raises(ValueError, match="REQUEST_TIMEOUT must be a"):
        create_app(dict(settings, REQUEST_TIMEOUT=value))


def test_request_timeout_comes_from_the_environment_as_seconds(settings, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT", "12.5")
    assert create_app(settings).config["REQUEST_TIMEOUT"] == 12.5
    monkeypatch.delenv("REQUEST_TIMEOUT")
    assert create_app(settings).config["REQUEST_TIMEOUT"] == 25.0
