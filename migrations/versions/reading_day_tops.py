"""Each sealed day's highest readings per asset and unit type (`reading_day_tops`), for billing's p95.

Days sealed before this upgrade have no tops: billing reads their raw readings for p95, as before, exactly. The
nightly job keeps the tops of the days it seals from now on; `flask --app app seal-reading-days --recount` counts
the days sealed before again.

Revision ID: reading_day_tops
Revises: reading_days
Create Date: 2026-11-27 11:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "reading_day_tops"
down_revision = "reading_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_day_tops",
        sa.Column("asset_id", sa.Integer(), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("unit_type_id", sa.Integer(), sa.ForeignKey("unit_types.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "unit_type_id", "day", "rank"),
    )


def downgrade() -> None:
    op.drop_table("reading_day_tops")
