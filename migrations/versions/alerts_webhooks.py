"""Silent assets, usage anomalies and webhooks: unit_types.silent_after_hours, webhooks, their events and deliveries,
and the alert episodes that make silent/anomaly/projected-over events fire once per episode.

Revision ID: alerts_webhooks
Revises: tw_max_gap_minutes
Create Date: 2026-11-28 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = "alerts_webhooks"
down_revision = "tw_max_gap_minutes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("unit_types") as batch_op:
        batch_op.add_column(sa.Column("silent_after_hours", sa.Integer(), server_default="24", nullable=False))
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_webhook_events_pending", "webhook_events", ["dispatched_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.String(40), sa.ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_webhook_event", "webhook_deliveries", ["webhook_id", "event_id"])
    op.create_table(
        "alert_episodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(40), nullable=True),
    )
    op.create_index("uq_alert_episodes_open", "alert_episodes", ["kind", "subject"], unique=True,
                    sqlite_where=sa.text("cleared_at IS NULL"), postgresql_where=sa.text("cleared_at IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_alert_episodes_open", table_name="alert_episodes")
    op.drop_table("alert_episodes")
    op.drop_index("ix_webhook_deliveries_webhook_event", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_events_pending", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("webhooks")
    if op.get_bind().dialect.name == "sqlite":
        # natively (SQLite >= 3.35): a batch "recreate" would drop unit_types, which buckets' RESTRICT keys refuse
        op.execute("ALTER TABLE unit_types DROP COLUMN silent_after_hours")
    else:
        op.drop_column("unit_types", "silent_after_hours")
