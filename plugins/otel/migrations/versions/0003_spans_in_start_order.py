"""An index on each trace's spans in start order: a trace is read a piece at a time from any point.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "plughost_otel_spans_start", "plughost_otel_spans", ["workspace", "trace_id", "start_ns", "span_id"]
    )


def downgrade() -> None:
    op.drop_index("plughost_otel_spans_start", "plughost_otel_spans")
