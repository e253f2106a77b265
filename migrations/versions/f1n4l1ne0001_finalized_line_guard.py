"""Finalized billing lines held by the database itself.

- billing_readings.client_id and .bucket_id: ON DELETE CASCADE -> RESTRICT (a client or bucket goes only after its
  lines were removed explicitly and audited; integrity.py), and an index on client_id for those lookups.
- finalized_line_assets (line_id, asset_id), both RESTRICT: the assets named in each finalized line's per-asset
  details, backfilled here from the existing finalized lines (assets deleted before this revision are skipped).
- Triggers: a finalized line cannot be updated or deleted; inserting or finalizing a line fills
  finalized_line_assets. A frozen copy of database/triggers.py (tests/database/test_integrity_schema.py holds them equal).
  NOTE for later revisions: a SQLite batch "recreate" of billing_readings drops these triggers; create them again.

Revision ID: f1n4l1ne0001
Revises: 8c3d2a61f0b7
Create Date: 2026-11-26 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "f1n4l1ne0001"
down_revision = "8c3d2a61f0b7"
branch_labels = None
depends_on = None

# Names SQLite's unnamed foreign keys so that batch mode can drop them.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}

_SQLITE_INDEX_ASSETS = """
    INSERT INTO finalized_line_assets (line_id, asset_id)
    SELECT DISTINCT NEW.id, json_extract(item.value, '$.asset_id') FROM json_each(NEW.details, '$.assets') AS item;
"""

_PG_INDEX_ASSETS = """
    INSERT INTO finalized_line_assets (line_id, asset_id)
    SELECT DISTINCT NEW.id, (item ->> 'asset_id')::integer
    FROM json_array_elements(COALESCE(NEW.details -> 'assets', '[]'::json)) AS item;
"""

TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER finalized_line_no_update BEFORE UPDATE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
        " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be changed'); END",
        "CREATE TRIGGER finalized_line_no_delete BEFORE DELETE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
        " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be deleted'); END",
        "CREATE TRIGGER finalized_line_assets_on_insert AFTER INSERT ON billing_readings FOR EACH ROW"
        f" WHEN NEW.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
        "CREATE TRIGGER finalized_line_assets_on_finalize AFTER UPDATE OF finalized ON billing_readings FOR EACH ROW"
        f" WHEN NEW.finalized AND NOT OLD.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
    ),
    "postgresql": (
        """CREATE OR REPLACE FUNCTION refuse_finalized_line_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = 'a finalized billing line cannot be ' || CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'changed' END;
END
$$""",
        "CREATE TRIGGER finalized_line_immutable BEFORE UPDATE OR DELETE ON billing_readings FOR EACH ROW"
        " WHEN (OLD.finalized) EXECUTE FUNCTION refuse_finalized_line_change()",
        f"""CREATE OR REPLACE FUNCTION index_finalized_line_assets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{_PG_INDEX_ASSETS}
    RETURN NULL;
END
$$""",
        "CREATE TRIGGER finalized_line_assets_on_insert AFTER INSERT ON billing_readings FOR EACH ROW"
        " WHEN (NEW.finalized) EXECUTE FUNCTION index_finalized_line_assets()",
        "CREATE TRIGGER finalized_line_assets_on_finalize AFTER UPDATE OF finalized ON billing_readings FOR EACH ROW"
        " WHEN (NEW.finalized AND NOT OLD.finalized) EXECUTE FUNCTION index_finalized_line_assets()",
    ),
}

DROP = {
    "sqlite": tuple(f"DROP TRIGGER IF EXISTS {name}" for name in (
        "finalized_line_no_update", "finalized_line_no_delete", "finalized_line_assets_on_insert",
        "finalized_line_assets_on_finalize")),
    "postgresql": tuple(f"DROP TRIGGER IF EXISTS {name} ON billing_readings" for name in (
        "finalized_line_immutable", "finalized_line_assets_on_insert", "finalized_line_assets_on_finalize")) + (
        "DROP FUNCTION IF EXISTS refuse_finalized_line_change()", "DROP FUNCTION IF EXISTS index_finalized_line_assets()"),
}

BACKFILL = {
    "sqlite": """
        INSERT INTO finalized_line_assets (line_id, asset_id)
        SELECT DISTINCT line.id, json_extract(item.value, '$.asset_id')
        FROM billing_readings AS line, json_each(line.details, '$.assets') AS item
        WHERE line.finalized AND json_extract(item.value, '$.asset_id') IN (SELECT id FROM assets)
    """,
    "postgresql": """
        INSERT INTO finalized_line_assets (line_id, asset_id)
        SELECT DISTINCT line.id, (item ->> 'asset_id')::integer
        FROM billing_readings AS line, json_array_elements(COALESCE(line.details -> 'assets', '[]'::json)) AS item
        WHERE line.finalized AND (item ->> 'asset_id')::integer IN (SELECT id FROM assets)
    """,
}


def _line_foreign_keys(ondelete: str) -> None:
    """Point billing_readings' client_id and bucket_id foreign keys at `ondelete`."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("billing_readings", naming_convention=NAMING, recreate="always") as batch_op:
            for column, parent in (("client_id", "clients"), ("bucket_id", "buckets")):
                batch_op.drop_constraint(f"fk_billing_readings_{column}_{parent}", type_="foreignkey")
                batch_op.create_foreign_key(f"fk_billing_readings_{column}_{parent}", parent, [column], ["id"],
                                            ondelete=ondelete)
        return
    for column, parent in (("client_id", "clients"), ("bucket_id", "buckets")):
        op.drop_constraint(f"billing_readings_{column}_fkey", "billing_readings", type_="foreignkey")
        op.create_foreign_key(f"billing_readings_{column}_fkey", "billing_readings", parent, [column], ["id"],
                              ondelete=ondelete)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _line_foreign_keys("RESTRICT")
    op.create_index("ix_billing_client", "billing_readings", ["client_id"])
    op.create_table(
        "finalized_line_assets",
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["line_id"], ["billing_readings.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("line_id", "asset_id"),
    )
    op.create_index("ix_finalized_line_assets_asset", "finalized_line_assets", ["asset_id"])
    op.execute(BACKFILL[dialect])
    for statement in TRIGGERS[dialect]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in DROP[dialect]:
        op.execute(statement)
    op.drop_index("ix_finalized_line_assets_asset", table_name="finalized_line_assets")
    op.drop_table("finalized_line_assets")
    op.drop_index("ix_billing_client", table_name="billing_readings")
    _line_foreign_keys("CASCADE")
