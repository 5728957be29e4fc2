"""Spans and trace summaries in SQL (SQLite or PostgreSQL), every read and write scoped by workspace.

- Spans are keyed by (workspace, trace_id, span_id) and inserted with
  ``ON CONFLICT DO NOTHING``: the same span sent twice is stored once.
- A trace's summary row is merged, in one atomic upsert (``INSERT ... ON CONFLICT
  DO UPDATE`` with expressions on the stored values), with the spans that the
  insert actually added: earliest start, latest end, counts added, the root's
  name and service. Concurrent writers in any number of processes cannot lose an
  update, and a trace that arrives over several requests (children first) merges
  to what one writer would have made.
- A span the database refuses (after the decoder's own checks) is isolated by
  writing halves of the group again, so it never fails the other requests.
- Each trace's distinct search terms (span attributes, span names, services; see
  ``facts.py``) are rows of ``plughost_otel_terms``, keyed for the filters of the
  list (on a SQLite file, after a moment in ``plughost_otel_terms_pending``: see
  ``term_index.py``). Each model-call span (an LLM or embedding call, in any convention, see
  ``conventions.py``) is a row of ``plughost_otel_calls``: its models, provider and
  tokens, its cost in US dollars (``cost_usd``, priced at ingest, see ``core.pricing``; null when
  no price is known), and whether it carries the call (``counted``). The summary holds the trace's
  LLM calls, tokens and cost, each call once: added as spans arrive, and counted again
  from the trace's call rows (in the same transaction, after the summary row is locked)
  once a trace has two calls or more, since nested spans of one call must count once.
- Writes are group-committed: one writer stores, in a single transaction, every
  request that arrived while the previous write ran. A lone request is written
  at once; under load the per-transaction costs are shared, and SQLite never
  sees two writers contend for its lock.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import heapq
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Result, Row
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.util import await_

from core import Pricing, empty, run_bulk
from core.context import current_workspace
from core.database import on_conflict_insert, synchronous_twin
from core.unavailable import unavailable

from .conventions import StoredCall, counted_calls
from .decode import INT64_MAX, STATUS_ERROR
from .facts import MAX_TERM_CHARS, SPAN_NAME_KEY
from .sqlite_writer import CompiledInsert, SqliteWriter

if TYPE_CHECKING:
    from .sorting import Order

T = TypeVar("T")
VALUE_ERRORS = (DataError, IntegrityError, ValueError, OverflowError, TypeError)
"""What a database or its driver raises for a value it cannot store (not for being down or busy)."""

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

SPAN_ROWS_PER_STATEMENT = 1000
"""Rows per INSERT: 16 columns x 1000 stays under PostgreSQL's 32,767 bind parameters (and SQLite's
32,766), and the event loop gets a turn between statements of a big request."""
SPANS_PER_PAGE = 200
"""Span rows read per query when a trace is streamed."""
SUMMARIES_PER_QUERY = 500
"""Trace ids per ``IN (...)`` when summaries are read by id."""
TERM_ROWS_PER_STATEMENT = 4000
"""4 columns x 4000 rows, under the same limits."""
TERMS_PER_STEP = 10_000
"""Terms put in a set or sorted per C call (a few milliseconds of holding the GIL)."""
SORT_VALUE = "sort_value"
"""The label of the order's expression among a listed row's columns (see :class:`.sorting.Order`)."""
SORTED_ON_LOOP_ROWS = 2000
"""A group of up to this many span rows is put in key order on the event loop (well under a millisecond),
not in a bulk thread: the hop there and back cost more than the sort."""
TRACES_PER_RECOUNT = 1000
"""Traces whose calls are counted again per query (an ``IN`` list under the bind parameter limits)."""
FEW_TRACES = 1000
"""A term that fewer traces hold is read first when SQLite filters the list by it (see :meth:`SpanStore._has_term`);
one held more widely is checked on each listed trace (a page of them is soon found)."""
MAX_ISOLATED_REJECTIONS = 16
"""A store error that more spans than this fail alone is not about the data: the whole group gets it."""


@dataclass
class Stored:
    """What :meth:`SpanStore.add` did with one call's rows: how many the store refused, and why (up to 5 reasons)."""

    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)


@dataclass(frozen=True)
class TraceFilter:
    service: str | None = None
    project: str | None = None
    status: str | None = None  # "ok" | "error"
    start_after_ns: int | None = None
    start_before_ns: int | None = None
    min_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # every pair on some span of the trace
    span_name: str | None = None
    model: str | None = None  # the request or response model of some model call, in any convention
    min_tokens: int | None = None  # input + output tokens of the trace's LLM calls
    session: str | None = None  # the trace's session (see ``session_id`` in :func:`summarise`)


SpanPosition = tuple[int, str]
"""A span's place in its trace's start order: ``(start_ns, span_id)``."""

Entry = tuple[Stored, dict[str, Any]]
"""A row waiting to be written, with the result of the ``add`` call it came from."""


class Compute(Protocol):
    """How a write runs its CPU-heavy steps: where it is (in a bulk thread), or in a bulk thread (on the loop)."""

    def __call__(self, work: Callable[[], T]) -> T: ...


def _here(work: Callable[[], T]) -> T:
    return work()


def _in_bulk_thread(work: Callable[[], T]) -> T:
    """From synchronous code that SQLAlchemy runs on the event loop (``run_sync``): ``work`` in a bulk thread."""
    return await_(run_bulk(work))


class SpanStore:
    def __init__(self, engine: AsyncEngine, pricing: Pricing | None = None) -> None:
        self.engine = engine
        self.pricing = pricing or Pricing()
        """How the decoder prices the model calls of the spans given to :meth:`add` (see :func:`.decode.to_rows`)."""
        self._dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
        self._insert_spans = (
            on_conflict_insert(spans, self._dialect)
            .on_conflict_do_nothing()
            .returning(spans.c.workspace, spans.c.trace_id, spans.c.span_id)
        )
        self._merge_summaries = summary_merge(self._dialect).returning(
            traces.c.workspace, traces.c.trace_id, traces.c.llm_calls
        )
        self._insert_terms = on_conflict_insert(terms, self._dialect).on_conflict_do_nothing()
        self._waiting: list[tuple[list[dict[str, Any]], Stored, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None
        twin = synchronous_twin(engine)
        self._sqlite = (
            None
            if twin is None
            else SqliteWriter(
                twin,
                CompiledInsert(sqlite.insert(spans).on_conflict_do_nothing(), twin, SPAN_COLUMNS),
                CompiledInsert(sqlite.insert(terms_pending).on_conflict_do_nothing(), twin, TERM_COLUMNS),
                CompiledInsert(self._merge_summaries, twin),
            )
        )
        self.committed: Callable[[list[dict[str, Any]]], None] = lambda rows: None
        """Told of each :meth:`add`'s rows once they are committed (the ``plughost_traces_stored`` event)."""

    async def add(self, rows: list[dict[str, Any]]) -> Stored:
        """Store spans and merge them into their traces' summaries; returns once they are committed.

        A span the database refuses is left out alone and counted in the result; the
        others are stored. Raises when the store is down or busy (nothing to blame on the data).
        """
        stored = Stored()
        if not rows:
            return stored
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, stored, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())
        await asyncio.shield(done)  # a client that leaves does not cancel the others' write
        self.committed(rows)
        return stored

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                calls = [(rows, stored) for rows, stored, _ in batch]
                small = sum(len(rows) for rows, _ in calls) <= SORTED_ON_LOOP_ROWS
                entries = _sorted_entries(calls) if small else await run_bulk(_sorted_entries, calls)
                for stored, reason in await self._write_isolating(entries):
                    stored.refuse(reason)
            except Exception as error:  # every request of the batch learns it was not stored
                for _, _, done in batch:
                    done.set_exception(error)
            else:
                for _, _, done in batch:
                    done.set_result(None)

    async def _write_isolating(self, entries: list[Entry]) -> list[tuple[Stored, str]]:
        """Write ``entries``; if the store refuses them, write each half alone, down to the single
        spans it refuses, so one unstorable span never fails the rest of its group."""
        try:
            await self._write([row for _, row in entries])
            return []
        except (*VALUE_ERRORS, StatementError) as error:
            if unavailable(error) is not None or not _about_a_value(error):
                raise
            if len(entries) == 1:
                stored, row = entries[0]
                return [
                    (stored, f"span {row['name'][:80]!r} ({row['span_id']}): the store refused it ({_short(error)})")
                ]
            half = len(entries) // 2
            refused = await self._write_isolating(entries[:half])
            refused += await self._write_isolating(entries[half:])
            if len(refused) > MAX_ISOLATED_REJECTIONS:
                raise
            return refused

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        """One transaction: insert the spans (sorted, so concurrent writers lock in one order), then
        merge what was new into the summaries with an atomic upsert on the stored values.

        On a SQLite file the whole transaction runs in one bulk thread (see :mod:`.sqlite_writer`), and a checkpoint
        of the WAL follows in another (see :mod:`.wal_checkpoints`). On
        PostgreSQL (asyncpg) the statements run on the event loop, which gets a turn between them, and
        the summaries and terms are computed in a bulk thread.
        """
        if self._sqlite is not None:
            async with self._sqlite.lock:
                await run_bulk(self._write_in_thread, rows)
            self._sqlite.checkpoints.after_write()
            self._sqlite.term_index.index_soon()
        else:
            async with self.engine.begin() as connection:
                await connection.run_sync(lambda sync: _write_rows(_Statements(self, sync), rows, _in_bulk_thread))

    def _write_in_thread(self, rows: list[dict[str, Any]]) -> None:
        assert self._sqlite is not None
        with self._sqlite.transaction() as transaction:
            _write_rows(transaction, rows, _here)

    async def __aenter__(self) -> SpanStore:
        """The store of a running app: on a SQLite file, terms that an earlier run left waiting are indexed."""
        if self._sqlite is not None:
            self._sqlite.term_index.index_soon()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the SQLite writer's connections, after indexing the waiting terms and a checkpoint (the async
        engine is the host's to dispose)."""
        if self._sqlite is not None:
            await self._sqlite.term_index.aclose()
            await self._sqlite.checkpoints.aclose()
            self._sqlite.engine.dispose()

    async def list_traces(
        self,
        where: TraceFilter,
        limit: int,
        page_token: str | None,
        order: Order | None = None,
        *,
        workspace: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """In ``order`` (newest first by default), in ``workspace`` (the current one when ``None``); returns a
        page and the next page's token (``None`` at the end)."""
        if order is None:
            from .sorting import NEWEST_FIRST  # sorting orders by this module's tables

            order = NEWEST_FIRST
        workspace = workspace or current_workspace()
        query = select(traces, order.expression.label(SORT_VALUE)).where(traces.c.workspace == workspace)
        if where.project is not None:
            query = query.where(traces.c.project == where.project)
        if where.session is not None:
            query = query.where(traces.c.session_id == where.session)
        if where.status == "error":
            query = query.where(traces.c.error_count > 0)
        elif where.status == "ok":
            query = query.where(traces.c.error_count == 0)
        if where.start_after_ns is not None:
            query = query.where(traces.c.start_ns >= where.start_after_ns)
        if where.start_before_ns is not None:
            query = query.where(traces.c.start_ns < where.start_before_ns)
        if where.min_duration_ns is not None:
            query = query.where(traces.c.duration_ns >= where.min_duration_ns)
        if where.min_tokens is not None:
            query = query.where(where.min_tokens <= TOTAL_TOKENS)
        if where.model is not None:
            query = query.where(_has_model(where.model))
        if page_token:
            query = query.where(order.after(page_token))
        query = query.order_by(*order.order_by()).limit(limit + 1)
        wanted_terms = [
            *([("service.name", where.service)] if where.service is not None else []),
            *where.attributes,
            *([(SPAN_NAME_KEY, where.span_name)] if where.span_name is not None else []),
        ]
        async with self.engine.connect() as connection:
            for key, value in wanted_terms:
                query = query.where(await self._has_term(connection, workspace, key, value))
            found = [dict(row._mapping) for row in await connection.execute(query)]
        page, more = found[:limit], len(found) > limit
        token = order.token(page[-1]) if more else None
        for row in page:
            del row[SORT_VALUE]
        return page, token

    async def _has_term(self, connection: AsyncConnection, workspace: str, key: str, value: str) -> ColumnElement[bool]:
        """Some span of the listed trace has the term.

        PostgreSQL's planner starts from the term's traces (the term index) or from the listed traces, as its
        statistics say. SQLite's checks each listed trace for the term, through the key: by trace, a probe at a
        random place for each, which a common term soon ends (a page of traces found) but a rare one does not.
        So on SQLite a term that fewer than :data:`FEW_TRACES` traces hold is read first, through the term
        index, and the list takes those traces by id."""
        held_by_listed = exists().where(
            terms.c.workspace == traces.c.workspace,
            terms.c.key == key,
            terms.c.value == value,
            terms.c.trace_id == traces.c.trace_id,
        )
        if self._dialect != "sqlite":
            return held_by_listed
        # SQLite's recent traces may have their terms waiting for the term index (see term_index.py)
        waiting = terms_pending.c
        waiting_term = and_(waiting.workspace == workspace, waiting.key == key, waiting.value == value)
        # by rowid: asked for trace ids, SQLite's planner walks the key (it covers them) over the workspace
        rowid: ColumnElement[int] = literal_column("rowid")
        holding = (
            select(rowid)
            .select_from(terms)
            .where(terms.c.workspace == workspace, terms.c.key == key, terms.c.value == value)
            .limit(FEW_TRACES)
        )
        # one statement, one snapshot: a trace moved meanwhile is in one table or the other, never neither
        indexed_or_waiting = (
            select(terms.c.trace_id)
            .where(rowid.in_(holding))
            .union_all(select(waiting.trace_id).where(waiting_term))
            .limit(FEW_TRACES)
        )
        trace_ids = (await connection.scalars(indexed_or_waiting)).all()
        if len(trace_ids) < FEW_TRACES:  # all of them
            return traces.c.trace_id.in_(trace_ids)
        return or_(
            held_by_listed,
            exists().where(waiting_term, waiting.trace_id == traces.c.trace_id),
        )

    async def get_summary(self, workspace: str, trace_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            found = (
                await connection.execute(
                    select(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
                )
            ).first()
        return None if found is None else dict(found._mapping)

    async def get_summaries(self, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        """The summary rows of those of ``trace_ids`` that exist, in no particular order."""
        found: list[dict[str, Any]] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(trace_ids), SUMMARIES_PER_QUERY):
                chosen = trace_ids[start : start + SUMMARIES_PER_QUERY]
                query = select(traces).where(traces.c.workspace == workspace, traces.c.trace_id.in_(chosen))
                found += [dict(row._mapping) for row in await connection.execute(query)]
        return found

    async def span_pages(
        self, workspace: str, trace_id: str, page_size: int = SPANS_PER_PAGE, **options: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """:meth:`span_tuples` (with its ``options``), each row as a dict by column name."""
        names = span_row_names(options.get("columns", SPAN_COLUMNS))
        async for page in self.span_tuples(workspace, trace_id, page_size, **options):
            yield [dict(zip(names, row, strict=True)) for row in page]

    async def span_tuples(
        self,
        workspace: str,
        trace_id: str,
        page_size: int = SPANS_PER_PAGE,
        *,
        after: SpanPosition | None = None,
        limit: int | None = None,
        columns: tuple[str, ...] = SPAN_COLUMNS,
    ) -> AsyncIterator[Sequence[Row[Any]]]:
        """The trace's span rows in start order (then span id), a page at a time: those after
        ``after``, at most ``limit`` of them (all when ``None``), as tuples of :func:`span_row_names`
        ``(columns)`` (no dict per row: most of the CPU of reading a big trace). A connection is held
        only while a page is read."""
        names = span_row_names(columns)
        wanted = [spans.c[name] for name in names]
        start_at, id_at = names.index("start_ns"), names.index("span_id")
        query = (
            select(*wanted)
            .where(spans.c.workspace == workspace, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.span_id)
        )
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page_query = query.limit(size)
            if after is not None:  # a row value: both stores walk the start index from there (an OR made
                # SQLite scan the trace's spans from its first for every page)
                page_query = page_query.where(tuple_(spans.c.start_ns, spans.c.span_id) > tuple_(*after))
            async with self.engine.connect() as connection:
                page = (await connection.execute(page_query)).all()
            if page:
                yield page
            if len(page) < size:
                return
            if left is not None:
                left -= len(page)
            after = page[-1][start_at], page[-1][id_at]

    async def get_spans(self, workspace: str, trace_id: str, span_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored span rows of those of ``span_ids`` that exist, in no particular order."""
        found: list[dict[str, Any]] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(span_ids), SUMMARIES_PER_QUERY):
                chosen = span_ids[start : start + SUMMARIES_PER_QUERY]
                query = select(spans).where(
                    spans.c.workspace == workspace, spans.c.trace_id == trace_id, spans.c.span_id.in_(chosen)
                )
                found += as_dicts(await connection.execute(query))
        return found

    async def get_span(self, workspace: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
        """One stored span row, or ``None``."""
        query = select(spans).where(
            spans.c.workspace == workspace, spans.c.trace_id == trace_id, spans.c.span_id == span_id
        )
        async with self.engine.connect() as connection:
            found = (await connection.execute(query)).first()
        return None if found is None else dict(found._mapping)

    async def get_trace(self, trace_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The trace's summary and its span rows in start order, or ``None``."""
        workspace = current_workspace()
        async with self.engine.connect() as connection:
            summary = (
                await connection.execute(
                    select(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
                )
            ).first()
            if summary is None:
                return None
            rows = await connection.execute(
                select(spans)
                .where(spans.c.workspace == workspace, spans.c.trace_id == trace_id)
                .order_by(spans.c.start_ns, spans.c.span_id)
            )
            return dict(summary._mapping), as_dicts(rows)

    async def stored_calls(self, workspace: str, trace_id: str) -> dict[str, StoredCall]:
        """The trace's model-call spans: whether each carries its call, its cost and its tokens."""
        async with self.engine.connect() as connection:
            found = await connection.execute(
                select(
                    calls.c.span_id, calls.c.counted, calls.c.cost_usd, calls.c.input_tokens, calls.c.output_tokens
                ).where(calls.c.workspace == workspace, calls.c.trace_id == trace_id)
            )
            return {span_id: StoredCall(*call) for span_id, *call in found}

    async def delete_trace(self, trace_id: str) -> bool:
        workspace = current_workspace()
        async with self.engine.begin() as connection:
            await delete_trace_rows(connection, workspace, [trace_id])
            deleted = await connection.execute(
                delete(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
            )
        return bool(deleted.rowcount)


async def delete_trace_rows(connection: AsyncConnection, workspace: str, trace_ids: Sequence[str]) -> int:
    """Delete the spans, the search terms (indexed or waiting) and the model calls of ``trace_ids``, and return how
    many spans went. Their summaries are the caller's to delete: it decides which traces go."""
    deleted_spans = 0
    for table in (spans, terms, terms_pending, calls):
        deleted = await connection.execute(
            delete(table).where(table.c.workspace == workspace, table.c.trace_id.in_(trace_ids))
        )
        if table is spans:
            deleted_spans = deleted.rowcount
    return deleted_spans


class Transaction(Protocol):
    """The three writes of :func:`_write_rows`, inside one transaction."""

    keyed_locks: bool
    """Whether rows lock one by one (PostgreSQL), so that concurrent writers must write in key order."""

    def add_spans(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert span rows (one already stored is left as it is); returns those that were new."""
        ...

    def add_terms(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Insert term rows, tuples of :data:`TERM_COLUMNS` (one already stored is left as it is)."""
        ...

    def merge_summaries(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Merge summary rows into the stored ones; returns the traces (workspace, trace id) that, merged, count
        more than one call: a new span may have linked two of their calls (the link between a call's two sides may
        arrive last)."""
        ...

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for the statements that are not on the hot path (call rows)."""
        ...


class _Statements:
    """:class:`Transaction` through SQLAlchemy (PostgreSQL), on a connection that ``run_sync`` passes."""

    keyed_locks = True

    def __init__(self, store: SpanStore, connection: Connection) -> None:
        self._store = store
        self.connection = connection

    def add_spans(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        columns = [{name: row[name] for name in SPAN_COLUMNS} for row in rows]
        new = {tuple(key) for key in self.connection.execute(self._store._insert_spans, columns)}
        return [row for row in rows if (row["workspace"], row["trace_id"], row["span_id"]) in new]

    def add_terms(self, rows: list[tuple[str, str, str, str]]) -> None:
        self.connection.execute(self._store._insert_terms, [dict(zip(TERM_COLUMNS, row, strict=True)) for row in rows])

    def merge_summaries(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        merged = self.connection.execute(self._store._merge_summaries, rows)
        return [(workspace, trace_id) for workspace, trace_id, calls in merged if calls > 1]


@functools.cache
def _insert_calls(dialect: str) -> Any:
    """Insert call rows, a call already stored left as it is."""
    return on_conflict_insert(calls, dialect).on_conflict_do_nothing()


def _write_rows(transaction: Transaction, rows: list[dict[str, Any]], compute: Compute) -> None:
    """Insert the spans, then the terms and model calls of those that were new, then merge them into their
    summaries; last, count again the calls of the traces that have several (see :func:`recount_calls`), which the
    summaries' upsert returns (a query of its own after every write cost as much as the upsert)."""
    added: list[dict[str, Any]] = []
    for start in range(0, len(rows), SPAN_ROWS_PER_STATEMENT):
        added += transaction.add_spans(rows[start : start + SPAN_ROWS_PER_STATEMENT])
    summaries, new_terms, new_calls = compute(
        lambda: (summarise(added), trace_terms(added, ordered=transaction.keyed_locks), call_rows(added))
    )
    for start in range(0, len(new_terms), TERM_ROWS_PER_STATEMENT):
        transaction.add_terms(new_terms[start : start + TERM_ROWS_PER_STATEMENT])
    if len(new_terms) > TERMS_PER_STEP:  # a term at a time: freeing a list of 1.8 M term rows held the GIL for a second
        compute(lambda: empty(new_terms))
    insert_calls = _insert_calls(transaction.connection.dialect.name)
    for start in range(0, len(new_calls), SPAN_ROWS_PER_STATEMENT):
        transaction.connection.execute(insert_calls, new_calls[start : start + SPAN_ROWS_PER_STATEMENT])
    several: list[tuple[str, str]] = []
    for start in range(0, len(summaries), SPAN_ROWS_PER_STATEMENT):
        several += transaction.merge_summaries(summaries[start : start + SPAN_ROWS_PER_STATEMENT])
    if several:
        recount_calls(transaction.connection, several)


async def insert_all(engine: AsyncEngine, insert: Any, rows: list[dict[str, Any]], per_statement: int) -> Stored:
    """Insert ``rows`` in one transaction, ``per_statement`` rows per statement (under the bind parameter limits);
    returns once they are committed."""
    async with engine.begin() as connection:
        for start in range(0, len(rows), per_statement):
            await connection.execute(insert, rows[start : start + per_statement])
    return Stored()


def summarise(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per trace, the summary of ``rows`` alone, sorted by key; :func:`summary_merge` adds it to the stored one.

    ``service_name`` is the least service of the root spans, or of all spans while no root is known;
    ``session_id`` the least session its spans name (a trace is one turn of one conversation).
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        is_root = row["parent_span_id"] is None
        summary = found.get((row["workspace"], row["trace_id"]))
        if summary is None:
            found[(row["workspace"], row["trace_id"])] = {
                "workspace": row["workspace"],
                "trace_id": row["trace_id"],
                "project": row["project"],
                "service_name": row["service_name"],
                "root_name": row["name"] if is_root else None,
                "start_ns": row["start_ns"],
                "end_ns": row["end_ns"],
                "duration_ns": row["end_ns"] - row["start_ns"],
                "span_count": 1,
                "error_count": int(row["status_code"] == STATUS_ERROR),
                "llm_calls": int(row.get("llm_call", False)),
                "input_tokens": row.get("input_tokens", 0),
                "output_tokens": row.get("output_tokens", 0),
                "cost_usd": row.get("cost_usd"),
                "session_id": _session_of(row),
            }
            continue
        summary["project"] = min(summary["project"], row["project"])
        summary["start_ns"] = min(summary["start_ns"], row["start_ns"])
        summary["end_ns"] = max(summary["end_ns"], row["end_ns"])
        summary["duration_ns"] = summary["end_ns"] - summary["start_ns"]
        summary["span_count"] += 1
        summary["error_count"] += row["status_code"] == STATUS_ERROR
        summary["llm_calls"] += bool(row.get("llm_call", False))
        summary["input_tokens"] += row.get("input_tokens", 0)
        summary["output_tokens"] += row.get("output_tokens", 0)
        summary["cost_usd"] = add_costs(summary["cost_usd"], row.get("cost_usd"))
        summary["session_id"] = _least(summary["session_id"], _session_of(row))
        if is_root and summary["root_name"] is None:
            summary["root_name"], summary["service_name"] = row["name"], row["service_name"]
        elif is_root or summary["root_name"] is None:
            summary["root_name"] = _least(summary["root_name"], row["name"] if is_root else None)
            summary["service_name"] = min(summary["service_name"], row["service_name"])
    return [found[key] for key in sorted(found)]


def add_costs(a: float | None, b: float | None) -> float | None:
    """The sum of two costs, either unknown (``None``): unknown only when both are."""
    return b if a is None else a if b is None else a + b


def _session_of(row: dict[str, Any]) -> str | None:
    """The session the span names (``session.id``, ``gen_ai.conversation.id``...: see :data:`.conventions.SESSION`)."""
    facts = row.get("llm")
    session = None if facts is None else facts.session_id
    return session if session is not None and len(session) <= MAX_TERM_CHARS and "\0" not in session else None


def _least(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


def summary_merge(dialect: str) -> Any:
    """``INSERT`` of :func:`summarise` rows that, on an existing trace, merges with the stored values
    inside the database (the row is locked meanwhile), so no concurrent update is lost."""
    insert = on_conflict_insert(traces, dialect)
    stored, new = traces.c, insert.excluded
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)

    def least_of(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """Ignoring NULL (PostgreSQL's LEAST does; SQLite's two-argument MIN does not)."""
        return least(a, b) if dialect == "postgresql" else func.coalesce(least(a, b), a, b)

    return insert.on_conflict_do_update(
        index_elements=[traces.c.workspace, traces.c.trace_id],
        set_={
            "project": least(stored.project, new.project),
            "service_name": case(
                (and_(stored.root_name.is_(None), new.root_name.is_not(None)), new.service_name),
                (and_(stored.root_name.is_not(None), new.root_name.is_(None)), stored.service_name),
                else_=least(stored.service_name, new.service_name),
            ),
            "root_name": least_of(stored.root_name, new.root_name),
            "start_ns": least(stored.start_ns, new.start_ns),
            "end_ns": greatest(stored.end_ns, new.end_ns),
            "duration_ns": greatest(stored.end_ns, new.end_ns) - least(stored.start_ns, new.start_ns),
            "span_count": stored.span_count + new.span_count,
            "error_count": stored.error_count + new.error_count,
            "llm_calls": stored.llm_calls + new.llm_calls,
            "input_tokens": stored.input_tokens + new.input_tokens,
            "output_tokens": stored.output_tokens + new.output_tokens,
            "cost_usd": case(
                (stored.cost_usd.is_(None), new.cost_usd),
                (new.cost_usd.is_(None), stored.cost_usd),
                else_=stored.cost_usd + new.cost_usd,
            ),
            "session_id": least_of(stored.session_id, new.session_id),
        },
    )


def trace_terms(rows: Iterable[dict[str, Any]], ordered: bool = True) -> list[tuple[str, str, str, str]]:
    """The distinct term rows of ``rows`` (rows without ``terms`` add none), as tuples of :data:`TERM_COLUMNS`,
    sorted when ``ordered``. A trace's spans share most of their terms: they are made distinct per trace first, which
    builds no tuple for a repeated one. Run in a bulk thread, it takes the terms
    :data:`TERMS_PER_STEP` at a time (see :func:`_sorted_in_steps`). A span of many attributes has its terms in a
    list, distinct already (see ``SpanFacts.terms``): they are taken as they are, never put in one big set (whose
    growth holds the GIL); what they share with the trace's other spans the insert leaves out (``ON CONFLICT``)."""
    per_trace: dict[tuple[str, str], set[tuple[str, str]]] = {}
    found: list[tuple[str, str, str, str]] = []
    for row in rows:
        terms = row.get("terms")
        if isinstance(terms, list):
            workspace, trace_id = row["workspace"], row["trace_id"]
            found.extend((workspace, key, value, trace_id) for key, value in terms)  # no list of them all to free
        elif terms:
            held = per_trace.setdefault((row["workspace"], row["trace_id"]), set())
            for start in range(0, len(terms), TERMS_PER_STEP):
                held.update(terms[start : start + TERMS_PER_STEP])
    found += [(w, key, value, t) for (w, t), pairs in per_trace.items() for key, value in pairs]
    return _sorted_in_steps(found) if ordered else found


def _sorted_in_steps(items: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """``sorted(items)``, where no single call holds the GIL for long: ``list.sort`` and ``set.update``
    are one C call each, and on one span of 1.8 M attributes the sort of its terms held the GIL, so
    the event loop, for seconds. Runs of :data:`TERMS_PER_STEP` are sorted, then merged by
    ``heapq.merge`` (Python code, which lets the GIL go every switch interval)."""
    if len(items) <= TERMS_PER_STEP:
        items.sort()
        return items
    runs = [sorted(items[start : start + TERMS_PER_STEP]) for start in range(0, len(items), TERMS_PER_STEP)]
    return list(heapq.merge(*runs))


def call_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``plughost_otel_calls`` rows of the model-call spans among ``rows`` (each counted, as if alone)."""
    return [
        {
            "workspace": row["workspace"],
            "trace_id": row["trace_id"],
            "span_id": row["span_id"],
            "parent_span_id": row["parent_span_id"],
            "kind": facts.kind,
            "request_model": facts.request_model,
            "response_model": facts.response_model,
            "provider": facts.provider,
            "input_tokens": facts.input_tokens,
            "output_tokens": facts.output_tokens,
            "cached_tokens": facts.cached_tokens,
            "reasoning_tokens": facts.reasoning_tokens,
            "counted": True,
            "cost_usd": row.get("cost_usd"),
        }
        for row in rows
        if (facts := row.get("llm")) is not None and facts.model_call
    ]


def recount_calls(connection: Connection, keys: list[tuple[str, str]]) -> None:
    """Count the calls of the traces ``keys`` (workspace, trace id) again from all their stored call rows (see
    :func:`.conventions.counted_calls`), and set the summaries whose count changed. Run after the summary rows
    are locked by this transaction's upsert, so a writer of the same trace in another process has committed
    its rows or waits for ours. A few statements for the whole group, whatever its number of traces.

    Each call row is stored counted, and added to its summary as such; so a summary needs setting only
    when some of its trace's rows change their ``counted``."""
    by_workspace: dict[str, list[str]] = defaultdict(list)
    for workspace, trace_id in keys:
        by_workspace[workspace].append(trace_id)
    flags: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for workspace, trace_ids in by_workspace.items():
        for start in range(0, len(trace_ids), TRACES_PER_RECOUNT):
            chunk = trace_ids[start : start + TRACES_PER_RECOUNT]
            found: dict[str, list[Any]] = defaultdict(list)
            for row in connection.execute(
                select(
                    calls.c.trace_id,
                    calls.c.span_id,
                    calls.c.parent_span_id,
                    calls.c.input_tokens,
                    calls.c.output_tokens,
                    calls.c.counted,
                    calls.c.cost_usd,
                ).where(calls.c.workspace == workspace, calls.c.trace_id.in_(chunk))
            ):
                found[row.trace_id].append(row)
            parents = _parents(connection, workspace, found)
            for trace_id, rows in found.items():
                usage = {row.span_id: row.input_tokens is not None or row.output_tokens is not None for row in rows}
                counted = counted_calls(usage, parents.get(trace_id) or {r.span_id: r.parent_span_id for r in rows})
                changed = [row for row in rows if row.counted != (row.span_id in counted)]
                if not changed:
                    continue
                flags += [{"w": workspace, "t": trace_id, "s": row.span_id, "c": not row.counted} for row in changed]
                kept = [row for row in rows if row.span_id in counted]
                summaries.append(
                    {
                        "w": workspace,
                        "t": trace_id,
                        "calls": len(kept),
                        "input": sum(row.input_tokens or 0 for row in kept),
                        "output": sum(row.output_tokens or 0 for row in kept),
                        "cost": functools.reduce(add_costs, (row.cost_usd for row in kept), None),
                    }
                )
    if flags:
        in_call = (calls.c.workspace == bindparam("w")) & (calls.c.trace_id == bindparam("t"))
        connection.execute(
            update(calls).where(in_call, calls.c.span_id == bindparam("s")).values(counted=bindparam("c")), flags
        )
        connection.execute(
            update(traces)
            .where(traces.c.workspace == bindparam("w"), traces.c.trace_id == bindparam("t"))
            .values(
                llm_calls=bindparam("calls"),
                input_tokens=bindparam("input"),
                output_tokens=bindparam("output"),
                cost_usd=bindparam("cost"),
            ),
            summaries,
        )


def _parents(connection: Connection, workspace: str, found: dict[str, list[Any]]) -> dict[str, dict[str, str | None]]:
    """The span tree (span id to parent) of each trace whose call rows alone do not link up: a call whose
    parent is not a call may sit under one through other spans (an HTTP client span between the two sides)."""
    unlinked = []
    for trace_id, rows in found.items():
        ids = {row.span_id for row in rows}
        if any(row.parent_span_id is not None and row.parent_span_id not in ids for row in rows):
            unlinked.append(trace_id)
    trees: dict[str, dict[str, str | None]] = defaultdict(dict)
    for start in range(0, len(unlinked), TRACES_PER_RECOUNT):
        for trace_id, span_id, parent in connection.execute(
            select(spans.c.trace_id, spans.c.span_id, spans.c.parent_span_id).where(
                spans.c.workspace == workspace, spans.c.trace_id.in_(unlinked[start : start + TRACES_PER_RECOUNT])
            )
        ):
            trees[trace_id][span_id] = parent
    return trees


def _has_model(model: str) -> ColumnElement[bool]:
    """Some model call of the listed trace asked for or answered with ``model`` (an index probe)."""
    return or_(
        exists().where(
            calls.c.workspace == traces.c.workspace,
            calls.c.request_model == model,
            calls.c.trace_id == traces.c.trace_id,
        ),
        exists().where(
            calls.c.workspace == traces.c.workspace,
            calls.c.response_model == model,
            calls.c.trace_id == traces.c.trace_id,
        ),
    )


def _about_a_value(error: BaseException | None) -> bool:
    """Whether the error, or one it wraps (drivers' errors come wrapped, sometimes twice), is about a
    value: a Python value error, or a PostgreSQL data (22xxx) or integrity (23xxx) exception."""
    while error is not None:
        if isinstance(error, VALUE_ERRORS) or str(getattr(error, "sqlstate", "") or "")[:2] in ("22", "23"):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


def _sorted_entries(calls: list[tuple[list[dict[str, Any]], Stored]]) -> list[Entry]:
    """Every row of the group with its call's result, in key order (concurrent writers then lock rows in one order)."""
    entries = [(stored, row) for rows, stored in calls for row in rows]
    entries.sort(key=lambda entry: (entry[1]["workspace"], entry[1]["trace_id"], entry[1]["span_id"]))
    return entries


def _short(error: BaseException) -> str:
    """The first line of a driver's message, without the SQL and parameters SQLAlchemy appends."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return re.sub(
        r"\s+", " ", f"{type(getattr(error, 'orig', None) or error).__name__}: {message[0] if message else ''}"
    )[:200]


def span_row_names(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of the rows :meth:`SpanStore.span_tuples` reads: ``columns``, then ``start_ns`` and ``span_id``
    unless they are among them."""
    return tuple(dict.fromkeys((*columns, "start_ns", "span_id")))


def as_dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """The rows as dicts by column name: half the CPU of ``dict(row._mapping)`` for each row,
    which counts when a big trace is read (100,000 rows: 0.65 s against 1.3 s)."""
    names = tuple(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def encode_span_cursor(position: SpanPosition) -> str:
    """The cursor of the piece after the span at ``position`` (see :meth:`SpanStore.span_tuples`)."""
    return _encode_position(*position)


def decode_span_cursor(cursor: str) -> SpanPosition:
    """The position a cursor names; ``ValueError`` for anything :func:`encode_span_cursor` did not make."""
    return _decode_position(cursor, 16, "cursor")


def _encode_position(start_ns: int, hex_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start_ns}:{hex_id}".encode()).decode()


def _decode_position(token: str, id_digits: int, name: str) -> tuple[int, str]:
    """``(start_ns, hex id)`` of a token made by :func:`_encode_position`; ``ValueError`` naming ``name`` otherwise."""
    try:
        start_ns, hex_id = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        position = int(start_ns), hex_id
    except (ValueError, UnicodeError):
        position = None
    if (
        position is None
        or not -INT64_MAX <= position[0] <= INT64_MAX
        or not re.fullmatch(f"[0-9a-f]{{{id_digits}}}", position[1])
    ):
        raise ValueError(f"{name} {token[:64]!r} is not one this server returned")
    return position
