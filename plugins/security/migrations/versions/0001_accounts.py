"""Accounts: users and API keys, their role per workspace, console sessions.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plughost_security_principals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_prefix", sa.String(32), unique=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("limits", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.UniqueConstraint("kind", "name", name="plughost_security_principal_name"),
    )
    op.create_table(
        "plughost_security_grants",
        sa.Column(
            "principal_id",
            sa.Integer,
            sa.ForeignKey("plughost_security_principals.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("role", sa.String(8), nullable=False),
    )
    op.create_table(
        "plughost_security_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "principal_id",
            sa.Integer,
            sa.ForeignKey("plughost_security_principals.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("plughost_security_sessions_principal_id", "plughost_security_sessions", ["principal_id"])


def downgrade() -> None:
    op.drop_table("plughost_security_sessions")
    op.drop_table("plughost_security_grants")
    op.drop_table("plughost_security_principals")
