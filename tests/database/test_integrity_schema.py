"""The database itself holds finalized lines: raw SQL cannot change or delete them, nor the bucket, client or assets
they depend on; the migration builds the same triggers as `db.create_all()` and indexes the existing lines."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app import create_app
from billing.run import bill_period
from extensions import db
from models import Asset, BillingReading, Bucket, Client, UnitType, finalized_line_assets
from tests.database.test_migrations import fresh_database_url
from tests.factories import asset, bucket, client as make_client, readings

SEP = datetime(2026, 9, 1, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 1, tzinfo=timezone.utc)
BEFORE = "8c3d2a61f0b7"


@pytest.fixture
def billed(app) -> dict[str, int]:
    """September finalized: bucket "Storage" (commit 10, base $2) binds vm-1 (readings 4 + 3 = 7) and vm-2 (none):
    U = 7 < 10 -> final = base 10 x $2 = $20.00. October unfinalized: no readings -> $20.00."""
    with app.app_context():
        acme = make_client("Acme")
        vm1, vm2 = asset("vm-1", acme), asset("vm-2", acme)
        storage = bucket("Storage", assets=[vm1, vm2], commit="10", base="2", owner=acme)
        readings(vm1, [("2026-09-02T00:00:00+00:00", "4"), ("2026-09-09T00:00:00+00:00", "3")])
        db.session.commit()
        bill_period(db.session, SEP, finalize=True)
        bill_period(db.session, OCT)
        lines = dict(db.session.execute(sa.select(BillingReading.finalized, BillingReading.id)).all())
        ids = {"acme": acme.id, "storage": storage.id, "vm1": vm1.id, "vm2": vm2.id,
               "sep": lines[True], "oct": lines[False]}
        db.session.remove()
    return ids


def refused(app, statement: str, **params) -> bool:
    """Run one raw statement in its own transaction; True when the database refuses it with an IntegrityError."""
    with app.app_context():
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement), params)
        except IntegrityError:
            return True
        return False


def september_line(app, line_id: int) -> tuple:
    with app.app_context():
        return tuple(db.session.execute(sa.select(BillingReading.__table__).where(BillingReading.id == line_id)).one())


def test_raw_sql_can_neither_change_nor_delete_a_finalized_line(app, billed):
    before = september_line(app, billed["sep"])
    assert before[BillingReading.__table__.c.keys().index("final_cost")] == Decimal("20.00")
    assert refused(app, "UPDATE billing_readings SET final_cost = 0 WHERE id = :id", id=billed["sep"])
    assert refused(app, "UPDATE billing_readings SET finalized = false WHERE id = :id", id=billed["sep"])
    assert refused(app, "DELETE FROM billing_readings WHERE id = :id", id=billed["sep"])
    assert refused(app, "DELETE FROM billing_readings")
    assert september_line(app, billed["sep"]) == before


def test_raw_sql_cannot_delete_the_bucket_client_or_named_assets_of_a_finalized_line(app, billed):
    assert refused(app, "DELETE FROM buckets WHERE id = :id", id=billed["storage"])
    assert refused(app, "DELETE FROM clients WHERE id = :id", id=billed["acme"])
    assert refused(app, "DELETE FROM assets WHERE id = :id", id=billed["vm2"])  # named with usage 0: still billed
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Asset)) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BillingReading)) == 2


def test_an_unfinalized_line_may_change_and_be_finalized_once_then_it_is_frozen(app, billed):
    assert not refused(app, "UPDATE billing_readings SET final_cost = 21 WHERE id = :id", id=billed["oct"])
    with app.app_context():
        assert set(db.session.execute(sa.select(finalized_line_assets))) == {
            (billed["sep"], billed["vm1"]), (billed["sep"], billed["vm2"])}
    assert not refused(app, "UPDATE billing_readings SET finalized = true WHERE id = :id", id=billed["oct"])
    with app.app_context():
        assert set(db.session.execute(sa.select(finalized_line_assets))) == {
            (billed["sep"], billed["vm1"]), (billed["sep"], billed["vm2"]),
            (billed["oct"], billed["vm1"]), (billed["oct"], billed["vm2"])}
    assert refused(app, "UPDATE billing_readings SET final_cost = 20 WHERE id = :id", id=billed["oct"])


def test_a_line_finalized_without_per_asset_details_names_no_asset(app):
    with app.app_context():
        acme = make_client("Acme")
        storage = bucket("Storage", owner=acme)
        db.session.add(BillingReading(
            client=acme, bucket=storage, period_start=SEP, period_end=OCT, total_usage=Decimal(0), commit=Decimal(0),
            base_price=Decimal(0), overage_price=Decimal(0), base_cost=Decimal(0), overage_units=Decimal(0),
            overage_cost=Decimal(0), buffer_units=Decimal(0), buffer_cost=Decimal(0), final_cost=Decimal(0),
            finalized=True, details={}))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(finalized_line_assets)) == 0


def schema_triggers(conn) -> list[tuple]:
    """The trigger definitions (and, on PostgreSQL, the source of their functions) of the connection's schema."""
    if conn.dialect.name == "sqlite":
        return list(conn.execute(sa.text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
                                         "ORDER BY name")))
    triggers = conn.execute(sa.text(
        "SELECT t.tgname, replace(pg_get_triggerdef(t.oid), current_schema() || '.', '') FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY t.tgname"))
    functions = conn.execute(sa.text(
        "SELECT p.proname, p.prosrc FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace "
        "ORDER BY p.proname"))
    return list(triggers) + list(functions)


def migrated_app(tmp_path, revision: str = "head"):
    app = create_app({"DATABASE_URL": fresh_database_url(tmp_path), "SECRET_KEY": "x",
                      "INSTANCE_DIR": str(tmp_path / "instance")})
    result = app.test_cli_runner().invoke(args=["db", "upgrade", revision])
    assert result.exit_code == 0, result.output
    return app


def test_the_migration_creates_the_same_triggers_as_create_all(app, backend, tmp_path):
    with app.app_context(), db.engine.connect() as conn:
        created = schema_triggers(conn)
    migrated = migrated_app(tmp_path)
    with migrated.app_context():
        with db.engine.connect() as conn:
            upgraded = schema_triggers(conn)
        db.engine.dispose()
    assert len(created) == {"sqlite": 4, "postgresql": 3 + 2}[backend]  # PostgreSQL: 3 triggers, 2 functions
    assert upgraded == created


def test_the_migration_indexes_the_assets_of_lines_finalized_before_it_and_downgrades_cleanly(tmp_path):
    app = migrated_app(tmp_path, BEFORE)
    line = {"total_usage": Decimal(7), "commit": Decimal(10),
            "base_price": Decimal(2), "overage_price": Decimal(0), "base_cost": Decimal("20.00"),
            "overage_units": Decimal(0), "overage_cost": Decimal(0), "buffer_units": Decimal(3),
            "buffer_cost": Decimal("6.00"), "final_cost": Decimal("20.00")}
    with app.app_context():
        with db.engine.begin() as conn:
            client_id = conn.execute(sa.insert(Client.__table__).values(name="Acme")).inserted_primary_key[0]
            unit_id = conn.execute(sa.insert(UnitType.__table__).values(name="gb")).inserted_primary_key[0]
            bucket_id = conn.execute(sa.insert(Bucket.__table__).values(
                client_id=client_id, name="Storage", unit_type_id=unit_id, source_type="vm")).inserted_primary_key[0]
            vm1, vm2 = (conn.execute(sa.insert(Asset.__table__).values(
                external_id=name, source_type="vm", client_id=client_id)).inserted_primary_key[0]
                for name in ("vm-1", "vm-2"))
            details = {"assets": [{"asset_id": vm1, "usage": "7"}, {"asset_id": vm2, "usage": "0"},
                                  {"asset_id": 999, "usage": "0"}]}  # 999: an asset deleted before the fix
            sep, _unfinalized = (conn.execute(sa.insert(BillingReading.__table__).values(
                client_id=client_id, bucket_id=bucket_id, details=details, calculated_at=NOV,
                **{**line, "finalized": finalized, "period_start": start, "period_end": end})).inserted_primary_key[0]
                for finalized, start, end in ((True, SEP, OCT), (False, OCT, NOV)))
        db.engine.dispose()
    upgrade = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    assert refused(app, "DELETE FROM billing_readings WHERE id = :id", id=sep)
    assert refused(app, "DELETE FROM assets WHERE id = :id", id=vm2)
    with app.app_context():
        assert set(db.session.execute(sa.select(finalized_line_assets))) == {(sep, vm1), (sep, vm2)}
        db.session.remove()
        db.engine.dispose()
    downgrade = app.test_cli_runner().invoke(args=["db", "downgrade", BEFORE])
    assert downgrade.exit_code == 0, downgrade.output
    assert not refused(app, "DELETE FROM clients WHERE id = :id", id=client_id)  # CASCADE again, no trigger
    with app.app_context():
        with db.engine.connect() as conn:
            assert "finalized_line_assets" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT count(*) FROM billing_readings")).scalar() == 0
        db.engine.dispose()
