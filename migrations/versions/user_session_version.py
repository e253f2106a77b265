"""users.session_version: bumped to end every login session of a user (logout, new password, role, deactivation).

Revision ID: user_session_version
Revises: f1n4l1ne0001
Create Date: 2026-11-27 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "user_session_version"
down_revision = "f1n4l1ne0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
