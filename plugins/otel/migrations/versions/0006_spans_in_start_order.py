"""An index on each trace's spans in start order: a trace is read a piece at a time from any point.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "plughost_otel_spans_start", "plughost_otel_spans", ["workspace", "trace_id", "start_ns", "span_id"]
    )


def downgrade() -> None:
    op.drop_index("plughost_otel_spans_start", "plughost_otel_spans")
