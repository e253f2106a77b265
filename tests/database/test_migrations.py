"""`flask db upgrade` builds the schema on an empty database, and it matches the models exactly."""
import os

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
