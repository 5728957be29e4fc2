"""Usage counters of gateway keys: calls, tokens, spend and refusals per key and time window.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plughost_security_usage",
        sa.Column("key_name", sa.String(200), primary_key=True),
        sa.Column("window", sa.String(32), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("spend_usd", sa.Float, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plughost_security_usage")
