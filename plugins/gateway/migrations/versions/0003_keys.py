"""Usage per plughost API key: the key that made each provider attempt and the attempt's place in its call's
fallback order (``plughost_gateway_usage.key_name``, ``.attempt``), and the calls a key's limits refused
before they reached the gateway (``plughost_gateway_refusals``). Earlier attempts have no key and count as
first attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("plughost_gateway_usage", sa.Column("key_name", sa.String(200)))
    op.add_column("plughost_gateway_usage", sa.Column("attempt", sa.Integer))
    op.create_table(
        "plughost_gateway_refusals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(63)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("plughost_gateway_refusals_recent", "plughost_gateway_refusals", ["workspace", "created_at"])


def downgrade() -> None:
    op.drop_index("plughost_gateway_refusals_recent", "plughost_gateway_refusals")
    op.drop_table("plughost_gateway_refusals")
    op.drop_column("plughost_gateway_usage", "attempt")
    op.drop_column("plughost_gateway_usage", "key_name")
