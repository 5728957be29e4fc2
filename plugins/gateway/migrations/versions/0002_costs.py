"""What each provider attempt cost (plughost_gateway_usage.cost_usd), and a model's own price; backfilled.

A model may carry its own price (``input_cost_per_mtok``, ``output_cost_per_mtok``: US dollars per million
tokens, for private models). The usage recorded before is priced as the gateway prices it now
(``core.pricing``, from the attempt's provider, its model's provider model and its tokens, at the
time of the call) while its model still exists; ``PLUGHOST_PRICES`` is not read here (a migration
runs without the app's settings).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from core import Pricing

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROWS_PER_PAGE = 2000


def upgrade() -> None:
    op.add_column("plughost_gateway_usage", sa.Column("cost_usd", sa.Float))
    op.add_column("plughost_gateway_models", sa.Column("input_cost_per_mtok", sa.Float))
    op.add_column("plughost_gateway_models", sa.Column("output_cost_per_mtok", sa.Float))
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    usage = sa.table(
        "plughost_gateway_usage",
        *(sa.column(name) for name in ("id", "workspace", "model", "provider", "created_at", "cost_usd")),
        *(sa.column(name) for name in ("prompt_tokens", "completion_tokens")),
    )
    models = sa.table("plughost_gateway_models", sa.column("workspace"), sa.column("name"), sa.column("model"))
    pricing = Pricing()
    after = 0
    while True:
        page = connection.execute(
            sa.select(usage, models.c.model.label("provider_model"))
            .join(models, sa.and_(models.c.workspace == usage.c.workspace, models.c.name == usage.c.model))
            .where(usage.c.id > after)
            .order_by(usage.c.id)
            .limit(ROWS_PER_PAGE)
        ).all()
        if not page:
            return
        priced = [
            {"i": row.id, "cost": cost}
            for row in page
            if (
                cost := pricing.cost(
                    row.provider,
                    [row.provider_model],
                    row.prompt_tokens,
                    row.completion_tokens,
                    at_ns=int(row.created_at * 1e9),
                )
            )
            is not None
        ]
        if priced:
            connection.execute(
                sa.update(usage).where(usage.c.id == sa.bindparam("i")).values(cost_usd=sa.bindparam("cost")), priced
            )
        after = page[-1].id


def downgrade() -> None:
    op.drop_column("plughost_gateway_models", "output_cost_per_mtok")
    op.drop_column("plughost_gateway_models", "input_cost_per_mtok")
    op.drop_column("plughost_gateway_usage", "cost_usd")
