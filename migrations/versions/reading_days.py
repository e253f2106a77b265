"""Readings by day: `reading_days` (count, sum and max per asset, unit type and UTC day) and its sealed horizon.

Billing adds up a sealed day's row instead of its raw readings (database/reading_days.py). Nothing is sealed by the
upgrade: until `flask --app app seal-reading-days` or the nightly job runs, billing reads the readings as before.

Revision ID: reading_days
Revises: readings_key_covers_value
Create Date: 2026-11-27 01:50:00
"""
import sqlalchemy as sa
from alembic import op

# millionths: a day's sum may pass a bigint on PostgreSQL (models.MicroTotal)
TOTAL = sa.BigInteger().with_variant(sa.Numeric(38, 0), "postgresql")

revision = "reading_days"
down_revision = "readings_key_covers_value"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_days",
        sa.Column("asset_id", sa.Integer(), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("unit_type_id", sa.Integer(), sa.ForeignKey("unit_types.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", TOTAL, nullable=False),
        sa.Column("top", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "unit_type_id", "day"),
    )
    op.create_table(
        "reading_days_sealed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("reading_days_sealed")
    op.drop_table("reading_days")
