"""The GenAI client metrics' data points (plughost_otel_metric_points).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plughost_otel_metric_points",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("point_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("bucket_counts", sa.Text, nullable=False),
        sa.Column("explicit_bounds", sa.Text, nullable=False),
        sa.Column("temporality", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "plughost_otel_metric_points_series", "plughost_otel_metric_points", ["workspace", "name", "time_ns"]
    )


def downgrade() -> None:
    op.drop_table("plughost_otel_metric_points")
