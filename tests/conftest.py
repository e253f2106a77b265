"""Fixtures: a fresh database per test (SQLite file or a PostgreSQL schema), a real Redis, clients per role.

`DATABASE_URL` / `REDIS_URL` in the environment switch the whole suite to PostgreSQL and a Redis server.
"""
from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa
from hypothesis import Phase, settings as hypothesis_settings

from app import create_app
from database.triggers import CREATE_STATEMENTS, SQLITE_TRIGGERS
from extensions import db

PASSWORD = "correct-horse-battery"
SERVER_DB = os.environ.get("DATABASE_URL", "")
SERVER_REDIS = os.environ.get("REDIS_URL", "")
# `make mutate` runs one pytest session per mutant: the first session's empty SQLite schema is kept in this file and
# copied by the others (no mutated module takes part in create_all: tests/mutate.py names them)
SCHEMA_TEMPLATE = os.environ.get("METERDESK_SCHEMA_TEMPLATE", "")

# `make mutate` (tests/mutate.py) runs with --hypothesis-profile=mutate: the same examples on every run and no
# shrinking (a mutant that fails a property test is killed at its first failing example; shrinking through a
# database for each of hundreds of mutants took minutes per mutant)
hypothesis_settings.register_profile("mutate", derandomize=True, database=None,
                                     phases=(Phase.explicit, Phase.reuse, Phase.generate))


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use `schema` (one schema per test worker)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if not SERVER_DB:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'meterdesk.db'}"
        return
    schema = f"t_{re.sub(r'[^a-z0-9]', '', worker_id().lower())}_{os.getpid()}"
    engine = sa.create_engine(SERVER_DB, pool_pre_ping=True)  # survives a server restart (the restart test)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield with_search_path(SERVER_DB, schema)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def redis_db_number() -> int:
    """A Redis database (1-15) of its own for each xdist worker of this run: they flush theirs before every test."""
    index = int(re.sub(r"\D", "", worker_id()) or 0)
    return (os.getppid() + index) % 15 + 1 if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid() % 15 + 1


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    if SERVER_REDIS:
        number = redis_db_number()
        yield re.sub(r"/\d*$", "", SERVER_REDIS.rstrip("/")) + f"/{number}"
        return
    from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis

    directory = tmp_path_factory.mktemp("redis")
    url = ensure_embedded_redis(directory)
    yield url
    stop_embedded_redis(directory)


@pytest.fixture(scope="session")
def _schema(database_url, tmp_path_factory):
    sqlite_file = database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite:///") else ""
    if sqlite_file and SCHEMA_TEMPLATE and os.path.exists(SCHEMA_TEMPLATE):
        shutil.copyfile(SCHEMA_TEMPLATE, sqlite_file)
        return database_url
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "schema",
                      "INSTANCE_DIR": str(tmp_path_factory.mktemp("schema"))})
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
    if sqlite_file and SCHEMA_TEMPLATE:
        shutil.copyfile(sqlite_file, f"{SCHEMA_TEMPLATE}.{os.getpid()}")
        os.replace(f"{SCHEMA_TEMPLATE}.{os.getpid()}", SCHEMA_TEMPLATE)
    return database_url


def end_leaked_transactions(conn) -> None:
    """End other sessions still holding locks in this worker's schema: a thread an earlier test left blocked.

    Between tests nothing else of this worker may hold a lock here; one that does would make TRUNCATE wait forever
    (a CI run stalled so). It is ended, and named in a warning so the leak can be found."""
    leaked = conn.execute(sa.text(
        "SELECT DISTINCT l.pid, a.query FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE n.nspname = current_schema() AND l.pid <> pg_backend_pid()")).all()
    for pid, query in leaked:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        warnings.warn(f"ended a session left holding locks by an earlier test (pid {pid}): {query[:200]}")


def empty_tables() -> None:
    """Delete every row and restart ids, fast on both backends.

    Finalized billing lines refuse DELETE (database/triggers.py): PostgreSQL's TRUNCATE fires no row trigger; on SQLite
    the triggers are dropped for the wipe and created again, unchanged, in the same transaction."""
    names = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            end_leaked_transactions(conn)
            conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for trigger in SQLITE_TRIGGERS:
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))
            for name in names:
                conn.execute(sa.text(f'DELETE FROM "{name}"'))
            if conn.execute(sa.text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first():
                conn.execute(sa.text("DELETE FROM sqlite_sequence"))
            for statement in CREATE_STATEMENTS["sqlite"]:
                conn.execute(sa.text(statement))


@pytest.fixture
def settings(_schema, redis_url, tmp_path) -> dict:
    """The overrides every test app gets; tests may add their own before asking for `app`."""
    return {
        "DATABASE_URL": _schema,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret",
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "TESTING": True,
        "API_RATE_LIMIT": "100000 per minute",
    }


@pytest.fixture
def app(settings):
    """A fresh app on empty tables; no app context is left pushed, so each request gets its own, as in production."""
    app = create_app(settings)
    with app.app_context():
        empty_tables()
    redis_lib.from_url(settings["REDIS_URL"]).flushdb()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def provider(app) -> dict[str, int]:
    """tests/reportdata.py's hand-computed provider around the real current month; its record ids."""
    from datetime import datetime, timezone

    from tests.reportdata import load_provider

    with app.app_context():
        ids = load_provider(datetime.now(timezone.utc))
        db.session.remove()
    return ids


def work_jobs(app) -> bool:
    """Run every queued job in this process inside `app`, as `flask --app app worker --burst` would."""
    from rq import SimpleWorker

    from jobs.worker import run_worker

    return run_worker(app, burst=True, worker_class=SimpleWorker)


@pytest.fixture
def ids(app):
    """tests/reportdata.py's hand-computed provider at its fixed NOW, in an app context held for the test; its ids."""
    from tests.reportdata import load_provider

    with app.app_context():
        yield load_provider()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD):
        return self.client.post("/login", data={"email": email, "password": password,
                                                "csrf_token": csrf_token(self.client, "/login")})

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": csrf_token(self.client, "/admin/")})


def csrf_token(client, url: str) -> str:
    """The CSRF token of the session, read from a form on `url` as a browser would."""
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, f"no csrf_token on {url}"
    return match.group(1)


def make_user(app, role: str, email: str | None = None) -> int:
    from web.auth import create_user

    with app.app_context():
        return create_user(email or f"{role}@example.com", PASSWORD, role).id


def logged_in(app, role: str):
    make_user(app, role)
    client = app.test_client()
    response = AuthActions(client).login(f"{role}@example.com")
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def admin_client(app):
    return logged_in(app, "admin")


@pytest.fixture
def staff_client(app):
    return logged_in(app, "staff")


@pytest.fixture
def viewer_client(app):
    return logged_in(app, "viewer")


@pytest.fixture
def backend(settings) -> str:
    return "postgresql" if settings["DATABASE_URL"].startswith("postgresql") else "sqlite"


def migrations_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "migrations"
