"""Spans and trace summaries.

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
        "plughost_otel_spans",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("span", sa.LargeBinary, nullable=False),
        sa.Column("resource", sa.LargeBinary, nullable=False),
        sa.Column("resource_schema_url", sa.Text, nullable=False),
        sa.Column("scope", sa.LargeBinary, nullable=False),
        sa.Column("scope_schema_url", sa.Text, nullable=False),
    )
    op.create_table(
        "plughost_otel_traces",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("root_name", sa.Text),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("span_count", sa.Integer, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
    )
    op.create_index("plughost_otel_traces_start", "plughost_otel_traces", ["workspace", "start_ns", "trace_id"])


def downgrade() -> None:
    op.drop_table("plughost_otel_traces")
    op.drop_table("plughost_otel_spans")
