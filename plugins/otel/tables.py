"""The otel store's tables: spans, trace summaries, search terms (indexed and waiting) and model calls.

Every table is keyed by workspace first: every read and write is scoped by it. The migrations under
``migrations/`` make them; this is their shape for the queries (see :mod:`.store` and :mod:`.span_writes`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()


spans = Table(
    "plughost_otel_spans",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16)),
    Column("name", Text, nullable=False),
    Column("kind", Integer, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("span", LargeBinary, nullable=False),
    Column("resource", LargeBinary, nullable=False),
    Column("resource_schema_url", Text, nullable=False),
    Column("scope", LargeBinary, nullable=False),
    Column("scope_schema_url", Text, nullable=False),
    Index("plughost_otel_spans_start", "workspace", "trace_id", "start_ns", "span_id"),
)


traces = Table(
    "plughost_otel_traces",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("project", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("root_name", Text),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("span_count", Integer, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("llm_calls", Integer, nullable=False, server_default="0"),
    Column("input_tokens", BigInteger, nullable=False, server_default="0"),
    Column("output_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_usd", Float),
    Column("session_id", Text),
    Index("plughost_otel_traces_start", "workspace", "start_ns", "trace_id"),
    Index("plughost_otel_traces_duration", "workspace", "duration_ns", "trace_id"),
    Index("plughost_otel_traces_spans", "workspace", "span_count", "trace_id"),
    Index("plughost_otel_traces_errors", "workspace", "error_count", "trace_id"),
    Index("plughost_otel_traces_session", "workspace", "session_id", "start_ns", "trace_id"),
)


TOTAL_TOKENS = traces.c.input_tokens + traces.c.output_tokens
Index("plughost_otel_traces_tokens", traces.c.workspace, TOTAL_TOKENS, traces.c.trace_id)


def _term_columns() -> list[Column[Any] | PrimaryKeyConstraint]:
    """The columns of a term table, in :data:`TERM_COLUMNS`' order (one insert of term rows serves both), keyed
    by trace."""
    return [
        Column("workspace", String(63)),
        Column("key", Text),
        Column("value", Text),
        Column("trace_id", String(32)),
        PrimaryKeyConstraint("workspace", "trace_id", "key", "value"),
    ]


terms = Table(
    "plughost_otel_terms",
    metadata,
    # One row per distinct (key, value) that any span of the trace has (see facts.py). The key, by trace
    # first, holds a trace's terms together: checking one trace for a term, or deleting its terms, is one
    # probe, and a new trace's terms fill a page or two. (By term first, each of a trace's ~100 terms went
    # to a random place among that term's rows, trace ids being random: a page written per term.)
    *_term_columns(),
    # The traces holding a term. Its entries of one term end with their row's place in the table (SQLite's
    # rowid, PostgreSQL's tuple id), which grows as rows are added: a new trace's goes where the previous
    # trace's went. On PostgreSQL it has INCLUDE (trace_id), read from the index alone (migration 0009;
    # not declared here: a ``postgresql_include`` would import the PostgreSQL dialect on SQLite too).
    Index("plughost_otel_terms_term", "workspace", "key", "value"),
)


terms_pending = Table(
    "plughost_otel_terms_pending",
    metadata,
    # A SQLite store's terms of the traces acknowledged since its last move into ``terms`` (see term_index.py).
    *_term_columns(),
    sqlite_with_rowid=False,
)


calls = Table(
    "plughost_otel_calls",
    metadata,
    # One row per model-call span (see conventions.py); ``counted``: this span carries the call.
    Column("workspace", String(63), primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16)),
    Column("kind", String(16), nullable=False),
    Column("request_model", Text),
    Column("response_model", Text),
    Column("provider", Text),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cached_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("counted", Boolean, nullable=False),
    Column("cost_usd", Float),
    Index("plughost_otel_calls_request_model", "workspace", "request_model", "trace_id"),
    Index("plughost_otel_calls_response_model", "workspace", "response_model", "trace_id"),
)


SPAN_COLUMNS = tuple(column.name for column in spans.columns)


TERM_COLUMNS = tuple(column.name for column in terms.columns)
