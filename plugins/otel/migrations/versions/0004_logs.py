"""OTLP log records (plughost_otel_logs), tied to their span by trace and span id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plughost_otel_logs",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("record_id", sa.String(32), primary_key=True),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("severity_number", sa.Integer, nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("resource", sa.LargeBinary, nullable=False),
        sa.Column("scope", sa.LargeBinary, nullable=False),
    )
    op.create_index("plughost_otel_logs_trace", "plughost_otel_logs", ["workspace", "trace_id", "span_id"])
    op.create_index("plughost_otel_logs_time", "plughost_otel_logs", ["workspace", "time_ns"])


def downgrade() -> None:
    op.drop_table("plughost_otel_logs")
