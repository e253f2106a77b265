"""readings keyed by (asset, unit type, ts), partitioned by month on PostgreSQL; archived_months.

- readings loses its surrogate `id` and the unused `ix_readings_received`; its primary key is (asset_id,
  unit_type_id, ts) (the old unique key). PostgreSQL: `PARTITION BY RANGE (ts)` with a DEFAULT partition, a
  partition per month that holds readings (back 36 months) plus the current month and the next 3; older or stray
  months stay in DEFAULT. SQLite: one table, rebuilt with the new key. Every reading is copied over.
- archived_months: the months `archive-readings` moved to files.

Revision ID: readings_by_month
Revises: bucket_terms_adjustments
Create Date: 2026-11-28 10:00:00
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "readings_by_month"
down_revision = "bucket_terms_adjustments"
branch_labels = None
depends_on = None

COLUMNS = "asset_id, unit_type_id, ts, value, received_at"
KEEP_MONTHS_BACK = 36
AHEAD = 3


def _month(year: int, month: int) -> datetime:
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=timezone.utc)


def _partition_months(bind) -> list[datetime]:
    now = datetime.now(timezone.utc)
    first, last = _month(now.year, now.month - KEEP_MONTHS_BACK), _month(now.year, now.month + AHEAD)
    found = {row[0].astimezone(timezone.utc) for row in bind.execute(sa.text(
        "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM readings_unpartitioned"))}
    wanted = {m for m in found if first <= m <= last}
    month = _month(now.year, now.month)
    for _ in range(AHEAD + 1):
        wanted.add(month)
        month = _month(month.year, month.month + 1)
    return sorted(wanted)


def _create_archived_months() -> None:
    op.create_table(
        "archived_months",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period_start"),
    )


def upgrade() -> None:
    _create_archived_months()
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _upgrade_postgresql(bind)
    else:
        _upgrade_sqlite()


def _upgrade_postgresql(bind) -> None:
    op.execute("ALTER TABLE readings RENAME TO readings_unpartitioned")
    op.execute("ALTER INDEX ix_readings_unit_ts RENAME TO ix_readings_unit_ts_old")
    op.execute("ALTER TABLE readings_unpartitioned RENAME CONSTRAINT uq_readings_asset_unit_ts TO uq_readings_old")
    op.execute(
        "CREATE TABLE readings (asset_id integer NOT NULL, unit_type_id integer NOT NULL, "
        "ts timestamp with time zone NOT NULL, value bigint NOT NULL, received_at timestamp with time zone NOT NULL, "
        "CONSTRAINT pk_readings PRIMARY KEY (asset_id, unit_type_id, ts), "
        "FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE CASCADE, "
        "FOREIGN KEY (unit_type_id) REFERENCES unit_types (id) ON DELETE CASCADE) PARTITION BY RANGE (ts)")
    op.execute("CREATE INDEX ix_readings_unit_ts ON readings (unit_type_id, ts)")
    op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    for month in _partition_months(bind):
        following = _month(month.year, month.month + 1)
        op.execute(f"CREATE TABLE readings_{month:%Y_%m} PARTITION OF readings FOR VALUES "
                   f"FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{following:%Y-%m-%d} 00:00:00+00')")
    op.execute(f"INSERT INTO readings ({COLUMNS}) SELECT {COLUMNS} FROM readings_unpartitioned")
    op.execute("DROP TABLE readings_unpartitioned")


def _upgrade_sqlite() -> None:
    op.execute(
        "CREATE TABLE readings_keyed (asset_id INTEGER NOT NULL, unit_type_id INTEGER NOT NULL, ts DATETIME NOT NULL, "
        "value BIGINT NOT NULL, received_at DATETIME NOT NULL, "
        "CONSTRAINT pk_readings PRIMARY KEY (asset_id, unit_type_id, ts), "
        "FOREIGN KEY(asset_id) REFERENCES assets (id) ON DELETE CASCADE, "
        "FOREIGN KEY(unit_type_id) REFERENCES unit_types (id) ON DELETE CASCADE)")
    op.execute(f"INSERT INTO readings_keyed ({COLUMNS}) SELECT {COLUMNS} FROM readings ORDER BY ts")
    op.execute("DROP TABLE readings")
    op.execute("ALTER TABLE readings_keyed RENAME TO readings")
    op.execute("CREATE INDEX ix_readings_unit_ts ON readings (unit_type_id, ts)")


def downgrade() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE readings RENAME TO readings_keyed")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER INDEX ix_readings_unit_ts RENAME TO ix_readings_unit_ts_keyed")
        op.execute("ALTER TABLE readings_keyed RENAME CONSTRAINT pk_readings TO pk_readings_keyed")
        identity = "id bigserial NOT NULL"
    else:
        op.execute("DROP INDEX ix_readings_unit_ts")
        identity = "id INTEGER NOT NULL"
    op.execute(
        f"CREATE TABLE readings ({identity}, asset_id integer NOT NULL, unit_type_id integer NOT NULL, "
        "ts timestamp with time zone NOT NULL, value bigint NOT NULL, received_at timestamp with time zone NOT NULL, "
        "PRIMARY KEY (id), CONSTRAINT uq_readings_asset_unit_ts UNIQUE (asset_id, unit_type_id, ts), "
        "FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE CASCADE, "
        "FOREIGN KEY (unit_type_id) REFERENCES unit_types (id) ON DELETE CASCADE)")
    op.execute(f"INSERT INTO readings ({COLUMNS}) SELECT {COLUMNS} FROM readings_keyed ORDER BY ts")
    op.execute("DROP TABLE readings_keyed")
    op.execute("CREATE INDEX ix_readings_received ON readings (received_at)")
    op.execute("CREATE INDEX ix_readings_unit_ts ON readings (unit_type_id, ts)")
    op.drop_table("archived_months")
