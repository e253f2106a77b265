"""PostgreSQL: the readings key covers `value` (PRIMARY KEY (asset_id, unit_type_id, ts) INCLUDE (value)).

Billing reads an asset's readings of a unit type in key order (p95, last, time_weighted): with the value in the key's
index those are index-only scans, one sequential pass over the pair's index entries, instead of a heap page per
reading (a collector's readings of one asset are spread over the whole month's heap). The same single index is kept
up by ingest, a few bytes wider. SQLite: nothing to do (it has no INCLUDE; its range scans read the table's rows).

Revision ID: readings_key_covers_value
Revises: readings_by_month
Create Date: 2026-11-26 22:55:00
"""
from alembic import op

revision = "readings_key_covers_value"
down_revision = "readings_by_month"
branch_labels = None
depends_on = None


def _key(include: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE readings DROP CONSTRAINT pk_readings")
    op.execute(f"ALTER TABLE readings ADD CONSTRAINT pk_readings PRIMARY KEY (asset_id, unit_type_id, ts){include}")


def upgrade() -> None:
    _key(" INCLUDE (value)")


def downgrade() -> None:
    _key("")
