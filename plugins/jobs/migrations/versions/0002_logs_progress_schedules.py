"""Job progress, captured logs, and schedules.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plughost_jobs_jobs") as table:
        table.add_column(sa.Column("progress", sa.Float))
        table.add_column(sa.Column("progress_message", sa.Text))
        table.add_column(sa.Column("schedule_id", sa.String(32)))
        table.add_column(sa.Column("scheduled_for", sa.Float))
    op.create_table(
        "plughost_jobs_logs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("offset", sa.BigInteger, primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "plughost_jobs_schedules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("declared_by", sa.String(64)),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("cron", sa.String(200)),
        sa.Column("interval_seconds", sa.Float),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("catch_up", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("next_run", sa.Float, nullable=False),
        sa.Column("last_run", sa.Float),
        sa.Column("last_job_id", sa.String(32)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("plughost_jobs_schedules_name", "plughost_jobs_schedules", ["workspace", "name"], unique=True)
    op.create_index("plughost_jobs_schedules_due", "plughost_jobs_schedules", ["paused", "next_run"])


def downgrade() -> None:
    op.drop_table("plughost_jobs_schedules")
    op.drop_table("plughost_jobs_logs")
    with op.batch_alter_table("plughost_jobs_jobs") as table:
        for column in ("scheduled_for", "schedule_id", "progress_message", "progress"):
            table.drop_column(column)
