"""Search terms per trace, and GenAI usage (LLM calls, tokens) in trace summaries; backfilled.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from plugins.otel.facts import span_facts

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SPANS_PER_PAGE = 1000
TERMS_PER_STATEMENT = 4000


def upgrade() -> None:
    for name, kind in (("llm_calls", sa.Integer), ("input_tokens", sa.BigInteger), ("output_tokens", sa.BigInteger)):
        op.add_column("plughost_otel_traces", sa.Column(name, kind, nullable=False, server_default="0"))
    op.create_table(
        "plughost_otel_terms",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column("trace_id", sa.String(32), primary_key=True),
    )
    op.create_index("plughost_otel_terms_trace", "plughost_otel_terms", ["workspace", "trace_id"])
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Read every stored span once, a page at a time: insert its terms, sum its trace's GenAI usage."""
    spans = sa.table(
        "plughost_otel_spans", sa.column("workspace"), sa.column("trace_id"), sa.column("span_id"), sa.column("service_name"), sa.column("span")
    )
    terms = sa.table("plughost_otel_terms", sa.column("workspace"), sa.column("key"), sa.column("value"), sa.column("trace_id"))
    traces = sa.table(
        "plughost_otel_traces",
        sa.column("workspace"),
        sa.column("trace_id"),
        sa.column("llm_calls"),
        sa.column("input_tokens"),
        sa.column("output_tokens"),
    )
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    usage: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    position = sa.tuple_(spans.c.workspace, spans.c.trace_id, spans.c.span_id)
    after: tuple[str, str, str] | None = None
    while True:
        query = sa.select(spans).order_by(spans.c.workspace, spans.c.trace_id, spans.c.span_id).limit(SPANS_PER_PAGE)
        page = connection.execute(query if after is None else query.where(position > sa.tuple_(*after))).all()
        if not page:
            break
        found: set[tuple[str, str, str, str]] = set()
        for row in page:
            facts = span_facts(Span.FromString(row.span), row.service_name)
            found.update((row.workspace, key, value, row.trace_id) for key, value in facts.terms)
            if facts.llm_call:
                totals = usage[(row.workspace, row.trace_id)]
                totals[0] += 1
                totals[1] += facts.input_tokens
                totals[2] += facts.output_tokens
        rows = [{"workspace": w, "key": k, "value": v, "trace_id": t} for w, k, v, t in sorted(found)]
        for start in range(0, len(rows), TERMS_PER_STATEMENT):
            connection.execute(dialect.insert(terms).on_conflict_do_nothing(), rows[start : start + TERMS_PER_STATEMENT])
        after = (page[-1].workspace, page[-1].trace_id, page[-1].span_id)
    if usage:
        update = (
            sa.update(traces)
            .where(traces.c.workspace == sa.bindparam("w"), traces.c.trace_id == sa.bindparam("t"))
            .values(llm_calls=sa.bindparam("calls"), input_tokens=sa.bindparam("input"), output_tokens=sa.bindparam("output"))
        )
        connection.execute(update, [{"w": w, "t": t, "calls": c, "input": i, "output": o} for (w, t), (c, i, o) in usage.items()])


def downgrade() -> None:
    op.drop_table("plughost_otel_terms")
    for name in ("output_tokens", "input_tokens", "llm_calls"):
        op.drop_column("plughost_otel_traces", name)
