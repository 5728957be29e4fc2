"""Model calls of every convention (plughost_otel_calls), each call counted once; MLflow terms decoded; backfilled.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy.dialects import postgresql, sqlite

from plugins.otel.conventions import counted_calls
from plugins.otel.facts import span_facts

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SPANS_PER_PAGE = 1000
ROWS_PER_STATEMENT = 2000


def upgrade() -> None:
    op.create_table(
        "plughost_otel_calls",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_model", sa.Text),
        sa.Column("response_model", sa.Text),
        sa.Column("provider", sa.Text),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("cached_tokens", sa.BigInteger),
        sa.Column("reasoning_tokens", sa.BigInteger),
        sa.Column("counted", sa.Boolean, nullable=False),
    )
    op.create_index(
        "plughost_otel_calls_request_model", "plughost_otel_calls", ["workspace", "request_model", "trace_id"]
    )
    op.create_index(
        "plughost_otel_calls_response_model", "plughost_otel_calls", ["workspace", "response_model", "trace_id"]
    )
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Read every stored span once, a page at a time: add its call row and its MLflow terms decoded;
    then count each trace's calls again, each once."""
    spans = sa.table(
        "plughost_otel_spans",
        sa.column("workspace"),
        sa.column("trace_id"),
        sa.column("span_id"),
        sa.column("parent_span_id"),
        sa.column("service_name"),
        sa.column("span"),
    )
    terms = sa.table(
        "plughost_otel_terms", sa.column("workspace"), sa.column("key"), sa.column("value"), sa.column("trace_id")
    )
    calls = sa.table(
        "plughost_otel_calls",
        *(sa.column(name) for name in ("workspace", "trace_id", "span_id", "parent_span_id", "kind", "request_model")),
        *(sa.column(name) for name in ("response_model", "provider", "input_tokens", "output_tokens")),
        *(sa.column(name) for name in ("cached_tokens", "reasoning_tokens", "counted")),
    )
    traces = sa.table(
        "plughost_otel_traces",
        sa.column("workspace"),
        sa.column("trace_id"),
        sa.column("llm_calls"),
        sa.column("input_tokens"),
        sa.column("output_tokens"),
    )
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    found_calls: dict[tuple[str, str], dict[str, tuple[bool, int, int]]] = defaultdict(dict)
    position = sa.tuple_(spans.c.workspace, spans.c.trace_id, spans.c.span_id)
    after: tuple[str, str, str] | None = None
    while True:
        query = sa.select(spans).order_by(spans.c.workspace, spans.c.trace_id, spans.c.span_id).limit(SPANS_PER_PAGE)
        page = connection.execute(query if after is None else query.where(position > sa.tuple_(*after))).all()
        if not page:
            break
        new_terms: set[tuple[str, str, str, str]] = set()
        new_calls = []
        for row in page:
            span = Span.FromString(row.span)
            facts = span_facts(span, row.service_name)
            if any(pair.key in ("mlflow.spanType", "mlflow.traceRequestId") for pair in span.attributes):
                new_terms.update((row.workspace, key, value, row.trace_id) for key, value in facts.terms)
            llm = facts.llm
            if llm.model_call:
                found_calls[(row.workspace, row.trace_id)][row.span_id] = (
                    llm.has_usage,
                    llm.input_tokens or 0,
                    llm.output_tokens or 0,
                )
                new_calls.append(
                    {
                        "workspace": row.workspace,
                        "trace_id": row.trace_id,
                        "span_id": row.span_id,
                        "parent_span_id": row.parent_span_id,
                        "kind": llm.kind,
                        "request_model": llm.request_model,
                        "response_model": llm.response_model,
                        "provider": llm.provider,
                        "input_tokens": llm.input_tokens,
                        "output_tokens": llm.output_tokens,
                        "cached_tokens": llm.cached_tokens,
                        "reasoning_tokens": llm.reasoning_tokens,
                        "counted": True,
                    }
                )
        term_rows = [{"workspace": w, "key": k, "value": v, "trace_id": t} for w, k, v, t in sorted(new_terms)]
        for start in range(0, len(term_rows), ROWS_PER_STATEMENT):
            connection.execute(
                dialect.insert(terms).on_conflict_do_nothing(), term_rows[start : start + ROWS_PER_STATEMENT]
            )
        for start in range(0, len(new_calls), ROWS_PER_STATEMENT):
            connection.execute(sa.insert(calls), new_calls[start : start + ROWS_PER_STATEMENT])
        after = (page[-1].workspace, page[-1].trace_id, page[-1].span_id)
    recount(connection, spans, calls, traces, found_calls)


def recount(connection: sa.Connection, spans, calls, traces, found_calls) -> None:  # type: ignore[no-untyped-def]
    """Every trace with calls: which spans carry them, and its summary's calls and tokens."""
    summaries, uncounted = [], []
    for (workspace, trace_id), found in found_calls.items():
        counted = set(found)
        if len(found) > 1:
            links = connection.execute(
                sa.select(spans.c.span_id, spans.c.parent_span_id).where(
                    spans.c.workspace == workspace, spans.c.trace_id == trace_id
                )
            )
            counted = counted_calls({span_id: usage[0] for span_id, usage in found.items()}, dict(links.all()))
            uncounted += [{"w": workspace, "t": trace_id, "s": span_id} for span_id in found if span_id not in counted]
        summaries.append(
            {
                "w": workspace,
                "t": trace_id,
                "calls": len(counted),
                "input": sum(found[span_id][1] for span_id in counted),
                "output": sum(found[span_id][2] for span_id in counted),
            }
        )
    if uncounted:
        connection.execute(
            sa.update(calls)
            .where(
                calls.c.workspace == sa.bindparam("w"),
                calls.c.trace_id == sa.bindparam("t"),
                calls.c.span_id == sa.bindparam("s"),
            )
            .values(counted=False),
            uncounted,
        )
    connection.execute(
        sa.update(traces).values(llm_calls=0, input_tokens=0, output_tokens=0)
    )
    if summaries:
        connection.execute(
            sa.update(traces)
            .where(traces.c.workspace == sa.bindparam("w"), traces.c.trace_id == sa.bindparam("t"))
            .values(llm_calls=sa.bindparam("calls"), input_tokens=sa.bindparam("input"), output_tokens=sa.bindparam("output")),
            summaries,
        )


def downgrade() -> None:
    op.drop_table("plughost_otel_calls")
