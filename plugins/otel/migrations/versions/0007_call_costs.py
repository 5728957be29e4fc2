"""What each model call cost (plughost_otel_calls.cost_usd) and each trace (plughost_otel_traces.cost_usd); backfilled.

The stored calls are priced as ingest prices them (``facts.call_cost``: the span's reported cost, else the
genai-prices data set at the call's time), reading each call's span once; then each trace's cost is the sum
of its counted calls' (null when none has a price). ``PLUGHOST_PRICES`` is not read here: a migration
runs without the app's settings, so calls of private models stored before it stay unpriced.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from core import Pricing
from plugins.otel.facts import call_cost, span_facts

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CALLS_PER_PAGE = 1000


def upgrade() -> None:
    op.add_column("plughost_otel_calls", sa.Column("cost_usd", sa.Float))
    op.add_column("plughost_otel_traces", sa.Column("cost_usd", sa.Float))
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Price every stored call from its span, a page at a time, then sum each trace's counted calls."""
    calls = sa.table(
        "plughost_otel_calls",
        *(sa.column(name) for name in ("workspace", "trace_id", "span_id", "counted", "cost_usd")),
    )
    spans = sa.table(
        "plughost_otel_spans",
        *(sa.column(name) for name in ("workspace", "trace_id", "span_id", "service_name", "start_ns", "span")),
    )
    traces = sa.table("plughost_otel_traces", sa.column("workspace"), sa.column("trace_id"), sa.column("cost_usd"))
    pricing = Pricing()
    totals: dict[tuple[str, str], float] = defaultdict(float)
    position = sa.tuple_(calls.c.workspace, calls.c.trace_id, calls.c.span_id)
    after: tuple[str, str, str] | None = None
    while True:
        query = (
            sa.select(calls.c.workspace, calls.c.trace_id, calls.c.span_id, calls.c.counted, spans.c.service_name)
            .add_columns(spans.c.start_ns, spans.c.span)
            .join(
                spans,
                sa.and_(
                    spans.c.workspace == calls.c.workspace,
                    spans.c.trace_id == calls.c.trace_id,
                    spans.c.span_id == calls.c.span_id,
                ),
            )
            .order_by(calls.c.workspace, calls.c.trace_id, calls.c.span_id)
            .limit(CALLS_PER_PAGE)
        )
        page = connection.execute(query if after is None else query.where(position > sa.tuple_(*after))).all()
        if not page:
            break
        priced = []
        for row in page:
            cost = call_cost(span_facts(Span.FromString(row.span), row.service_name).llm, pricing, row.start_ns)
            if cost is None:
                continue
            priced.append({"w": row.workspace, "t": row.trace_id, "s": row.span_id, "cost": cost})
            if row.counted:
                totals[(row.workspace, row.trace_id)] += cost
        if priced:
            connection.execute(
                sa.update(calls)
                .where(
                    calls.c.workspace == sa.bindparam("w"),
                    calls.c.trace_id == sa.bindparam("t"),
                    calls.c.span_id == sa.bindparam("s"),
                )
                .values(cost_usd=sa.bindparam("cost")),
                priced,
            )
        after = (page[-1].workspace, page[-1].trace_id, page[-1].span_id)
    if totals:
        connection.execute(
            sa.update(traces)
            .where(traces.c.workspace == sa.bindparam("w"), traces.c.trace_id == sa.bindparam("t"))
            .values(cost_usd=sa.bindparam("cost")),
            [{"w": workspace, "t": trace_id, "cost": cost} for (workspace, trace_id), cost in totals.items()],
        )


def downgrade() -> None:
    op.drop_column("plughost_otel_traces", "cost_usd")
    op.drop_column("plughost_otel_calls", "cost_usd")
