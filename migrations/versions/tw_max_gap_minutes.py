"""Time-weighted usage: unit_types.max_gap_minutes (default 60) and room for the `time_weighted` aggregation.

unit_types.aggregation and buckets.aggregation widen from VARCHAR(10) to VARCHAR(20) on PostgreSQL
("time_weighted" has 13 characters). SQLite does not enforce VARCHAR lengths, so its tables are left as they are
(a batch "recreate" of buckets would also drop and re-create a table other tables reference).

Revision ID: tw_max_gap_minutes
Revises: user_session_version
Create Date: 2026-11-28 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "tw_max_gap_minutes"
down_revision = "user_session_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit_types", sa.Column("max_gap_minutes", sa.Integer(), server_default="60", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        for table in ("unit_types", "buckets"):
            op.alter_column(table, "aggregation", type_=sa.String(length=20), existing_type=sa.String(length=10),
                            existing_nullable=False, existing_server_default="sum")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("unit_types", "buckets"):
            op.alter_column(table, "aggregation", type_=sa.String(length=10), existing_type=sa.String(length=20),
                            existing_nullable=False, existing_server_default="sum")
    op.drop_column("unit_types", "max_gap_minutes")  # SQLite >= 3.35 drops a column in place
