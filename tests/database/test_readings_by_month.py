"""`readings` keyed by (asset, unit type, ts) and partitioned by month on PostgreSQL: the migration from the
previous schema keeps every reading, and partitions are created ahead (moving rows out of DEFAULT)."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from app import create_app
from database.partitions import create_partitions, month_partitions, months_ahead, partitioned
from extensions import db
from tests.database.test_migrations import fresh_database_url

OLD_HEAD = "bucket_terms_adjustments"
# (asset, unit, ts, value in millionths): both sides of a month boundary, a second unit, an old and a stray year
ROWS = [
    (1, 1, "2026-01-31 23:59:59.999000+00", 1_500_000),
    (1, 1, "2026-02-01 00:00:00+00", 2_250_000),
    (1, 2, "2026-02-01 00:00:00+00", 7),
    (2, 1, "2026-01-01 00:00:00+00", 1_000_000),
    (2, 1, "2019-06-15 12:00:00+00", 42),
]


def _migrated_app(tmp_path):
    url = fresh_database_url(tmp_path)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "INSTANCE_DIR": str(tmp_path / "instance")})
    return app


def _stored(conn) -> set[tuple]:
    rows = conn.execute(sa.text("SELECT asset_id, unit_type_id, ts, value FROM readings")).all()
    out = set()
    for asset_id, unit_type_id, ts, value in rows:
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts).replace(tzinfo=timezone.utc)
        out.add((asset_id, unit_type_id, ts.astimezone(timezone.utc), value))
    return out


def _expected() -> set[tuple]:
    return {(a, u, datetime.fromisoformat(ts.replace("+00", "+00:00")), v) for a, u, ts, v in ROWS}


def test_the_keyed_partitioned_schema_migrates_from_the_current_one_with_every_reading(tmp_path):
    app = _migrated_app(tmp_path)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", OLD_HEAD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        with db.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"
            conn.execute(sa.text("INSERT INTO clients (id, name, enabled, created_at) VALUES (1, 'Acme', true, :t)"),
                         {"t": datetime(2026, 1, 1)})
            for asset_id in (1, 2):
                conn.execute(sa.text(
                    "INSERT INTO assets (id, external_id, source_type, name, description, client_id, acknowledged, "
                    "enabled, created_at) VALUES (:id, :ext, 'vm', :ext, '', 1, true, true, :t)"),
                    {"id": asset_id, "ext": f"vm-{asset_id}", "t": datetime(2026, 1, 1)})
            for unit_id, name in ((1, "gb"), (2, "cpu")):
                conn.execute(sa.text(
                    "INSERT INTO unit_types (id, name, description, aggregation, base_price, overage_price, "
                    "auto_provision, filter_pattern) VALUES (:id, :name, '', 'sum', 0, 0, false, '*')"),
                    {"id": unit_id, "name": name})
            for asset_id, unit_id, ts, value in ROWS:
                moment = datetime.fromisoformat(ts.replace("+00", "+00:00"))
                conn.execute(sa.text("INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
                                     "VALUES (:a, :u, :ts, :v, :ts)"),
                             {"a": asset_id, "u": unit_id, "v": value,
                              "ts": moment.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else moment})
            assert _stored(conn) == _expected()
        db.engine.dispose()

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        with db.engine.begin() as conn:
            assert _stored(conn) == _expected()
            columns = [c["name"] for c in sa.inspect(conn).get_columns("readings")]
            assert columns == ["asset_id", "unit_type_id", "ts", "value", "received_at"]
            assert sa.inspect(conn).get_pk_constraint("readings")["constrained_columns"] == [
                "asset_id", "unit_type_id", "ts"]
            if conn.dialect.name == "postgresql":
                where = dict(conn.execute(sa.text(
                    "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), tableoid::regclass::text "
                    "FROM readings WHERE unit_type_id = 1")).all())
                assert where == {"2026-01-31 23:59:59.999": "readings_2026_01",
                                 "2026-02-01 00:00:00.000": "readings_2026_02",
                                 "2026-01-01 00:00:00.000": "readings_2026_01",
                                 "2019-06-15 12:00:00.000": "readings_default"}
        with db.session.begin():
            assert partitioned(db.session) == (db.engine.dialect.name == "postgresql")
            if partitioned(db.session):
                assert {f"{m:%Y-%m}" for m in months_ahead()} <= set(month_partitions(db.session))
        db.engine.dispose()

    result = runner.invoke(args=["db", "downgrade", OLD_HEAD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        with db.engine.begin() as conn:
            assert _stored(conn) == _expected()
            assert "id" in [c["name"] for c in sa.inspect(conn).get_columns("readings")]
        db.engine.dispose()


def test_a_partition_created_after_its_readings_arrived_takes_them_out_of_default(app, backend):
    from tests.factories import asset, readings, unit_type

    with app.app_context():
        vm = asset("vm-1")
        readings(vm, [("2030-03-01T00:00:00+00:00", "1"), ("2030-03-31T23:59:59.999+00:00", "2"),
                      ("2030-04-01T00:00:00+00:00", "4")], unit_type())
        db.session.commit()
        created = create_partitions(db.session, [datetime(2030, 3, 1, tzinfo=timezone.utc)])
        total = db.session.scalar(sa.text("SELECT sum(value) FROM readings"))
        assert total == 7_000_000
        if backend == "postgresql":
            assert created == ["readings_2030_03"]
            assert db.session.scalar(sa.text("SELECT count(*) FROM readings_2030_03")) == 2
            assert db.session.scalar(sa.text("SELECT count(*) FROM readings_default")) == 1
            assert create_partitions(db.session, [datetime(2030, 3, 1, tzinfo=timezone.utc)]) == []
        else:
            assert created == []


def test_the_nightly_job_keeps_this_month_and_the_next_three_created(app, backend):
    from jobs.partitions import scheduled_partitions

    with app.app_context():
        first = scheduled_partitions()
        again = scheduled_partitions()
        if backend == "postgresql":
            assert {f"{m:%Y-%m}" for m in months_ahead()} <= set(month_partitions(db.session))
            assert again == "all partitions exist"
            assert first.startswith("created") or first == "all partitions exist"
        else:
            assert first == again == "readings is not partitioned here"
