"""Covering index on billing_readings for the reports' per-period sums.

Revision ID: 8c3d2a61f0b7
Revises: 5f72e40b0acc
Create Date: 2026-11-25 16:08:00
"""
from alembic import op

revision = "8c3d2a61f0b7"
down_revision = "5f72e40b0acc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("billing_readings") as batch_op:
        batch_op.create_index("ix_billing_period_totals", ["period_start", "client_id", "bucket_id", "total_usage",
                                                           "commit", "base_cost", "overage_cost", "buffer_cost",
                                                           "buffer_units", "final_cost"])


def downgrade() -> None:
    with op.batch_alter_table("billing_readings") as batch_op:
        batch_op.drop_index("ix_billing_period_totals")
