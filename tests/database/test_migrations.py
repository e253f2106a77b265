"""`flask db upgrade` builds the schema on an empty database, and it matches the models exactly."""
import os
import re

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from extensions import db
from tests.conftest import SERVER_DB, with_search_path


def fresh_database_url(tmp_path) -> str:
    if not SERVER_DB:
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    schema = f"mig_{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}_{os.getpid()}"
    engine = sa.create_engine(SERVER_DB)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return with_search_path(SERVER_DB, schema)


def not_a_partition(name, type_, parent_names) -> bool:
    """Month and DEFAULT partitions of readings (PostgreSQL) are not model tables."""
    table = name if type_ == "table" else parent_names.get("table_name")
    return not (table or "").startswith("readings_")


def test_db_upgrade_creates_the_models_schema(tmp_path):
    url = fresh_database_url(tmp_path)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "INSTANCE_DIR": str(tmp_path / "instance")})
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    again = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False, "include_name": not_a_partition})
            diff = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        db.engine.dispose()
    assert diff == []
    assert {"clients", "assets", "readings", "billing_readings", "projections", "audit_log", "job_runs"} <= tables


def readings_key(conn) -> str:
    """The definition of the readings key's index (on PostgreSQL, of the partitioned parent)."""
    if conn.dialect.name == "postgresql":
        definition = conn.execute(sa.text("SELECT pg_get_indexdef('pk_readings'::regclass)")).scalar_one()
        return re.sub(r" ON ONLY \w+\.", " ON ONLY ", definition)  # without the test's schema name
    return conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'readings'")).scalar_one()


def test_the_readings_key_covers_the_value_on_postgresql_after_upgrade_and_create_all(app, tmp_path):
    """Billing's per-pair reads (p95, last, time_weighted) are index-only scans only if the key carries the value."""
    url = fresh_database_url(tmp_path)
    migrated = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "INSTANCE_DIR": str(tmp_path / "instance")})
    assert migrated.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    keys = []
    for each in (migrated, app):
        with each.app_context():
            with db.engine.connect() as conn:
                keys.append(readings_key(conn))
            db.engine.dispose()
    if SERVER_DB:
        assert keys[0] == keys[1]
        assert keys[0].endswith("(asset_id, unit_type_id, ts) INCLUDE (value)"), keys[0]
        down = migrated.test_cli_runner().invoke(args=["db", "downgrade", "readings_by_month"])
        assert down.exit_code == 0, down.output
        with migrated.app_context():
            with db.engine.connect() as conn:
                assert readings_key(conn).endswith("(asset_id, unit_type_id, ts)")
            db.engine.dispose()
    else:
        assert all("PRIMARY KEY (asset_id, unit_type_id, ts)" in key for key in keys), keys
