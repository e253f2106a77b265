"""Raw driver cursors (bulk ingest, archive COPY) fail as SQLAlchemy errors, and a connection the server dropped
mid-request gives the API's 503, never a 500: the case a PostgreSQL restart under load hit once in ~20 runs."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError

from database.driver import driver_cursor, rollback_quietly
from extensions import db
from models import Reading
from tests.api_helpers import bearer, make_key, make_unit_type, reading
from tests.database.server_faults import postgres_only, terminate

def test_a_driver_error_comes_out_as_sqlalchemys_named_and_the_session_goes_on(app):
    with app.app_context():
        with pytest.raises(DBAPIError) as raised:
            with driver_cursor(db.session, "find_widgets") as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        assert raised.value.statement == "find_widgets"
        assert "no_such_table" in str(raised.value.orig)
        assert raised.value.connection_invalidated is False
        rollback_quietly(db.session)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reading)) == 0


def test_a_cursor_that_works_gives_its_rows_and_is_closed_after(app):
    with app.app_context():
        with driver_cursor(db.session, "one") as cursor:
            cursor.execute("SELECT 41 + 1")
            assert cursor.fetchone()[0] == 42
        with pytest.raises(Exception):
            cursor.execute("SELECT 1")


@postgres_only
def test_a_connection_the_server_ended_is_an_invalidated_operational_error_and_rollback_stays_quiet(app):
    with app.app_context():
        pid = db.session.connection().connection.driver_connection.info.backend_pid
        terminate(pid)
        with pytest.raises(OperationalError) as raised:
            with driver_cursor(db.session, "find_assets") as cursor:
                cursor.execute("SELECT 1")
        assert raised.value.connection_invalidated is True
        assert raised.value.statement == "find_assets"
        rollback_quietly(db.session)
        fresh = db.session.connection().connection.driver_connection.info.backend_pid
        assert fresh != pid
        assert db.session.scalar(sa.text("SELECT 1")) == 1


@postgres_only
def test_ingest_whose_connection_is_ended_mid_request_answers_503_and_the_retry_stores_it(app, client, caplog):
    make_unit_type(app, "cpu_hours")
    key = make_key(app, "ingest")
    with app.app_context():
        engine = db.engine
    ended: list[int] = []

    def end_after_suppressions(conn, cursor, statement, params, context, executemany) -> None:
        """The last ORM statement before ingest's raw driver cursor looks the batch's assets up."""
        if "FROM suppressions" in statement and not ended:
            ended.append(conn.connection.driver_connection.info.backend_pid)
            terminate(ended[0])

    sa.event.listen(engine, "after_cursor_execute", end_after_suppressions)
    try:
        answer = client.post("/api/v1/readings", json=[reading("vm-1")], headers=bearer(key))
    finally:
        sa.event.remove(engine, "after_cursor_execute", end_after_suppressions)
    assert ended, "the request never reached the suppressions lookup"
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"] == "5"
    assert answer.get_json() == {"error": "the database is busy or unavailable; retry shortly"}
    assert "[SQL: find_assets]" in caplog.text  # the log names the statement that met the lost connection
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reading)) == 0

    again = client.post("/api/v1/readings", json=[reading("vm-1")], headers=bearer(key))
    assert again.status_code == 200 and again.get_json()["accepted"] == 1
