"""The jobs table, which is also the queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plughost_jobs_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("requeue_lost", sa.Boolean, nullable=False),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("run_after", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires", sa.Float),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("plughost_jobs_queue", "plughost_jobs_jobs", ["status", "run_after"])
    op.create_index("plughost_jobs_listing", "plughost_jobs_jobs", ["workspace", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("plughost_jobs_jobs")
